"""The weight a delayed spike carries on a plastic projection: the weight of its synapse at the
start of the step in which it arrives (as Brian2 and NEST apply the weight when the spike is
delivered), on every path: summed kinetics, per-synapse kinetics, one delay or one per
synapse, with STP."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn

DT = 0.1
W_SENT, W_ARRIVED = 0.4, 0.9


def trace(plastic, kinetics, delay, stp):
    """The output of a one-synapse projection for a spike at step 0; a plastic one has its
    weight changed from W_SENT to W_ARRIVED at step 2, while the spike is in flight."""
    w = W_SENT if plastic else W_ARRIVED
    per_synapse = kinetics == "synapse"
    proj = jsyn.Projection(
        jsyn.Sparse([0], [0], 1, 1, jnp.array([w])),
        jsyn.Expon(tau=jnp.array([3.0]) if per_synapse else 3.0),
        jsyn.CUBA(),
        stp=stp,
        delay=delay,
        dt=DT,
        synapse_params="synapse" if per_synapse else None,
        plasticity=jsyn.STDP() if plastic else None,  # no post spike: w changes only by hand
    )
    state, out = proj.init_state(), []
    for n in range(9):
        if plastic and n == 2:
            state = eqx.tree_at(lambda s: s.w, state, jnp.array([W_ARRIVED]))
        post = jnp.zeros(1) if plastic else None
        state, g = proj.step(state, jnp.array([1.0 if n == 0 else 0.0]), DT, post_spikes=post)
        out.append(g[0])
    return np.array(out)


STD = jsyn.STD(U=0.5)
PER_SYNAPSE = jnp.array([0.55])
slow = pytest.mark.slow
CASES = [  # (kinetics, delay, stp): summed kinetics with STP buffer two signals
    ("summed", 0.55, STD),
    ("summed", PER_SYNAPSE, STD),
    ("synapse", 0.5, None),
    ("synapse", PER_SYNAPSE, None),
    pytest.param("summed", 0.5, None, marks=slow),
    pytest.param("summed", PER_SYNAPSE, None, marks=slow),
    pytest.param("synapse", 0.55, STD, marks=slow),
    pytest.param("synapse", PER_SYNAPSE, STD, marks=slow),
]


@pytest.mark.parametrize("kinetics, delay, stp", CASES)
@pytest.mark.slow  # 31 s in the default lane (2 workers, 2 cores, load 3-4)
def test_a_delayed_spike_carries_the_weight_at_its_arrival(kinetics, delay, stp):
    plastic, static = trace(True, kinetics, delay, stp), trace(False, kinetics, delay, stp)
    assert static[:5].max() == 0 and static[6:].min() > 0  # the spike arrives in flight
    np.testing.assert_allclose(plastic, static, rtol=1e-12, atol=1e-15)
