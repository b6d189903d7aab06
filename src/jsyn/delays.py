r"""Transmission delays, in ms, fractional and differentiable.

A delay of $d$ ms at time step $\Delta t$ is $s = d/\Delta t$ steps. Integer $s$ is exact: a
spike of step $n$ arrives in step $n + s$ (2 ms at `dt=0.1` is 20 steps, although
`2 / 0.1` is 19.999999999999996 in floating point: `split_steps` snaps such values).
Fractional $s = k + f$ interpolates linearly between the two neighbouring steps,

$$y_n = (1 - f)\,x_{n-k} + f\,x_{n-k-1},$$

so a spike of step $n$ arrives split in two, $1 - f$ of it in step $n + k$ and $f$ in step
$n + k + 1$: nothing is lost, the arrival moves continuously with $d$, and the output is a
differentiable function of the delay (piecewise linear, with kinks where $s$ is an
integer, at which autodiff gives the derivative from above).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from . import _validation as val
from ._component import AbstractSystem, as_shape
from ._custom_types import ScalarLike, Shape
from ._params import AbstractParam, Param, as_param, resolve

_SNAP_ULPS = 64.0  # delays within this many rounding units of an integer step are that step


def split_steps(delay, dt) -> tuple[Int[Array, "*d"], Float[Array, "*d"]]:
    r"""A delay in ms as whole steps and a fraction: `delay / dt = k + frac`, with `k` an
    integer (`int32`, no gradient) and `0 <= frac < 1` (differentiable: its derivative
    w.r.t. `delay` is `1 / dt`).

    Quotients within floating-point error of an integer (a few units in the last place, so
    `2.0 / 0.1`) are snapped to it, `frac = 0`, keeping the derivative; a delay is exact in
    steps whenever it is a whole number of them.
    """
    s = jnp.asarray(delay) / dt
    nearest = jnp.round(s)
    tol = _SNAP_ULPS * jnp.finfo(s.dtype).eps * jnp.maximum(jnp.abs(s), 1.0)
    s = jnp.where(jnp.abs(s - nearest) <= tol, nearest + (s - jax.lax.stop_gradient(s)), s)
    k = jnp.floor(jax.lax.stop_gradient(s))
    return k.astype(jnp.int32), s - k


def buffer_dt(owner: str, dt) -> float:
    """The time step (ms) that sizes a delay buffer, as a float: concrete, finite, > 0."""
    value = None if dt is None else val.concrete(dt)
    if value is None or np.ndim(value) != 0 or not (np.isfinite(value) and value > 0):
        raise ValueError(
            f"{owner} needs the time step dt (ms) as a concrete number > 0 to size its delay "
            f"buffer (got {dt!r}); pass dt=0.1, the dt of the run."
        )
    return float(value)


def check_run_dt(owner: str, built: float, dt) -> None:
    """Raise if `dt` is concrete and differs from the `built` one that sized the buffer."""
    step = val.concrete(dt)
    if step is not None and not np.isclose(float(step), built, rtol=1e-12, atol=0.0):
        raise ValueError(
            f"{owner} was built for dt={built!r} ms (it sizes the delay buffer) but is stepped "
            f"with dt={float(step)!r}; build it with the dt of the run."
        )


def _concrete_float(owner: str, name: str, x, why: str) -> float:
    value = val.concrete(x)
    if value is None or np.ndim(value) != 0:
        raise TypeError(f"{owner}.{name} must be a concrete number ({why}); got {x!r}.")
    return float(value)


class DelayState(eqx.Module):
    """State of `Delay`: a ring buffer of the inputs of the last `n_slots` steps
    (`history`, zero before the first step; row `pos - 1`, mod `n_slots`, holds the latest)
    and the row `pos` that the next step writes."""

    history: Float[Array, "slots *n"]  # noqa: F821
    pos: Int[Array, ""]


class Delay(AbstractSystem):
    r"""A transmission delay: the output of step $n$ is the input of $d/\Delta t$ steps
    earlier, interpolated linearly between steps when that is not a whole number,

    $$y_n = (1 - f)\,x_{n-k} + f\,x_{n-k-1}, \qquad d/\Delta t = k + f,$$

    and zero before the first step. A delay of 0 passes the step's input through. Put it
    between a spike source and a synapse (spikes arrive `delay` ms later; fractional
    delays split a spike over two neighbouring steps, conserving it), or anywhere a signal
    travels with a lag. The output is differentiable w.r.t. `delay` (see the module
    docstring) and w.r.t. the input.

    `step(state, x, dt) -> (state, y)`: `x` has the population's shape `n`; so has `y`.
    `dt` must be the one the delay was built for (it sizes the buffer).

    **Arguments:**
    - `delay`: the delay (ms), >= 0. A scalar or an array broadcastable to the population
      (one delay per element, e.g. per synapse). Array or `AbstractParam`; differentiable.
    - `dt`: the time step (ms) of the runs, > 0; concrete.
    - `max_delay`: the longest delay (ms) the buffer holds; concrete. Default: the largest
      value of `delay` (which must then be concrete). When fitting a delay, set it above
      any value the optimiser may reach: `jsyn.simulate` checks
      `0 <= delay <= max_delay`.

    The buffer holds `floor(max_delay / dt) + 2` steps of the input.

    **Reference:** linear interpolation of delayed inputs, as in NEST's and Brian2's
    treatment of delays that are off the grid (which round them instead).
    """

    delay: Param
    dt: float = eqx.field(static=True)
    max_delay: float = eqx.field(static=True)
    n_slots: int = eqx.field(static=True)

    def __init__(
        self,
        delay: ArrayLike | AbstractParam,
        dt: ScalarLike,
        *,
        max_delay: ScalarLike | None = None,
    ):
        dt = buffer_dt("Delay", dt)
        delay = as_param(delay)
        if max_delay is None:
            d = val.concrete(resolve(delay))
            if d is None:
                raise TypeError(
                    "Delay needs max_delay (ms) when delay is not concrete (inside jit/vmap/"
                    "grad): it fixes the size of the buffer."
                )
            max_delay = max(float(np.max(d)), 0.0) if np.size(d) else 0.0  # d < 0: named below
        max_delay = _concrete_float("Delay", "max_delay", max_delay, "it sizes the buffer")
        if not (np.isfinite(max_delay) and max_delay >= 0):
            raise ValueError(
                f"Delay.max_delay must be finite and >= 0 ms (got {max_delay!r}); pass the "
                "longest delay the buffer must hold."
            )
        with jax.ensure_compile_time_eval():  # concrete even when built inside jit
            k_max, _ = split_steps(np.float64(max_delay), dt)
        self.delay = delay
        self.dt = dt
        self.max_delay = max_delay
        self.n_slots = int(k_max) + 2

    def constraints(self):
        d = resolve(self.delay)
        return (
            val.Check(
                ~(d >= 0) | ~jnp.isfinite(d),
                d,
                "Delay.delay must be finite and >= 0 ms",
                "a signal cannot arrive before it is sent; fix the delay",
            ),
            val.Check(
                ~(d <= self.max_delay),
                d,
                f"Delay.delay must be <= max_delay={self.max_delay!r} ms, the longest delay "
                "the buffer holds",
                "build the Delay with a larger max_delay",
            ),
        )

    def init_state(self, n: Shape, *, dtype=None) -> DelayState:
        dtype = jnp.result_type(float) if dtype is None else dtype
        shape = as_shape(n)
        d_shape = jnp.shape(resolve(self.delay))
        try:
            np.broadcast_shapes(d_shape, shape)
        except ValueError:
            raise ValueError(
                f"Delay.delay has shape {d_shape}, which does not broadcast to the population "
                f"{shape}; give one delay per element or a scalar."
            ) from None
        return DelayState(
            history=jnp.zeros((self.n_slots, *shape), dtype), pos=jnp.zeros((), jnp.int32)
        )

    def step(self, state: DelayState, x, dt) -> tuple[DelayState, Float[Array, "*n"]]:
        """Store this step's input `x`, return the input of `delay` ms ago (interpolated)."""
        check_run_dt("Delay", self.dt, dt)
        history = state.history.at[state.pos].set(jnp.asarray(x, state.history.dtype))
        k, frac = split_steps(resolve(self.delay, history[0]), self.dt)
        newer = (state.pos - k) % self.n_slots
        older = (newer - 1) % self.n_slots
        if k.ndim == 0:
            y = (1.0 - frac) * history[newer] + frac * history[older]
        else:
            shape = history.shape[1:]
            rows = jnp.stack([jnp.broadcast_to(newer, shape), jnp.broadcast_to(older, shape)])
            near, far = jnp.take_along_axis(history, rows, axis=0)
            y = (1.0 - frac) * near + frac * far
        return DelayState(history=history, pos=(state.pos + 1) % self.n_slots), y
