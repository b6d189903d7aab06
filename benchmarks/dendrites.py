"""1000 synapses (AMPA + NMDA with Mg block, Tsodyks-Markram STP) on a 97-compartment cell
with an HH soma: jsyn on jaxley (`jsyn.dendrites`) against Brian2's `SpatialNeuron`.

`python benchmarks/dendrites.py [--ms 250] [--repeats 3] [--no-brian2]` prints, for float32
on one CPU core: compile time, simulated seconds per wall second of the forward run, the
gradient of a somatic loss w.r.t. the 1000 per-synapse g_max (its time over the forward's),
and Brian2 (2.9, numpy target: no C compiler needed) running the same cell, synapses and
spike trains. Medians over repeats, the variants interleaved; the load average is printed.
"""

import argparse
import os
import time

import numpy as np

DT = 0.025  # ms
N_SYN, RATE = 1000, 5.0  # synapses, Hz
BRANCHES = [  # (parent, radius µm) of the 12 dendritic branches (8 compartments of 20 µm)
    (0, 1.0), (0, 1.0), (0, 1.0),
    (1, 0.7), (1, 0.7), (2, 0.7), (2, 0.7), (3, 0.7), (3, 0.7),
    (4, 0.5), (5, 0.5), (6, 0.5),
]  # fmt: skip
N_COMP_BRANCH, COMP_LENGTH, SOMA = 8, 20.0, (10.0, 20.0)  # soma cylinder (radius, length) µm
G_AMPA, G_NMDA = 0.5, 0.25  # nS per synapse


def jaxley_cell():
    import jaxley as jx
    from jaxley.channels import HH, Leak

    from jsyn.dendrites import jaxley_numerics

    with jaxley_numerics():
        branches = [jx.Branch(jx.Compartment(), 1)]
        branches += [jx.Branch(jx.Compartment(), N_COMP_BRANCH) for _ in BRANCHES]
        cell = jx.Cell(branches, parents=[-1] + [p for p, _ in BRANCHES])
        cell.set("axial_resistivity", 100.0)
        cell.branch(0).set("radius", SOMA[0])
        cell.branch(0).set("length", SOMA[1])
        for b, (_, radius) in enumerate(BRANCHES, start=1):
            cell.branch(b).set("radius", radius)
            cell.branch(b).set("length", COMP_LENGTH)
        cell.insert(Leak())
        cell.set("Leak_gLeak", 1e-4)
        cell.set("Leak_eLeak", -70.0)
        cell.branch(0).insert(HH())
        cell.set("v", -70.0)
        cell.init_states()
    return cell


def inputs(n_steps, rng):
    sites = rng.integers(1, 1 + len(BRANCHES) * N_COMP_BRANCH, N_SYN)  # dendritic compartments
    raster = (rng.random((n_steps, N_SYN)) < RATE * DT / 1000).astype(np.float32)
    return sites, raster


def jsyn_runs(cell, sites, raster):
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import jsyn
    from jsyn.dendrites import DendriticCell, PSCSites

    psc = jsyn.PSC(
        synapse=(jsyn.AMPA(), jsyn.NMDA()),
        output=(jsyn.COBA(g_max=jnp.full(N_SYN, G_AMPA, jnp.float32)), jsyn.MgBlock(G_NMDA)),
        stp=jsyn.STP(),
    )
    system = DendriticCell(cell, {"glu": PSCSites(psc, at=sites)}, readout=[0])
    x = {"glu": jnp.asarray(raster)}

    @jax.jit
    def forward(system):
        return jsyn.simulate(system, x, DT)[1]

    @jax.jit
    def gradient(g_max):
        def loss(g):
            s = eqx.tree_at(lambda s: s.placements["glu"].psc.output[0].g_max, system, g)
            return jnp.mean((jsyn.simulate(s, x, DT)[1] + 70.0) ** 2)

        return jax.grad(loss)(g_max)

    g0 = jnp.full(N_SYN, G_AMPA, jnp.float32)
    return {"jsyn forward": (forward, (system,)), "jsyn gradient": (gradient, (g0,))}


def brian2_run(sites, raster):
    import brian2 as b2

    b2.start_scope()
    b2.prefs.codegen.target = "numpy"
    b2.defaultclock.dt = DT * b2.ms
    morpho = b2.Cylinder(length=SOMA[1] * b2.um, diameter=2 * SOMA[0] * b2.um, n=1)
    kids = {0: morpho}
    for b, (parent, radius) in enumerate(BRANCHES, start=1):
        sec = b2.Cylinder(
            length=N_COMP_BRANCH * COMP_LENGTH * b2.um,
            diameter=2 * radius * b2.um,
            n=N_COMP_BRANCH,
        )
        setattr(kids[parent], f"b{b}", sec)
        kids[b] = sec
    eqs = """
    Im = gL*(EL - v) + gNa*m**3*h*(ENa - v) + gK*n**4*(EK - v) + gH*(EH - v) : amp/meter**2
    Is : amp (point current)
    vm = v/mV : 1
    dm/dt = (0.1*(-(vm + 40))/(exp(-(vm + 40)/10) - 1)*(1 - m) - 4*exp(-(vm + 65)/18)*m)/ms : 1
    dh/dt = (0.07*exp(-(vm + 65)/20)*(1 - h) - h/(exp(-(vm + 35)/10) + 1))/ms : 1
    dn/dt = (0.01*(-(vm + 55))/(exp(-(vm + 55)/10) - 1)*(1 - n) - 0.125*exp(-(vm + 65)/80)*n)/ms : 1
    gL : siemens/meter**2 (constant)
    EL : volt (constant)
    gNa : siemens/meter**2 (constant)
    gK : siemens/meter**2 (constant)
    gH : siemens/meter**2 (constant)
    """  # jaxley's HH (Sterratt et al.), leak everywhere
    cell = b2.SpatialNeuron(
        morphology=morpho,
        model=eqs,
        Cm=1 * b2.uF / b2.cm**2,
        Ri=100 * b2.ohm * b2.cm,
        method="exponential_euler",
        namespace={"ENa": 50 * b2.mV, "EK": -77 * b2.mV, "EH": -54.3 * b2.mV},
    )
    cell.v, cell.gL, cell.EL = -70 * b2.mV, 1e-4 * b2.siemens / b2.cm**2, -70 * b2.mV
    cell.gNa, cell.gK, cell.gH = 0, 0, 0
    cell.gNa[0], cell.gK[0] = 0.12 * b2.siemens / b2.cm**2, 0.036 * b2.siemens / b2.cm**2
    cell.gH[0] = 3e-4 * b2.siemens / b2.cm**2
    cell.m, cell.h, cell.n = 0.0529, 0.5961, 0.3177  # HH at rest (-65 mV); relaxes to -70
    steps, idx = np.nonzero(raster)
    pre = b2.SpikeGeneratorGroup(N_SYN, idx, steps * DT * b2.ms)
    syn = b2.Synapses(
        pre, cell, method="euler",
        model="""
        dg/dt = 0.98*0.5*int(t < pend)*(1 - g)/ms - 0.18*g/ms : 1 (clock-driven)
        dgn/dt = -gn/(100*ms) + 0.5*xs*(1 - gn)/ms : 1 (clock-driven)
        dxs/dt = -xs/(2*ms) : 1 (clock-driven)
        du/dt = -u/(1500*ms) : 1 (event-driven)
        dx/dt = (1 - x)/(200*ms) : 1 (event-driven)
        pend : second
        B = 1/(1 + 1.2/3.57*exp(-0.062*v_post/mV)) : 1
        Is_post = (gA*g + gN*gn*B)*(-v_post) : amp (summed)
        gA : siemens (constant)
        gN : siemens (constant)
        """,
        on_pre="""
        u += 0.15*(1 - u)
        r = u*x
        x -= r
        left = clip(pend - t, 0*ms, 0.5*ms)
        pend = t + left + r*(0.5*ms - left)
        xs += r
        """,
    )  # fmt: skip
    syn.connect(i=np.arange(N_SYN), j=np.asarray(sites))
    syn.x, syn.gA, syn.gN = 1.0, G_AMPA * b2.nS, G_NMDA * b2.nS
    mon = b2.StateMonitor(cell, "v", record=[0])
    net = b2.Network(cell, pre, syn, mon)

    def run():
        net.run(raster.shape[0] * DT * b2.ms)
        return np.asarray(mon.v[0] / b2.mV)

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ms", type=float, default=250.0, help="simulated time per run (ms)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-brian2", action="store_true")
    args = parser.parse_args()
    import jax

    jax.config.update("jax_platform_name", "cpu")
    n_steps = int(round(args.ms / DT))
    rng = np.random.default_rng(0)
    sites, raster = inputs(n_steps, rng)
    cell = jaxley_cell()
    runs = jsyn_runs(cell, sites, raster)
    print(
        f"{len(cell.nodes)} compartments, {N_SYN} synapses at {RATE} Hz, {args.ms} ms, "
        f"dt = {DT} ms, float32, device {jax.devices()[0].device_kind}"
    )
    for name, (f, a) in runs.items():
        t0 = time.perf_counter()
        jax.block_until_ready(f(*a))
        print(f"{name}: first call (compile + run) {time.perf_counter() - t0:.1f} s")
    times = {name: [] for name in [*runs, *([] if args.no_brian2 else ["brian2"])]}
    soma = {}
    for _ in range(args.repeats):  # interleaved
        for name, (f, a) in runs.items():
            t0 = time.perf_counter()
            out = jax.block_until_ready(f(*a))
            times[name].append(time.perf_counter() - t0)
            soma[name] = np.asarray(out)
        if not args.no_brian2:
            brian = brian2_run(sites, raster)  # a fresh network each time: the same run
            t0 = time.perf_counter()
            soma["brian2"] = brian()
            times["brian2"].append(time.perf_counter() - t0)
    for name in ("jsyn forward", "brian2"):
        if name in soma:
            v = soma[name].ravel()
            spikes = int(np.sum((v[:-1] < -20) & (v[1:] >= -20)))
            print(f"{name}: soma mean {v.mean():.2f} mV, max {v.max():.1f} mV, {spikes} spikes")
    sim_s = args.ms / 1000
    fwd = np.median(times["jsyn forward"])
    for name, ts in times.items():
        med = np.median(ts)
        print(
            f"{name:14s} median {med:7.3f} s  ->  {sim_s / med:6.3f} simulated s per wall s"
            f"  ({med / fwd:5.2f}x the jsyn forward)"
        )
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
