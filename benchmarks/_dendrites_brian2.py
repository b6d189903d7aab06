"""Brian2's `SpatialNeuron` for the dendrite comparisons (tests/dendrites, benchmarks/dendrites.py):
a ball-and-stick cell of cylinders with exponential conductance synapses (the bench extra)."""

import numpy as np


def ball_and_stick_epsp(
    *, n_dend, soma, dend, r_axial, g_leak, e_leak, syn_comp, g_max, tau, E, spike_times, dt, T
):
    """Membrane potential (mV, shape (T, 1 + n_dend)) of a soma cylinder (`soma` = (radius,
    length) µm) with a dendrite of `n_dend` compartments (`dend` = (radius, total length) µm),
    leak `g_leak` (S/cm²) to `e_leak` (mV), axial resistivity `r_axial` (Ω cm), and one
    exponential synapse (g_max nS, tau ms, reversal E mV) on compartment `syn_comp`
    (0 = soma) receiving spikes at `spike_times` (ms). Row i is the potential at t = i·dt
    (Brian2's `on_pre` runs at the start of the step of the spike)."""
    import brian2 as b2

    b2.start_scope()
    b2.prefs.codegen.target = "numpy"
    b2.defaultclock.dt = dt * b2.ms
    morpho = b2.Cylinder(length=soma[1] * b2.um, diameter=2 * soma[0] * b2.um, n=1)
    morpho.dend = b2.Cylinder(length=dend[1] * b2.um, diameter=2 * dend[0] * b2.um, n=n_dend)
    eqs = """
    Im = gL * (EL - v) : amp/meter**2
    Is = gs * (Es - v) : amp (point current)
    dgs/dt = -gs / taus : siemens
    gL : siemens/meter**2 (constant)
    EL : volt (constant)
    Es : volt (constant)
    taus : second (constant)
    """
    cell = b2.SpatialNeuron(
        morphology=morpho,
        model=eqs,
        Cm=1 * b2.uF / b2.cm**2,
        Ri=r_axial * b2.ohm * b2.cm,
        method="exponential_euler",
    )
    cell.v = e_leak * b2.mV
    cell.gL = g_leak * b2.siemens / b2.cm**2
    cell.EL = e_leak * b2.mV
    cell.Es = E * b2.mV
    cell.taus = tau * b2.ms
    spikes = b2.SpikeGeneratorGroup(1, np.zeros(len(spike_times), int), spike_times * b2.ms)
    syn = b2.Synapses(spikes, cell, on_pre=f"gs += {g_max} * nS")
    syn.connect(i=0, j=syn_comp)
    mon = b2.StateMonitor(cell, "v", record=True)
    b2.run(T * dt * b2.ms)
    return np.asarray(mon.v / b2.mV).T
