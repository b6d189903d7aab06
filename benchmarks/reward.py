"""The cost of reward-modulated STDP: the COBA benchmark network (`_ei_network.py`) with
`jsyn.RewardSTDP` on its excitatory synapses and one dopamine cell (`jsyn.Neuromodulator`,
tau_d = 200 ms, a reward every 50 ms, so d > 0 throughout), stepped with the rule's dense
pass over every synapse (`event_driven=False`, the default) and event-driven on lazy weights
(`event_driven=True`), the two alternating in one process; the static network for scale.

    taskset -c 0 python benchmarks/reward.py [--sizes 4000,16000] [--repeats 3] [--ms 200]
    python benchmarks/reward.py --sizes 16000 --check 1000   # float64: the two agree

The rule: pair-STDP changes (A_plus = 0.01 w_e, A_minus = 1.05 A_plus, tau_pre = 16.8 ms,
tau_post = 33.7 ms) go into an eligibility per synapse (tau_c = 1000 ms); w += dt d c every
step; w in [0, 2 w_e], starting at w_e = 0.6. Prints, per size and variant, the compile
time, the run times (median), the time per step, the ratio dense / event-driven, the
firing rate and the largest difference between the two variants' final weights (float32).
"""

import argparse
import datetime
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _ei_network as ei  # noqa: E402

A_PLUS = 0.01 * ei.COBA.w_e
REWARD_EVERY = 50.0  # ms


def build(n: int, variant: str, seed: int = 0):
    """The network of `variant` ("static", "dense", "event") and its reward input."""
    import jax.numpy as jnp

    import jsyn

    net, n_syn = ei.network(ei.COBA, n, seed)
    if variant != "static":
        rule = jsyn.RewardSTDP(
            "DA",
            A_plus=A_PLUS,
            A_minus=1.05 * A_PLUS,
            w_max=2.0 * ei.COBA.w_e,
            event_driven=variant == "event",
        )
        e = net.projections["E"]
        plastic = jsyn.Projection(
            e.conn,
            e.synapse,
            e.output,
            pre="cells",
            post="cells",
            pre_slice=e.pre_slice,
            plasticity=rule,
        )
        groups = {"cells": (net.groups["cells"], n), "DA": (jsyn.Neuromodulator(tau_d=200.0), 1)}
        net = jsyn.Network(groups, dict(net.projections) | {"E": plastic})
    return net, n_syn, jnp


def compiled_run(n: int, variant: str, n_steps: int):
    """`(compile_s, run(r) -> (seconds, spikes, final E weights or None))`."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import jsyn

    net, n_syn, _ = build(n, variant)
    every = int(round(REWARD_EVERY / ei.DT))
    rewards = jnp.zeros((n_steps, 1)).at[every - 1 :: every].set(1.0)
    inputs = None if variant == "static" else {"DA": rewards}
    params, static = eqx.partition(net, eqx.is_array)
    state = net.init_state()

    @jax.jit
    def run(params, state, inputs):
        network = eqx.combine(params, static)
        final, counts = jsyn.simulate(
            network,
            inputs,
            ei.DT,
            state=state,
            n_steps=n_steps,
            record=lambda s, spikes: jnp.sum(spikes["cells"]),
        )
        w = None if variant == "static" else final.projections["E"].w
        return jnp.sum(counts), w

    def initial(r):
        V0 = jax.random.uniform(jax.random.key(1 + r), (n,), minval=-60.0, maxval=-50.0)
        return jax.block_until_ready(eqx.tree_at(lambda s: s.groups["cells"].V, state, V0))

    t0 = time.perf_counter()
    compiled = run.lower(params, initial(0), inputs).compile()
    compile_s = time.perf_counter() - t0

    def timed(r):
        s0 = initial(r)
        t = time.perf_counter()
        spikes, w = jax.block_until_ready(compiled(params, s0, inputs))
        return time.perf_counter() - t, float(spikes), w

    return compile_s, timed, n_syn


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4000,16000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ms", type=float, default=200.0, help="simulated time per run")
    parser.add_argument(
        "--check", type=int, default=0, help="instead: STEPS of both in float64, compared"
    )
    args = parser.parse_args(argv)
    import jax
    import numpy as np

    if args.check:
        jax.config.update("jax_enable_x64", True)
        for n in (int(s) for s in args.sizes.split(",")):
            (_, dense, _), (_, event, _) = (
                compiled_run(n, v, args.check) for v in ("dense", "event")
            )
            (_, s_d, w_d), (_, s_e, w_e) = dense(0), event(0)
            dw = float(np.abs(np.asarray(w_d) - np.asarray(w_e)).max())
            moved = float(np.abs(np.asarray(w_d) - ei.COBA.w_e).mean())
            print(
                f"N = {n}, {args.check} steps, float64: spikes {s_d:.0f} / {s_e:.0f}, largest "
                f"|w_dense - w_event| {dw:.1e}, mean |w - w_e| {moved:.3f}"
            )
        return

    n_steps = int(round(args.ms / ei.DT))
    print(f"# {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {ei.machine()}")
    print(
        f"# jax {jax.__version__} on {jax.devices()[0].platform}, {ei.pinned()}, "
        f"load average {os.getloadavg()[0]:.1f}; {args.ms:g} ms per run, dt = {ei.DT} ms"
    )
    variants = ("static", "dense", "event")
    for n in (int(s) for s in args.sizes.split(",")):
        runs = {}
        for v in variants:
            compile_s, timed, n_syn = compiled_run(n, v, n_steps)
            runs[v] = (compile_s, timed, [], [], [])
        for r in range(args.repeats):  # alternating
            for v in variants:
                seconds, spikes, w = runs[v][1](r)
                runs[v][2].append(seconds)
                runs[v][3].append(spikes)
                runs[v][4].append(w)
        print(f"\nN = {n}, {n_syn} synapses, load average {os.getloadavg()[0]:.1f}")
        med = {v: statistics.median(runs[v][2]) for v in variants}
        for v in variants:
            compile_s, _, times, spikes, _ = runs[v]
            rate = statistics.mean(spikes) / n / (args.ms / 1000.0)
            print(
                f"  {v:6s} compile {compile_s:6.2f} s  run {med[v]:7.3f} s "
                f"[{', '.join(f'{t:.3f}' for t in times)}]  "
                f"{1e6 * med[v] / n_steps:8.1f} us/step  rate {rate:5.1f} Hz"
            )
        plastic = {v: 1e6 * (med[v] - med["static"]) / n_steps for v in ("dense", "event")}
        print(
            f"  dense / event-driven: {med['dense'] / med['event']:.2f}x per run; the rule's "
            f"cost beyond the static network {plastic['dense']:.1f} vs {plastic['event']:.1f} "
            "us/step"
        )
        dw = max(
            float(np.abs(np.asarray(a) - np.asarray(b)).max())
            for a, b in zip(runs["dense"][4], runs["event"][4])
        )
        print(
            f"  largest |w_dense - w_event| after a run: {dw:.2e} "
            f"(mean w {float(np.mean(np.asarray(runs['event'][4][0]))):.4f})"
        )


if __name__ == "__main__":
    main()
