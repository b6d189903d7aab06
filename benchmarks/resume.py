"""The cost of `simulate(..., checkpoint_to=...)` (runs that survive being killed) against the
one-scan run.

The COBA 4k network of `coba.py` for `--seconds` of biological time (default 5 s: 50 000
steps), recording every 10 ms the spike count of that step and the potentials of every
cell, run three ways, alternating, after compiling each:

- `one scan`: `jsyn.simulate` without checkpoints (the record in memory);
- `checkpoints, default`: `checkpoint_to=` with the default interval (`"10min"` of wall
  time): the run cut into about 200 chunks, the record written to `.npy` files chunk by chunk,
  and, for a run shorter than the interval, one checkpoint at the end;
- `checkpoints, every chunk`: `checkpoint_every=<chunk>`: a checkpoint after every chunk
  (the state written with `jsyn.save`, record files and checkpoint fsynced, renamed into
  place).

Prints the median and minimum of the repeats, the overhead of each against the one scan,
the cost of one checkpoint ((every chunk - default) / (chunks - 1)), and the cost at the default
interval for a long run: the chunking overhead plus one checkpoint per 10 minutes.

    python benchmarks/resume.py [--seconds 5] [--repeats 5] [--dir /tmp]
"""

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp

import jsyn
from jsyn import _resume


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where the checkpoints go (default: tmp)")
    args = parser.parse_args()

    from batch import coba_network, initial_states

    net, _ = coba_network()
    state = jax.tree.map(lambda x: x[0], initial_states(net, 1))
    steps = int(round(args.seconds * 10_000))
    every = 100  # 10 ms
    when = _resume.interval(_resume.DEFAULT_INTERVAL)
    chunk = _resume.chunk_length(steps, every, when, None)
    chunks = -(-steps // chunk)

    def record(state, spikes):
        return {"count": jnp.sum(spikes["cells"]), "V": state.groups["cells"].V}

    folder = Path(tempfile.mkdtemp(dir=args.dir))
    path = folder / "run.ckpt"

    def run(**kw):
        if "checkpoint_to" in kw:
            path.unlink(missing_ok=True)
            shutil.rmtree(folder / "run.ckpt.records", ignore_errors=True)
        kw.update(state=state, n_steps=steps, record=record, record_every=every)
        final, rec = jsyn.simulate(net, None, 0.1, **kw)
        jax.block_until_ready(final)
        return rec

    variants = {
        "one scan": dict(),
        "checkpoints, default": dict(checkpoint_to=path),
        "checkpoints, every chunk": dict(checkpoint_to=path, checkpoint_every=chunk),
    }
    for kw in variants.values():  # compile
        run(**kw)
    times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, kw in variants.items():
            start = time.perf_counter()
            run(**kw)
            times[name].append(time.perf_counter() - start)
    shutil.rmtree(folder)

    print(
        f"device: {jax.devices()[0].device_kind}; jax {jax.__version__}; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} (after the runs)"
    )
    print(
        f"COBA 4k, {steps} steps, {chunks} chunks of {chunk} steps, {args.repeats} repeats "
        "(median, min, overhead of the median)"
    )
    base = statistics.median(times["one scan"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:26s} {med:8.3f} s  {min(ts):8.3f} s  {100 * (med / base - 1):+6.2f} %")
    default = statistics.median(times["checkpoints, default"])
    each = statistics.median(times["checkpoints, every chunk"])
    per_write = (each - default) / (chunks - 1)
    interval = when.seconds
    chunking = default / base - 1
    print(
        f"  one checkpoint: {1000 * per_write:.2f} ms; at the default interval "
        f"({_resume.DEFAULT_INTERVAL}) a long run costs {100 * chunking:+.2f} % (chunks and "
        f"record files) + {100 * per_write / interval:.4f} % (checkpoints)"
    )


if __name__ == "__main__":
    main()
