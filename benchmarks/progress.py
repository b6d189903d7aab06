"""The cost of `simulate(..., progress=True)` against the one-scan run.

A DualExpon population driven by a random spike raster, run once as one scan and once in
chunks with the progress bar (default chunk size: about 100 chunks), alternating, after
compiling both. Prints the median and minimum of the repeats and the overhead
(progress / one scan - 1). The bar goes to stderr: `2>/dev/null` keeps the table clean
(the bar is still drawn, so its cost is measured).

    taskset -c 0 python benchmarks/progress.py [--repeats 7] 2>/dev/null
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import jsyn

CASES = (  # (n synapses, steps, record_every): a short run, then two long ones
    (10_000, 10_000, 1),
    (10_000, 50_000, 100),
    (100, 1_000_000, 1000),
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(
        f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}"
    )
    print(
        f"{'n':>7} {'steps':>7} {'every':>5} {'impl':>9} {'first s':>8} "
        f"{'median s':>9} {'min s':>8}"
    )
    syn = jsyn.DualExpon(tau_rise=1.5, tau_decay=7.0)
    for n, steps, every in CASES:
        x = jnp.asarray(np.random.default_rng(0).random((steps, n)) < 0.01, jnp.float32)
        runs = {
            "one scan": lambda: jsyn.simulate(syn, x, 0.1, record_every=every),
            "progress": lambda: jsyn.simulate(syn, x, 0.1, record_every=every, progress=True),
        }
        first, times = {}, {name: [] for name in runs}
        for name, run in runs.items():
            t0 = time.perf_counter()
            jax.block_until_ready(run())
            first[name] = time.perf_counter() - t0
        for _ in range(args.repeats):
            for name, run in runs.items():
                t0 = time.perf_counter()
                jax.block_until_ready(run())
                times[name].append(time.perf_counter() - t0)
        for name in runs:
            med, mn = np.median(times[name]), np.min(times[name])
            print(
                f"{n:>7} {steps:>7} {every:>5} {name:>9} {first[name]:>8.3f} {med:>9.4f} {mn:>8.4f}"
            )
        ratio = np.median(times["progress"]) / np.median(times["one scan"])
        ratio_min = np.min(times["progress"]) / np.min(times["one scan"])
        print(f"{'':>31} overhead: median {ratio - 1:+.1%}, min {ratio_min - 1:+.1%}")


if __name__ == "__main__":
    main()
