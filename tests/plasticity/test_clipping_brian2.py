"""STDP clipped at each event (`clip_each_event=True`) against Brian2's STDP example (Song,
Miller & Abbott 2000, as in Brian2's documentation: `w = clip(w + apost, 0, wmax)` in
`on_pre`, `w = clip(w + apre, 0, wmax)` in `on_post`) on the same spike trains (the bench
extra; skipped without Brian2)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

b2 = pytest.importorskip("brian2")

import jsyn  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # in Brian2's code generation
]

DT, T_MS, N = 0.1, 2000.0, 60
TAU_PRE, TAU_POST, A_PLUS, A_MINUS, W_MAX = 20.0, 20.0, 0.1, 0.12, 1.0


def trains(seed=0, rate=30.0):
    """Poisson pre and post spikes on the 0.1 ms grid, N synapses (one pre and one post
    train each), with extra steps where both sides spike (where the clipping conventions
    can differ). Returns 0/1 arrays of shape (steps, N)."""
    rng = np.random.default_rng(seed)
    n = int(T_MS / DT)
    pre = rng.random((n, N)) < rate * DT / 1000.0
    post = rng.random((n, N)) < rate * DT / 1000.0
    both = rng.random((n, N)) < 5.0 * DT / 1000.0
    return (pre | both).astype(float), (post | both).astype(float)


def brian2_weights(pre, post, w0):
    b2.start_scope()
    b2.prefs.codegen.target = "numpy"
    b2.defaultclock.dt = DT * b2.ms
    steps_pre, idx_pre = np.nonzero(pre)
    steps_post, idx_post = np.nonzero(post)
    G_pre = b2.SpikeGeneratorGroup(N, idx_pre, steps_pre * DT * b2.ms)
    G_post = b2.SpikeGeneratorGroup(N, idx_post, steps_post * DT * b2.ms)
    S = b2.Synapses(
        G_pre,
        G_post,
        """w : 1
        dapre/dt = -apre / taupre : 1 (event-driven)
        dapost/dt = -apost / taupost : 1 (event-driven)""",
        on_pre="""apre += Apre
        w = clip(w + apost, 0, wmax)""",
        on_post="""apost += Apost
        w = clip(w + apre, 0, wmax)""",
        namespace=dict(
            taupre=TAU_PRE * b2.ms,
            taupost=TAU_POST * b2.ms,
            Apre=A_PLUS,
            Apost=-A_MINUS,
            wmax=W_MAX,
        ),
    )
    S.connect(j="i")
    S.w = w0
    b2.run(pre.shape[0] * DT * b2.ms)
    return np.asarray(S.w[:])


def jsyn_weights(pre, post, w0, clip_each_event):
    rule = jsyn.STDP(
        A_plus=A_PLUS,
        A_minus=A_MINUS,
        tau_pre=TAU_PRE,
        tau_post=TAU_POST,
        w_min=0.0,
        w_max=W_MAX,
        clip_each_event=clip_each_event,
    )

    def step(carry, x):
        return rule.step(*carry, x[0], x[1], DT), None

    init = (rule.init_state((N,)), jnp.asarray(w0))
    (_, w), _ = jax.jit(lambda x: jax.lax.scan(step, init, x))(
        (jnp.asarray(pre), jnp.asarray(post))
    )
    return np.asarray(w)


def test_clipping_at_each_event_equals_brian2s_example():
    pre, post = trains()
    w0 = np.random.default_rng(1).uniform(0.0, W_MAX, N)
    ref = brian2_weights(pre, post, w0)
    each = jsyn_weights(pre, post, w0, clip_each_event=True)
    once = jsyn_weights(pre, post, w0, clip_each_event=False)
    np.testing.assert_allclose(each, ref, rtol=1e-12, atol=1e-12)
    # the weights hit both bounds, and clipping once per step is a different rule here
    assert (ref == 0.0).any() and (ref == W_MAX).any()
    assert np.abs(once - ref).max() > 1e-3
