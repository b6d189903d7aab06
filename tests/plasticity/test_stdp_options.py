"""STDP's options (nearest-neighbour pairings, clipping at each event, inhibitory bounds)
against an event-by-event NumPy reference written on spike histories (no traces), in the
manner of NEST's own test of its `stdp_nn_*` synapses, on its spike sequences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn

DT = 0.1
# NEST's test set: lambda 0.01, alpha 0.85, tau_plus 16.8, tau_minus 33.7, Wmax 1, w0 0.5
NEST = dict(A_plus=0.01, A_minus=0.0085, tau_pre=16.8, tau_post=33.7, w_min=0.0, w_max=1.0)
# NEST's hand-made sequence, which has every order of pre and post (ms)
PRE_TIMES = np.array([1, 5, 6, 7, 9, 11, 12, 13], dtype=float)
POST_TIMES = np.array([2, 3, 4, 8, 9, 10, 12], dtype=float)


def trains(seed, duration=1000.0, rate=20.0, dendritic_delay=DT):
    """Poisson pre and post steps (20 Hz, as NEST's test), then NEST's hand-made sequence;
    the post spikes shifted by the dendritic delay (NEST's test: one step). Returns the
    steps of the pre events and of the post spikes as the synapse sees them."""
    rng = np.random.default_rng(seed)
    n = int(duration / DT)
    pre = np.flatnonzero(rng.random(n) < rate * DT / 1000.0)
    post = np.flatnonzero(rng.random(n) < rate * DT / 1000.0)
    pre = np.concatenate([pre, n + np.rint(PRE_TIMES / DT).astype(int)])
    post = np.concatenate([post, n + np.rint(POST_TIMES / DT).astype(int)])
    return pre, post + int(round(dendritic_delay / DT)), n + 200


def reference(pre, post, n_steps, pairing, clip_each_event, p=NEST, w=0.5):
    """The weight after the spikes, pair by pair from the spike histories. Within a step
    the pre event comes first (so a post spike pairs with a pre event of its own step at
    lag 0)."""
    pre_set, post_set = set(pre.tolist()), set(post.tolist())
    seen_pre, seen_post = [], []  # (step, order) of the spikes so far
    order = 0

    def clip(w):
        return min(max(w, p["w_min"]), p["w_max"])

    for t in range(n_steps):
        if t in pre_set:
            if pairing == "all":
                partners = [s for s, _ in seen_post]
            elif pairing in ("nn_symm", "nn_pre_centered"):
                partners = [seen_post[-1][0]] if seen_post else []
            else:  # nn_restr: only if no pre event came since the last post spike
                fresh = seen_post and (not seen_pre or seen_post[-1][1] > seen_pre[-1][1])
                partners = [seen_post[-1][0]] if fresh else []
            for s in partners:
                w -= p["A_minus"] * np.exp(-(t - s) * DT / p["tau_post"])
            if clip_each_event:
                w = clip(w)
            seen_pre.append((t, order))
            order += 1
        if t in post_set:
            if pairing == "all":
                partners = [s for s, _ in seen_pre]
            elif pairing == "nn_symm":
                partners = [seen_pre[-1][0]] if seen_pre else []
            elif pairing == "nn_pre_centered":  # every pre event since the last post spike
                last = seen_post[-1][1] if seen_post else -1
                partners = [s for s, o in seen_pre if o > last]
            else:
                fresh = seen_pre and (not seen_post or seen_pre[-1][1] > seen_post[-1][1])
                partners = [seen_pre[-1][0]] if fresh else []
            for s in partners:
                w += p["A_plus"] * np.exp(-(t - s) * DT / p["tau_pre"])
            seen_post.append((t, order))
            order += 1
        w = clip(w)
    return w


def run_rule(rule, pre, post, n_steps, w=0.5):
    """The rule's own step, one synapse, over the steps."""
    x = np.zeros((n_steps, 2, 1))
    x[pre, 0, 0] = 1.0
    x[post, 1, 0] = 1.0

    @jax.jit
    def run(x):
        def step(carry, x):
            return rule.step(*carry, x[0], x[1], DT), None

        (_, w_end), _ = jax.lax.scan(step, (rule.init_state((1,)), jnp.full(1, w)), x)
        return w_end[0]

    return float(run(jnp.asarray(x)))


@pytest.mark.parametrize("pairing", ["all", "nn_symm", "nn_pre_centered", "nn_restr"])
@pytest.mark.parametrize("clip_each_event", [True, False])
def test_pairings_equal_spike_history_reference(pairing, clip_each_event):
    pre, post, n = trains(seed=0)
    rule = jsyn.STDP(**NEST, pairing=pairing, clip_each_event=clip_each_event)
    expected = reference(pre, post, n, pairing, clip_each_event)
    np.testing.assert_allclose(run_rule(rule, pre, post, n), expected, rtol=1e-12)


def test_pairings_differ_and_clipping_each_event_matters():
    # the modes are not the same rule on these trains; clipping per event differs from once
    # per step where a step holds both sides' events and the first crosses a bound
    pre, post, n = trains(seed=0)
    ends = {p: reference(pre, post, n, p, True) for p in ("all", "nn_symm", "nn_restr")}
    assert len({round(v, 9) for v in ends.values()}) == 3
    big = dict(NEST, A_plus=0.1, A_minus=0.6)
    pre, post = np.array([10, 20, 30]), np.array([15, 30])  # step 30: pre then post
    each = jsyn.STDP(**big, clip_each_event=True)
    once = jsyn.STDP(**big, clip_each_event=False)
    got = [run_rule(r, pre, post, 40, w=0.1) for r in (each, once)]
    np.testing.assert_allclose(got[0], reference(pre, post, 40, "all", True, big, 0.1))
    np.testing.assert_allclose(got[1], reference(pre, post, 40, "all", False, big, 0.1))
    assert abs(got[0] - got[1]) > 0.01


def test_traces_per_neuron_only_for_own_side_pairings():
    assert jsyn.STDP(pairing="nn_symm").per_neuron
    assert not jsyn.STDP(pairing="nn_pre_centered").per_neuron
    assert not jsyn.STDP(pairing="nn_restr").per_neuron


def test_unknown_pairing_is_refused():
    with pytest.raises(ValueError, match="nn_restr"):
        jsyn.STDP(pairing="nearest")
    with pytest.raises(ValueError, match="nn_symm"):
        jsyn.TripletSTDP(pairing="nn_restr")


@pytest.mark.parametrize("multiplicative", [False, True])
def test_inhibitory_rule_mirrors_the_excitatory_one(multiplicative):
    # on negative weights with bounds [-1, 0] the rule acts on |w|: the mirror image of the
    # excitatory rule on -w with bounds [0, 1]
    pre, post, n = trains(seed=1, duration=300.0)
    kw = dict(A_plus=0.05, A_minus=0.04, multiplicative=multiplicative)
    exc = jsyn.STDP(**kw)
    inh = jsyn.STDP(**kw, w_min=-1.0, w_max=0.0, inhibitory=True)
    w_exc, w_inh = run_rule(exc, pre, post, n, w=0.5), run_rule(inh, pre, post, n, w=-0.5)
    np.testing.assert_allclose(w_inh, -w_exc, rtol=1e-12)
    assert abs(w_exc - 0.5) > 0.01


def test_inhibitory_rule_needs_nonpositive_bounds():
    with pytest.raises(ValueError, match="w_max <= 0"):
        jsyn.STDP(inhibitory=True)
