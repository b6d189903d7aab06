"""The Brette et al. (2007) E/I benchmark networks, COBA and CUBA, in jsyn, for `coba.py` and
`cuba.py`, with Brian2 and BrainPy run through `references.py` (the same networks) side by
side. Shared code; run those scripts, not this module.

Both networks: N leaky integrate-and-fire cells (tau = 20 ms, V_th = -50 mV, V_reset =
-60 mV, refractory 5 ms), 80 % excitatory, 20 % inhibitory, each pair connected with
probability p = 0.02 at N = 4000 and p = 80 / N above (80 synapses per cell on average),
exponential synapses (tau_e = 5 ms, tau_i = 10 ms), V0 ~ U(-60, -50) mV, dt = 0.1 ms.

- COBA (BrainPy's normalised form): V_rest = -60 mV, a background of 20 mV (R I with
  R = 1), conductances in units of the leak conductance, jumps 0.6 (E) and 6.7 (I),
  reversal potentials E_e = 0 mV and E_i = -80 mV.
- CUBA: V_rest = E_l = -49 mV (above threshold: the cells fire without input), currents in
  mV, jumps 1.62 (E) and -9 (I).
"""

import dataclasses
import os
import platform
import statistics
import subprocess
import sys
import time

DT = 0.1  # ms


@dataclasses.dataclass(frozen=True)
class Model:
    name: str
    V_rest: float
    background: float  # mV (R I)
    w_e: float
    w_i: float
    coba: bool


COBA = Model("COBA", V_rest=-60.0, background=20.0, w_e=0.6, w_i=6.7, coba=True)
CUBA = Model("CUBA", V_rest=-49.0, background=0.0, w_e=1.62, w_i=-9.0, coba=False)


def probability(n: int) -> float:
    return 0.02 if n <= 4000 else 80.0 / n


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical cores, Python {platform.python_version()}"


def pinned() -> str:
    try:
        cores = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return "unknown"
    return f"cores {cores}"


# -- jsyn ---------------------------------------------------------------------------------


def network(model: Model, n: int, seed: int = 0, *, e=None, i=None):
    """The network in jsyn, `(net, number of synapses)`: one group "cells" (80 % excitatory
    first), projections "E" and "I" on fixed-probability wiring drawn from `seed`; `e` and
    `i` are extra `jsyn.Projection` arguments of each (e.g. `{"plasticity": jsyn.STDP()}`)."""
    import jax

    import jsyn

    n_e = int(0.8 * n)
    p = probability(n)
    key_e, key_i = jax.random.split(jax.random.key(seed))
    exc = jsyn.fixed_prob(n_e, n, p, key=key_e, w=model.w_e)
    inh = jsyn.fixed_prob(n - n_e, n, p, key=key_i, w=model.w_i)
    if model.coba:
        out_e, out_i = jsyn.COBA(E=0.0), jsyn.COBA(E=-80.0)
    else:
        out_e = out_i = jsyn.CUBA()
    # The constant background R I is folded into V_rest: V_inf = V_rest + R (I_bg + I_syn).
    lif = jsyn.LIF(
        V_rest=model.V_rest + model.background, V_th=-50.0, V_reset=-60.0, tau=20.0, tau_ref=5.0
    )
    common = dict(pre="cells", post="cells")
    net = jsyn.Network(
        {"cells": (lif, n)},
        {
            "E": jsyn.Projection(
                exc, jsyn.Expon(tau=5.0), out_e, pre_slice=(0, n_e), **common, **(e or {})
            ),
            "I": jsyn.Projection(
                inh, jsyn.Expon(tau=10.0), out_i, pre_slice=(n_e, n), **common, **(i or {})
            ),
        },
    )
    return net, exc.n_syn + inh.n_syn


def compiled_run(net, n: int, duration: float, seed: int, summary=None):
    """`net`'s run compiled ahead of time (the spike count of "cells" recorded per step):
    `(compile_s, initial, run)`, `initial(r)` the initial state with potentials V0 ~ U(-60,
    -50) mV drawn from key `seed + 1 + r` (other initial states, same wiring: no
    recompilation), `run(state)` the run from it, returning `(spike total, summary(final
    state))` when done (0.0 for the summary without one)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import jsyn

    state = net.init_state()
    n_steps = int(round(duration / DT))
    params, static = eqx.partition(net, eqx.is_array)

    def count(state, spikes):
        return jnp.sum(spikes["cells"])

    @jax.jit
    def run(params, state):
        network = eqx.combine(params, static)
        final, counts = jsyn.simulate(network, None, DT, state=state, n_steps=n_steps, record=count)
        return jnp.sum(counts), (0.0 if summary is None else summary(final))

    def initial(r):
        V0 = jax.random.uniform(jax.random.key(seed + 1 + r), (n,), minval=-60.0, maxval=-50.0)
        return jax.block_until_ready(eqx.tree_at(lambda s: s.groups["cells"].V, state, V0))

    t0 = time.perf_counter()
    compiled = run.lower(jax.block_until_ready(params), initial(0)).compile()
    compile_s = time.perf_counter() - t0
    return compile_s, initial, lambda s0: jax.block_until_ready(compiled(params, s0))


def timed_runs(net, n: int, duration: float, repeats: int, seed: int, summary=None):
    """Compile `net`'s run ahead of time (`compiled_run`) and run it `repeats` times from
    potentials V0 ~ U(-60, -50) mV drawn from keys `seed + 1`, `seed + 2`, ... (other
    initial states, same wiring: no recompilation). Returns `(compile_s, run times, spike
    totals, summaries, end of the first run)`, `summary(final state)` a float per run (none
    without `summary`)."""
    compile_s, initial, run = compiled_run(net, n, duration, seed, summary)
    runs, spikes, summaries, first_end = [], [], [], None
    for r in range(repeats):
        s0 = initial(r)
        t = time.perf_counter()
        spikes_r, summary_r = run(s0)
        runs.append(time.perf_counter() - t)
        first_end = first_end or time.perf_counter()
        spikes.append(float(spikes_r))
        summaries.append(float(summary_r))
    return compile_s, runs, spikes, summaries if summary else [], first_end


def jsyn_run(model: Model, n: int, duration: float, repeats: int, seed: int = 0) -> dict:
    """Build, compile and run the network in jsyn; times in s, rate in Hz."""
    t_import = time.perf_counter()
    import jsyn  # noqa: F401  (the import is timed)

    t_build = time.perf_counter()
    net, n_syn = network(model, n, seed)
    t_compile = time.perf_counter()
    compile_s, runs, spikes, _, first_end = timed_runs(net, n, duration, repeats, seed)
    rates = [c / n / (duration / 1000.0) for c in spikes]
    return {
        "import": t_build - t_import,
        "build": t_compile - t_build,
        "compile": compile_s,
        "run": statistics.median(runs),
        "runs": runs,
        "first": first_end - t_import,
        "rate": statistics.mean(rates),
        "rates": rates,
        "synapses": n_syn,
    }


# -- the reference simulators (benchmarks/references.py) ---------------------------------


def _reference(run, model: Model, n: int, duration: float, repeats: int, seed: int) -> dict:
    """A run of `references.py` (the same network; see its docstring for how each simulator
    is set up), under the keys `main` prints."""
    res = run(model.name.lower(), n, duration_ms=duration, dt=DT, seed=seed, repeats=repeats)
    return {
        "import": res["import_s"],
        "build": res["build_s"],
        "compile": res["compile_s"],
        "run": res["run_s"],
        "runs": res["run_s_all"],
        "first": res["total_s"],
        "rate": res["rate_hz"],
        "synapses": res["n_synapses"],
    }


def brian2_run(model: Model, n: int, duration: float, repeats: int, seed: int = 0) -> dict:
    """Brian2 cpp_standalone on one thread, forward Euler: `references.run_brian2`."""
    import references

    return _reference(references.run_brian2, model, n, duration, repeats, seed)


def brainpy_run(model: Model, n: int, duration: float, repeats: int, seed: int = 0) -> dict:
    """BrainPy 2.x, event-driven, compile time from JAX's compile events:
    `references.run_brainpy`."""
    import references

    return _reference(references.run_brainpy, model, n, duration, repeats, seed)


def run_isolated(func: str, args: str, module: str = "_ei_network") -> dict | None:
    """`module.func(*args)` in a fresh interpreter (clean imports and devices), `args` the
    call's argument list as source, names looked up in `module` (e.g. `"m.COBA, 4000,
    1000.0, 3"`); its JSON result, or `None` if it fails."""
    here = os.path.dirname(os.path.abspath(__file__))
    code = (
        f"import json, sys; sys.path.insert(0, {here!r}); import {module} as m; "
        f"print('RESULT', json.dumps(m.{func}({args})))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            import json

            return json.loads(line[7:])
    sys.stderr.write(f"{func}({args}) failed:\n{proc.stderr[-3000:]}\n")
    return None


def floor_run(script: str, n: int, repeats: int) -> dict | None:
    """An external pure-JAX reference of the COBA network (`--floor SCRIPT`): a script
    written for measurement only, not part of this repository, run in a fresh interpreter
    with its fastest settings (tiers 16, 64, ... below N, two-level `top_k`, E and I in one
    scatter, `unroll=2`) and read from the `RESULT {json}` line it prints (its run time,
    compile time and rate). `None` if it fails."""
    tiers = ",".join(str(c) for c in (16, 64, 256, 1024, 4096, 16384) if c < n)
    cmd = [sys.executable, script, "--N", str(n), "--repeats", str(repeats), "--prop"]
    cmd += ["inplace", "--compact", "topk2", "--tiers", tiers, "--unroll", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            import json

            res = json.loads(line[7:])
            return {"run": res["run_median_s"], "compile": res["compile_s"], "rate": res["rate_hz"]}
    sys.stderr.write(f"floor {script} N={n} failed:\n{proc.stderr[-3000:]}\n")
    return None


def _available(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def main(model: Model, argv=None) -> dict:
    import argparse
    import json

    parser = argparse.ArgumentParser(description=f"The {model.name} benchmark network.")
    parser.add_argument("--sizes", default="4000,16000,64000", help="network sizes N")
    parser.add_argument("--duration", type=float, default=1000.0, help="simulated time (ms)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per simulator")
    parser.add_argument("--only", default="jsyn,brian2,brainpy", help="simulators to run")
    parser.add_argument("--json", default=None, help="write the results to this file")
    parser.add_argument(
        "--floor",
        default=None,
        metavar="SCRIPT",
        help="an external pure-JAX COBA reference script to run beside (see floor_run)",
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    wanted = args.only.split(",")
    simulators = {"jsyn": "jsyn_run", "brian2": "brian2_run", "brainpy": "brainpy_run"}
    print(f"{model.name} network, dt = {DT} ms, {args.duration:g} ms simulated")
    print(f"machine: {machine()}; affinity: {pinned()}; {time.strftime('%Y-%m-%d %H:%M %Z')}")
    import jax

    print(f"jax {jax.__version__}, device {jax.devices()[0].device_kind}")
    results: dict = {}
    for name, func in simulators.items():
        if name not in wanted:
            continue
        if name != "jsyn" and not _available(name):
            print(f"{name}: not installed (pip install 'jsyn[bench]'); skipped")
            continue
        for n in sizes:
            res = run_isolated(func, f"m.{model.name}, {n}, {args.duration!r}, {args.repeats}")
            if res is None:
                continue
            results.setdefault(name, {})[n] = res
            print(
                f"{name:8s} N={n:6d}  import {res['import']:6.2f} s  build {res['build']:6.2f} s"
                f"  compile {res['compile']:6.2f} s  run {res['run']:7.3f} s (median of "
                f"{len(res['runs'])})  end-to-end {res['first']:6.2f} s  rate {res['rate']:6.2f} Hz"
            )
    if args.floor and model.coba:
        for n in sizes:
            res = floor_run(args.floor, n, args.repeats)
            if res is not None:
                results.setdefault("floor", {})[n] = res
                print(
                    f"floor    N={n:6d}  compile {res['compile']:6.2f} s  run {res['run']:7.3f} s"
                    f" (median of {args.repeats})  rate {res['rate']:6.2f} Hz"
                )
    elif args.floor:
        print("floor: a COBA reference only; skipped")
    print("\nratios (jsyn / other; below 1 means jsyn is faster):")
    for other in ("brian2", "brainpy"):
        for n in sizes:
            a, b = results.get("jsyn", {}).get(n), results.get(other, {}).get(n)
            if a and b:
                print(
                    f"  vs {other:8s} N={n:6d}: run {a['run'] / b['run']:5.2f}x, end-to-end "
                    f"{a['first'] / b['first']:5.2f}x, rate {a['rate'] / b['rate']:5.3f}"
                )
    for n in sizes:
        a, f, b = (results.get(k, {}).get(n) for k in ("jsyn", "floor", "brian2"))
        if a and f:
            also = f", floor / Brian2 {f['run'] / b['run']:5.2f}x" if b else ""
            print(f"  vs floor    N={n:6d}: run {a['run'] / f['run']:5.2f}x{also}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": model.name, "results": results}, f, indent=1)
    return results
