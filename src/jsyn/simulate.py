"""The simulator: one `jax.lax.scan` over time, optionally nested and checkpointed."""

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _progress, _resume, _validation as val
from ._component import AbstractSystem, as_count, float_dtype
from ._record import recorder

_INPUT_FIX = "clean the inputs (NaN or inf at a time step) before simulating"


def simulate(
    system,
    inputs,
    dt,
    *,
    state=None,
    record: Callable[[Any, Any], Any] | str | Sequence[str] | None = None,
    key=None,
    n_steps: int | None = None,
    checkpoint: int | Sequence[int] | None = None,
    record_every: int = 1,
    progress: bool | None = None,
    progress_chunk: int | None = None,
    checkpoint_to=None,
    checkpoint_every: int | str | None = None,
    resume: bool = False,
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
      or counts, currents in pA), at least one step; float32 or float64 (half precision
      is refused). `None` for sources that take no input (give `n_steps`).
    - `dt`: the time step (ms), > 0.
    - `state`: the initial state. `None` builds it with
      `system.init_state(n, dtype=dtype)`, `n` and `dtype` taken from the first input leaf
      (shape after the time axis; floating dtype, or JAX's default float for spike counts).
      A given state is checked: finite, and each field inside its declared range (for
      example `STP`'s `u` and `x` in [0, 1]).
    - `record`: what to keep of each step.
        - `None` (or `"out"`) records the step outputs (for a synapse: `g`, shape
          `(time, *n)`);
        - `"state"` records the whole state after each step;
        - the name of a state field (`"g"`, `"x"`, `"V"`, ...), or a dotted path into the
          state or the outputs (`"groups.E.V"`, `"projections.ee.g"`, `"out.E"` for a
          `Network`), records that field; a tuple of names records a dict of them;
        - a callable `record(state, out) -> pytree` records only what it returns.

      Names compile once per system structure, and so does a callable defined once (or
      recreated with the same code and equal captured values: Python numbers, strings,
      tuples of them, modules, functions and JAX arrays); a callable capturing other
      values (lists, NumPy arrays) compiles anew at each call.
    - `key`: a PRNG key handed to `init_state` when `state` is `None`, for stochastic
      systems such as `Poisson`.
    - `n_steps`: the number of steps (an int >= 1) when `inputs` is `None`.
    - `checkpoint`: `None` (default) runs one plain scan, whose reverse-mode gradient
      stores the residuals of every step, so its memory grows with the number of steps.
      An int $k \ge 1$ nests $k$ scans of about $T^{1/k}$ steps each and wraps the inner
      ones in `jax.checkpoint`: a gradient then stores about $k\,T^{1/k}$ states and
      recomputes the rest (about one extra forward pass per level). Each inner scan needs
      at least 2 steps, so $k \le 1 + \lfloor\log_2 T\rfloor$. A sequence of ints
      gives the lengths of the nested scans, outermost first (their product must be at
      least the number of steps). Steps past the end (to fill the product) leave the
      state unchanged and are not recorded. Values and gradients equal the plain run's.
    - `record_every`: keep the record of every k-th step only (steps k-1, 2k-1, ...), so
      memory stays small over long runs; an int dividing the number of steps. Not
      combined with `checkpoint`.
    - `progress`: `True` shows a progress bar on stderr (`tqdm`: biological time done,
      wall time, biological seconds per wall second). The run is then cut into compiled
      chunks of `progress_chunk` steps, the state carried from one to the next; the
      results are bitwise those of one scan. All chunks share one compiled function, and
      a shorter last chunk (when the chunk length does not divide the number of steps)
      compiles once more. Chunks run from Python, one after another, so `progress=True`
      is refused (`ValueError`) inside `jax.jit`, `jax.vmap` or `jax.grad`, and with
      `checkpoint` (a gradient tool). `False` runs one scan, no bar. `None` (default): no
      bar, except under the `jsyn` command line (`jsyn demo`), which shows one for runs
      that take over a second outside those transformations (`--no-progress` turns it
      off).
    - `progress_chunk`: the steps per chunk with `progress=True` or `checkpoint_to`, a
      multiple of `record_every`; by default the run is cut into about 20 chunks (with
      `checkpoint_to`, about 200 of at least 10 000 steps).
    - `checkpoint_to`: a file path: the run survives being killed. It runs in chunks (as
      with `progress=True`, bitwise the same results) and writes its state to this file
      every `checkpoint_every` (atomically: a kill during a write leaves the previous
      checkpoint whole), and its record, chunk by chunk, to `.npy` files in the folder
      `<checkpoint_to>.records/`, so the record need not fit in memory. The record comes
      back as NumPy arrays memory-mapped from those files (read-only). A last checkpoint
      is written at the end. A SIGTERM or SIGUSR1 (a scheduler's warning) during the run,
      where the process has no handler of its own for it, finishes the chunk in flight,
      writes a checkpoint there and raises `jsyn.StoppedBySignal` (a `SystemExit`).
      Refused inside `jax.jit`, `jax.vmap` or `jax.grad`, and with `checkpoint` (gradient
      checkpointing, another thing). See the "Checkpoints" page.
    - `checkpoint_every`: how often to write the checkpoint: an int, every that many steps
      (then also the chunk length), or a wall time `"30s"`, `"10min"` (default), `"2h"`
      (at the first chunk boundary after it).
    - `resume`: with `checkpoint_to`: `True` continues the run from the checkpoint there if
      there is one (and starts from the beginning if there is none), so a job that is
      killed and started again with the same call finishes the run; the final state and
      record equal those of an uninterrupted run bit for bit. The call must name the same
      run (system and its parameters, inputs, `dt`, `n_steps`, `record_every`, chunk
      length, initial state or key, jsyn and JAX versions): a checkpoint of another is
      refused with a `ValueError` naming the first difference, as are truncated or
      corrupt checkpoints and record files. `False` (default) refuses to overwrite an
      existing checkpoint.

    **Returns:** `(final_state, recorded)`: the state after the last step (pass it as
    `state=` to continue the run exactly) and the recorded pytree, time leading.

    **Errors:** bad parameters (for example `tau <= 0` or an infinite one), `dt <= 0`,
    NaN or infinite inputs, inputs outside their range (negative spike counts into `STD`
    or `STP`), a state that does not fit the inputs or holds NaN or out-of-range values,
    and a rate too high for the step (`Poisson`) raise a `ValueError` naming the value and
    the fix; half precision, and non-integer `n_steps`, `record_every` or `checkpoint`,
    a `TypeError`. Under `jit`/`vmap`/`grad`, where values are not known while tracing,
    the value checks run with the computation (`eqx.error_if`); set `EQX_ON_ERROR=nan`
    or `off` to change that.
    """
    delay = _progress.wanted(progress, checkpoint, system, inputs, dt, state, key)
    leaves = jax.tree.leaves(inputs)
    _refuse_half(inputs, "inputs")
    T = _n_steps(leaves, n_steps)
    given = state is not None
    if not given:
        state = initial_state(system, leaves, key)
    elif key is not None:
        raise ValueError("simulate takes key only to build the state; with state= given, drop key.")
    else:
        _check_state(system, state, leaves)
    _refuse_half(state, "state")

    lengths = checkpoint_lengths(checkpoint, T)
    every = as_count(record_every, "simulate's record_every", minimum=1)
    if T % every:
        raise ValueError(
            f"simulate needs record_every >= 1 dividing the number of steps (got "
            f"record_every={record_every} for {T} steps); pick a divisor of {T}."
        )
    if every > 1 and lengths is not None:
        raise ValueError(
            "simulate takes record_every or checkpoint, not both (got record_every="
            f"{record_every}, checkpoint={checkpoint!r}); drop one of them."
        )
    if delay is not None and lengths is not None:
        raise ValueError(
            f"simulate takes progress=True or checkpoint, not both (got checkpoint="
            f"{checkpoint!r}); checkpointing is for gradients, which cannot show progress: "
            "drop one of them."
        )
    checks = entry_checks(system, inputs, dt, state if given else None)
    traced = val.raise_concrete(checks)
    if checkpoint_to is not None:
        _refuse_checkpoint_with(lengths, system, state, inputs, dt)
        when = _resume.interval(checkpoint_every)
        chunk = _resume.chunk_length(T, every, when, progress_chunk)
        identity = {
            "runner": "jsyn.simulate",
            "system": _resume.fingerprint(system),
            "inputs": _resume.fingerprint(inputs),
            "start": _resume.fingerprint(state),
        }
        inputs = jax.tree.map(jnp.asarray, inputs)  # on the device once, not at every chunk
        dynamic, static = _progress.split((system, inputs, dt, recorder(record)))

        def advance(state, start, n):
            return _chunk(static, n, every, dynamic, state, np.int32(start))

        return _resume.run(
            advance,
            state,
            dt,
            T=T,
            every=every,
            chunk=chunk,
            path=checkpoint_to,
            when=when,
            resume=resume,
            identity=identity,
            progress=delay,
        )
    if checkpoint_every is not None or resume:
        raise ValueError(
            "simulate takes checkpoint_every and resume only with checkpoint_to=<file>; "
            "pass the file to write the checkpoints to."
        )
    if delay is not None:
        chunk = _progress.chunk_length(T, every, progress_chunk)
        return _progress.run_chunked(
            recording_step, system, state, inputs, dt, recorder(record), T, every, chunk, delay
        )
    # Inside a trace (jit, vmap, grad) the run is traced inline: a nested jit would only
    # cache the trace, and its boundary hides what XLA could simplify across it (the
    # cotangent of a summed output, a broadcast, becomes an array read at every step).
    run = _run_inline if _is_traced(system, state, inputs, dt) else _run
    return run(system, state, inputs, dt, recorder(record), T, traced, lengths, every)


def _refuse_checkpoint_with(lengths, *trees) -> None:
    if lengths is not None:
        raise ValueError(
            "simulate takes checkpoint_to or checkpoint, not both: checkpoint nests scans "
            "for gradient memory, checkpoint_to writes the run to disk; drop one of them."
        )
    if _is_traced(*trees):
        raise ValueError(
            "simulate(checkpoint_to=...) runs chunks from Python and writes files, which "
            "cannot happen inside jax.jit, jax.vmap or jax.grad; call it outside them."
        )


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _chunk(static, n: int, every: int, dynamic, state, start):
    """Steps `start ... start + n - 1` of a run with `checkpoint_to`: the same scan as the
    one-scan run's, on the inputs of those steps. One compiled function for every chunk of
    `n` steps; the system, inputs and `dt` are its arguments (`_progress.split`), split once
    per run, so a call costs a dispatch, not a walk over the system's pytree."""
    system, inputs, dt, record = static.combine(dynamic)
    xs = jax.tree.map(lambda x: jax.lax.dynamic_slice_in_dim(x, start, n), inputs)
    if every > 1:
        return thinned_scan(system, state, xs, dt, record, n, every)
    return scan(system, state, xs, dt, record, n)


def entry_checks(system, inputs, dt, state=None) -> list[val.Check]:
    """Every value check of a run, made once at its entry: the parameters of every
    component (`constraints()`, finiteness, `dt_constraints(dt)`), `dt`, the inputs
    (finite, and `system.input_constraints(inputs)` where defined) and a given `state`."""
    checks = val.collect(system, dt) + step_checks(dt) + input_checks(inputs)
    if inputs is not None and isinstance(system, AbstractSystem):
        checks += list(system.input_constraints(inputs))
    if state is not None:
        checks += val.state_checks(state)
    return checks


def _n_steps(leaves, n_steps) -> int:
    """The number of steps of a run, from the inputs or `n_steps`: an int >= 1."""
    if n_steps is not None:
        n_steps = as_count(n_steps, "simulate's n_steps", minimum=1)
    if not leaves:
        if n_steps is None:
            raise ValueError("simulate got no inputs: pass n_steps=<number of steps>.")
        return n_steps
    T = _time_length(leaves)
    if T == 0:
        raise ValueError(
            "simulate got inputs with 0 time steps; give at least one step (time leading)."
        )
    if n_steps is not None and n_steps != T:
        raise ValueError(
            f"simulate got n_steps={n_steps} but inputs with {T} time steps; "
            "drop n_steps or make them agree."
        )
    return T


def _refuse_half(tree, where: str) -> None:
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.floating):
            float_dtype(leaf.dtype, f"{where}{jax.tree_util.keystr(path)} dtype")


def _is_traced(*trees) -> bool:
    """Whether any leaf of `trees` is a tracer (inside `jit`, `vmap` or `grad`)."""
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(trees))


def _run_inline(system, state, inputs, dt, record, T, traced, lengths, every=1):
    # Thread the run-time checks onto the (small) initial state, PRNG keys included (a
    # Poisson source reads only its key); onto the inputs for systems without state arrays.
    if val.can_guard(state) or not val.can_guard(inputs):
        state = val.guard(state, traced)
    else:
        inputs = val.guard(inputs, traced)
    if every > 1:
        return thinned_scan(system, state, inputs, dt, record, T, every)
    return scan(system, state, inputs, dt, record, T, lengths)


_run = eqx.filter_jit(_run_inline)


def recording_step(system, dt, record):
    """The scan body: one step of `system`, recording its output or `record(state, out)`."""

    def body(carry, x):
        carry, out = system.step(carry, x, dt)
        return carry, out if record is None else record(carry, out)

    return body


def thinned_scan(system, state, inputs, dt, record, T: int, every: int):
    """A scan over blocks of `every` steps that records only the last step of each."""

    body = recording_step(system, dt, record)

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
    if isinstance(checkpoint, bool | str) or not (
        isinstance(checkpoint, Sequence) or hasattr(checkpoint, "__index__")
    ):
        raise TypeError(
            f"checkpoint must be None, a number of levels or a sequence of scan lengths "
            f"(got {checkpoint!r}); for example checkpoint=2."
        )
    if not isinstance(checkpoint, Sequence):
        levels = as_count(checkpoint, "checkpoint")
        if levels < 1:
            raise ValueError(
                f"checkpoint must be >= 1 nested levels (got {levels}); pass None for a plain scan."
            )
        if levels > T.bit_length():
            raise ValueError(
                f"checkpoint={levels} nests more levels than {T} steps can fill (each inner "
                f"level needs at least 2 steps); pass checkpoint <= {T.bit_length()}."
            )
        base = max(1, math.ceil(max(T, 1) ** (1.0 / levels)))
        inner = (base,) * (levels - 1)
        return (max(1, math.ceil(T / math.prod(inner))), *inner)
    lengths = tuple(as_count(n, "checkpoint lengths") for n in checkpoint)
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

    body = recording_step(system, dt, record)

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


def initial_state(system, leaves, key):
    """`system.init_state` for inputs `leaves` (their trailing shape) and `key`."""
    if leaves:
        first = leaves[0]
        n = tuple(np.shape(first)[1:])
        dtype = jnp.result_type(first)
        dtype = dtype if jnp.issubdtype(dtype, jnp.floating) else None
    else:
        n, dtype = None, None
    kwargs = {} if key is None else {"key": key}
    if isinstance(system, AbstractSystem):  # a jsyn model declares what it takes
        _check_declared(system, n, key)
    return system.init_state(n, dtype=dtype, **kwargs)


def _check_declared(system: AbstractSystem, n, key) -> None:
    """What `system` declares it needs to build its state: a key (`needs_key`), a size
    from the inputs (`sized_by_inputs`)."""
    name = type(system).__name__
    if key is not None and not system.needs_key:
        raise TypeError(f"{name}.init_state takes no key: it is deterministic, drop key.")
    if key is None and system.needs_key:
        raise TypeError(
            f"{system.stochastic_parts()} stochastic: pass simulate(..., key=jax.random.key(0))"
            " or state=system.init_state(n, key=...)."
        )
    if n is None and system.sized_by_inputs:
        raise ValueError(
            f"simulate got no inputs, but {name} takes its size from them: pass inputs of "
            "shape (time, n)."
        )


def _check_state(system, state, leaves):
    """A given state must have the structure and shapes `init_state` gives for these
    inputs (for systems whose size follows the inputs)."""
    if not leaves:
        return
    if not isinstance(system, AbstractSystem) or system.needs_key:
        return  # stochastic or foreign systems: their own step checks shapes
    n = tuple(np.shape(leaves[0])[1:])
    size = n if system.sized_by_inputs else None  # else the size its parameters fix
    expected = eqx.filter_eval_shape(lambda: system.init_state(size))
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


def step_checks(dt) -> list[val.Check]:
    """The checks of a time step `dt`, as `simulate` makes them."""
    return [val.time_step(dt)]


def input_checks(inputs) -> list[val.Check]:
    """The checks of `inputs` (finite numbers), as `simulate` makes them."""
    checks = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(inputs):
        if val.is_key(leaf) or not jnp.issubdtype(jnp.result_type(leaf), jnp.inexact):
            continue
        where = f"inputs{jax.tree_util.keystr(path)} must be finite (NaN or inf found)"
        known = val.known(leaf)  # also under eager grad, to name the time step
        if known is None:
            # traced: one fused reduction (max |x| is NaN or inf exactly when some
            # entry is), not an array of verdicts written out and read back
            bad = ~jnp.isfinite(jnp.max(jnp.abs(leaf), initial=0.0))
            checks.append(val.Check(bad, bad, where, _INPUT_FIX))
        else:
            checks.append(val.each_step(~np.isfinite(known), where, _INPUT_FIX))
    return checks
