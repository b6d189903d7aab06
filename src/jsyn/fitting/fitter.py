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

from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array

from .. import _validation as val
from .._params import Bounded, resolve
from ..simulate import checkpoint_lengths, initial_state, input_checks, step_checks
from ._result import STATUSES as STATUSES, FitResult as FitResult, build_result
from ._select import follow, select as select, where
from ._solve import Config, solve_many, solve_one
from .psc import CONVENTIONS


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
        owner = follow(model, path[:-1])
        max_delay = getattr(owner, "max_delay", None)
        if (
            not (isinstance(last, jax.tree_util.GetAttrKey) and last.name == "delay")
            or max_delay is None
        ):
            continue
        node = follow(model, path)
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


class FitOptions(eqx.Module):
    """The options of `jsyn.fit` and `jsyn.fit_many` as the user gave them (see there)."""

    params: Any
    loss: str | Callable
    weights: Any
    optimizer: Any
    max_steps: int | None
    tol: float | None
    record: Callable | None
    n_starts: int
    spread: float
    level: float
    checkpoint: Any
    convention: str | None


class Prepared(NamedTuple):
    """A fit's checked data and its compiled solve's configuration."""

    names: tuple[str, ...]  # the fitted parameters' names
    target: Array  # the target, in the model's sign convention
    weights: Array | None
    w_axis: int | None  # fit_many: 0 for weights per recording, None for shared ones
    cfg: Config


def _prepare(
    model, inputs, target, dt, options: FitOptions, *, batched: bool, shared_inputs: bool = True
) -> Prepared:
    """Check the fit's data and options (errors name the bad value) and configure it."""
    params, loss, weights = options.params, options.loss, options.weights
    optimizer, max_steps, level = options.optimizer, options.max_steps, options.level
    names, paths = select(model, params)
    _check_delays(model, names, paths)
    target = jnp.asarray(target)
    if not jnp.issubdtype(target.dtype, jnp.floating):
        target = target.astype(jnp.result_type(float))
    _concrete_finite(target, "the target", "drop or interpolate the NaN samples")
    if _convention_sign(model, options.convention) < 0:
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
    if int(options.n_starts) < 1:
        raise ValueError(f"jsyn.fit: n_starts must be >= 1 (got {options.n_starts}).")
    leaves = jax.tree.leaves(inputs)
    T = target.shape[1 if batched else 0] if target.ndim > int(batched) else None
    if T is None:
        raise ValueError(
            f"jsyn.fit: the target needs a leading time axis"
            f"{' after the recording axis' if batched else ''} (got shape {target.shape})."
        )
    n_params = sum(int(np.size(leaf)) for leaf in where(paths)(model))
    _check_samples(target, weights, n_params, batched)
    axis = 1 if batched and not shared_inputs else 0
    for leaf in leaves:
        shape = np.shape(leaf)
        if len(shape) <= axis or shape[axis] != T:
            raise ValueError(
                f"jsyn.fit: inputs of shape {shape} do not match the target's {T} time "
                "steps; give inputs with the same time axis as the target."
            )
    val.raise_concrete(step_checks(dt) + input_checks(inputs))
    cfg = Config(
        paths=paths,
        record=options.record,
        loss=loss,
        optimizer=optimizer,
        max_steps=int(max_steps),
        tol=None if options.tol is None else float(options.tol),
        level=float(level),
        T=int(T),
        lengths=checkpoint_lengths(options.checkpoint, int(T)),
        n_starts=int(options.n_starts),
        spread=float(options.spread),
    )
    return Prepared(names, target, weights, w_axis, cfg)


def _raise_bad_model(bad, model) -> None:
    """The initial model's own constraints, as `jsyn.simulate` checks them: decided inside
    the compiled fit (`bad`), since checked eagerly, one small JAX operation per parameter
    and check, they cost 0.6-0.8 ms per call; a model that breaks one is checked again
    eagerly, to name the value. (Traced, under an outer `jit`, they are not decided.)"""
    bad = val.concrete(bad)
    if bad is not None and bad.any():
        val.raise_concrete(val.collect(model))


def _raise_sign_flip(flip, convention) -> None:
    flip = np.asarray(flip)
    if not flip.any():
        return
    first = np.argwhere(flip)[0]
    at = f"column {int(first[-1])}" + (f" of recording {int(first[0])}" if flip.ndim > 1 else "")
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
    options = FitOptions(
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
    names, target, weights, _, cfg = _prepare(model, inputs, target, dt, options, batched=False)
    if state is None:
        state = initial_state(model, jax.tree.leaves(inputs), None)
    key = jax.random.key(0) if key is None else key
    out = solve_one(model, inputs, target, weights, state, dt, key, cfg)
    _raise_bad_model(out.model_bad, model)
    _raise_sign_flip(out.sign_flip, convention)
    return build_result(out, names, cfg.level)


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
    options = FitOptions(
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
    names, targets, weights, w_axis, cfg = _prepare(
        model, inputs, targets, dt, options, batched=True, shared_inputs=shared_inputs
    )
    if state is None:
        one = leaves if shared_inputs else [leaf[0] for leaf in leaves]
        state = initial_state(model, one, None)
    keys = jax.random.split(jax.random.key(0) if key is None else key, n_rec)
    axes = (None if shared_inputs else 0, w_axis)
    out = solve_many(model, inputs, targets, weights, state, dt, keys, cfg, axes)
    _raise_bad_model(out.model_bad, model)
    _raise_sign_flip(out.sign_flip, convention)
    return build_result(out, names, cfg.level)
