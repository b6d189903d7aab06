"""STDP with one delay per synapse: the COBA benchmark network (`_ei_network.py`) with pair
STDP on its excitatory synapses, each with its own delay drawn from U(0.1, 2) ms (between
grid points), run with the dense update (`jsyn.Sparse(..., event_driven=False)` on the
excitatory projection: per-synapse traces and arrivals, every synapse each step) and the
event-driven one (`jsyn.Sparse.learn_delayed`: traces per neuron and a history of the
presynaptic ones), alternating in one process; for scale, the same network with one delay
for all (their mean, event-driven: `jsyn.Sparse.learn`).

    taskset -c 0 python benchmarks/plasticity_delays.py [--sizes 4000,16000] \
        [--duration 200] [--repeats 3]

Each variant is compiled once (timed apart), then the two are run in turn `repeats` times
from the same initial potentials; the figure is the median run time per step (the whole
network's step). The spike counts and mean weights of the two are printed as a check (in
float32 they may drift apart by rounding, the network being chaotic).
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _ei_network as ei  # noqa: E402

TAU_PRE, TAU_POST = 16.8, 33.7  # ms
A_PLUS = 0.01 * ei.COBA.w_e
MAX_DELAY = 2.0  # ms
VARIANTS = (  # name, event-driven, one delay per synapse, synapses grouped by delay
    ("dense", False, True, False),
    ("events", True, True, True),
    ("events, in flight", True, True, False),
    ("one delay (reference)", True, False, False),
)


def network(n: int, event_driven: bool, per_synapse: bool = True, grouped: bool = True):
    """The COBA network of `ei.network` with STDP and per-synapse delays on "E", whose
    connection is event-driven or not; or (`per_synapse=False`, the reference) one delay
    for all of them, their mean. `grouped=False` drops the groups of synapses by delay
    (as for delays unknown when the projection is built): a step then visits every
    synapse of the neurons with a spike in flight."""
    seed = 0
    import equinox as eqx
    import numpy as np

    import jsyn

    net, _ = ei.network(ei.COBA, n, seed)
    exc = net.projections["E"].conn
    conn = jsyn.Sparse(
        exc.pre_idx, exc.post_idx, exc.n_pre, exc.n_post, exc.w, event_driven=event_driven
    )
    delay = np.random.default_rng(seed).uniform(0.1, MAX_DELAY, exc.n_syn)
    delay = delay if per_synapse else np.mean(delay)
    stdp = jsyn.STDP(
        A_plus=A_PLUS, A_minus=1.05 * A_PLUS, tau_pre=TAU_PRE, tau_post=TAU_POST, w_max=1.2
    )
    old = net.projections["E"]
    proj = jsyn.Projection(
        conn,
        old.synapse,
        old.output,
        pre="cells",
        post="cells",
        pre_slice=old.pre_slice,
        delay=np.asarray(delay, np.float32),
        dt=ei.DT,
        max_delay=MAX_DELAY,
        plasticity=stdp,
    )
    assert proj.transmission.by_events == event_driven
    if not grouped:
        proj = eqx.tree_at(lambda p: p.transmission.groups, proj, None, is_leaf=lambda x: x is None)
    return eqx.tree_at(lambda m: m.projections["E"], net, proj)


def compiled(net, n: int, n_steps: int):
    """`(run, params, initial, compile_s)`: the compiled run (spike count and mean weight
    of "E") and the initial state for repeat `r`."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import jsyn

    state = net.init_state()
    params, static = eqx.partition(net, eqx.is_array)

    @jax.jit
    def run(params, state):
        network = eqx.combine(params, static)

        def count(state, spikes):
            return jnp.sum(spikes["cells"])

        final, counts = jsyn.simulate(
            network, None, ei.DT, state=state, n_steps=n_steps, record=count
        )
        return jnp.sum(counts), jnp.mean(final.projections["E"].w)

    def initial(r):
        V0 = jax.random.uniform(jax.random.key(1 + r), (n,), minval=-60.0, maxval=-50.0)
        return jax.block_until_ready(eqx.tree_at(lambda s: s.groups["cells"].V, state, V0))

    t0 = time.perf_counter()
    fn = run.lower(jax.block_until_ready(params), initial(0)).compile()
    return fn, params, initial, time.perf_counter() - t0


def main(argv=None) -> dict:
    import jax

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4000,16000", help="network sizes N")
    parser.add_argument("--duration", type=float, default=200.0, help="simulated time (ms)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per variant")
    args = parser.parse_args(argv)
    n_steps = int(round(args.duration / ei.DT))
    print(f"COBA + STDP on E with per-synapse delays U(0.1, {MAX_DELAY}) ms, dt = {ei.DT} ms,")
    print(f"{args.duration:g} ms simulated ({n_steps} steps), {jax.devices()[0].platform}")
    print(f"machine: {ei.machine()}; affinity: {ei.pinned()}; {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"load average at the start: {os.getloadavg()}", flush=True)
    results = {}
    for n in args.sizes.split(","):
        n = int(n)
        variants = {}
        for name, event_driven, per_synapse, grouped in VARIANTS:
            net = network(n, event_driven, per_synapse, grouped)
            fn, params, initial, compile_s = compiled(net, n, n_steps)
            states = [initial(r) for r in range(args.repeats)]
            variants[name] = dict(fn=fn, params=params, compile=compile_s, runs=[], out=[])
            variants[name]["states"] = states
        for r in range(args.repeats):  # alternating
            for v in variants.values():
                t = time.perf_counter()
                spikes, w_mean = jax.block_until_ready(v["fn"](v["params"], v["states"][r]))
                v["runs"].append(time.perf_counter() - t)
                v["out"].append((float(spikes), float(w_mean)))
        for name, v in variants.items():
            us = 1e6 * statistics.median(v["runs"]) / n_steps
            rate = statistics.mean(s for s, _ in v["out"]) / n / (args.duration / 1000.0)
            print(
                f"N={n:6d} {name:21s} compile {v['compile']:6.2f} s  {us:9.1f} us/step (median of "
                f"{args.repeats}: {', '.join(f'{t:.2f}' for t in v['runs'])} s)  rate "
                f"{rate:5.2f} Hz  mean w {statistics.mean(w for _, w in v['out']):.4f}",
                flush=True,
            )
        med = {name: statistics.median(v["runs"]) for name, v in variants.items()}
        print(
            f"N={n:6d} dense / events: {med['dense'] / med['events']:.1f}x; events / one "
            f"delay: {med['events'] / med['one delay (reference)']:.1f}x  (load "
            f"{os.getloadavg()})",
            flush=True,
        )
        results[n] = {k: {"runs": v["runs"], "compile": v["compile"]} for k, v in variants.items()}
    return results


if __name__ == "__main__":
    main()
