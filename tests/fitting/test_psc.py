"""jsyn.PSC: the voltage-clamp current of a delay/STP/kinetics/output chain."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from helpers import DT, central_fd, spike_train


def spikes(**kw):
    return (spike_train(**kw) > 0).astype(jnp.float64)


def test_psc_equals_the_chain_stepped_by_hand():
    stp, syn = jsyn.STP(U=0.3, tau_f=50.0, tau_d=20.0), jsyn.DualExpon(1.0, 6.0)
    out = jsyn.COBA(g_max=2.0, E=0.0)
    psc = jsyn.PSC(syn, out, stp=stp, V_hold=-65.0)
    x = spikes(n_steps=200)
    _, I = jsyn.simulate(psc, x, DT)
    _, r = jsyn.simulate(stp, x, DT)
    _, g = jsyn.simulate(syn, r, DT)
    np.testing.assert_allclose(I, 2.0 * g * 65.0, rtol=1e-12)


def test_mixed_current_at_two_holding_potentials():
    """Column j is clamped at V_hold[j]; AMPA + NMDA currents add; at +40 mV the NMDA
    current is outward and far less blocked than at -70 mV."""
    x = jnp.zeros((400, 2)).at[10].set(1.0)
    V = jnp.array([-70.0, 40.0])
    ampa, nmda = jsyn.AMPA(), jsyn.NMDA()
    mg = jsyn.MgBlock(g_max=0.5)
    psc = jsyn.PSC((ampa, nmda), (jsyn.COBA(g_max=1.0), mg), V_hold=V)
    _, I = jsyn.simulate(psc, x, DT)
    _, ga = jsyn.simulate(ampa, x, DT)
    _, gn = jsyn.simulate(nmda, x, DT)
    expected = ga * (0.0 - V[None]) + 0.5 * gn * (0.0 - V[None]) * mg.unblocked(V)[None]
    np.testing.assert_allclose(I, expected, rtol=1e-12)
    assert I[:, 0].min() < 0 or I[:, 0].max() > 0
    assert np.all(np.asarray(I[:, 1]) <= 0.0)  # outward at +40 mV


PATHS = ["synapse.tau_rise", "synapse.tau_decay", "stp.U", "stp.tau_f", "stp.tau_d", "output.g_max"]


@pytest.mark.slow  # 14 s in the default lane (2 workers, 2 cores, load 3-4)
def test_grad_wrt_nested_parameters_matches_finite_differences():
    psc = jsyn.PSC(
        jsyn.DualExpon(1.5, 7.0),
        jsyn.COBA(g_max=0.5),
        stp=jsyn.STP(U=0.3, tau_f=20.0, tau_d=8.0),
        V_hold=-70.0,
    )
    x = spikes(n_steps=300)

    def getter(path):
        owner, name = path.split(".")
        return lambda m: getattr(getattr(m, owner), name)

    @eqx.filter_jit
    def loss(m):
        _, I = jsyn.simulate(m, x, DT)
        return jnp.sum(jnp.linspace(0.5, 1.5, I.size).reshape(I.shape) * I)

    # every leaf as float64 (so the finite differences are exact enough)
    psc = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), psc)
    grads = eqx.filter_grad(loss)(psc)
    for path in PATHS:
        where = getter(path)
        v0 = where(psc)
        fd = central_fd(lambda e: loss(eqx.tree_at(where, psc, v0 + e)), 0.0, eps=1e-5)
        np.testing.assert_allclose(where(grads), fd, rtol=1e-5, err_msg=path)


def test_construction_errors():
    with pytest.raises(ValueError, match="one output law per synapse.*2 synapses and 1"):
        jsyn.PSC((jsyn.AMPA(), jsyn.NMDA()), jsyn.COBA())
    with pytest.raises(TypeError, match="output laws such as COBA.*DualExpon"):
        jsyn.PSC(jsyn.DualExpon(), (jsyn.DualExpon(),))
    with pytest.raises(ValueError, match="PSC.V_hold must be finite"):
        jsyn.PSC(jsyn.DualExpon(), jsyn.COBA(), V_hold=jnp.nan)
    with pytest.raises(ValueError, match="DualExpon.tau_decay must be > 0"):
        jsyn.PSC(jsyn.DualExpon(1.0, -2.0), jsyn.COBA())


def test_clamp_convention_is_the_membrane_current_inward_negative():
    """An excitatory current at -70 mV flows into the cell: positive in jsyn's
    convention, negative as a voltage-clamp amplifier records it."""
    x = spikes(n_steps=200)
    kw = dict(V_hold=-70.0)
    _, into = jsyn.simulate(jsyn.PSC(jsyn.AMPA(), jsyn.COBA(E=0.0), **kw), x, DT)
    _, clamp = jsyn.simulate(
        jsyn.PSC(jsyn.AMPA(), jsyn.COBA(E=0.0), convention="clamp", **kw), x, DT
    )
    assert float(jnp.max(into)) > 0.0 and float(jnp.min(into)) >= 0.0
    np.testing.assert_array_equal(clamp, -into)
    with pytest.raises(
        ValueError, match="PSC.convention must be 'into_cell'.*'clamp'.*got 'inward'"
    ):
        jsyn.PSC(jsyn.AMPA(), jsyn.COBA(), convention="inward")


def test_a_holding_potential_in_volts_warns():
    """Issue 19: `V_hold=-0.07` (volts) fitted g_max = 1802 nS and said "converged"."""
    syn, out = jsyn.DualExpon(1.0, 6.0), jsyn.COBA(E=0.0)
    with pytest.warns(jsyn.UnitWarning, match=r"V_hold is in mV and -0.07 mV.*\(-70 mV\)"):
        jsyn.PSC(syn, out, V_hold=-0.07)
    with pytest.warns(jsyn.UnitWarning, match=r"0.04 mV"):
        jsyn.PSC(syn, out, V_hold=jnp.array([-70.0, 0.04]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jsyn.PSC(syn, out, V_hold=0.0)  # a common clamp for inhibitory currents
        jsyn.PSC(syn, out, V_hold=jnp.array([-70.0, 0.0, 10.0]))
        jax.jit(lambda v: jsyn.PSC(syn, out, V_hold=v).V_hold)(-0.07)  # traced: not known
