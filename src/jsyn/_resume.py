r"""Runs that survive being killed: `jsyn.simulate(..., checkpoint_to=path)` (and
`jsyn.sweep`, `TrialBatch.simulate`) run in chunks of steps and leave behind, now and
then, a checkpoint from which `resume=True` continues the run bit for bit.

**On disk.** `path` holds the state after the last checkpointed step (written with
`jsyn.save`: header, `.npy` blocks, SHA-256; its header `info` names the run: `dt`, the
number of steps, the chunk length, the system's structure and a digest of each of its
arrays, the inputs' and the initial state's digests, the jsyn and JAX versions). The folder
`path.records/` holds one `.npy` file per recorded array, time leading, sized for the whole
run from the start and filled chunk by chunk, so the record never has to fit in memory; the
checkpoint keeps a SHA-256 chain over the rows written so far.

**Order of writes.** After each chunk its records are written in place; at a checkpoint the
record files are flushed to the disk (`os.fsync`), and only then is the checkpoint written
(to a temporary file, fsynced, renamed over `path`). A kill at any moment therefore leaves
a whole checkpoint whose records are on the disk; rows written after it are written again
on resume.

**Exactness.** Every chunk has the same length (the last one may be shorter) and starts on
the same grid in the first run and in a resumed one, so a resumed run executes the same
compiled chunks on the same values as the uninterrupted run, and its final state and
records equal that run's bit for bit.

**Cost.** A chunk is one call of a compiled function whose arguments are arrays (the system
split once per run, `_progress.split`), dispatched before the previous chunk's record is
written, so the writes overlap the computation; chunks are long enough (`MIN_CHUNK`) that
their fixed cost stays small.

**Signals.** SIGTERM and SIGUSR1 (a scheduler's warning before it kills the job) stop the
run at the end of the chunk it waits for, with a checkpoint there (`Signals`,
`StoppedBySignal`).
"""

import dataclasses
import functools
import hashlib
import math
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from ._component import as_count
from ._save import describe_leaves, load, load_info, save, stored_array

DEFAULT_INTERVAL = "10min"
"""A checkpoint is written at the first chunk boundary after this much wall time."""

DEFAULT_CHUNKS = 200
"""With a wall-time interval, the run is cut into about this many chunks (a checkpoint can
only be written between two chunks, and a signal waits for the chunk in flight)..."""

MIN_CHUNK = 10_000
"""... of at least this many steps (1 s of biological time at dt = 0.1 ms): each chunk
costs a few milliseconds (a dispatch, and on a busy machine a wait for a core when it ends:
`benchmarks/README.md`), which a short chunk of a short run would feel."""

_KIND = "jsyn checkpoint"
_UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0}


@dataclasses.dataclass(frozen=True)
class Interval:
    """How often a checkpoint is written: every `steps` steps or every `seconds` of wall
    time (one of the two)."""

    steps: int | None = None
    seconds: float | None = None


def interval(every) -> Interval:
    """`checkpoint_every` as an `Interval`: an int (steps) or a string such as `"30s"`,
    `"10min"`, `"2h"` (wall time); `None` gives `DEFAULT_INTERVAL`."""
    every = DEFAULT_INTERVAL if every is None else every
    if isinstance(every, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|min|h)\s*", every)
        if match is None or float(match[1]) <= 0:
            raise ValueError(
                f"checkpoint_every must be a number of steps or a wall time such as '30s', "
                f"'10min' or '2h' (got {every!r}); write a positive number and one of the "
                "units s, min, h."
            )
        return Interval(seconds=float(match[1]) * _UNITS[match[2]])
    if isinstance(every, float):
        raise TypeError(
            f"checkpoint_every must be an int (steps) or a string with a unit (wall time) "
            f"(got the float {every!r}); write checkpoint_every={every!r}s as "
            f"'{every:g}s', or an int number of steps."
        )
    return Interval(steps=as_count(every, "checkpoint_every", minimum=1))


def chunk_length(T: int, every: int, when: Interval, chunk) -> int:
    """The steps per chunk: `chunk` (`progress_chunk`) when given, else the step interval,
    else about `DEFAULT_CHUNKS` chunks of at least `MIN_CHUNK` steps (at most the run); a
    multiple of `every` (`record_every`), and with a step interval, a divisor of it."""
    if chunk is not None:
        chunk = as_count(chunk, "simulate's progress_chunk", minimum=1)
    elif when.steps is not None:
        chunk = when.steps
    else:
        chunk = every * math.ceil(min(T, max(T / DEFAULT_CHUNKS, MIN_CHUNK)) / every)
    if chunk % every:
        raise ValueError(
            f"checkpoints are taken between chunks whose length is a multiple of "
            f"record_every (got a chunk of {chunk} steps, record_every={every}); pick "
            f"checkpoint_every (or progress_chunk) a multiple of {every}."
        )
    if when.steps is not None and when.steps % chunk:
        raise ValueError(
            f"checkpoint_every={when.steps} steps must be a multiple of progress_chunk="
            f"{chunk}; pick a multiple of {chunk}, or drop progress_chunk."
        )
    return chunk


def fingerprint(tree) -> dict:
    """What identifies `tree` in a checkpoint: its structure (classes, static fields,
    shapes, dtypes: `describe_leaves`) and a SHA-256 digest of each stored array, with its
    values when it holds at most 6 (to name them in an error)."""
    values = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        array = stored_array(leaf)
        if array is None:
            continue
        array = np.ascontiguousarray(array)
        digest = hashlib.sha256(array.tobytes()).hexdigest()[:32]
        if array.size == 1:
            shown = repr(array.ravel()[0].item())
        elif array.size <= 6:
            shown = repr(array.tolist())
        else:
            mean = np.mean(array, dtype=np.complex128 if np.iscomplexobj(array) else np.float64)
            shown = f"{array.size} values of mean {mean:.6g} (SHA-256 {digest[:8]})"
        values.append([jax.tree_util.keystr(path), digest, shown])
    return {"structure": [list(e) for e in describe_leaves(tree)], "values": values}


def _first_difference(what: str, theirs: dict, ours: dict) -> str | None:
    """How fingerprint `ours` differs from the checkpoint's `theirs`, or `None`."""
    for a, b in zip(theirs["structure"] + [None], ours["structure"] + [None]):
        if a != b:
            had, has = ("nothing" if e is None else f"{e[0] or '<root>'}: {e[1]}" for e in (a, b))
            return f"{what} in structure: the checkpoint's has {had}, this one {has}"
    for a, b in zip(theirs["values"], ours["values"]):
        if a != b:
            where = a[0] or "<root>"
            return f"{what} at {where}: the checkpoint's holds {a[2]}, this one {b[2]}"
    return None


def _mismatch(info: dict, identity: dict) -> str | None:
    """The first way the run described by `identity` differs from the checkpoint's."""
    names = {
        "system": "the system differs",
        "inputs": "the inputs differ",
        "start": "the initial state (or key) differs",
    }
    for name, ours in identity.items():
        theirs = info.get(name)
        if name in names:
            found = _first_difference(names[name], theirs, ours) if theirs else "missing"
            if found:
                return found
        elif theirs != ours:
            return f"{name} differs: the checkpoint's run has {theirs!r}, this one {ours!r}"
    return None


@functools.partial(jax.jit, static_argnums=(2, 3))
def _slice(inputs, start, n: int, axis: int):
    """Steps `start ... start + n - 1` of `inputs` (time on `axis`): one compiled slice, one
    dispatch, for every chunk of length `n` (the start is an argument, not a constant)."""
    return jax.tree.map(lambda x: jax.lax.dynamic_slice_in_dim(x, start, n, axis), inputs)


SIGNALS = ("SIGTERM", "SIGUSR1")
"""The signals a checkpointed run catches, where the process would die of them: SLURM sends
SIGTERM before it kills a job (preemption, time limit) and, with `--signal=USR1@<seconds>`,
SIGUSR1 that many seconds earlier."""


class StoppedBySignal(SystemExit):
    """A checkpointed run (`checkpoint_to=`) caught SIGTERM or SIGUSR1, finished the chunk
    it was waiting for and wrote a checkpoint at its end: run the same call with
    `resume=True` to continue. A `SystemExit`, so that `except Exception` does not swallow
    it; uncaught, it ends the program with its message and exit status 1.

    **Attributes:** `signal` (a `signal.Signals`), `step` (the steps done and checkpointed),
    `n_steps` (of the whole run), `path` (the checkpoint)."""

    def __init__(self, signum: int, step: int, n_steps: int, path: Path):
        self.signal = signal.Signals(signum)
        self.step, self.n_steps, self.path = step, n_steps, path
        super().__init__(
            f"jsyn: stopped by {self.signal.name} after step {step} of {n_steps}, with a "
            f"checkpoint at {path}; run the same call with resume=True to continue."
        )


class Signals:
    """Within the block, SIGTERM and SIGUSR1 (`SIGNALS`) set `caught` (the signal's number)
    instead of killing the process, for a run to checkpoint and stop; after the first one
    caught, or at the end of the block, their handlers are put back as they were, so that
    a second signal kills as before. Only signals whose handler is the default one (kill
    the process) are caught: a handler of the program's own, or an ignored signal, is left
    alone; and only in the main thread (Python runs handlers there alone)."""

    def __init__(self):
        self.caught: int | None = None
        self.previous: dict[int, object] = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for name in SIGNALS:
                number = getattr(signal, name, None)  # no SIGUSR1 on Windows
                if number is not None and signal.getsignal(number) is signal.SIG_DFL:
                    self.previous[number] = signal.signal(number, self._catch)
        return self

    def _catch(self, signum, frame) -> None:
        if self.caught is None:
            self.caught = signum
        self._restore()

    def _restore(self) -> None:
        while self.previous:
            number, handler = self.previous.popitem()
            signal.signal(number, handler)

    def __exit__(self, *exc) -> None:
        self._restore()


def _zeros(shapes):
    """Concrete zeros shaped like `jax.eval_shape`'s output (PRNG keys included): the `like`
    that `jsyn.load` reads a checkpointed state into."""
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


class _Records:
    """The record files of a run: one `.npy` per recorded array, time leading, sized for
    the whole run, with a SHA-256 chain over the rows written so far."""

    def __init__(self, folder: Path, shapes, rows: int, axis: int, fresh: bool):
        leaves, self.treedef = jax.tree.flatten(shapes)
        self.axis = axis
        self.files = [folder / f"{i}.npy" for i in range(len(leaves))]
        rows_of = [s.shape[:axis] + s.shape[axis + 1 :] for s in leaves]
        if fresh:
            folder.mkdir(exist_ok=True)
            for file, s, row in zip(self.files, leaves, rows_of):
                np.lib.format.open_memmap(file, "w+", np.dtype(s.dtype), (rows, *row))
        self.handles, self.offsets, self.row_bytes = [], [], []
        for file, s, row in zip(self.files, leaves, rows_of):
            if not file.is_file():
                self.close()
                raise ValueError(
                    f"the record file {file} beside the checkpoint is missing; restore it, "
                    "or delete the checkpoint to run again from the start."
                )
            f = open(file, "r+b")  # noqa: SIM115 (closed by close())
            self.handles.append(f)
            if _npy_header(f) != ((rows, *row), np.dtype(s.dtype)):
                self.close()
                raise ValueError(
                    f"the record file {file} beside the checkpoint is not the record of this "
                    "run; restore it, or delete the checkpoint to run again from the start."
                )
            self.offsets.append(f.tell())
            self.row_bytes.append(math.prod(row) * np.dtype(s.dtype).itemsize)
        self.chains = [""] * len(leaves)

    def append(self, rec, row: int) -> None:
        """Write the rows of one chunk from row `row` on, and extend the chains."""
        for i, leaf in enumerate(jax.tree.leaves(rec)):
            data = np.ascontiguousarray(np.moveaxis(np.asarray(leaf), self.axis, 0)).tobytes()
            f = self.handles[i]
            f.seek(self.offsets[i] + row * self.row_bytes[i])
            f.write(data)
            self.chains[i] = _chain(self.chains[i], data)

    def sync(self) -> None:
        for f in self.handles:
            f.flush()
            os.fsync(f.fileno())

    def verify(self, rows: int, per_chunk: int, chains: list[str]) -> None:
        """Check that the first `rows` rows are those the checkpoint's chains vouch for."""
        for i, f in enumerate(self.handles):
            chain = ""
            f.seek(self.offsets[i])
            for done in range(0, rows, per_chunk):
                size = min(per_chunk, rows - done) * self.row_bytes[i]
                data = f.read(size)
                if len(data) < size:
                    chain = None
                    break
                chain = _chain(chain, data)
            if chain != chains[i]:
                raise ValueError(
                    f"the record file {self.files[i]} does not hold the {rows} rows its "
                    "checkpoint vouches for (truncated or changed since); restore it, or "
                    "delete the checkpoint to run again from the start."
                )
        self.chains = list(chains)

    def close(self) -> None:
        for f in self.handles:
            f.close()

    def arrays(self):
        """The whole record, memory-mapped read-only, time on the run's record axis."""
        leaves = [np.moveaxis(np.load(f, mmap_mode="r"), 0, self.axis) for f in self.files]
        return jax.tree.unflatten(self.treedef, leaves)


def _npy_header(f) -> tuple | None:
    """The shape and dtype in the header of the `.npy` file `f` (left at its data), or
    `None` when it has no readable header."""
    fmt = np.lib.format
    try:
        major, _ = fmt.read_magic(f)
        read = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
        shape, _, dtype = read(f)
    except ValueError:
        return None
    return shape, dtype


def _chain(chain: str, data: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(chain) + data).hexdigest()


def run(
    advance: Callable,
    state,
    dt,
    *,
    T: int,
    every: int,
    chunk: int,
    path,
    when: Interval,
    resume: bool,
    identity: dict,
    rec_axis: int = 0,
    progress: float | None = None,
):
    """Run `advance` chunk by chunk, writing checkpoints to `path` and the record beside it.

    `advance(state, start, n) -> (state, record_of_chunk)` runs steps `start ... start + n -
    1` (`n` a multiple of `every`) and records every `every`-th one along `rec_axis`; `state`
    may be `None` before the first chunk (the runner builds it). `identity` names the run
    (JSON values and `fingerprint`s under the keys `system`, `inputs`, `start`); a
    checkpoint of another run is refused.

    Each chunk is dispatched before the previous one's record is written, so the disk
    writes overlap the computation. A SIGTERM or SIGUSR1 during the run (`Signals`) stops
    it at the end of the chunk being waited for, with a checkpoint there: `StoppedBySignal`.

    **Returns:** the final state and the record, memory-mapped from its files."""
    if path is None:
        raise ValueError(
            "checkpoint_every and resume go with checkpoint_to=<file>; pass the file to "
            "write the checkpoints to."
        )
    path = Path(path)
    identity = {
        "kind": _KIND,
        "dt": repr(float(dt)),
        "n_steps": T,
        "record_every": every,
        "chunk": chunk,
        "jsyn": version("jsyn"),
        "jax": jax.__version__,
        **identity,
    }
    like, rec_shapes = eqx.filter_eval_shape(advance, state, 0, min(chunk, T))
    per_chunk = chunk // every
    rec_shapes = jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(
            s.shape[:rec_axis] + (T // every,) + s.shape[rec_axis + 1 :], s.dtype
        ),
        rec_shapes,
    )
    folder = path.with_name(path.name + ".records")
    step, rows = 0, 0
    if path.exists():
        if not resume:
            raise ValueError(
                f"a checkpoint exists at {path}; pass resume=True to continue its run, or "
                f"delete it (and {folder.name}) or pick another checkpoint_to to start anew."
            )
        info = load_info(path)
        if info.get("kind") != _KIND:
            raise ValueError(f"{path} is a jsyn save file but not a checkpoint of a run.")
        found = _mismatch(info, identity)
        if found:
            raise ValueError(
                f"the checkpoint {path} is of another run: {found}. Resume with the same "
                "system, inputs, dt, options and initial state, or write to another path."
            )
        state = load(path, {"state": _zeros(like)})["state"]
        step, rows = info["step"], info["rows"]
        records = _Records(folder, rec_shapes, T // every, rec_axis, fresh=False)
        try:
            records.verify(rows, per_chunk, info["chains"])
        except ValueError:
            records.close()
            raise
    else:
        records = _Records(folder, rec_shapes, T // every, rec_axis, fresh=True)

    saved = [step]  # the step of the last checkpoint

    def checkpoint(state, done: int) -> None:
        records.sync()
        info = {**identity, "step": done, "rows": done // every, "chains": records.chains}
        save(path, {"state": state}, info=info)
        saved[0] = done

    bar = tqdm(
        total=T,
        initial=step,
        unit="s",
        unit_scale=float(dt) / 1000.0,
        desc="jsyn.simulate (biological time)",
        delay=progress,
        disable=progress is None,
    )
    clock = _Clock(when, T)
    done = step
    try:
        with Signals() as signals:
            pending = None  # the chunk in flight: dispatch the next before writing it
            for start in range(step, T, chunk):
                if signals.caught and pending is not None:
                    break  # caught between two chunks: finish the one in flight only
                n = min(chunk, T - start)
                state, rec = advance(state, start, n)
                if pending is not None:
                    done_state, done = _finish(*pending, records, checkpoint, clock, bar, signals)
                    if signals.caught:
                        pending = None  # drop the chunk just dispatched
                        break
                pending = (state, rec, start // every, start + n, n)
            if pending is not None:
                done_state, done = _finish(*pending, records, checkpoint, clock, bar, signals)
            if signals.caught and saved[0] != done:  # caught after _finish looked
                checkpoint(done_state, done)
    finally:
        bar.close()
        records.close()
    if signals.caught and done < T:
        raise StoppedBySignal(signals.caught, done, T, path)
    return state, records.arrays()


class _Clock:
    """When a checkpoint is due: every `when.steps` steps, or at the first chunk boundary
    `when.seconds` after the last one; and always at the end of the run."""

    def __init__(self, when: Interval, T: int):
        self.when, self.T, self.last = when, T, time.monotonic()

    def due(self, done: int) -> bool:
        if done == self.T:
            return True
        if self.when.steps is not None:
            return done % self.when.steps == 0
        return time.monotonic() - self.last >= self.when.seconds


def _finish(state, rec, row, done, n, records, checkpoint, clock, bar, signals) -> tuple:
    """Write a finished chunk's records from row `row` on (waiting for the chunk); write a
    checkpoint of its end, step `done`, when one is due or a signal was caught. Returns
    `(state, done)`."""
    records.append(rec, row)
    bar.update(n)
    if signals.caught or clock.due(done):
        checkpoint(state, done)
        clock.last = time.monotonic()
    return state, done


def _length(inputs, n_steps, axis: int, who: str) -> int:
    """The number of steps of a run: the inputs' time axis, or `n_steps` without inputs."""
    leaves = jax.tree.leaves(inputs)
    if not leaves:
        if n_steps is None:
            raise ValueError(f"{who} got no inputs: pass n_steps=<number of steps>.")
        return as_count(n_steps, f"{who}'s n_steps", minimum=1)
    T = int(np.shape(leaves[0])[axis])
    if n_steps is not None and n_steps != T:
        raise ValueError(
            f"{who} got n_steps={n_steps} but inputs with {T} time steps; drop n_steps or "
            "make them agree."
        )
    return T


def resumable_trials(batch, dt, state, inputs, n_steps, record, devices, path, every, resume):
    """`TrialBatch.simulate(..., checkpoint_to=path)`: its run in chunks, each chunk one
    call of `batch.simulate`; the record has its device axis first and time second."""
    T = _length(inputs, n_steps, 0, "TrialBatch.simulate")
    when = interval(every)
    inputs = None if inputs is None else jax.tree.map(jnp.asarray, dict(inputs))
    identity = {
        "runner": "TrialBatch.simulate",
        "system": fingerprint(batch.net),
        "inputs": fingerprint(inputs),
        "start": fingerprint(state),
        "devices": len(jax.devices() if devices is None else devices),
    }

    # Not jitted around: the batch's network stays an argument of the compiled run (as a
    # constant of an outer jit XLA would fold it otherwise, an ulp away from the plain run).
    def advance(state, start, n):
        xs = None if inputs is None else _slice(inputs, np.int32(start), n, 0)
        steps = n if xs is None else None
        return batch.simulate(
            dt, state=state, inputs=xs, n_steps=steps, record=record, devices=devices
        )

    chunk = chunk_length(T, 1, when, None)
    return run(
        advance,
        state,
        dt,
        T=T,
        every=1,
        chunk=chunk,
        path=path,
        when=when,
        resume=resume,
        identity=identity,
        rec_axis=1,
    )


def resumable_sweep(sweep, models, inputs, dt, state, key, options, path, every, resume):
    """`jsyn.sweep(..., checkpoint_to=path)`: its run in chunks, each chunk one call of
    `sweep` (the first builds the members' states from `key`; later ones carry them); the
    record has the members first and time second."""
    if options.pop("checkpoint") is not None:
        raise ValueError(
            "jsyn.sweep takes checkpoint_to or checkpoint, not both: checkpoint nests scans "
            "for gradient memory, checkpoint_to writes the run to disk; drop one of them."
        )
    shared = options["shared_inputs"]
    in_axis = 0 if shared else 1
    T = _length(inputs, options.pop("n_steps"), in_axis, "jsyn.sweep")
    when = interval(every)
    devices = options["devices"]
    inputs = None if inputs is None else jax.tree.map(jnp.asarray, inputs)
    identity = {
        "runner": "jsyn.sweep",
        "system": fingerprint(models),
        "inputs": fingerprint(inputs),
        "start": fingerprint((state, key)),
        "shared_inputs": shared,
        "devices": len(jax.devices() if devices is None else devices),
    }

    def advance(state, start, n):
        xs = None if inputs is None else _slice(inputs, np.int32(start), n, in_axis)
        first = state is None
        steps = n if xs is None else None
        return sweep(
            models, xs, dt, state=state, key=key if first else None, n_steps=steps, **options
        )

    chunk = chunk_length(T, options["record_every"], when, None)
    return run(
        advance,
        state,
        dt,
        T=T,
        every=options["record_every"],
        chunk=chunk,
        path=path,
        when=when,
        resume=resume,
        identity=identity,
        rec_axis=1,
    )
