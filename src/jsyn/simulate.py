"""The simulator: one `jax.lax.scan` over time, optionally nested and checkpointed."""

import math
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _validation as val
from .delays import dt_checks

_INPUT_FIX = "clean the inputs (NaN or inf at a time step) before simulating"


def simulate(
    system,
    inputs,
    dt,
    *,
    state=None,
    record: Callable[[Any, Any], Any] | None = None,
    key=None,
    n_steps: int | None = None,
    checkpoint: int | Sequence[int] | None = None,
    record_every: int = 1,
):
    r"""Run `system` over the leading (time) axis of `inputs`.

    Row $i$ of `inputs` is the drive of step $i$, which ends at $t_i = i\,\Delta t$; the
    recorded row $i$ is the output at $t_i$, just after that step's events. One
    `jax.lax.scan`, so `jax.jit`, `jax.vmap` and `jax.grad` apply to the whole run, and a run
    split in two (the second half starting from the first half's final state) equals the
    whole run.

    **Arguments:**
    - `system`: anything with `init_state(n, *, dtype=None)` and
      `step(state, x, dt) -> (state, out)`: a synapse, neuron, source, or a user's module
      composing them.
    - `inputs`: an array or pytree whose leaves share the leading time axis (spikes as 0/1
      or counts, currents in pA); `None` for sources that take no input (give `n_steps`).
    - `dt`: the time step (ms), > 0.
    - `state`: the initial state. `None` builds it with
      `system.init_state(n, dtype=dtype)`, `n` and `dtype` taken from the first input leaf
      (shape after the time axis; floating dtype, or JAX's default float for spike counts).
    - `record`: `None` records the step outputs (for a synapse: `g`, shape `(time, *n)`);
      a callable `record(state, out) -> pytree` records only what it returns.
    - `key`: a PRNG key handed to `init_state` when `state` is `None`, for stochastic
      systems such as `Poisson`.
    - `n_steps`: the number of steps when `inputs` is `None`.
    - `checkpoint`: `None` (default) runs one plain scan, whose reverse-mode gradient
      stores the residuals of every step, so its memory grows with the number of steps.
      An int $k \ge 1$ nests $k$ scans of about $T^{1/k}$ steps each and wraps the inner
      ones in `jax.checkpoint`: a gradient then stores about $k\,T^{1/k}$ states and
      recomputes the rest (about one extra forward pass per level). A sequence of ints
      gives the lengths of the nested scans, outermost first (their product must be at
      least the number of steps). Steps past the end (to fill the product) leave the
      state unchanged and are not recorded. Values and gradients equal the plain run's.
    - `record_every`: keep the record of every k-th step only (steps k-1, 2k-1, ...), so
      memory stays small over long runs; the number of steps must be a multiple of it.
      Not combined with `checkpoint`.

    **Returns:** `(final_state, recorded)`: the state after the last step (pass it as
    `state=` to continue the run exactly) and the recorded pytree, time leading.

    **Errors:** bad parameters (for example `tau <= 0`), `dt <= 0`, NaN or infinite
    inputs and a state that does not fit the inputs raise a `ValueError` naming the value
    and the fix. Under `jit`/`vmap`/`grad`, where values are not known while tracing,
    the value checks run with the computation (`eqx.error_if`); set `EQX_ON_ERROR=nan`
    or `off` to change that.
    """
    leaves = jax.tree.leaves(inputs)
    if inputs is None or not leaves:
        if n_steps is None:
            raise ValueError("simulate got no inputs: pass n_steps=<number of steps>.")
        T = int(n_steps)
    else:
        T = _time_length(leaves)
        if n_steps is not None and int(n_steps) != T:
            raise ValueError(
                f"simulate got n_steps={n_steps} but inputs with {T} time steps; "
                "drop n_steps or make them agree."
            )
    if state is None:
        state = _initial_state(system, leaves, key)
    elif key is not None:
        raise ValueError("simulate takes key only to build the state; with state= given, drop key.")
    else:
        _check_state(system, state, leaves)

    lengths = checkpoint_lengths(checkpoint, T)
    every = int(record_every)
    if every < 1 or T % every:
        raise ValueError(
            f"simulate needs record_every >= 1 dividing the number of steps (got "
            f"record_every={record_every} for {T} steps); pick a divisor of {T}."
        )
    if every > 1 and lengths is not None:
        raise ValueError(
            "simulate takes record_every or checkpoint, not both (got record_every="
            f"{record_every}, checkpoint={checkpoint!r}); drop one of them."
        )
    checks = val.collect(system) + dt_checks(system, dt) + _step_checks(dt) + _input_checks(inputs)
    traced = val.raise_concrete(checks)
    return _run(system, state, inputs, dt, record, T, traced, lengths, every)


@eqx.filter_jit
def _run(system, state, inputs, dt, record, T, traced, lengths, every=1):
    # Thread the run-time checks onto the (small) state; onto the inputs only for
    # systems without state arrays.
    if jax.tree.leaves(state):
        state = val.guard(state, traced)
    else:
        inputs = val.guard(inputs, traced)
    if every > 1:
        return _thinned_scan(system, state, inputs, dt, record, T, every)
    return scan(system, state, inputs, dt, record, T, lengths)


def _recording_step(system, dt, record):
    """The scan body: one step of `system`, recording its output or `record(state, out)`."""

    def body(carry, x):
        carry, out = system.step(carry, x, dt)
        return carry, out if record is None else record(carry, out)

    return body


def _thinned_scan(system, state, inputs, dt, record, T: int, every: int):
    """A scan over blocks of `every` steps that records only the last step of each."""

    body = _recording_step(system, dt, record)

    def block(carry, xs):
        def quiet(c, x):
            return system.step(c, x, dt)[0], None

        head = jax.tree.map(lambda x: x[:-1], xs)
        carry, _ = jax.lax.scan(quiet, carry, head, length=every - 1)
        return body(carry, jax.tree.map(lambda x: x[-1], xs))

    blocks = jax.tree.map(lambda x: x.reshape(T // every, every, *x.shape[1:]), inputs)
    return jax.lax.scan(block, state, blocks, length=T // every)


def checkpoint_lengths(checkpoint, T: int) -> tuple[int, ...] | None:
    """The lengths of the nested scans asked for by `simulate(..., checkpoint=...)`."""
    if checkpoint is None:
        return None
    if isinstance(checkpoint, bool) or not (
        isinstance(checkpoint, int | Sequence) or hasattr(checkpoint, "__index__")
    ):
        raise TypeError(
            f"checkpoint must be None, a number of levels or a sequence of scan lengths "
            f"(got {checkpoint!r}); for example checkpoint=2."
        )
    if not isinstance(checkpoint, Sequence):
        levels = int(checkpoint)
        if levels < 1:
            raise ValueError(
                f"checkpoint must be >= 1 nested levels (got {levels}); pass None for a plain scan."
            )
        base = max(1, math.ceil(max(T, 1) ** (1.0 / levels)))
        inner = (base,) * (levels - 1)
        return (max(1, math.ceil(T / math.prod(inner))), *inner)
    lengths = tuple(int(n) for n in checkpoint)
    if not lengths or min(lengths) < 1 or math.prod(lengths) < T:
        raise ValueError(
            f"checkpoint lengths must be ints >= 1 whose product covers the {T} steps "
            f"(got {lengths}, product {math.prod(lengths) if lengths else 0}); "
            "pass a number of levels instead, for example checkpoint=2."
        )
    return lengths


def scan(system, state, inputs, dt, record, T: int, lengths: tuple[int, ...] | None = None):
    """The run itself, without the checks: a plain `lax.scan`, or nested scans whose inner
    levels are rematerialised (`jax.checkpoint`) when `lengths` is given."""

    body = _recording_step(system, dt, record)

    if lengths is None:
        return jax.lax.scan(body, state, inputs, length=T)

    total = math.prod(lengths)
    pad = total - T

    def padded(leaf):
        leaf = jnp.asarray(leaf)
        return jnp.concatenate([leaf, jnp.zeros((pad, *leaf.shape[1:]), leaf.dtype)])

    if pad:
        inputs = jax.tree.map(padded, inputs)

        def masked(carry, xs):
            x, valid = xs
            new, out = body(carry, x)
            return jax.tree.map(lambda a, b: jnp.where(valid, a, b), new, carry), out

        xs = (inputs, jnp.arange(total) < T)
        step = masked
    else:
        xs = inputs
        step = body

    def nest(carry, xs, level):
        if level == len(lengths) - 1:
            return jax.lax.scan(step, carry, xs, length=lengths[level])
        inner = jax.checkpoint(lambda c, x: nest(c, x, level + 1))
        return jax.lax.scan(inner, carry, xs, length=lengths[level])

    xs = jax.tree.map(lambda leaf: leaf.reshape(*lengths, *leaf.shape[1:]), xs)
    final, out = nest(state, xs, 0)
    out = jax.tree.map(lambda leaf: leaf.reshape(total, *leaf.shape[len(lengths) :])[:T], out)
    return final, out


def _time_length(leaves) -> int:
    lengths = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in leaves}
    if None in lengths:
        raise ValueError(
            "simulate needs inputs with a leading time axis (got a 0-d leaf); "
            "give arrays of shape (time, ...)."
        )
    if len(lengths) != 1:
        raise ValueError(
            f"simulate needs every input leaf to share the time axis (got lengths "
            f"{sorted(lengths)}); make them equal."
        )
    return lengths.pop()


def _initial_state(system, leaves, key):
    if leaves:
        first = leaves[0]
        n = tuple(np.shape(first)[1:])
        dtype = jnp.result_type(first)
        dtype = dtype if jnp.issubdtype(dtype, jnp.floating) else None
    else:
        n, dtype = None, None
    kwargs = {} if key is None else {"key": key}
    try:
        return system.init_state(n, dtype=dtype, **kwargs)
    except TypeError as err:
        if key is not None and "key" in str(err):
            raise TypeError(
                f"{type(system).__name__}.init_state takes no key: it is deterministic, drop key."
            ) from err
        if key is None and "key" in str(err):
            raise TypeError(
                f"{type(system).__name__} is stochastic: pass simulate(..., key=jax.random.key(0))"
                " or state=system.init_state(n, key=...)."
            ) from err
        raise


def _check_state(system, state, leaves):
    """A given state must have the structure and shapes `init_state` gives for these
    inputs (for systems whose size follows the inputs)."""
    if not leaves:
        return
    n = tuple(np.shape(leaves[0])[1:])
    try:
        expected = eqx.filter_eval_shape(lambda: system.init_state(n))
    except (TypeError, ValueError):
        return  # stochastic or fixed-size systems: their own step checks shapes
    got_struct, want_struct = jax.tree.structure(state), jax.tree.structure(expected)
    if got_struct != want_struct:
        raise ValueError(
            f"simulate got a state that does not match {type(system).__name__}: "
            f"structure {got_struct} but expected {want_struct}; "
            "build it with system.init_state(n) or take the final state of an earlier run."
        )
    for (path, got), want in zip(
        jax.tree_util.tree_leaves_with_path(state), jax.tree.leaves(expected)
    ):
        if np.shape(got) != want.shape:
            raise ValueError(
                f"simulate got a state whose {jax.tree_util.keystr(path)} has shape "
                f"{np.shape(got)}, but inputs of shape (time, {', '.join(map(str, n))}) "
                f"need {want.shape}; build it with system.init_state({n}) or match the inputs."
            )


def _step_checks(dt) -> list[val.Check]:
    dt = np.asarray(dt) if isinstance(dt, int | float) else jnp.asarray(dt)
    return [
        val.Check(
            ~(jnp.isfinite(dt) & (dt > 0)),
            dt,
            "dt must be finite and > 0 ms",
            "pass the time step in ms, e.g. dt=0.1",
        )
    ]


def _input_checks(inputs) -> list[val.Check]:
    checks = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(inputs):
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.inexact):
            continue
        where = f"inputs{jax.tree_util.keystr(path)} must be finite (NaN or inf found)"
        if val.concrete(leaf) is None:  # traced: one reduction, no per-step detail
            bad = ~jnp.all(jnp.isfinite(leaf))
            checks.append(val.Check(bad, bad, where, _INPUT_FIX))
        else:
            finite = np.isfinite(np.asarray(leaf)).reshape(np.shape(leaf)[0], -1)
            bad_steps = ~finite.all(axis=1)
            steps = np.arange(bad_steps.shape[0])
            checks.append(val.Check(bad_steps, {"time step": steps}, where, _INPUT_FIX))
    return checks
