"""Stochastic release: moments of the drive against the binomial law over many keys, the
STP efficacy as the release probability, Dense == Sparse whatever the tier (the draws depend
only on the key and the synapse), reproducibility, gradients of the differentiable modes,
keys in a network, each spike of a burst drawn on its own, the relaxed mode's gradient
at p = 0 and 1, and the errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from helpers import central_fd
from jsyn.network import release as release_module

DT = 0.1


def fan_out(release, n_post=4000, w=1.0, **kw):
    """One presynaptic neuron onto `n_post` cells, one synapse each (independent draws)."""
    conn = jsyn.Sparse(np.zeros(n_post, int), np.arange(n_post), 1, n_post, w)
    return jsyn.Projection(conn, jsyn.VoltageJump(), release=release, **kw)


def drive_of_one_spike(proj, key):
    state = proj.init_state(key=key)
    _, g = proj.step(state, jnp.ones(1), DT)
    return g


@pytest.mark.parametrize("n_sites, p", [(1, 0.3), (5, 0.6)])
@pytest.mark.slow  # 12 s in the default lane (2 workers, 2 cores, load 3-4)
def test_drive_has_the_binomial_mean_and_variance(n_sites, p):
    """n sites of quantal size q (weight n q): the drive is q k, k ~ Binomial(n, p): mean
    n p q, variance n p (1 - p) q^2, over 4000 synapses and 5 keys."""
    q = 0.7
    proj = fan_out(jsyn.StochasticRelease(p, n_sites=n_sites), w=n_sites * q)
    keys = jax.random.split(jax.random.key(0), 5)
    drive = np.asarray(jax.vmap(lambda k: drive_of_one_spike(proj, k))(keys)).ravel()
    n = drive.size
    mean, var = n_sites * p * q, n_sites * p * (1 - p) * q**2
    assert abs(drive.mean() - mean) < 4 * np.sqrt(var / n)
    # the variance of a sample variance is (mu4 - var^2) / n; mu4 <= 3 var^2 + var q^2 n
    assert abs(drive.var() - var) < 4 * np.sqrt((2 * var**2 + var * q**2) / n)
    k = drive / q  # whole numbers of released sites, 0..n
    np.testing.assert_allclose(k, np.round(k), atol=1e-9)
    assert k.min() >= 0 and k.max() <= n_sites


def drive_of_a_burst(proj, key, count):
    state = proj.init_state(key=key)
    _, g = proj.step(state, jnp.full(1, float(count)), DT)
    return g


@pytest.mark.parametrize("n_sites, p, count", [(1, 0.5, 2), (3, 0.3, 4)])
@pytest.mark.slow  # 7 s in the default lane (2 workers, 2 cores)
def test_each_spike_of_a_step_releases_on_its_own(n_sites, p, count):
    """`count` spikes of one cell in one step at n sites of quantal size q (weight n q):
    the drive is q k with k ~ Binomial(count n, p), variance count n p (1 - p) q^2 (0.5
    for two spikes at p = 0.5, where one shared draw gives 0 or 2: variance 1.0)."""
    q = 1.0
    proj = fan_out(jsyn.StochasticRelease(p, n_sites=n_sites), w=n_sites * q)
    keys = jax.random.split(jax.random.key(4), 5)
    drive = np.asarray(jax.vmap(lambda k: drive_of_a_burst(proj, k, count))(keys)).ravel()
    n, m = drive.size, count * n_sites
    mean, var = m * p * q, m * p * (1 - p) * q**2
    mu4 = m * p * (1 - p) * (1 + 3 * (m - 2) * p * (1 - p)) * q**4  # binomial 4th moment
    assert abs(drive.mean() - mean) < 4 * np.sqrt(var / n)
    assert abs(drive.var() - var) < 4 * np.sqrt((mu4 - var**2) / n)
    k = drive / q
    np.testing.assert_allclose(k, np.round(k), atol=1e-9)
    counts = np.bincount(np.round(k).astype(int), minlength=m + 1)
    expected = n * np.array([math.comb(m, i) * p**i * (1 - p) ** (m - i) for i in range(m + 1)])
    chi2 = np.sum((counts - expected) ** 2 / expected)
    assert chi2 < 3 * (m + 1)  # a loose chi-square bound; a shared draw gives thousands


@pytest.mark.slow  # 55 s in the default lane (2 workers, 2 cores, load 3-4)
def test_one_spike_draws_what_it_drew_before_and_bursts_differentiate():
    """A step of one spike draws the first spike's numbers whatever the counts; the
    gradients of a 2-spike step are the closed form (straight-through: 2 w) and the
    finite difference (relaxed)."""
    proj = fan_out(jsyn.StochasticRelease(0.4), n_post=50)
    key = jax.random.key(5)
    single = drive_of_one_spike(proj, key)
    conn = jsyn.Sparse(np.zeros(50, int), np.arange(50), 2, 50, 1.0)  # cell 1 bursts, unwired
    two_cells = jsyn.Projection(conn, jsyn.VoltageJump(), release=jsyn.StochasticRelease(0.4))
    _, g = two_cells.step(two_cells.init_state(key=key), jnp.array([1.0, 3.0]), DT)
    np.testing.assert_array_equal(g, single)

    def mean_drive(p, mode):
        release = jsyn.StochasticRelease(p, n_sites=2, mode=mode, temperature=0.5)
        return jnp.mean(drive_of_a_burst(fan_out(release, n_post=2000), key, 2))

    grad = jax.grad(mean_drive)(jnp.asarray(0.3), "straight_through")
    np.testing.assert_allclose(grad, 2.0, rtol=1e-12)
    relaxed = jax.grad(mean_drive)(jnp.asarray(0.3), "relaxed")
    fd = central_fd(lambda p: mean_drive(p, "relaxed"), 0.3, 1e-6)
    np.testing.assert_allclose(relaxed, fd, rtol=1e-6)


def test_stp_efficacy_is_the_release_probability():
    """With p=None and STP, a spike releases w with probability r (its efficacy): the mean
    over synapses follows the deterministic efficacy r_n of each spike of a train."""
    stp = jsyn.STP(U=0.3, tau_f=40.0, tau_d=80.0)
    proj = fan_out(jsyn.StochasticRelease(None), stp=stp)
    spikes = jnp.zeros((200, 1)).at[::25].set(1.0)
    _, g = jsyn.simulate(proj, spikes, DT, key=jax.random.key(1))
    _, r = jsyn.simulate(stp, spikes, DT)
    rows = np.arange(0, 200, 25)
    r = np.asarray(r)[rows, 0]
    g = np.asarray(g)[rows]
    assert set(np.unique(g)) <= {0.0, 1.0}
    se = np.sqrt(r * (1 - r) / g.shape[1])
    assert np.all(np.abs(g.mean(axis=1) - r) < 4 * se)


def _pair(release, dense, delay=None, synapse=None):
    w = np.linspace(0.2, 1.0, 20).reshape(5, 4)
    if dense:
        conn = jsyn.Dense(w)
    else:  # all-to-all, synapses numbered as the dense ones (i * n_post + j)
        pre, post = np.nonzero(np.ones((5, 4)))
        conn = jsyn.Sparse(pre, post, 5, 4, w.ravel(), tiers=(1, 2, 5))
    delay = None if delay is None else (delay if dense else delay.ravel())
    p = release.p
    if jnp.ndim(p) and not dense:
        release = jsyn.StochasticRelease(p.ravel(), n_sites=release.n_sites)
    kw = dict(delay=delay, dt=DT, max_delay=1.0) if delay is not None else {}
    return jsyn.Projection(conn, synapse or jsyn.Expon(5.0), release=release, **kw)


@pytest.mark.parametrize("case", ["summed", "delays", "per-synapse"])
@pytest.mark.slow  # 13 s in the default lane (2 workers, 2 cores, load 3-4)
def test_dense_equals_sparse_whatever_the_tier(case):
    """The draws depend on the key and the synapse only: Dense, an all-to-all Sparse
    (steps with 0 to 5 active neurons take different tiers) and the non-event-driven path
    give the same drive."""
    p = jnp.linspace(0.1, 0.9, 20).reshape(5, 4)
    release = jsyn.StochasticRelease(p, n_sites=3)
    delay = jnp.linspace(0.05, 0.93, 20).reshape(5, 4) if case == "delays" else None
    synapse = jsyn.AMPA() if case == "per-synapse" else None
    x = (jax.random.uniform(jax.random.key(3), (120, 5)) < 0.3).astype(float)
    runs = [
        jsyn.simulate(_pair(release, dense, delay, synapse), x, DT, key=jax.random.key(7))[1]
        for dense in (True, False)
    ]
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-12, atol=1e-12)
    assert np.ptp(np.asarray(runs[0])) > 0


def test_the_draws_skip_silent_neurons():
    """Only neurons that spiked draw: a projection whose release never happens (p=0) gives
    nothing, whichever neurons spiked; p=1 gives the deterministic drive."""
    x = (jax.random.uniform(jax.random.key(3), (60, 5)) < 0.3).astype(float)
    det = jsyn.simulate(jsyn.Projection(jsyn.Dense(jnp.ones((5, 4))), jsyn.Expon(5.0)), x, DT)[1]
    for p, want in ((0.0, 0.0 * det), (1.0, det)):
        proj = jsyn.Projection(
            jsyn.Sparse(*np.nonzero(np.ones((5, 4))), 5, 4, 1.0, tiers=(1, 5)),
            jsyn.Expon(5.0),
            release=jsyn.StochasticRelease(p),
        )
        np.testing.assert_allclose(jsyn.simulate(proj, x, DT, key=jax.random.key(0))[1], want)


@pytest.mark.slow  # 14 s in the default lane (2 workers, 2 cores, load 3-4)
def test_reproducible_for_a_key_and_continued_runs_draw_afresh():
    proj = _pair(jsyn.StochasticRelease(0.5), dense=False)
    x = jnp.ones((50, 5))
    a = jsyn.simulate(proj, x, DT, key=jax.random.key(4))[1]
    b = jsyn.simulate(proj, x, DT, key=jax.random.key(4))[1]
    c = jsyn.simulate(proj, x, DT, key=jax.random.key(5))[1]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    mid, first = jsyn.simulate(proj, x[:20], DT, key=jax.random.key(4))
    _, rest = jsyn.simulate(proj, x[20:], DT, state=mid)
    np.testing.assert_allclose(jnp.concatenate([first, rest]), a, rtol=1e-13)


@pytest.mark.slow  # 8 s in the default lane (2 workers, 2 cores)
def test_straight_through_gradient_of_the_mean_drive_is_the_closed_form():
    """d E[drive]/dp = w per spike. Straight-through gives exactly that in every trial,
    while the drive itself is the 0/1 draw (whose mean over synapses is p w)."""
    w = jnp.linspace(0.5, 1.5, 2000)

    def mean_drive(p, key):
        proj = fan_out(jsyn.StochasticRelease(p, mode="straight_through"), n_post=2000, w=w)
        return jnp.mean(drive_of_one_spike(proj, key))

    p = jnp.asarray(0.35)
    value, grad = jax.value_and_grad(mean_drive)(p, jax.random.key(2))
    np.testing.assert_allclose(grad, jnp.mean(w), rtol=1e-12)
    assert abs(value - 0.35 * jnp.mean(w)) < 4 * np.sqrt(0.35 * 0.65 / 2000) * 1.5


@pytest.mark.slow  # 32 s in the default lane (2 workers, 2 cores, load 3-4)
def test_relaxed_gradient_matches_finite_differences_and_tends_to_the_closed_form():
    """Relaxed draws are smooth in p (finite differences with the same key); at a low
    temperature their mean and its gradient approach p w and w."""

    def mean_drive(p, temperature=0.5):
        release = jsyn.StochasticRelease(p, n_sites=2, mode="relaxed", temperature=temperature)
        return jnp.mean(drive_of_one_spike(fan_out(release, n_post=4000), jax.random.key(8)))

    p = 0.3
    grad = jax.grad(mean_drive)(jnp.asarray(p))
    np.testing.assert_allclose(grad, central_fd(mean_drive, p, 1e-6), rtol=1e-6)
    cold = jax.value_and_grad(lambda p: mean_drive(p, 0.02))(jnp.asarray(p))
    assert abs(cold[0] - p) < 0.02
    assert abs(cold[1] - 1.0) < 0.25


@pytest.mark.parametrize("temperature", [0.1, 0.5])
@pytest.mark.slow  # 51 s in the default lane (2 workers, 2 cores, load 3-4)
def test_relaxed_gradient_is_finite_at_p_0_and_1(temperature):
    """p = 0 and p = 1 are in the domain: the gradient there is finite, the limit of the
    interior one (0 for T < 1), and next to them it matches finite differences."""

    def mean_drive(p):
        release = jsyn.StochasticRelease(p, n_sites=2, mode="relaxed", temperature=temperature)
        return jnp.mean(drive_of_one_spike(fan_out(release, n_post=2000), jax.random.key(8)))

    for edge, inner in [(0.0, 1e-6), (1.0, 1 - 1e-6)]:
        value, grad = jax.value_and_grad(mean_drive)(jnp.asarray(edge))
        assert value == edge and grad == 0.0
        near = jax.grad(mean_drive)(jnp.asarray(inner))
        fd = central_fd(mean_drive, inner, 1e-9)
        np.testing.assert_allclose(near, fd, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("u", [0.2, 0.5, 0.97])
def test_relaxed_bernoulli_derivatives_at_the_edges_are_their_limits(u):
    """ds/dp at p = 0 is lim a p^(a-1) e^(a logit u) (a = 1/T): 0 for T < 1, u/(1-u) for
    T = 1, and its mirror at p = 1; ds/dT is 0 there. Interior points tend to them."""
    u = jnp.asarray(u)
    grad = jax.grad(release_module.relaxed_bernoulli, argnums=(0, 2))
    for T, at_0, at_1 in [(0.5, 0.0, 0.0), (1.0, u / (1 - u), (1 - u) / u)]:
        T = jnp.asarray(T)
        for p, limit, near in [(0.0, at_0, 1e-10), (1.0, at_1, 1 - 1e-10)]:
            ds_dp, ds_dT = grad(jnp.asarray(p), u, T)
            np.testing.assert_allclose(ds_dp, limit, rtol=1e-12)
            assert ds_dT == 0.0
            np.testing.assert_allclose(grad(jnp.asarray(near), u, T)[0], limit, atol=1e-6)
            assert release_module.relaxed_bernoulli(jnp.asarray(p), u, T) == p
    # the interior: the closed form against finite differences in p and T
    p, T = 0.3, 0.7
    ds_dp, ds_dT = grad(jnp.asarray(p), u, jnp.asarray(T))
    fd_p = central_fd(lambda x: release_module.relaxed_bernoulli(jnp.asarray(x), u, T), p)
    fd_T = central_fd(lambda x: release_module.relaxed_bernoulli(jnp.asarray(p), u, x), T)
    np.testing.assert_allclose([ds_dp, ds_dT], [fd_p, fd_T], rtol=1e-7)


@pytest.mark.slow  # 16 s in the default lane (2 workers, 2 cores, load 3-4)
def test_network_hands_out_keys_and_leaves_group_keys_as_they_were():
    """A stochastic projection gets its own key; the Poisson group's spikes are those of the
    same network without it."""
    src = jsyn.Poisson(jnp.full(20, 200.0))

    def net(release):
        proj = jsyn.Projection(
            jsyn.fixed_prob(20, 10, 0.5, key=jax.random.key(9), w=1.0),
            jsyn.Expon(5.0),
            jsyn.COBA(E=0.0),
            pre="P",
            post="E",
            release=release,
        )
        return jsyn.Network({"P": src, "E": (jsyn.LIF(), 10)}, {"p": proj})

    rec = lambda s, spikes: (spikes["P"], s.projections["p"].g)  # noqa: E731
    key = jax.random.key(0)
    _, (spk0, g0) = jsyn.simulate(net(None), None, DT, n_steps=100, key=key, record=rec)
    _, (spk1, g1) = jsyn.simulate(
        net(jsyn.StochasticRelease(0.5)), None, DT, n_steps=100, key=key, record=rec
    )
    np.testing.assert_array_equal(spk0, spk1)
    assert np.sum(g1) < np.sum(g0)  # about half the drive
    assert np.sum(g1) > 0.3 * np.sum(g0)


def test_errors():
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\].*1.5"):
        jsyn.StochasticRelease(1.5)
    with pytest.raises(ValueError, match="mode must be one of"):
        jsyn.StochasticRelease(0.5, mode="gumbel")
    with pytest.raises(ValueError, match="n_sites must be a whole number >= 1"):
        jsyn.StochasticRelease(0.5, n_sites=0)
    with pytest.raises(ValueError, match="has no stp"):
        fan_out(jsyn.StochasticRelease(None))
    with pytest.raises(ValueError, match=r"one per synapse, shape \(4000,\)"):
        fan_out(jsyn.StochasticRelease(jnp.full(3, 0.5)))
    conn = jsyn.Sparse([0, 1], [1, 0], 2, 2, 0.5)
    with pytest.raises(ValueError, match="synapse_params='synapse'"):
        jsyn.Projection(
            conn, jsyn.Expon(5.0), release=jsyn.StochasticRelease(0.5), plasticity=jsyn.STDP()
        )
    jsyn.Projection(  # per-synapse kinetics: released spikes drive each synapse
        conn,
        jsyn.Expon(5.0),
        synapse_params="synapse",
        release=jsyn.StochasticRelease(0.5),
        plasticity=jsyn.STDP(),
    )
    proj = fan_out(jsyn.StochasticRelease(0.5))
    with pytest.raises(TypeError, match="stochastic: pass simulate"):
        jsyn.simulate(proj, jnp.ones((3, 1)), DT)
    with pytest.raises(TypeError, match="needs a key"):
        proj.init_state()
    with pytest.raises(TypeError, match="takes no key"):
        jsyn.simulate(fan_out(None), jnp.ones((3, 1)), DT, key=jax.random.key(0))
    # under jit: the value check of p at the simulate entry
    bad = jax.tree_util.tree_map(lambda x: x, proj)
    bad = __import__("equinox").tree_at(lambda p: p.release.p, bad, jnp.asarray(-0.1))
    with pytest.raises(Exception, match=r"p must be a probability"):
        jax.jit(lambda s: jsyn.simulate(s, jnp.ones((3, 1)), DT, key=jax.random.key(0)))(bad)


def test_the_per_synapse_numbers_are_uniform_independent_and_order_free():
    """The counter-based numbers: uniform (mean, variance, 20-bin chi-square), uncorrelated
    between neighbouring synapses, sites and step keys, and the same for a synapse in any
    block and order."""
    from jsyn.network.release import uniforms

    n = 200_000
    syn = jnp.arange(n)
    key = jax.random.key(11)
    u = np.asarray(uniforms(key, syn, 2, jnp.float64))
    assert u.shape == (n, 2) and u.min() > 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 4 / np.sqrt(12 * 2 * n)
    assert abs(u.var() - 1 / 12) < 4 * np.sqrt(1 / 180 / (2 * n))
    counts = np.histogram(u[:, 0], bins=20, range=(0, 1))[0]
    chi2 = np.sum((counts - n / 20) ** 2 / (n / 20))
    assert chi2 < 45  # 19 degrees of freedom: P(chi2 > 45) < 1e-3
    other = np.asarray(uniforms(jax.random.key(12), syn, 1, jnp.float64))[:, 0]
    for a, b in ((u[:-1, 0], u[1:, 0]), (u[:, 0], u[:, 1]), (u[:, 0], other)):
        assert abs(np.corrcoef(a, b)[0, 1]) < 4 / np.sqrt(n)
    perm = np.random.default_rng(0).permutation(n)[:1000].reshape(40, 25)
    np.testing.assert_array_equal(
        np.asarray(uniforms(key, jnp.asarray(perm), 2, jnp.float64)), u[perm]
    )
