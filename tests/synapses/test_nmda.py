"""NMDA and BioNMDA: exact parts, convergence order against an independent RK4 reference,
bounds, pulse gradients (docs/models.md)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import jsyn
from helpers import central_fd
from jsyn import _kinetics as kin


def rk4_reference(rhs, n_vars, jumps, pulse_starts, T_dur, t_out, h):
    """Classic RK4 in NumPy with step `h`, the events applied at their times: `jumps` maps a
    time to the increment of the state, `pulse_starts` (re)start a pulse of `T_dur`.
    `rhs(y, c)` is the vector field with transmitter concentration factor `c` (0 or 1).
    Pulse edges and events must lie on the `h` grid. Returns the states at `t_out`."""
    n = int(round(max(t_out) / h))
    on_grid = {int(round(t / h)): dy for t, dy in jumps.items()}
    starts = {int(round(t / h)) for t in pulse_starts}
    wanted = {int(round(t / h)) for t in t_out}
    y, end, out = np.zeros(n_vars), -1, {}
    for k in range(n + 1):
        if k > 0:
            c = 1.0 if k <= end else 0.0  # the piece ((k - 1) h, k h) lies inside the pulse

            def f(y, c=c):
                return rhs(y, c)

            k1 = f(y)
            k2 = f(y + h / 2 * k1)
            k3 = f(y + h / 2 * k2)
            k4 = f(y + h * k3)
            y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        y = y + on_grid.get(k, 0.0)
        if k in starts:
            end = k + int(round(T_dur / h))
        if k in wanted:
            out[k] = y.copy()
    return np.array([out[int(round(t / h))] for t in t_out])


def nmda_rhs(tau_rise=2.0, tau_decay=100.0, a=0.5):
    return lambda y, c: np.array([-y[0] / tau_decay + a * y[1] * (1 - y[0]), -y[1] / tau_rise])


def bionmda_rhs(alpha1=2.0, beta1=0.01, alpha2=1.0, beta2=0.5, T=1.0):
    return lambda y, c: np.array(
        [alpha1 * y[1] * (1 - y[0]) - beta1 * y[0], alpha2 * c * T * (1 - y[1]) - beta2 * y[1]]
    )


COARSE, N = 0.4, 100
RNG = np.random.default_rng(1)
TRAIN = np.where(RNG.random(N) < 0.1, RNG.choice([1.0, 0.6, 2.0], N), 0.0)  # on the 0.4 grid


def run_refined(model, train, k, record):
    """Run `train` (on the COARSE grid) with dt = COARSE / k; the recorded values at the
    coarse grid points."""
    x = np.zeros((len(train) * k, 1))
    x[::k, 0] = train
    _, rec = jsyn.simulate(model, jnp.asarray(x), COARSE / k, record=record)
    return jax.tree.map(lambda r: np.asarray(r)[::k, 0], rec)


def orders(errors):
    return [errors[i] / errors[i + 1] for i in range(len(errors) - 1)]


@pytest.mark.slow  # 11 s in the default lane (2 workers, 2 cores, load 3-4)
def test_nmda_converges_with_order_two():
    """g against RK4 (h = 1 us) of the docs/models.md equations: halving dt divides the error by
    ~4 (x_s held at its exact step mean). x_s itself is exact."""
    t_out = np.arange(N) * COARSE
    jumps = {t: np.array([0.0, w]) for t, w in zip(t_out, TRAIN) if w}
    ref = rk4_reference(nmda_rhs(), 2, jumps, [], 0.0, t_out, h=1e-3)
    errors = []
    for k in (1, 2, 4, 8):
        g, x_s = run_refined(jsyn.NMDA(), TRAIN, k, lambda s, g: (g, s.x_s))
        errors.append(np.abs(g - ref[:, 0]).max())
        np.testing.assert_allclose(x_s, ref[:, 1], rtol=1e-10, atol=1e-12)
    assert errors[2] < 1e-5 * ref[:, 0].max()  # dt = 0.1 ms
    for ratio in orders(errors):
        assert 3.4 < ratio < 4.6, errors


def test_nmda_is_exact_without_decay():
    """With tau_decay -> inf, g = 1 - (1 - g0) exp(-a int x_s dt) exactly: a single spike
    gives g(t) = 1 - exp(-a tau_rise (1 - e^{-t/tau_rise})) at any dt."""
    for dt in (0.1, 1.0):
        n = int(round(20 / dt))
        x = jnp.zeros((n, 1)).at[0, 0].set(1.0)
        _, g = jsyn.simulate(jsyn.NMDA(tau_decay=1e12), x, dt)
        t = np.arange(n) * dt
        np.testing.assert_allclose(
            g[:, 0], 1 - np.exp(-0.5 * 2.0 * (1 - np.exp(-t / 2.0))), rtol=1e-9, atol=1e-12
        )


def test_nmda_relaxes_exactly_for_constant_x_s():
    """With x_s constant (tau_rise -> inf), g relaxes exactly to a X / (1/tau_decay + a X)."""
    X, a, tau_decay = 0.3, 0.5, 100.0
    x = jnp.zeros((50, 1)).at[0, 0].set(X)
    _, g = jsyn.simulate(jsyn.NMDA(tau_rise=1e15, tau_decay=tau_decay, a=a), x, 0.7)
    lam = 1 / tau_decay + a * X
    np.testing.assert_allclose(
        g[:, 0], a * X / lam * (1 - np.exp(-lam * np.arange(50) * 0.7)), rtol=1e-9
    )


@settings(max_examples=30, deadline=None)
@given(
    dt=st.floats(0.01, 10.0),
    tau_rise=st.floats(0.1, 50.0),
    tau_decay=st.floats(1.0, 500.0),
    a=st.floats(0.01, 20.0),
    seed=st.integers(0, 2**16),
    float32=st.booleans(),
)
def test_nmda_g_stays_in_unit_interval(dt, tau_rise, tau_decay, a, seed, float32):
    dtype = jnp.float32 if float32 else jnp.float64
    x = np.random.default_rng(seed).choice([0.0, 0.0, 1.0, 0.5, 3.0, 50.0], size=(100, 4))
    model = jsyn.NMDA(tau_rise=tau_rise, tau_decay=tau_decay, a=a)
    _, g = jsyn.simulate(model, jnp.asarray(x, dtype), jnp.asarray(dt))
    assert g.dtype == dtype
    g = np.asarray(g)
    assert np.all(np.isfinite(g)) and np.all(g >= 0.0) and np.all(g <= 1.0)


BINARY = (TRAIN > 0).astype(float)  # pulse models: spikes


@pytest.mark.parametrize("T_dur", [0.5, 0.37])
def test_bionmda_converges_with_order_two(T_dur):
    """g against RK4 of the docs/models.md equations (h = 1 us, pulse edges on its grid): order 2;
    x_s is exact at any dt, whether or not T_dur is a multiple of it."""
    t_out = np.arange(N) * COARSE
    starts = t_out[BINARY > 0]
    ref = rk4_reference(bionmda_rhs(), 2, {}, starts, T_dur, t_out, h=1e-3)
    errors = []
    for k in (1, 2, 4, 8):
        g, x_s = run_refined(jsyn.BioNMDA(T_dur=T_dur), BINARY, k, lambda s, g: (g, s.x_s))
        errors.append(np.abs(g - ref[:, 0]).max())
        np.testing.assert_allclose(x_s, ref[:, 1], rtol=1e-10, atol=1e-12)
    assert errors[2] < 1e-5 * ref[:, 0].max()
    for ratio in orders(errors):
        assert 3.4 < ratio < 4.6, errors


def test_bionmda_x_s_single_spike_closed_form():
    """x_s rises as x_inf (1 - e^{-(alpha2 T + beta2) t}) during the pulse, then decays with
    beta2; T_dur = 0.37 ends the pulse inside a step."""
    x = jnp.zeros((100, 1)).at[3, 0].set(1.0)
    _, x_s = jsyn.simulate(jsyn.BioNMDA(T_dur=0.37), x, 0.1, record=lambda s, g: s.x_s)
    t = (np.arange(100) - 3) * 0.1
    k, x_inf = 1.0 * 1.0 + 0.5, 1.0 / 1.5
    rise = x_inf * (1 - np.exp(-k * np.clip(t, 0, 0.37)))
    expected = np.where(t < 0, 0.0, rise * np.exp(-0.5 * np.clip(t - 0.37, 0, None)))
    np.testing.assert_allclose(x_s[:, 0], expected, rtol=1e-12, atol=1e-15)


def test_bionmda_restart_rule():
    """Concentrations never add: a count of 2 acts as one spike; a spike during a pulse
    restarts it."""
    x = jnp.zeros((60, 1)).at[2, 0].set(1.0).at[5, 0].set(1.0)
    _, g1 = jsyn.simulate(jsyn.BioNMDA(), x, 0.1)
    _, g2 = jsyn.simulate(jsyn.BioNMDA(), 2.0 * x, 0.1)
    np.testing.assert_array_equal(g1, g2)
    _, left = jsyn.simulate(jsyn.BioNMDA(), x, 0.1, record=lambda s, g: s.pulse_left)
    np.testing.assert_allclose(left[5, 0], 0.5, rtol=1e-14)


@settings(max_examples=30, deadline=None)
@given(
    dt=st.floats(0.01, 5.0),
    rates=st.lists(st.floats(1e-3, 50.0), min_size=4, max_size=4),
    T=st.floats(0.0, 10.0),
    T_dur=st.floats(0.0, 5.0),
    seed=st.integers(0, 2**16),
    float32=st.booleans(),
)
def test_bionmda_stays_in_unit_interval(dt, rates, T, T_dur, seed, float32):
    dtype = jnp.float32 if float32 else jnp.float64
    x = np.random.default_rng(seed).choice([0.0, 0.0, 1.0, 0.3, 2.0, -1.0], size=(100, 4))
    model = jsyn.BioNMDA(*rates, T=T, T_dur=T_dur)
    _, (g, x_s) = jsyn.simulate(
        model, jnp.asarray(x, dtype), jnp.asarray(dt), record=lambda s, g: (g, s.x_s)
    )
    assert g.dtype == dtype
    for v in (np.asarray(g), np.asarray(x_s)):
        assert np.all(np.isfinite(v)) and np.all(v >= 0.0) and np.all(v <= 1.0)


@pytest.mark.parametrize("T_dur,dt", [(0.37, 0.1), (0.5, 0.3)])
@pytest.mark.slow  # 27 s in the default lane (2 workers, 2 cores, load 3-4)
def test_bionmda_T_dur_gradient(T_dur, dt):
    """A pulse edge inside a step (T_dur = 0.37 at dt = 0.1; the default 0.5 at dt = 0.3),
    spikes with restarts: autodiff equals central differences, and is not zero."""
    x = np.zeros((120, 2))
    x[[2, 3, 30, 33, 70], 0] = 1.0
    x[[5, 40, 41, 42, 90], 1] = 1.0
    x = jnp.asarray(x)
    weights = jnp.linspace(0.5, 1.5, 240).reshape(120, 2)

    @jax.jit
    def loss(v):
        return jnp.sum(weights * jsyn.simulate(jsyn.BioNMDA(T_dur=v), x, dt)[1])

    grad = jax.grad(loss)(T_dur)
    assert grad > 0
    for eps in (1e-4, 1e-6):
        np.testing.assert_allclose(grad, central_fd(loss, T_dur, eps), rtol=1e-7)


@pytest.mark.parametrize("rate", [0.0, 1e-9, 0.03, 0.999, 1.0, 1.001, 7.0, 300.0])
@pytest.mark.parametrize("dt", [0.0, 1e-7, 0.1, 2.0])
def test_linear_step_and_mean(rate, dt):
    """`linear_step` solves dx/dt = s - k x exactly, and `linear_mean` is its mean over the
    step (checked by adaptive quadrature), both finite at k = 0 and dt = 0, with
    derivatives that match central differences."""
    from scipy.integrate import quad

    x0, s = 0.3, 0.8

    def exact(t):
        return (
            x0 + s * t if rate == 0.0 else x0 * np.exp(-rate * t) - s * np.expm1(-rate * t) / rate
        )

    np.testing.assert_allclose(kin.linear_step(x0, rate, s, dt), exact(dt), rtol=1e-13)
    mean = quad(exact, 0.0, dt, epsabs=0.0, epsrel=1e-13)[0] / dt if dt > 0 else x0
    np.testing.assert_allclose(kin.linear_mean(x0, rate, s, dt), mean, rtol=1e-12)
    if dt > 0:
        for f in (kin.linear_step, kin.linear_mean):
            grad = jax.grad(f, argnums=(1, 3))(x0, rate, s, dt)
            for i, arg in ((0, rate), (1, dt)):
                eps = 1e-6 * max(arg, 1e-3)

                def along(e, f=f, i=i):
                    args = [x0, rate, s, dt]
                    args[(1, 3)[i]] += e
                    return f(*args)

                assert np.isfinite(grad[i])
                np.testing.assert_allclose(
                    grad[i], central_fd(along, 0.0, eps), rtol=1e-6, atol=1e-15 / eps
                )


def test_phi2_near_its_series_switch():
    def reference(z):
        return sum(z**k / np.prod(np.arange(1, k + 3, dtype=float)) for k in range(40))

    for z in (0.0, -1e-9, -0.05, -0.0999999, -0.1, -0.1000001, -0.5, -3.0):
        np.testing.assert_allclose(kin.phi2(z), reference(z), rtol=1e-14)
        np.testing.assert_allclose(jax.grad(kin.phi2)(z), central_fd(kin.phi2, z, 1e-5), rtol=1e-8)


def test_defaults_follow_models_md():
    def values(model, names):
        return {k: float(jsyn.resolve(getattr(model, k))) for k in names}

    assert values(jsyn.NMDA(), ("tau_rise", "tau_decay", "a")) == {
        "tau_rise": 2.0,
        "tau_decay": 100.0,
        "a": 0.5,
    }
    assert values(jsyn.BioNMDA(), ("alpha1", "beta1", "alpha2", "beta2", "T", "T_dur")) == {
        "alpha1": 2.0,
        "beta1": 0.01,
        "alpha2": 1.0,
        "beta2": 0.5,
        "T": 1.0,
        "T_dur": 0.5,
    }


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: jsyn.NMDA(tau_rise=0.0), r"NMDA.tau_rise must be > 0 \(got 0.0\)"),
        (lambda: jsyn.NMDA(tau_decay=-5.0), r"NMDA.tau_decay must be > 0 \(got -5.0\)"),
        (lambda: jsyn.NMDA(a=jnp.array([0.5, 0.0])), r"NMDA.a must be > 0.*\(1,\)"),
        (lambda: jsyn.BioNMDA(beta2=-1.0), r"BioNMDA.beta2 must be > 0 \(got -1.0\)"),
        (lambda: jsyn.BioNMDA(alpha1=0.0), r"BioNMDA.alpha1 must be > 0"),
        (lambda: jsyn.BioNMDA(T=-0.1), r"BioNMDA.T must be >= 0"),
        (lambda: jsyn.BioNMDA(T_dur=-0.1), r"BioNMDA.T_dur must be >= 0"),
    ],
)
def test_bad_parameters_are_named(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_bad_parameters_under_jit():
    x = jnp.zeros((20, 2)).at[3].set(1.0)
    with pytest.raises(Exception, match="NMDA.tau_rise must be > 0"):
        jax.jit(lambda v: jsyn.simulate(jsyn.NMDA(tau_rise=v), x, 0.1)[1])(-1.0)
    with pytest.raises(Exception, match="BioNMDA.T_dur must be >= 0"):
        jax.jit(lambda v: jsyn.simulate(jsyn.BioNMDA(T_dur=v), x, 0.1)[1])(-1.0)
