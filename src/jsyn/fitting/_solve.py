"""The fit itself, in pure JAX (jit, and vmap over starts and over recordings):
Levenberg–Marquardt or an optax loop, then the diagnosis of the optimum (status,
covariance, undetermined parameters). See `jsyn.fit` for the method."""

from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Bool, Float, Int

from .. import _validation as val
from .._params import resolve
from ..simulate import scan
from ._moments import Moments, moments_fn
from ._result import STATUSES
from ._select import follow, node_is_param, where


class Config(NamedTuple):
    paths: tuple
    record: Callable | None
    loss: str | Callable
    optimizer: Any  # None for Levenberg-Marquardt, else an optax GradientTransformation
    max_steps: int
    tol: float | None
    level: float
    T: int
    lengths: tuple | None
    n_starts: int
    spread: float
    # Levenberg-Marquardt's sums inside the scan (fit_many: measured faster for a batch)
    # or over the stored residuals and Jacobian after it (a single fit: faster alone).
    sums_in_scan: bool = False


class _LMState(eqx.Module):
    """The carry of the Levenberg-Marquardt loop."""

    first: Bool[Array, ""]  # the first pass evaluates the initial guess only
    it: Int[Array, ""]  # the number of steps taken
    theta: Float[Array, " p"]  # the raw parameters
    at: Moments  # the sums at theta
    f: Float[Array, ""]  # the loss (sum of squares) at theta
    lam: Float[Array, ""]  # the damping
    nu: Float[Array, ""]  # the damping's growth factor on a rejected step
    done: Bool[Array, ""]  # the stopping test was met (or the loss is 0 or not finite)
    history: Float[Array, " steps"]  # the mean loss after each step


class _OptaxState(eqx.Module):
    """The carry of the optax loop."""

    it: Int[Array, ""]
    theta: Float[Array, " p"]
    opt_state: Any
    done: Bool[Array, ""]
    history: Float[Array, " steps"]


class Solution(eqx.Module):
    """What one fit returns from the compiled solve (with a leading recording axis on
    every array for `fit_many`); `FitResult` is built from it."""

    model: Any  # the fitted model
    value: list  # the physical values of the fitted leaves, one array each
    stderr: list
    ci_low: list
    ci_high: list
    loss: Array
    history: Array  # the mean loss after each step (NaN after the last)
    n_steps: Array
    status_code: Array  # an index into STATUSES
    converged: Array
    noise_std: Array
    covariance: Array  # of the raw parameters
    sign_flip: Array  # per column: the initial prediction's sign opposes the target's
    model_bad: Array  # the initial model breaks a constraint


def _problem(model, inputs, target, weights, state, dt, cfg: Config):
    dtype = jnp.result_type(target)
    leaves0 = [jnp.asarray(leaf, dtype) for leaf in where(cfg.paths)(model)]
    theta0, unravel = ravel_pytree(leaves0)
    arrays, static = eqx.partition(model, eqx.is_array)

    def rebuild_from(arrays, theta):
        return eqx.tree_at(where(cfg.paths), eqx.combine(arrays, static), unravel(theta))

    def rebuild(theta):
        return rebuild_from(arrays, theta)

    def predict(theta):
        _, pred = scan(rebuild(theta), state, inputs, dt, cfg.record, cfg.T, cfg.lengths)
        if not isinstance(pred, jax.Array) or pred.shape != target.shape:
            got = jax.tree.map(jnp.shape, pred)
            raise ValueError(
                f"jsyn.fit: the model's recorded trace has shape {got} but the target has "
                f"shape {target.shape}; reshape the target or pass record= to pick the trace."
            )
        return pred.astype(dtype)

    dt_array, dt_static = eqx.partition(dt, eqx.is_array)
    moments_of = moments_fn(rebuild_from, dt_static, cfg)

    def moments(theta):
        jax.eval_shape(predict, theta)  # the shape check, with its message
        return moments_of(theta, arrays, dt_array, state, inputs, target, weights)

    def physical_list(theta):
        m = rebuild(theta)
        return [jnp.asarray(resolve(follow(m, p)), dtype) for p in cfg.paths]

    def physical(theta):
        return ravel_pytree(physical_list(theta))[0]

    _, unravel_physical = ravel_pytree(physical_list(theta0))
    return theta0, rebuild, predict, moments, physical, unravel_physical


def _tolerance(cfg: Config, dtype) -> float:
    if cfg.tol is not None:
        return cfg.tol
    return max(1.49e-8, 100.0 * float(jnp.finfo(dtype).eps))


def _finite_or_inf(f):
    return jnp.where(jnp.isfinite(f), f, jnp.inf)


def _levenberg_marquardt(moments, theta0, capped, target_size: int, cfg: Config):
    """Levenberg-Marquardt with Marquardt's diagonal scaling and Nielsen's damping update;
    a step moves the raw value of a constrained parameter (`capped`: 1 for the entries of
    `AbstractParam` leaves, else 0) by at most 1.
    `moments` (the sums of `Moments`, one forward pass) is evaluated once per iteration,
    at the trial point; the first iteration evaluates the initial guess. Returns the
    optimum, the mean loss over the `target_size` samples, the history, the number of
    steps, whether the stopping test was met, and the moments there."""
    tol = _tolerance(cfg, theta0.dtype)
    shapes = jax.eval_shape(moments, theta0)
    m = target_size
    p = theta0.size
    one = jnp.ones((), theta0.dtype)

    def cond(c: _LMState):
        return c.first | ((~c.done) & (c.it < cfg.max_steps))

    def body(c: _LMState):
        first, theta, at, f, lam, nu = c.first, c.theta, c.at, c.f, c.lam, c.nu
        g, A = at.g, at.A
        d = jnp.maximum(jnp.diag(A), 1e-12 * jnp.max(jnp.diag(A)) + jnp.finfo(A.dtype).tiny)
        M = jnp.where(first, jnp.eye(p, dtype=A.dtype), A + lam * jnp.diag(d))
        delta = jnp.where(first, 0.0, jnp.linalg.solve(M, -g))
        # At most one unit of a constrained parameter's raw value per step (a factor e
        # of a LogPositive one): a long step can jump into another basin of attraction.
        delta = delta / jnp.maximum(1.0, jnp.max(jnp.abs(delta) * capped))
        trial = theta + delta
        at_t = moments(trial)
        f_t = _finite_or_inf(at_t.f)
        predicted = -(2.0 * delta @ g + delta @ (A @ delta))
        actual = f - f_t
        ok = first | (jnp.isfinite(f_t) & (actual > 0))
        rho = actual / jnp.where(predicted > 0, predicted, one)
        lam_ok = lam * jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
        # MINPACK's test: neither the actual nor the predicted reduction exceeds tol * f.
        small_f = (jnp.abs(actual) <= tol * f) & (predicted <= tol * f)
        small_x = jnp.linalg.norm(delta) <= tol * (jnp.linalg.norm(theta) + tol)
        f_new = jnp.where(ok, f_t, f)
        it = c.it + jnp.where(first, 0, 1)
        return _LMState(
            first=jnp.zeros((), bool),
            it=it,
            theta=jnp.where(ok, trial, theta),
            at=jax.tree.map(lambda new, old: jnp.where(ok, new, old), at_t, at),
            f=f_new,
            lam=jnp.where(first, lam, jnp.where(ok, lam_ok, lam * nu)),
            nu=jnp.where(ok, 2.0 * one, 2.0 * nu),
            done=(~first & (small_f | small_x)) | (f_new == 0) | ~jnp.isfinite(f_new),
            history=c.history.at[it].set(f_new / m),
        )

    nothing = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    c = _LMState(
        first=jnp.ones((), bool),
        it=jnp.zeros((), jnp.int32),
        theta=theta0,
        at=nothing,
        f=jnp.inf * one,
        lam=1e-3 * one,
        nu=2.0 * one,
        done=jnp.zeros((), bool),
        history=jnp.full(cfg.max_steps + 1, jnp.nan, theta0.dtype),
    )
    c = jax.lax.while_loop(cond, body, c)
    done = c.done & jnp.isfinite(c.f)
    return c.theta, c.f / m, c.history, c.it, done, c.at


def _loss_value(cfg: Config, predict, target, weights):
    if callable(cfg.loss):
        return lambda theta: cfg.loss(predict(theta), target)
    if weights is None:
        return lambda theta: jnp.mean((predict(theta) - target) ** 2)
    return lambda theta: jnp.mean(weights * (predict(theta) - target) ** 2)


def _optax_loop(loss_fn, theta0, cfg: Config):
    opt = cfg.optimizer
    tol = _tolerance(cfg, theta0.dtype)
    grad_fn = jax.value_and_grad(loss_fn)
    f0 = loss_fn(theta0)
    history = jnp.full(cfg.max_steps + 1, jnp.nan, theta0.dtype).at[0].set(f0)
    with jax.numpy_dtype_promotion("standard"):
        opt_state0 = opt.init(theta0)

    def cond(c: _OptaxState):
        return (~c.done) & (c.it < cfg.max_steps)

    def body(c: _OptaxState):
        f, g = grad_fn(c.theta)
        # optax mixes Python floats with its int32 step count; allow that promotion here
        # even where a user runs with jax_numpy_dtype_promotion="strict".
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = opt.update(g, c.opt_state, c.theta)
        theta = optax.apply_updates(c.theta, updates)
        f_new = loss_fn(theta)
        done = jnp.abs(f - f_new) <= tol * jnp.abs(f_new)
        return _OptaxState(
            it=c.it + 1,
            theta=theta,
            opt_state=opt_state,
            done=done | ~jnp.isfinite(f_new),
            history=c.history.at[c.it + 1].set(f_new),
        )

    c = _OptaxState(
        it=jnp.zeros((), jnp.int32),
        theta=theta0,
        opt_state=opt_state0,
        done=jnp.zeros((), bool),
        history=history,
    )
    c = jax.lax.while_loop(cond, body, c)
    converged = c.done & jnp.isfinite(c.history[c.it])
    return c.theta, loss_fn(c.theta), c.history, c.it, converged


def _diagnose(at: Moments, theta, scale, tol):
    """What least squares tells at the end, from $r^\\top r$, $J^\\top r$ and $J^\\top J$:
    which parameters the data determine, the covariance of the raw parameters up to the
    factor $s^2$, and whether the Gauss–Newton model promises any further gain.

    A parameter is dead when a step of $\\max(1, |\\theta_j|)$ in its raw value changes the
    (weighted) prediction by less than $\\sqrt\\epsilon$ times `scale`, the larger norm of
    the target and the initial prediction. The other columns of $J$ are scaled to unit
    length (so that the test does not depend on the parameters' units), and a near-null
    eigenvector of the scaled $J^\\top J$ (eigenvalue below $10^3\\,p\\,\\epsilon$ times the
    largest) marks the parameters it involves. The fit is at an optimum when the
    Gauss–Newton decrement (the loss a full Gauss–Newton step would remove) is below
    $\\sqrt{\\text{tol}}$ times the loss, or the residuals are below $\\sqrt\\epsilon$ times
    `scale`. A non-finite Jacobian makes every interval NaN."""
    A, g, f = at.A, at.g, at.f
    dtype = A.dtype
    eps = jnp.finfo(dtype).eps
    p = theta.size
    finite = jnp.all(jnp.isfinite(A)) & jnp.all(jnp.isfinite(g)) & jnp.isfinite(f)
    A = jnp.where(jnp.isfinite(A), A, 0.0)
    g = jnp.where(jnp.isfinite(g), g, 0.0)
    norms = jnp.sqrt(jnp.diag(A))
    effect = norms * jnp.maximum(jnp.abs(theta), 1.0)
    dead = ~(effect > jnp.sqrt(eps) * scale)
    safe = jnp.where(dead, 1.0, norms)
    either = dead[:, None] | dead[None, :]
    A = jnp.where(either, jnp.eye(p, dtype=dtype), A / (safe[:, None] * safe[None, :]))
    lam, V = jnp.linalg.eigh(A)
    null = lam <= 1e3 * p * eps * jnp.max(lam)
    undetermined = dead | jnp.any((jnp.abs(V) > 0.1) & null[None, :], axis=1)
    inv_lam = jnp.where(null, 0.0, 1.0 / jnp.where(null, 1.0, lam))
    unit_cov = ((V * inv_lam[None, :]) @ V.T) / (safe[:, None] * safe[None, :])
    bad = undetermined[:, None] | undetermined[None, :]
    unit_cov = jnp.where(bad | ~finite, jnp.nan, unit_cov)
    u = V.T @ jnp.where(dead, 0.0, g / safe)
    decrement = jnp.sum(u * u * inv_lam)
    optimal = decrement <= jnp.sqrt(tol) * f + eps * scale**2
    return finite, undetermined, unit_cov, optimal


def _column_signs(y):
    """Per column (all axes after time): +1 or -1 where the trace is clearly of one sign
    (|sum| at least half the sum of |y|), else 0."""
    y = y.reshape(y.shape[0], -1)
    # |y| as a select: XLA's CPU reduction of jnp.abs(y) took 7.2 ms for 1000 x 2000
    # samples in float64, 20 times the plain sum; the select, 1.5 ms.
    total, size = jnp.sum(y, axis=0), jnp.sum(jnp.where(y < 0, -y, y), axis=0)
    return jnp.where((size > 0) & (jnp.abs(total) >= 0.5 * size), jnp.sign(total), 0.0)


def _status(finite, out_of_range, undetermined, done, optimal):
    code = jnp.where(optimal, STATUSES.index("converged"), STATUSES.index("no_progress"))
    code = jnp.where(done, code, STATUSES.index("max_steps"))
    code = jnp.where(jnp.any(undetermined), STATUSES.index("unidentifiable"), code)
    code = jnp.where(out_of_range, STATUSES.index("out_of_range"), code)
    return jnp.where(finite, code, STATUSES.index("non_finite")).astype(jnp.int32)


def _solve(model, inputs, target, weights, state, dt, key, cfg: Config, scanned=None):
    """The fit of one recording. `scanned`: the target and weights as the simulation's
    scans take them (the same values; `fit_many` passes them laid out time-major)."""
    theta0, rebuild, predict, moments, physical, unravel_physical = _problem(
        model, inputs, *(scanned or (target, weights)), state, dt, cfg
    )
    dtype = theta0.dtype
    capped = ravel_pytree(
        [
            jnp.full(jnp.shape(leaf), node_is_param(follow(model, path)), dtype)
            for leaf, path in zip(where(cfg.paths)(model), cfg.paths)
        ]
    )[0]
    sqrt_w = jnp.ones((), dtype) if weights is None else jnp.sqrt(weights)
    weighted_target = jnp.broadcast_to(sqrt_w * target, target.shape)
    tol = _tolerance(cfg, dtype)

    def run(theta):
        if cfg.optimizer is None:
            return _levenberg_marquardt(moments, theta, capped, target.size, cfg)
        return _optax_loop(_loss_value(cfg, predict, target, weights), theta, cfg)

    if cfg.n_starts == 1:
        outs = run(theta0)
    else:
        noise = jax.random.normal(key, (cfg.n_starts - 1, theta0.size), dtype)
        starts = jnp.concatenate([theta0[None], theta0[None] + cfg.spread * noise])
        outs = jax.vmap(run)(starts)
        best = jnp.argmin(jnp.where(jnp.isfinite(outs[1]), outs[1], jnp.inf))
        outs = jax.tree.map(lambda x: x[best], outs)
    theta, loss, history, n_steps, done = outs[:5]

    # The initial (weighted) prediction: its sign against the target's, and its size (one
    # pass without tangents: cheaper than sums of it in every Levenberg-Marquardt pass).
    prediction0 = sqrt_w * predict(theta0)
    p0_sign, y_sign = _column_signs(prediction0), _column_signs(weighted_target)
    sign_flip = (p0_sign * y_sign) < 0
    scale = jnp.maximum(jnp.linalg.norm(weighted_target), jnp.linalg.norm(prediction0))

    fitted = rebuild(theta)
    out_of_range, model_bad = (
        jnp.any(jnp.stack([jnp.any(c.bad) for c in val.collect(m)] or [jnp.zeros((), bool)]))
        for m in (fitted, model)
    )

    # Gauss-Newton covariance at the optimum (raw space), noise variance from the residuals.
    p = theta.size
    if callable(cfg.loss):
        cov = jnp.full((p, p), jnp.nan, dtype)
        s2 = jnp.full((), jnp.nan, dtype)
        finite = jnp.isfinite(loss)
        undetermined = jnp.zeros((p,), bool)
        optimal = loss < history[0]
    else:
        at = outs[5] if cfg.optimizer is None else moments(theta)
        n_samples = jnp.sum(jnp.broadcast_to(sqrt_w > 0, target.shape), dtype=dtype)
        s2 = at.f / jnp.maximum(n_samples - p, 1)
        finite, undetermined, unit_cov, optimal = _diagnose(at, theta, scale, tol)
        cov = s2 * unit_cov
    status = _status(finite, out_of_range, undetermined, done, optimal)
    se_raw = jnp.sqrt(jnp.diag(cov))
    z = jax.scipy.special.ndtri(jnp.asarray(0.5 + cfg.level / 2.0, dtype))
    value = physical(theta)
    D = jax.jacfwd(physical)(theta)
    stderr = jnp.sqrt(jnp.diag(D @ jnp.where(jnp.isnan(cov), 0.0, cov) @ D.T))
    stderr = jnp.where(jnp.isnan(se_raw), jnp.nan, stderr)
    a, b = physical(theta - z * se_raw), physical(theta + z * se_raw)
    return Solution(
        model=fitted,
        value=unravel_physical(value),
        stderr=unravel_physical(stderr),
        ci_low=unravel_physical(jnp.minimum(a, b)),
        ci_high=unravel_physical(jnp.maximum(a, b)),
        loss=loss,
        history=history,
        n_steps=n_steps,
        status_code=status,
        converged=status == STATUSES.index("converged"),
        noise_std=jnp.sqrt(s2),
        covariance=cov,
        sign_flip=sign_flip,
        model_bad=model_bad,
    )


@eqx.filter_jit
def solve_one(model, inputs, target, weights, state, dt, key, cfg):
    return _solve(model, inputs, target, weights, state, dt, key, cfg)


@eqx.filter_jit
def solve_many(model, inputs, targets, weights, state, dt, keys, cfg, axes):
    cfg = cfg._replace(sums_in_scan=True)

    def one(inputs, target, weights, key, scanned):
        return _solve(model, inputs, target, weights, state, dt, key, cfg, scanned)

    # The scans over time get the recordings' data time-major (the recordings the second
    # axis), transposed once here: transposed inside the Levenberg-Marquardt loop, the
    # target was copied again at every evaluation (2.4 ms for 1000 x 2000 samples in
    # float64). The sums over a whole recording keep the recording-major layout.
    def time_major(tree):
        return jax.tree.map(lambda x: jnp.moveaxis(x, 0, 1), tree)

    in_inputs, in_weights = axes
    scanned = (time_major(targets), weights if in_weights is None else time_major(weights))
    if in_inputs is not None:
        in_inputs, inputs = 1, time_major(inputs)
    scanned_axes = (1, None if in_weights is None else 1)
    return jax.vmap(one, in_axes=(in_inputs, 0, in_weights, 0, scanned_axes))(
        inputs, targets, weights, keys, scanned
    )
