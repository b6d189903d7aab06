"""`jsyn.trials`: each trial of a batch laid side by side equals its single run (spike trains
identical, traces to rounding), for Sparse and Dense connections, delays, STP, Poisson
groups with a key per trial, parameters per trial and a plastic projection."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn

DT = 0.1
N_E, N_I, N_P = 24, 8, 16
N = N_E + N_I


def network(*, dense=False, plastic=False, g_p=1.0):
    """A small E/I network driven by a Poisson group: delays (whole and fractional steps),
    STD on the inhibitory projection, per-synapse kinetics (AMPA) from the source."""
    ee = jsyn.fixed_prob(N_E, N, 0.3, key=jax.random.key(1), w=0.8)
    ii = jsyn.fixed_prob(N_I, N, 0.3, key=jax.random.key(2), w=4.0)
    pin = jsyn.fixed_prob(N_P, N_E, 0.5, key=jax.random.key(3), w=1.0)
    ei = jax.random.uniform(jax.random.key(4), (N_E, N_I)) * 0.5
    ei_conn = jsyn.from_matrix(ei, sparse=not dense)
    return jsyn.Network(
        {
            "cells": (jsyn.LIF(V_rest=-45.0, tau_ref=2.0), N),
            "P": jsyn.Poisson(jnp.full((N_P,), 50.0)),
        },
        {
            "E": jsyn.Projection(
                ee,
                jsyn.Expon(5.0),
                jsyn.COBA(E=0.0),
                pre="cells",
                post="cells",
                pre_slice=(0, N_E),
                delay=1.5,
                dt=DT,
            ),
            "I": jsyn.Projection(
                ii,
                jsyn.Expon(10.0),
                jsyn.COBA(E=-80.0),
                stp=jsyn.STD(tau=100.0, U=0.3),
                pre="cells",
                post="cells",
                pre_slice=(N_E, N),
            ),
            "P": jsyn.Projection(
                pin,
                jsyn.AMPA(),
                jsyn.COBA(g_max=g_p, E=0.0),
                pre="P",
                post="cells",
                post_slice=(0, N_E),
                plasticity=jsyn.STDP(A_plus=0.05, w_max=2.0) if plastic else None,
            ),
            "D": jsyn.Projection(
                ei_conn,
                jsyn.Expon(3.0),
                jsyn.COBA(E=0.0),
                pre="cells",
                post="cells",
                pre_slice=(0, N_E),
                post_slice=(N_E, N),
                delay=0.35,
                dt=DT,
            ),
        },
    )


def record(state, spikes):
    return {"spikes": spikes["cells"], "V": state.groups["cells"].V}


def check_trials(batch, single_of, keys, n_steps):
    """Run the batch once and each trial alone; compare spikes exactly, V to rounding."""
    state = batch.init_state(keys)
    final, out = jsyn.simulate(batch.net, None, DT, state=state, n_steps=n_steps, record=record)
    spikes, V = batch.split(out["spikes"], "cells"), batch.split(out["V"], "cells")
    finals = batch.split_state(final)
    total = 0.0
    for b in range(batch.B):
        last, one = jsyn.simulate(
            single_of(b), None, DT, key=keys[b], n_steps=n_steps, record=record
        )
        np.testing.assert_array_equal(spikes[b], one["spikes"])
        np.testing.assert_allclose(V[b], one["V"], rtol=0, atol=1e-9)
        for got, want in zip(jax.tree.leaves(finals), jax.tree.leaves(last)):
            if jax.dtypes.issubdtype(want.dtype, jax.dtypes.prng_key):
                want, got = jax.random.key_data(want), jax.random.key_data(got[b])
            else:
                got = got[b]
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
        total += float(one["spikes"].sum())
    assert total > 20 * batch.B  # the trials are active enough to test something


@pytest.mark.slow
def test_each_trial_of_a_sparse_network_equals_its_single_run():
    net = network()
    keys = jax.random.split(jax.random.key(0), 3)
    check_trials(jsyn.trials(net, 3), lambda b: net, keys, n_steps=150)


@pytest.mark.slow  # 12 s in the default lane (2 workers, 2 cores, load 3-4)
def test_the_trials_differ_and_the_batch_is_one_sparse_population():
    net = network()
    batch = jsyn.trials(net, 3)
    assert dict(batch.net.sizes) == {"cells": 3 * N, "P": 3 * N_P}
    conn = batch.net.projections["E"].conn
    assert isinstance(conn, jsyn.Sparse) and conn.n_syn == 3 * net.projections["E"].conn.n_syn
    assert batch.net.projections["E"].pre_slice == (0, 3 * N_E)
    # block-diagonal: trial b's neurons (i * B + b) reach only trial b's
    np.testing.assert_array_equal(conn.pre_idx % 3, conn.post_idx % 3)
    state = batch.init_state(jax.random.split(jax.random.key(0), 3))
    assert state.groups["cells"].V.shape == (3 * N,)
    assert state.groups["P"].key.shape == (3,)  # one key per trial
    split = batch.split_state(state)
    assert split.groups["cells"].V.shape == (3, N)
    assert split.projections["E"].transmission.arrivals.buffer.shape[::2] == (3, N)


@pytest.mark.slow
def test_each_trial_equals_its_single_run_with_dense_and_plastic_projections():
    net = network(dense=True, plastic=True)
    keys = jax.random.split(jax.random.key(7), 2)
    check_trials(jsyn.trials(net, 2), lambda b: net, keys, n_steps=300)


@pytest.mark.slow
def test_parameters_per_trial_from_a_grid_of_networks():
    g_values = [0.5, 1.0, 2.0]
    batch = jsyn.trials(jsyn.grid(network(), {"projections['P'].output.g_max": g_values}))
    assert batch.B == 3
    assert batch.net.projections["P"].output.g_max.shape == (3 * N_E,)
    assert jnp.ndim(batch.net.projections["E"].output.g_max) == 0  # shared stays scalar
    keys = jnp.stack([jax.random.key(3)] * 3)  # the same key: only g_max differs
    check_trials(batch, lambda b: network(g_p=g_values[b]), keys, n_steps=200)


@pytest.mark.slow
def test_initial_states_and_inputs_per_trial():
    net = network()
    B, T = 2, 120
    keys = jax.random.split(jax.random.key(1), B)
    V0 = jax.random.uniform(jax.random.key(2), (B, N), minval=-60.0, maxval=-50.0)
    drive = jax.random.uniform(jax.random.key(3), (T, B, N), maxval=30.0)

    def start(k, v):
        return eqx.tree_at(lambda s: s.groups["cells"].V, net.init_state(key=k), v)

    batch = jsyn.trials(net, B)
    state = batch.merge_state(jax.vmap(start)(keys, V0))
    inputs = batch.merge_inputs({"cells": drive})
    _, out = jsyn.simulate(batch.net, inputs, DT, state=state, record=record)
    spikes = batch.split(out["spikes"], "cells")
    for b in range(B):
        _, one = jsyn.simulate(
            net, {"cells": drive[:, b]}, DT, state=start(keys[b], V0[b]), record=record
        )
        np.testing.assert_array_equal(spikes[b], one["spikes"])


def test_bad_uses_are_refused_with_the_fix():
    net = jsyn.Network({"cells": (jsyn.LIF(), N), "P": jsyn.Poisson(jnp.full((3,), 5.0))})
    with pytest.raises(ValueError, match="B >= 1"):
        jsyn.trials(net, 0)
    with pytest.raises(TypeError, match="Network"):
        jsyn.trials(jsyn.Expon(1.0), 2)
    batch = jsyn.trials(net, 2)
    with pytest.raises(TypeError, match="one key per trial"):
        batch.init_state()
    with pytest.raises(ValueError, match=r"\(time, 2, 32\)"):
        batch.merge_inputs({"cells": jnp.zeros((5, 32))})
    with pytest.raises(ValueError, match="64 values"):
        batch.split(jnp.zeros((5, 32)), "cells")


@pytest.mark.slow  # 12 s in the default lane (2 workers, 2 cores, load 3-4)
def test_gap_junctions_in_trials_equal_single_runs():
    """A gap junction between two groups and one within a group (spikelets and currents),
    with a conductance per trial: each trial equals its single run."""

    def coupled(w):
        between = jsyn.GapJunction(jsyn.all_to_all(2, 3, w), 0.8, pre="A", post="B")
        within = jsyn.GapJunction(
            jsyn.all_to_all(2, 2, w, self_connections=False), 0.5, pre="A", post="A"
        )
        groups = {"A": (jsyn.LIF(tau_ref=1.0), 2), "B": (jsyn.LIF(), 3)}
        return jsyn.Network(groups, gaps={"ab": between, "aa": within})

    ws = (0.1, 0.3)
    inputs = {"A": jnp.array([30.0, 24.0]), "B": jnp.array([5.0, 8.0, 2.0])}
    T = 200
    batch = jsyn.trials(jsyn.stack([coupled(w) for w in ws]))
    x = batch.merge_inputs({g: jnp.broadcast_to(I, (T, 2, I.shape[0])) for g, I in inputs.items()})
    record = lambda s, spikes: (spikes, s.groups["B"].V)  # noqa: E731
    _, (spikes, V) = jsyn.simulate(batch.net, x, DT, state=batch.init_state(), record=record)
    for b, w in enumerate(ws):
        single = {g: jnp.broadcast_to(I, (T, I.shape[0])) for g, I in inputs.items()}
        _, (s_spikes, s_V) = jsyn.simulate(coupled(w), single, DT, record=record)
        assert np.asarray(s_spikes["A"]).sum() > 2  # spikelets are sent
        for g in ("A", "B"):
            np.testing.assert_array_equal(batch.split(spikes[g], g)[b], s_spikes[g])
        np.testing.assert_allclose(batch.split(V, "B")[b], s_V, rtol=1e-9, atol=1e-9)


ON_DEVICES = """
import sys
sys.path[:0] = [{here!r}, {tests!r}]
import jax, numpy as np, jsyn
from test_trial_batch import DT, network, record
assert len(jax.devices()) == 4
net = network()
batch = jsyn.trials(net, 4)
state = batch.init_state(jax.random.split(jax.random.key(0), 4))
final, out = jsyn.simulate(batch.net, None, DT, state=state, n_steps=100, record=record)
final4, out4 = batch.simulate(DT, state=state, n_steps=100, record=record)
assert out4["spikes"].shape == (4, 100, N) and len(out4["spikes"].sharding.device_set) == 4
spikes = batch.split(out["spikes"], "cells")
assert spikes.sum() > 40
np.testing.assert_array_equal(batch.split_devices(out4["spikes"], "cells"), spikes)
V4, V = batch.split_devices(out4["V"], "cells"), batch.split(out["V"], "cells")
np.testing.assert_allclose(V4, V, atol=1e-9)
finals = (jax.tree.leaves(batch.split_state(f)) for f in (final, final4))
for a, b in zip(*finals):
    if not jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
        np.testing.assert_allclose(a, b, atol=1e-9)
"""


@pytest.mark.slow
def test_trials_split_over_four_devices_equal_the_one_device_run():
    import os
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).parent
    tests = here.parent
    src = str(tests.parent / "src")
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
        "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
        "JAX_ENABLE_X64": "1",
    }
    code = ON_DEVICES.replace("{here!r}", repr(str(here))).replace("{tests!r}", repr(str(tests)))
    code = code.replace("N)", f"{N})")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]


@pytest.mark.slow
def test_a_plastic_projection_with_stp_and_a_delay_batches_its_sent_spikes_and_traces():
    """Event-driven STDP on summed kinetics with STP and a delay: per-neuron traces and a
    buffer of the sent spikes and efficacies (two rows per neuron) in the batch."""
    net = network()
    plastic = eqx.tree_at(
        lambda n: n.projections["E"],
        net,
        jsyn.Projection(
            jsyn.fixed_prob(N_E, N, 0.3, key=jax.random.key(1), w=0.8),
            jsyn.Expon(5.0),
            jsyn.COBA(E=0.0),
            stp=jsyn.STD(tau=100.0, U=0.3),
            pre="cells",
            post="cells",
            pre_slice=(0, N_E),
            delay=1.5,
            dt=DT,
            plasticity=jsyn.STDP(A_plus=0.05, w_max=2.0),
        ),
    )
    keys = jax.random.split(jax.random.key(5), 2)
    check_trials(jsyn.trials(plastic, 2), lambda b: plastic, keys, n_steps=150)


@pytest.mark.slow
def test_a_plastic_projection_with_per_synapse_delays_batches_its_trace_history():
    """Event-driven STDP and TripletSTDP (nn_symm, whole steps) with one delay per synapse:
    per-neuron traces, the history of the presynaptic ones (one block per trace) and the
    sent spikes and efficacies in the batch."""
    net = network()
    ee = jsyn.fixed_prob(N_E, N, 0.3, key=jax.random.key(1), w=0.8)
    rng = np.random.default_rng(6)
    delay = rng.uniform(0.0, 1.5, ee.n_syn)
    whole = np.round(rng.uniform(0.0, 1.5, net.projections["D"].conn.n_syn), 1)  # in steps
    common = dict(pre="cells", post="cells", pre_slice=(0, N_E), dt=DT, max_delay=1.5)
    rule = jsyn.TripletSTDP(A2_plus=0.02, A3_plus=0.05, A2_minus=0.02, pairing="nn_symm")
    plastic = eqx.tree_at(
        lambda n: (n.projections["E"], n.projections["D"]),
        net,
        (
            jsyn.Projection(
                ee,
                jsyn.Expon(5.0),
                jsyn.COBA(E=0.0),
                stp=jsyn.STD(tau=100.0, U=0.3),
                delay=delay,
                plasticity=jsyn.STDP(A_plus=0.05, w_max=2.0),
                **common,
            ),
            jsyn.Projection(
                net.projections["D"].conn,
                jsyn.Expon(3.0),
                jsyn.COBA(E=0.0),
                delay=whole,
                plasticity=rule,
                post_slice=(N_E, N),
                **common,
            ),
        ),
    )
    assert all(plastic.projections[p].transmission.by_events for p in "ED")
    keys = jax.random.split(jax.random.key(5), 2)
    check_trials(jsyn.trials(plastic, 2), lambda b: plastic, keys, n_steps=150)


def stochastic_network(k=0.5):
    """Every stochastic part and the neuromodulator: a Poisson source through binomial
    release (per-synapse kinetics, with STP as the release probability) and through
    QuantalSTP; OUNoise kinetics (summed, and per synapse); a one-cell neuromodulator that
    every postsynaptic neuron reads, as a modulated gain and a RewardSTDP rule."""
    src = jsyn.fixed_prob(N_P, N_E, 0.5, key=jax.random.key(3), w=1.5)
    ee = jsyn.fixed_prob(N_E, N_E, 0.3, key=jax.random.key(1), w=0.8)
    groups = {
        "cells": (jsyn.LIF(V_rest=-52.0, tau_ref=2.0), N_E),
        "P": jsyn.Poisson(jnp.full((N_P,), 80.0)),
        "DA": (jsyn.Neuromodulator(tau_d=20.0), 1),
    }
    projections = {
        "release": jsyn.Projection(
            src,
            jsyn.AMPA(),
            jsyn.COBA(E=0.0),
            pre="P",
            post="cells",
            stp=jsyn.STP(U=0.4, tau_f=20.0, tau_d=50.0),
            release=jsyn.StochasticRelease(None, n_sites=3),
            delay=0.3,
            dt=DT,
        ),
        "quantal": jsyn.Projection(
            jsyn.all_to_all(N_P, N_E, 0.3),
            jsyn.Expon(5.0),
            jsyn.COBA(E=0.0),
            pre="P",
            post="cells",
            stp=jsyn.QuantalSTP(U=0.5, n_sites=4, tau_d=50.0),
            modulation=jsyn.ModulatedGain("DA", k=k),
        ),
        "noise": jsyn.Projection(
            ee,
            jsyn.OUNoise(g0=0.2, sigma=0.1, tau=3.0),
            jsyn.COBA(E=0.0),
            pre="cells",
            post="cells",
            plasticity=jsyn.RewardSTDP(modulator="DA"),
            synapse_params="synapse",
        ),
        "summed noise": jsyn.Projection(
            jsyn.one_to_one(N_E, w=0.0),
            jsyn.OUNoise(g0=0.1, sigma=0.05, tau=2.0),
            jsyn.COBA(E=0.0),
            pre="cells",
            post="cells",
            release=jsyn.StochasticRelease(0.5),
        ),
    }
    return jsyn.Network(groups, projections)


def check_stochastic(batch, single_of, keys, n_steps, inputs=None):
    def rec(state, spikes):
        return {
            "spikes": spikes["cells"],
            "V": state.groups["cells"].V,
            "g": {p: s.g for p, s in state.projections.items()},
        }

    state = batch.init_state(keys)
    x = None if inputs is None else batch.merge_inputs(inputs)
    final, out = jsyn.simulate(batch.net, x, DT, state=state, n_steps=n_steps, record=rec)
    spikes, V = batch.split(out["spikes"], "cells"), batch.split(out["V"], "cells")
    finals = batch.split_state(final)
    total = 0.0
    for b in range(batch.B):
        one_x = None if inputs is None else {g: v[:, b] for g, v in inputs.items()}
        last, one = jsyn.simulate(single_of(b), one_x, DT, key=keys[b], n_steps=n_steps, record=rec)
        np.testing.assert_array_equal(spikes[b], one["spikes"])
        np.testing.assert_allclose(V[b], one["V"], rtol=0, atol=1e-9)
        for p, g in one["g"].items():
            np.testing.assert_allclose(batch.split(out["g"][p], N_E)[b], g, rtol=0, atol=1e-9)
        for got, want in zip(jax.tree.leaves(finals), jax.tree.leaves(last), strict=True):
            if jax.dtypes.issubdtype(want.dtype, jax.dtypes.prng_key):
                want, got = jax.random.key_data(want), jax.random.key_data(got[b])
                np.testing.assert_array_equal(got, want)
            else:
                np.testing.assert_allclose(got[b], want, rtol=0, atol=1e-9)
        total += float(one["spikes"].sum())
    assert total > 20 * batch.B


@pytest.mark.slow
def test_stochastic_parts_and_a_shared_neuromodulator_in_trials_equal_single_runs():
    """Each trial draws from its own key what its single run draws: Poisson, binomial
    release (with STP as its probability, and on summed kinetics), QuantalSTP, OUNoise
    (summed and per synapse), and a one-cell neuromodulator read by a modulated gain
    and a RewardSTDP rule."""
    net = stochastic_network()
    B, T = 3, 120
    keys = jax.random.split(jax.random.key(4), B)
    rewards = jnp.zeros((T, B, 1)).at[30, :].set(1.0).at[70, 1].set(2.0)
    check_stochastic(jsyn.trials(net, B), lambda b: net, keys, T, {"DA": rewards})
    batch = jsyn.trials(net, B)
    assert dict(batch.net.sizes)["DA"] == B  # one cell per trial, read by its neurons
    assert batch.init_state(keys).projections["release"].key.shape == (B,)


@pytest.mark.slow
def test_a_modulated_gain_per_trial_from_a_grid():
    ks = [0.0, 1.0, 3.0]
    batch = jsyn.trials(
        jsyn.grid(stochastic_network(), {"projections['quantal'].modulation.k": ks})
    )
    assert batch.net.projections["quantal"].modulation.k.shape == (3 * N_E,)
    keys = jnp.stack([jax.random.key(2)] * 3)  # the same key: only k differs
    rewards = jnp.zeros((100, 3, 1)).at[20, :].set(1.0)
    check_stochastic(batch, lambda b: stochastic_network(ks[b]), keys, 100, {"DA": rewards})


class _ClockState(eqx.Module):
    V: jax.Array
    steps: jax.Array  # one counter for every cell: undeclared, so it cannot be laid out


class _DeclaredClockState(eqx.Module):
    V: jax.Array
    steps: jax.Array = jsyn.axis("shared")  # the trials share it


class _Clock(jsyn.AbstractNeuron):
    """A neuron of one's own that spikes every third step with a step counter in its
    state (a value the trials share), declared or not."""

    declared: bool = eqx.field(static=True)

    def constraints(self):
        return ()

    def init_state(self, n, *, dtype=None):
        cls = _DeclaredClockState if self.declared else _ClockState
        return cls(V=jnp.zeros(n, dtype), steps=jnp.zeros((), jnp.int32))

    def step(self, state, x, dt):
        V = state.V + jnp.asarray(x, state.V.dtype) * dt
        spikes = jnp.where(state.steps % 3 == 0, 1.0, 0.0) * jnp.ones_like(V)
        return type(state)(V=V, steps=state.steps + 1), spikes


def test_a_state_field_of_ones_own_is_laid_out_as_it_declares_or_refused():
    def net(declared):
        proj = jsyn.Projection(
            jsyn.all_to_all(2, 3, 0.5), jsyn.Expon(2.0), jsyn.CUBA(g_max=10.0), pre="c", post="E"
        )
        groups = {"c": (_Clock(declared), 2), "E": (jsyn.LIF(), 3)}
        return jsyn.Network(groups, {"p": proj})

    with pytest.raises(ValueError, match=r"_ClockState.steps.*must declare its axis"):
        jsyn.trials(net(False), 2).init_state()
    batch = jsyn.trials(net(True), 2)
    assert isinstance(batch, eqx.Module)  # a pytree: jit and tree maps see through it
    state = batch.init_state()
    assert state.groups["c"].steps.shape == ()  # one counter for the batch
    drive = jnp.stack([jnp.full((30, 2), 1.0), jnp.full((30, 2), 2.0)], axis=1)
    x = batch.merge_inputs({"c": drive})
    _, V = jsyn.simulate(batch.net, x, DT, state=state, record=lambda s, _: s.groups["E"].V)
    for b in range(2):
        _, one = jsyn.simulate(
            net(True), {"c": drive[:, b]}, DT, record=lambda s, _: s.groups["E"].V
        )
        np.testing.assert_allclose(batch.split(V, "E")[b], one, rtol=0, atol=1e-9)
        assert np.any(np.asarray(one) != np.asarray(one)[:1])  # the clock drives E
