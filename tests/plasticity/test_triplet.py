"""Triplet STDP: the pairing-frequency dependence of Sjöström et al. 2001 as reproduced by
Pfister & Gerstner 2006 (Fig. 5), and the totals against an event-by-event computation."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from helpers import central_fd

DT = 5.0  # ms: every spike time below is on this grid, where the rule is exact
FREQS = (0.1, 10.0, 20.0, 40.0, 50.0)  # Hz
LAGS = (10.0, -10.0)  # ms, t_post - t_pre
N_PAIRS = 60
T_START = 100.0
W0, W_MAX = 1.0, 100.0  # far from the bounds, so nothing is clipped


def protocol(freq, lag):
    pre = T_START + np.arange(N_PAIRS) * 1000.0 / freq
    return pre, pre + lag


def reference(rule, pre, post, w):
    """The rule event by event in continuous time: traces decay between events, a pre and
    a post event at the same time count pre first."""
    events = sorted([(t, 0) for t in pre] + [(t, 1) for t in post])
    tau = {k: float(getattr(rule, k)) for k in ("tau_plus", "tau_x", "tau_minus", "tau_y")}
    A = {k: float(getattr(rule, k)) for k in ("A2_plus", "A3_plus", "A2_minus", "A3_minus")}
    r1 = r2 = o1 = o2 = 0.0
    last = events[0][0]
    for t, kind in events:
        gap = t - last
        r1 *= math.exp(-gap / tau["tau_plus"])
        r2 *= math.exp(-gap / tau["tau_x"])
        o1 *= math.exp(-gap / tau["tau_minus"])
        o2 *= math.exp(-gap / tau["tau_y"])
        last = t
        if kind == 0:
            w -= o1 * (A["A2_minus"] + A["A3_minus"] * r2)
            r1, r2 = r1 + 1, r2 + 1
        else:
            w += r1 * (A["A2_plus"] + A["A3_plus"] * o2)
            o1, o2 = o1 + 1, o2 + 1
    return w


@pytest.fixture(scope="module")
def frequency_curve():
    """Weight change of each (freq, lag) protocol, each on its own synapse of one run."""
    rule = jsyn.TripletSTDP(w_max=W_MAX)
    cases = [(f, lag) for f in FREQS for lag in LAGS]
    pre_t, pre_i, post_t, post_i = [], [], [], []
    for i, (f, lag) in enumerate(cases):
        pre, post = protocol(f, lag)
        pre_t += list(pre)
        post_t += list(post)
        pre_i += [i] * N_PAIRS
        post_i += [i] * N_PAIRS
    n = len(cases)
    end = max(max(pre_t), max(post_t)) + 2 * DT
    net = jsyn.Network(
        {
            "pre": jsyn.SpikeTimes(pre_t, pre_i, n=n),
            "post": jsyn.SpikeTimes(post_t, post_i, n=n),
        },
        {
            "p": jsyn.Projection(
                jsyn.Sparse(np.arange(n), np.arange(n), n, n, w=W0),
                jsyn.Expon(),
                jsyn.CUBA(),
                pre="pre",
                post="post",
                plasticity=rule,
            )
        },
    )
    final, _ = jsyn.simulate(net, None, DT, n_steps=int(end / DT), record=lambda s, o: ())
    dw = np.asarray(final.projections["p"].w) - W0
    return rule, cases, dict(zip(cases, dw))


@pytest.mark.slow  # 13 s in the default lane (2 workers, 2 cores, load 3-4)
def test_low_frequency_depresses_post_pre_and_barely_changes_pre_post(frequency_curve):
    _, _, dw = frequency_curve
    assert dw[(0.1, -10.0)] < -0.1  # about 60 * A2_minus * exp(-10/33.7)
    assert abs(dw[(0.1, 10.0)]) < 1e-6  # only the tiny pair term A2_plus
    assert abs(dw[(0.1, 10.0)]) < 1e-4 * abs(dw[(0.1, -10.0)])


def test_high_frequency_potentiates_both_orders(frequency_curve):
    _, _, dw = frequency_curve
    assert dw[(50.0, 10.0)] > 0.05
    assert dw[(50.0, -10.0)] > 0.05
    # potentiation of pre-post pairings grows with frequency
    pre_post = [dw[(f, 10.0)] for f in FREQS]
    assert all(b > a for a, b in zip(pre_post, pre_post[1:]))


def test_totals_equal_event_by_event_reference(frequency_curve):
    rule, cases, dw = frequency_curve
    for f, lag in cases:
        want = reference(rule, *protocol(f, lag), W0) - W0
        np.testing.assert_allclose(
            dw[(f, lag)], want, rtol=1e-9, atol=1e-15, err_msg=f"{f} Hz, {lag} ms"
        )


def test_weights_clip_at_the_bounds():
    rule = jsyn.TripletSTDP(A3_plus=1.0, w_max=1.2)
    pre, post = protocol(50.0, 10.0)
    net = jsyn.Network(
        {"pre": jsyn.SpikeTimes(pre[:5]), "post": jsyn.SpikeTimes(post[:5])},
        {
            "p": jsyn.Projection(
                jsyn.Dense(np.full((1, 1), W0)),
                jsyn.Expon(),
                jsyn.CUBA(),
                pre="pre",
                post="post",
                plasticity=rule,
            )
        },
    )
    final, _ = jsyn.simulate(net, None, DT, n_steps=int(post[4] / DT) + 2, record=lambda s, o: ())
    np.testing.assert_allclose(final.projections["p"].w, [[1.2]])


def _short_run(rule, conn):
    pre, post = protocol(40.0, 10.0)
    net = jsyn.Network(
        {"pre": jsyn.SpikeTimes(pre[:6]), "post": jsyn.SpikeTimes(post[:6])},
        {
            "p": jsyn.Projection(
                conn, jsyn.Expon(), jsyn.CUBA(), pre="pre", post="post", plasticity=rule
            )
        },
    )
    final, _ = jsyn.simulate(net, None, DT, n_steps=int(post[5] / DT) + 2, record=lambda s, o: ())
    return final.projections["p"].w


@pytest.mark.parametrize("name", ["A3_plus", "tau_x", "A2_minus"])
@pytest.mark.slow  # 14 s in the default lane (2 workers, 2 cores, load 3-4)
def test_gradient_matches_finite_differences(name):
    def loss(value):
        rule = eqx.tree_at(
            lambda r: getattr(r, name), jsyn.TripletSTDP(w_max=W_MAX), jnp.asarray(value)
        )
        return jnp.sum(_short_run(rule, jsyn.Dense(np.full((1, 1), W0))))

    x = float(getattr(jsyn.TripletSTDP(), name))
    grad = jax.grad(loss)(x)
    np.testing.assert_allclose(grad, central_fd(loss, x, eps=1e-4 * x), rtol=1e-6)
    assert abs(grad) > 0


def test_dense_equals_sparse():
    rule = jsyn.TripletSTDP(w_max=W_MAX)
    dense = _short_run(rule, jsyn.Dense(np.full((1, 1), W0)))
    sparse = _short_run(rule, jsyn.Sparse([0], [0], 1, 1, w=W0))
    np.testing.assert_allclose(np.ravel(dense), sparse, rtol=1e-12)
