r"""Transmission delays, in ms, fractional and differentiable: the one delay mechanism of
jsyn, used by `Delay` itself, by `jsyn.Projection` and by the couplings
(`jsyn.AdditiveCoupling`, `jsyn.DiffusiveCoupling`).

A delay of $d$ ms at time step $\Delta t$ is $s = d/\Delta t$ steps, converted by one rule,
`split_steps`. Integer $s$ is exact: a spike of step $n$ arrives in step $n + s$ (2 ms at
`dt=0.1` is 20 steps, although `2 / 0.1` is 19.999999999999996 in floating point:
`split_steps` snaps such values). Fractional $s = k + f$ interpolates linearly between the
two neighbouring steps,

$$y_n = (1 - f)\,x_{n-k} + f\,x_{n-k-1},$$

so a spike of step $n$ arrives split in two, $1 - f$ of it in step $n + k$ and $f$ in step
$n + k + 1$: nothing is lost (the sum of a delayed signal is the sum of the signal), the
arrival moves continuously with $d$, and the output is a differentiable function of the
delay (piecewise linear, with kinks where $s$ is an integer, at which autodiff gives the
derivative from above).

A `Delay` holds the delay and the size of its ring buffer (`DelayState`), fixed by
`max_delay` and the `dt` it was built for. The buffer is used two ways:
- **history** (`Delay.step`): the inputs of the last steps; the output of a step reads
  them `d` ms back;
- **arrivals** (`Delay.arrival_rows`, `DelayState.pop`): what will arrive in the coming
  steps, written `d` ms ahead when it is sent (a projection delivers spikes into it,
  event-driven) and read when its step comes.

Both give the same signal for the same delay.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from . import _validation as val
from ._component import SHARED, AbstractSystem, as_shape, axis
from ._custom_types import ScalarLike, Shape
from ._params import AbstractParam, Param, as_param, resolve

_SNAP_ULPS = 64.0  # delays within this many rounding units of an integer step are that step
_DT_RTOL = 1e-6  # a run's dt this close to the built one (float32 rounding) is that dt


def split_steps(delay, dt) -> tuple[Int[Array, "*d"], Float[Array, "*d"]]:
    r"""A delay in ms as whole steps and a fraction: `delay / dt = k + frac`, with `k` an
    integer (`int32`, no gradient) and `0 <= frac < 1` (differentiable: its derivative
    w.r.t. `delay` is `1 / dt`).

    Quotients within floating-point error of an integer (a few units in the last place, so
    `2.0 / 0.1`) are snapped to it, `frac = 0`, keeping the derivative; a delay is exact in
    steps whenever it is a whole number of them. This is jsyn's one rule from ms to steps.
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


def _concrete_float(owner: str, name: str, x, why: str) -> float:
    value = val.concrete(x)
    if value is None or np.ndim(value) != 0:
        raise TypeError(f"{owner}.{name} must be a concrete number ({why}); got {x!r}.")
    return float(value)


class DelayState(eqx.Module):
    """The ring buffer of a `Delay`: `buffer`, shape `(slots, *n)`, and the row `pos` that
    the next step uses.

    As the state of `Delay.step` the buffer holds the inputs of the last `slots` steps
    (zero before the first step; row `pos - 1`, mod `slots`, is the latest). As the
    arrivals buffer of a `jsyn.Projection` it holds what arrives in the coming steps (row
    `pos` in the next step). `pos` is shared by every element (`jsyn.axis("shared")`).
    """

    buffer: Float[Array, "slots *n"]  # noqa: F821
    pos: Int[Array, ""] = axis(SHARED)

    @property
    def n_slots(self) -> int:
        return self.buffer.shape[0]

    def push(self, x) -> "DelayState":
        """Write this step's input `x` into row `pos` and move to the next row."""
        buffer = self.buffer.at[self.pos].set(jnp.asarray(x, self.buffer.dtype))
        return DelayState(buffer=buffer, pos=(self.pos + 1) % self.n_slots)

    def pop(self) -> tuple["DelayState", Float[Array, "*n"]]:
        """Take what arrives in this step (row `pos`), clear the row, move to the next."""
        row = self.buffer[self.pos]
        buffer = self.buffer.at[self.pos].set(0.0)
        return DelayState(buffer=buffer, pos=(self.pos + 1) % self.n_slots), row


def _read(buffer, newer, older, frac):
    r"""$(1 - f)$ `buffer[newer]` $+ f$ `buffer[older]`, per element of the population
    (the trailing axes of `buffer`), with `newer`, `older`, `frac` scalars or arrays that
    broadcast with the population (the result has the broadcast shape)."""
    if jnp.ndim(newer) == 0:
        return (1.0 - frac) * buffer[newer] + frac * buffer[older]
    population = buffer.shape[1:]
    shape = np.broadcast_shapes(jnp.shape(newer), population)
    # The population axes are indexed with aranges aligned to the trailing axes, as NumPy
    # broadcasting aligns the delays with the population.
    lead = (1,) * (len(shape) - len(population))
    idx = tuple(
        jnp.broadcast_to(i.reshape(lead + i.shape), shape)
        for i in jnp.indices(population, sparse=True)
    )
    newer, older, frac = (jnp.broadcast_to(a, shape) for a in (newer, older, frac))
    return (1.0 - frac) * buffer[(newer, *idx)] + frac * buffer[(older, *idx)]


class Delay(AbstractSystem):
    r"""A transmission delay: the output of step $n$ is the input of $d/\Delta t$ steps
    earlier, interpolated linearly between steps when that is not a whole number,

    $$y_n = (1 - f)\,x_{n-k} + f\,x_{n-k-1}, \qquad d/\Delta t = k + f,$$

    and zero before the first step. A delay of 0 passes the step's input through. Put it
    between a spike source and a *linear* synapse (spikes arrive `delay` ms later;
    fractional delays split a spike over two neighbouring steps, conserving it), or
    anywhere a signal travels with a lag. The output is differentiable w.r.t. `delay` (see
    the module docstring) and w.r.t. the input.

    **Delaying a nonlinear synapse** (`AMPA`, `GABAa`, `NMDA`, `BioNMDA`, `GABAb`): delay
    its output (`g`, or the current), not its input spikes. Synaptic kinetics do not change
    with time, so both are the same shift; but a spike split over two steps drives
    nonlinear kinetics as two smaller events, which changes the size of the response,
    while interpolating the output only moves it (its charge is the same for every delay).
    `jsyn.Projection` and `jsyn.PSC` do this for you.

    `step(state, x, dt) -> (state, y)`: `x` has the population's shape `n`; `y` has the
    shape of `x` and `delay` broadcast together (one delayed copy of `x` per delay, e.g.
    `delay` of shape `(n, m)` and `x` of shape `(n, 1)` give each element `m` delays). `dt`
    must be the one the delay was built for (it sizes the buffer): a concrete `dt` is
    checked at every step, a traced one once at the `jsyn.simulate` entry.

    **Arguments:**
    - `delay`: the delay (ms), >= 0. A scalar or an array that broadcasts with the
      population (one delay per element, e.g. per synapse). Array or `AbstractParam`;
      differentiable.
    - `dt`: the time step (ms) of the runs, > 0; concrete.
    - `max_delay`: the longest delay (ms) the buffer holds; concrete. Default: the largest
      value of `delay` (which must then be concrete). When fitting a delay, set it above
      any value the optimiser may reach: `jsyn.simulate` checks
      `0 <= delay <= max_delay`, and a step never reads beyond the buffer (a delay outside
      that range counts as its nearest end; eagerly it raises).
    - `owner`: the name errors give the delay (`"Projection"` for a projection's). Default
      `"Delay"`.

    The buffer holds `floor(max_delay / dt) + 2` steps.

    **Reference:** linear interpolation of delayed inputs, as in NEST's and Brian2's
    treatment of delays that are off the grid (which round them instead).
    """

    delay: Param
    dt: float = eqx.field(static=True)
    max_delay: float = eqx.field(static=True)
    n_slots: int = eqx.field(static=True)
    owner: str = eqx.field(static=True)

    def __init__(
        self,
        delay: ArrayLike | AbstractParam,
        dt: ScalarLike | None,
        *,
        max_delay: ScalarLike | None = None,
        owner: str = "Delay",
    ):
        dt = buffer_dt(owner, dt)
        with jax.ensure_compile_time_eval():  # a constant delay stays concrete inside jit
            delay = as_param(delay)
        if max_delay is None:
            d = val.concrete(resolve(delay))
            if d is None:
                raise TypeError(
                    f"{owner} needs max_delay (ms) when the delay is not concrete (inside jit/"
                    "vmap/grad): it fixes the size of the buffer."
                )
            max_delay = max(float(np.max(d)), 0.0) if np.size(d) else 0.0  # d < 0: named below
        max_delay = _concrete_float(owner, "max_delay", max_delay, "it sizes the buffer")
        if not (np.isfinite(max_delay) and max_delay >= 0):
            raise ValueError(
                f"{owner}.max_delay must be finite and >= 0 ms (got {max_delay!r}); pass the "
                "longest delay the buffer must hold."
            )
        with jax.ensure_compile_time_eval():  # concrete even when built inside jit
            k_max, _ = split_steps(np.float64(max_delay), dt)
        self.delay = delay
        self.dt = dt
        self.max_delay = max_delay
        self.n_slots = int(k_max) + 2
        self.owner = owner

    def constraints(self):
        d = resolve(self.delay)
        return (
            val.Check(
                ~(d >= 0) | ~jnp.isfinite(d),
                d,
                f"{self.owner}.delay must be finite and >= 0 ms",
                "a signal cannot arrive before it is sent; fix the delay",
            ),
            val.Check(
                ~(d <= self.max_delay),
                d,
                f"{self.owner}.delay must be <= max_delay={self.max_delay!r} ms, the longest "
                "delay the buffer holds",
                f"build the {self.owner} with a larger max_delay",
            ),
        )

    def dt_constraints(self, dt) -> list[val.Check]:
        """The check that a run's `dt` (concrete or traced) is the one the buffer was built
        for; `jsyn.simulate` runs it once at its entry."""
        step = jnp.asarray(dt) if val.concrete(dt) is None else np.asarray(dt)
        tol = _DT_RTOL * self.dt
        return [
            val.Check(
                ~(abs(step - self.dt) <= tol),
                step,
                f"{self.owner} was built for dt={self.dt!r} ms (it sizes the delay buffer) and "
                "must be stepped with it, but the run's dt differs",
                "build it with the dt of the run",
            )
        ]

    def check_dt(self, dt) -> None:
        """Raise if `dt` is concrete and differs from the one that sized the buffer."""
        step = val.concrete(dt)
        if step is not None:
            val.raise_concrete(self.dt_constraints(step))

    def steps(self, like=None, index=None) -> tuple[Int[Array, "*d"], Float[Array, "*d"]]:
        """The delay as whole steps and a fraction (`split_steps`), in the dtype of `like`;
        with `index` (integers into a per-element delay), those of the elements `index`
        only (shaped as `index`), so that a step that reads a few elements splits only
        theirs.

        A concrete delay outside `[0, max_delay]` raises here; a traced one is checked at
        the `jsyn.simulate` entry and, read here, counts as its nearest end, so a step
        never reads or writes beyond the buffer."""
        with jax.ensure_compile_time_eval():  # a closed-over delay is checked when traced
            val.raise_concrete(self.constraints())
        d = resolve(self.delay)
        if index is not None:
            d = jnp.ravel(d)[index]
        d = d if like is None else d.astype(jnp.result_type(like))
        # `where`, not `clip`: inside the range the derivative stays exactly 1, ends included.
        d = jnp.where(d > self.max_delay, self.max_delay, d)
        d = jnp.where(d < 0, 0.0, d)
        return split_steps(d, self.dt)

    def init_state(self, n: Shape, *, dtype=None) -> DelayState:
        """The empty buffer for inputs of shape `n`."""
        dtype = jnp.result_type(float) if dtype is None else dtype
        shape = as_shape(n)
        d_shape = jnp.shape(resolve(self.delay))
        try:
            np.broadcast_shapes(d_shape, shape)
        except ValueError:
            raise ValueError(
                f"{self.owner}.delay has shape {d_shape}, which does not broadcast with the "
                f"population {shape}; give one delay per element or a scalar."
            ) from None
        return self.init_arrivals(shape, dtype=dtype)

    def init_arrivals(self, n: Shape, *, dtype=None) -> DelayState:
        """The empty buffer for a population of shape `n`, without relating the delay's shape
        to it: an arrivals buffer of a projection, where per-synapse delays deliver into the
        rows of the postsynaptic neurons."""
        dtype = jnp.result_type(float) if dtype is None else dtype
        return DelayState(
            buffer=jnp.zeros((self.n_slots, *as_shape(n)), dtype), pos=jnp.zeros((), jnp.int32)
        )

    def step(self, state: DelayState, x, dt) -> tuple[DelayState, Float[Array, "..."]]:
        """Store this step's input `x`, return the input of `delay` ms ago (interpolated)."""
        state, newer, older, frac = self._push(state, x, dt)
        return state, _read(state.buffer, newer, older, frac)

    def step_at(self, state: DelayState, x, dt, index) -> tuple[DelayState, Float[Array, "..."]]:
        """As `step`, for a delay per element of a larger population that reads the inputs
        `x` through `index`: element `s` gets `x[index[s]]` of `delay[s]` ms ago
        (interpolated). The buffer holds `x` only (e.g. the spikes of the presynaptic
        neurons, read per synapse with `index` the presynaptic neuron of each synapse)."""
        state, newer, older, frac = self._push(state, x, dt)
        return state, (1.0 - frac) * state.buffer[newer, index] + frac * state.buffer[older, index]

    def _push(self, state: DelayState, x, dt):
        """Store `x`; return the state, the rows holding the inputs of `k` and `k + 1`
        steps ago, and the fraction `frac` of the delay `k + frac` (in steps)."""
        self.check_dt(dt)
        newest = state.pos
        state = state.push(x)
        k, frac = self.steps(state.buffer)
        newer = (newest - k) % self.n_slots
        return state, newer, (newer - 1) % self.n_slots, frac

    def arrival_rows(self, state: DelayState, like=None):
        """Where what is sent in this step arrives in an arrivals buffer: `(rows,
        rows_next, frac)`, the row `delay` steps ahead of `pos` (rounded down), the row
        after it, and the fraction for the later one (scalars, or arrays of the delay's
        shape). Write `(1 - frac) x` into `rows` and `frac x` into `rows_next`, then
        `state.pop()` gives this step's arrivals."""
        k, frac = self.steps(like)
        rows = (state.pos + k) % self.n_slots
        return rows, (rows + 1) % self.n_slots, frac
