"""Gap junctions (docs/models.md, "Gap junctions and couplings"): formulas against NumPy on
dense and sparse connections, sign and conservation, one group coupled to itself, the seed
tutorial's example alone and as a `jsyn.Network`, jit, vmap, grad, dtypes and errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from helpers import DT, central_fd, current_steps, tree_allclose

# -- NumPy references, written with explicit loops over the junctions ------------------------


def np_gap_currents(w, V_pre, V_post):
    """(I_pre, I_post) of a dense (n_pre, n_post) conductance matrix, junction by junction."""
    I_pre, I_post = np.zeros(len(V_pre)), np.zeros(len(V_post))
    for i in range(len(V_pre)):
        for j in range(len(V_post)):
            I_post[j] += w[i, j] * (V_pre[i] - V_post[j])
            I_pre[i] += w[i, j] * (V_post[j] - V_pre[i])
    return I_pre, I_post


def np_spikelet(w, k, spikes):
    dV = np.zeros(w.shape[1])
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            dV[j] += k * w[i, j] * spikes[i]
    return dV


def random_w(rng, n_pre, n_post, density=0.7):
    return rng.uniform(0.1, 1.0, (n_pre, n_post)) * (rng.random((n_pre, n_post)) < density)


def symmetric_w(rng, n, density=1.0):
    G = random_w(rng, n, n, density)
    return (G + G.T) / 2


def conn(w, sparse=False):
    """A Dense or Sparse connection (one synapse per nonzero entry) of the matrix `w`."""
    return jsyn.from_matrix(jnp.asarray(w), sparse=sparse)


both = pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])

# -- formulas, sign, conservation ----------------------------------------------------------


@both
@pytest.mark.parametrize("n_pre,n_post", [(2, 3), (5, 4), (1, 1), (6, 6)])
def test_currents_match_numpy_for_random_matrices(n_pre, n_post, sparse):
    rng = np.random.default_rng(n_pre * 10 + n_post)
    w = random_w(rng, n_pre, n_post)
    w[0, 0] = 0.5  # at least one junction
    V_pre, V_post = rng.uniform(-80, 0, n_pre), rng.uniform(-80, 0, n_post)
    I_pre, I_post = jsyn.GapJunction(conn(w, sparse)).currents(V_pre, V_post)
    want_pre, want_post = np_gap_currents(w, V_pre, V_post)
    np.testing.assert_allclose(I_pre, want_pre, rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(I_post, want_post, rtol=1e-12, atol=1e-11)


def test_a_matrix_is_taken_as_a_dense_connection():
    w = jnp.asarray(random_w(np.random.default_rng(0), 3, 2))
    gap = jsyn.GapJunction(w, 2.0)
    assert isinstance(gap.conn, jsyn.Dense)
    np.testing.assert_array_equal(gap.conn.matrix(), w)
    softplus = jsyn.GapJunction(jsyn.SoftplusPositive(w + 0.1))
    np.testing.assert_allclose(softplus.conn.matrix(), w + 0.1, rtol=1e-12)


@both
def test_all_to_all_one_to_one_and_listed_pairs_match_their_matrices(sparse):
    rng = np.random.default_rng(2)
    V_pre, V_post = rng.uniform(-80, 0, 4), rng.uniform(-80, 0, 5)
    got = jsyn.GapJunction(jsyn.all_to_all(4, 5, 0.7, sparse=sparse)).currents(V_pre, V_post)
    assert tree_allclose(got, np_gap_currents(np.full((4, 5), 0.7), V_pre, V_post))
    got = jsyn.GapJunction(jsyn.one_to_one(4, 0.3)).currents(V_pre, V_post[:4])
    assert tree_allclose(got, np_gap_currents(0.3 * np.eye(4), V_pre, V_post[:4]))
    pre_idx = np.array([0, 0, 1, 3, 3, 2, 0])  # (0, 1) listed twice: the pair adds up
    post_idx = np.array([1, 4, 0, 2, 4, 2, 1])
    w = rng.uniform(0.1, 1.0, pre_idx.size)
    dense = np.zeros((4, 5))
    np.add.at(dense, (pre_idx, post_idx), w)
    gap = jsyn.GapJunction(jsyn.from_pairs(pre_idx, post_idx, 4, 5, jnp.asarray(w)), 2.0)
    assert tree_allclose(gap.currents(V_pre, V_post), np_gap_currents(dense, V_pre, V_post))
    spikes = np.array([1.0, 0.0, 2.0, 1.0])
    np.testing.assert_allclose(gap.spikelet(spikes), np_spikelet(dense, 2.0, spikes), rtol=1e-12)


def test_current_flows_into_the_cell_at_lower_potential():
    gap = jsyn.GapJunction(jsyn.one_to_one(1, 0.5))
    I_pre, I_post = gap.currents(jnp.array([-40.0]), jnp.array([-70.0]))
    # 0.5 nS x 30 mV = 15 pA leaves the depolarised pre cell and enters the post cell.
    assert I_post[0] == 15.0 and I_pre[0] == -15.0
    I_pre, I_post = gap.currents(jnp.array([-70.0]), jnp.array([-40.0]))
    assert I_post[0] == -15.0 and I_pre[0] == 15.0
    I_pre, I_post = gap.currents(jnp.array([-55.0]), jnp.array([-55.0]))
    assert I_pre[0] == 0.0 and I_post[0] == 0.0


@both
@pytest.mark.parametrize("seed", range(3))
def test_total_gap_current_is_zero(seed, sparse):
    """Each junction takes out of one cell what it puts into the other: the currents of
    both groups sum to 0 for any w."""
    rng = np.random.default_rng(seed)
    w = random_w(rng, 4, 7)
    V_pre, V_post = rng.uniform(-80, 0, 4), rng.uniform(-80, 0, 7)
    I_pre, I_post = jsyn.GapJunction(conn(w, sparse)).currents(V_pre, V_post)
    scale = float(jnp.sum(jnp.abs(I_post)))
    assert scale > 1.0
    assert abs(float(I_pre.sum() + I_post.sum())) < 1e-12 * scale


def test_swapping_pre_and_post_transposes_the_coupling():
    rng = np.random.default_rng(3)
    w = random_w(rng, 3, 5)
    V_pre, V_post = rng.uniform(-80, 0, 3), rng.uniform(-80, 0, 5)
    I_pre, I_post = jsyn.GapJunction(jnp.asarray(w)).currents(V_pre, V_post)
    J_pre, J_post = jsyn.GapJunction(jnp.asarray(w.T)).currents(V_post, V_pre)
    np.testing.assert_allclose(I_pre, J_post, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(I_post, J_pre, rtol=1e-12, atol=1e-12)


@both
def test_spikelet_is_k_times_w_per_presynaptic_spike(sparse):
    rng = np.random.default_rng(4)
    w = random_w(rng, 3, 4)
    spikes = np.array([1.0, 0.0, 1.0])
    gap = jsyn.GapJunction(conn(w, sparse), k_spikelet=5.0)
    np.testing.assert_allclose(gap.spikelet(spikes), np_spikelet(w, 5.0, spikes), rtol=1e-12)
    # Seed numbers: w = 0.5 nS, k = 5 mV/nS: 2.5 mV per presynaptic spike and pair.
    seed = jsyn.GapJunction(jsyn.all_to_all(2, 3, 0.5, sparse=sparse), 5.0)
    np.testing.assert_allclose(seed.spikelet(jnp.array([1.0, 1.0])), [5.0, 5.0, 5.0])
    no_k = jsyn.GapJunction(jsyn.all_to_all(2, 3, 0.5, sparse=sparse))
    assert np.all(no_k.spikelet(jnp.ones(2)) == 0.0)  # default k = 0
    # k per post cell, and integer spike counts.
    k = jnp.array([1.0, 2.0, 0.0, 4.0])
    np.testing.assert_allclose(
        jsyn.GapJunction(conn(w, sparse), k).spikelet(jnp.array([1, 0, 2])),
        np.asarray(k) * np_spikelet(w, 1.0, [1, 0, 2]),
        rtol=1e-12,
    )


# -- one group coupled to itself --------------------------------------------------------------


@both
def test_recurrent_current_with_symmetric_w(sparse):
    rng = np.random.default_rng(5)
    G = random_w(rng, 5, 5)
    G = G + G.T  # the junction between i and j: G[i, j] = G[j, i]
    np.fill_diagonal(G, 3.0)  # the diagonal drops out
    V = rng.uniform(-80, 0, 5)
    I = jsyn.GapJunction(conn(G, sparse)).recurrent_current(V)
    want = np.array([sum(G[i, j] * (V[i] - V[j]) for i in range(5)) for j in range(5)])
    np.testing.assert_allclose(I, want, rtol=1e-12, atol=1e-11)
    assert abs(float(I.sum())) < 1e-12 * float(jnp.abs(I).sum())  # charge is conserved
    # A two-cell group is the seed tutorial's pair: I_1 = w (V_0 - V_1).
    pair = jsyn.GapJunction(jsyn.all_to_all(2, 2, 0.5, sparse=sparse))
    np.testing.assert_allclose(pair.recurrent_current(jnp.array([-40.0, -70.0])), [-15.0, 15.0])


@both
def test_recurrent_spikelets_skip_the_spiking_cell_itself(sparse):
    G = np.array([[9.0, 1.0, 2.0], [1.0, 9.0, 0.5], [2.0, 0.5, 9.0]])
    spikes = jnp.array([1.0, 0.0, 1.0])
    dV = jsyn.GapJunction(conn(G, sparse), 2.0).recurrent_spikelet(spikes)
    np.testing.assert_allclose(dV, 2.0 * np.array([2.0, 1.0 + 0.5, 2.0]))
    dV = jsyn.GapJunction(jsyn.all_to_all(3, 3, 0.5, sparse=sparse), 2.0).recurrent_spikelet(spikes)
    np.testing.assert_allclose(dV, [1.0, 2.0, 1.0])
    # (1, 1) is a self pair, and (0, 2) and (2, 0) are both listed twice.
    pairs = jsyn.from_pairs([0, 1, 0, 2, 1, 0, 2], [1, 0, 2, 0, 1, 2, 0], 3, 3, 1.0)
    np.testing.assert_allclose(jsyn.GapJunction(pairs, 2.0).recurrent_spikelet(spikes), [4, 2, 4])


def test_recurrent_coupling_refuses_asymmetric_w():
    gap = jsyn.GapJunction(jnp.array([[0.0, 1.0], [0.5, 0.0]]))
    with pytest.raises(ValueError, match=r"symmetric w, w\[i, j\] == w\[j, i\].*at index"):
        gap.recurrent_current(jnp.array([-60.0, -50.0]))
    with pytest.raises(ValueError, match="symmetric w"):
        gap.recurrent_spikelet(jnp.array([1.0, 0.0]))
    one_way = jsyn.GapJunction(jsyn.from_pairs([0], [1], 2, 2, 1.0))
    with pytest.raises(ValueError, match="symmetric w"):
        one_way.recurrent_current(jnp.array([-60.0, -50.0]))
    both_ways = jsyn.GapJunction(jsyn.from_pairs([0, 1], [1, 0], 2, 2, 1.0))
    np.testing.assert_allclose(both_ways.recurrent_current(jnp.array([-60.0, -50.0])), [10, -10])
    # Named as one group coupled to itself, it is refused at construction.
    with pytest.raises(ValueError, match="within one group \\(group 'E'\\) needs a symmetric"):
        jsyn.GapJunction(jsyn.from_pairs([0], [1], 2, 2, 1.0), pre="E", post="E")
    # A small asymmetry among many junctions is caught too.
    G = symmetric_w(np.random.default_rng(0), 30)
    G[3, 17] += 1e-6
    with pytest.raises(ValueError, match="symmetric w"):
        jsyn.GapJunction(conn(G, sparse=True), pre="E", post="E")


class _RingState(eqx.Module):
    cells: jsyn.LIFState
    jump: jax.Array


class _Ring(eqx.Module):
    """One LIF group coupled to itself: currents from the potentials at the end of the
    previous step, spikelets of the previous step's spikes (a group cannot take its own
    spikes in the step that makes them)."""

    cells: jsyn.LIF
    gap: jsyn.GapJunction

    def init_state(self, n, *, dtype=None):
        V0 = -60.0 + 8.0 * jnp.sin(jnp.arange(n[0]))
        return _RingState(self.cells.init_state(n, dtype=dtype, V0=V0), jnp.zeros(n, dtype))

    def step(self, state, x, dt):
        I_gap = self.gap.recurrent_current(state.cells.V)
        cells, spikes = self.cells.step(state.cells, x + I_gap, dt, jump=state.jump)
        return _RingState(cells, self.gap.recurrent_spikelet(spikes)), (I_gap, spikes)


def test_recurrent_group_conserves_charge_and_synchronises():
    G = symmetric_w(np.random.default_rng(6), 6)
    ring = _Ring(jsyn.LIF(V_th=100.0), jsyn.GapJunction(jnp.asarray(G)))
    _, (I, V) = jsyn.simulate(ring, jnp.zeros((400, 6)), DT, record=lambda s, o: (o[0], s.cells.V))
    np.testing.assert_allclose(I.sum(axis=1), 0.0, atol=1e-11)
    # With no input, the mean potential relaxes to rest as if uncoupled, and the spread
    # between cells shrinks faster than that.
    f = np.exp(-DT / 20.0)
    mean0 = np.mean(-60.0 + 8.0 * np.sin(np.arange(6)))
    np.testing.assert_allclose(
        V.mean(axis=1), -60.0 + (mean0 + 60.0) * f ** np.arange(1, 401), rtol=1e-12
    )
    spread = np.ptp(np.asarray(V), axis=1)
    assert spread[-1] < 0.01 * spread[0]  # uncoupled: e^(-40 ms / 20 ms) = 0.135


# -- the seed tutorial's example: two LIF groups joined by gap junctions --------------------


class _PairState(eqx.Module):
    pre: jsyn.LIFState
    post: jsyn.LIFState


class _GapPair(eqx.Module):
    r"""pre LIF ⇄ GapJunction ⇄ post LIF, stepped by hand: the gap currents over step $n$
    come from the potentials at the end of step $n-1$; the pre spikes of step $n$ reach the
    post cells as spikelets (voltage jumps) in step $n$. `x` is the external current into
    the pre cells (pA)."""

    pre: jsyn.LIF
    post: jsyn.LIF
    gap: jsyn.GapJunction
    V0: float = eqx.field(static=True, default=-10.0)

    def init_state(self, n, *, dtype=None):
        return _PairState(
            self.pre.init_state(n, dtype=dtype, V0=self.V0),
            self.post.init_state(self.gap.n_post, dtype=dtype, V0=self.V0),
        )

    def step(self, state, x, dt):
        I_pre, I_post = self.gap.currents(state.pre.V, state.post.V)
        pre, pre_spikes = self.pre.step(state.pre, x + I_pre, dt)
        dV = self.gap.spikelet(pre_spikes)
        post, post_spikes = self.post.step(state.post, I_post, dt, jump=dV)
        out = dict(I_pre=I_pre, I_post=I_post, dV=dV, pre_spikes=pre_spikes)
        return _PairState(pre, post), {**out, "post_spikes": post_spikes}


def _record(state, out):
    return {**out, "V_pre": state.pre.V, "V_post": state.post.V}


def seed_gap(w=0.5, k=5.0, sparse=False, **names):
    """The seed's junctions: every cell of a group of 2 to every cell of a group of 3,
    w = 0.5 nS, k_spikelet = 5 mV/nS."""
    return jsyn.GapJunction(jsyn.all_to_all(2, 3, w, sparse=sparse), k, **names)


def seed_pair(w=0.5, k=5.0, lif=None):
    """The seed: LIF groups of 2 and 3 (no refractory period), V0 = -10 mV."""
    lif = jsyn.LIF(tau_ref=0.0) if lif is None else lif
    return _GapPair(lif, lif, seed_gap(w, k))


def np_pair(w, k, I_ext, V0=-10.0, V_rest=-60.0, V_th=-50.0, V_reset=-60.0, tau=20.0, R=1.0, lag=0):
    """The same equations, step by step in NumPy; the spikelets of the pre spikes of step
    n reach the post cells in step n + `lag`."""
    T, n_pre = I_ext.shape
    n_post = w.shape[1]
    V_pre, V_post = np.full(n_pre, V0), np.full(n_post, V0)
    pending = np.zeros(n_post)
    f = np.exp(-DT / tau)
    rec = {name: [] for name in ("V_pre", "V_post", "pre_spikes", "post_spikes", "I_post")}
    for n in range(T):
        I_pre, I_post = np_gap_currents(w, V_pre, V_post)
        V_inf = V_rest + R * (I_ext[n] + I_pre)
        V_pre = V_inf + (V_pre - V_inf) * f
        pre_spikes = (V_pre >= V_th).astype(float)
        V_pre = np.where(pre_spikes > 0, V_reset, V_pre)
        kick = np_spikelet(w, k, pre_spikes)
        V_inf = V_rest + R * I_post
        V_post = V_inf + (V_post - V_inf) * f + (kick if lag == 0 else pending)
        pending = kick
        post_spikes = (V_post >= V_th).astype(float)
        V_post = np.where(post_spikes > 0, V_reset, V_post)
        for name, value in zip(rec, (V_pre, V_post, pre_spikes, post_spikes, I_post)):
            rec[name].append(value)
    return {name: np.array(values) for name, values in rec.items()}


def run_seed(**kwargs):
    inputs = jnp.full((1000, 2), 30.0)  # 100 ms at dt = 0.1, 30 pA into the first group
    _, rec = jsyn.simulate(seed_pair(**kwargs), inputs, DT, record=_record)
    return {name: np.asarray(value) for name, value in rec.items()}


def test_seed_example_matches_numpy_loop():
    rec = run_seed()
    want = np_pair(np.full((2, 3), 0.5), 5.0, np.full((1000, 2), 30.0))
    for name in want:
        np.testing.assert_allclose(rec[name], want[name], rtol=1e-10, atol=1e-9, err_msg=name)
    # The run is not trivial: both groups fire, the post group also between resets.
    assert rec["pre_spikes"].sum() >= 10 and rec["post_spikes"].sum() >= 5
    np.testing.assert_allclose(rec["I_pre"].sum(axis=1) + rec["I_post"].sum(axis=1), 0, atol=1e-11)


def test_spikelets_appear_on_post_when_pre_fires():
    rec = run_seed()
    fired = rec["pre_spikes"].sum(axis=1)
    np.testing.assert_allclose(rec["dV"], 2.5 * fired[:, None] * np.ones((1, 3)))
    # Reconstruct each post step without its jump: the difference is the spikelet, exactly
    # at the steps where pre fires (and the post cell did not fire itself).
    f = np.exp(-DT / 20.0)
    V_before = np.concatenate([np.full((1, 3), -10.0), rec["V_post"][:-1]])
    V_inf = -60.0 + rec["I_post"]
    kick = rec["V_post"] - (V_inf + (V_before - V_inf) * f)
    quiet = rec["post_spikes"] == 0
    np.testing.assert_allclose(kick[quiet], rec["dV"][quiet], atol=1e-9)
    kicked = (fired > 0)[:, None] & quiet
    assert kicked.sum() >= 3 and np.all(kick[kicked] > 4.9)
    # Without spikelets (k = 0) the post group never fires after its first reset.
    assert run_seed(k=0.0)["post_spikes"][1:].sum() == 0 < rec["post_spikes"][1:].sum()


# -- the seed's example as a Network ---------------------------------------------------------


def seed_network(w=0.5, k=5.0, sparse=False, lif=None):
    lif = jsyn.LIF(tau_ref=0.0) if lif is None else lif
    gap = seed_gap(w, k, sparse, pre="A", post="B")
    return jsyn.Network({"A": (lif, 2), "B": (lif, 3)}, gaps={"gj": gap})


def at_potential(net, V0=-10.0, dtype=None):
    state = net.init_state(dtype=dtype)
    for name in state.groups:
        V = state.groups[name].V
        state = eqx.tree_at(lambda s, name=name: s.groups[name].V, state, jnp.full_like(V, V0))
    return state


def _net_record(state, spikes):
    return {
        "V_pre": state.groups["A"].V,
        "V_post": state.groups["B"].V,
        "pre_spikes": spikes["A"],
        "post_spikes": spikes["B"],
    }


def run_seed_network(net, inputs, V0=-10.0):
    state = at_potential(net, V0, inputs.dtype)
    return jsyn.simulate(net, {"A": inputs}, DT, state=state, record=_net_record)


@both
def test_seed_network_matches_numpy_loop_spikelets_one_step_later(sparse):
    """In a Network the gap currents act as in the hand-stepped pair, and the spikelets of
    the pre spikes of step n reach the post group in step n + 1, like a voltage-jump
    projection's."""
    inputs = jnp.full((1000, 2), 30.0)
    _, rec = run_seed_network(seed_network(sparse=sparse), inputs)
    want = np_pair(np.full((2, 3), 0.5), 5.0, np.asarray(inputs), lag=1)
    for name in ("V_pre", "V_post", "pre_spikes", "post_spikes"):
        np.testing.assert_allclose(rec[name], want[name], rtol=1e-10, atol=1e-9, err_msg=name)
    assert want["pre_spikes"].sum() >= 10 and want["post_spikes"][1:].sum() >= 5
    # The lag matters: the same-step loop gives other traces.
    same_step = np_pair(np.full((2, 3), 0.5), 5.0, np.asarray(inputs), lag=0)
    assert not np.allclose(rec["V_post"], same_step["V_post"])


@both
def test_random_network_matches_numpy_loop(sparse):
    rng = np.random.default_rng(7)
    w = random_w(rng, 2, 3)
    lif = jsyn.LIF(tau_ref=0.0)
    gap = jsyn.GapJunction(conn(w, sparse), 3.0, pre="A", post="B")
    net = jsyn.Network({"A": (lif, 2), "B": (lif, 3)}, gaps={"gj": gap})
    inputs = current_steps(n_steps=600, n=2, low=10.0, high=40.0)
    _, rec = run_seed_network(net, inputs)
    want = np_pair(w, 3.0, np.asarray(inputs), lag=1)
    for name in ("V_pre", "V_post", "pre_spikes", "post_spikes"):
        np.testing.assert_allclose(rec[name], want[name], rtol=1e-10, atol=1e-9, err_msg=name)
    assert want["pre_spikes"].sum() >= 5


@both
def test_seed_network_without_spikelets_equals_the_hand_stepped_pair(sparse):
    inputs = current_steps(n_steps=600, n=2, low=10.0, high=40.0)
    _, rec = run_seed_network(seed_network(k=0.0, sparse=sparse), inputs)
    _, alone = jsyn.simulate(seed_pair(k=0.0), inputs, DT, record=_record)
    for name in ("V_pre", "V_post", "pre_spikes", "post_spikes"):
        np.testing.assert_allclose(rec[name], alone[name], rtol=1e-12, atol=1e-10, err_msg=name)
    assert alone["pre_spikes"].sum() >= 5


@both
def test_network_gap_conserves_the_mean_potential_below_threshold(sparse):
    """With equal tau and R in both groups and no spikes, the gap currents cancel in the
    sum of all potentials: it relaxes exactly as if uncoupled, while the groups approach
    each other."""
    w = random_w(np.random.default_rng(8), 2, 3, density=1.0)
    gap = jsyn.GapJunction(conn(w, sparse), 4.0, pre="A", post="B")
    lif = jsyn.LIF(V_th=100.0)
    net = jsyn.Network({"A": (lif, 2), "B": (lif, 3)}, gaps={"gj": gap})
    state = at_potential(net, -60.0)
    state = eqx.tree_at(lambda s: s.groups["A"].V, state, jnp.array([-10.0, -30.0]))

    def record(state, spikes):
        V_pre, V_post = state.groups["A"].V, state.groups["B"].V
        return V_pre, V_post, jnp.sum(jnp.concatenate(gap.currents(V_pre, V_post)))

    _, (V_pre, V_post, net_I) = jsyn.simulate(
        net, None, DT, n_steps=500, state=state, record=record
    )
    total = np.asarray(V_pre).sum(axis=1) + np.asarray(V_post).sum(axis=1)
    f = np.exp(-DT / 20.0)
    np.testing.assert_allclose(total, 5 * -60.0 + 80.0 * f ** np.arange(1, 501), rtol=1e-12)
    np.testing.assert_allclose(net_I, 0.0, atol=1e-11)
    gap_between = np.ptp(np.concatenate([V_pre, V_post], axis=1), axis=1)
    assert gap_between[-1] < 0.05 * gap_between[0]


@both
def test_recurrent_network_equals_the_hand_stepped_group(sparse):
    """One group coupled to itself, spikelets included: the Network gives the traces of
    `_Ring`, which hands the spikelets of step n - 1 to step n."""
    G = symmetric_w(np.random.default_rng(9), 6, density=0.6)
    gap = jsyn.GapJunction(conn(G, sparse), 3.0, pre="E", post="E")
    lif = jsyn.LIF(tau_ref=0.0)
    net = jsyn.Network({"E": (lif, 6)}, gaps={"gj": gap})
    inputs = current_steps(n_steps=800, n=6, seed=3, low=5.0, high=25.0)
    ring = _Ring(lif, gap)
    ring_state = ring.init_state((6,))
    state = eqx.tree_at(lambda s: s.groups["E"].V, net.init_state(), ring_state.cells.V)

    def record(state, spikes):
        return state.groups["E"].V, spikes["E"]

    _, (V, spikes) = jsyn.simulate(net, {"E": inputs}, DT, state=state, record=record)
    _, (V_ring, (_, spikes_ring)) = jsyn.simulate(
        ring, inputs, DT, state=ring_state, record=lambda s, o: (s.cells.V, o)
    )
    np.testing.assert_allclose(V, V_ring, rtol=1e-12, atol=1e-10)
    np.testing.assert_array_equal(spikes, spikes_ring)
    assert spikes.sum() >= 10
    # The spikelets act: without them the group fires differently.
    no_k = eqx.tree_at(lambda n: n.gaps["gj"].k_spikelet, net, jnp.asarray(0.0))
    _, (V0, _) = jsyn.simulate(no_k, {"E": inputs}, DT, state=state, record=record)
    assert not np.allclose(V0, V)


@pytest.mark.slow  # 5-11 s; CI runs the slow lane too
def test_network_jit_equals_eager_and_vmap_equals_loop():
    inputs = jnp.stack([current_steps(n_steps=40, n=2, seed=s, low=20, high=40) for s in range(3)])
    run = jax.jit(lambda net, x: run_seed_network(net, x))
    dense = seed_network()
    with jax.disable_jit():  # slow: 12 steps, with the spikes of the first one
        eager = run_seed_network(dense, inputs[0, :12])
    assert tree_allclose(run(dense, inputs[0, :12]), eager)
    assert eager[1]["pre_spikes"].sum() > 0 and eager[1]["post_spikes"].sum() > 0
    net = seed_network(sparse=True)
    batched = jax.vmap(lambda x: run_seed_network(net, x))(inputs)
    for i in range(3):
        single = run_seed_network(net, inputs[i])
        assert tree_allclose(jax.tree.map(lambda a, i=i: a[i], batched), single)
    # vmap over conductances (parameter sets) equals a loop too.
    ws = jnp.array([0.2, 0.5, 0.9])

    def with_w(w):
        return run_seed_network(seed_network(w=w, sparse=True), inputs[0])[1]

    batched = jax.vmap(with_w)(ws)
    for i in range(3):
        assert tree_allclose(jax.tree.map(lambda a, i=i: a[i], batched), with_w(ws[i]))
    assert not np.allclose(batched["V_post"][0], batched["V_post"][2])


def _network_loss(gap):
    lif = jsyn.LIF(V_th=100.0, tau=15.0)
    net = jsyn.Network({"A": (lif, 2), "B": (lif, 3)}, gaps={"gj": gap})
    x = current_steps(n_steps=120, n=2, low=0.0, high=25.0)
    _, rec = jsyn.simulate(net, {"A": x}, DT, record=lambda s, sp: s.groups["B"].V + 60.0)
    return jnp.sum(jnp.linspace(0.5, 1.5, rec.size).reshape(rec.shape) * rec)


@both
@pytest.mark.slow  # 6 s in the default lane (2 workers, 2 cores)
def test_network_grad_wrt_w_matches_finite_differences(sparse):
    base = conn(random_w(np.random.default_rng(10), 2, 3, density=1.0), sparse)

    @jax.jit
    def loss(w):
        return _network_loss(
            jsyn.GapJunction(eqx.tree_at(lambda c: c.w, base, w), pre="A", post="B")
        )

    w = base.w
    grad = jax.grad(loss)(w)
    for idx in np.ndindex(w.shape):
        fd = central_fd(lambda e, idx=idx: loss(w.at[idx].add(e)), 0.0, 1e-5)
        assert abs(float(grad[idx])) > 1.0
        np.testing.assert_allclose(grad[idx], fd, rtol=1e-6)


@pytest.mark.slow  # 9 s in the default lane (2 workers, 2 cores)
def test_grad_with_softplus_conductance_is_the_chain_rule():
    @eqx.filter_jit
    def loss(w):
        return _network_loss(jsyn.GapJunction(jsyn.all_to_all(2, 3, w), pre="A", post="B"))

    g = jax.grad(loss)(0.4)
    np.testing.assert_allclose(g, central_fd(loss, 0.4, 1e-5), rtol=1e-6)
    softplus = jsyn.SoftplusPositive(0.4)
    raw = eqx.filter_grad(loss)(softplus)
    np.testing.assert_allclose(raw.raw, g * jax.nn.sigmoid(softplus.raw), rtol=1e-10)


@both
def test_grad_of_currents_and_spikelets_matches_finite_differences(sparse):
    rng = np.random.default_rng(11)
    base = conn(random_w(rng, 3, 4, density=1.0), sparse)
    V_pre, V_post = jnp.asarray(rng.uniform(-80, 0, 3)), jnp.asarray(rng.uniform(-80, 0, 4))
    spikes = jnp.array([1.0, 0.0, 2.0])
    weights = jnp.asarray(rng.uniform(0.5, 1.5, 11))

    @jax.jit
    def f(w, k, V_pre):
        gap = jsyn.GapJunction(eqx.tree_at(lambda c: c.w, base, w), k)
        I_pre, I_post = gap.currents(V_pre, V_post)
        return jnp.sum(weights * jnp.concatenate([I_pre, I_post, gap.spikelet(spikes)]))

    w = base.w
    gw, gk, gV = jax.grad(f, argnums=(0, 1, 2))(w, 3.0, V_pre)
    for idx in np.ndindex(w.shape):
        fd = central_fd(lambda e, idx=idx: f(w.at[idx].add(e), 3.0, V_pre), 0.0, 1e-5)
        np.testing.assert_allclose(gw[idx], fd, rtol=1e-7)
    np.testing.assert_allclose(gk, central_fd(lambda k: f(w, k, V_pre), 3.0, 1e-5), rtol=1e-7)
    for i in range(3):
        fd = central_fd(lambda e, i=i: f(w, 3.0, V_pre.at[i].add(e)), 0.0, 1e-5)
        np.testing.assert_allclose(gV[i], fd, rtol=1e-7)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_gap_dtype_is_preserved(dtype):
    gap = jsyn.GapJunction(jnp.asarray(np.full((2, 3), 0.5)), jnp.asarray(5.0))  # float64
    V_pre, V_post = jnp.array([-50.0, -60.0], dtype), jnp.array([-55.0, -65.0, -70.0], dtype)
    square = jsyn.all_to_all(3, 3, 0.5, sparse=True)
    outs = [
        *gap.currents(V_pre, V_post),
        gap.spikelet(jnp.ones(2, dtype)),
        jsyn.GapJunction(square).recurrent_current(V_post),
        jsyn.GapJunction(square, 5.0).recurrent_spikelet(jnp.ones(3, dtype)),
    ]
    assert all(out.dtype == dtype for out in outs)
    final, rec = run_seed_network(seed_network(), jnp.full((50, 2), 30.0, dtype))
    for leaf in jax.tree.leaves((final, rec)):
        assert leaf.dtype == dtype


# -- errors ------------------------------------------------------------------------------------


def test_gap_junction_construction_errors():
    with pytest.raises(ValueError, match=r"GapJunction.w must be >= 0 \(got -0.5\)"):
        jsyn.GapJunction(jsyn.all_to_all(2, 2, -0.5))
    with pytest.raises(TypeError, match=r"jsyn.all_to_all\(n_pre, n_post, w=0.5\)"):
        jsyn.GapJunction(0.5, 5.0)
    with pytest.raises(TypeError, match="or an \\(n_pre, n_post\\) matrix"):
        jsyn.GapJunction(jnp.ones(3))
    with pytest.raises(ValueError, match=r"k_spikelet must be a scalar or one value per post"):
        jsyn.GapJunction(jnp.ones((2, 3)), jnp.ones(2))
    with pytest.raises(ValueError, match="k_spikelet must be finite"):
        jsyn.GapJunction(jnp.ones((2, 3)), jnp.nan)
    with pytest.raises(ValueError, match="square connection"):
        jsyn.GapJunction(jnp.ones((2, 3)), pre="E", post="E")


def test_gap_junction_shape_errors_eager_and_under_jit():
    gap = jsyn.GapJunction(jnp.ones((2, 3)), 1.0)
    good_pre, good_post = jnp.zeros(2), jnp.zeros(3)
    calls = [
        (lambda: gap.currents(jnp.zeros(3), good_post), r"V_pre of shape \(2,\).*got shape \(3,\)"),
        (lambda: gap.currents(good_pre, jnp.zeros(4)), r"V_post of shape \(3,\)"),
        (lambda: gap.currents(jnp.zeros((2, 2)), good_post), r"V_pre of shape \(2,\)"),
        (lambda: gap.spikelet(jnp.ones(3)), r"pre_spikes of shape \(2,\)"),
        (lambda: gap.recurrent_current(jnp.zeros(2)), "needs a square connection"),
    ]
    for call, match in calls:
        with pytest.raises(ValueError, match=match):
            call()
        with pytest.raises(ValueError, match=match):
            jax.jit(call)()


def test_gap_junction_value_errors_under_jit_and_vmap():
    x = jnp.full((20, 2), 30.0)

    def run(w):
        return run_seed_network(seed_network(w=w), x)[1]["V_post"]

    with pytest.raises(Exception, match="GapJunction.w must be >= 0"):
        jax.jit(run)(-0.5).block_until_ready()
    with pytest.raises(Exception, match="GapJunction.w must be >= 0"):
        jax.vmap(run)(jnp.array([0.5, -0.1])).block_until_ready()
    assert np.all(np.isfinite(jax.jit(run)(0.5)))

    def recurrent(G):
        gap = jsyn.GapJunction(G, pre="E", post="E")
        net = jsyn.Network({"E": (jsyn.LIF(), 2)}, gaps={"gj": gap})
        return jsyn.simulate(net, None, DT, n_steps=5)[0].groups["E"].V

    with pytest.raises(Exception, match="needs a symmetric w"):
        jax.jit(recurrent)(jnp.array([[0.0, 1.0], [0.5, 0.0]])).block_until_ready()
    assert np.all(np.isfinite(jax.jit(recurrent)(jnp.array([[0.0, 1.0], [1.0, 0.0]]))))


def test_network_gap_errors():
    lif = jsyn.LIF()
    groups = {"A": (lif, 2), "B": (lif, 3)}
    cases = [
        (seed_gap(pre="A", post="C"), ValueError, r"post='C', which is not a group"),
        (seed_gap(), ValueError, r"pre=None, which is not a group"),
        (seed_gap(pre="B", post="A"), ValueError, r"n_pre=2, but pre group 'B' has 3"),
        (jsyn.all_to_all(2, 3), TypeError, "GapJunction"),
    ]
    for gap, error, match in cases:
        with pytest.raises(error, match=match):
            jsyn.Network(groups, gaps={"gj": gap})
    source = jsyn.SpikeTimes(jnp.array([1.0, 2.0]), jnp.array([0, 1]), n=2)
    with pytest.raises(ValueError, match=r"group 'A' \(SpikeTimes\), which has no membrane"):
        jsyn.Network({"A": source, "B": (lif, 3)}, gaps={"gj": seed_gap(pre="A", post="B")})
    with pytest.raises(TypeError, match="gaps"):
        jsyn.Network(groups, gaps=[seed_gap(pre="A", post="B")])
