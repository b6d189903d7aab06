"""Reference simulators for the COBA / CUBA benchmark: Brian2 (cpp_standalone) and BrainPy.

The same E/I networks that `benchmarks/coba.py` and `benchmarks/cuba.py` run in jsyn, built in
Brian2's C++ standalone mode and in BrainPy 2.x (event-driven CSR projections), timed with
compile time apart from run time. Neither simulator is a jsyn dependency: install them with
the `bench` extra (`pip install -e '.[bench]'`). A missing simulator raises
`ReferenceUnavailable` (an `ImportError`), so callers can skip it cleanly:

    from references import ReferenceUnavailable, run_brian2, run_brainpy
    try:
        ref = run_brian2("coba", 4000)
    except ReferenceUnavailable as e:
        print("skip:", e)

Either simulator can also run in another interpreter (for instance a separate venv with a
BrainPy that needs another jax): pass `python="/path/to/venv/bin/python"` or set
`JSYN_BRIAN2_PYTHON` / `JSYN_BRAINPY_PYTHON`; the call then runs this file as a worker in a
subprocess of that interpreter and parses the one JSON line it prints.

The networks (Brette et al. 2007, BrainPy's normalised units: voltages in mV, times in ms,
conductances in units of the leak conductance, currents in mV):

    tau dV/dt = (V_rest - V) + I_syn + I_bg            (V held for t_ref after a spike)
    COBA:  I_syn = g_e (E_e - V) + g_i (E_i - V)
    CUBA:  I_syn = g_e + g_i
    dg_e/dt = -g_e / tau_e,   dg_i/dt = -g_i / tau_i,   a spike adds w_e or w_i to the target
    V >= V_th  ->  spike, V = V_reset

with the constants in `COBA` and `CUBA` below, N_E = 0.8 N excitatory and N_I = N - N_E
inhibitory neurons, V(0) ~ U(V_reset, V_th), g(0) = 0, each ordered pair (self-pairs included)
connected independently with p = `connection_prob(N)` (0.02 up to N = 4000, then 80 / N: an
expected in-degree of 80), dt = 0.1 ms, 1 s, no delay beyond the step: a spike emitted at step
n changes V from step n + 1 on. CUBA is Brette et al.'s benchmark 2 as BrainPy and Brian2
benchmark it (E_L = -49 mV, no input, jumps 1.62 and -9 mV), written with the same LIF as COBA
(V_rest = -60 mV plus a constant 11 mV, identical dynamics).

Where the two references differ from each other (both are kept as their authors run them):
Brian2 integrates with forward Euler by default (`method="euler"`, as in BrainPy's and
Brian2's benchmark scripts; "exponential_euler" is an option and costs ~4x the run time in
COBA), float64, and Bernoulli connectivity (the synapse count varies around p N_pre N_post).
BrainPy's `LifRef` uses "exp_auto" (exponential Euler, V exact over the step with the
synaptic input linearised), float32, and `FixedProb` without multiple connections draws
exactly round(p N_post) distinct targets per presynaptic neuron (a fixed out-degree; the
in-degree is random with mean 80). In both, a spike emitted at step n first moves V at n + 1.

    python benchmarks/references.py --sizes 4000 16000 64000 [--models coba cuba]
        [--sims brian2 brainpy] [--repeats 3] [--threads 1] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

COBA = dict(
    tau=20.0,  # membrane time constant (ms)
    v_rest=-60.0,  # mV
    v_reset=-60.0,  # mV
    v_th=-50.0,  # mV
    t_ref=5.0,  # ms
    i_bg=20.0,  # constant background input (mV)
    e_exc=0.0,  # excitatory reversal potential (mV)
    e_inh=-80.0,  # inhibitory reversal potential (mV)
    tau_e=5.0,  # ms
    tau_i=10.0,  # ms
    w_e=0.6,  # excitatory conductance jump (units of g_L)
    w_i=6.7,  # inhibitory conductance jump (units of g_L)
    frac_exc=0.8,
)

CUBA = dict(
    COBA,
    i_bg=11.0,  # V_rest + i_bg = -49 mV, Brette et al.'s E_L for CUBA
    e_exc=None,
    e_inh=None,
    w_e=1.62,  # excitatory current jump (mV): 60 * 0.27 / 10
    w_i=-9.0,  # inhibitory current jump (mV): -20 * 4.5 / 10
)

MODELS = {"coba": COBA, "cuba": CUBA}


class ReferenceUnavailable(ImportError):
    """A reference simulator (or what it needs, e.g. a C++ compiler) is not installed."""


def connection_prob(n: int) -> float:
    """p = 0.02 up to N = 4000, then 80 / N (a fixed expected in-degree of 80)."""
    return 0.02 if n <= 4000 else 80.0 / n


def split(n: int, frac_exc: float = 0.8) -> tuple[int, int]:
    n_exc = int(round(frac_exc * n))
    return n_exc, n - n_exc


def _constants(model: str) -> dict:
    try:
        return MODELS[model.lower()]
    except KeyError:
        raise ValueError(f"model must be one of {sorted(MODELS)}, got {model!r}") from None


def _summary(times: list[float]) -> dict:
    return dict(
        run_s=statistics.median(times), run_s_min=min(times), run_s_all=[float(t) for t in times]
    )


def _rates(n_exc_spikes, n_inh_spikes, n_exc, n_inh, duration_ms) -> dict:
    sec = duration_ms / 1000.0
    n_spikes = int(n_exc_spikes) + int(n_inh_spikes)
    return dict(
        n_spikes=n_spikes,
        rate_hz=n_spikes / ((n_exc + n_inh) * sec),
        rate_exc_hz=int(n_exc_spikes) / (n_exc * sec),
        rate_inh_hz=int(n_inh_spikes) / (n_inh * sec),
    )


def _import(name: str, hint: str):
    t0 = time.perf_counter()
    already = name in sys.modules
    try:
        mod = __import__(name)
    except ImportError as e:
        raise ReferenceUnavailable(f"{name} is not installed ({e}); {hint}") from e
    except Exception as e:  # e.g. Brian2 2.9 against numpy >= 2.4: ndarray.ptp is gone
        raise ReferenceUnavailable(f"{name} fails to import: {type(e).__name__}: {e}") from e
    return mod, 0.0 if already else time.perf_counter() - t0


_HINT = "pip install -e '.[bench]'"


# --------------------------------------------------------------------------------------------
# Brian2, C++ standalone
# --------------------------------------------------------------------------------------------


def brian2_standalone(b2, dt: float, seed: int, threads: int = 1):
    """A fresh Brian2 `cpp_standalone` device (the previous network forgotten, so several
    sizes run in one process) on `threads` OpenMP threads (one: no OpenMP), clock `dt` ms,
    seed `seed`: the device."""
    from brian2.devices.cpp_standalone.device import CPPStandaloneDevice

    if isinstance(b2.get_device(), CPPStandaloneDevice):
        b2.get_device().reinit()
    b2.set_device("cpp_standalone", build_on_run=False)
    b2.prefs.devices.cpp_standalone.openmp_threads = 0 if threads <= 1 else int(threads)
    b2.defaultclock.dt = dt * b2.ms
    b2.seed(seed)
    return b2.get_device()


def brian2_neurons(b2, model: str, n: int, method: str, **extra):
    """The benchmark's `n` LIF cells in Brian2 ("coba" or "cuba"), potentials drawn
    uniformly between reset and threshold: `(group, namespace)`, the namespace holding the
    model's constants (and `extra`) for the synapses too."""
    c = _constants(model)
    mV, ms = b2.mV, b2.ms
    ns = dict(
        tau=c["tau"] * ms,
        v_rest=c["v_rest"] * mV,
        v_reset=c["v_reset"] * mV,
        v_th=c["v_th"] * mV,
        i_bg=c["i_bg"] * mV,
        tau_e=c["tau_e"] * ms,
        tau_i=c["tau_i"] * ms,
        **extra,
    )
    if model.lower() == "coba":
        ns.update(e_exc=c["e_exc"] * mV, e_inh=c["e_inh"] * mV, w_e=c["w_e"], w_i=c["w_i"])
        eqs = """
        dv/dt = (v_rest - v + ge*(e_exc - v) + gi*(e_inh - v) + i_bg)/tau : volt (unless refractory)
        dge/dt = -ge / tau_e : 1
        dgi/dt = -gi / tau_i : 1
        """
    else:
        ns.update(w_e=c["w_e"] * mV, w_i=c["w_i"] * mV)
        eqs = """
        dv/dt = (v_rest - v + ge + gi + i_bg) / tau : volt (unless refractory)
        dge/dt = -ge / tau_e : volt
        dgi/dt = -gi / tau_i : volt
        """
    group = b2.NeuronGroup(
        n,
        eqs,
        threshold="v >= v_th",
        reset="v = v_reset",
        refractory=c["t_ref"] * ms,
        method=method,
        namespace=ns,
        name="neurons",
    )
    group.v = "v_reset + rand() * (v_th - v_reset)"
    return group, ns


def run_brian2(
    model: str,
    n: int,
    *,
    duration_ms: float = 1000.0,
    dt: float = 0.1,
    seed: int = 0,
    threads: int = 1,
    repeats: int = 3,
    python: str | None = None,
    method: str = "euler",
    keep_dir: bool = False,
) -> dict:
    """Build, compile and run the network in Brian2's cpp_standalone mode.

    `method` is Brian2's integrator for the neuron equations: "euler" (forward Euler, as in
    BrainPy's and Brian2's own benchmark scripts; default) or "exponential_euler" (V exact
    over the step with g frozen; costs an exp per neuron per step in COBA).
    Single-threaded for threads <= 1 (no OpenMP), else OpenMP with that many threads. The
    project is generated into a fresh temporary directory (removed afterwards unless keep_dir)
    and compiled once; the binary then runs `repeats` times (same seed, same network).

    Returned times (seconds): `import_s` (importing brian2 in this call, 0 if already
    imported), `build_s` (constructing the Python objects and recording the run),
    `codegen_s` (C++ generation), `make_s` (gcc, Brian2's own timer), `compile_s`
    (codegen_s + make_s), `run_s` / `run_s_min` / `run_s_all` (median / min / all of the
    simulation loop alone, as the binary measures it: `device._last_run_time`), `binary_s`
    (median wall time of the whole binary: connectivity generation, the loop, writing
    results), `total_s` = import + build + compile + first binary run (end to end).
    """
    python = python or os.environ.get("JSYN_BRIAN2_PYTHON")
    if python:
        return _in_subprocess(
            python, "brian2", model, n, duration_ms, dt, seed, threads, repeats, method
        )
    c = _constants(model)
    b2, import_s = _import("brian2", _HINT)
    if shutil.which("g++") is None and shutil.which("c++") is None:
        raise ReferenceUnavailable("Brian2 cpp_standalone needs a C++ compiler (g++)")
    import numpy as np

    t0 = time.perf_counter()
    dev = brian2_standalone(b2, dt, seed, threads)
    n_exc, n_inh = split(n, c["frac_exc"])
    p = connection_prob(n)
    P, ns = brian2_neurons(b2, model, n, method)
    Ce = b2.Synapses(P[:n_exc], P, on_pre="ge += w_e", namespace=ns, name="exc_syn")
    Ce.connect(p=p)
    Ci = b2.Synapses(P[n_exc:], P, on_pre="gi += w_i", namespace=ns, name="inh_syn")
    Ci.connect(p=p)
    mon = b2.SpikeMonitor(P, record=False, name="spikes")  # counts only, no raster
    net = b2.Network(P, Ce, Ci, mon)
    net.run(duration_ms * b2.ms)
    build_s = time.perf_counter() - t0

    directory = tempfile.mkdtemp(prefix=f"jsyn-brian2-{model}-{n}-")
    try:
        t1 = time.perf_counter()
        dev.build(directory=directory, compile=True, run=False, with_output=False, clean=True)
        build_and_make_s = time.perf_counter() - t1
        make_s = float(dev.timers["compile"]["make"] or 0.0)
        binary, loop = [], []
        for _ in range(max(1, repeats)):
            t2 = time.perf_counter()
            dev.run(directory=directory, with_output=False)
            binary.append(time.perf_counter() - t2)
            loop.append(float(dev._last_run_time))
        counts = np.asarray(mon.count[:])
        n_syn = int(len(Ce)) + int(len(Ci))
    finally:
        dev.reinit()
        b2.set_device("runtime")
        if not keep_dir:
            shutil.rmtree(directory, ignore_errors=True)
    codegen_s = max(build_and_make_s - make_s, 0.0)
    out = dict(
        simulator="brian2",
        mode="cpp_standalone",
        method=method,
        versions=dict(brian2=b2.__version__, numpy=np.__version__, gcc=_gcc_version()),
        model=model.lower(),
        n=n,
        n_exc=n_exc,
        n_inh=n_inh,
        p=p,
        n_synapses=n_syn,
        duration_ms=duration_ms,
        dt_ms=dt,
        seed=seed,
        threads=threads,
        import_s=import_s,
        build_s=build_s,
        codegen_s=codegen_s,
        make_s=make_s,
        compile_s=codegen_s + make_s,
        binary_s=statistics.median(binary),
        binary_s_all=binary,
        **_summary(loop),
    )
    out["total_s"] = import_s + build_s + out["compile_s"] + binary[0]
    out.update(_rates(counts[:n_exc].sum(), counts[n_exc:].sum(), n_exc, n_inh, duration_ms))
    if keep_dir:
        out["directory"] = directory
    return out


def _gcc_version() -> str | None:
    try:
        return subprocess.run(
            ["gcc", "-dumpfullversion"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except Exception:
        return None


# --------------------------------------------------------------------------------------------
# BrainPy 2.x, event-driven CSR projections
# --------------------------------------------------------------------------------------------


def run_brainpy(
    model: str,
    n: int,
    *,
    duration_ms: float = 1000.0,
    dt: float = 0.1,
    seed: int = 0,
    threads: int = 1,
    repeats: int = 3,
    python: str | None = None,
) -> dict:
    """Build and run the network with BrainPy 2.x's object API, jitted, on the CPU.

    Four projections (E->E, E->I, I->E, I->I), each `ProjAlignPostMg2` with an
    `EventCSRLinear` (event-driven CSR, scalar weight) into an `Expon` synapse (one
    conductance per postsynaptic neuron) and a `COBA` / `CUBA` output, into two `LifRef`
    groups; float32, as BrainPy runs by default. The whole 1 s is one jitted `for_loop`.
    The first call compiles and runs; `repeats` further calls (state reset, same network) are
    the run times. `threads` is not used (XLA picks its own; pin with taskset to compare).

    Returned times (seconds): `import_s`, `build_s` (network construction, connectivity
    included), `first_call_s`, `compile_s` (tracing, lowering and XLA compilation during the
    first call, from jax.monitoring's /jax/core/compile/ events, overlaps counted once),
    `first_call_minus_run_s` (the same estimated by subtraction: noisy), `run_s` /
    `run_s_min` / `run_s_all`, `total_s` = import + build + first call.
    """
    python = python or os.environ.get("JSYN_BRAINPY_PYTHON")
    if python:
        return _in_subprocess(python, "brainpy", model, n, duration_ms, dt, seed, threads, repeats)
    c = _constants(model)
    bp, import_s = _import("brainpy", _HINT)
    try:
        import numba  # noqa: F401  (BrainPy's CPU event kernels are numba kernels)
    except ImportError as e:
        raise ReferenceUnavailable(f"BrainPy's CPU event kernels need numba ({e})") from e
    import brainpy.math as bm
    import jax
    import jax.numpy as jnp
    import numpy as np

    bm.set_dt(dt)
    bm.random.seed(seed)
    n_exc, n_inh = split(n, c["frac_exc"])
    p = connection_prob(n)
    coba = model.lower() == "coba"

    class EINet(bp.DynSysGroup):
        def __init__(self):
            super().__init__()
            pars = dict(
                V_rest=c["v_rest"],
                V_th=c["v_th"],
                V_reset=c["v_reset"],
                tau=c["tau"],
                tau_ref=c["t_ref"],
                V_initializer=bp.init.Uniform(c["v_reset"], c["v_th"]),
            )
            self.E = bp.dyn.LifRef(n_exc, **pars)
            self.I = bp.dyn.LifRef(n_inh, **pars)
            k = iter(range(4))
            self.E2E = self._proj(self.E, self.E, "exc", seed + next(k))
            self.E2I = self._proj(self.E, self.I, "exc", seed + next(k))
            self.I2E = self._proj(self.I, self.E, "inh", seed + next(k))
            self.I2I = self._proj(self.I, self.I, "inh", seed + next(k))
            self.count = bm.Variable(jnp.zeros(2, jnp.int32))

        @staticmethod
        def _proj(pre, post, kind, s):
            w, tau = (c["w_e"], c["tau_e"]) if kind == "exc" else (c["w_i"], c["tau_i"])
            if coba:
                out = bp.dyn.COBA.desc(E=c["e_exc"] if kind == "exc" else c["e_inh"])
            else:
                out = bp.dyn.CUBA.desc()
            conn = bp.conn.FixedProb(p, pre=pre.num, post=post.num, seed=s)
            return bp.dyn.ProjAlignPostMg2(
                pre=pre,
                delay=None,
                comm=bp.dnn.EventCSRLinear(conn, w),
                syn=bp.dyn.Expon.desc(post.num, tau=tau),
                out=out,
                post=post,
            )

        def update(self, inp):
            # projections read the spikes of the previous step, then the neurons integrate
            self.E2E()
            self.E2I()
            self.I2E()
            self.I2I()
            self.E(inp)
            self.I(inp)
            counts = jnp.stack([self.E.spike.value.sum(), self.I.spike.value.sum()])
            self.count.value += counts.astype(jnp.int32)

    t0 = time.perf_counter()
    net = EINet()
    n_syn = sum(
        int(np.asarray(proj.comm.indices).size) for proj in (net.E2E, net.E2I, net.I2E, net.I2I)
    )
    build_s = time.perf_counter() - t0

    indices = np.arange(int(round(duration_ms / dt)))
    i_bg = float(c["i_bg"])

    @bm.jit
    def simulate():
        bm.for_loop(lambda i: net.step_run(i, i_bg), indices)

    def call():
        t = time.perf_counter()
        simulate()
        jax.block_until_ready((net.E.V.value, net.I.V.value, net.count.value))
        return time.perf_counter() - t

    spans = []  # (start, end) of every trace / lowering / XLA compile during the first call

    def on_event(event, duration, **_):
        if event.startswith("/jax/core/compile/"):
            end = time.perf_counter()
            spans.append((end - duration, end))

    jax.monitoring.register_event_duration_secs_listener(on_event)
    try:
        first_call_s = call()
    finally:
        jax.monitoring.unregister_event_duration_listener(on_event)
    counts = np.asarray(net.count.value)
    runs = []
    for _ in range(max(1, repeats)):
        net.reset()  # new V(0) draw, g = 0, same connectivity
        net.count.value = jnp.zeros(2, jnp.int32)
        runs.append(call())
    out = dict(
        simulator="brainpy",
        mode="jit, event-driven CSR (numba CPU kernels)",
        versions=_versions(
            "brainpy", "brainstate", "brainevent", "jax", "jaxlib", "numba", "numpy"
        ),
        model=model.lower(),
        n=n,
        n_exc=n_exc,
        n_inh=n_inh,
        p=p,
        n_synapses=n_syn,
        duration_ms=duration_ms,
        dt_ms=dt,
        seed=seed,
        threads=threads,
        import_s=import_s,
        build_s=build_s,
        first_call_s=first_call_s,
        **_summary(runs),
    )
    out["compile_s"] = _union_length(spans)  # nested traces counted once
    out["first_call_minus_run_s"] = first_call_s - out["run_s"]
    out["total_s"] = import_s + build_s + first_call_s
    out.update(_rates(counts[0], counts[1], n_exc, n_inh, duration_ms))
    return out


def _union_length(spans) -> float:
    total, end = 0.0, float("-inf")
    for a, b in sorted(spans):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def _versions(*names) -> dict:
    from importlib import metadata

    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


# --------------------------------------------------------------------------------------------
# subprocess workers (another venv) and the command line
# --------------------------------------------------------------------------------------------

RUNNERS = {"brian2": run_brian2, "brainpy": run_brainpy}


def _in_subprocess(
    python, sim, model, n, duration_ms, dt, seed, threads, repeats, method="euler"
) -> dict:
    """Run one reference in `python` (another interpreter / venv); parse its JSON line."""
    cmd = [
        python, os.path.abspath(__file__), "--worker", sim, "--models", model,
        "--sizes", str(n), "--duration-ms", str(duration_ms), "--dt", str(dt),
        "--seed", str(seed), "--threads", str(threads), "--repeats", str(repeats),
        "--brian2-method", method,
    ]  # fmt: skip
    env = dict(os.environ)
    env.pop("JSYN_BRIAN2_PYTHON", None)
    env.pop("JSYN_BRAINPY_PYTHON", None)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            res = json.loads(line)
            if "unavailable" in res:
                raise ReferenceUnavailable(res["unavailable"])
            if "error" in res:
                raise RuntimeError(f"{sim} worker failed: {res['error']}")
            res["python"] = python
            return res
    raise RuntimeError(f"{sim} worker ({python}) printed no result:\n{proc.stderr[-3000:]}")


def available() -> dict[str, str | None]:
    """For each reference: None if it can run here, else the reason it cannot."""
    reasons = {}
    for sim, extra in (("brian2", None), ("brainpy", "numba")):
        env_py = os.environ.get(f"JSYN_{sim.upper()}_PYTHON")
        if env_py:
            reasons[sim] = None if os.path.exists(env_py) else f"{env_py} does not exist"
            continue
        try:
            _import(sim, _HINT)
            if extra:
                _import(extra, _HINT)
            if sim == "brian2" and shutil.which("g++") is None:
                raise ReferenceUnavailable("no C++ compiler (g++)")
            reasons[sim] = None
        except ReferenceUnavailable as e:
            reasons[sim] = str(e)
    return reasons


def _table(rows: list[dict]) -> str:
    head = (
        f"{'sim':8} {'model':5} {'N':>6} {'syn':>8} {'build':>7} {'compile':>8} "
        f"{'run med':>8} {'run min':>8} {'total':>7} {'rate':>6} {'rate E':>6} {'rate I':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        if "skipped" in r:
            lines.append(f"{r['simulator']:8} {r['model']:5} {r['n']:>6}  skipped: {r['skipped']}")
            continue
        lines.append(
            f"{r['simulator']:8} {r['model']:5} {r['n']:>6} {r['n_synapses']:>8} "
            f"{r['build_s']:>7.3f} {r['compile_s']:>8.3f} {r['run_s']:>8.3f} "
            f"{r['run_s_min']:>8.3f} {r['total_s']:>7.2f} {r['rate_hz']:>6.2f} "
            f"{r['rate_exc_hz']:>6.2f} {r['rate_inh_hz']:>6.2f}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="COBA/CUBA reference runs in Brian2 (cpp_standalone) and BrainPy; "
        "prints build, compile and run times (s) and firing rates (Hz).",
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=[4000], help="network sizes N")
    ap.add_argument("--models", nargs="+", default=["coba"], choices=sorted(MODELS))
    ap.add_argument("--sims", nargs="+", default=["brian2", "brainpy"], choices=sorted(RUNNERS))
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per size (default 3)")
    ap.add_argument("--duration-ms", type=float, default=1000.0)
    ap.add_argument("--dt", type=float, default=0.1, help="time step (ms)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="Brian2 OpenMP threads (<=1: none)")
    ap.add_argument(
        "--brian2-method",
        default="euler",
        choices=["euler", "exponential_euler"],
        help="Brian2's integrator (default: euler)",
    )
    ap.add_argument("--json", metavar="PATH", help="also write every result to PATH")
    ap.add_argument("--worker", choices=sorted(RUNNERS), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    kw = dict(
        duration_ms=args.duration_ms,
        dt=args.dt,
        seed=args.seed,
        threads=args.threads,
        repeats=args.repeats,
    )

    if args.worker:  # one run, one JSON line on stdout (see _in_subprocess)
        try:
            extra = dict(method=args.brian2_method) if args.worker == "brian2" else {}
            res = RUNNERS[args.worker](args.models[0], args.sizes[0], **kw, **extra)
        except ReferenceUnavailable as e:
            res = {"unavailable": str(e)}
        except Exception as e:
            res = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.flush()
        print(json.dumps(res))
        return 0

    rows = []
    for model in args.models:
        for n in args.sizes:
            for sim in args.sims:
                try:
                    extra = dict(method=args.brian2_method) if sim == "brian2" else {}
                    res = RUNNERS[sim](model, n, **kw, **extra)
                except ReferenceUnavailable as e:
                    res = dict(simulator=sim, model=model, n=n, skipped=str(e))
                res["cpus"] = sorted(os.sched_getaffinity(0))
                res["loadavg_after"] = os.getloadavg()
                rows.append(res)
                print(_table([res]).splitlines()[-1], flush=True, file=sys.stderr)
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, repeats={args.repeats}, "
        f"duration={args.duration_ms} ms, dt={args.dt} ms, seed={args.seed}, "
        f"affinity={sorted(os.sched_getaffinity(0))}, "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print(_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
