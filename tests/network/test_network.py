"""Projections and networks: exact delays, fractional delays and their gradients, summed ==
per-synapse kinetics, sparse == dense, a network against an independent NumPy loop of the
docs/models.md equations, jit/vmap/split runs, recording, and errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from helpers import ALL_SYSTEMS, DT, central_fd, tree_allclose
from jsyn.synapses import Drive


def _pulse(n_steps, n, step, who, dtype=jnp.float64):
    return jnp.zeros((n_steps, n), dtype).at[step, who].set(1.0)


# -- delays ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("synapse_params", ["post", "synapse"])
def test_integer_delays_are_exact_in_steps(sparse, synapse_params, dtype):
    """2 ms at dt = 0.1 arrive 20 steps later, whatever the kinetics' bookkeeping."""
    conn = jsyn.all_to_all(2, 3, 0.5, sparse=sparse)
    proj = jsyn.Projection(
        conn, jsyn.Expon(tau=5.0), delay=2.0, dt=DT, synapse_params=synapse_params
    )
    assert proj.per_synapse == (synapse_params == "synapse")
    spikes = _pulse(40, 2, 5, 1, dtype)
    _, g = jsyn.simulate(proj, spikes, DT)
    g = np.asarray(g)
    assert g.dtype == dtype
    np.testing.assert_array_equal(g[:25], 0.0)
    np.testing.assert_allclose(g[25], 0.5, rtol=1e-6)
    np.testing.assert_allclose(g[26], 0.5 * np.exp(-DT / 5.0), rtol=1e-6)


def test_per_synapse_integer_delays_against_numpy():
    conn = jsyn.fixed_prob(6, 5, 0.6, key=0, w=lambda n: jnp.linspace(0.5, 1.5, n))
    delays = jnp.asarray(np.random.default_rng(0).integers(0, 8, conn.n_syn) * 0.5)  # 0..3.5 ms
    proj = jsyn.Projection(conn, jsyn.Expon(tau=4.0), delay=delays, dt=DT)
    spikes = (jax.random.uniform(jax.random.key(1), (120, 6)) < 0.1).astype(jnp.float64)
    _, g = jsyn.simulate(proj, spikes, DT)
    # NumPy: drive[t + d/dt, j] += w s[t, i]; g = g e^{-dt/tau} + drive
    drive = np.zeros((200, 5))
    s = np.asarray(spikes)
    for syn, (i, j) in enumerate(zip(np.asarray(conn.pre_idx), np.asarray(conn.post_idx))):
        k = int(round(float(delays[syn]) / DT))
        drive[k : k + 120, j] += float(conn.weights()[syn]) * s[:, i]
    expected, gj = np.zeros((120, 5)), np.zeros(5)
    for t in range(120):
        gj = gj * np.exp(-DT / 4.0) + drive[t]
        expected[t] = gj
    np.testing.assert_allclose(g, expected, rtol=1e-12, atol=1e-12)


def test_fractional_delay_splits_the_spike_between_two_steps():
    proj = jsyn.Projection(jsyn.one_to_one(1), jsyn.Expon(tau=1e9), delay=0.73, dt=DT)
    _, g = jsyn.simulate(proj, _pulse(20, 1, 2, 0), DT)
    g = np.asarray(g[:, 0])
    np.testing.assert_array_equal(g[:9], 0.0)
    np.testing.assert_allclose(g[9], 0.7, rtol=1e-6)  # step 2 + 7: 1 - 0.3
    np.testing.assert_allclose(g[10:], 1.0, rtol=1e-6)  # the rest, 0.3, one step later


def _delay_loss(proj, spikes, V):
    def loss(delay):
        p = eqx.tree_at(lambda p: p.delay, proj, delay)
        _, g = jsyn.simulate(p, spikes, DT)
        return jnp.sum(jnp.linspace(0.5, 1.5, g.size).reshape(g.shape) * g)

    return loss


@pytest.mark.parametrize(
    "kind",
    [
        "sparse-summed",
        pytest.param("dense-summed", marks=pytest.mark.slow),
        pytest.param("sparse-per-synapse", marks=pytest.mark.slow),
        "dense-scalar-ampa",
    ],
)
@pytest.mark.slow  # 17 s in the default lane (2 workers, 2 cores, load 3-4)
def test_delay_gradients_match_central_differences(kind):
    conn = jsyn.fixed_prob(4, 3, 0.7, key=2, w=lambda n: jnp.linspace(0.4, 1.2, n))
    if kind.startswith("dense"):
        conn = jsyn.Dense(conn.matrix())
    rng = np.random.default_rng(5)
    if kind == "dense-scalar-ampa":
        delay, synapse = jnp.asarray(0.437), jsyn.AMPA(T_dur=0.37)
    else:
        delay = jnp.asarray(rng.uniform(0.05, 1.9, conn.syn_shape).round(3) + 0.0013)
        synapse = jsyn.DualExpon(1.0, 4.0)
    proj = jsyn.Projection(
        conn,
        synapse,
        delay=delay,
        dt=DT,
        max_delay=2.5,
        synapse_params="post" if kind.endswith("summed") else "synapse",
    )
    spikes = (jax.random.uniform(jax.random.key(3), (150, 4)) < 0.08).astype(jnp.float64)
    loss = _delay_loss(proj, spikes, None)
    grad = jax.grad(loss)(delay)
    assert np.any(np.abs(np.asarray(grad)) > 1e-3)
    for idx in list(np.ndindex(delay.shape))[:6]:
        fd = central_fd(lambda e, idx=idx: loss(delay.at[idx].add(e)), 0.0, eps=1e-6)
        np.testing.assert_allclose(grad[idx], fd, rtol=1e-6, atol=1e-9, err_msg=str(idx))


# -- kinetics bookkeeping --------------------------------------------------------------------


@pytest.mark.parametrize(
    "synapse", [jsyn.Expon(tau=3.0), pytest.param(jsyn.DualExpon(1.0, 6.0), marks=pytest.mark.slow)]
)
def test_summed_kinetics_equal_per_synapse_kinetics(synapse):
    conn = jsyn.fixed_prob(20, 10, 0.3, key=1, w=lambda n: jnp.linspace(0.1, 2.0, n))
    delay = jnp.asarray(np.random.default_rng(0).uniform(0, 2, conn.n_syn))
    spikes = (jax.random.uniform(jax.random.key(0), (100, 20)) < 0.1).astype(jnp.float64)
    runs = []
    for layout in ("post", "synapse"):
        proj = jsyn.Projection(conn, synapse, delay=delay, dt=DT, synapse_params=layout)
        assert proj.per_synapse == (layout == "synapse")
        runs.append(jsyn.simulate(proj, spikes, DT)[1])
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-10, atol=1e-12)


def test_nonlinear_kinetics_keep_per_synapse_state():
    conn = jsyn.fixed_prob(8, 6, 0.5, key=0)
    proj = jsyn.Projection(conn, jsyn.AMPA(), jsyn.COBA())
    assert proj.per_synapse
    assert proj.init_state().transmission.synapse.g.shape == (conn.n_syn,)
    assert not jsyn.Projection(conn, jsyn.Expon()).per_synapse


@pytest.mark.parametrize(
    "synapse,with_stp",
    [
        (jsyn.Expon(tau=3.0), True),
        (jsyn.AMPA(), False),
        pytest.param(jsyn.Expon(tau=3.0), False, marks=pytest.mark.slow),
        pytest.param(jsyn.AMPA(), True, marks=pytest.mark.slow),
    ],
)
@pytest.mark.slow  # 7 s in the default lane (2 workers, 2 cores)
def test_sparse_and_dense_projections_agree(synapse, with_stp):
    sparse = jsyn.fixed_prob(30, 12, 0.25, key=3, w=lambda n: jnp.linspace(0.2, 1.0, n))
    dense = jsyn.Dense(sparse.matrix())
    stp = jsyn.STP(U=0.3, tau_f=50.0, tau_d=20.0) if with_stp else None
    spikes = (jax.random.uniform(jax.random.key(4), (150, 30)) < 0.05).astype(jnp.float64)
    g = [
        jsyn.simulate(jsyn.Projection(c, synapse, stp=stp, delay=0.5, dt=DT), spikes, DT)[1]
        for c in (sparse, dense)
    ]
    np.testing.assert_allclose(g[0], g[1], rtol=1e-10, atol=1e-12)


def test_stp_scales_the_drive_by_the_efficacy():
    stp = jsyn.STD(tau=50.0, U=0.5)
    proj = jsyn.Projection(jsyn.one_to_one(1, 2.0), jsyn.Expon(tau=1e9), stp=stp)
    spikes = _pulse(10, 1, 2, 0).at[4, 0].set(1.0)
    _, g = jsyn.simulate(proj, spikes, DT)
    x_before_second = 1.0 - 0.5 * np.exp(-2 * DT / 50.0)
    f = np.exp(-DT / 1e9)  # the synapse's own (negligible) decay, kept exact
    expected = 2.0 * (0.5 * f**7 + 0.5 * x_before_second * f**5)
    np.testing.assert_allclose(g[-1, 0], expected, rtol=1e-12)


def _cells_V(state, spikes):
    return state.groups["cells"].V


def _cells_spikes(state, spikes):
    return spikes["cells"]


# -- networks --------------------------------------------------------------------------------

N, NE = 60, 48
TAU_E, TAU_I, E_E, E_I = 5.0, 10.0, 0.0, -80.0


def _ei_network(delays=(0.0, 0.0), sparse=True, event_driven=True, source=None):
    w_e = lambda n: jnp.asarray(np.random.default_rng(1).uniform(0.5, 1.5, n))  # noqa: E731
    tiers = ((NE,), (N - NE,)) if not event_driven else (None, None)
    exc = jsyn.fixed_prob(NE, N, 0.2, key=10, w=w_e, tiers=tiers[0])
    inh = jsyn.fixed_prob(N - NE, N, 0.2, key=11, w=3.0, tiers=tiers[1])
    if not sparse:
        exc, inh = jsyn.Dense(exc.matrix()), jsyn.Dense(inh.matrix())
    lif = jsyn.LIF(tau=20.0, tau_ref=2.0)
    kw = dict(pre="cells" if source is None else "src", post="cells", dt=DT)
    projections = {
        "exc": jsyn.Projection(
            exc, jsyn.Expon(tau=TAU_E), jsyn.COBA(E=E_E), delay=delays[0], pre_slice=(0, NE), **kw
        ),
        "inh": jsyn.Projection(
            inh, jsyn.Expon(tau=TAU_I), jsyn.COBA(E=E_I), delay=delays[1], pre_slice=(NE, N), **kw
        ),
    }
    groups = {"cells": (lif, N)} if source is None else {"src": source, "cells": (lif, N)}
    return jsyn.Network(groups, projections)


def _start(net, seed=0):
    state = net.init_state()
    V0 = jnp.asarray(np.random.default_rng(seed).uniform(-60.0, -50.0, N))
    return eqx.tree_at(lambda s: s.groups["cells"].V, state, V0)


def _drive(n_steps=400, seed=0):
    rng = np.random.default_rng(seed)
    return {"cells": jnp.asarray(rng.uniform(8.0, 22.0, (n_steps, N)))}


def numpy_ei_network(net, V0, I_ext, delays):
    """docs/models.md by hand: LIF (exact relaxation, current held over the step, reset and
    refractory), Expon conductances, COBA currents g (E - V), delays in whole steps."""
    W = [np.asarray(net.projections[p].conn.matrix()) for p in ("exc", "inh")]
    pre = [slice(0, NE), slice(NE, N)]
    taus, Es = (TAU_E, TAU_I), (E_E, E_I)
    ks = [int(round(d / DT)) for d in delays]
    T = I_ext.shape[0]
    arrive = [np.zeros((T + 50, N)), np.zeros((T + 50, N))]
    V, t_ref, g = V0.copy(), np.zeros(N), [np.zeros(N), np.zeros(N)]
    spikes, Vs = np.zeros((T, N)), np.zeros((T, N))
    for t in range(T):
        I = I_ext[t] + g[0] * (Es[0] - V) + g[1] * (Es[1] - V)
        V_inf = -60.0 + I
        V_new = V_inf + (V - V_inf) * np.exp(-DT / 20.0)
        V = np.where(t_ref > 0.5 * DT, V, V_new)
        fired = V >= -50.0
        V = np.where(fired, -60.0, V)
        t_ref = np.where(fired, 2.0, np.maximum(t_ref - DT, 0.0))
        spikes[t], Vs[t] = fired, V
        for p in range(2):
            arrive[p][t + ks[p]] += fired[pre[p]] @ W[p]
            g[p] = g[p] * np.exp(-DT / taus[p]) + arrive[p][t]
    return spikes, Vs


@pytest.mark.parametrize("delays", [(0.0, 0.0), (1.5, 0.8)])
@pytest.mark.slow  # 12 s in the default lane (2 workers, 2 cores, load 3-4)
def test_network_matches_an_independent_numpy_loop(delays):
    net = _ei_network(delays)
    state, I = _start(net), _drive()

    def record(s, spikes):
        return {"spikes": spikes["cells"], "V": s.groups["cells"].V}

    _, rec = jsyn.simulate(net, I, DT, state=state, record=record)
    spikes, V = numpy_ei_network(
        net, np.asarray(state.groups["cells"].V), np.asarray(I["cells"]), delays
    )
    assert spikes.sum() > 50  # the network is active
    np.testing.assert_array_equal(rec["spikes"], spikes)
    np.testing.assert_allclose(rec["V"], V, rtol=1e-10, atol=1e-10)


@pytest.mark.slow
def test_event_driven_dense_and_sparse_networks_agree():
    records = []
    for sparse, event_driven in ((True, True), (True, False), (False, True)):
        net = _ei_network((1.0, 0.5), sparse=sparse, event_driven=event_driven)
        _, rec = jsyn.simulate(net, _drive(), DT, state=_start(net), record=lambda s, o: o["cells"])
        records.append(np.asarray(rec))
    for rec in records[1:]:
        np.testing.assert_array_equal(rec, records[0])


@pytest.mark.slow  # 6 s in the default lane (2 workers, 2 cores)
def test_every_neuron_spiking_in_one_step_drops_nothing():
    """A source fires all its 300 neurons in one step; the event-driven sum holds all."""
    n = 300
    src = jsyn.SpikeTimes(np.full(n, 1.0), np.arange(n), n=n)
    conn = jsyn.fixed_prob(n, 20, 0.1, key=0, w=lambda k: jnp.linspace(0.1, 1.0, k))
    assert conn.tiers[-1] == n and len(conn.tiers) > 1
    proj = jsyn.Projection(conn, jsyn.Expon(tau=1e9), jsyn.CUBA(), pre="src", post="cells")
    net = jsyn.Network({"src": src, "cells": (jsyn.LIF(), 20)}, {"p": proj})
    final, _ = jsyn.simulate(net, None, DT, n_steps=15)
    decay = np.exp(-4 * DT / 1e9)  # the spikes of step 10, four steps of (tiny) decay
    np.testing.assert_allclose(
        final.projections["p"].g, decay * np.asarray(conn.matrix()).sum(axis=0), rtol=1e-12
    )


def _bursts_network(delays):
    """A source of N cells that fires bursts of 2, 5, 20, 40 and all N cells (and steps
    without spikes) into the E/I network's projections, from its E and I slices."""
    rng = np.random.default_rng(0)
    times, cells = [], []
    for step, k in zip(range(2, 60, 3), (2, 5, 20, 40, N, 0) * 4):
        who = rng.choice(N, k, replace=False)
        times += [step * DT] * k
        cells += list(who)
    return _ei_network(delays, source=jsyn.SpikeTimes(np.asarray(times), np.asarray(cells), n=N))


@pytest.mark.parametrize("across", [True, False])
@pytest.mark.parametrize("delays", [(0.0, 0.0), (1.0, 0.3)])
@pytest.mark.slow  # 171 s in the default lane (2 workers, 2 cores, load 3-4)
def test_shared_selection_equals_each_projection_selecting(monkeypatch, across, delays):
    """The group's spiking cells found once per step (one switch across the E and I slices,
    or, for large groups, one per slice) give bit for bit what each projection's own
    selection gives, at every tier (up to every cell spiking), jitted and eagerly."""
    import jsyn.network.network as network

    net = _bursts_network(delays)
    record = lambda s, o: (o["src"], s.projections["exc"].g, s.projections["inh"].g)  # noqa: E731
    # the network is an argument, not a constant XLA may fold (differently in each program)
    run = eqx.filter_jit(lambda net: jsyn.simulate(net, None, DT, n_steps=70, record=record))
    monkeypatch.setattr(network, "_ACROSS_SLICES", N if across else 0)
    final, rec = run(net)
    with jax.disable_jit():
        rec_e = jsyn.simulate(net, None, DT, n_steps=12, record=record)[1]
    monkeypatch.setattr(network, "_shares_selection", lambda proj: False)
    own = eqx.filter_jit(lambda net: jsyn.simulate(net, None, DT, n_steps=70, record=record))
    final_own, rec_own = own(net)
    counts = np.asarray(rec[0]).sum(axis=1)
    assert set(counts[counts > 0]) == {2, 5, 20, 40, N}  # every tier ran
    assert np.asarray(rec[1]).max() > 0 and np.asarray(rec[2]).max() > 0
    jax.tree.map(np.testing.assert_array_equal, (final, rec), (final_own, rec_own))
    assert tree_allclose(rec_e, jax.tree.map(lambda x: x[:12], rec))


@pytest.mark.slow
def test_jit_equals_eager_and_split_equals_whole():
    net = _ei_network((1.0, 0.3))
    state, I = _start(net), _drive(300)
    record = lambda s, o: (o["cells"], s.projections["exc"].g)  # noqa: E731
    final, rec = jax.jit(lambda s, I: jsyn.simulate(net, I, DT, state=s, record=record))(state, I)
    with jax.disable_jit():
        final_e, rec_e = jsyn.simulate(net, _drive(3), DT, state=state, record=record)
    assert tree_allclose(jax.tree.map(lambda x: x[:3], rec), rec_e)
    mid, rec1 = jsyn.simulate(
        net, jax.tree.map(lambda x: x[:137], I), DT, state=state, record=record
    )
    final2, rec2 = jsyn.simulate(
        net, jax.tree.map(lambda x: x[137:], I), DT, state=mid, record=record
    )
    assert tree_allclose(final, final2)
    assert tree_allclose(rec, jax.tree.map(lambda a, b: jnp.concatenate([a, b]), rec1, rec2))


@pytest.mark.slow  # 28 s in the default lane (2 workers, 2 cores, load 3-4)
def test_vmap_over_trials_equals_loop():
    net = _ei_network((0.5, 0.5))
    states = [_start(net, seed) for seed in range(3)]
    batched_state = jax.tree.map(lambda *xs: jnp.stack(xs), *states)
    I = _drive(200)
    record = lambda s, o: o["cells"]  # noqa: E731
    run = jax.jit(jax.vmap(lambda s: jsyn.simulate(net, I, DT, state=s, record=record)[1]))
    batched = run(batched_state)
    for b in range(3):
        single = jsyn.simulate(net, I, DT, state=states[b], record=record)[1]
        np.testing.assert_array_equal(batched[b], single)


@pytest.mark.slow  # 23 s in the default lane (2 workers, 2 cores, load 3-4)
def test_gradients_through_a_network_match_finite_differences():
    """A source drives 3 cells below threshold through fractional per-synapse delays: the
    potentials are smooth in the weights and delays."""
    src = jsyn.SpikeTimes([1.0, 2.3, 4.0, 4.1, 7.7], [0, 1, 2, 0, 1], n=3)
    conn = jsyn.fixed_prob(3, 3, 1.0, key=0, w=lambda n: jnp.linspace(0.02, 0.05, n))
    delay = jnp.asarray(np.random.default_rng(1).uniform(0.1, 1.9, 9).round(2) + 0.003)
    proj = jsyn.Projection(
        conn,
        jsyn.Expon(tau=4.0),
        jsyn.COBA(E=0.0),
        delay=delay,
        dt=DT,
        max_delay=2.0,
        pre="src",
        post="cells",
    )
    net = jsyn.Network({"src": src, "cells": (jsyn.LIF(), 3)}, {"p": proj})

    def trace(net):
        return jsyn.simulate(net, None, DT, n_steps=150, record=_cells_V)[1]

    def loss(net):
        return jnp.sum(trace(net) + 60.0)

    V = trace(net)
    assert float(jnp.max(V)) < -50.0 and float(jnp.max(V)) > -59.0  # driven, below threshold

    grads = eqx.filter_grad(loss)(net)
    for name, get in (
        ("w", lambda n: n.projections["p"].conn.w),
        ("delay", lambda n: n.projections["p"].delay),
    ):
        value, grad = get(net), get(grads)
        for idx in [(0,), (4,), (8,)]:
            fd = central_fd(
                lambda e, idx=idx, get=get: loss(eqx.tree_at(get, net, value.at[idx].add(e))),
                0.0,
                eps=1e-6,
            )
            np.testing.assert_allclose(grad[idx], fd, rtol=1e-6, atol=1e-9, err_msg=name)


def test_record_every_keeps_every_kth_step():
    x = (jax.random.uniform(jax.random.key(0), (200, 4)) < 0.1).astype(jnp.float64)
    final, full = jsyn.simulate(jsyn.Expon(), x, DT)
    final_thin, thin = jsyn.simulate(jsyn.Expon(), x, DT, record_every=10)
    assert thin.shape == (20, 4)
    np.testing.assert_array_equal(thin, full[9::10])
    assert tree_allclose(final, final_thin)
    with pytest.raises(ValueError, match="record_every >= 1 dividing"):
        jsyn.simulate(jsyn.Expon(), x, DT, record_every=7)
    with pytest.raises(ValueError, match="record_every or checkpoint, not both"):
        jsyn.simulate(jsyn.Expon(), x, DT, record_every=10, checkpoint=2)


def test_voltage_jump_projection():
    src = jsyn.SpikeTimes([1.0], [0], n=1)
    proj = jsyn.Projection(jsyn.one_to_one(1, 4.0), jsyn.VoltageJump(), pre="src", post="c")
    net = jsyn.Network({"src": src, "c": (jsyn.LIF(), 1)}, [proj])
    _, V = jsyn.simulate(net, None, DT, n_steps=20, record=lambda s, o: s.groups["c"].V[0])
    # The spike of step 10 jumps V by 4 mV in step 11 (the next step), then it decays.
    np.testing.assert_array_equal(V[:11], -60.0)
    np.testing.assert_allclose(V[11], -56.0, rtol=1e-12)


def test_poisson_groups_take_a_key():
    net = jsyn.Network(
        {"in": jsyn.Poisson(jnp.full(50, 50.0)), "c": (jsyn.LIF(), 10)},
        {
            "p": jsyn.Projection(
                jsyn.fixed_prob(50, 10, 0.2, key=0, w=0.5),
                jsyn.Expon(),
                jsyn.CUBA(g_max=10.0),
                pre="in",
                post="c",
            )
        },
    )
    with pytest.raises(TypeError, match="key"):
        jsyn.simulate(net, None, DT, n_steps=10)
    _, rec = jsyn.simulate(
        net, None, DT, n_steps=100, key=jax.random.key(0), record=lambda s, o: o["in"].sum()
    )
    assert 10 < float(rec.sum()) < 50  # 50 cells for 10 ms at 50 Hz: 25 expected


# -- errors ----------------------------------------------------------------------------------


def test_network_construction_errors():
    conn = jsyn.one_to_one(3)
    lif = (jsyn.LIF(), 3)
    with pytest.raises(ValueError, match="not a group"):
        jsyn.Network(
            {"a": lif}, [jsyn.Projection(conn, jsyn.Expon(), jsyn.CUBA(), pre="a", post="b")]
        )
    with pytest.raises(ValueError, match="n_post=3, but post group 'b' has 4 neurons"):
        jsyn.Network(
            {"a": lif, "b": (jsyn.LIF(), 4)},
            [jsyn.Projection(conn, jsyn.Expon(), jsyn.CUBA(), pre="a", post="b")],
        )
    with pytest.raises(ValueError, match="give its size"):
        jsyn.Network({"a": jsyn.LIF()})
    with pytest.raises(ValueError, match="spans 2 neurons but the connection has 3"):
        jsyn.Projection(conn, jsyn.Expon(), pre_slice=(0, 2))


def test_projection_delay_errors():
    conn = jsyn.one_to_one(3)
    with pytest.raises(ValueError, match="delay must be finite and >= 0 ms"):
        jsyn.Projection(conn, jsyn.Expon(), delay=-1.0, dt=DT)
    with pytest.raises(ValueError, match="needs the time step dt"):
        jsyn.Projection(conn, jsyn.Expon(), delay=1.0)
    with pytest.raises(ValueError, match="one delay per synapse, shape \\(3,\\)"):
        jsyn.Projection(conn, jsyn.Expon(), delay=jnp.ones(4), dt=DT)
    proj = jsyn.Projection(conn, jsyn.Expon(), delay=1.0, dt=DT)
    with pytest.raises(ValueError, match="built for dt=0.1"):
        jsyn.simulate(proj, jnp.zeros((5, 3)), 0.2)
    # A delay beyond the buffer: at the simulate entry, eagerly and under jit.
    too_long = eqx.tree_at(lambda p: p.delay, proj, jnp.asarray(1.5))
    with pytest.raises(ValueError, match="max_delay=1.0"):
        jsyn.simulate(too_long, jnp.zeros((5, 3)), DT)
    with pytest.raises(Exception, match="max_delay=1.0"):
        jax.jit(
            lambda d: jsyn.simulate(eqx.tree_at(lambda p: p.delay, proj, d), jnp.zeros((5, 3)), DT)
        )(jnp.asarray(1.5))


def test_network_step_errors():
    net = _ei_network()
    state = net.init_state()
    with pytest.raises(ValueError, match="dict of external currents"):
        net.step(state, {"nope": jnp.zeros(N)}, DT)
    with pytest.raises(ValueError, match="must have shape \\(60,\\)"):
        net.step(state, {"cells": jnp.zeros(5)}, DT)


# -- linear kinetics: the drive delivered into the state ----------------------------------------

LINEAR = [c for c in ALL_SYSTEMS if isinstance(c.system, jsyn.AbstractLinearSynapse)]


@pytest.mark.parametrize("case", LINEAR, ids=repr)
def test_linear_step_is_evolution_then_delivery(case):
    """`step(s, x)` == `add_drive(step(s, 0), Drive(x))`: the split the one-pass delivery
    of projections relies on, for every linear model."""
    syn, x = case.system, case.inputs(n_steps=40)
    state = want = syn.init_state(x.shape[1:])
    for t in range(x.shape[0]):
        want, g_want = syn.step(want, x[t], DT)
        state, g = syn.step_with_delivery(state, Drive(x[t]), DT)
        assert tree_allclose((state, g), (want, g_want), rtol=1e-14, atol=0.0)


@pytest.mark.parametrize(
    "synapse",
    [
        jsyn.Expon(tau=3.0),
        jsyn.Alpha(tau_decay=2.0),
        jsyn.DualExpon(1.0, 6.0),
        jsyn.DualExpon(2.0, 6.0, A=0.7),
        jsyn.DualExponV2(1.0, 6.0),
        jsyn.VoltageJump(),
    ],
    ids=lambda s: type(s).__name__,
)
@pytest.mark.parametrize("delay", ["none", "per-synapse"])
def test_every_linear_model_delivered_into_the_state_equals_per_synapse_kinetics(synapse, delay):
    conn = jsyn.fixed_prob(20, 10, 0.3, key=1, w=lambda n: jnp.linspace(0.1, 2.0, n))
    kw = {}
    if delay != "none":
        kw = dict(delay=jnp.asarray(np.random.default_rng(0).uniform(0, 2, conn.n_syn)), dt=DT)
    stp = jsyn.STD(tau=20.0, U=0.4)
    spikes = (jax.random.uniform(jax.random.key(0), (100, 20)) < 0.1).astype(jnp.float64)
    runs = []
    for layout in ("post", "synapse"):
        proj = jsyn.Projection(conn, synapse, stp=stp, synapse_params=layout, **kw)
        runs.append(jsyn.simulate(proj, spikes, DT)[1])
    assert float(jnp.max(jnp.abs(runs[0]))) > 0.1
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-10, atol=1e-12)


# -- synapse parameters: per postsynaptic neuron or per synapse, never guessed ----------------


def test_array_synapse_parameters_must_say_what_they_hold():
    """With n_syn == n_post a (3,) tau used to be read per cell or per synapse depending on
    another flag, silently; now the projection asks."""
    conn = jsyn.from_pairs([0, 1, 2], [1, 2, 0], 3, 3)  # 3 synapses onto 3 cells
    tau = jnp.array([2.0, 5.0, 11.0])
    with pytest.raises(ValueError, match=r"Expon has array parameters.*synapse_params='post'"):
        jsyn.Projection(conn, jsyn.Expon(tau=tau))
    spikes = (jax.random.uniform(jax.random.key(2), (80, 3)) < 0.2).astype(jnp.float64)
    per_post = jsyn.Projection(conn, jsyn.Expon(tau=tau), synapse_params="post")
    per_syn = jsyn.Projection(conn, jsyn.Expon(tau=tau), synapse_params="synapse")
    g_post = jsyn.simulate(per_post, spikes, DT)[1]
    g_syn = jsyn.simulate(per_syn, spikes, DT)[1]
    # Each means what it says: post cell j decays with tau[j]; synapse s with tau[s].
    by_hand = jsyn.Projection(conn, jsyn.Expon(tau=tau[conn.post_idx]), synapse_params="synapse")
    np.testing.assert_allclose(g_post, jsyn.simulate(by_hand, spikes, DT)[1], rtol=1e-12)
    assert not np.allclose(g_post, g_syn)


@pytest.mark.slow  # 16 s in the default lane (2 workers, 2 cores, load 3-4)
def test_per_postsynaptic_parameters_of_nonlinear_kinetics():
    """AMPA (per-synapse state) with beta per postsynaptic cell: each synapse reads its
    cell's beta, the same as per-synapse values gathered by hand."""
    conn = jsyn.fixed_prob(12, 5, 0.5, key=3, w=lambda n: jnp.linspace(0.5, 1.5, n))
    beta = jnp.linspace(0.1, 0.5, 5)
    spikes = (jax.random.uniform(jax.random.key(5), (120, 12)) < 0.1).astype(jnp.float64)
    kw = dict(delay=0.33, dt=DT)
    post = jsyn.Projection(conn, jsyn.AMPA(beta=beta), synapse_params="post", **kw)
    assert post.per_synapse
    gathered = jsyn.AMPA(beta=beta[conn.post_idx])
    by_hand = jsyn.Projection(conn, gathered, synapse_params="synapse", **kw)
    np.testing.assert_allclose(
        jsyn.simulate(post, spikes, DT)[1], jsyn.simulate(by_hand, spikes, DT)[1], rtol=1e-12
    )
    dense = jsyn.Projection(jsyn.Dense(conn.matrix()), jsyn.AMPA(beta=beta), synapse_params="post")
    sparse = jsyn.Projection(conn, jsyn.AMPA(beta=beta), synapse_params="post")
    np.testing.assert_allclose(
        jsyn.simulate(dense, spikes, DT)[1], jsyn.simulate(sparse, spikes, DT)[1], rtol=1e-10
    )


def test_synapse_parameter_layout_errors():
    conn = jsyn.fixed_prob(6, 4, 0.5, key=0)
    with pytest.raises(ValueError, match=r"synapse_params='post'.*shape \(4,\).*got shape \(6,\)"):
        jsyn.Projection(conn, jsyn.Expon(tau=jnp.ones(6)), synapse_params="post")
    with pytest.raises(ValueError, match=r"synapse_params='synapse'.*one per synapse.*\(4,\)"):
        jsyn.Projection(conn, jsyn.AMPA(beta=jnp.ones(4)), synapse_params="synapse")
    with pytest.raises(ValueError, match=r"must be 'post' or 'synapse' \(got 'cell'\)"):
        jsyn.Projection(conn, jsyn.Expon(), synapse_params="cell")


# -- the run's dt, delays beyond the buffer, and the size of delayed responses ------------------


def test_projection_refuses_a_traced_dt_other_than_its_own():
    proj = jsyn.Projection(jsyn.one_to_one(3), jsyn.Expon(), delay=1.0, dt=0.1)
    spikes = _pulse(20, 3, 2, 1)

    def run(h):
        return jsyn.simulate(proj, spikes, h)[1]

    with pytest.raises(Exception, match=r"Projection was built for dt=0.1 ms"):
        jax.jit(run)(0.05).block_until_ready()
    with pytest.raises(Exception, match=r"Projection was built for dt=0.1 ms"):
        jax.vmap(run)(jnp.array([0.1, 0.2])).block_until_ready()
    np.testing.assert_array_equal(jax.jit(run)(0.1), run(0.1))


@pytest.mark.parametrize(
    "synapse", [jsyn.Expon(tau=1e9), jsyn.AMPA()], ids=["summed", "per-synapse"]
)
@pytest.mark.slow  # 14 s in the default lane (2 workers, 2 cores, load 3-4)
def test_projection_step_never_wraps_its_buffer(synapse):
    proj = jsyn.Projection(jsyn.one_to_one(1), synapse, delay=0.5, dt=DT, max_delay=1.0)
    spikes = _pulse(20, 1, 0, 0)
    too_long = eqx.tree_at(lambda p: p.delay, proj, jnp.asarray(2.5))
    with pytest.raises(ValueError, match=r"Projection.delay must be <= max_delay=1.0 ms.*2.5"):
        too_long.step(too_long.init_state(), spikes[0], DT)

    def stepped(d):
        p = eqx.tree_at(lambda p: p.delay, proj, d)
        state, out = p.init_state(), []
        for t in range(20):
            state, g = p.step(state, spikes[t], DT)
            out.append(g)
        return jnp.stack(out)

    # Read at max_delay (1 ms), never from a wrapped row.
    g = np.asarray(jax.jit(stepped)(2.5))
    np.testing.assert_array_equal(g, jax.jit(stepped)(1.0))
    assert np.flatnonzero(g[:, 0])[0] >= 10


@pytest.mark.parametrize(
    "synapse",
    [jsyn.AMPA(), jsyn.GABAa(), jsyn.BioNMDA(), jsyn.NMDA()],
    ids=lambda s: type(s).__name__,
)
@pytest.mark.slow  # 12 s in the default lane (2 workers, 2 cores, load 3-4)
def test_a_projection_delay_keeps_the_charge_of_each_response(synapse):
    """One synapse per cell, delays on and off the grid: the same charge (AMPA used to
    lose 14 % at 0.25 ms), and a one-delay projection gives the same responses."""
    delays = jnp.array([0.2, 0.25, 0.3, 0.37])
    ms = 150.0 if isinstance(synapse, jsyn.AMPA | jsyn.GABAa) else 2500.0
    spikes = jnp.zeros((int(ms / DT), 4)).at[5].set(1.0)
    proj = jsyn.Projection(jsyn.one_to_one(4), synapse, delay=delays, dt=DT, max_delay=0.5)
    g = np.asarray(jsyn.simulate(proj, spikes, DT)[1])
    charge = g.sum(axis=0) * DT
    assert np.all(g[-1] < 1e-9 * charge)
    np.testing.assert_allclose(charge, charge[0], rtol=1e-6)
    one = jsyn.Projection(jsyn.one_to_one(4), synapse, delay=0.25, dt=DT)
    np.testing.assert_allclose(jsyn.simulate(one, spikes, DT)[1][:, 0], g[:, 1], rtol=1e-12)


# -- declared capabilities ------------------------------------------------------------------


def test_what_a_group_declares_is_checked_at_construction():
    """Output laws that read V need a group with a potential; the neuromodulator group a
    gain reads must exist, be a Neuromodulator, and have 1 or n_post cells."""
    coba = jsyn.Projection(jsyn.all_to_all(2, 1, 0.5), jsyn.Expon(), jsyn.COBA(), pre="a", post="m")
    with pytest.raises(ValueError, match="Neuromodulator declares none"):
        jsyn.Network({"a": (jsyn.LIF(), 2), "m": (jsyn.Neuromodulator(), 1)}, {"p": coba})
    gain = jsyn.Projection(
        jsyn.all_to_all(2, 1, 0.5),
        jsyn.Expon(),
        jsyn.CUBA(),
        pre="a",
        post="b",
        modulation=jsyn.ModulatedGain("DA"),
    )
    groups = {"a": (jsyn.LIF(), 2), "b": (jsyn.LIF(), 1)}
    with pytest.raises(ValueError, match="'DA', which is not a group.*add it"):
        jsyn.Network(groups, {"p": gain})
    with pytest.raises(ValueError, match="which is a LIF group; make it a jsyn.Neuromodulator"):
        jsyn.Network(groups | {"DA": (jsyn.LIF(), 1)}, {"p": gain})
    with pytest.raises(ValueError, match=r"which has 3 cells; make it of size 1 \("):
        jsyn.Network(groups | {"DA": (jsyn.Neuromodulator(), 3)}, {"p": gain})


@pytest.mark.slow  # 11 s in the default lane (2 workers, 2 cores, load 3-4)
def test_simulate_without_key_names_the_stochastic_parts():
    net = jsyn.Network(
        {"P": jsyn.Poisson(jnp.full(2, 10.0)), "E": (jsyn.LIF(), 2)},
        {
            "p": jsyn.Projection(
                jsyn.all_to_all(2, 2, 0.5), jsyn.Expon(), jsyn.CUBA(), pre="P", post="E"
            )
        },
    )
    assert net.needs_key and not net.projections["p"].needs_key
    with pytest.raises(TypeError, match=r"Network groups \['P'\] are stochastic"):
        jsyn.simulate(net, None, DT, n_steps=3)


def test_each_stochastic_part_draws_by_name_not_by_dict_order():
    """Pytree maps (jax.tree.map, jit, jsyn.stack) rebuild dicts in sorted order; the
    network must draw the same numbers from the same key before and after one."""
    proj = {
        name: jsyn.Projection(
            jsyn.all_to_all(2, 2, 0.5),
            jsyn.Expon(),
            jsyn.CUBA(),
            pre="P",
            post="E",
            release=jsyn.StochasticRelease(0.5),
        )
        for name in ("z", "a")  # not in sorted order
    }
    net = jsyn.Network({"P": jsyn.Poisson(jnp.full(2, 10.0)), "E": (jsyn.LIF(), 2)}, proj)
    mapped = jax.tree.map(lambda x: x, net)
    assert list(mapped.projections) == ["a", "z"] and list(net.projections) == ["z", "a"]
    key = jax.random.key(3)
    for name in ("a", "z"):
        got = jax.random.key_data(mapped.init_state(key=key).projections[name].key)
        want = jax.random.key_data(net.init_state(key=key).projections[name].key)
        np.testing.assert_array_equal(got, want)
