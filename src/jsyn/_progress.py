"""`jsyn.simulate(..., progress=True)`: the run as a sequence of compiled chunks of equal
length, the state carried from one to the next, with a `tqdm` progress bar in between.

Each chunk scans the same step as the one-scan run and writes its records straight into
preallocated buffers (donated, so updated in place), so the results are bitwise those of
one scan and the record is never copied. Every chunk has the same length, so one compiled
function serves them all; a last, shorter chunk compiles once more (cached like the first).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from tqdm import tqdm

from ._component import as_count

DEFAULT_CHUNKS = 100
"""A run with `progress=True` is cut into about this many chunks unless told otherwise."""


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


def run_chunked(make_body, blocks, system, state, inputs, dt, record, T: int, every: int, chunk):
    """The run of `simulate` in chunks of `chunk` steps, with a progress bar on stderr.

    `make_body(system, dt, record, every)` is the scan body over blocks of `every` steps
    (recording the last), `blocks(inputs, n, every)` cuts `n` steps of inputs into such
    blocks: the same two functions the one-scan run uses."""
    inputs = jax.tree.map(jnp.asarray, inputs)  # on the device once, not at every chunk
    first = jax.tree.map(lambda x: x[:every], inputs)
    shapes = eqx.filter_eval_shape(
        lambda: make_body(system, dt, record, every)(state, _one_block(blocks, first, every))[1]
    )
    buffers = jax.tree.map(lambda s: jnp.zeros((T // every, *s.shape), s.dtype), shapes)
    # counted in steps, shown in biological seconds (1 step = dt / 1000 s)
    scale = float(dt) / 1000.0
    with tqdm(total=T, unit="s", unit_scale=scale, desc="jsyn.simulate (biological time)") as bar:
        for start in range(0, T, chunk):
            n = min(chunk, T - start)
            fixed = (make_body, blocks, system, state, inputs, dt, record, every, n)
            state, buffers = _chunk((*fixed, jnp.asarray(start)), buffers)
            jax.block_until_ready(state)
            bar.update(n)
    return state, buffers


def _one_block(blocks, xs, every):
    return jax.tree.map(lambda x: x[0], blocks(xs, every, every))


@eqx.filter_jit(donate="all-except-first")
def _chunk(fixed, buffers):
    make_body, blocks, system, state, inputs, dt, record, every, n, start = fixed
    body = make_body(system, dt, record, every)
    xs = blocks(jax.tree.map(lambda x: jax.lax.dynamic_slice_in_dim(x, start, n), inputs), n, every)

    def write(carry, x):
        state, buffers, row = carry
        state, rec = body(state, x)
        buffers = jax.tree.map(
            lambda buf, r: jax.lax.dynamic_update_index_in_dim(buf, r, row, 0), buffers, rec
        )
        return (state, buffers, row + 1), None

    (state, buffers, _), _ = jax.lax.scan(write, (state, buffers, start // every), xs, length=n // every)
    return state, buffers
