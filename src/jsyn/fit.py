r"""Fitting model parameters to recorded traces: `jsyn.fit` and `jsyn.fit_many`.

The model is any jsyn system (a synapse, a `PSC`, a projection or network, or a module of
yours with `init_state`/`step`). The chosen parameters are fitted in their *raw* space:
a field wrapped in `LogPositive`, `SoftplusPositive` or `Bounded` is optimised through its
unconstrained `raw` leaf, so the optimiser can never step outside the constraint; a plain
array field is optimised as it is.

**Least squares.** With the default loss (mean squared error, optionally weighted),

$$L(\theta) = \frac{1}{m}\sum_{i=1}^{m} w_i\,(y_i(\theta) - \hat y_i)^2,$$

the default optimiser is Levenberg–Marquardt (Gauss–Newton steps with adaptive damping,
Nielsen's update), on the Jacobian of the residuals from forward-mode autodiff through
the whole simulation. It needs no learning rate; the single-start fits of
`tests/test_fit.py`, `benchmarks/fit.py` and notebook 02 stopped within 3 to 16 steps. Any
optax optimiser can be used instead (and is, for a custom loss).

**Confidence intervals** (Gauss–Newton / Laplace approximation at the optimum). With the
residual Jacobian $J$ in raw space, $m$ samples and $p$ fitted numbers, the noise variance
is estimated from the residuals, $s^2 = \sum_i w_i r_i^2/(m - p)$, and the covariance
of the raw parameters is $C = s^2 (J^\top W J)^{-1}$. The interval of level $1 - \alpha$
is $\theta_\text{raw} \pm z_{1-\alpha/2}\sqrt{C_{jj}}$, mapped to physical values through
the (monotone) parametrisation, so intervals of `LogPositive` parameters are asymmetric
and stay positive. Standard errors of the physical values use the delta method. They
assume independent noise of equal variance (or known relative variances `1/w`).

Reference: Nocedal & Wright 2006, *Numerical Optimization*, ch. 10; Seber & Wild 1989,
*Nonlinear Regression*, ch. 5.
"""

import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Bool, Float, Int

from . import _validation as val
from ._params import AbstractParam, resolve
from .simulate import _initial_state, _input_checks, _step_checks, checkpoint_lengths, scan

_KEYS = jax.tree_util


class FitResult(eqx.Module):
    r"""What `jsyn.fit` returns. For `jsyn.fit_many` every array has a leading axis, one
    entry per recording (and `model` holds batched parameters; use it with `jax.vmap`).

    **Attributes:**
    - `model`: the fitted model (a copy of the initial one with the fitted fields replaced).
    - `names`: the fitted parameters' names (dotted paths into the model).
    - `value`: `{name: physical value}` at the optimum (units of the field).
    - `stderr`: `{name: standard error}` of the physical value (delta method).
    - `ci_low`, `ci_high`: `{name: bound}` of the `level` confidence interval.
    - `level`: the confidence level of the intervals (default 0.95).
    - `loss`: the final loss; for least squares the (weighted) mean squared error.
    - `history`: the loss after each optimiser step, `history[0]` at the initial guess;
      entries after `n_steps` are NaN (`losses()` gives the trimmed history).
    - `n_steps`: the number of optimiser steps taken.
    - `converged`: whether the tolerance was met before `max_steps`.
    - `noise_std`: the estimated noise standard deviation $s$ of the (weighted) residuals.
    - `covariance`: the covariance $C$ of the raw (unconstrained) parameters, in the order
      of `names`, raveled.

    Intervals and standard errors are NaN for a custom loss (they need least squares).
    """

    model: Any
    value: dict[str, Array]
    stderr: dict[str, Array]
    ci_low: dict[str, Array]
    ci_high: dict[str, Array]
    loss: Float[Array, "*batch"]
    history: Float[Array, "*batch steps"]
    n_steps: Int[Array, "*batch"]
    converged: Bool[Array, "*batch"]
    noise_std: Float[Array, "*batch"]
    covariance: Float[Array, "*batch p p"]
    names: tuple[str, ...] = eqx.field(static=True)
    level: float = eqx.field(static=True)

    def losses(self) -> np.ndarray:
        """The loss history of a single fit, trimmed to the steps taken (NumPy)."""
        history = np.asarray(self.history)
        if history.ndim != 1:
            raise ValueError("losses() trims a single fit; index the history of fit_many yourself.")
        return history[: int(self.n_steps) + 1]

    def summary(self) -> str:
        """A table of the fitted values with their standard errors and intervals (for
        `fit_many`: the median and the 2.5 and 97.5 percentiles over the recordings)."""
        loss = np.asarray(self.loss)
        if loss.ndim:
            lines = [f"{loss.size} recordings; {'parameter':<24} median [2.5%, 97.5%] over them"]
            for name in self.names:
                v = np.asarray(self.value[name]).reshape(loss.size, -1)
                for i in range(v.shape[1]):
                    label = name if v.shape[1] == 1 else f"{name}[{i}]"
                    q = np.percentile(v[:, i], [50, 2.5, 97.5])
                    lines.append(f"{label:<24} {q[0]:.6g} [{q[1]:.6g}, {q[2]:.6g}]")
            n_conv = int(np.sum(self.converged))
            lines.append(f"{n_conv} of {loss.size} converged; median loss {np.median(loss):.6g}")
            return "\n".join(lines)
        lines = [f"{'parameter':<24} {'value':>12} {'stderr':>11}   {self.level:.0%} interval"]
        for name in self.names:
            v, se = np.ravel(self.value[name]), np.ravel(self.stderr[name])
            lo, hi = np.ravel(self.ci_low[name]), np.ravel(self.ci_high[name])
            for i in range(v.size):
                label = name if v.size == 1 else f"{name}[{i}]"
                lines.append(
                    f"{label:<24} {v[i]:>12.6g} {se[i]:>11.3g}   [{lo[i]:.6g}, {hi[i]:.6g}]"
                )
        state = "converged" if bool(self.converged) else "stopped at max_steps"
        lines.append(f"loss {loss:.6g} after {int(self.n_steps)} steps ({state})")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------
# choosing parameters


def _node_is_param(x) -> bool:
    return isinstance(x, AbstractParam)


def _name(path) -> str:
    return _KEYS.keystr(path).lstrip(".")


def _follow(obj, path):
    for key in path:
        if isinstance(key, _KEYS.GetAttrKey):
            obj = getattr(obj, key.name)
        elif isinstance(key, _KEYS.SequenceKey):
            obj = obj[key.idx]
        elif isinstance(key, _KEYS.DictKey):
            obj = obj[key.key]
        else:  # pragma: no cover - other pytree nodes
            raise TypeError(f"jsyn.fit cannot follow the path element {key!r}.")
    return obj


def _fittable(model) -> dict[str, tuple]:
    """`{name: path}` of every floating array or constrained parameter of `model`."""
    found = {}
    for path, node in _KEYS.tree_flatten_with_path(model, is_leaf=_node_is_param)[0]:
        if _node_is_param(node) or (
            isinstance(node, jax.Array | np.ndarray) and jnp.issubdtype(node.dtype, jnp.inexact)
        ):
            found[_name(path)] = path
    return found


def _normalise(name: str) -> str:
    return re.sub(r"\.(\d+)(?=\.|\[|$)", r"[\1]", name.strip())


def select(model, params) -> tuple[tuple[str, ...], tuple[tuple, ...]]:
    """The names and paths of the parameters chosen by `params` (see `jsyn.fit`)."""
    fittable = _fittable(model)
    if isinstance(params, str):
        params = [p for p in params.split(",") if p.strip()]
    if isinstance(params, Sequence) and all(isinstance(p, str) for p in params):
        if not params:
            raise ValueError("jsyn.fit got no parameters to fit; pass params=('tau_decay', ...).")
        names, paths = [], []
        for raw_name in params:
            name = _normalise(raw_name)
            if name in fittable:
                match = [name]
            else:
                match = [k for k in fittable if k.endswith("." + name)]
            if len(match) != 1:
                why = "matches several parameters" if match else "is not a parameter of the model"
                shown = match or list(fittable)
                raise ValueError(
                    f"jsyn.fit: {raw_name!r} {why} (candidates: {', '.join(shown)}); "
                    "give its dotted path, for example 'synapse.tau_decay'."
                )
            if match[0] in names:
                raise ValueError(f"jsyn.fit: {raw_name!r} is listed twice; list it once.")
            names.append(match[0])
            paths.append(fittable[match[0]])
        return tuple(names), tuple(paths)
    # An equinox filter: a pytree of bools (or callables) matching the model, as for
    # eqx.partition.
    chosen, _ = eqx.partition(model, params)
    leaves = _KEYS.tree_flatten_with_path(chosen, is_leaf=_node_is_param)[0]
    selected = [
        (_name(path), path)
        for path, node in leaves
        if _name(path) in fittable and not (_node_is_param(node) and node.raw is None)
    ]
    if not selected:
        raise ValueError(
            "jsyn.fit: the filter selects no floating parameter; mark some with True "
            f"(fittable: {', '.join(fittable)})."
        )
    names, paths = zip(*selected)
    return tuple(names), tuple(paths)


def _leaf(model, path):
    node = _follow(model, path)
    return node.raw if _node_is_param(node) else node


def _where(paths):
    return lambda m: [_leaf(m, path) for path in paths]


# ----------------------------------------------------------------------------------------
# the solver (pure JAX: jit, vmap over starts and over recordings)


class _Config(NamedTuple):
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


def _problem(model, inputs, target, weights, state, dt, cfg: _Config):
    dtype = jnp.result_type(target)
    leaves0 = [jnp.asarray(leaf, dtype) for leaf in _where(cfg.paths)(model)]
    theta0, unravel = ravel_pytree(leaves0)

    def rebuild(theta):
        return eqx.tree_at(_where(cfg.paths), model, unravel(theta))

    def predict(theta):
        _, pred = scan(rebuild(theta), state, inputs, dt, cfg.record, cfg.T, cfg.lengths)
        if not isinstance(pred, jax.Array) or pred.shape != target.shape:
            got = jax.tree.map(jnp.shape, pred)
            raise ValueError(
                f"jsyn.fit: the model's recorded trace has shape {got} but the target has "
                f"shape {target.shape}; reshape the target or pass record= to pick the trace."
            )
        return pred.astype(dtype)

    def residual(theta):
        r = predict(theta) - target
        if weights is not None:
            r = r * jnp.sqrt(weights)
        return r.ravel()

    def physical_list(theta):
        m = rebuild(theta)
        return [jnp.asarray(resolve(_follow(m, p)), dtype) for p in cfg.paths]

    def physical(theta):
        return ravel_pytree(physical_list(theta))[0]

    _, unravel_physical = ravel_pytree(physical_list(theta0))
    return theta0, rebuild, predict, residual, physical, unravel_physical


def _tolerance(cfg: _Config, dtype) -> float:
    if cfg.tol is not None:
        return cfg.tol
    return max(1.49e-8, 100.0 * float(jnp.finfo(dtype).eps))


def _sum_sq(r):
    f = jnp.sum(r * r)
    return jnp.where(jnp.isfinite(f), f, jnp.inf)


def _value_and_jacobian(residual):
    """`theta -> (r, J)`: the residuals and their Jacobian `(m, p)`, forward mode."""

    def both(theta):
        r = residual(theta)
        return r, r

    def value_and_jac(theta):
        J, r = jax.jacfwd(both, has_aux=True)(theta)
        return r, J

    return value_and_jac


def _levenberg_marquardt(residual, theta0, cfg: _Config):
    """Levenberg-Marquardt with Marquardt's diagonal scaling and Nielsen's damping update.
    The residuals and their Jacobian (forward mode) are evaluated once per iteration, at
    the trial point; the first iteration evaluates the initial guess. Returns the optimum,
    the mean loss, the history, the number of steps, convergence, and r and J there."""
    tol = _tolerance(cfg, theta0.dtype)
    value_and_jac = _value_and_jacobian(residual)
    shapes = jax.eval_shape(value_and_jac, theta0)
    m, p = shapes[0].size, theta0.size
    one = jnp.ones((), theta0.dtype)

    def cond(c):
        return c["first"] | ((~c["done"]) & (c["it"] < cfg.max_steps))

    def body(c):
        first, theta, r, J, f, lam, nu = (
            c[k] for k in ("first", "theta", "r", "J", "f", "lam", "nu")
        )
        g = J.T @ r
        A = J.T @ J
        d = jnp.maximum(jnp.diag(A), 1e-12 * jnp.max(jnp.diag(A)) + jnp.finfo(A.dtype).tiny)
        M = jnp.where(first, jnp.eye(p, dtype=A.dtype), A + lam * jnp.diag(d))
        delta = jnp.where(first, 0.0, jnp.linalg.solve(M, -g))
        trial = theta + delta
        r_t, J_t = value_and_jac(trial)
        f_t = _sum_sq(r_t)
        predicted = -(2.0 * delta @ g + delta @ (A @ delta))
        actual = f - f_t
        ok = first | (jnp.isfinite(f_t) & (actual > 0))
        rho = actual / jnp.where(predicted > 0, predicted, one)
        lam_ok = lam * jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
        # MINPACK's test: neither the actual nor the predicted reduction exceeds tol * f.
        small_f = (jnp.abs(actual) <= tol * f) & (predicted <= tol * f)
        small_x = jnp.linalg.norm(delta) <= tol * (jnp.linalg.norm(theta) + tol)
        f_new = jnp.where(ok, f_t, f)
        it = c["it"] + jnp.where(first, 0, 1)
        return {
            "first": jnp.zeros((), bool),
            "it": it,
            "theta": jnp.where(ok, trial, theta),
            "r": jnp.where(ok, r_t, r),
            "J": jnp.where(ok, J_t, J),
            "f": f_new,
            "lam": jnp.where(first, lam, jnp.where(ok, lam_ok, lam * nu)),
            "nu": jnp.where(ok, 2.0 * one, 2.0 * nu),
            "done": (~first & (small_f | small_x)) | (f_new == 0),
            "history": c["history"].at[it].set(f_new / m),
        }

    c = {
        "first": jnp.ones((), bool),
        "it": jnp.zeros((), jnp.int32),
        "theta": theta0,
        "r": jnp.zeros(shapes[0].shape, theta0.dtype),
        "J": jnp.zeros(shapes[1].shape, theta0.dtype),
        "f": jnp.inf * one,
        "lam": 1e-3 * one,
        "nu": 2.0 * one,
        "done": jnp.zeros((), bool),
        "history": jnp.full(cfg.max_steps + 1, jnp.nan, theta0.dtype),
    }
    c = jax.lax.while_loop(cond, body, c)
    return c["theta"], c["f"] / m, c["history"], c["it"], c["done"], c["r"], c["J"]


def _loss_value(cfg: _Config, predict, target, weights):
    if callable(cfg.loss):
        return lambda theta: cfg.loss(predict(theta), target)
    if weights is None:
        return lambda theta: jnp.mean((predict(theta) - target) ** 2)
    return lambda theta: jnp.mean(weights * (predict(theta) - target) ** 2)


def _optax_loop(loss_fn, theta0, cfg: _Config):
    opt = cfg.optimizer
    tol = _tolerance(cfg, theta0.dtype)
    grad_fn = jax.value_and_grad(loss_fn)
    f0 = loss_fn(theta0)
    history = jnp.full(cfg.max_steps + 1, jnp.nan, theta0.dtype).at[0].set(f0)
    with jax.numpy_dtype_promotion("standard"):
        opt_state0 = opt.init(theta0)

    def cond(c):
        return (~c["done"]) & (c["it"] < cfg.max_steps)

    def body(c):
        f, g = grad_fn(c["theta"])
        # optax mixes Python floats with its int32 step count; allow that promotion here
        # even where a user runs with jax_numpy_dtype_promotion="strict".
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = opt.update(g, c["opt_state"], c["theta"])
        theta = optax.apply_updates(c["theta"], updates)
        f_new = loss_fn(theta)
        done = jnp.abs(f - f_new) <= tol * jnp.abs(f_new)
        return {
            "it": c["it"] + 1,
            "theta": theta,
            "opt_state": opt_state,
            "done": done | ~jnp.isfinite(f_new),
            "history": c["history"].at[c["it"] + 1].set(f_new),
        }

    c = {
        "it": jnp.zeros((), jnp.int32),
        "theta": theta0,
        "opt_state": opt_state0,
        "done": jnp.zeros((), bool),
        "history": history,
    }
    c = jax.lax.while_loop(cond, body, c)
    converged = c["done"] & jnp.isfinite(c["history"][c["it"]])
    return c["theta"], loss_fn(c["theta"]), c["history"], c["it"], converged


def _solve(model, inputs, target, weights, state, dt, key, cfg: _Config):
    theta0, rebuild, predict, residual, physical, unravel_physical = _problem(
        model, inputs, target, weights, state, dt, cfg
    )
    dtype = theta0.dtype

    def run(theta):
        if cfg.optimizer is None:
            return _levenberg_marquardt(residual, theta, cfg)
        return _optax_loop(_loss_value(cfg, predict, target, weights), theta, cfg)

    if cfg.n_starts == 1:
        outs = run(theta0)
    else:
        noise = jax.random.normal(key, (cfg.n_starts - 1, theta0.size), dtype)
        starts = jnp.concatenate([theta0[None], theta0[None] + cfg.spread * noise])
        outs = jax.vmap(run)(starts)
        best = jnp.argmin(jnp.where(jnp.isfinite(outs[1]), outs[1], jnp.inf))
        outs = jax.tree.map(lambda x: x[best], outs)
    theta, loss, history, n_steps, converged = outs[:5]

    # Gauss-Newton covariance at the optimum (raw space), noise variance from the residuals.
    p = theta.size
    if callable(cfg.loss):
        cov = jnp.full((p, p), jnp.nan, dtype)
        s2 = jnp.full((), jnp.nan, dtype)
    else:
        r, J = outs[5:] if cfg.optimizer is None else _value_and_jacobian(residual)(theta)
        s2 = jnp.sum(r * r) / max(r.size - p, 1)
        cov = s2 * jnp.linalg.inv(J.T @ J)
    se_raw = jnp.sqrt(jnp.diag(cov))
    z = jax.scipy.special.ndtri(jnp.asarray(0.5 + cfg.level / 2.0, dtype))
    value = physical(theta)
    D = jax.jacfwd(physical)(theta)
    stderr = jnp.sqrt(jnp.diag(D @ cov @ D.T))
    a, b = physical(theta - z * se_raw), physical(theta + z * se_raw)
    return {
        "model": rebuild(theta),
        "value": unravel_physical(value),
        "stderr": unravel_physical(stderr),
        "ci_low": unravel_physical(jnp.minimum(a, b)),
        "ci_high": unravel_physical(jnp.maximum(a, b)),
        "loss": loss,
        "history": history,
        "n_steps": n_steps,
        "converged": converged,
        "noise_std": jnp.sqrt(s2),
        "covariance": cov,
    }


@eqx.filter_jit
def _solve_one(model, inputs, target, weights, state, dt, key, cfg):
    return _solve(model, inputs, target, weights, state, dt, key, cfg)


@eqx.filter_jit
def _solve_many(model, inputs, targets, weights, state, dt, keys, cfg, axes):
    in_inputs, in_weights = axes

    def one(inputs, target, weights, key):
        return _solve(model, inputs, target, weights, state, dt, key, cfg)

    return jax.vmap(one, in_axes=(in_inputs, 0, in_weights, 0))(inputs, targets, weights, keys)


# ----------------------------------------------------------------------------------------
# entry points


def _concrete_finite(x, what: str, fix: str) -> np.ndarray:
    a = val.concrete(x)
    if a is None:
        return None
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"jsyn.fit: {what} must be floating (got dtype {a.dtype}).")
    bad = ~np.isfinite(a)
    if bad.any():
        idx = tuple(int(i) for i in np.unravel_index(int(np.flatnonzero(bad)[0]), a.shape))
        raise ValueError(
            f"jsyn.fit: {what} must be finite (got {a[idx]} at index {idx}; "
            f"{int(bad.sum())} of {a.size} bad); {fix}"
        )
    return a


def _prepare(
    model,
    inputs,
    target,
    dt,
    params,
    loss,
    weights,
    optimizer,
    max_steps,
    tol,
    record,
    n_starts,
    spread,
    level,
    checkpoint,
    batched,
    shared_inputs=True,
):
    names, paths = select(model, params)
    target = jnp.asarray(target)
    if not jnp.issubdtype(target.dtype, jnp.floating):
        target = target.astype(jnp.result_type(float))
    _concrete_finite(target, "the target", "drop or interpolate the NaN samples")
    if isinstance(loss, str):
        if loss not in ("mse", "weighted"):
            raise ValueError(
                f"jsyn.fit: unknown loss {loss!r}; use 'mse', 'weighted' or a callable "
                "loss(prediction, target) -> scalar."
            )
        if loss == "weighted" and weights is None:
            raise ValueError("jsyn.fit: loss='weighted' needs weights= (>= 0, like the target).")
        loss = "mse" if weights is None else "weighted"
    elif not callable(loss):
        raise TypeError(f"jsyn.fit: loss must be 'mse', 'weighted' or a callable (got {loss!r}).")
    if weights is not None:
        weights = jnp.asarray(weights, target.dtype)
        w = _concrete_finite(weights, "weights", "pass finite weights >= 0")
        if w is not None and (w < 0).any():
            raise ValueError(f"jsyn.fit: weights must be >= 0 (got min={w.min()}).")
    if callable(loss) and optimizer is None:
        optimizer = optax.adam(0.02)
    if max_steps is None:
        max_steps = 200 if optimizer is None else 2000
    if not 0.0 < level < 1.0:
        raise ValueError(f"jsyn.fit: level must lie in (0, 1) (got {level}); e.g. 0.95.")
    if int(n_starts) < 1:
        raise ValueError(f"jsyn.fit: n_starts must be >= 1 (got {n_starts}).")
    leaves = jax.tree.leaves(inputs)
    T = target.shape[1 if batched else 0] if target.ndim > int(batched) else None
    if T is None:
        raise ValueError(
            f"jsyn.fit: the target needs a leading time axis"
            f"{' after the recording axis' if batched else ''} (got shape {target.shape})."
        )
    axis = 1 if batched and not shared_inputs else 0
    for leaf in leaves:
        shape = np.shape(leaf)
        if len(shape) <= axis or shape[axis] != T:
            raise ValueError(
                f"jsyn.fit: inputs of shape {shape} do not match the target's {T} time "
                "steps; give inputs with the same time axis as the target."
            )
    val.raise_concrete(val.collect(model) + _step_checks(dt) + _input_checks(inputs))
    cfg = _Config(
        paths=paths,
        record=record,
        loss=loss,
        optimizer=optimizer,
        max_steps=int(max_steps),
        tol=None if tol is None else float(tol),
        level=float(level),
        T=int(T),
        lengths=checkpoint_lengths(checkpoint, int(T)),
        n_starts=int(n_starts),
        spread=float(spread),
    )
    return names, target, weights, cfg


def _result(out, names, level) -> FitResult:
    def named(values):
        return dict(zip(names, values))

    return FitResult(
        model=out["model"],
        value=named(out["value"]),
        stderr=named(out["stderr"]),
        ci_low=named(out["ci_low"]),
        ci_high=named(out["ci_high"]),
        loss=out["loss"],
        history=out["history"],
        n_steps=out["n_steps"],
        converged=out["converged"],
        noise_std=out["noise_std"],
        covariance=out["covariance"],
        names=names,
        level=level,
    )


def fit(
    model,
    inputs,
    target,
    dt,
    *,
    params,
    loss: str | Callable = "mse",
    weights=None,
    optimizer=None,
    max_steps: int | None = None,
    tol: float | None = None,
    record: Callable | None = None,
    state=None,
    n_starts: int = 1,
    key=None,
    spread: float = 0.5,
    level: float = 0.95,
    checkpoint=None,
) -> FitResult:
    r"""Fit parameters of `model` so that its simulated trace matches `target`.

    The prediction is `jsyn.simulate(model, inputs, dt, record=record)[1]`, which must
    have the shape of `target` (time leading). The whole fit is one compiled function
    (`jax.lax.while_loop`), compiled once per model structure and data shape.

    **Arguments:**
    - `model`: any system with `init_state`/`step` (a synapse, `jsyn.PSC`, a projection,
      network or user module). Its current values are the initial guess.
    - `inputs`: the drive, time leading, as for `jsyn.simulate` (spike counts for a `PSC`).
    - `target`: the recorded trace, same shape as the prediction (pA for a `PSC`).
    - `dt`: the time step (ms).
    - `params`: which parameters to fit: names (a list, or one comma-separated string),
      each a dotted path into the model (`"synapse.tau_decay"`, `"output[1].g_max"`,
      `"output.1.g_max"`) or a unique last part (`"tau_decay"`); or an equinox filter (a
      pytree of bools shaped like the model, as for `eqx.partition`). Wrap a field in
      `LogPositive`/`SoftplusPositive`/`Bounded` to fit it with its constraint (in raw
      space); a plain array is fitted unconstrained.
    - `loss`: `"mse"` (default), `"weighted"` (with `weights`), or a callable
      `loss(prediction, target) -> scalar` (fitted with optax; no intervals).
    - `weights`: optional weights $w_i \ge 0$ of the squared residuals, broadcastable to
      the target (for example inverse noise variances, or 0 to ignore samples).
    - `optimizer`: `None` (default) for Levenberg–Marquardt on least squares; or an optax
      optimiser (default for a custom loss: `optax.adam(0.02)`).
    - `max_steps`: the most optimiser steps (default 200 for Levenberg–Marquardt, 2000
      for optax).
    - `tol`: stop when a step lowers the loss by less than `tol` times the loss (for
      Levenberg–Marquardt also when the step is that small relative to the parameters).
      Default $\max(1.49\cdot10^{-8}, 100\,\epsilon)$ of the target's dtype.
    - `record`: which trace to compare, as for `jsyn.simulate` (default: the step output).
    - `state`: the initial state (default: built from the inputs, as `jsyn.simulate` does).
    - `n_starts`, `key`, `spread`: multi-start. `n_starts - 1` extra initial guesses are
      drawn as the raw parameters plus `spread` times standard normal noise (`key`,
      default `jax.random.key(0)`); all are fitted at once (`vmap`) and the one with the
      lowest final loss is kept.
    - `level`: the confidence level of the intervals. Default 0.95.
    - `checkpoint`: nested checkpointing of the simulation, as for `jsyn.simulate`
      (optax path: reverse-mode memory; Levenberg–Marquardt uses forward mode anyway).

    **Returns:** a `FitResult` (`.model`, `.value`, `.ci_low`, `.ci_high`, `.stderr`,
    `.history`, `.summary()`).

    **Errors:** unknown or ambiguous parameter names, NaN/inf in the target, inputs or
    weights, a target whose shape differs from the prediction, and bad model parameters
    raise a `ValueError` that names the value and the fix.

    ```python
    psc = jsyn.PSC(jsyn.DualExpon(jsyn.LogPositive(2.0), jsyn.LogPositive(8.0)),
                   jsyn.COBA(g_max=jsyn.SoftplusPositive(1.0)), V_hold=-70.0)
    res = jsyn.fit(psc, spikes, current, dt=0.1, params="tau_rise,tau_decay,g_max")
    print(res.summary())
    ```
    """
    names, target, weights, cfg = _prepare(
        model,
        inputs,
        target,
        dt,
        params,
        loss,
        weights,
        optimizer,
        max_steps,
        tol,
        record,
        n_starts,
        spread,
        level,
        checkpoint,
        batched=False,
    )
    if state is None:
        state = _initial_state(model, jax.tree.leaves(inputs), None)
    key = jax.random.key(0) if key is None else key
    out = _solve_one(model, inputs, target, weights, state, dt, key, cfg)
    return _result(out, names, cfg.level)


def fit_many(
    model,
    inputs,
    targets,
    dt,
    *,
    params,
    shared_inputs: bool = False,
    loss: str | Callable = "mse",
    weights=None,
    optimizer=None,
    max_steps: int | None = None,
    tol: float | None = None,
    record: Callable | None = None,
    state=None,
    n_starts: int = 1,
    key=None,
    spread: float = 0.5,
    level: float = 0.95,
    checkpoint=None,
) -> FitResult:
    r"""Fit many recordings at once, each with its own parameters (`jax.vmap` of `fit`).

    Every recording starts from the same initial `model` and is fitted independently
    (its own steps, stopping and intervals); the batch runs as one compiled computation,
    which stops when the slowest recording has converged.

    **Arguments:** as `jsyn.fit`, except:
    - `targets`: the recordings, shape `(n_recordings, time, ...)`.
    - `inputs`: per recording, with a leading recording axis (`(n_recordings, time, ...)`),
      or, with `shared_inputs=True`, one drive for all (`(time, ...)`).
    - `weights`: shaped like one recording (shared) or like `targets`.
    - `key`: split into one key per recording for multi-start.

    **Returns:** a `FitResult` whose arrays have a leading recording axis; `.model` has
    batched fitted leaves (`jax.vmap` over it, or pick one with
    `jax.tree.map(lambda x: x[i], result)`).
    """
    n_rec = np.shape(targets)[0] if np.ndim(targets) else 0
    leaves = jax.tree.leaves(inputs)
    if not shared_inputs:
        for leaf in leaves:
            if np.shape(leaf)[:1] != (n_rec,):
                raise ValueError(
                    f"jsyn.fit_many: per-recording inputs need a leading axis of {n_rec} "
                    f"(got shape {np.shape(leaf)}); or pass shared_inputs=True for one drive."
                )
    names, targets, weights, cfg = _prepare(
        model,
        inputs,
        targets,
        dt,
        params,
        loss,
        weights,
        optimizer,
        max_steps,
        tol,
        record,
        n_starts,
        spread,
        level,
        checkpoint,
        batched=True,
        shared_inputs=shared_inputs,
    )
    if state is None:
        one = leaves if shared_inputs else [leaf[0] for leaf in leaves]
        state = _initial_state(model, one, None)
    w_axis = None
    if weights is not None and weights.ndim == targets.ndim and weights.shape[0] == n_rec:
        w_axis = 0
    keys = jax.random.split(jax.random.key(0) if key is None else key, n_rec)
    axes = (None if shared_inputs else 0, w_axis)
    out = _solve_many(model, inputs, targets, weights, state, dt, keys, cfg, axes)
    return _result(out, names, cfg.level)
