"""Constrained parametrisations."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn


@pytest.mark.parametrize("cls", [jsyn.LogPositive, jsyn.SoftplusPositive])
@pytest.mark.parametrize("value", [1e-6, 0.3, 8.0, 1e4])
def test_positive_parametrisations_round_trip(cls, value):
    np.testing.assert_allclose(cls(value).value(), value, rtol=1e-10)


def test_bounded_round_trips_and_stays_inside():
    p = jsyn.Bounded(jnp.array([0.01, 0.5, 0.99]))
    np.testing.assert_allclose(p.value(), [0.01, 0.5, 0.99], rtol=1e-12)
    far = eqx.tree_at(lambda q: q.raw, p, jnp.array([-1e3, 0.0, 1e3]))
    assert np.all((far.value() >= 0) & (far.value() <= 1))
    with pytest.raises(ValueError, match="strictly inside"):
        jsyn.Bounded(1.5)
    with pytest.raises(ValueError, match="lower < upper"):
        jsyn.Bounded(0.5, lower=1.0, upper=0.0)


@pytest.mark.parametrize("cls", [jsyn.LogPositive, jsyn.SoftplusPositive])
def test_positive_parametrisations_reject_nonpositive_values(cls):
    with pytest.raises(ValueError, match="> 0"):
        cls(-1.0)


def test_any_raw_value_gives_a_valid_model():
    """An optimiser may move raw anywhere: the physical value stays positive."""
    syn = jsyn.Expon(tau=jsyn.LogPositive(5.0))
    moved = eqx.tree_at(lambda s: s.tau.raw, syn, jnp.asarray(-30.0))
    _, g = jsyn.simulate(moved, jnp.ones((5, 1)), 0.1)
    assert np.all(np.isfinite(g))


def test_gradient_in_raw_space_is_chain_rule_of_physical_gradient():
    x = jnp.zeros((100, 1)).at[3, 0].set(1.0)

    def loss(syn):
        return jnp.sum(jsyn.simulate(syn, x, 0.1)[1])

    d_tau = jax.grad(lambda t: loss(jsyn.Expon(tau=t)))(4.0)
    d_raw = eqx.filter_grad(loss)(jsyn.Expon(tau=jsyn.LogPositive(4.0))).tau.raw
    np.testing.assert_allclose(d_raw, d_tau * 4.0, rtol=1e-10)  # d tau / d raw = tau
