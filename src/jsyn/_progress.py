"""`jsyn.simulate(..., progress=True)`: the run as a sequence of compiled chunks of equal
length, the state carried from one to the next, with a `tqdm` progress bar in between.

Each chunk scans the same step as the one-scan run and writes its records straight into
preallocated buffers (donated, so updated in place), so the results are bitwise those of
one scan and the record is never copied. Every chunk has the same length, so one compiled
function serves them all; a last, shorter chunk compiles once more (cached like the first).
"""

import contextlib
import contextvars
import functools
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from ._component import as_count

DEFAULT_CHUNKS = 20
"""A run with `progress=True` is cut into about this many chunks unless told otherwise (each
chunk costs about a millisecond on a CPU: `benchmarks/README.md`)."""

AUTO_DELAY = 1.0
"""Seconds before a bar turned on by `by_default` appears (shorter runs show none)."""

_AUTO = contextvars.ContextVar("jsyn_progress_by_default", default=False)


@contextlib.contextmanager
def by_default(on: bool = True):
    """Within the block, `simulate(progress=None)` (its default) shows a bar for runs that
    take longer than `AUTO_DELAY` seconds, outside `jit`/`vmap`/`grad` and without
    `checkpoint` (the `jsyn` command line turns this on; `--no-progress` turns it off)."""
    token = _AUTO.set(bool(on))
    try:
        yield
    finally:
        _AUTO.reset(token)


def wanted(progress, checkpoint, *trees) -> float | None:
    """Whether `simulate` shows a bar: `None` for no bar, else the seconds before it
    appears. `progress=None` follows `by_default`; `True` asks for a bar (refused inside a
    trace)."""
    if progress is None:
        auto = _AUTO.get() and checkpoint is None
        traced = any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(trees))
        return AUTO_DELAY if auto and not traced else None
    if progress:
        refuse_traced(*trees)
        return 0.0
    return None


def chunk_length(T: int, every: int, chunk) -> int:
    """The steps per chunk: `chunk` (a multiple of `every`), or by default the multiple of
    `every` that cuts the run into at most `DEFAULT_CHUNKS` chunks."""
    if chunk is None:
        return every * -(-(T // every) // DEFAULT_CHUNKS)
    chunk = as_count(chunk, "simulate's progress_chunk", minimum=1)
    if chunk % every:
        raise ValueError(
            f"simulate's progress_chunk must be a multiple of record_every (got "
            f"progress_chunk={chunk}, record_every={every}); pick a multiple of {every}."
        )
    return chunk


def refuse_traced(*trees) -> None:
    """`progress=True` runs chunks from Python, one after another: impossible inside a
    `jax.jit`, `jax.vmap` or `jax.grad` trace, where nothing runs until the trace ends."""
    if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(trees)):
        raise ValueError(
            "simulate(progress=True) cannot show progress inside jax.jit, jax.vmap or "
            "jax.grad (nothing runs until the trace ends); pass progress=False there, or "
            "call simulate with progress=True outside the transformation."
        )


def run_chunked(step, system, state, inputs, dt, record, T: int, every: int, chunk, delay=0.0):
    """The run of `simulate` in chunks of `chunk` steps, with a progress bar on stderr.

    `step(system, dt, record)` is the one-scan run's recording step, `(state, x) ->
    (state, record)`; every `every`-th step records, the others only step `system`, as in
    the one-scan run. The bar appears after `delay` seconds."""
    inputs = jax.tree.map(jnp.asarray, inputs)  # on the device once, not at every chunk
    shapes = eqx.filter_eval_shape(
        lambda: step(system, dt, record)(state, jax.tree.map(lambda x: x[0], inputs))[1]
    )
    buffers = jax.tree.map(lambda s: jnp.zeros((T // every, *s.shape), s.dtype), shapes)
    dynamic, static = split((step, system, inputs, dt, record, every))
    bar = _BioBar(T, float(dt), delay)
    with bar:
        in_flight = []  # dispatch the next chunk before waiting for the last one
        for start in range(0, T, chunk):
            n = min(chunk, T - start)
            state, buffers = _chunk(static, n, dynamic, state, np.int32(start), buffers)
            in_flight.append((state, n))
            if len(in_flight) == 2:
                bar.advance(*in_flight.pop(0))
        bar.advance(*in_flight.pop())
    return state, buffers


class Static:
    """The non-array part of a pytree as a static argument of `jax.jit`: hashed once (its
    tree structure and leaves), compared by identity first, so a call with the same one
    costs a dictionary lookup."""

    __slots__ = ("treedef", "leaves", "_hash")

    def __init__(self, rest):
        leaves, self.treedef = jax.tree.flatten(rest)
        self.leaves = tuple(leaves)
        self._hash = hash((self.treedef, self.leaves))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        return self is other or (
            type(other) is Static
            and self._hash == other._hash
            and self.treedef == other.treedef
            and self.leaves == other.leaves
        )

    def combine(self, dynamic):
        """The whole pytree again, from its arrays `dynamic`."""
        return eqx.combine(dynamic, jax.tree.unflatten(self.treedef, self.leaves))


def split(tree) -> tuple:
    """`(arrays, Static)`: `tree` split once for a run of many calls of one `jax.jit`
    function (what `eqx.filter_jit` does at every call, for ten times the cost of a chunk's
    dispatch). The arrays stay arguments of the compiled function, never constants of it
    (XLA could fold a constant differently from the one-scan run, an ulp away)."""
    dynamic, rest = eqx.partition(tree, eqx.is_array)
    return dynamic, Static(rest)


def seconds(x: float) -> str:
    """Biological seconds for the bar, rounded to 4 significant digits (`1.4`, not
    `1.4000000000000001`)."""
    return f"{x:.4g}"


def describe(done: int, total: int, dt: float, rate: float | None) -> str:
    """The bar's text after `done` of `total` steps of `dt` ms: biological seconds done and
    in all, and `rate`, biological seconds per wall second (`None`: the first chunk is
    still compiling)."""
    scale = dt / 1000.0  # one step in biological seconds
    speed = "compiling" if rate is None else f"{rate:.3g} s per wall s"
    return f"{seconds(done * scale)}/{seconds(total * scale)} s of biological time, {speed}"


class _BioBar:
    """A `tqdm` bar counted in steps and labelled in biological seconds (done, in all, and
    per wall second). It says "compiling" until the first chunk is done; the rate then
    counts from the end of that chunk, so that compilation does not weigh on it."""

    def __init__(self, total: int, dt: float, delay: float):
        self.dt, self.total, self.done = dt, total, 0
        self.started = None  # (wall time, steps done) at the end of the first chunk
        self.created = time.perf_counter()
        self.bar = tqdm(
            total=total,
            desc=self.label(0, None),
            bar_format="{desc} {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]",
            delay=delay,
        )

    def label(self, done: int, rate: float | None) -> str:
        return f"jsyn.simulate: {describe(done, self.total, self.dt, rate)}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.close()

    def advance(self, state, n: int) -> None:
        """Wait for the chunk that ends in `state` (`n` steps), then show it."""
        jax.block_until_ready(state)
        now = time.perf_counter()
        self.done += n
        if self.started is None:  # the first chunk: its rate includes the compilation
            self.started = (now, self.done)
            rate = self.done * self.dt / 1000.0 / max(now - self.created, 1e-9)
        else:
            t0, done0 = self.started
            rate = (self.done - done0) * self.dt / 1000.0 / max(now - t0, 1e-9)
        self.bar.set_description_str(self.label(self.done, rate), refresh=False)
        self.bar.update(n)


@functools.partial(jax.jit, static_argnums=(0, 1), donate_argnums=5)
def _chunk(static, n: int, dynamic, state, start, buffers):
    """`n` steps from step `start`, each `every`-th one recorded into `buffers`."""
    step, system, inputs, dt, record, every = static.combine(dynamic)
    record_step = step(system, dt, record)

    def at(t):  # the inputs of step t, read in place as a scan reads its inputs
        return jax.tree.map(lambda x: jax.lax.dynamic_index_in_dim(x, t, keepdims=False), inputs)

    def write(carry, _):
        state, buffers, t = carry
        if every > 1:  # a loop of static length, as the one-scan run's (none for every=1)
            quiet = lambda i, s: system.step(s, at(t + i), dt)[0]  # noqa: E731
            state = jax.lax.fori_loop(0, every - 1, quiet, state)
        state, rec = record_step(state, at(t + every - 1))
        row = t // every
        buffers = jax.tree.map(
            lambda buf, r: jax.lax.dynamic_update_index_in_dim(buf, r, row, 0), buffers, rec
        )
        return (state, buffers, t + every), None

    (state, buffers, _), _ = jax.lax.scan(write, (state, buffers, start), None, length=n // every)
    return state, buffers
