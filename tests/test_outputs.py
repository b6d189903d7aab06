"""Output laws: sign convention, reversal, magnesium block."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from helpers import central_fd


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
