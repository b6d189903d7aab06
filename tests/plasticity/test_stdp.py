"""Pair STDP in a network: the STDP window against its closed form, the order within a
step, the bounds, delays, STP on the same projection, Dense == Sparse, jit/vmap/grad."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from helpers import central_fd, tree_allclose

DT = 0.1
T0 = 150.0  # ms: the presynaptic spike of every pair


def pairing_net(lags, rule, *, conn="sparse", w0=0.5, delay=None, stp=None, synapse=None):
    """One synapse per lag: presynaptic cell i spikes at T0, postsynaptic cell i at
    T0 + lags[i] (both imposed)."""
    n = len(lags)
    pre = jsyn.SpikeTimes(np.full(n, T0), np.arange(n), n=n)
    post = jsyn.SpikeTimes(T0 + np.asarray(lags, float), np.arange(n), n=n)
    if conn == "sparse":
        c = jsyn.Sparse(np.arange(n), np.arange(n), n, n, w=np.full(n, w0))
    else:
        c = conn
    proj = jsyn.Projection(
        c,
        jsyn.Expon(tau=5.0) if synapse is None else synapse,
        jsyn.CUBA(),
        pre="pre",
        post="post",
        plasticity=rule,
        delay=delay,
        dt=DT if delay is not None else None,
        stp=stp,
    )
    return jsyn.Network({"pre": pre, "post": post}, {"p": proj})


def final_w(net, n_steps, state=None):
    final, _ = jsyn.simulate(net, None, DT, n_steps=n_steps, state=state, record=lambda s, out: ())
    return final.projections["p"].w


def window(lags, rule):
    lags = np.asarray(lags, float)
    a_plus, a_minus = float(rule.A_plus), float(rule.A_minus)
    return np.where(
        lags >= 0,
        a_plus * np.exp(-lags / float(rule.tau_pre)),
        -a_minus * np.exp(lags / float(rule.tau_post)),
    )


def test_pair_window_matches_closed_form():
    lags = np.arange(-100.0, 100.01, 2.5)
    rule = jsyn.STDP()
    w = final_w(pairing_net(lags, rule), 2600)
    np.testing.assert_allclose(w - 0.5, window(lags, rule), rtol=1e-9, atol=1e-14)


def test_simultaneous_pair_potentiates_by_A_plus():
    # pre event first (a_pre includes it), then the post spike: +A_plus, and the depression
    # reads a_post from before that post spike (0 here).
    rule = jsyn.STDP(A_plus=0.02, A_minus=0.03)
    w = final_w(pairing_net([0.0], rule), 1800)
    np.testing.assert_allclose(w - 0.5, [0.02], rtol=1e-12)


def test_weights_are_per_synapse_state_and_static_without_rule():
    net = pairing_net([10.0], jsyn.STDP())
    state = net.init_state()
    assert state.projections["p"].w.shape == (1,)
    static = jsyn.Projection(jsyn.Sparse([0], [0], 1, 1, w=0.5), jsyn.Expon(), jsyn.CUBA())
    s0 = static.init_state()
    assert s0.w is None and s0.rule is None


def test_bounds_additive_clip_and_multiplicative_scaling():
    # additive: a large A_plus is clipped at w_max
    w = final_w(pairing_net([5.0], jsyn.STDP(A_plus=2.0, w_max=1.0)), 1800)
    np.testing.assert_allclose(w, [1.0])
    w = final_w(pairing_net([-5.0], jsyn.STDP(A_minus=2.0, w_min=0.1)), 1800)
    np.testing.assert_allclose(w, [0.1])
    # multiplicative: potentiation scaled by (w_max - w), depression by (w - w_min)
    rule = jsyn.STDP(multiplicative=True, w_min=0.0, w_max=1.0)
    for w0 in (0.2, 0.8):
        w = final_w(pairing_net([10.0, -10.0], rule, w0=w0), 1800)
        want = window([10.0, -10.0], rule) * np.array([1.0 - w0, w0 - 0.0])
        np.testing.assert_allclose(w - w0, want, rtol=1e-9)


@pytest.mark.slow  # 11 s in the default lane (2 workers, 2 cores, load 3-4)
def test_delay_moves_the_pre_event_to_its_arrival():
    # A 4 ms axonal delay: the pre event happens at T0 + 4, so a post spike at T0 + 10 is a
    # pair at lag 6 ms and one at T0 + 2 a pair at lag -2 ms.
    lags = np.array([10.0, 2.0])
    rule = jsyn.STDP()
    w = final_w(pairing_net(lags, rule, delay=4.0), 1800)
    np.testing.assert_allclose(w - 0.5, window(lags - 4.0, rule), rtol=1e-9)
    # per-synapse delays, one of them fractional (between grid points: the pre event is
    # split over two steps, 1 - f and f)
    delays = np.array([4.0, 1.25])
    w = final_w(pairing_net(lags, rule, delay=delays), 1800)
    want0 = window([6.0], rule)[0]
    k = 12  # 1.25 ms = 12.5 steps: half at 1.2 ms, half at 1.3 ms
    want1 = 0.5 * window([2.0 - k * DT], rule)[0] + 0.5 * window([2.0 - (k + 1) * DT], rule)[0]
    np.testing.assert_allclose(w - 0.5, [want0, want1], rtol=1e-9)


def test_transmission_uses_the_weight_at_the_start_of_the_step():
    # pre and post in the same step: the conductance jump of that step carries w0, not
    # w0 + A_plus
    net = pairing_net([0.0], jsyn.STDP(A_plus=0.1))
    _, out = jsyn.simulate(
        net,
        None,
        DT,
        n_steps=1800,
        record=lambda s, o: (s.projections["p"].g, s.projections["p"].w),
    )
    g, w = out
    step = int(round(T0 / DT))
    np.testing.assert_allclose(g[step], [0.5])
    np.testing.assert_allclose(w[step], [0.6])


def test_with_stp_on_the_same_projection():
    # STP scales the transmitted drive, not the pre events of the rule
    rule = jsyn.STDP()
    lags = [10.0, -10.0]
    w = final_w(pairing_net(lags, rule, stp=jsyn.STP(U=0.3)), 1800)
    np.testing.assert_allclose(w - 0.5, window(lags, rule), rtol=1e-9)


@pytest.mark.slow  # 26 s in the default lane (2 workers, 2 cores, load 3-4)
def test_dense_equals_sparse(getkey):
    n_pre, n_post, n = 6, 5, 3000
    key1, key2 = getkey(), getkey()
    pre = jsyn.Poisson(jnp.full((n_pre,), 40.0))
    post = jsyn.Poisson(jnp.full((n_post,), 30.0))
    w0 = np.random.default_rng(0).uniform(0.2, 0.8, (n_pre, n_post))
    ii, jj = np.nonzero(np.ones((n_pre, n_post)))
    rule = jsyn.STDP(A_plus=0.02)
    runs = []
    for conn in (jsyn.Dense(w0), jsyn.Sparse(ii, jj, n_pre, n_post, w=w0[ii, jj])):
        proj = jsyn.Projection(
            conn, jsyn.Expon(), jsyn.CUBA(), pre="a", post="b", plasticity=rule, delay=1.0, dt=DT
        )
        net = jsyn.Network({"a": pre, "b": post}, {"p": proj})
        _, final = jsyn.simulate(
            net,
            None,
            DT,
            n_steps=n,
            key=key1,
            record=lambda s, o: (s.projections["p"].w, s.projections["p"].g),
        )
        runs.append(final)
    del key2
    (w_d, g_d), (w_s, g_s) = runs
    np.testing.assert_allclose(np.asarray(w_d[-1])[ii, jj], w_s[-1], rtol=1e-12)
    np.testing.assert_allclose(g_d, g_s, rtol=1e-10, atol=1e-12)
    assert np.abs(np.asarray(w_s[-1]) - w0[ii, jj]).max() > 1e-3  # the weights did move


def lif_net(rule, rate=300.0):
    src = jsyn.Poisson(jnp.full((8,), rate))
    proj = jsyn.Projection(
        jsyn.Dense(jnp.full((8, 2), 0.5)),
        jsyn.Expon(tau=5.0),
        jsyn.CUBA(),
        pre="in",
        post="out",
        plasticity=rule,
    )
    return jsyn.Network({"in": src, "out": (jsyn.LIF(), 2)}, {"p": proj})


def _run_lif(key):
    net = lif_net(jsyn.STDP(A_plus=0.05, A_minus=0.05))
    _, w = jsyn.simulate(
        net,
        {"out": jnp.full((120, 2), 300.0)},
        DT,
        key=key,
        record=lambda s, o: s.projections["p"].w,
    )
    return w[-1]


@pytest.mark.slow
def test_jit_equals_eager(getkey):
    key = getkey()
    jitted = jax.jit(_run_lif)(key)
    with jax.disable_jit():
        eager = _run_lif(key)
    assert tree_allclose(jitted, eager)
    assert np.abs(np.asarray(jitted) - 0.5).max() > 1e-3  # the weights did move


@pytest.mark.slow  # 21 s in the default lane (2 workers, 2 cores, load 3-4)
def test_vmap_equals_loop(getkey):
    keys = jnp.stack([getkey(), getkey()])
    batched = jax.vmap(_run_lif)(keys)
    for i in range(2):
        assert tree_allclose(batched[i], _run_lif(keys[i]))
    assert not np.allclose(batched[0], batched[1])


@pytest.mark.parametrize("name", ["A_plus", "tau_pre"])
@pytest.mark.slow  # 21 s in the default lane (2 workers, 2 cores, load 3-4)
def test_gradient_matches_finite_differences(name):
    lags = np.array([3.0, 12.0, -7.0])

    def loss(value):
        rule = eqx.tree_at(lambda r: getattr(r, name), jsyn.STDP(), jnp.asarray(value))
        w = final_w(pairing_net(lags, rule), 1700)
        return jnp.sum(w**2)

    x = float(getattr(jsyn.STDP(), name))
    grad = jax.grad(loss)(x)
    fd = central_fd(loss, x, eps=1e-6 * max(1.0, x))
    np.testing.assert_allclose(grad, fd, rtol=1e-6)
    assert abs(grad) > 0


def test_errors():
    with pytest.raises(TypeError, match="plasticity"):
        jsyn.Projection(jsyn.Dense(jnp.ones((2, 2))), jsyn.Expon(), plasticity=jsyn.STP())
    with pytest.raises(ValueError, match=r"one per\s+synapse, shape \(2, 2\)"):
        jsyn.Projection(
            jsyn.Dense(jnp.ones((2, 2))), jsyn.Expon(), plasticity=jsyn.STDP(A_plus=jnp.ones(3))
        )
    with pytest.raises(ValueError, match="A_plus must be >= 0"):
        jsyn.STDP(A_plus=-0.1)
    with pytest.raises(ValueError, match="tau_pre must be > 0"):
        jsyn.STDP(tau_pre=0.0)
    with pytest.raises(ValueError, match="w_min <= w_max"):
        jsyn.STDP(w_min=1.0, w_max=0.5)
    proj = jsyn.Projection(jsyn.Dense(jnp.ones((2, 2))), jsyn.Expon(), plasticity=jsyn.STDP())
    with pytest.raises(ValueError, match="post_spikes"):
        proj.step(proj.init_state(), jnp.zeros(2), DT)


def test_bad_rule_parameters_raise_eagerly_under_jit_and_vmap():
    def run(tau):
        rule = eqx.tree_at(lambda r: r.tau_pre, jsyn.STDP(), tau)
        final, _ = jsyn.simulate(
            pairing_net([5.0], rule), None, DT, n_steps=30, record=lambda s, o: ()
        )
        return final.projections["p"].w

    match = "STDP.tau_pre must be > 0"
    with pytest.raises(ValueError, match=match):
        run(jnp.asarray(-1.0))
    with pytest.raises(Exception, match=match):
        jax.jit(run)(jnp.asarray(-1.0)).block_until_ready()
    with pytest.raises(Exception, match=match):
        jax.vmap(run)(jnp.array([1.0, -1.0])).block_until_ready()


@pytest.mark.parametrize("delay", [None, 1.0, np.array([0.5, 1.5])])
def test_per_synapse_kinetics_transmit_the_plastic_weights(delay):
    # AMPA keeps one state per synapse; its output is weighted by the state's weights. With
    # a rule that does not learn (zero amplitudes) the run equals the static projection
    # with the same weights; with learning the weights (and so g) differ.
    def g_trace(rule, w0):
        proj = jsyn.Projection(
            jsyn.Sparse([0, 0], [0, 1], 1, 2, w=w0),
            jsyn.AMPA(),
            jsyn.CUBA(),
            pre="pre",
            post="post",
            plasticity=rule,
            delay=delay,
            dt=None if delay is None else DT,
        )
        net = jsyn.Network(
            {
                "pre": jsyn.SpikeTimes([5.0, 20.0]),
                "post": jsyn.SpikeTimes([10.0, 10.0], [0, 1], n=2),
            },
            {"p": proj},
        )
        _, g = jsyn.simulate(net, None, DT, n_steps=400, record=lambda s, o: s.projections["p"].g)
        return np.asarray(g)

    w0 = np.array([0.5, 0.8])
    static = g_trace(None, w0)
    frozen = g_trace(jsyn.STDP(A_plus=0.0, A_minus=0.0), w0)
    np.testing.assert_allclose(frozen, static, rtol=1e-12, atol=1e-15)
    learnt = g_trace(jsyn.STDP(A_plus=0.2), w0)
    # per-synapse kinetics are weighted at every step by the weights at its start: up to
    # the step of the post spike (10 ms, which potentiates at its end) g is the static one
    first = slice(0, int(round(10.0 / DT)) + 1)
    np.testing.assert_allclose(learnt[first], static[first], rtol=1e-12, atol=1e-15)
    assert np.all(learnt[-1] > static[-1])


def test_learnt_state_saves_and_loads(tmp_path):
    net = pairing_net([5.0, -5.0], jsyn.STDP())
    final, _ = jsyn.simulate(net, None, DT, n_steps=1700, record=lambda s, o: ())
    path = jsyn.save(tmp_path / "state.jsyn", final)
    back = jsyn.load(path, net.init_state())
    assert tree_allclose(back, final)
    assert not np.allclose(back.projections["p"].w, 0.5)
