"""GABAb: exact steps against a matrix-exponential reference, the burst property, the stable
output law, gradients (docs/models.md)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.linalg import expm

import jsyn
from helpers import central_fd
from jsyn.synapses.gaba_b import hill

DEFAULTS = dict(K1=0.09, K2=0.0012, K3=0.18, K4=0.034, Kd=100.0, n=4.0, T=0.5, T_dur=0.3)


def reference(spike_times, t_out, **params):
    """(R, G, g) at t_out, independently of jsyn: [T] = T on the union of the pulses
    [t_s, t_s + T_dur), and between breakpoints the linear system in (R, G, 1) is advanced
    with `scipy.linalg.expm`."""
    p = {**DEFAULTS, **params}
    K1, K2, K3, K4 = p["K1"], p["K2"], p["K3"], p["K4"]
    spikes = np.asarray(spike_times, dtype=float)
    points = np.concatenate([spikes, spikes + p["T_dur"], t_out])
    points = np.unique(np.round(points[points >= 0], 12))
    y, t, out, flows = np.array([0.0, 0.0, 1.0]), 0.0, {}, {}
    for q in points:
        mid = 0.5 * (t + q)
        c = p["T"] if np.any((spikes <= mid) & (mid < spikes + p["T_dur"])) else 0.0
        key = (c, round(q - t, 12))
        if key not in flows:
            M = np.array([[-(K1 * c + K2), 0.0, K1 * c], [K3, -K4, 0.0], [0.0, 0.0, 0.0]])
            flows[key] = expm(M * (q - t))
        y = flows[key] @ y
        t = q
        out[q] = y[:2].copy()
    R, G = np.array([out[np.round(s, 12)] for s in t_out]).T
    return R, G, G ** p["n"] / (G ** p["n"] + p["Kd"])


@pytest.mark.parametrize("dt", [1.0, 0.5, 0.1])
@pytest.mark.parametrize(
    "params",
    [
        {},  # the default T_dur = 0.3 ms
        {"T_dur": 0.37, "Kd": 1e-3},
        {"T_dur": 1.7, "T": 2.0},
        {"K1": (0.034 - 0.0012) / 0.5},  # rate of R during the pulse equals K4
        {"K2": 0.034},  # rate of R after the pulse equals K4
    ],
    ids=["defaults", "edge-in-step", "long-pulse", "equal-rates-on", "equal-rates-off"],
)
def test_exact_at_grid_points_for_any_dt(dt, params):
    """Spikes on a 1 ms grid, with a burst and restarts: R, G and g at the grid points equal
    the matrix-exponential reference, whatever dt (so nothing in the step is first order)."""
    steps = [0, 1, 2, 3, 4, 20, 21, 60]  # ms
    k = round(1.0 / dt)
    x = np.zeros((100 * k, 1))
    x[np.array(steps) * k, 0] = 1.0
    model = jsyn.GABAb(**params)
    _, (R, G, g) = jsyn.simulate(model, jnp.asarray(x), dt, record=lambda s, g: (s.R, s.G, g))
    t_out = np.arange(100 * k) * dt
    R_ref, G_ref, g_ref = reference(np.array(steps, dtype=float), t_out, **params)
    np.testing.assert_allclose(R[:, 0], R_ref, rtol=1e-11, atol=1e-16)
    np.testing.assert_allclose(G[:, 0], G_ref, rtol=1e-11, atol=1e-16)
    np.testing.assert_allclose(g[:, 0], g_ref, rtol=1e-10, atol=1e-30)


def peak_response(n_spikes, isi_ms=10.0, dt=0.1):
    k = round(isi_ms / dt)
    x = jnp.zeros((4000, 1)).at[10 : 10 + n_spikes * k : k, 0].set(1.0)
    _, g = jsyn.simulate(jsyn.GABAb(), x, dt)
    return float(g.max()), float(jnp.argmax(g[:, 0]) - 10) * dt


def test_needs_bursts_to_activate():
    """With the defaults (Destexhe et al. 1996), one spike barely opens the channel and a
    burst does, far more than in proportion: the G^4 output of a slowly summing G."""
    single, t_single = peak_response(1)
    burst4, _ = peak_response(4)
    burst10, t_burst = peak_response(10)
    assert single < 1e-6
    assert burst4 > 100 * single and burst4 > 10 * (4 * single)
    assert burst10 > 10 * burst4 > 0
    assert 50.0 < t_single < 200.0 and t_burst > t_single  # slow: G peaks ~0.1 s later


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_output_law_is_stable_for_any_G(dtype):
    """sigma(n ln G - ln Kd): finite values and gradients for G = 0 ... huge and n from 0.5 to
    10; 0 with zero gradients at G = 0; the direct formula where it is representable."""
    big = float(jnp.finfo(dtype).max)
    G = jnp.asarray([0.0, 1e-30, 1e-6, 0.3, 1.0, 3.16, 10.0, 1e6, 1e30, big], dtype)
    for n in (0.5, 1.0, 4.0, 10.0):
        for Kd in (1e-3, 1.0, 100.0):
            n_, Kd_ = jnp.asarray(n, dtype), jnp.asarray(Kd, dtype)
            g = hill(G, n_, Kd_)
            assert g.dtype == dtype
            assert np.all(np.isfinite(g)) and np.all(g >= 0) and np.all(g <= 1)
            grads = jax.vmap(
                jax.grad(lambda G, n, K: hill(G, n, K), argnums=(0, 1, 2)), (0, None, None)
            )(G, n_, Kd_)
            for grad in grads:
                assert np.all(np.isfinite(grad))
            assert g[0] == 0 and all(grad[0] == 0 for grad in grads)
            with np.errstate(over="ignore", under="ignore", invalid="ignore"):
                G64 = np.asarray(G, np.float64)
                direct = G64**n / (G64**n + Kd)
                ok = np.isfinite(direct) & (G64**n < 1e300)
            exact64 = dtype == jnp.float64
            np.testing.assert_allclose(
                np.asarray(g, np.float64)[ok],
                direct[ok],
                rtol=1e-13 if exact64 else 1e-5,
                atol=0.0 if exact64 else 1e-30,  # float32 underflows below ~1e-38
            )
    # The analytic derivative, for n = 4: d/dG = n G^(n-1) Kd / (G^n + Kd)^2.
    Gs = jnp.asarray([0.5, 2.0, 3.16, 7.0], jnp.float64)
    dG = jax.vmap(jax.grad(hill), (0, None, None))(Gs, 4.0, 100.0)
    np.testing.assert_allclose(dG, 4 * Gs**3 * 100.0 / (Gs**4 + 100.0) ** 2, rtol=1e-13)


@pytest.mark.slow  # 13 s in the default lane (2 workers, 2 cores, load 3-4)
def test_gradients_at_rest_are_zero_not_nan():
    """Without spikes G stays 0: the output and every gradient are exactly 0."""
    x = jnp.zeros((50, 2))

    def loss(model):
        return jnp.sum(jsyn.simulate(model, x, 0.1)[1])

    import equinox as eqx

    grads = eqx.filter_grad(loss)(jsyn.GABAb())
    for leaf in jax.tree.leaves(grads):
        assert leaf == 0.0


BURSTS = np.zeros((1500, 2))
BURSTS[[10, 25, 40, 55, 70, 71, 400, 415, 430, 445], 0] = 1.0  # bursts, one restart
BURSTS[[100, 112, 124, 136, 148, 160, 900], 1] = 1.0


@pytest.mark.parametrize(
    "name,value,dt",
    [
        ("T_dur", 0.3, 0.2),  # the default, ending inside a step at dt = 0.2
        ("T_dur", 0.37, 0.1),
        ("n", 4.0, 0.2),
        ("Kd", 100.0, 0.2),
        ("K3", 0.18, 0.2),
    ],
)
@pytest.mark.slow  # 25 s in the default lane (2 workers, 2 cores, load 3-4)
def test_gradients_match_finite_differences(name, value, dt):
    """Default parameters, bursts (so g is not negligible), over 300 ms: autodiff equals
    central differences (T_dur: a pulse edge inside a step, the default included)."""
    x = jnp.asarray(BURSTS[: int(round(300 / dt))])
    weights = jnp.linspace(0.5, 1.5, x.size).reshape(x.shape)

    @jax.jit
    def loss(v):
        return 1e4 * jnp.sum(weights * jsyn.simulate(jsyn.GABAb(**{name: v}), x, dt)[1])

    grad = jax.grad(loss)(value)
    assert grad != 0 and np.isfinite(grad)
    eps = 1e-5 * max(value, 1.0)
    np.testing.assert_allclose(grad, central_fd(loss, value, eps), rtol=1e-6)


@settings(max_examples=30, deadline=None)
@given(
    dt=st.floats(0.01, 20.0),
    rates=st.lists(st.floats(1e-4, 10.0), min_size=4, max_size=4),
    Kd=st.floats(1e-6, 1e6),
    n=st.floats(0.2, 8.0),
    T=st.floats(0.0, 10.0),
    T_dur=st.floats(0.0, 5.0),
    seed=st.integers(0, 2**16),
    float32=st.booleans(),
)
def test_state_and_output_stay_in_range(dt, rates, Kd, n, T, T_dur, seed, float32):
    dtype = jnp.float32 if float32 else jnp.float64
    x = np.random.default_rng(seed).choice([0.0, 0.0, 1.0, 0.3, 2.0, -1.0], size=(100, 4))
    model = jsyn.GABAb(*rates, Kd=Kd, n=n, T=T, T_dur=T_dur)
    _, (R, G, g) = jsyn.simulate(
        model, jnp.asarray(x, dtype), jnp.asarray(dt), record=lambda s, g: (s.R, s.G, g)
    )
    assert g.dtype == dtype
    R, G, g = np.asarray(R), np.asarray(G), np.asarray(g)
    assert np.all(np.isfinite(R)) and np.all(np.isfinite(G)) and np.all(np.isfinite(g))
    assert np.all(R >= 0) and np.all(R <= 1)
    assert np.all(G >= -1e-6 * max(1.0, np.abs(G).max()))  # rounding only
    assert np.all(g >= 0) and np.all(g <= 1)


def test_defaults_follow_models_md():
    model = jsyn.GABAb()
    assert {k: float(jsyn.resolve(getattr(model, k))) for k in DEFAULTS} == DEFAULTS


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"n": 0.0}, r"GABAb.n must be > 0 \(got 0.0\)"),
        ({"Kd": -1.0}, r"GABAb.Kd must be > 0 \(got -1.0\)"),
        ({"K1": 0.0}, r"GABAb.K1 must be > 0"),
        ({"K4": jnp.array([0.034, -0.1])}, r"GABAb.K4 must be > 0.*\(1,\)"),
        ({"T": -0.5}, r"GABAb.T must be >= 0"),
        ({"T_dur": -0.3}, r"GABAb.T_dur must be >= 0"),
    ],
)
def test_bad_parameters_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        jsyn.GABAb(**kwargs)


def test_bad_parameters_under_jit():
    x = jnp.zeros((20, 2)).at[3].set(1.0)
    with pytest.raises(Exception, match="GABAb.n must be > 0"):
        jax.jit(lambda v: jsyn.simulate(jsyn.GABAb(n=v), x, 0.1)[1])(0.0)
