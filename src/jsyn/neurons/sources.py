"""Spike sources: given spike times and Poisson trains."""

from collections.abc import Sequence
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from .. import _validation as val
from .._component import as_count, as_shape, zeros
from .._custom_types import Shape
from .._params import Param, param, resolve
from .base import AbstractNeuron


def _check_size(owner: str, n: Shape | None, own: tuple[int, ...]) -> tuple[int, ...]:
    if n is None or as_shape(n) == own:
        return own
    raise ValueError(
        f"{owner} has {own} neurons, fixed by its parameters (got n={n}); "
        "pass n=None or the matching shape."
    )


class SpikeTimesState(eqx.Module):
    """State of `SpikeTimes`: the index `i` of the next step and the last step's `spikes`."""

    i: Int[Array, ""]
    spikes: Float[Array, " n"]


class SpikeTimes(AbstractNeuron):
    r"""A spike source that replays given spike times.

    Spike $k$ of neuron `indices[k]` at `times[k]` (ms) is emitted by the step that ends
    nearest to it: row `round(times[k] / dt)` of a run whose row $i$ ends at $t_i = i\,\Delta t$.
    Several spikes of one neuron in one step add up (the output counts them), so none is
    ever lost; a spike after the last step of a run is emitted by the run that continues
    from its final state. `raster(n_steps, dt)` gives the same counts as a `(time, n)`
    array, which is the fast way to drive a synapse from many spikes (a spike past its
    window is an error there).

    **Arguments:**
    - `times`: spike times (ms), >= 0, any order.
    - `indices`: the neuron of each spike, integers in `[0, n)`; default all 0.
    - `n`: the number of neurons. Default `max(indices) + 1`.
    """

    times: Float[Array, " k"]
    indices: Int[Array, " k"]
    n: int = eqx.field(static=True)
    sized_by_inputs: ClassVar[bool] = False

    def own_size(self) -> int | None:
        return self.n

    def __init__(
        self,
        times: ArrayLike | Sequence[float],
        indices: ArrayLike | Sequence[int] | None = None,
        n: int | None = None,
    ):
        times = jnp.atleast_1d(jnp.asarray(times, dtype=jnp.result_type(float)))
        if times.ndim != 1:
            raise ValueError(f"SpikeTimes.times must be 1-d (got shape {times.shape}).")
        if indices is None:
            indices = np.zeros(times.shape, dtype=np.int32)
        indices = np.atleast_1d(np.asarray(indices))
        if indices.shape != times.shape:
            raise ValueError(
                f"SpikeTimes needs one index per spike time (got {times.shape[0]} times "
                f"and indices of shape {indices.shape})."
            )
        if indices.size and not np.issubdtype(indices.dtype, np.integer):
            raise TypeError(f"SpikeTimes.indices must be integers (got dtype {indices.dtype}).")
        n_needed = int(indices.max()) + 1 if indices.size else 1
        n = n_needed if n is None else int(n)
        if indices.size and (indices.min() < 0 or n_needed > n):
            raise ValueError(
                f"SpikeTimes.indices must lie in [0, {n}) (got min={indices.min()}, "
                f"max={indices.max()}); raise n or fix the indices."
            )
        self.times = times
        self.indices = jnp.asarray(indices, dtype=jnp.int32)
        self.n = n

    def constraints(self):
        t = self.times
        return (
            val.Check(
                ~(jnp.isfinite(t) & (t >= 0)),
                t,
                "SpikeTimes.times must be finite and >= 0 ms",
                "drop or shift the bad spikes",
            ),
        )

    def raster(self, n_steps: int, dt) -> Float[Array, "time n"]:
        """Spike counts per step, shape `(n_steps, n)`: row `i` holds the spikes at
        `t_i = i dt` (nearest step), the same counts a run of `n_steps` steps emits.

        Every spike must fall inside the window, `round(t / dt) < n_steps`: a spike past
        its end is an error, never silently dropped (pass a larger `n_steps`, or leave
        the later spikes out of `times`). `dt` must be finite and > 0 ms. Under `jit` or
        `vmap` these checks run with the computation (`eqx.error_if`)."""
        n_steps = as_count(n_steps, "SpikeTimes.raster's n_steps")
        step = val.time_step(dt)
        ok_dt = jnp.where(step.bad, 1.0, dt)  # a safe divisor; a bad dt is refused below
        rows = jnp.round(self.times / ok_dt).astype(jnp.int32)
        late = val.Check(
            rows >= n_steps,
            {"spike time": self.times, "dt": dt},
            f"SpikeTimes.raster({n_steps}, dt) covers steps 0..{n_steps - 1} and must hold "
            "every spike",
            "pass a larger n_steps, or leave the later spikes out",
        )
        raster = (
            jnp.zeros((n_steps, self.n), self.times.dtype)
            .at[rows, self.indices]
            .add(1.0, mode="drop")
        )
        traced = val.raise_concrete([step, *val.collect(self), late])
        return val.guard(raster, traced)

    def init_state(self, n: Shape | None = None, *, dtype=None) -> SpikeTimesState:
        shape = _check_size("SpikeTimes", n, (self.n,))
        return SpikeTimesState(i=jnp.zeros((), jnp.int32), spikes=zeros(shape, dtype))

    def step(self, state: SpikeTimesState, x, dt) -> tuple[SpikeTimesState, Float[Array, " n"]]:
        hits = (jnp.round(self.times / dt).astype(jnp.int32) == state.i).astype(state.spikes.dtype)
        spikes = jnp.zeros_like(state.spikes).at[self.indices].add(hits)
        return SpikeTimesState(i=state.i + 1, spikes=spikes), spikes


class PoissonState(eqx.Module):
    """State of `Poisson`: the PRNG `key` of the next step and the last step's `spikes`."""

    key: PRNGKeyArray
    spikes: Float[Array, "*n"]


class Poisson(AbstractNeuron):
    r"""Independent Poisson spike trains, one per neuron, at given rates (Hz).

    In each step of $\Delta t$ ms every neuron spikes (0/1) with probability
    $p = r\,\Delta t / 1000$, drawn independently (a Bernoulli draw, as Brian2's and
    BrainPy's `PoissonGroup`). The mean rate is exactly $r$ at any `dt`; at most one spike
    per step, so the spike count over a window has variance $(1 - p)$ times that of a
    Poisson process, which the train tends to as $p \to 0$. A rate with
    $r\,\Delta t / 1000 > 1$ (more than one spike per step, e.g. above 10 kHz at
    `dt=0.1`) cannot be represented and is refused by `jsyn.simulate`.
    Randomness comes from the key in the state, split at every step, so a run continued
    from its final state goes on with fresh, reproducible draws.

    **Arguments:**
    - `rates`: firing rates (Hz), >= 0 and finite; their shape is the group's.
    """

    rates: Param = param()
    needs_key: ClassVar[bool] = True
    sized_by_inputs: ClassVar[bool] = False

    def own_size(self) -> int | None:
        shape = jnp.shape(resolve(self.rates))
        return shape[0] if len(shape) == 1 else None

    def constraints(self):
        return (val.nonnegative("Poisson", "rates", resolve(self.rates), "rates are in Hz, >= 0"),)

    def dt_constraints(self, dt):
        """At most one spike per step: `rates * dt / 1000 <= 1`."""
        rates = resolve(self.rates)
        return (
            val.Check(
                ~(rates * jnp.asarray(dt) / 1000.0 <= 1.0),
                {"rates": rates, "dt": jnp.asarray(dt)},
                "Poisson needs rates * dt / 1000 <= 1: a step holds at most one spike",
                "lower the rate (Hz) or the time step (dt <= 1000 / rate ms)",
            ),
        )

    def init_state(self, n: Shape | None = None, *, dtype=None, key: PRNGKeyArray) -> PoissonState:
        """The state with PRNG `key` (required: `jax.random.key(seed)`)."""
        shape = _check_size("Poisson", n, jnp.shape(resolve(self.rates)))
        return PoissonState(key=key, spikes=zeros(shape, dtype))

    def step(self, state: PoissonState, x, dt) -> tuple[PoissonState, Float[Array, "*n"]]:
        key, sub = jax.random.split(state.key)
        p = resolve(self.rates, state.spikes) * (jnp.asarray(dt, state.spikes.dtype) / 1000.0)
        u = jax.random.uniform(sub, state.spikes.shape, dtype=state.spikes.dtype)
        spikes = (u < p).astype(u.dtype)
        return PoissonState(key=key, spikes=spikes), spikes
