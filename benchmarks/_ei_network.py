"""The Brette et al. (2007) E/I benchmark networks, COBA and CUBA, in jsyn, Brian2 and
BrainPy, for `coba.py` and `cuba.py`. Shared code; run those scripts, not this module.

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
import tempfile
import time

import numpy as np

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


def jsyn_run(model: Model, n: int, duration: float, repeats: int, seed: int = 0) -> dict:
    """Build, compile and run the network in jsyn; times in s, rate in Hz."""
    t_import = time.perf_counter()
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import jsyn

    t_build = time.perf_counter()
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
    net = jsyn.Network(
        {"cells": (lif, n)},
        {
            "E": jsyn.Projection(
                exc, jsyn.Expon(tau=5.0), out_e, pre="cells", post="cells", pre_slice=(0, n_e)
            ),
            "I": jsyn.Projection(
                inh, jsyn.Expon(tau=10.0), out_i, pre="cells", post="cells", pre_slice=(n_e, n)
            ),
        },
    )
    state = net.init_state()
    V0 = jax.random.uniform(jax.random.key(seed + 1), (n,), minval=-60.0, maxval=-50.0)
    state = eqx.tree_at(lambda s: s.groups["cells"].V, state, V0)
    n_steps = int(round(duration / DT))
    params, static = eqx.partition(net, eqx.is_array)

    def count(state, spikes):
        return jnp.sum(spikes["cells"])

    @jax.jit
    def run(params, state):
        network = eqx.combine(params, static)
        final, counts = jsyn.simulate(network, None, DT, state=state, n_steps=n_steps, record=count)
        return final, jnp.sum(counts)

    jax.block_until_ready((params, state))
    t_compile = time.perf_counter()
    compiled = run.lower(params, state).compile()
    t_run = time.perf_counter()
    _, spikes = jax.block_until_ready(compiled(params, state))
    t_end = time.perf_counter()
    runs, rates = [t_end - t_run], [float(spikes)]
    for r in range(repeats - 1):  # other initial potentials, same wiring: no recompilation
        V0 = jax.random.uniform(jax.random.key(seed + 2 + r), (n,), minval=-60.0, maxval=-50.0)
        state_r = eqx.tree_at(lambda s: s.groups["cells"].V, state, V0)
        jax.block_until_ready(state_r)
        t = time.perf_counter()
        _, spikes_r = jax.block_until_ready(compiled(params, state_r))
        runs.append(time.perf_counter() - t)
        rates.append(float(spikes_r))
    return {
        "import": t_build - t_import,
        "build": t_compile - t_build,
        "compile": t_run - t_compile,
        "run": statistics.median(runs),
        "runs": runs,
        "first": t_end - t_import,
        "rate": statistics.mean(rates) / n / (duration / 1000.0),
        "rates": [r / n / (duration / 1000.0) for r in rates],
        "synapses": exc.n_syn + inh.n_syn,
    }


# -- Brian2 -------------------------------------------------------------------------------


def brian2_run(model: Model, n: int, duration: float, repeats: int, seed: int = 0) -> dict:
    """Brian2 cpp_standalone, single-threaded: compile (code generation + C++ build) and
    run apart. `run` is the simulation time Brian2's binary reports; `run_wall` the wall
    time of the binary (process start and result files included)."""
    t_import = time.perf_counter()
    import brian2 as b2

    t_build = time.perf_counter()
    directory = tempfile.mkdtemp(prefix=f"brian2_{model.name}_{n}_")
    b2.set_device("cpp_standalone", directory=directory, build_on_run=False)
    b2.prefs.devices.cpp_standalone.openmp_threads = 0
    b2.defaultclock.dt = DT * b2.ms
    # No b2.seed(): every run of the binary draws a new wiring and new initial potentials.
    n_e = int(0.8 * n)
    p = probability(n)
    mV, ms = b2.mV, b2.ms
    if model.coba:
        eqs = """
        dv/dt = (ge * (Ee - v) + gi * (Ei - v) - (v - El) + Ib) / taum : volt (unless refractory)
        dge/dt = -ge / taue : 1
        dgi/dt = -gi / taui : 1
        """
        ns = dict(Ee=0 * mV, Ei=-80 * mV, El=model.V_rest * mV, Ib=model.background * mV)
    else:
        eqs = """
        dv/dt = (ge + gi - (v - El)) / taum : volt (unless refractory)
        dge/dt = -ge / taue : volt
        dgi/dt = -gi / taui : volt
        """
        ns = dict(El=model.V_rest * mV)
    ns.update(taum=20 * ms, taue=5 * ms, taui=10 * ms)
    P = b2.NeuronGroup(
        n,
        eqs,
        threshold="v > -50*mV",
        reset="v = -60*mV",
        refractory=5 * ms,
        method=os.environ.get("JSYN_BENCH_BRIAN2_METHOD", "exact" if not model.coba else "euler"),
        namespace=ns,
    )
    P.v = "-60*mV + rand() * 10*mV"
    unit = "" if model.coba else "*mV"
    Ce = b2.Synapses(P[:n_e], P, on_pre=f"ge += {model.w_e}{unit}")
    Ci = b2.Synapses(P[n_e:], P, on_pre=f"gi += {model.w_i}{unit}")
    Ce.connect(p=p)
    Ci.connect(p=p)
    counter = b2.SpikeMonitor(P, record=False)
    b2.run(duration * ms)
    t_compile = time.perf_counter()
    b2.device.build(directory=directory, compile=True, run=False)
    t_run = time.perf_counter()
    runs, walls, rates = [], [], []
    for _ in range(repeats):
        t = time.perf_counter()
        b2.device.run(directory=directory, with_output=False, run_args=[])
        walls.append(time.perf_counter() - t)
        runs.append(float(b2.device._last_run_time))
        rates.append(int(counter.num_spikes) / n / (duration / 1000.0))
    rate = statistics.mean(rates)
    b2.device.reinit()
    b2.device.activate()
    return {
        "import": t_build - t_import,
        "build": t_compile - t_build,
        "compile": t_run - t_compile,
        "run": statistics.median(runs),
        "run_wall": statistics.median(walls),
        "runs": runs,
        "first": t_run - t_import + walls[0],
        "rate": rate,
        "rates": rates,
    }


# -- BrainPy ------------------------------------------------------------------------------


def brainpy_run(model: Model, n: int, duration: float, repeats: int, seed: int = 0) -> dict:
    """BrainPy 2.x, the form of its own COBA/CUBA examples: `LifRef` cells, event-driven
    CSR projections (`EventCSRLinear`, `FixedProb`) aligned on the post side. `compile` is
    the first run minus a later one (BrainPy compiles on the first call); the later runs
    continue from the state the first left."""
    t_import = time.perf_counter()
    import brainpy as bp
    import brainpy.math as bm

    t_build = time.perf_counter()
    bm.set_platform("cpu")
    bm.set_dt(DT)
    bm.random.seed(seed)
    n_e = int(0.8 * n)
    p = probability(n)

    class EINet(bp.DynSysGroup):
        def __init__(self):
            super().__init__()
            self.N = bp.dyn.LifRef(
                n,
                V_rest=model.V_rest,
                V_th=-50.0,
                V_reset=-60.0,
                tau=20.0,
                tau_ref=5.0,
                V_initializer=bp.init.Uniform(-60.0, -50.0),
            )
            self.delay = bp.VarDelay(self.N.spike, entries={"I": None})
            out_e = bp.dyn.COBA.desc(E=0.0) if model.coba else bp.dyn.CUBA.desc()
            out_i = bp.dyn.COBA.desc(E=-80.0) if model.coba else bp.dyn.CUBA.desc()
            self.E = bp.dyn.ProjAlignPostMg1(
                comm=bp.dnn.EventCSRLinear(
                    bp.conn.FixedProb(p, pre=n_e, post=n, seed=seed), model.w_e
                ),
                syn=bp.dyn.Expon.desc(n, tau=5.0),
                out=out_e,
                post=self.N,
            )
            self.I = bp.dyn.ProjAlignPostMg1(
                comm=bp.dnn.EventCSRLinear(
                    bp.conn.FixedProb(p, pre=n - n_e, post=n, seed=seed + 1), model.w_i
                ),
                syn=bp.dyn.Expon.desc(n, tau=10.0),
                out=out_i,
                post=self.N,
            )

        def update(self, inp):
            spk = self.delay.at("I")
            self.E(spk[:n_e])
            self.I(spk[n_e:])
            self.delay(self.N(inp))
            return self.N.spike.value

    net = EINet()
    n_steps = int(round(duration / DT))

    def step(i):
        return bm.sum(net.step_run(i, model.background))

    def run(start):
        counts = bm.for_loop(step, np.arange(start, start + n_steps), progress_bar=False)
        return float(bm.sum(counts))

    t_run = time.perf_counter()
    spikes = run(0)
    t_first = time.perf_counter()
    runs = []
    for r in range(repeats):
        t = time.perf_counter()
        run((r + 1) * n_steps)
        runs.append(time.perf_counter() - t)
    run_time = statistics.median(runs)
    return {
        "import": t_build - t_import,
        "build": t_run - t_build,
        "compile": max(t_first - t_run - run_time, 0.0),
        "run": run_time,
        "runs": runs,
        "first": t_first - t_import,
        "rate": spikes / n / (duration / 1000.0),
    }


def run_isolated(func: str, model: str, n: int, duration: float, repeats: int) -> dict | None:
    """Run `func` in a fresh interpreter (clean imports and devices); `None` if it fails."""
    here = os.path.dirname(os.path.abspath(__file__))
    code = (
        f"import json, sys; sys.path.insert(0, {here!r}); import _ei_network as m; "
        f"print('RESULT', json.dumps(m.{func}(m.{model}, {n}, {duration!r}, {repeats})))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            import json

            return json.loads(line[7:])
    sys.stderr.write(f"{func} at N={n} failed:\n{proc.stderr[-3000:]}\n")
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
            res = run_isolated(func, model.name, n, args.duration, args.repeats)
            if res is None:
                continue
            results.setdefault(name, {})[n] = res
            print(
                f"{name:8s} N={n:6d}  import {res['import']:6.2f} s  build {res['build']:6.2f} s"
                f"  compile {res['compile']:6.2f} s  run {res['run']:7.3f} s (median of "
                f"{len(res['runs'])})  end-to-end {res['first']:6.2f} s  rate {res['rate']:6.2f} Hz"
            )
    print("\nratios (jsyn / other; below 1 means jsyn is faster):")
    for other in ("brian2", "brainpy"):
        for n in sizes:
            a, b = results.get("jsyn", {}).get(n), results.get(other, {}).get(n)
            if a and b:
                print(
                    f"  vs {other:8s} N={n:6d}: run {a['run'] / b['run']:5.2f}x, end-to-end "
                    f"{a['first'] / b['first']:5.2f}x, rate {a['rate'] / b['rate']:5.3f}"
                )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": model.name, "results": results}, f, indent=1)
    return results
