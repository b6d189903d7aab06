"""Output laws: sign convention, reversal, magnesium block."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from helpers import central_fd, spike_train


def test_cuba_is_linear_in_g():
    g = jnp.linspace(0.0, 2.0, 5)
    np.testing.assert_allclose(jsyn.CUBA(g_max=-3.0).current(g), -3.0 * g)


def test_coba_current_changes_sign_at_reversal():
    out = jsyn.COBA(g_max=0.6, E=-80.0)
    V = jnp.array([-90.0, -80.0, -70.0])
    I = out.current(jnp.full(3, 0.5), V)
    assert I[0] > 0 and I[1] == 0 and I[2] < 0  # drives V toward E from either side
    np.testing.assert_allclose(I, 0.6 * 0.5 * (-80.0 - V))
    excitatory = jsyn.COBA(g_max=1.0, E=0.0).current(jnp.asarray(1.0), jnp.asarray(-60.0))
    assert excitatory == 60.0  # positive: into the cell, depolarising


def test_mg_block_matches_jahr_stevens_formula():
    out = jsyn.MgBlock(g_max=2.0, E=0.0, cc_Mg=1.2, alpha=0.062, beta=3.57)
    V = jnp.linspace(-100.0, 40.0, 15)
    expected = 2.0 * 0.3 * (0.0 - V) / (1 + 1.2 / 3.57 * np.exp(-0.062 * V))
    np.testing.assert_allclose(out.current(jnp.full(15, 0.3), V), expected, rtol=1e-12)


def test_mg_block_is_finite_for_extreme_potentials():
    out = jsyn.MgBlock()
    V = jnp.array([-1e6, -1e3, 0.0, 1e3, 1e6])
    frac = out.unblocked(V)
    assert np.all(np.isfinite(frac)) and frac[0] == 0.0 and frac[-1] == 1.0
    grad = jax.vmap(jax.grad(lambda v: out.current(jnp.asarray(1.0), v)))(V)
    assert np.all(np.isfinite(grad))


def test_mg_block_gradients_match_finite_differences():
    def current(cc):
        return jsyn.MgBlock(cc_Mg=cc).current(jnp.asarray(0.4), jnp.asarray(-40.0))

    np.testing.assert_allclose(jax.grad(current)(1.2), central_fd(current, 1.2), rtol=1e-7)


def test_coba_rejects_negative_conductance():
    with pytest.raises(ValueError, match="COBA.g_max must be >= 0.*-0.5"):
        jsyn.COBA(g_max=-0.5)


def test_conductance_outputs_need_a_potential():
    with pytest.raises(TypeError, match="needs the membrane potential"):
        jsyn.COBA().current(jnp.asarray(1.0))


# -- parameter gradients against their closed forms -----------------------------------------

G, V = 0.4, jnp.array([-90.0, -70.0, -40.0, -10.0, 0.0, 20.0])


def test_coba_gradients_are_the_closed_form():
    """I = g_max g (E - V): dI/dE = g_max g, dI/dg_max = g (E - V), dI/dV = -g_max g."""

    def current(g_max, E, V):
        return jsyn.COBA(g_max=g_max, E=E).current(jnp.asarray(G), V)

    grads = jax.vmap(jax.grad(current, argnums=(0, 1, 2)), in_axes=(None, None, 0))
    d_gmax, d_E, d_V = grads(0.7, -80.0, V)
    np.testing.assert_allclose(d_E, np.full(6, 0.7 * G), rtol=1e-14)
    np.testing.assert_allclose(d_gmax, G * (-80.0 - V), rtol=1e-14)
    np.testing.assert_allclose(d_V, np.full(6, -0.7 * G), rtol=1e-14)


MG = dict(g_max=2.0, E=5.0, cc_Mg=1.2, alpha=0.062, beta=3.57, V_offset=-3.0)


def closed_form_derivatives(g, V, g_max, E, cc_Mg=0.0, alpha=0.062, beta=3.57, V_offset=0.0):
    """The derivatives of I = g_max g (E - V) B w.r.t. every parameter and V, by hand, with
    B = 1/(1 + u), u = (cc_Mg/beta) e^{-alpha (V - V_offset)} (MgBlock; cc_Mg = 0 is COBA)."""
    e = np.exp(-alpha * (V - V_offset))
    u = cc_Mg / beta * e
    B = 1.0 / (1.0 + u)
    G_, drive = g_max * g, E - V
    return {
        "g_max": g * drive * B,
        "E": G_ * B,
        "cc_Mg": -G_ * drive * B**2 * e / beta,
        "alpha": G_ * drive * B**2 * u * (V - V_offset),
        "beta": G_ * drive * B**2 * u / beta,
        "V_offset": -G_ * drive * B**2 * u * alpha,
        "V": -G_ * B + G_ * drive * B**2 * u * alpha,
    }


@pytest.mark.parametrize("cc_Mg", [1.2, 0.0])
def test_mg_block_gradients_are_the_closed_form(cc_Mg):
    """Every parameter of the block, and V, from -90 to +20 mV; also magnesium-free
    (cc_Mg = 0, where the block is 1 and d/d(cc_Mg) = -(g_max g (E - V)/beta) e^{-alpha(V -
    V_offset)}, which the sigmoid form once turned into NaN)."""
    params = dict(MG, cc_Mg=cc_Mg)

    def current(params, V):
        return jsyn.MgBlock(**params).current(jnp.asarray(G), V)

    as_arrays = {k: jnp.asarray(v) for k, v in params.items()}
    grads = jax.vmap(jax.grad(current, argnums=(0, 1)), in_axes=(None, 0))(as_arrays, V)
    want = closed_form_derivatives(G, np.asarray(V), **params)
    for name in MG:
        np.testing.assert_allclose(grads[0][name], want[name], rtol=1e-12, err_msg=name)
    np.testing.assert_allclose(grads[1], want["V"], rtol=1e-12)


@pytest.mark.parametrize(
    "output,params",
    [
        (jsyn.COBA(g_max=0.7, E=-80.0), dict(g_max=0.7, E=-80.0)),
        (jsyn.MgBlock(**MG), MG),
    ],
    ids=["COBA", "MgBlock"],
)
def test_output_parameter_gradients_through_a_psc_run(output, params):
    """Through `PSC` and `simulate`, d/d(param) of sum_n I_n is the closed-form derivative
    per unit g at V_hold times sum_n g_n (g does not depend on the output's parameters)."""
    x = spike_train(n_steps=200, n=2)
    synapse, V_hold = jsyn.NMDA(), -50.0
    _, g = jsyn.simulate(synapse, x, 0.1)

    def total(output):
        _, I = jsyn.simulate(jsyn.PSC(synapse, output, V_hold=V_hold), x, 0.1)
        return jnp.sum(I)

    grads = eqx.filter_grad(total)(output)
    want = closed_form_derivatives(1.0, V_hold, **params)
    for name in params:
        np.testing.assert_allclose(
            getattr(grads, name), want[name] * np.sum(g), rtol=1e-12, err_msg=name
        )
