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
the whole simulation. A step moves the raw value of a constrained parameter by at most 1
(a factor $e$ of a `LogPositive` one), so that a long first step cannot jump into another
basin (it sent a facilitation time constant from 100 ms to 0.035 ms in the STP test of
`tests/test_fit.py`). It needs no learning rate; the converged fits of `tests/test_fit.py`
stopped within 4 to 8 steps, the one of `benchmarks/fit.py` after 5. Any optax optimiser
can be used instead (and is, for a custom loss).

**Status.** A fit reports `"converged"` only when the stopping test was met at a point
where the Gauss–Newton model promises no further gain, every parameter is determined by
the data, the loss is finite and the fitted model meets its constraints; otherwise it
says which of these failed (`FitResult.status`, `.message`), and the intervals of
parameters the data do not determine are NaN.

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
from ._params import AbstractParam, Bounded, resolve
from .psc import CONVENTIONS
from .simulate import _initial_state, _input_checks, _step_checks, checkpoint_lengths, scan

_KEYS = jax.tree_util


STATUSES = (
    "converged",
    "max_steps",
    "no_progress",
    "non_finite",
    "unidentifiable",
    "out_of_range",
)
"""The possible `FitResult.status` values, in the order of their codes
(`FitResult.status_code`)."""

_EXPLAIN = {
    "converged": "converged: the tolerance was met and no step can lower the loss further",
    "max_steps": "max_steps: stopped before the tolerance was met; raise max_steps or start "
    "closer to the optimum (n_starts=)",
    "no_progress": "no_progress: the optimiser stalled while the loss could still fall (or, "
    "for a custom loss, never fell below its initial value); start elsewhere (n_starts=) "
    "or rescale the parameters",
    "non_finite": "non_finite: the loss or its Jacobian is NaN or infinite; check the "
    "initial guess, the inputs and the model's parameters",
    "unidentifiable": "unidentifiable: the data do not determine {names}: the prediction "
    "does not change with them, or they trade off against each other; their intervals are "
    "NaN; fix some of them or fit data that constrain them",
    "out_of_range": "out_of_range: the fitted model breaks its constraints ({what}); wrap "
    "the parameter in jsyn.LogPositive, SoftplusPositive or Bounded so that the optimiser "
    "cannot leave its range",
}


class FitResult(eqx.Module):
    r"""What `jsyn.fit` returns. For `jsyn.fit_many` every array has a leading axis, one
    entry per recording (and `model` holds batched parameters; use it with `jax.vmap`).

    **Attributes:**
    - `model`: the fitted model (a copy of the initial one with the fitted fields replaced).
    - `names`: the fitted parameters' names (dotted paths into the model).
    - `value`: `{name: physical value}` at the optimum (units of the field).
    - `stderr`: `{name: standard error}` of the physical value (delta method); NaN for a
      parameter the data do not determine (status `"unidentifiable"`).
    - `ci_low`, `ci_high`: `{name: bound}` of the `level` confidence interval (NaN where
      `stderr` is).
    - `level`: the confidence level of the intervals (default 0.95).
    - `loss`: the final loss; for least squares the (weighted) mean squared error.
    - `history`: the loss after each optimiser step, `history[0]` at the initial guess;
      entries after `n_steps` are NaN (`losses()` gives the trimmed history).
    - `n_steps`: the number of optimiser steps taken.
    - `status_code`: the outcome, an index into `FitResult.STATUSES`; `status` names it.
    - `converged`: `status == "converged"`: the stopping tolerance was met at a point where
      the Gauss–Newton model promises no further gain, every parameter is determined by
      the data, the loss is finite and the fitted model meets its constraints.
    - `message`: one line explaining the status (for `fit_many`: the count of each status).
    - `noise_std`: the estimated noise standard deviation $s$ of the (weighted) residuals.
    - `covariance`: the covariance $C$ of the raw (unconstrained) parameters, in the order
      of `names`, raveled (NaN rows and columns for undetermined parameters).

    **Status** (`status`; `"converged"` is the only success):
    - `"converged"`: as above.
    - `"max_steps"`: `max_steps` were taken before the tolerance was met.
    - `"no_progress"`: the optimiser stopped (its steps were refused or became tiny) where
      the loss could still fall; or a custom loss never fell below its initial value.
    - `"non_finite"`: the loss or its Jacobian is NaN or infinite.
    - `"unidentifiable"`: some parameters do not change the prediction (relative effect of
      a unit raw step below $\sqrt\epsilon$), or trade off exactly against others (the
      column-scaled Gauss–Newton matrix $J^\top J$ is singular to working precision);
      their intervals are NaN.
    - `"out_of_range"`: the fitted model breaks a constraint that `jsyn.simulate` checks
      (for example a plain `tau` fitted below 0).

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
    status_code: Int[Array, "*batch"]
    converged: Bool[Array, "*batch"]
    noise_std: Float[Array, "*batch"]
    covariance: Float[Array, "*batch p p"]
    names: tuple[str, ...] = eqx.field(static=True)
    level: float = eqx.field(static=True)
    message: str = eqx.field(static=True, default="")

    STATUSES = STATUSES

    @property
    def status(self):
        """The outcome's name (see the class docstring): a `str` for one fit, a NumPy
        array of them for `fit_many`."""
        names = np.asarray(STATUSES)[np.asarray(self.status_code)]
        return str(names) if names.ndim == 0 else names

    def status_counts(self) -> dict[str, int]:
        """`{status: number of fits}`, for the statuses that occur (most useful for
        `fit_many`)."""
        codes = np.ravel(np.asarray(self.status_code))
        return {STATUSES[c]: int(n) for c, n in zip(*np.unique(codes, return_counts=True))}

    def losses(self) -> np.ndarray:
        """The loss history of a single fit, trimmed to the steps taken (NumPy)."""
        history = np.asarray(self.history)
        if history.ndim != 1:
            raise ValueError("losses() trims a single fit; index the history of fit_many yourself.")
        return history[: int(self.n_steps) + 1]

    def summary(self) -> str:
        """A table of the fitted values with their standard errors and intervals (for
        `fit_many`: the median and the 2.5 and 97.5 percentiles over the recordings),
        then the status."""
        loss = np.asarray(self.loss)
        if loss.ndim:
            lines = [f"{loss.size} recordings; {'parameter':<24} median [2.5%, 97.5%] over them"]
            for name in self.names:
                v = np.asarray(self.value[name]).reshape(loss.size, -1)
                for i in range(v.shape[1]):
                    label = name if v.shape[1] == 1 else f"{name}[{i}]"
                    q = np.percentile(v[:, i], [50, 2.5, 97.5])
                    lines.append(f"{label:<24} {q[0]:.6g} [{q[1]:.6g}, {q[2]:.6g}]")
            lines.append(f"{self.message}; median loss {np.median(loss):.6g}")
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
        lines.append(f"loss {loss:.6g} after {int(self.n_steps)} steps")
        lines.append(f"status: {self.message}")
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


def _levenberg_marquardt(residual, theta0, capped, cfg: _Config):
    """Levenberg-Marquardt with Marquardt's diagonal scaling and Nielsen's damping update;
    a step moves the raw value of a constrained parameter (`capped`: 1 for the entries of
    `AbstractParam` leaves, else 0) by at most 1.
    The residuals and their Jacobian (forward mode) are evaluated once per iteration, at
    the trial point; the first iteration evaluates the initial guess. Returns the optimum,
    the mean loss, the history, the number of steps, whether the stopping test was met,
    r and J there, and r at the initial guess."""
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
        # At most one unit of a constrained parameter's raw value per step (a factor e
        # of a LogPositive one): a long step can jump into another basin of attraction.
        delta = delta / jnp.maximum(1.0, jnp.max(jnp.abs(delta) * capped))
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
            "done": (~first & (small_f | small_x)) | (f_new == 0) | ~jnp.isfinite(f_new),
            "history": c["history"].at[it].set(f_new / m),
            "r0": jnp.where(first, r_t, c["r0"]),
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
        "r0": jnp.zeros(shapes[0].shape, theta0.dtype),
    }
    c = jax.lax.while_loop(cond, body, c)
    done = c["done"] & jnp.isfinite(c["f"])
    return c["theta"], c["f"] / m, c["history"], c["it"], done, c["r"], c["J"], c["r0"]


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


def _diagnose(r, J, theta, f, scale, tol):
    """What least squares tells at the end: which parameters the data determine, the
    covariance of the raw parameters up to the factor $s^2$, and whether the
    Gauss–Newton model promises any further gain.

    A parameter is dead when a step of $\\max(1, |\\theta_j|)$ in its raw value changes the
    (weighted) prediction by less than $\\sqrt\\epsilon$ times `scale`, the larger norm of
    the target and the initial prediction. The other columns of $J$ are scaled to unit
    length (so that the test does not depend on the parameters' units), and a near-null
    eigenvector of the scaled $J^\\top J$ (eigenvalue below $10^3\\,p\\,\\epsilon$ times the
    largest) marks the parameters it involves. The fit is at an optimum when the
    Gauss–Newton decrement (the loss a full Gauss–Newton step would remove) is below
    $\\sqrt{\\text{tol}}$ times the loss, or the residuals are below $\\sqrt\\epsilon$ times
    `scale`. A non-finite Jacobian makes every interval NaN."""
    dtype = J.dtype
    eps = jnp.finfo(dtype).eps
    p = theta.size
    finite = jnp.all(jnp.isfinite(J)) & jnp.all(jnp.isfinite(r)) & jnp.isfinite(f)
    J = jnp.where(jnp.isfinite(J), J, 0.0)
    r = jnp.where(jnp.isfinite(r), r, 0.0)
    norms = jnp.linalg.norm(J, axis=0)
    effect = norms * jnp.maximum(jnp.abs(theta), 1.0)
    dead = ~(effect > jnp.sqrt(eps) * scale)
    safe = jnp.where(dead, 1.0, norms)
    Jn = jnp.where(dead[None, :], 0.0, J / safe[None, :])
    either = dead[:, None] | dead[None, :]
    A = jnp.where(either, jnp.eye(p, dtype=dtype), Jn.T @ Jn)
    lam, V = jnp.linalg.eigh(A)
    null = lam <= 1e3 * p * eps * jnp.max(lam)
    undetermined = dead | jnp.any((jnp.abs(V) > 0.1) & null[None, :], axis=1)
    inv_lam = jnp.where(null, 0.0, 1.0 / jnp.where(null, 1.0, lam))
    unit_cov = ((V * inv_lam[None, :]) @ V.T) / (safe[:, None] * safe[None, :])
    bad = undetermined[:, None] | undetermined[None, :]
    unit_cov = jnp.where(bad | ~finite, jnp.nan, unit_cov)
    u = V.T @ (Jn.T @ r)
    decrement = jnp.sum(u * u * inv_lam)
    optimal = decrement <= jnp.sqrt(tol) * f + eps * scale**2
    return finite, undetermined, unit_cov, optimal


def _column_signs(y):
    """Per column (all axes after time): +1 or -1 where the trace is clearly of one sign
    (|sum| at least half the sum of |y|), else 0."""
    y = y.reshape(y.shape[0], -1)
    total, size = jnp.sum(y, axis=0), jnp.sum(jnp.abs(y), axis=0)
    return jnp.where((size > 0) & (jnp.abs(total) >= 0.5 * size), jnp.sign(total), 0.0)


def _status(finite, out_of_range, undetermined, done, optimal):
    code = jnp.where(optimal, STATUSES.index("converged"), STATUSES.index("no_progress"))
    code = jnp.where(done, code, STATUSES.index("max_steps"))
    code = jnp.where(jnp.any(undetermined), STATUSES.index("unidentifiable"), code)
    code = jnp.where(out_of_range, STATUSES.index("out_of_range"), code)
    return jnp.where(finite, code, STATUSES.index("non_finite")).astype(jnp.int32)


def _solve(model, inputs, target, weights, state, dt, key, cfg: _Config):
    theta0, rebuild, predict, residual, physical, unravel_physical = _problem(
        model, inputs, target, weights, state, dt, cfg
    )
    dtype = theta0.dtype
    capped = ravel_pytree(
        [
            jnp.full(jnp.shape(leaf), _node_is_param(_follow(model, path)), dtype)
            for leaf, path in zip(_where(cfg.paths)(model), cfg.paths)
        ]
    )[0]
    sqrt_w = jnp.ones((), dtype) if weights is None else jnp.sqrt(weights)
    weighted_target = jnp.broadcast_to(sqrt_w * target, target.shape)
    tol = _tolerance(cfg, dtype)

    def run(theta):
        if cfg.optimizer is None:
            return _levenberg_marquardt(residual, theta, capped, cfg)
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

    # The initial (weighted) prediction: its sign against the target's, and its size.
    if cfg.optimizer is None:
        r0 = outs[7].reshape(target.shape) if cfg.n_starts == 1 else None
    else:
        r0 = None
    if r0 is None:
        r0 = residual(theta0).reshape(target.shape)
    prediction0 = r0 + weighted_target
    p0_sign, y_sign = _column_signs(prediction0), _column_signs(weighted_target)
    sign_flip = (p0_sign * y_sign) < 0
    scale = jnp.maximum(jnp.linalg.norm(weighted_target), jnp.linalg.norm(prediction0))

    fitted = rebuild(theta)
    out_of_range = jnp.zeros((), bool)
    for check in val.collect(fitted):
        out_of_range = out_of_range | jnp.any(check.bad)

    # Gauss-Newton covariance at the optimum (raw space), noise variance from the residuals.
    p = theta.size
    if callable(cfg.loss):
        cov = jnp.full((p, p), jnp.nan, dtype)
        s2 = jnp.full((), jnp.nan, dtype)
        finite = jnp.isfinite(loss)
        undetermined = jnp.zeros((p,), bool)
        optimal = loss < history[0]
    else:
        r, J = outs[5:7] if cfg.optimizer is None else _value_and_jacobian(residual)(theta)
        n_samples = jnp.sum(jnp.broadcast_to(sqrt_w > 0, target.shape), dtype=dtype)
        s2 = jnp.sum(r * r) / jnp.maximum(n_samples - p, 1)
        finite, undetermined, unit_cov, optimal = _diagnose(r, J, theta, jnp.sum(r * r), scale, tol)
        cov = s2 * unit_cov
    status = _status(finite, out_of_range, undetermined, done, optimal)
    se_raw = jnp.sqrt(jnp.diag(cov))
    z = jax.scipy.special.ndtri(jnp.asarray(0.5 + cfg.level / 2.0, dtype))
    value = physical(theta)
    D = jax.jacfwd(physical)(theta)
    stderr = jnp.sqrt(jnp.diag(D @ jnp.where(jnp.isnan(cov), 0.0, cov) @ D.T))
    stderr = jnp.where(jnp.isnan(se_raw), jnp.nan, stderr)
    a, b = physical(theta - z * se_raw), physical(theta + z * se_raw)
    return {
        "model": fitted,
        "value": unravel_physical(value),
        "stderr": unravel_physical(stderr),
        "ci_low": unravel_physical(jnp.minimum(a, b)),
        "ci_high": unravel_physical(jnp.maximum(a, b)),
        "loss": loss,
        "history": history,
        "n_steps": n_steps,
        "status_code": status,
        "converged": status == STATUSES.index("converged"),
        "noise_std": jnp.sqrt(s2),
        "covariance": cov,
        "sign_flip": sign_flip,
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


def _convention_sign(model, convention) -> int:
    """+1 when the target is in the convention of the model's output, -1 when it is in the
    other. A `PSC` states its convention; every other jsyn current is into the cell."""
    if convention is None:
        return 1
    if convention not in CONVENTIONS:
        raise ValueError(
            f"jsyn.fit: unknown convention {convention!r}; use 'clamp' for a voltage-clamp "
            "recording (membrane current, inward negative) or 'into_cell' for current into "
            "the cell (jsyn's), or None to compare the model's output as it is."
        )
    return 1 if getattr(model, "convention", "into_cell") == convention else -1


def _check_weights(weights, target, batched: bool):
    """`weights` as an array and the vmap axis of its recordings (`fit_many`): it must have
    the target's shape, or broadcast to it without changing it (NumPy rules, trailing axes
    aligned); for `fit_many` either one recording's shape or all of them."""
    weights = jnp.asarray(weights, target.dtype)
    w = _concrete_finite(weights, "weights", "pass finite weights >= 0")
    if w is not None and (w < 0).any():
        raise ValueError(f"jsyn.fit: weights must be >= 0 (got min={w.min()}).")
    one = target.shape[1:] if batched else target.shape
    per_recording = batched and weights.ndim == target.ndim
    like = target.shape if per_recording else one
    try:
        fits = np.broadcast_shapes(weights.shape, like) == like
    except ValueError:
        fits = False
    if per_recording and weights.shape[0] != target.shape[0]:
        fits = False
    if not fits:
        what = "one recording's shape {one} or the targets' {all}" if batched else "{one}"
        raise ValueError(
            f"jsyn.fit: weights of shape {weights.shape} do not fit the target: they must "
            f"have {what.format(one=one, all=target.shape)}, or broadcast to it without "
            "changing it (trailing axes aligned: per time step use shape (time, 1), per "
            "column (n,))."
        )
    return jnp.broadcast_to(weights, like), (0 if per_recording else None)


def _check_delays(model, names, paths) -> None:
    """A fitted delay must stay inside the buffer by construction: `Bounded` within
    [0, max_delay] of the module that holds it."""
    for name, path in zip(names, paths):
        last = path[-1]
        owner = _follow(model, path[:-1])
        max_delay = getattr(owner, "max_delay", None)
        if not (isinstance(last, _KEYS.GetAttrKey) and last.name == "delay") or max_delay is None:
            continue
        node = _follow(model, path)
        if not (isinstance(node, Bounded) and node.lower >= 0 and node.upper <= max_delay):
            value = np.ravel(np.asarray(resolve(node)))[0]
            raise ValueError(
                f"jsyn.fit: the fitted delay {name} must stay within [0, max_delay="
                f"{max_delay:g}] ms, the buffer's length; give it as jsyn.Bounded("
                f"{value:g}, 0.0, {max_delay:g}) (or build the delay with a larger max_delay)."
            )


def _check_samples(target, weights, n_params: int, batched: bool) -> None:
    """Least squares needs more samples (of positive weight) than fitted numbers."""
    one = target.shape[1:] if batched else target.shape
    m = int(np.prod(one))
    w = None if weights is None else val.concrete(weights)
    if w is not None:
        counted = np.broadcast_to(w > 0, target.shape if w.ndim == target.ndim else one)
        m = int(counted.reshape(-1, m).sum(axis=1).min()) if batched else int(counted.sum())
    if m <= n_params:
        raise ValueError(
            f"jsyn.fit: {m} samples (of positive weight) cannot determine {n_params} fitted "
            "numbers with an estimate of the noise; give more samples than parameters, or "
            "fit fewer parameters."
        )


def _prepare(
    model,
    inputs,
    target,
    dt,
    *,
    batched: bool,
    shared_inputs: bool = True,
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
    convention,
):
    names, paths = select(model, params)
    _check_delays(model, names, paths)
    target = jnp.asarray(target)
    if not jnp.issubdtype(target.dtype, jnp.floating):
        target = target.astype(jnp.result_type(float))
    _concrete_finite(target, "the target", "drop or interpolate the NaN samples")
    if _convention_sign(model, convention) < 0:
        target = -target
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
    w_axis = None
    if weights is not None:
        weights, w_axis = _check_weights(weights, target, batched)
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
    n_params = sum(int(np.size(leaf)) for leaf in _where(paths)(model))
    _check_samples(target, weights, n_params, batched)
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
    return names, target, weights, w_axis, cfg


def _raise_sign_flip(flip, convention) -> None:
    flip = np.asarray(flip)
    if not flip.any():
        return
    where = np.argwhere(flip)[0]
    at = f"column {int(where[-1])}" + (f" of recording {int(where[0])}" if flip.ndim > 1 else "")
    taken = (
        "as the model's output"
        if convention is None
        else {
            "clamp": "as a clamp current (inward negative)",
            "into_cell": "as current into the cell (inward positive)",
        }[convention]
    )
    other = "into_cell" if convention == "clamp" else "clamp"
    raise ValueError(
        f"jsyn.fit: the target and the model's initial prediction have opposite signs "
        f"({at}; the target is read {taken}); if the recording uses the other sign "
        f"convention pass convention={other!r} (jsyn fit: --convention {other}), otherwise "
        "check E, V_hold and the initial guess."
    )


def _message(status_code, stderr, names, model) -> str:
    codes = np.asarray(status_code)
    if codes.ndim:
        counts = {STATUSES[c]: int(n) for c, n in zip(*np.unique(codes, return_counts=True))}
        others = ", ".join(f"{n} {s}" for s, n in counts.items() if s != "converged")
        done = f"{counts.get('converged', 0)} of {codes.size} converged"
        return f"{done} ({others})" if others else done
    status = STATUSES[int(codes)]
    if status == "unidentifiable":
        bad = [n for n in names if np.isnan(np.asarray(stderr[n])).any()]
        return _EXPLAIN[status].format(names=", ".join(bad) or "some parameters")
    if status == "out_of_range":
        broken = [
            val.message(c, np.asarray(c.bad)) for c in val.collect(model) if np.asarray(c.bad).any()
        ]
        return _EXPLAIN[status].format(what="; ".join(broken[:1]) or "a constraint")
    return _EXPLAIN[status]


def _result(out, names, level) -> FitResult:
    def named(values):
        return dict(zip(names, values))

    stderr = named(out["stderr"])
    return FitResult(
        model=out["model"],
        value=named(out["value"]),
        stderr=stderr,
        ci_low=named(out["ci_low"]),
        ci_high=named(out["ci_high"]),
        loss=out["loss"],
        history=out["history"],
        n_steps=out["n_steps"],
        status_code=out["status_code"],
        converged=out["converged"],
        noise_std=out["noise_std"],
        covariance=out["covariance"],
        names=names,
        level=level,
        message=_message(out["status_code"], stderr, names, out["model"]),
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
    convention: str | None = None,
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
    - `weights`: optional weights $w_i \ge 0$ of the squared residuals (for example inverse
      noise variances, or 0 to ignore samples): the target's shape, or a shape that
      broadcasts to it unchanged by NumPy's rules (trailing axes aligned: `(time, 1)` per
      time step, `(n,)` per column, a scalar). Any other shape is refused: `(time,)` for a
      `(time, 1)` target would broadcast to `(time, time)`.
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
    - `convention`: the sign convention of a current `target`: `"clamp"` for the membrane
      current a voltage-clamp amplifier records (inward negative, as in most
      electrophysiology files), `"into_cell"` for jsyn's current into the cell (inward
      positive), or `None` (default) to compare the model's output with the target as it
      is. The model's output is in its own convention (`PSC(convention=...)`; every other
      jsyn current is into the cell); a target in the other convention is negated for the
      comparison, and the fitted model is returned unchanged.

    **Returns:** a `FitResult` (`.model`, `.value`, `.ci_low`, `.ci_high`, `.stderr`,
    `.history`, `.status`, `.message`, `.summary()`). Only `status == "converged"`
    (`.converged`) is a success; see `FitResult` for the others.

    **Errors:** unknown or ambiguous parameter names, NaN/inf in the target, inputs or
    weights, a target whose shape differs from the prediction, weights of another shape,
    no more samples (of positive weight) than fitted numbers, a fitted delay that is not
    `Bounded` within `[0, max_delay]`, a target whose sign is opposite to the model's
    initial prediction (the other `convention`), and bad model parameters raise a
    `ValueError` that names the value and the fix.

    ```python
    psc = jsyn.PSC(jsyn.DualExpon(jsyn.LogPositive(2.0), jsyn.LogPositive(8.0)),
                   jsyn.COBA(g_max=jsyn.SoftplusPositive(1.0)), V_hold=-70.0)
    res = jsyn.fit(psc, spikes, current, dt=0.1, params="tau_rise,tau_decay,g_max")
    print(res.summary())
    ```
    """
    names, target, weights, _, cfg = _prepare(
        model,
        inputs,
        target,
        dt,
        batched=False,
        params=params,
        loss=loss,
        weights=weights,
        optimizer=optimizer,
        max_steps=max_steps,
        tol=tol,
        record=record,
        n_starts=n_starts,
        spread=spread,
        level=level,
        checkpoint=checkpoint,
        convention=convention,
    )
    if state is None:
        state = _initial_state(model, jax.tree.leaves(inputs), None)
    key = jax.random.key(0) if key is None else key
    out = _solve_one(model, inputs, target, weights, state, dt, key, cfg)
    _raise_sign_flip(out["sign_flip"], convention)
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
    convention: str | None = None,
) -> FitResult:
    r"""Fit many recordings at once, each with its own parameters (`jax.vmap` of `fit`).

    Every recording starts from the same initial `model` and is fitted independently
    (its own steps, stopping and intervals); the batch runs as one compiled computation,
    which stops when the slowest recording has converged.

    **Arguments:** as `jsyn.fit`, except:
    - `targets`: the recordings, shape `(n_recordings, time, ...)`.
    - `inputs`: per recording, with a leading recording axis (`(n_recordings, time, ...)`),
      or, with `shared_inputs=True`, one drive for all (`(time, ...)`).
    - `weights`: shaped like one recording (shared; or broadcasting to it unchanged, as for
      `jsyn.fit`) or like `targets` (one per recording); any other shape is refused.
    - `key`: split into one key per recording for multi-start.

    **Returns:** a `FitResult` whose arrays have a leading recording axis (`.status` is an
    array of names, `.status_counts()` and `.message` count them); `.model` has
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
    names, targets, weights, w_axis, cfg = _prepare(
        model,
        inputs,
        targets,
        dt,
        batched=True,
        shared_inputs=shared_inputs,
        params=params,
        loss=loss,
        weights=weights,
        optimizer=optimizer,
        max_steps=max_steps,
        tol=tol,
        record=record,
        n_starts=n_starts,
        spread=spread,
        level=level,
        checkpoint=checkpoint,
        convention=convention,
    )
    if state is None:
        one = leaves if shared_inputs else [leaf[0] for leaf in leaves]
        state = _initial_state(model, one, None)
    keys = jax.random.split(jax.random.key(0) if key is None else key, n_rec)
    axes = (None if shared_inputs else 0, w_axis)
    out = _solve_many(model, inputs, targets, weights, state, dt, keys, cfg, axes)
    _raise_sign_flip(out["sign_flip"], convention)
    return _result(out, names, cfg.level)
