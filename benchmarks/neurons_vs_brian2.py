"""AdEx and Izhikevich against Brian2 running the same equations (RK4, numpy target) at a
5x smaller dt, over 1 s of noisy input: spike counts and the largest spike-time difference.

Run with the bench extra: `python benchmarks/neurons_vs_brian2.py` (prints, asserts nothing).
"""

import warnings

import brian2 as b2
import jax
import jax.numpy as jnp
import numpy as np

import jsyn

jax.config.update("jax_enable_x64", True)
warnings.filterwarnings("ignore")  # Brian2's parser: pyparsing deprecations
DT, FINE, DURATION, HOLD = 0.01, 0.002, 1000.0, 1.0  # ms


def noisy_current(mean, sd, seed=0):
    """A current held for 1 ms at a time: mean plus Gaussian noise."""
    return mean + sd * np.random.default_rng(seed).standard_normal(int(DURATION / HOLD))


def brian2_spikes(equations, threshold, reset, namespace, init, current):
    b2.prefs.codegen.target = "numpy"
    b2.start_scope()
    b2.defaultclock.dt = FINE * b2.ms
    namespace = {**namespace, "I_in": b2.TimedArray(current, dt=HOLD * b2.ms)}
    group = b2.NeuronGroup(1, equations, threshold=threshold, reset=reset, method="rk4")
    for name, value in init.items():
        setattr(group, name, value)
    monitor = b2.SpikeMonitor(group)
    b2.run(DURATION * b2.ms, namespace=namespace)
    return np.asarray(monitor.t / b2.ms)


def jsyn_spikes(neuron, current):
    drive = jnp.asarray(np.repeat(current, int(round(HOLD / DT)))[:, None])
    _, spikes = jax.jit(lambda x: jsyn.simulate(neuron, x, DT))(drive)
    return (np.flatnonzero(np.asarray(spikes[:, 0])) + 1) * DT  # the end of the step


def adex():
    # Naud et al. 2008's adapting cell; the cut at V_T + 5 Delta_T as Brian2's AdEx example
    p = dict(C=200.0, g_L=12.0, E_L=-70.0, V_T=-50.0, Delta_T=2.0, tau_w=300.0, a=2.0)
    p.update(b=60.0, V_reset=-58.0, V_peak=-40.0)
    eqs = """
    dV/dt = (-g_L*(V - E_L) + g_L*Delta_T*exp((V - V_T)/Delta_T) - w + I_in(t)*pA)/C : volt
    dw/dt = (a*(V - E_L) - w)/tau_w : amp
    """
    ns = dict(C=p["C"] * b2.pF, g_L=p["g_L"] * b2.nS, E_L=p["E_L"] * b2.mV)
    ns.update(V_T=p["V_T"] * b2.mV, Delta_T=p["Delta_T"] * b2.mV, tau_w=p["tau_w"] * b2.ms)
    ns.update(a=p["a"] * b2.nS, b=p["b"] * b2.pA, V_r=p["V_reset"] * b2.mV)
    ns.update(V_peak=p["V_peak"] * b2.mV)
    current = noisy_current(350.0, 150.0)
    init = {"V": -70.0 * b2.mV, "w": 0 * b2.pA}
    theirs = brian2_spikes(eqs, "V > V_peak", "V = V_r; w += b", ns, init, current)
    return jsyn_spikes(jsyn.AdEx(**p), current), theirs


def izhikevich():
    eqs = """
    dv/dt = (0.04*v**2/mV + 5*v + 140*mV - u + I_in(t)*mV)/ms : volt
    du/dt = a*(b*v - u)/ms : volt
    """
    ns = dict(a=0.02, b=0.2, c=-65.0 * b2.mV, d=8.0 * b2.mV)
    current = noisy_current(10.0, 4.0)
    init = {"v": -65.0 * b2.mV, "u": -13.0 * b2.mV}
    theirs = brian2_spikes(eqs, "v >= 30*mV", "v = c; u += d", ns, init, current)
    return jsyn_spikes(jsyn.Izhikevich(), current), theirs


if __name__ == "__main__":
    for name, run in (("AdEx", adex), ("Izhikevich", izhikevich)):
        ours, theirs = run()
        line = f"{name}: jsyn {len(ours)} spikes (dt {DT} ms), Brian2 {len(theirs)} ({FINE} ms)"
        if len(ours) == len(theirs):
            line += f", largest spike-time difference {np.abs(ours - theirs).max():.3f} ms"
        print(line)
