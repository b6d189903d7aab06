"""`FitResult`, what `jsyn.fit` and `jsyn.fit_many` return, and the fit's status."""

import dataclasses
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from .. import _validation as val

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
    "too_wide": "unidentifiable: the data hardly determine {names}: the confidence interval "
    "is infinite or spans more than a factor {wide}; fix some parameters, fit data that "
    "constrain them, or check the units of the time axis and spike times",
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
      column-scaled Gauss–Newton matrix $J^\top J$ is singular to working precision):
      their intervals are NaN; or an interval is infinite, or reaches from a bound
      $\ell \ge 0$ above $10^6\,\ell$ (six decades: [1e-12, 1e14] ms for a time
      constant), which no well-determined parameter shows.
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
    dof: dict[str, Array] | None = None
    errors: str = eqx.field(static=True, default="residuals")

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
        if self.errors != "residuals":
            lines.append(f"intervals from the variability {self.errors} (Student's t)")
        lines.append(f"status: {self.message}")
        return "\n".join(lines)


def _message(status_code, stderr, ci_low, ci_high, names, model) -> str:
    codes = np.asarray(status_code)
    if codes.ndim:
        counts = {STATUSES[c]: int(n) for c, n in zip(*np.unique(codes, return_counts=True))}
        others = ", ".join(f"{n} {s}" for s, n in counts.items() if s != "converged")
        done = f"{counts.get('converged', 0)} of {codes.size} converged"
        return f"{done} ({others})" if others else done
    status = STATUSES[int(codes)]
    if status == "unidentifiable":
        bad = [n for n in names if np.isnan(np.asarray(stderr[n])).any()]
        if bad:
            return _EXPLAIN[status].format(names=", ".join(bad))
        wide = [n for n in names if _too_wide({n: ci_low[n]}, {n: ci_high[n]}, 0)]
        return _EXPLAIN["too_wide"].format(names=", ".join(wide), wide=f"{WIDE:.0e}")
    if status == "out_of_range":
        broken = [
            val.message(c, np.asarray(c.bad)) for c in val.collect(model) if np.asarray(c.bad).any()
        ]
        return _EXPLAIN[status].format(what="; ".join(broken[:1]) or "a constraint")
    return _EXPLAIN[status]


WIDE = 1e6
"""An interval whose bounds are not finite, or that reaches from `lo >= 0` to above
`WIDE * lo` (six decades), says the data do not determine the parameter."""


def _too_wide(ci_low, ci_high, batch_ndim: int):
    """Per fit, whether some parameter's interval is infinite or spans over `WIDE` (NaN
    intervals are undetermined already)."""
    flags = []
    for lo, hi in zip(ci_low.values(), ci_high.values()):
        lo, hi = jnp.asarray(lo), jnp.asarray(hi)
        wide = ~jnp.isfinite(lo) | ~jnp.isfinite(hi) | ((lo >= 0) & (hi > WIDE * lo))
        wide = wide & ~jnp.isnan(lo) & ~jnp.isnan(hi)
        flags.append(jnp.any(wide.reshape(*wide.shape[:batch_ndim], -1), axis=-1))
    return jnp.any(jnp.stack(flags), axis=0)


def _widened_status(status_code, wide):
    """`"unidentifiable"` for a fit with too wide an interval, unless a graver status
    (non-finite, out of range) holds."""
    dtype = jnp.asarray(status_code).dtype
    graver = jnp.isin(status_code, jnp.asarray([STATUSES.index(s) for s in _GRAVER], dtype))
    code = jnp.asarray(STATUSES.index("unidentifiable"), dtype)
    return jnp.where(wide & ~graver, code, status_code)


_GRAVER = ("non_finite", "out_of_range")


def build_result(out, names, level) -> FitResult:
    """The `FitResult` of a compiled solve's `Solution`, its parameters named `names`; an
    interval too wide to mean anything makes the fit unidentifiable."""

    def named(values):
        return dict(zip(names, values))

    stderr = named(out.stderr)
    ci_low, ci_high = named(out.ci_low), named(out.ci_high)
    wide = _too_wide(ci_low, ci_high, jnp.ndim(out.loss))
    status_code = _widened_status(out.status_code, wide)
    return FitResult(
        model=out.model,
        value=named(out.value),
        stderr=stderr,
        ci_low=ci_low,
        ci_high=ci_high,
        loss=out.loss,
        history=out.history,
        n_steps=out.n_steps,
        status_code=status_code,
        converged=status_code == jnp.asarray(STATUSES.index("converged"), status_code.dtype),
        noise_std=out.noise_std,
        covariance=out.covariance,
        names=names,
        level=level,
        message=_message(status_code, stderr, ci_low, ci_high, names, out.model),
    )


def rebuilt(result: FitResult, *, stderr, ci_low, ci_high, covariance, dof, level, errors):
    """`result` (one fit) with new intervals, given as raveled vectors in the order of
    `names`; an interval too wide to mean anything makes the fit unidentifiable."""
    sizes = [int(np.size(result.value[n])) for n in result.names]
    cuts = np.cumsum(sizes)[:-1]

    def named(x):
        parts = np.split(np.asarray(x, dtype=float), cuts)
        return {
            n: jnp.asarray(part.reshape(np.shape(result.value[n])), result.loss.dtype)
            for n, part in zip(result.names, parts)
        }

    stderr, ci_low, ci_high, dof = named(stderr), named(ci_low), named(ci_high), named(dof)
    wide = _too_wide(ci_low, ci_high, 0)
    status_code = _widened_status(result.status_code, wide)
    return dataclasses.replace(
        result,
        stderr=stderr,
        ci_low=ci_low,
        ci_high=ci_high,
        status_code=status_code,
        converged=status_code == jnp.asarray(STATUSES.index("converged"), status_code.dtype),
        covariance=jnp.asarray(covariance, result.covariance.dtype),
        level=level,
        message=_message(status_code, stderr, ci_low, ci_high, result.names, result.model),
        dof=dof,
        errors=errors,
    )
