"""AMPA and GABAa: closed forms, the pulse and restart rules, bounds, gradients (docs/models.md)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import jsyn
from helpers import central_fd

MODELS = {"AMPA": jsyn.AMPA, "GABAa": jsyn.GABAa}


def rates(model):
    alpha, beta, T = (float(jsyn.resolve(getattr(model, k))) for k in ("alpha", "beta", "T"))
    return alpha * T + beta, alpha * T / (alpha * T + beta), beta


def exact_trace(model, spike_times, t_out):
    """g(t_out) from the closed form, in NumPy: [T] = T on the union of the pulses
    [t_s, t_s + T_dur) (a spike during a pulse restarts it), and between breakpoints
    g relaxes towards g_inf with rate alpha T + beta, or decays with rate beta."""
    k_on, g_inf, beta = rates(model)
    T_dur = float(jsyn.resolve(model.T_dur))
    spikes = np.asarray(spike_times, dtype=float)
    points = np.concatenate([spikes, spikes + T_dur, t_out])
    points = np.unique(np.round(points[points >= 0], 12))
    g, t, out = 0.0, 0.0, {}
    for p in points:
        mid = 0.5 * (t + p)
        if np.any((spikes <= mid) & (mid < spikes + T_dur)):
            g = g_inf + (g - g_inf) * np.exp(-k_on * (p - t))
        else:
            g = g * np.exp(-beta * (p - t))
        t = p
        out[p] = g
    return np.array([out[np.round(s, 12)] for s in t_out])


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("T_dur", [0.5, 0.37, 1.23, 0.05, 0.0])
def test_single_spike_closed_form(name, T_dur):
    """During the pulse g(t) = g_inf (1 - e^{-(alpha T + beta) t}), then decay with beta;
    exact at grid points whether or not T_dur is a multiple of dt."""
    model = MODELS[name](T_dur=T_dur)
    k_on, g_inf, beta = rates(model)
    x = jnp.zeros((200, 1)).at[7, 0].set(1.0)
    _, g = jsyn.simulate(model, x, 0.1)
    t = (np.arange(200) - 7) * 0.1
    during = g_inf * (1 - np.exp(-k_on * np.clip(t, 0, T_dur)))
    expected = np.where(t < 0, 0.0, during * np.exp(-beta * np.clip(t - T_dur, 0, None)))
    np.testing.assert_allclose(g[:, 0], expected, rtol=1e-12, atol=1e-15)
    assert float(g[7, 0]) == 0.0  # the spike at t_7 starts the rise after t_7


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("dt", [0.5, 0.25, 0.1, 0.025])
def test_irregular_train_matches_union_of_pulses_for_any_dt(name, dt):
    """Spikes on a 0.5 ms grid, some closer than T_dur (restarts): grid values equal the
    closed form, independent of dt, with T_dur = 0.83 on no grid."""
    model = MODELS[name](T_dur=0.83)
    steps = [0, 1, 2, 9, 10, 30, 33, 34, 60]  # in units of 0.5 ms
    k = round(0.5 / dt)
    x = np.zeros((80 * k, 1))
    x[np.array(steps) * k, 0] = 1.0
    _, g = jsyn.simulate(model, jnp.asarray(x), dt)
    t_out = np.arange(80 * k) * dt
    expected = exact_trace(model, np.array(steps) * 0.5, t_out)
    np.testing.assert_allclose(g[:, 0], expected, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("name", MODELS)
def test_restart_rule(name):
    """A spike during a pulse restarts it: spikes at 0 and 0.3 ms with T_dur = 0.5 give one
    pulse on [0, 0.8); concentrations never add (two spikes at once, or a count of 2,
    act as one)."""
    model = MODELS[name](T_dur=0.5)
    k_on, g_inf, beta = rates(model)
    x = jnp.zeros((40, 1)).at[0, 0].set(1.0).at[3, 0].set(1.0)
    _, (left, g) = jsyn.simulate(model, x, 0.1, record=lambda s, g: (s.pulse_left, g))
    t = np.arange(40) * 0.1
    rise = g_inf * (1 - np.exp(-k_on * np.minimum(t, 0.8)))
    expected = rise * np.exp(-beta * np.clip(t - 0.8, 0, None))
    np.testing.assert_allclose(g[:, 0], expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(left[3, 0], 0.5, rtol=1e-14)  # restarted, not 0.5 + 0.2
    _, g_one = jsyn.simulate(model, x, 0.1)
    _, g_two = jsyn.simulate(model, 2.0 * x, 0.1)
    np.testing.assert_array_equal(g_one, g_two)


@pytest.mark.parametrize("name", MODELS)
def test_fractional_release_shortens_the_pulse(name):
    """A release s in (0, 1) from rest is a pulse of s * T_dur at concentration T; during a
    pulse it moves the remaining time to (1 - s) left + s T_dur; below 0 is none, above 1
    a spike."""
    model = MODELS[name](T_dur=1.0)
    k_on, g_inf, beta = rates(model)
    x = jnp.zeros((60, 1)).at[0, 0].set(0.4)
    _, g = jsyn.simulate(model, x, 0.1)
    t = np.arange(60) * 0.1
    expected = (
        g_inf * (1 - np.exp(-k_on * np.minimum(t, 0.4))) * np.exp(-beta * np.clip(t - 0.4, 0, None))
    )
    np.testing.assert_allclose(g[:, 0], expected, rtol=1e-12, atol=1e-15)

    x = jnp.zeros((10, 1)).at[0, 0].set(1.0).at[3, 0].set(0.25)
    left = jsyn.simulate(model, x, 0.1, record=lambda s, g: s.pulse_left)[1]
    np.testing.assert_allclose(left[3, 0], 0.75 * 0.7 + 0.25 * 1.0, rtol=1e-14)

    base = jnp.zeros((30, 2)).at[2].set(1.0)
    _, g_ref = jsyn.simulate(model, base, 0.1)
    _, g_clip = jsyn.simulate(model, base * jnp.array([[1.7, 40.0]]), 0.1)
    np.testing.assert_array_equal(g_clip, g_ref)
    _, g_neg = jsyn.simulate(model, -base, 0.1)
    np.testing.assert_array_equal(g_neg, 0.0)


@settings(max_examples=30, deadline=None)
@given(
    dt=st.floats(0.01, 5.0),
    alpha=st.floats(0.01, 100.0),
    beta=st.floats(1e-3, 10.0),
    T=st.floats(0.0, 10.0),
    T_dur=st.floats(0.0, 5.0),
    seed=st.integers(0, 2**16),
    float32=st.booleans(),
)
def test_g_stays_in_unit_interval(dt, alpha, beta, T, T_dur, seed, float32):
    dtype = jnp.float32 if float32 else jnp.float64
    rng = np.random.default_rng(seed)
    x = rng.choice([0.0, 0.0, 0.0, 1.0, 0.3, 2.0, -1.0, 1e6], size=(100, 4))
    model = jsyn.AMPA(alpha=alpha, beta=beta, T=T, T_dur=T_dur)
    # dt as an array: one compilation for every example.
    _, (g, left) = jsyn.simulate(
        model, jnp.asarray(x, dtype), jnp.asarray(dt), record=lambda s, g: (g, s.pulse_left)
    )
    assert g.dtype == dtype
    g, left = np.asarray(g), np.asarray(left)
    assert np.all(np.isfinite(g)) and np.all(g >= 0.0) and np.all(g <= 1.0)
    assert np.all(left >= 0.0) and np.all(left <= T_dur * (1 + 1e-6) + 1e-40)  # float32 rounding


def single_spike_trace(name, T_dur, n_steps=60):
    x = jnp.zeros((n_steps, 1)).at[0, 0].set(1.0)
    return jsyn.simulate(MODELS[name](T_dur=T_dur), x, 0.1)[1][:, 0]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.slow  # 17 s in the default lane (2 workers, 2 cores)
def test_T_dur_gradient_with_the_pulse_edge_inside_a_step(name):
    """T_dur = 0.37 ends the pulse inside the fourth step. After the pulse,
    dg(t)/dT_dur = alpha T (1 - g(T_dur)) e^{-beta (t - T_dur)} (zero before): the autodiff
    gradient equals it at every grid point, and equals central differences."""
    T_dur = 0.37
    model = MODELS[name](T_dur=T_dur)
    alpha, T = (float(jsyn.resolve(getattr(model, k))) for k in ("alpha", "T"))
    k_on, g_inf, beta = rates(model)
    jac = jax.jacfwd(lambda v: single_spike_trace(name, v))(T_dur)
    t = np.arange(60) * 0.1
    g_end = g_inf * (1 - np.exp(-k_on * T_dur))
    expected = np.where(t > T_dur, alpha * T * (1 - g_end) * np.exp(-beta * (t - T_dur)), 0.0)
    np.testing.assert_allclose(jac, expected, rtol=1e-11, atol=1e-14)
    assert np.all(jac[4:] > 0)

    def loss(v):
        return jnp.sum(single_spike_trace(name, v) * jnp.linspace(0.5, 1.5, 60))

    grad = jax.grad(loss)(T_dur)
    np.testing.assert_allclose(grad, central_fd(loss, T_dur, 1e-6), rtol=1e-7)
    np.testing.assert_allclose(jax.grad(loss)(T_dur), jax.grad(loss)(jnp.float64(T_dur)))


@pytest.mark.parametrize("name", MODELS)
def test_T_dur_gradient_at_default(name):
    """The default T_dur, with dt = 0.3 ms so that pulses end inside steps, on a train with
    restarts: autodiff equals central differences."""
    T_dur = float(jsyn.resolve(MODELS[name]().T_dur))
    x = np.zeros((100, 2))
    x[[3, 4, 20, 22, 23, 60, 63, 80], 0] = 1.0  # restarts after 0.3, 0.6, 0.3 ms
    x[[10, 30, 31, 50, 58], 1] = 1.0
    x = jnp.asarray(x)
    weights = jnp.linspace(0.5, 1.5, 200).reshape(100, 2)

    @jax.jit
    def loss(v):
        return jnp.sum(weights * jsyn.simulate(MODELS[name](T_dur=v), x, 0.3)[1])

    grad = jax.grad(loss)(T_dur)
    assert grad > 0
    for eps in (1e-4, 1e-6):
        np.testing.assert_allclose(grad, central_fd(loss, T_dur, eps), rtol=1e-7)


def test_T_dur_on_the_grid_is_a_kink_of_the_sampled_trace():
    """Where the pulse ends exactly on a grid point t, g(t) has a kink in T_dur (before it,
    the end is after t and dg(t)/dT_dur = 0; after it, alpha T (1 - g) > 0). Autodiff
    returns one of the two one-sided derivatives there, finite."""
    x = jnp.zeros((30, 1)).at[0, 0].set(1.0)

    @jax.jit
    def loss(v):
        return jnp.sum(jsyn.simulate(jsyn.AMPA(T_dur=v), x, 0.1)[1])

    grad = float(jax.grad(loss)(0.5))
    left = (loss(0.5) - loss(0.5 - 1e-6)) / 1e-6
    right = (loss(0.5 + 1e-6) - loss(0.5)) / 1e-6
    assert abs(right - left) > 0.01 * abs(right)
    assert min(abs(grad - left), abs(grad - right)) < 1e-4 * abs(grad)


@pytest.mark.parametrize("name", MODELS)
def test_gradient_wrt_drive(name):
    """x enters through clip(x, 0, 1): inside (0, 1) the gradient is the central difference,
    outside it is 0, and at exactly 0 and 1 it is the mean of the one-sided derivatives
    (JAX's clip), which is what a central difference measures; never NaN."""
    model = MODELS[name](T_dur=0.63)  # pulses end inside steps, away from the grid kink
    weights = jnp.linspace(0.5, 1.5, 50)

    @jax.jit
    def loss(v, at):
        x = jnp.zeros(50).at[12].set(1.0).at[at].set(v)
        return jnp.sum(weights * jsyn.simulate(model, x[:, None], 0.1)[1][:, 0])

    grad = jax.jit(jax.grad(loss))

    def one_sided(at, v, sign):
        # Richardson-extrapolated one-sided difference, second-order accurate.
        def d(h):
            return sign * (loss(v + sign * h, at) - loss(v, at)) / h

        return 2 * d(1e-5) - d(2e-5)

    for at in (2, 14):  # from rest, and during the pulse of step 12 (restart mixing)
        assert np.isfinite(grad(0.0, at)) and np.isfinite(grad(1.0, at))
        np.testing.assert_allclose(grad(0.0, at), 0.5 * one_sided(at, 0.0, +1), rtol=1e-7)
        np.testing.assert_allclose(grad(1.0, at), 0.5 * one_sided(at, 1.0, -1), rtol=1e-7)
        fd = central_fd(lambda v, at=at: loss(v, at), 0.4)
        np.testing.assert_allclose(grad(0.4, at), fd, rtol=1e-7)
        assert grad(0.4, at) > 0
        assert grad(1.5, at) == 0.0 and grad(-0.5, at) == 0.0


def test_defaults_follow_models_md():
    values = {
        k: float(jsyn.resolve(getattr(jsyn.AMPA(), k))) for k in ("alpha", "beta", "T", "T_dur")
    }
    assert values == {"alpha": 0.98, "beta": 0.18, "T": 0.5, "T_dur": 0.5}
    values = {
        k: float(jsyn.resolve(getattr(jsyn.GABAa(), k))) for k in ("alpha", "beta", "T", "T_dur")
    }
    assert values == {"alpha": 0.53, "beta": 0.18, "T": 1.0, "T_dur": 1.0}


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: jsyn.AMPA(alpha=0.0), r"AMPA.alpha must be > 0 \(got 0.0\)"),
        (lambda: jsyn.AMPA(beta=-0.1), r"AMPA.beta must be > 0 \(got -0.1\)"),
        (lambda: jsyn.AMPA(T=-1.0), r"AMPA.T must be >= 0 \(got -1.0\)"),
        (lambda: jsyn.GABAa(T_dur=jnp.array([1.0, -0.5])), r"GABAa.T_dur must be >= 0.*\(1,\)"),
        (lambda: jsyn.GABAa(alpha=jnp.nan), r"GABAa.alpha must be > 0"),
    ],
)
def test_bad_parameters_are_named(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_bad_parameters_under_jit_and_vmap():
    x = jnp.zeros((20, 2)).at[3].set(1.0)
    run = jax.jit(lambda v: jsyn.simulate(jsyn.AMPA(T_dur=v), x, 0.1)[1])
    with pytest.raises(Exception, match="AMPA.T_dur must be >= 0"):
        run(-0.5).block_until_ready()
    assert np.all(np.isfinite(run(0.0)))  # a zero-length pulse is allowed: no response
    with pytest.raises(Exception, match="GABAa.beta must be > 0"):
        jax.vmap(lambda b: jsyn.simulate(jsyn.GABAa(beta=b), x, 0.1)[1])(jnp.array([0.1, 0.0]))
