"""The cost of `simulate(..., progress=True)` against the one-scan run.

Each case runs once as one scan and once in chunks with the progress bar (default chunk
size: about 20 chunks), alternating, after compiling both. Prints the median and minimum of
the repeats and the overhead (progress / one scan - 1). The bar goes to stderr:
`2>/dev/null` keeps the table clean (the bar is still drawn, so its cost is measured).

- `--cases network` (default): the COBA 4k network of `coba.py` for `--seconds` of
  biological time (10 s: 100 000 steps), recording the spike count of each step, and the
  potentials of every cell every 10 ms: runs of a few seconds, the kind a bar is for.
- `--cases synapse`: a DualExpon population driven by a random spike raster (inputs of
  `(steps, n)`, so these runs stay short).

    taskset -c 0 python benchmarks/progress.py [--repeats 7] [--cases network] 2>/dev/null
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


def synapse_cases():
    syn = jsyn.DualExpon(tau_rise=1.5, tau_decay=7.0)
    for n, steps, every in CASES:
        x = jnp.asarray(np.random.default_rng(0).random((steps, n)) < 0.01, jnp.float32)
        yield (
            (n, steps, every),
            {
                "one scan": lambda: jsyn.simulate(syn, x, 0.1, record_every=every),
                "progress": lambda: jsyn.simulate(syn, x, 0.1, record_every=every, progress=True),
            },
        )


def network_cases(seconds: float):
    from batch import coba_network, initial_states

    net, _ = coba_network()
    state = jax.tree.map(lambda x: x[0], initial_states(net, 1))
    steps = int(round(seconds * 10_000))

    def count(state, spikes):
        return jnp.sum(spikes["cells"])

    def V(state, spikes):
        return state.groups["cells"].V

    for record, every in ((count, 1), (V, 100)):
        options = dict(state=state, n_steps=steps, record=record, record_every=every)
        yield (
            (4000, steps, every),
            {
                "one scan": lambda o=options: jsyn.simulate(net, None, 0.1, **o),
                "progress": lambda o=options: jsyn.simulate(net, None, 0.1, progress=True, **o),
            },
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cases", choices=("network", "synapse"), default="network")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(
        f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}"
    )
    print(
        f"{'n':>7} {'steps':>7} {'every':>5} {'impl':>9} {'first s':>8} "
        f"{'median s':>9} {'min s':>8}"
    )
    cases = synapse_cases() if args.cases == "synapse" else network_cases(args.seconds)
    for (n, steps, every), runs in cases:
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
