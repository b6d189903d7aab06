"""Spike sources: given spike times and Poisson trains."""

from collections.abc import Sequence
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, Key, PRNGKeyArray

from .. import _validation as val
from .._component import SHARED, STREAM, as_count, as_shape, axis, zeros
from .._custom_types import Shape
from .._params import Param, param, resolve
from .._units import warn_unit
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

    i: Int[Array, ""] = axis(SHARED)
    spikes: Float[Array, " n"]


def _rows_on_host(times, residual, dt) -> np.ndarray | None:
    """The step of each spike, `round(t / dt)`, in float64 on the host (exact for any
    recording length whatever JAX's default dtype), or `None` where a value is traced."""
    t, r, dt = val.concrete(times), val.concrete(residual), val.concrete(dt)
    if t is None or r is None or dt is None:
        return None
    ok_dt = dt if np.isfinite(dt) and dt > 0 else 1.0  # a bad dt is refused by its check
    return np.rint((t.astype(np.float64) + r.astype(np.float64)) / np.float64(ok_dt))


class SpikeTimes(AbstractNeuron):
    r"""A spike source that replays given spike times.

    Spike $k$ of neuron `indices[k]` at `times[k]` (ms) is emitted by the step that ends
    nearest to it: row `round(times[k] / dt)` of a run whose row $i$ ends at $t_i = i\,\Delta t$.
    Several spikes of one neuron in one step add up (the output counts them), so none is
    ever lost; a spike after the last step of a run is emitted by the run that continues
    from its final state.

    **Cost.** The spikes are kept in time order; a step finds its first spike by bisection
    (about $\log_2 k$ probes) and emits its own spikes one by one, so it costs what its
    spikes cost, not the number stored: a recording of 10 million spikes replays at about
    the speed per step of one of a thousand (`benchmarks/spike_input.py`). The state is
    only the step index, so a run continued from any state (saved, split per trial) is
    exact. `raster(n_steps, dt)` gives the same counts as a
    `(time, n)` array, to pass through `inputs=` (a spike past its window is an error
    there).

    **Exact steps.** Where the times and `dt` are known (not traced), the step of each
    spike is computed on the host in float64 (`raster`, and the check at the start of a
    run), so long recordings keep every spike on its step in float32 too: the part of each
    time that float32 rounds off is kept beside it (`residual`). A float32 run computes
    steps in float32; where that would move a spike by a step (times beyond about 2^20
    steps), `jsyn.simulate` refuses it and says to enable float64 or pass the raster.

    **Units.** Times are in ms. Several spikes of one neuron in one step are counted, but
    they are usually times in seconds (4 spikes at 0.010-0.120 s fall into rows 0-1 at
    `dt=0.1`): at the start of a run and in `raster` that gives a `jsyn.UnitWarning`
    naming the neuron and the step (silence it with `warnings.filterwarnings("ignore",
    category=jsyn.UnitWarning)` where such bursts are meant).

    **Arguments:**
    - `times`: spike times (ms), >= 0, any order (stored in time order).
    - `indices`: the neuron of each spike, integers in `[0, n)`; default all 0.
    - `n`: the number of neurons. Default `max(indices) + 1`.
    """

    times: Float[Array, " k"]
    residual: Float[Array, " k"]
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
        dtype = jnp.result_type(float)
        known = val.concrete(times)
        if known is not None:  # sorted, and what the dtype rounds off kept, on the host
            known = np.atleast_1d(np.asarray(known, np.float64))
        times = jnp.atleast_1d(jnp.asarray(times if known is None else known, dtype=dtype))
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
        if known is None:
            order = jnp.argsort(times, stable=True)
            residual = jnp.zeros_like(times)
        else:
            order = np.argsort(known, kind="stable")
            rounded = known.astype(np.dtype(dtype)).astype(np.float64)  # on the host, also in jit
            residual = jnp.asarray(known - rounded, dtype)
        self.times = times[order]
        self.residual = residual[order]
        self.indices = jnp.asarray(indices, dtype=jnp.int32)[order]
        self.n = n

    def for_trials(self, B: int, stacked: "SpikeTimes | None") -> "SpikeTimes":
        """`AbstractNeuron.for_trials`: each trial replays its spikes (`stacked`'s, or
        these), neuron `i` of trial `b` renumbered `i * B + b`; the times are passed exact
        (with their residual, in float64 on the host), so each spike keeps its step."""
        src = self if stacked is None else stacked
        exact = np.asarray(src.times, np.float64) + np.asarray(src.residual, np.float64)
        times = np.broadcast_to(exact, (B, self.times.shape[0]))
        trial = np.arange(B, dtype=np.int64)[:, None]
        indices = np.broadcast_to(np.asarray(src.indices, np.int64), times.shape) * B + trial
        return SpikeTimes(times.reshape(-1), indices.reshape(-1), self.n * B)

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

    def dt_constraints(self, dt):
        """At the start of a run with a known `dt`: a `jsyn.UnitWarning` for several spikes
        of one neuron in one step, and, in a dtype narrower than float64, an error where
        the run's own rounding would put a spike on another step than the exact one."""
        rows = _rows_on_host(self.times, self.residual, dt)
        if rows is None or rows.size == 0:
            return ()
        self._warn_shared_steps(rows, dt)
        if jnp.finfo(self.times.dtype).bits >= 64:
            return ()
        step_dt = np.asarray(dt, self.times.dtype)
        run = np.rint(np.asarray(self.times) / step_dt)  # as the step computes it
        return (
            val.Check(
                run != rows,
                {"spike time": np.asarray(self.times), "dt": np.asarray(dt)},
                f"SpikeTimes in {self.times.dtype} cannot place every spike on its step "
                "(t / dt rounds to the next step)",
                "enable float64 (jax.config.update('jax_enable_x64', True)), or pass "
                "SpikeTimes.raster(n_steps, dt), exact on the host, through inputs=",
            ),
        )

    def _warn_shared_steps(self, rows: np.ndarray, dt) -> None:
        finite = np.isfinite(rows)  # the non-finite are refused by `constraints`
        rows, cells = rows[finite], np.asarray(self.indices)[finite]
        times = np.asarray(self.times)[finite]
        key = rows.astype(np.int64) * self.n + cells  # the spikes are in time order
        same = np.flatnonzero(np.diff(key) == 0)
        if same.size:
            k = same[0]
            warn_unit(
                f"SpikeTimes puts {same.size + np.unique(key[same]).size} spikes into steps "
                f"they share with another spike of the same neuron (first: neuron "
                f"{cells[k]}, spikes at {float(times[k]):g} and "
                f"{float(times[k + 1]):g} ms, both in step {int(rows[k])} of dt={dt:g} "
                "ms). Spike times are in ms: if they are in seconds, multiply them by 1000; "
                "if bursts within a step are meant (they are counted), silence this with "
                "warnings.filterwarnings('ignore', category=jsyn.UnitWarning)."
            )

    def raster(self, n_steps: int, dt) -> Float[Array, "time n"]:
        """Spike counts per step, shape `(n_steps, n)`: row `i` holds the spikes at
        `t_i = i dt` (nearest step), the same counts a run of `n_steps` steps emits.
        Pass it to a group through `inputs=` (`jsyn.Network`'s inputs of a group) or to a
        synapse as its drive.

        Every spike must fall inside the window, `round(t / dt) < n_steps`: a spike past
        its end is an error, never silently dropped (pass a larger `n_steps`, or leave
        the later spikes out of `times`). `dt` must be finite and > 0 ms. With known
        times and `dt` the rows are computed on the host in float64 (exact whatever the
        dtype); under `jit` or `vmap` in the dtype of `times`, and the checks run with
        the computation (`eqx.error_if`)."""
        n_steps = as_count(n_steps, "SpikeTimes.raster's n_steps")
        step = val.time_step(dt)
        host = _rows_on_host(self.times, self.residual, dt)
        if host is not None:
            self._warn_shared_steps(host, dt)
            rows = jnp.asarray(np.minimum(host, n_steps), jnp.int32)  # past the end: dropped
        else:
            ok_dt = jnp.where(step.bad, 1.0, dt)  # a safe divisor; a bad dt is refused below
            rows = jnp.round((self.times + self.residual) / ok_dt).astype(jnp.int32)
        late = val.Check(
            (rows >= n_steps) if host is None else (host >= n_steps),
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
        """Emit the spikes of step `i`, those with `round(t / dt) == i`: the first found by
        bisection over the spikes in time order, then a loop over this step's spikes."""
        total = self.times.shape[0]
        if total == 0:
            return SpikeTimesState(i=state.i + 1, spikes=state.spikes), state.spikes

        def row(k):  # the step of spike k, as dt_constraints checks it
            return jnp.round(self.times[jnp.minimum(k, total - 1)] / dt).astype(jnp.int32)

        def halve(_, bounds):  # keep row(lo - 1) < i <= row(hi) (with row(total) = inf)
            lo, hi = bounds
            mid = (lo + hi) // 2
            before = row(mid) < state.i
            return jnp.where(before, mid + 1, lo), jnp.where(before, hi, mid)

        start = jnp.zeros((), jnp.int32), jnp.full((), total, jnp.int32)
        first, _ = jax.lax.fori_loop(0, total.bit_length(), halve, start)

        def due(carry):
            k, _ = carry
            return (k < total) & (row(k) == state.i)

        def emit(carry):
            k, counts = carry
            return k + 1, counts.at[self.indices[k]].add(1)

        counts = jnp.zeros(state.spikes.shape, jnp.int32)
        _, counts = jax.lax.while_loop(due, emit, (first, counts))
        spikes = counts.astype(state.spikes.dtype)
        return SpikeTimesState(i=state.i + 1, spikes=spikes), spikes


class SpikeInputState(eqx.Module):
    """State of `SpikeInput`: the last step's `spikes`."""

    spikes: Float[Array, "*n"]


class SpikeInput(AbstractNeuron):
    r"""A group whose spikes are given step by step from outside: in a `jsyn.Network`,
    through `inputs=` (a dict by group name of spike counts with time leading, shape
    `(time, n)`), the way to replay a raster such as `SpikeTimes.raster(n_steps, dt)`:

    ```python
    net = jsyn.Network({"in": (jsyn.SpikeInput(), 100), "cells": (jsyn.LIF(), 10)}, ...)
    jsyn.simulate(net, {"in": src.raster(n_steps, dt)}, dt)
    ```

    Its `step(state, x, dt)` returns `x` as the step's spikes (counts, >= 0, as
    `SpikeTimes` emits them; `0` where no input is given). A projection into this group
    would add its current to `x`: give it none. The raster costs `n` numbers per step in
    memory; `SpikeTimes` costs only its spikes.
    """

    def constraints(self):
        return ()  # no parameters

    def init_state(self, n: Shape, *, dtype=None) -> SpikeInputState:
        return SpikeInputState(spikes=zeros(n, dtype))

    def step(self, state: SpikeInputState, x, dt) -> tuple[SpikeInputState, Float[Array, "*n"]]:
        spikes = jnp.broadcast_to(jnp.asarray(x, state.spikes.dtype), state.spikes.shape)
        return SpikeInputState(spikes=spikes), spikes


class PoissonState(eqx.Module):
    """State of `Poisson`: the PRNG `key` of the next step and the last step's `spikes`."""

    key: Key[Array, "*streams"] = axis(STREAM)  # one per trial in jsyn.trials
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

    **Units.** Rates are in Hz, as in Brian2, BrainPy and NEST. Rates that are all below
    1 Hz (and not all 0) are most likely in 1/ms (`Poisson(0.02)` meant as 20 Hz fires
    once in 50 s): built with known values, they give a `jsyn.UnitWarning` (silence it
    with `warnings.filterwarnings("ignore", category=jsyn.UnitWarning)` where such slow
    rates are meant).
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

    def __check_init__(self):
        rates = val.concrete(resolve(self.rates))
        if rates is None or rates.size == 0 or not np.all(np.isfinite(rates)):
            return  # traced, or refused by the checks of the run
        if 0 < rates.max() < 1:
            warn_unit(
                f"Poisson rates are in Hz and these are all below 1 Hz (max {rates.max():g} "
                f"Hz): a group of {rates.size} fires about {rates.sum():.3g} spikes per second "
                "in all. If they are in 1/ms (or kHz), multiply by 1000; if such slow rates "
                "are meant, silence this with warnings.filterwarnings('ignore', "
                "category=jsyn.UnitWarning)."
            )

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
