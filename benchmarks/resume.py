"""The cost of `simulate(..., checkpoint_to=...)` (runs that survive being killed) against the
one-scan run.

The COBA 4k network of `coba.py` for `--seconds` of biological time (default 5 s: 50 000
steps), recording every 10 ms the spike count of that step and the potentials of every
cell, run three ways, alternating, after compiling each:

- `one scan`: `jsyn.simulate` without checkpoints (the record in memory);
- `checkpoints, default`: `checkpoint_to=` with the default interval (`"10min"` of wall
  time): the run cut into about 200 chunks of at least 10 000 steps (60 s: 60 chunks), the
  record written to `.npy` files chunk by chunk, and, for a run shorter than the interval,
  one checkpoint at the end;
- `checkpoints, every chunk`: `checkpoint_every=<chunk>`: a checkpoint after every chunk
  (the state written with `jsyn.save`, record files and checkpoint fsynced, renamed into
  place).

Prints the median and minimum wall time of the repeats, the overhead of each against the one
scan (of the medians, and the median of each repeat's against the one scan run just before
it: on a shared machine the load drifts between repeats), the process's CPU time (all its
threads: less sensitive than wall time to other processes), and the cost of one checkpoint
((every chunk - default) / (chunks - 1)) against the default interval.

    python benchmarks/resume.py [--seconds 5] [--repeats 5] [--dir /tmp]

(from `benchmarks/`, which holds `batch.py`).
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
    load = os.getloadavg()
    wall = {name: [] for name in variants}
    cpu = {name: [] for name in variants}  # the process's CPU time, all its threads
    for _ in range(args.repeats):
        for name, kw in variants.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            run(**kw)
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    shutil.rmtree(folder)

    print(
        f"device: {jax.devices()[0].device_kind}; jax {jax.__version__}; load average "
        f"{' '.join(f'{x:.2f}' for x in load)} (before), "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} (after the runs)"
    )
    print(
        f"COBA 4k, {steps} steps, {chunks} chunks of {chunk} steps, {args.repeats} repeats. "
        "Wall: median, min, overhead of the median, median of the paired overheads (each "
        "repeat against the one scan just before it); CPU time of the process: median, "
        "overhead of the median"
    )
    base, base_cpu = statistics.median(wall["one scan"]), statistics.median(cpu["one scan"])
    for name in variants:
        ts, cs = wall[name], cpu[name]
        med, med_cpu = statistics.median(ts), statistics.median(cs)
        paired = statistics.median(t / b - 1 for t, b in zip(ts, wall["one scan"]))
        over, over_cpu = med / base - 1, med_cpu / base_cpu - 1
        print(
            f"  {name:26s} {med:8.3f} s {min(ts):8.3f} s {100 * over:+7.2f} % "
            f"{100 * paired:+7.2f} %   cpu {med_cpu:8.3f} s {100 * over_cpu:+7.2f} %"
        )
    print("  all wall times (s):")
    for name in variants:
        print(f"    {name:26s} " + " ".join(f"{t:.2f}" for t in wall[name]))
    default = statistics.median(wall["checkpoints, default"])
    each = statistics.median(wall["checkpoints, every chunk"])
    if chunks > 1:
        per_write = (each - default) / (chunks - 1)
        print(
            f"  one checkpoint: {1000 * per_write:.2f} ms (every chunk - default, medians, / "
            f"{chunks - 1}); at the default interval ({_resume.DEFAULT_INTERVAL}) that is "
            f"{100 * per_write / when.seconds:.4f} % of a long run"
        )


if __name__ == "__main__":
    main()
