"""The cost of plasticity: the COBA benchmark network (`_ei_network.py`) with pair STDP on
its excitatory synapses, in jsyn and in Brian2 (cpp_standalone, one thread), side by side,
with the static network of each for scale.

    flock /work/notes/bench.lock taskset -c 0 python benchmarks/plasticity.py \
        [--sizes 4000,16000] [--repeats 3] [--only jsyn,brian2] [--static]

The rule, in both: each excitatory synapse has the weight w (starting at w_e = 0.6, in units
of the leak conductance) and the traces a_pre (tau_pre = 16.8 ms) and a_post
(tau_post = 33.7 ms); a presynaptic spike arriving at the synapse adds w to g_e, then
w -= A_minus a_post, a_pre += 1; a postsynaptic spike w += A_plus a_pre, a_post += 1;
w in [0, 2 w_e]; A_plus = 0.01 w_e, A_minus = 1.05 A_plus (Song et al. 2000). jsyn keeps
the weights in the state and updates them event-driven (`jsyn.Sparse.learn`); Brian2 runs
the same statements in `on_pre` / `on_post` with event-driven traces. Run time is the
simulation loop alone (jsyn: the compiled run; Brian2: the binary's own timer), median of
the repeats; see `README.md` for results and conditions.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _ei_network as ei  # noqa: E402
import references as ref  # noqa: E402

TAU_PRE, TAU_POST = 16.8, 33.7  # ms
A_PLUS = 0.01 * ei.COBA.w_e
A_MINUS = 1.05 * A_PLUS
W_MAX = 2.0 * ei.COBA.w_e


def jsyn_run(n: int, duration: float, repeats: int, seed: int = 0) -> dict:
    """The COBA network with STDP on "E", built, compiled and run in jsyn; times in s."""
    import jax.numpy as jnp

    import jsyn

    stdp = jsyn.STDP(
        A_plus=A_PLUS, A_minus=A_MINUS, tau_pre=TAU_PRE, tau_post=TAU_POST, w_max=W_MAX
    )
    net, n_syn = ei.network(ei.COBA, n, seed, e={"plasticity": stdp})
    compile_s, runs, spikes, w_mean, _ = ei.timed_runs(
        net, n, duration, repeats, seed, summary=lambda final: jnp.mean(final.projections["E"].w)
    )
    return dict(
        compile=compile_s,
        run=statistics.median(runs),
        runs=runs,
        rate=statistics.mean(spikes) / n / (duration / 1000.0),
        w_mean=statistics.mean(w_mean),
        synapses=n_syn,
    )


def brian2_run(n: int, duration: float, repeats: int, seed: int = 0) -> dict:
    """The same network in Brian2 cpp_standalone (one thread, forward Euler, as
    `references.run_brian2` sets up the static one), STDP on the excitatory synapses."""
    c = ref._constants("coba")
    b2, _ = ref._import("brian2", ref._HINT)
    import numpy as np

    dev = ref.brian2_standalone(b2, ei.DT, seed)
    n_exc, _ = ref.split(n, c["frac_exc"])
    ms = b2.ms
    P, ns = ref.brian2_neurons(
        b2,
        "coba",
        n,
        "euler",
        taupre=TAU_PRE * ms,
        taupost=TAU_POST * ms,
        Ap=A_PLUS,
        Am=A_MINUS,
        wmax=W_MAX,
    )
    Ce = b2.Synapses(
        P[:n_exc],
        P,
        model="""w : 1
        dapre/dt = -apre / taupre : 1 (event-driven)
        dapost/dt = -apost / taupost : 1 (event-driven)""",
        on_pre="""ge += w
        w = clip(w - Am * apost, 0, wmax)
        apre += 1""",
        on_post="""w = clip(w + Ap * apre, 0, wmax)
        apost += 1""",
        namespace=ns,
        name="exc_syn",
    )
    Ce.connect(p=ref.connection_prob(n))
    Ce.w = "w_e"
    Ci = b2.Synapses(P[n_exc:], P, on_pre="gi += w_i", namespace=ns, name="inh_syn")
    Ci.connect(p=ref.connection_prob(n))
    mon = b2.SpikeMonitor(P, record=False, name="spikes")
    net = b2.Network(P, Ce, Ci, mon)
    net.run(duration * ms)
    directory = tempfile.mkdtemp(prefix=f"jsyn-brian2-stdp-{n}-")
    try:
        t0 = time.perf_counter()
        dev.build(directory=directory, compile=True, run=False, with_output=False, clean=True)
        compile_s = time.perf_counter() - t0
        loop, spikes = [], []
        for _ in range(max(1, repeats)):
            dev.run(directory=directory, with_output=False)
            loop.append(float(dev._last_run_time))
            spikes.append(int(np.asarray(mon.count[:]).sum()))
        w_mean = float(np.mean(np.asarray(Ce.w[:])))
        n_syn = int(len(Ce)) + int(len(Ci))
    finally:
        dev.reinit()
        b2.set_device("runtime")
        shutil.rmtree(directory, ignore_errors=True)
    return dict(
        compile=compile_s,
        run=statistics.median(loop),
        runs=loop,
        rate=statistics.mean(spikes) / n / (duration / 1000.0),
        w_mean=w_mean,
        synapses=n_syn,
    )


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4000,16000", help="network sizes N")
    parser.add_argument("--duration", type=float, default=1000.0, help="simulated time (ms)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per simulator")
    parser.add_argument("--only", default="jsyn,brian2", help="simulators to run")
    parser.add_argument("--static", action="store_true", help="also the static networks")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"COBA + STDP on E, dt = {ei.DT} ms, {args.duration:g} ms simulated")
    print(f"machine: {ei.machine()}; affinity: {ei.pinned()}; {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"load average: {os.getloadavg()}")
    runs = [(name, f"{name}_run") for name in ("jsyn", "brian2") if name in args.only]
    results: dict = {}
    for n in sizes:
        for name, func in runs:
            res = ei.run_isolated(func, f"{n}, {args.duration!r}, {args.repeats}", "plasticity")
            if res is not None:
                results.setdefault(name, {})[n] = res
                print(
                    f"{name:6s} STDP   N={n:6d}  compile {res['compile']:6.2f} s  run "
                    f"{res['run']:7.3f} s (median of {len(res['runs'])}: "
                    f"{', '.join(f'{t:.3f}' for t in res['runs'])})  rate {res['rate']:6.2f} Hz"
                    f"  mean w {res['w_mean']:.4f}  synapses {res['synapses']}",
                    flush=True,
                )
            if args.static:
                static = ei.run_isolated(
                    f"{name}_run", f"m.COBA, {n}, {args.duration!r}, {args.repeats}"
                )
                if static is not None:
                    results.setdefault(f"{name}-static", {})[n] = static
                    print(
                        f"{name:6s} static N={n:6d}  run {static['run']:7.3f} s (median of "
                        f"{len(static['runs'])})  rate {static['rate']:6.2f} Hz",
                        flush=True,
                    )
        a, b = results.get("jsyn", {}).get(n), results.get("brian2", {}).get(n)
        if a and b:
            print(f"  N={n}: jsyn / Brian2 run time {a['run'] / b['run']:.2f}x (target <= 1.5x)")
    print(f"load average: {os.getloadavg()}")
    return results


if __name__ == "__main__":
    main()
