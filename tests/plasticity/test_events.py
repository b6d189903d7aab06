"""Event-driven plasticity on `jsyn.Sparse` (`Sparse.learn`): equal to the rule's dense step
on per-synapse traces, whatever the tier, with the dense step's gradients."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn

N_PRE, N_POST, N_SYN, N_STEPS = 40, 30, 300, 24
TIERS = (2, 8, N_PRE)  # the first tier, 2, is the number of neurons per pass of `learn`
RULES = {
    "additive": jsyn.STDP(A_plus=0.1, A_minus=0.12),
    "multiplicative": jsyn.STDP(A_plus=0.3, A_minus=0.3, multiplicative=True),
    "triplet": jsyn.TripletSTDP(A2_plus=0.05, A3_plus=0.1, A2_minus=0.1, A3_minus=0.05),
    "nearest, clipped at each event": jsyn.STDP(
        A_plus=0.3, A_minus=0.35, pairing="nn_symm", clip_each_event=True
    ),
}


def wiring(seed=0):
    rng = np.random.default_rng(seed)
    pre, post = rng.integers(0, N_PRE, N_SYN), rng.integers(0, N_POST, N_SYN)
    return jsyn.Sparse(pre, post, N_PRE, N_POST, rng.uniform(0.2, 0.8, N_SYN), tiers=TIERS)


def events(seed=1):
    """Pre events and post spikes whose counts cycle through none, one pass of `learn`,
    several, and every neuron, some of the pre events fractional (a delay between steps)."""
    rng = np.random.default_rng(seed)
    pre, post = np.zeros((N_STEPS, N_PRE)), np.zeros((N_STEPS, N_POST))
    for t in range(N_STEPS):
        pre[t, rng.choice(N_PRE, (1, 5, 20, N_PRE, 0)[t % 5], replace=False)] = 1.0
        post[t, rng.choice(N_POST, (0, 2, 10, 25, N_POST)[t % 5], replace=False)] = 1.0
    pre[::7] *= 0.3
    return jnp.asarray(pre), jnp.asarray(post)


def run_events(conn, rule, w, pre, post, dt=0.5, drives=False):
    """The weights after the steps (and the drive of each step, delivered by `learn`)."""

    def step(carry, x):
        state, w, drive = conn.learn(rule, *carry, *x, dt, signal=2.0 * x[0])
        return (state, w), drive

    init = (rule.init_neuron_state(N_PRE, N_POST), w)
    (_, w), drive = jax.lax.scan(step, init, (pre, post))
    return (w, drive) if drives else w


def run_dense(conn, rule, w, pre, post, dt=0.5, drives=False):
    """The same with the rule's own step and `deliver` (the weights at the start of each
    step)."""

    def step(carry, x):
        drive = conn.deliver(2.0 * x[0], jnp.zeros(N_POST), weights=carry[1])
        state, w = rule.step(*carry, conn.spread(x[0]), conn.spread_post(x[1]), dt)
        return (state, w), drive

    (_, w), drive = jax.lax.scan(step, (rule.init_state(conn.syn_shape), w), (pre, post))
    return (w, drive) if drives else w


def test_events_exercise_every_case():
    pre, post = events()
    for x, n in ((pre, N_PRE), (post, N_POST)):
        count = np.count_nonzero(np.asarray(x), axis=1)
        passes = -(-count // TIERS[0])
        assert {0, 1}.issubset(passes) and passes.max() == n // TIERS[0]  # every neuron
        assert len(set(passes)) == 5


@pytest.mark.parametrize(
    "name",
    [
        "additive",
        pytest.param("multiplicative", marks=pytest.mark.slow),
        pytest.param("triplet", marks=pytest.mark.slow),
        "nearest, clipped at each event",
    ],
)
@pytest.mark.slow  # 27 s in the default lane (2 workers, 2 cores, load 3-4)
def test_event_driven_equals_dense(name):
    rule, conn = RULES[name], wiring()
    pre, post = events()
    w0 = jnp.asarray(conn.w)
    w_events, g_events = eqx.filter_jit(run_events)(conn, rule, w0, pre, post, drives=True)
    w_dense, g_dense = eqx.filter_jit(run_dense)(conn, rule, w0, pre, post, drives=True)
    np.testing.assert_allclose(w_events, w_dense, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g_events, g_dense, rtol=1e-12, atol=1e-14)  # the transmission
    assert np.abs(np.asarray(w_events) - np.asarray(w0)).max() > 0.05  # the weights moved
    assert np.any(np.asarray(w_events) == 0.0)  # and the bounds were reached


@pytest.mark.slow
@pytest.mark.parametrize("name", ["multiplicative", "triplet"])
def test_gradients_match_finite_differences(name):
    # small amplitudes: no weight reaches a bound (where the clip has a kink)
    small = {
        "multiplicative": jsyn.STDP(A_plus=0.02, A_minus=0.02, multiplicative=True),
        "triplet": jsyn.TripletSTDP(A2_plus=0.004, A3_plus=0.004, A2_minus=0.004, A3_minus=0.004),
    }[name]
    conn = wiring()
    pre, post = events()
    c = jnp.asarray(np.random.default_rng(2).normal(size=N_SYN))
    names = ("A_plus", "tau_pre") if name == "multiplicative" else ("A3_plus", "tau_x")

    def loss(params, w0, run):
        rule = eqx.tree_at(lambda r: [getattr(r, n) for n in names], small, list(params))
        return jnp.sum(c * run(conn, rule, w0, pre, post))

    params = [jnp.asarray(float(getattr(small, n))) for n in names]
    w0 = jnp.asarray(conn.w)
    g_params, g_w = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)(
        params, w0, run_events
    )
    h = 1e-6
    for k in range(len(names)):
        step = h * max(1.0, abs(float(params[k])))  # relative to the parameter (tau ~ 100)
        up = [p + step * (i == k) for i, p in enumerate(params)]
        down = [p - step * (i == k) for i, p in enumerate(params)]
        fd = (loss(up, w0, run_dense) - loss(down, w0, run_dense)) / (2 * step)
        np.testing.assert_allclose(g_params[k], fd, rtol=1e-6)
    dw = jnp.asarray(np.random.default_rng(3).normal(size=N_SYN))
    fd = (loss(params, w0 + h * dw, run_dense) - loss(params, w0 - h * dw, run_dense)) / (2 * h)
    np.testing.assert_allclose(jnp.dot(g_w, dw), fd, rtol=1e-6)
    assert abs(float(g_params[0])) > 0


def test_projection_keeps_traces_per_neuron_only_where_exact():
    conn = wiring()
    traces = {
        "events": jsyn.Projection(conn, jsyn.Expon(), plasticity=jsyn.STDP(), delay=0.35, dt=0.1),
        "per-synapse delays": jsyn.Projection(
            conn, jsyn.Expon(), plasticity=jsyn.STDP(), delay=jnp.full(N_SYN, 0.35), dt=0.1
        ),
        "per-synapse tau": jsyn.Projection(
            conn, jsyn.Expon(), plasticity=jsyn.STDP(tau_pre=jnp.full(N_SYN, 16.8))
        ),
        "Dense": jsyn.Projection(jsyn.Dense(conn.matrix()), jsyn.Expon(), plasticity=jsyn.STDP()),
        "not event-driven": jsyn.Projection(
            jsyn.Sparse(conn.pre_idx, conn.post_idx, N_PRE, N_POST, event_driven=False),
            jsyn.Expon(),
            plasticity=jsyn.STDP(),
        ),
    }
    rules = {name: proj.init_state().rule for name, proj in traces.items()}
    shapes = {name: (r.a_pre.shape, r.a_post.shape) for name, r in rules.items()}
    assert shapes["events"] == shapes["per-synapse delays"] == ((N_PRE,), (N_POST,))
    for name in ("per-synapse tau", "not event-driven"):
        assert shapes[name] == ((N_SYN,), (N_SYN,))
    assert shapes["Dense"] == ((N_PRE, N_POST), (N_PRE, N_POST))


def test_initial_weights_are_clipped_into_the_bounds():
    # untouched synapses keep their weights, so the state starts within [w_min, w_max]
    conn = jsyn.Sparse([0, 0, 1], [0, 1, 1], 2, 2, jnp.array([-0.5, 0.5, 1.5]))
    proj = jsyn.Projection(conn, jsyn.Expon(), plasticity=jsyn.STDP())
    np.testing.assert_array_equal(proj.init_state().w, [0.0, 0.5, 1.0])


@pytest.mark.parametrize(
    "make",
    [
        lambda a, b, c: jsyn.STDP(A_plus=a, A_minus=b),
        lambda a, b, c: jsyn.STDP(A_plus=a, A_minus=b, w_max=c, multiplicative=True),
        lambda a, b, c: jsyn.TripletSTDP(A2_plus=b, A3_plus=a, A2_minus=b, A3_minus=c),
    ],
    ids=["STDP", "STDP-multiplicative", "TripletSTDP"],
)
def test_per_synapse_amplitudes_on_event_driven_sparse(make):
    # per-synapse amplitudes and bounds are read at the synapses of each pass, as Dense does
    rng = np.random.default_rng(4)
    a, b = (jnp.asarray(rng.uniform(0.05, 0.15, N_SYN)) for _ in range(2))
    rule = make(a, b, jnp.asarray(rng.uniform(0.7, 1.0, N_SYN)))
    conn = wiring()
    pre, post = events()
    w0 = jnp.asarray(conn.w)
    w_events = eqx.filter_jit(run_events)(conn, rule, w0, pre, post)
    w_dense = eqx.filter_jit(run_dense)(conn, rule, w0, pre, post)
    np.testing.assert_allclose(w_events, w_dense, rtol=1e-12, atol=1e-14)
    assert np.abs(np.asarray(w_events) - np.asarray(w0)).max() > 0.05
