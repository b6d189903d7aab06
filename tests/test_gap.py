"""Gap junctions and delayed couplings (MODELS.md, "Gap junctions and couplings"): formulas
against NumPy, sign and conservation, the seed tutorial's example, exact delays, jit, vmap,
grad, dtypes and errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from helpers import DT, central_fd, current_steps, spike_train, tree_allclose

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


def np_coupling(C, D, X, Y=None):
    """out[n, j] = sum_i C[i, j] (X(n - D[i, j], i) - Y[n, j]), with D in steps (maybe
    fractional, k + f: X(n - k - f) = (1 - f) X[n - k] + f X[n - k - 1]), X = 0 before
    step 0."""
    T, (n_pre, n_post) = X.shape[0], C.shape
    out = np.zeros((T, n_post))
    for n in range(T):
        for i in range(n_pre):
            for j in range(n_post):
                k = int(np.floor(D[i, j] + 1e-9))
                f = max(D[i, j] - k, 0.0)
                x = sum(
                    weight * X[n - lag, i]
                    for lag, weight in ((k, 1.0 - f), (k + 1, f))
                    if n - lag >= 0
                )
                y = 0.0 if Y is None else Y[n, j]
                out[n, j] += C[i, j] * (x - y)
    return out


def random_w(rng, n_pre, n_post, density=0.7):
    return rng.uniform(0.1, 1.0, (n_pre, n_post)) * (rng.random((n_pre, n_post)) < density)


# -- GapJunction: formulas, sign, conservation ----------------------------------------------


@pytest.mark.parametrize("n_pre,n_post", [(2, 3), (5, 4), (1, 1), (6, 6)])
def test_currents_match_numpy_for_random_matrices(n_pre, n_post):
    rng = np.random.default_rng(n_pre * 10 + n_post)
    w = random_w(rng, n_pre, n_post)
    V_pre, V_post = rng.uniform(-80, 0, n_pre), rng.uniform(-80, 0, n_post)
    I_pre, I_post = jsyn.GapJunction(jnp.asarray(w)).currents(V_pre, V_post)
    want_pre, want_post = np_gap_currents(w, V_pre, V_post)
    np.testing.assert_allclose(I_pre, want_pre, rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(I_post, want_post, rtol=1e-12, atol=1e-11)


def test_scalar_w_couples_all_to_all():
    rng = np.random.default_rng(1)
    V_pre, V_post = rng.uniform(-80, 0, 2), rng.uniform(-80, 0, 3)
    got = jsyn.GapJunction(0.7).currents(V_pre, V_post)
    want = np_gap_currents(np.full((2, 3), 0.7), V_pre, V_post)
    assert tree_allclose(got, want, rtol=1e-12, atol=1e-11)


def test_sparse_pairs_equal_the_dense_matrix():
    rng = np.random.default_rng(2)
    pre_idx = np.array([0, 0, 1, 3, 3, 2, 0])  # (0, 1) listed twice: the pair adds up
    post_idx = np.array([1, 4, 0, 2, 4, 2, 1])
    w = rng.uniform(0.1, 1.0, pre_idx.size)
    dense = np.zeros((4, 5))
    np.add.at(dense, (pre_idx, post_idx), w)
    sparse = jsyn.GapJunction(jnp.asarray(w), 2.0, pre_idx=pre_idx, post_idx=post_idx)
    V_pre, V_post = rng.uniform(-80, 0, 4), rng.uniform(-80, 0, 5)
    got = sparse.currents(V_pre, V_post)
    assert tree_allclose(got, np_gap_currents(dense, V_pre, V_post), rtol=1e-12, atol=1e-11)
    spikes = np.array([1.0, 0.0, 2.0, 1.0])
    np.testing.assert_allclose(
        sparse.spikelet(spikes, n_post=5), np_spikelet(dense, 2.0, spikes), rtol=1e-12
    )
    # One scalar conductance for every listed pair.
    one = jsyn.GapJunction(0.3, pre_idx=pre_idx, post_idx=post_idx)
    ones = np.zeros((4, 5))
    np.add.at(ones, (pre_idx, post_idx), 0.3)
    got = one.currents(V_pre, V_post)
    assert tree_allclose(got, np_gap_currents(ones, V_pre, V_post), rtol=1e-12, atol=1e-11)


def test_current_flows_into_the_cell_at_lower_potential():
    gap = jsyn.GapJunction(0.5)
    I_pre, I_post = gap.currents(jnp.array([-40.0]), jnp.array([-70.0]))
    # 0.5 nS x 30 mV = 15 pA leaves the depolarised pre cell and enters the post cell.
    assert I_post[0] == 15.0 and I_pre[0] == -15.0
    I_pre, I_post = gap.currents(jnp.array([-70.0]), jnp.array([-40.0]))
    assert I_post[0] == -15.0 and I_pre[0] == 15.0
    I_pre, I_post = gap.currents(jnp.array([-55.0]), jnp.array([-55.0]))
    assert I_pre[0] == 0.0 and I_post[0] == 0.0


@pytest.mark.parametrize("seed", range(4))
def test_total_gap_current_is_zero(seed):
    """Each junction takes out of one cell what it puts into the other: the currents of
    both groups sum to 0 for any w (symmetric in the roles of pre and post or not)."""
    rng = np.random.default_rng(seed)
    w = jnp.asarray(random_w(rng, 4, 7))
    V_pre, V_post = rng.uniform(-80, 0, 4), rng.uniform(-80, 0, 7)
    I_pre, I_post = jsyn.GapJunction(w).currents(V_pre, V_post)
    scale = float(jnp.sum(jnp.abs(I_post)))
    assert scale > 1.0
    assert abs(float(I_pre.sum() + I_post.sum())) < 1e-12 * scale
    np.testing.assert_allclose(I_pre.sum(), -I_post.sum(), rtol=1e-12)


def test_swapping_pre_and_post_transposes_the_coupling():
    rng = np.random.default_rng(3)
    w = random_w(rng, 3, 5)
    V_pre, V_post = rng.uniform(-80, 0, 3), rng.uniform(-80, 0, 5)
    I_pre, I_post = jsyn.GapJunction(jnp.asarray(w)).currents(V_pre, V_post)
    J_pre, J_post = jsyn.GapJunction(jnp.asarray(w.T)).currents(V_post, V_pre)
    np.testing.assert_allclose(I_pre, J_post, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(I_post, J_pre, rtol=1e-12, atol=1e-12)


def test_spikelet_is_k_times_w_per_presynaptic_spike():
    rng = np.random.default_rng(4)
    w = random_w(rng, 3, 4)
    spikes = np.array([1.0, 0.0, 1.0])
    gap = jsyn.GapJunction(jnp.asarray(w), k_spikelet=5.0)
    np.testing.assert_allclose(gap.spikelet(spikes), np_spikelet(w, 5.0, spikes), rtol=1e-12)
    # Seed numbers: w = 0.5 nS, k = 5 mV/nS: 2.5 mV per presynaptic spike and pair.
    np.testing.assert_allclose(
        jsyn.GapJunction(0.5, 5.0).spikelet(jnp.array([1.0, 1.0]), n_post=3), [5.0, 5.0, 5.0]
    )
    assert np.all(jsyn.GapJunction(0.5).spikelet(jnp.ones(2), n_post=3) == 0.0)  # default k = 0
    # k per post cell.
    k = jnp.array([1.0, 2.0, 0.0, 4.0])
    np.testing.assert_allclose(
        jsyn.GapJunction(jnp.asarray(w), k).spikelet(spikes),
        np.asarray(k) * np_spikelet(w, 1.0, spikes),
        rtol=1e-12,
    )


# -- one population coupled to itself -------------------------------------------------------


def test_recurrent_current_with_symmetric_w():
    rng = np.random.default_rng(5)
    G = random_w(rng, 5, 5)
    G = G + G.T  # the junction between i and j: G[i, j] = G[j, i]
    np.fill_diagonal(G, 3.0)  # the diagonal drops out
    V = rng.uniform(-80, 0, 5)
    I = jsyn.GapJunction(jnp.asarray(G)).recurrent_current(V)
    want = np.array([sum(G[i, j] * (V[i] - V[j]) for i in range(5)) for j in range(5)])
    np.testing.assert_allclose(I, want, rtol=1e-12, atol=1e-11)
    assert abs(float(I.sum())) < 1e-12 * float(jnp.abs(I).sum())  # charge is conserved
    # A two-cell population is the seed tutorial's pair: I_1 = w (V_0 - V_1).
    I = jsyn.GapJunction(0.5).recurrent_current(jnp.array([-40.0, -70.0]))
    np.testing.assert_allclose(I, [-15.0, 15.0])


def test_recurrent_spikelets_skip_the_spiking_cell_itself():
    G = jnp.array([[9.0, 1.0, 2.0], [1.0, 9.0, 0.5], [2.0, 0.5, 9.0]])
    spikes = jnp.array([1.0, 0.0, 1.0])
    dV = jsyn.GapJunction(G, 2.0).recurrent_spikelet(spikes)
    np.testing.assert_allclose(dV, 2.0 * np.array([2.0, 1.0 + 0.5, 2.0]))
    dV = jsyn.GapJunction(0.5, 2.0).recurrent_spikelet(spikes)
    np.testing.assert_allclose(dV, [1.0, 2.0, 1.0])
    pairs = dict(pre_idx=[0, 1, 0, 2, 1], post_idx=[1, 0, 2, 0, 1])  # (1, 1) is a self pair
    dV = jsyn.GapJunction(jnp.array([1.0, 1.0, 2.0, 2.0, 7.0]), 2.0, **pairs)
    np.testing.assert_allclose(dV.recurrent_spikelet(spikes), [4.0, 2.0, 4.0])


def test_recurrent_coupling_refuses_asymmetric_w():
    gap = jsyn.GapJunction(jnp.array([[0.0, 1.0], [0.5, 0.0]]))
    with pytest.raises(ValueError, match=r"symmetric w.*w\[0, 1\]=1.0 but w\[1, 0\]=0.5"):
        gap.recurrent_current(jnp.array([-60.0, -50.0]))
    with pytest.raises(ValueError, match="symmetric w"):
        gap.recurrent_spikelet(jnp.array([1.0, 0.0]))
    one_way = jsyn.GapJunction(1.0, pre_idx=[0], post_idx=[1])
    with pytest.raises(ValueError, match="symmetric w"):
        one_way.recurrent_current(jnp.array([-60.0, -50.0]))
    both_ways = jsyn.GapJunction(1.0, pre_idx=[0, 1], post_idx=[1, 0])
    np.testing.assert_allclose(both_ways.recurrent_current(jnp.array([-60.0, -50.0])), [10, -10])


class _RingState(eqx.Module):
    cells: jsyn.LIFState
    jump: jax.Array


class _Ring(eqx.Module):
    """One LIF population coupled to itself: currents from the potentials at the end of the
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
        return _RingState(cells, self.gap.recurrent_spikelet(spikes)), I_gap


def test_recurrent_population_conserves_charge_and_synchronises():
    rng = np.random.default_rng(6)
    G = random_w(rng, 6, 6, density=1.0)
    ring = _Ring(jsyn.LIF(V_th=100.0), jsyn.GapJunction(jnp.asarray((G + G.T) / 2)))
    _, (I, V) = jsyn.simulate(ring, jnp.zeros((400, 6)), DT, record=lambda s, I: (I, s.cells.V))
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
    r"""pre LIF ⇄ GapJunction ⇄ post LIF, in the causal order of MODELS.md: the gap currents
    over step $n$ come from the potentials at the end of step $n-1$; the pre spikes of step
    $n$ reach the post cells as spikelets (voltage jumps) in step $n$. `x` is the external
    current into the pre cells (pA)."""

    pre: jsyn.LIF
    post: jsyn.LIF
    gap: jsyn.GapJunction
    n_post: int = eqx.field(static=True)
    V0: float = eqx.field(static=True, default=-10.0)

    def init_state(self, n, *, dtype=None):
        return _PairState(
            self.pre.init_state(n, dtype=dtype, V0=self.V0),
            self.post.init_state(self.n_post, dtype=dtype, V0=self.V0),
        )

    def step(self, state, x, dt):
        I_pre, I_post = self.gap.currents(state.pre.V, state.post.V)
        pre, pre_spikes = self.pre.step(state.pre, x + I_pre, dt)
        dV = self.gap.spikelet(pre_spikes, self.n_post)
        post, post_spikes = self.post.step(state.post, I_post, dt, jump=dV)
        out = dict(I_pre=I_pre, I_post=I_post, dV=dV, pre_spikes=pre_spikes)
        return _PairState(pre, post), {**out, "post_spikes": post_spikes}


def _record(state, out):
    return {**out, "V_pre": state.pre.V, "V_post": state.post.V}


def seed_pair(w=0.5, k=5.0, lif=None):
    """The seed: LIF groups of 2 and 3 (no refractory period), all to all, w = 0.5 nS,
    k_spikelet = 5 mV/nS, V0 = -10 mV."""
    lif = jsyn.LIF(tau_ref=0.0) if lif is None else lif
    return _GapPair(lif, lif, jsyn.GapJunction(w, k), n_post=3)


def np_pair(w, k, I_ext, V0=-10.0, V_rest=-60.0, V_th=-50.0, V_reset=-60.0, tau=20.0, R=1.0):
    """The same equations, step by step in NumPy."""
    T, n_pre = I_ext.shape
    n_post = w.shape[1]
    V_pre, V_post = np.full(n_pre, V0), np.full(n_post, V0)
    f = np.exp(-DT / tau)
    rec = {name: [] for name in ("V_pre", "V_post", "pre_spikes", "post_spikes", "I_post")}
    for n in range(T):
        I_pre, I_post = np_gap_currents(w, V_pre, V_post)
        V_inf = V_rest + R * (I_ext[n] + I_pre)
        V_pre = V_inf + (V_pre - V_inf) * f
        pre_spikes = (V_pre >= V_th).astype(float)
        V_pre = np.where(pre_spikes > 0, V_reset, V_pre)
        V_inf = V_rest + R * I_post
        V_post = V_inf + (V_post - V_inf) * f + np_spikelet(w, k, pre_spikes)
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


def test_random_gap_matrix_matches_numpy_loop():
    rng = np.random.default_rng(7)
    w = random_w(rng, 2, 3)
    I_ext = np.asarray(current_steps(n_steps=600, n=2, low=10.0, high=40.0))
    pair = _GapPair(jsyn.LIF(), jsyn.LIF(), jsyn.GapJunction(jnp.asarray(w), 3.0), n_post=3)
    _, rec = jsyn.simulate(pair, jnp.asarray(I_ext), DT, record=_record)
    want = np_pair(w, 3.0, I_ext)
    for name in want:
        np.testing.assert_allclose(rec[name], want[name], rtol=1e-10, atol=1e-9, err_msg=name)


def test_seed_example_conserves_gap_charge():
    rec = run_seed()
    I_total = rec["I_pre"].sum(axis=1) + rec["I_post"].sum(axis=1)
    assert np.abs(rec["I_post"]).max() > 5.0
    np.testing.assert_allclose(I_total, 0.0, atol=1e-11)


def test_gap_coupling_conserves_the_mean_potential_below_threshold():
    """With equal tau and R in both groups and no spikes, the gap currents cancel in the
    sum of all potentials: the total relaxes exactly as if uncoupled, while the groups
    approach each other."""
    lif = jsyn.LIF(V_th=100.0)
    rng = np.random.default_rng(8)
    pair = _GapPair(lif, lif, jsyn.GapJunction(jnp.asarray(random_w(rng, 2, 3))), n_post=3)
    _, rec = jsyn.simulate(pair, jnp.zeros((500, 2)), DT, record=_record)
    total = np.asarray(rec["V_pre"]).sum(axis=1) + np.asarray(rec["V_post"]).sum(axis=1)
    f = np.exp(-DT / 20.0)
    want = 5 * -60.0 + 5 * (-10.0 + 60.0) * f ** np.arange(1, 501)  # both groups start at -10
    np.testing.assert_allclose(total, want, rtol=1e-12)
    _, uncoupled = jsyn.simulate(
        eqx.tree_at(lambda p: p.gap, pair, jsyn.GapJunction(0.0)),
        jnp.zeros((500, 2)),
        DT,
        record=_record,
    )
    np.testing.assert_allclose(uncoupled["V_pre"], uncoupled["V_post"][:, :2])


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


# -- GapJunction under transformations ------------------------------------------------------


def test_seed_jit_equals_eager_and_vmap_equals_loop():
    inputs = jnp.stack([current_steps(n_steps=80, n=2, seed=s, low=20, high=40) for s in range(3)])
    pair = seed_pair()
    run = jax.jit(lambda p, x: jsyn.simulate(p, x, DT, record=_record))
    with jax.disable_jit():
        eager = jsyn.simulate(pair, inputs[0], DT, record=_record)
    assert tree_allclose(run(pair, inputs[0]), eager)
    batched = jax.vmap(lambda x: jsyn.simulate(pair, x, DT, record=_record))(inputs)
    for i in range(3):
        single = jsyn.simulate(pair, inputs[i], DT, record=_record)
        assert tree_allclose(jax.tree.map(lambda a, i=i: a[i], batched), single)


def test_vmap_over_conductances_equals_loop():
    rng = np.random.default_rng(9)
    ws = jnp.asarray(np.stack([random_w(rng, 3, 4) for _ in range(5)]))
    V_pre, V_post = jnp.asarray(rng.uniform(-80, 0, 3)), jnp.asarray(rng.uniform(-80, 0, 4))
    spikes = jnp.array([1.0, 0.0, 1.0])

    def both(w):
        gap = jsyn.GapJunction(w, 2.0)
        return gap.currents(V_pre, V_post), gap.spikelet(spikes)

    batched = jax.vmap(both)(ws)
    for i in range(5):
        assert tree_allclose(jax.tree.map(lambda a, i=i: a[i], batched), both(ws[i]))


def _post_V(state, out):
    return state.post.V + 60.0  # of order 10 mV, so finite differences keep their digits


def _subthreshold_pair_loss(w, k=0.0):
    lif = jsyn.LIF(V_th=100.0, tau=15.0)
    pair = _GapPair(lif, lif, jsyn.GapJunction(w, k), n_post=3, V0=-60.0)
    x = current_steps(n_steps=200, n=2, low=0.0, high=25.0)
    _, rec = jsyn.simulate(pair, x, DT, record=_post_V)
    return jnp.sum(jnp.linspace(0.5, 1.5, rec.size).reshape(rec.shape) * rec)


def test_grad_wrt_w_matches_finite_differences():
    w = jnp.asarray(random_w(np.random.default_rng(10), 2, 3, density=1.0))
    grad = jax.grad(_subthreshold_pair_loss)(w)
    for idx in np.ndindex(w.shape):
        fd = central_fd(lambda e, idx=idx: _subthreshold_pair_loss(w.at[idx].add(e)), 0.0, 1e-5)
        assert abs(float(grad[idx])) > 1.0
        np.testing.assert_allclose(grad[idx], fd, rtol=1e-6)
    # A scalar conductance, and one held as SoftplusPositive (the fitting path).
    g = jax.grad(_subthreshold_pair_loss)(0.4)
    np.testing.assert_allclose(g, central_fd(_subthreshold_pair_loss, 0.4, 1e-5), rtol=1e-6)
    softplus = jsyn.SoftplusPositive(0.4)
    raw = eqx.filter_grad(_subthreshold_pair_loss)(softplus)
    np.testing.assert_allclose(raw.raw, g * jax.nn.sigmoid(softplus.raw), rtol=1e-10)


def test_grad_of_currents_and_spikelets_matches_finite_differences():
    rng = np.random.default_rng(11)
    w = jnp.asarray(random_w(rng, 3, 4, density=1.0))
    V_pre, V_post = jnp.asarray(rng.uniform(-80, 0, 3)), jnp.asarray(rng.uniform(-80, 0, 4))
    spikes = jnp.array([1.0, 0.0, 2.0])
    weights = jnp.asarray(rng.uniform(0.5, 1.5, 11))

    def f(w, k, V_pre):
        gap = jsyn.GapJunction(w, k)
        I_pre, I_post = gap.currents(V_pre, V_post)
        return jnp.sum(weights * jnp.concatenate([I_pre, I_post, gap.spikelet(spikes)]))

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
    outs = [
        *gap.currents(V_pre, V_post),
        gap.spikelet(jnp.ones(2, dtype)),
        jsyn.GapJunction(0.5).recurrent_current(V_post),
        jsyn.GapJunction(0.5, 5.0).recurrent_spikelet(jnp.ones(3, dtype)),
    ]
    assert all(out.dtype == dtype for out in outs)
    final, rec = jsyn.simulate(seed_pair(), jnp.full((50, 2), 30.0, dtype), DT, record=_record)
    for leaf in jax.tree.leaves((final, rec)):
        assert leaf.dtype == dtype


# -- GapJunction errors ------------------------------------------------------------------


def test_gap_junction_construction_errors():
    with pytest.raises(ValueError, match=r"GapJunction.w must be >= 0 \(got -0.5\)"):
        jsyn.GapJunction(-0.5)
    with pytest.raises(ValueError, match="GapJunction.w must be a scalar or an"):
        jsyn.GapJunction(jnp.ones(3))
    with pytest.raises(ValueError, match="both pre_idx and post_idx"):
        jsyn.GapJunction(1.0, pre_idx=[0, 1])
    with pytest.raises(ValueError, match="one post index per pre index"):
        jsyn.GapJunction(1.0, pre_idx=[0, 1], post_idx=[0])
    with pytest.raises(ValueError, match=r"one value\s+per pair, shape \(2,\)"):
        jsyn.GapJunction(jnp.ones(3), pre_idx=[0, 1], post_idx=[1, 0])
    with pytest.raises(ValueError, match="pre_idx must be >= 0"):
        jsyn.GapJunction(1.0, pre_idx=[-1], post_idx=[0])
    with pytest.raises(TypeError, match="integer neuron indices"):
        jsyn.GapJunction(1.0, pre_idx=[0.5], post_idx=[0])
    with pytest.raises(ValueError, match="k_spikelet must be finite"):
        jsyn.GapJunction(1.0, jnp.nan)


def test_gap_junction_shape_errors_eager_and_under_jit():
    gap = jsyn.GapJunction(jnp.ones((2, 3)), 1.0)
    good_pre, good_post = jnp.zeros(2), jnp.zeros(3)
    calls = [
        (lambda: gap.currents(jnp.zeros(3), good_post), r"needs n_pre=2 \(got 3\)"),
        (lambda: gap.currents(good_pre, jnp.zeros(4)), r"needs n_post=3 \(got 4\)"),
        (lambda: gap.currents(jnp.zeros((2, 2)), good_post), r"V_pre of shape \(n,\)"),
        (lambda: gap.spikelet(jnp.ones(2), n_post=4), r"needs n_post=3 \(got 4\)"),
        (lambda: jsyn.GapJunction(1.0).spikelet(jnp.ones(2)), "needs n_post"),
        (lambda: gap.recurrent_current(jnp.zeros(2)), r"needs n_post=3 \(got 2\)"),
        (
            lambda: jsyn.GapJunction(1.0, pre_idx=[4], post_idx=[0]).currents(good_pre, good_post),
            r"reach cell 4, but n_pre=2",
        ),
    ]
    for call, match in calls:
        with pytest.raises(ValueError, match=match):
            call()
        with pytest.raises(ValueError, match=match):
            jax.jit(call)()


def test_gap_junction_value_errors_under_jit_and_vmap():
    x = jnp.full((20, 2), 30.0)

    def run(w):
        return jsyn.simulate(seed_pair(w=w), x, DT, record=_record)[1]["V_post"]

    with pytest.raises(Exception, match="GapJunction.w must be >= 0"):
        jax.jit(run)(-0.5).block_until_ready()
    with pytest.raises(Exception, match="GapJunction.w must be >= 0"):
        jax.vmap(run)(jnp.array([0.5, -0.1])).block_until_ready()
    assert np.all(np.isfinite(jax.jit(run)(0.5)))


# -- delayed couplings -----------------------------------------------------------------------

DELAYS = np.array([[0, 2, 5], [1, 0, 3], [4, 1, 0], [7, 3, 2]])
"""Heterogeneous per-connection delays (steps) of a 4 -> 3 coupling; `DELAYS * DT` in ms."""
FRACTIONAL = np.array([[0.0, 2.3, 4.71], [1.5, 0.25, 3.0], [3.9, 0.6, 0.05], [6.2, 2.99, 1.4]])
"""Delays off the grid (steps), interpolated between the neighbouring steps."""


def random_conn(seed=12, shape=(4, 3)):
    return np.random.default_rng(seed).normal(size=shape)


def coupled(kind, C, steps=None, **kw):
    """A coupling with delays given in steps, built in ms."""
    if steps is None:
        return kind(jnp.asarray(C), **kw)
    return kind(jnp.asarray(C), steps * DT, dt=DT, **kw)


@pytest.mark.parametrize(
    "steps", [None, 0, 3, DELAYS, np.array([[1], [0], [4], [2]]), FRACTIONAL, 2.5]
)
def test_additive_coupling_matches_numpy(steps):
    C = random_conn()
    X = np.asarray(current_steps(n_steps=60, n=4)) + np.asarray(spike_train(n_steps=60, n=4))
    _, out = jsyn.simulate(coupled(jsyn.AdditiveCoupling, C, steps), jnp.asarray(X), DT)
    D = np.broadcast_to(0 if steps is None else steps, C.shape)
    np.testing.assert_allclose(out, np_coupling(C, D, X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("steps", [None, 2, DELAYS, FRACTIONAL])
def test_diffusive_coupling_matches_numpy(steps):
    C = random_conn(13)
    X = np.asarray(current_steps(n_steps=60, n=4, seed=1))
    Y = np.asarray(current_steps(n_steps=60, n=3, seed=2))
    coupling = coupled(jsyn.DiffusiveCoupling, C, steps)
    _, out = jsyn.simulate(coupling, (jnp.asarray(X), jnp.asarray(Y)), DT)
    D = np.broadcast_to(0 if steps is None else steps, C.shape)
    np.testing.assert_allclose(out, np_coupling(C, D, X, Y), rtol=1e-12, atol=1e-11)


def test_diffusive_coupling_of_nodes_to_themselves():
    """One array x means y = x: out_j = sum_i c_ij (x_i(t - d_ij) - x_j(t))."""
    C = random_conn(14, (3, 3))
    D = np.array([[0, 1, 2], [3, 0, 1.5], [2, 2, 0]])
    X = np.asarray(current_steps(n_steps=40, n=3, seed=3))
    _, out = jsyn.simulate(coupled(jsyn.DiffusiveCoupling, C, D), jnp.asarray(X), DT)
    np.testing.assert_allclose(out, np_coupling(C, D, X, X), rtol=1e-12, atol=1e-11)
    # Without delays, equal activities do not diffuse.
    _, out = jsyn.simulate(jsyn.DiffusiveCoupling(jnp.asarray(C)), jnp.ones((5, 3)), DT)
    np.testing.assert_allclose(out, 0.0, atol=1e-14)


@pytest.mark.parametrize("coupling", [jsyn.AdditiveCoupling, jsyn.DiffusiveCoupling])
def test_impulse_arrives_exactly_after_each_connection_delay(coupling):
    C = jnp.asarray(random_conn(15) ** 2 + 0.1)
    n_steps, s = 20, 6
    for i in range(4):
        x = jnp.zeros((n_steps, 4)).at[s, i].set(1.0)
        inputs = (x, jnp.zeros((n_steps, 3))) if coupling is jsyn.DiffusiveCoupling else x
        _, out = jsyn.simulate(coupled(coupling, C, DELAYS), inputs, DT)
        for j in range(3):
            want = np.zeros(n_steps)
            want[s + DELAYS[i, j]] = C[i, j]
            np.testing.assert_array_equal(out[:, j], want, err_msg=f"connection {i} -> {j}")


def test_fractional_delay_splits_an_impulse_and_conserves_it():
    C = jnp.ones((1, 2))
    x = jnp.zeros((14, 1)).at[2, 0].set(1.0)
    _, out = jsyn.simulate(jsyn.AdditiveCoupling(C, jnp.array([0.33, 0.7]), dt=DT), x, DT)
    want = np.zeros((14, 2))
    want[5, 0], want[6, 0] = 0.7, 0.3  # 3.3 steps: 1 - 0.3 after 3 steps, 0.3 after 4
    want[9, 1] = 1.0  # 7 steps
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-15)


def test_history_before_the_first_step_is_zero_and_carries_over_runs():
    C = jnp.ones((1, 1))
    x = jnp.arange(1.0, 11.0)[:, None]
    coupling = jsyn.AdditiveCoupling(C, delay=0.3, dt=DT)
    final, out = jsyn.simulate(coupling, x, DT)
    np.testing.assert_array_equal(out[:, 0], [0, 0, 0, 1, 2, 3, 4, 5, 6, 7])
    _, more = jsyn.simulate(coupling, jnp.zeros((4, 1)), DT, state=final)
    np.testing.assert_array_equal(more[:, 0], [8, 9, 10, 0])


def test_delays_longer_than_the_run_give_nothing():
    coupling = jsyn.AdditiveCoupling(jnp.ones((2, 2)), 5.0, dt=DT)
    _, out = jsyn.simulate(coupling, jnp.ones((30, 2)), DT)
    assert np.all(out == 0.0)


@pytest.mark.parametrize("coupling", [jsyn.AdditiveCoupling, jsyn.DiffusiveCoupling])
def test_grad_wrt_delays_matches_finite_differences(coupling):
    C = jnp.asarray(random_conn(19))
    x = current_steps(n_steps=40, n=4, seed=6) + spike_train(n_steps=40, n=4, seed=6)
    y = current_steps(n_steps=40, n=3, seed=7)
    inputs = (x, y) if coupling is jsyn.DiffusiveCoupling else x
    delay = jnp.asarray((FRACTIONAL + 0.013) * DT)  # off the grid: smooth in each delay

    def loss(d):
        _, out = jsyn.simulate(coupling(C, d, dt=DT, max_delay=1.0), inputs, DT)
        return jnp.sum(jnp.linspace(0.5, 1.5, out.size).reshape(out.shape) * out**2)

    grad = jax.grad(loss)(delay)
    assert np.any(np.abs(np.asarray(grad)) > 1e-2)
    for idx in np.ndindex(delay.shape):
        fd = central_fd(lambda e, idx=idx: loss(delay.at[idx].add(e)), 0.0, 1e-7)
        np.testing.assert_allclose(grad[idx], fd, rtol=1e-5, atol=1e-6, err_msg=str(idx))


def test_coupling_jit_equals_eager_and_vmap_equals_loop():
    coupling = coupled(jsyn.DiffusiveCoupling, random_conn(16), FRACTIONAL)
    xs = jnp.stack([spike_train(n_steps=30, n=4, seed=s, rate=0.2) for s in range(3)])
    ys = jnp.stack([current_steps(n_steps=30, n=3, seed=s) for s in range(3)])
    run = jax.jit(lambda c, x, y: jsyn.simulate(c, (x, y), DT))
    with jax.disable_jit():
        eager = jsyn.simulate(coupling, (xs[0], ys[0]), DT)
    assert tree_allclose(run(coupling, xs[0], ys[0]), eager)
    batched = jax.vmap(lambda x, y: jsyn.simulate(coupling, (x, y), DT))(xs, ys)
    for i in range(3):
        single = jsyn.simulate(coupling, (xs[i], ys[i]), DT)
        assert tree_allclose(jax.tree.map(lambda a, i=i: a[i], batched), single)
    # vmap over coupling matrices and delays (parameter sets) equals a loop too.
    mats = jnp.stack([jnp.asarray(random_conn(s)) for s in range(3)])
    delays = jnp.stack([jnp.asarray(FRACTIONAL * DT * (1.0 + 0.1 * s)) for s in range(3)])

    def with_params(C, d):
        coupling = jsyn.AdditiveCoupling(C, d, dt=DT, max_delay=1.0)
        return jsyn.simulate(coupling, xs[0], DT)[1]

    batched = jax.vmap(with_params)(mats, delays)
    for i in range(3):
        np.testing.assert_allclose(batched[i], with_params(mats[i], delays[i]), rtol=1e-12)


@pytest.mark.parametrize("coupling", [jsyn.AdditiveCoupling, jsyn.DiffusiveCoupling])
def test_grad_wrt_conn_mat_matches_finite_differences(coupling):
    C = jnp.asarray(random_conn(17))
    x = current_steps(n_steps=40, n=4, seed=4)
    y = current_steps(n_steps=40, n=3, seed=5)
    inputs = (x, y) if coupling is jsyn.DiffusiveCoupling else x

    def loss(C):
        _, out = jsyn.simulate(coupled(coupling, C, DELAYS), inputs, DT)
        return jnp.sum(jnp.linspace(0.5, 1.5, out.size).reshape(out.shape) * out**2)

    grad = jax.grad(loss)(C)
    for idx in np.ndindex(C.shape):
        fd = central_fd(lambda e, idx=idx: loss(C.at[idx].add(e)), 0.0, 1e-5)
        assert abs(float(grad[idx])) > 1e-3
        np.testing.assert_allclose(grad[idx], fd, rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_coupling_dtype_is_preserved(dtype):
    coupling = coupled(jsyn.DiffusiveCoupling, random_conn(18), FRACTIONAL)  # float64 matrix
    x, y = jnp.ones((10, 4), dtype), jnp.ones((10, 3), dtype)
    final, out = jsyn.simulate(coupling, (x, y), DT)
    assert final.buffer.dtype == dtype and out.dtype == dtype
    final, out = jsyn.simulate(coupled(jsyn.AdditiveCoupling, random_conn(18), 2), x, DT)
    assert final.buffer.dtype == dtype and out.dtype == dtype
    final, out = jsyn.simulate(jsyn.AdditiveCoupling(jnp.asarray(random_conn(18))), x, DT)
    assert final is None and out.dtype == dtype


def test_coupling_construction_errors():
    C = jnp.ones((4, 3))
    cases = [
        (lambda: jsyn.AdditiveCoupling(jnp.ones(3)), ValueError, r"conn_mat must be an \(n_pre"),
        (
            lambda: jsyn.AdditiveCoupling(C, -0.1, dt=DT),
            ValueError,
            r"AdditiveCoupling.delay must be finite and >= 0 ms \(got -0.1\)",
        ),
        (
            lambda: jsyn.DiffusiveCoupling(C, jnp.asarray(DELAYS - 1.0), dt=DT),
            ValueError,
            r"DiffusiveCoupling.delay must be finite and >= 0 ms \(got -1.0 at index \(0, 0\)",
        ),
        (lambda: jsyn.AdditiveCoupling(C, np.nan, dt=DT), ValueError, "finite and >= 0 ms"),
        (
            lambda: jsyn.AdditiveCoupling(C, 0.5, dt=DT, max_delay=0.2),
            ValueError,
            r"delay must be <= max_delay=0.2 ms.*got 0.5",
        ),
        (
            lambda: jsyn.AdditiveCoupling(C, np.zeros((3, 4)), dt=DT),
            ValueError,
            r"broadcastable to.*\(4, 3\)",
        ),
        (
            lambda: jsyn.AdditiveCoupling(C.at[1, 2].set(jnp.inf)),
            ValueError,
            "conn_mat must be finite",
        ),
        # The former spellings, delays counted in integer steps, are refused by name.
        (lambda: jsyn.AdditiveCoupling(C, 2), ValueError, r"delay is in ms and needs dt.*k \* dt"),
        (lambda: jsyn.DiffusiveCoupling(C, delays=2), TypeError, "counted integer steps"),
    ]
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()
    # Two steps of 0.1 ms, written as integer steps times dt, are exactly 2 steps.
    assert jsyn.AdditiveCoupling(C, 2 * DT, dt=DT).line.n_slots == 4


def test_coupling_errors_under_jit():
    x, y = jnp.ones((10, 4)), jnp.ones((10, 3))
    C = jnp.ones((4, 3))
    with pytest.raises(TypeError, match="needs max_delay"):
        jax.jit(lambda d: jsyn.AdditiveCoupling(C, d, dt=DT))(0.2)
    run = jax.jit(lambda C, x: jsyn.simulate(coupled(jsyn.AdditiveCoupling, C, DELAYS), x, DT)[1])
    with pytest.raises(Exception, match="AdditiveCoupling.conn_mat must be finite"):
        run(C.at[0, 0].set(jnp.nan), x).block_until_ready()
    with pytest.raises(ValueError, match=r"takes x of shape \(4,\)"):
        run(C, y)
    with pytest.raises(Exception, match=r"AdditiveCoupling.delay must be <= max_delay=0.5"):
        jax.jit(
            lambda d: jsyn.simulate(jsyn.AdditiveCoupling(C, d, dt=DT, max_delay=0.5), x, DT)[1]
        )(0.7).block_until_ready()
    with pytest.raises(Exception, match=r"AdditiveCoupling was built for dt=0.1 ms"):
        jax.jit(lambda h: jsyn.simulate(jsyn.AdditiveCoupling(C, 0.3, dt=DT), x, h)[1])(
            0.05
        ).block_until_ready()
    additive = coupled(jsyn.AdditiveCoupling, C, DELAYS)
    with pytest.raises(ValueError, match=r"x of shape \(4,\).*got shape \(3,\)"):
        jax.jit(lambda x: additive.step(additive.init_state(), x, DT))(y[0])
    diffusive = jsyn.DiffusiveCoupling(C)
    with pytest.raises(ValueError, match=r"y of shape \(3,\).*got shape \(4,\)"):
        jax.jit(lambda x: jsyn.simulate(diffusive, (x, x), DT))(x)
    with pytest.raises(ValueError, match="needs a square conn_mat"):
        jax.jit(lambda x: jsyn.simulate(diffusive, x, DT))(x)
    with pytest.raises(ValueError, match=r"takes x of shape \(4,\)"):
        diffusive.init_state(3)
    with pytest.raises(ValueError, match=r"takes x of shape \(4,\)"):
        jsyn.simulate(diffusive, (y, y), DT)
