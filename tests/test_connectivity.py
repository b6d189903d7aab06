"""Connectivity: builders (exact structure and statistics), dense == sparse, event-driven
propagation == the dense product for any activity (every neuron spiking included), gradients
and errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from jsyn.connectivity import ALL, default_tiers, select


def _matrix(conn) -> np.ndarray:
    return np.asarray(conn.matrix())


# -- builders: exact structure ---------------------------------------------------------------


def test_all_to_all_dense_and_sparse_agree():
    dense = jsyn.all_to_all(4, 3, 0.5)
    sparse = jsyn.all_to_all(4, 3, 0.5, sparse=True)
    assert isinstance(dense, jsyn.Dense) and isinstance(sparse, jsyn.Sparse)
    np.testing.assert_array_equal(_matrix(dense), np.full((4, 3), 0.5))
    np.testing.assert_array_equal(_matrix(sparse), np.full((4, 3), 0.5))
    assert sparse.n_syn == 12


def test_all_to_all_without_self_connections():
    for sparse in (False, True):
        m = _matrix(jsyn.all_to_all(5, 5, 2.0, self_connections=False, sparse=sparse))
        np.testing.assert_array_equal(m, 2.0 * (1.0 - np.eye(5)))


def test_one_to_one_is_the_identity():
    conn = jsyn.one_to_one(6, 1.5)
    np.testing.assert_array_equal(_matrix(conn), 1.5 * np.eye(6))
    assert conn.width == 1


def test_from_pairs_sorts_and_keeps_weights_with_their_pairs():
    pre, post, w = [2, 0, 2, 1], [1, 2, 0, 1], [1.0, 2.0, 3.0, 4.0]
    conn = jsyn.from_pairs(pre, post, 3, 3, jnp.array(w))
    expected = np.zeros((3, 3))
    for i, j, v in zip(pre, post, w):
        expected[i, j] += v
    np.testing.assert_array_equal(_matrix(conn), expected)
    assert np.all(np.diff(np.asarray(conn.pre_idx)) >= 0)


def test_sparse_leaves_the_callers_index_arrays_alone():
    # int64 indices are used as given, without a copy (memory at 10^8 synapses): never
    # written to, sorted or not
    for pre in ([0, 1, 1, 2], [2, 0, 2, 1]):
        pre, post = np.array(pre, np.int64), np.array([1, 2, 0, 1], np.int64)
        kept = pre.copy(), post.copy()
        conn = jsyn.Sparse(pre, post, 3, 3, jnp.arange(4.0))
        np.testing.assert_array_equal(pre, kept[0])
        np.testing.assert_array_equal(post, kept[1])
        expected = np.zeros((3, 3))
        expected[kept[0], kept[1]] = np.arange(4.0)
        np.testing.assert_array_equal(_matrix(conn), expected)


def test_from_matrix_dense_and_sparse():
    m = np.array([[0.0, 1.0, 0.0], [2.0, 0.0, -3.0]])
    np.testing.assert_array_equal(_matrix(jsyn.from_matrix(m)), m)
    sparse = jsyn.from_matrix(m, sparse=True)
    assert sparse.n_syn == 3
    np.testing.assert_array_equal(_matrix(sparse), m)


def test_repeated_pairs_are_separate_synapses():
    conn = jsyn.Sparse([0, 0, 1], [1, 1, 0], 2, 2, jnp.array([1.0, 2.0, 4.0]))
    np.testing.assert_array_equal(_matrix(conn), [[0.0, 3.0], [4.0, 0.0]])
    out = conn.deliver(jnp.array([1.0, 0.0]), jnp.zeros(2))
    np.testing.assert_array_equal(out, [0.0, 3.0])


# -- builders: statistics ----------------------------------------------------------------------


def test_fixed_prob_count_and_uniformity():
    n_pre, n_post, p = 400, 300, 0.05
    conn = jsyn.fixed_prob(n_pre, n_post, p, key=jax.random.key(3))
    mean, sd = p * n_pre * n_post, np.sqrt(p * (1 - p) * n_pre * n_post)
    assert abs(conn.n_syn - mean) < 5 * sd
    m = _matrix(conn)
    assert set(np.unique(m)) <= {0.0, 1.0}  # no pair twice
    # Out-degrees are Binomial(n_post, p): their mean and variance.
    out = m.sum(axis=1)
    assert abs(out.mean() - p * n_post) < 5 * np.sqrt(p * (1 - p) * n_post / n_pre)
    assert 0.7 < out.var() / (p * (1 - p) * n_post) < 1.3
    # Rows and columns are alike: the first and second halves get as many synapses.
    a, b = m[:, : n_post // 2].sum(), m[:, n_post // 2 :].sum()
    assert abs(a - b) < 5 * np.sqrt(a + b)


def test_fixed_prob_is_reproducible_and_keyed():
    a = jsyn.fixed_prob(100, 100, 0.1, key=jax.random.key(0))
    b = jsyn.fixed_prob(100, 100, 0.1, key=jax.random.key(0))
    c = jsyn.fixed_prob(100, 100, 0.1, key=jax.random.key(1))
    d = jsyn.fixed_prob(100, 100, 0.1, key=7)
    np.testing.assert_array_equal(a.post_idx, b.post_idx)
    assert a.n_syn != c.n_syn or np.any(a.post_idx != c.post_idx)
    assert d.n_syn > 0


def test_fixed_prob_edges_and_self_connections():
    assert jsyn.fixed_prob(10, 20, 0.0, key=0).n_syn == 0
    np.testing.assert_array_equal(_matrix(jsyn.fixed_prob(10, 20, 1.0, key=0)), np.ones((10, 20)))
    full = jsyn.fixed_prob(10, 10, 1.0, key=0, self_connections=False)
    np.testing.assert_array_equal(_matrix(full), 1.0 - np.eye(10))
    conn = jsyn.fixed_prob(200, 200, 0.2, key=1, self_connections=False)
    assert not np.any(np.asarray(conn.pre_idx) == np.asarray(conn.post_idx))


@pytest.mark.parametrize("k", [5, 150])  # sparse draws and dense draws
def test_fixed_in_degree_exact_and_uniform(k):
    n_pre, n_post = 200, 120
    conn = jsyn.fixed_in_degree(n_pre, n_post, k, key=2, self_connections=False)
    m = _matrix(conn)
    assert set(np.unique(m)) <= {0.0, 1.0}  # distinct presynaptic partners
    np.testing.assert_array_equal(m.sum(axis=0), np.full(n_post, k))
    assert not np.any(np.diag(m))
    # Each pre neuron is drawn with probability about k / n_pre by every post neuron.
    out = m.sum(axis=1)
    p = k / (n_pre - 1)
    assert abs(out.mean() - k * n_post / n_pre) < 1e-9
    assert np.abs(out - p * n_post).max() < 6 * np.sqrt(n_post * p * (1 - p))


@pytest.mark.parametrize("k", [4, 90])
def test_fixed_out_degree_exact(k):
    conn = jsyn.fixed_out_degree(150, 100, k, key=jax.random.key(4), self_connections=False)
    m = _matrix(conn)
    assert set(np.unique(m)) <= {0.0, 1.0}
    np.testing.assert_array_equal(m.sum(axis=1), np.full(150, k))
    assert not np.any(np.diag(m[:100]))
    assert conn.width == k


def test_builder_weights_may_be_per_synapse_functions():
    conn = jsyn.fixed_prob(50, 40, 0.3, key=0, w=lambda n: jnp.linspace(0.5, 1.5, n))
    assert conn.weights().shape == (conn.n_syn,)
    np.testing.assert_allclose(_matrix(conn).sum(), float(jnp.sum(conn.weights())))


# -- propagation ---------------------------------------------------------------------------------


def _random_sparse(n_pre=300, n_post=200, p=0.05, seed=0, per_synapse=True, **kw):
    def w(n):
        return jnp.asarray(np.random.default_rng(seed).uniform(-1, 2, n))

    w = w if per_synapse else 0.7
    return jsyn.fixed_prob(n_pre, n_post, p, key=seed, w=w, **kw)


def _signal(n, n_active, seed=0, counts=False):
    rng = np.random.default_rng(seed)
    s = np.zeros(n)
    idx = rng.choice(n, n_active, replace=False)
    s[idx] = rng.integers(1, 4, n_active) if counts else 1.0
    return jnp.asarray(s)


@pytest.mark.parametrize("per_synapse", [True, False])
@pytest.mark.slow  # 12 s in the default lane (2 workers, 2 cores, load 3-4)
def test_event_driven_equals_dense_for_any_activity(per_synapse):
    """Every tier, its boundaries, and a step in which every neuron spikes."""
    conn = _random_sparse(per_synapse=per_synapse)
    assert conn.tiers == (8, 16, 32, 64, 128, 256, 300)
    into = jnp.asarray(np.random.default_rng(1).normal(size=200))
    deliver = jax.jit(lambda c, s, i: c.deliver(s, i))
    for n_active in [0, 1, 7, 8, 9, 16, 17, 33, 64, 65, 200, 256, 257, 299, 300]:
        s = _signal(300, n_active, seed=n_active, counts=True)
        expected = np.asarray(into) + np.asarray(s) @ _matrix(conn)
        got = deliver(conn, s, into)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=f"{n_active}")
    np.testing.assert_allclose(conn.deliver(s, into), expected, rtol=1e-12, atol=1e-12)


def test_event_driven_takes_any_real_signal():
    conn = _random_sparse()
    mask = (_signal(300, 40, 3) > 0).astype(jnp.float64)
    s = jnp.asarray(np.random.default_rng(2).normal(size=300)) * mask
    np.testing.assert_allclose(
        conn.deliver(s, jnp.zeros(200)), np.asarray(s) @ _matrix(conn), rtol=1e-12, atol=1e-12
    )


def test_all_spike_step_with_small_tiers_drops_nothing():
    conn = jsyn.fixed_prob(64, 50, 0.3, key=5, tiers=(1, 2, 64))
    s = jnp.ones(64)
    np.testing.assert_allclose(
        conn.deliver(s, jnp.zeros(50)), _matrix(conn).sum(axis=0), rtol=1e-12
    )


@pytest.mark.parametrize(
    "n, cap", [(300, 16), (300, 64), (1000, 16), (1000, 40), (70, 3), (5000, 16), (70001, 64)]
)
@pytest.mark.slow  # 5 s in the default lane (2 workers, 2 cores)
def test_select_finds_every_active_neuron_in_order(n, cap):
    """One level (at most `cap` words of 32 neurons) and two levels (the words that hold an
    active neuron, then their neurons); beyond `cap` active neurons, the first `cap`."""
    rng = np.random.default_rng(n + cap)
    for n_active in (0, 1, cap // 2, cap, cap + 5):
        s = np.zeros(n)
        active = rng.choice(n, n_active, replace=False)
        if n_active > 1:
            active[:2] = 0, n - 1  # the first and last neuron
        s[active] = rng.normal(size=n_active) + 3.0
        got = np.asarray(select(jnp.asarray(s), cap))
        want = np.full(cap, n)
        first = np.flatnonzero(s)[:cap]
        want[: first.size] = first
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(jax.jit(select, static_argnums=1)(jnp.asarray(s), cap), want)


@pytest.mark.parametrize("per_synapse", [True, False])
@pytest.mark.parametrize("delays", ["none", "scalar", "synapse"])
@pytest.mark.slow  # 60 s in the default lane (2 workers, 2 cores, load 3-4)
def test_a_given_selection_delivers_exactly_what_the_tiers_deliver(per_synapse, delays):
    """`deliver(selection=...)` (a selection with padding: beyond n_pre and negative
    entries, as a group's selection shifted to a slice gives) and `ALL` equal the tiered
    delivery bit for bit, at every tier."""
    conn = _random_sparse(n_pre=300, n_post=200, p=0.05, per_synapse=per_synapse)
    rng = np.random.default_rng(1)
    kw, into = {}, jnp.asarray(rng.normal(size=200))
    if delays != "none":
        shape = (conn.n_syn,) if delays == "synapse" else ()
        rows = jnp.asarray(rng.integers(0, 5, shape), jnp.int32)
        kw = dict(rows=rows, rows_next=(rows + 1) % 6, frac=jnp.asarray(rng.uniform(0, 1, shape)))
        into = jnp.asarray(rng.normal(size=(6, 200)))
    for n_active in (0, 3, 16, 17, 64, 65, 256, 257, 300):
        s = _signal(300, n_active, seed=n_active, counts=True)
        want = conn.deliver(s, into, **kw)
        for cap in [c for c in conn.tiers if c >= n_active]:
            idx = np.asarray(select(s, cap))
            idx = np.where(idx == 300, rng.choice([300, 301, -1, -300], cap), idx)
            got = conn.deliver(s, into, selection=jnp.asarray(idx), **kw)
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(conn.deliver(s, into, selection=ALL, **kw), want)


@pytest.mark.slow  # 11 s in the default lane (2 workers, 2 cores, load 3-4)
def test_a_given_selection_keeps_the_dense_gradient():
    """The tangent is still over every synapse, silent neurons included."""
    conn = _random_sparse(n_pre=80, n_post=50, p=0.2)
    s = _signal(80, 5, seed=2)
    idx = select(s, 16)

    def loss(s, w, selection):
        return jnp.sum(jnp.tanh(conn.deliver(s, jnp.zeros(50), weights=w, selection=selection)))

    w = conn.weights()
    want = jax.grad(loss, argnums=(0, 1))(s, w, None)
    got = jax.jit(jax.grad(loss, argnums=(0, 1)))(s, w, idx)
    assert np.all(np.asarray(want[0]) != 0)  # silent neurons get a gradient too
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12)


def test_dense_and_sparse_deliver_the_same():
    conn = _random_sparse(n_pre=60, n_post=40, p=0.2)
    dense = jsyn.Dense(conn.matrix())
    s = _signal(60, 9, seed=4, counts=True)
    into = jnp.zeros(40)
    np.testing.assert_allclose(dense.deliver(s, into), conn.deliver(s, into), rtol=1e-12)


@pytest.mark.parametrize("per_synapse_delay", [False, True])
def test_delayed_delivery_splits_each_spike_over_two_rows(per_synapse_delay):
    conn = _random_sparse(n_pre=40, n_post=30, p=0.2)
    rng = np.random.default_rng(0)
    if per_synapse_delay:
        rows = jnp.asarray(rng.integers(0, 5, conn.n_syn), jnp.int32)
        frac = jnp.asarray(rng.uniform(0, 1, conn.n_syn))
    else:
        rows, frac = jnp.asarray(2, jnp.int32), jnp.asarray(0.3)
    rows_next = (rows + 1) % 6
    s = _signal(40, 7, seed=1)
    buf = conn.deliver(s, jnp.zeros((6, 30)), rows=rows, rows_next=rows_next, frac=frac)
    expected = np.zeros((6, 30))
    r = np.broadcast_to(rows, (conn.n_syn,))
    rn = np.broadcast_to(rows_next, (conn.n_syn,))
    f = np.broadcast_to(frac, (conn.n_syn,))
    w = np.asarray(conn.weights())
    for syn, (i, j) in enumerate(zip(np.asarray(conn.pre_idx), np.asarray(conn.post_idx))):
        expected[r[syn], j] += (1 - f[syn]) * s[i] * w[syn]
        expected[rn[syn], j] += f[syn] * s[i] * w[syn]
    np.testing.assert_allclose(buf, expected, rtol=1e-12, atol=1e-12)
    dense = jsyn.Dense(conn.matrix())
    if not per_synapse_delay:
        got = dense.deliver(s, jnp.zeros((6, 30)), rows=rows, rows_next=rows_next, frac=frac)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.slow  # 7 s in the default lane (2 workers, 2 cores)
def test_gradients_are_those_of_the_dense_product():
    """W.r.t. the signal of every neuron (silent ones too) and w.r.t. the weights."""
    conn = _random_sparse(n_pre=80, n_post=50, p=0.2)
    s = _signal(80, 5, seed=2)
    probe = jnp.asarray(np.random.default_rng(3).normal(size=50))

    def loss_sparse(s, w):
        return jnp.sum(probe * jnp.tanh(conn.deliver(s, jnp.zeros(50), weights=w)))

    m = jnp.zeros((80, 50))

    def loss_dense(s, w):
        mat = m.at[conn.pre_idx, conn.post_idx].add(w)
        return jnp.sum(probe * jnp.tanh(s @ mat))

    w = conn.weights()
    gs, gw = jax.grad(loss_sparse, argnums=(0, 1))(s, w)
    ds, dw = jax.grad(loss_dense, argnums=(0, 1))(s, w)
    np.testing.assert_allclose(gs, ds, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gw, dw, rtol=1e-12, atol=1e-14)
    assert np.count_nonzero(np.asarray(gs)) > 40  # silent neurons get a gradient


def test_vmap_equals_loop():
    conn = _random_sparse()
    signals = jnp.stack([_signal(300, n, seed=n) for n in (3, 40, 300)])
    batched = jax.jit(jax.vmap(lambda s: conn.deliver(s, jnp.zeros(200))))(signals)
    for b in range(3):
        np.testing.assert_allclose(batched[b], conn.deliver(signals[b], jnp.zeros(200)))


def test_spread_and_collect():
    conn = jsyn.Sparse([0, 1, 1], [1, 0, 1], 2, 2, jnp.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(conn.spread(jnp.array([5.0, 7.0])), [5.0, 7.0, 7.0])
    np.testing.assert_array_equal(conn.collect(jnp.array([1.0, 1.0, 2.0])), [2.0, 7.0])
    dense = jsyn.Dense(jnp.array([[0.0, 1.0], [2.0, 3.0]]))
    vals = jnp.array([[9.0, 1.0], [1.0, 2.0]])
    np.testing.assert_array_equal(dense.collect(vals), [2.0, 7.0])


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_spread_post_and_collect_pre_are_the_transposed_product(sparse):
    rng = np.random.default_rng(3)
    m = rng.uniform(0.5, 2.0, (5, 4)) * (rng.random((5, 4)) < 0.6)
    conn = jsyn.from_matrix(jnp.asarray(m), sparse=sparse)
    x, y = jnp.asarray(rng.normal(size=4)), jnp.asarray(rng.normal(size=5))
    # sum_j w_ij x_j onto each presynaptic neuron, and its adjoint: y . (W x) = (W^T y) . x
    Wx = conn.collect_pre(conn.spread_post(x))
    np.testing.assert_allclose(Wx, m @ np.asarray(x), rtol=1e-12, atol=1e-14)
    WTy = conn.collect(conn.spread(y))
    np.testing.assert_allclose(jnp.dot(y, Wx), jnp.dot(WTy, x), rtol=1e-12)
    assert conn.spread_post(x).shape == conn.syn_shape
    # Weights passed in (a plastic projection's) act as the connection's own would.
    w = jnp.asarray(rng.uniform(size=conn.syn_shape))
    own = eqx.tree_at(lambda c: c.w, conn, w)
    got = conn.collect_pre(conn.spread_post(x), weights=w)
    np.testing.assert_allclose(got, own.collect_pre(own.spread_post(x)), rtol=1e-12)
    np.testing.assert_allclose(got, np.asarray(own.matrix()) @ np.asarray(x), rtol=1e-12)
    with pytest.raises(ValueError, match=r"postsynaptic signal of shape \(4,\)"):
        conn.spread_post(jnp.ones(5))


def test_default_tiers():
    assert default_tiers(4000) == (8, 16, 32, 64, 128, 256, 512, 1024, 4000)
    assert default_tiers(64000) == (8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 64000)
    assert default_tiers(10) == (8, 10)
    assert default_tiers(8) == (8,)


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_fixed_prob_rejects_p_outside_unit_interval(p):
    with pytest.raises(ValueError, match="probability p in \\[0, 1\\]"):
        jsyn.fixed_prob(10, 10, p, key=0)


def test_sparse_errors():
    with pytest.raises(ValueError, match="must lie in \\[0, 3\\)"):
        jsyn.Sparse([0, 3], [0, 1], 3, 3)
    with pytest.raises(ValueError, match="one post index per pre index"):
        jsyn.Sparse([0, 1], [0], 3, 3)
    with pytest.raises(ValueError, match="one weight per synapse"):
        jsyn.Sparse([0, 1], [0, 1], 3, 3, jnp.ones(3))
    with pytest.raises(ValueError, match="end at n_pre=3"):
        jsyn.Sparse([0, 1], [0, 1], 3, 3, tiers=(1, 2))
    with pytest.raises(TypeError, match="integer neuron indices"):
        jsyn.Sparse(np.array([0.5]), np.array([0]), 3, 3)
    conn = jsyn.one_to_one(3)
    with pytest.raises(ValueError, match="shape \\(3,\\)"):
        conn.deliver(jnp.ones(4), jnp.zeros(3))


def test_degree_errors():
    with pytest.raises(ValueError, match="cannot draw 10 distinct partners from 9"):
        jsyn.fixed_in_degree(10, 10, 10, key=0, self_connections=False)
    with pytest.raises(ValueError, match="integer k >= 0"):
        jsyn.fixed_out_degree(10, 10, -1, key=0)


def test_dense_errors():
    with pytest.raises(ValueError, match="needs n_pre and n_post"):
        jsyn.Dense(1.0)
    with pytest.raises(ValueError, match="needs n_pre=2"):
        jsyn.Dense(jnp.ones((2, 3)), n_pre=4)


def test_nonfinite_weights_are_refused():
    with pytest.raises(ValueError, match="Sparse.w must be finite"):
        jsyn.Sparse([0], [0], 1, 1, jnp.array([np.inf]))
