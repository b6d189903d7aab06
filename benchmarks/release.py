"""The cost of stochastic release: the COBA benchmark network (`_ei_network.py`, Brette et
al. 2007 in BrainPy's normalised form) with `jsyn.StochasticRelease` on every synapse of both
projections, against the same network without it (same wiring, same initial states).

    taskset -c 0 python benchmarks/release.py [--sizes 4000,16000] [--repeats 5] [--p 1.0]

The two networks are compiled once each and timed in alternating rounds (wall and CPU time
of one run of `--duration` ms; medians over the rounds). With `--p 1.0` (default) every
spike is transmitted, so both networks fire at the same rate and only the cost of the
draws differs; a lower p also lowers the rate (and the number of events to deliver).
Results and conditions in `README.md`.
"""

import argparse
import statistics
import time

import _ei_network as ei


def build(n: int, release, seed: int = 0):
    """The COBA network of `_ei_network.jsyn_run`, with `release` on both projections."""
    extra = {"release": release}
    return ei.network(ei.COBA, n, seed, e=extra, i=extra)


def compiled_run(net, n: int, duration: float):
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import jsyn

    n_steps = int(round(duration / ei.DT))
    params, static = eqx.partition(net, eqx.is_array)

    @jax.jit
    def run(params, state):
        final, counts = jsyn.simulate(
            eqx.combine(params, static),
            None,
            ei.DT,
            state=state,
            n_steps=n_steps,
            record=lambda s, spikes: jnp.sum(spikes["cells"]),
        )
        return final, jnp.sum(counts)

    def state_for(seed):
        key = jax.random.key(seed)
        state = net.init_state(key=key) if _stochastic(net) else net.init_state()
        V0 = jax.random.uniform(jax.random.key(seed + 1), (n,), minval=-60.0, maxval=-50.0)
        return eqx.tree_at(lambda s: s.groups["cells"].V, state, V0)

    t = time.perf_counter()
    compiled = run.lower(params, state_for(0)).compile()
    return compiled, params, state_for, time.perf_counter() - t


def _stochastic(net) -> bool:
    return any(p.needs_key for p in net.projections.values())


def main(argv=None):
    import jax

    import jsyn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="4000,16000")
    parser.add_argument("--duration", type=float, default=1000.0, help="simulated ms")
    parser.add_argument("--repeats", type=int, default=5, help="alternating rounds")
    parser.add_argument("--p", type=float, default=1.0, help="release probability")
    args = parser.parse_args(argv)
    print(
        f"COBA with and without StochasticRelease(p={args.p}) on every synapse, "
        f"dt = {ei.DT} ms, {args.duration:g} ms simulated"
    )
    print(f"machine: {ei.machine()}; affinity: {ei.pinned()}; {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"jax {jax.__version__}, device {jax.devices()[0].device_kind}")
    for n in [int(s) for s in args.sizes.split(",")]:
        runs = {}
        for name, release in (("deterministic", None), ("release", jsyn.StochasticRelease(args.p))):
            net, n_syn = build(n, release)
            runs[name] = compiled_run(net, n, args.duration)
        times = {name: ([], [], []) for name in runs}
        for r in range(args.repeats):
            for name, (compiled, params, state_for, _) in runs.items():
                state = jax.block_until_ready(state_for(10 + r))
                wall, cpu = time.perf_counter(), time.process_time()
                _, spikes = jax.block_until_ready(compiled(params, state))
                times[name][0].append(time.perf_counter() - wall)
                times[name][1].append(time.process_time() - cpu)
                times[name][2].append(float(spikes) / n / (args.duration / 1000.0))
        med = {name: [statistics.median(v) for v in t] for name, t in times.items()}
        for name in runs:
            wall, cpu, rate = med[name]
            print(
                f"N={n:6d} ({n_syn} synapses) {name:13s} compile {runs[name][3]:5.2f} s  "
                f"run wall {wall:6.3f} s  cpu {cpu:6.3f} s (medians of {args.repeats})  "
                f"rate {rate:5.2f} Hz"
            )
        d, s = med["deterministic"], med["release"]
        print(
            f"N={n:6d} release / deterministic: wall {s[0] / d[0]:4.2f}x, cpu {s[1] / d[1]:4.2f}x"
        )


if __name__ == "__main__":
    main()
