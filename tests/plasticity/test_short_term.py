"""Short-term plasticity (STD, STP): closed forms of docs/models.md, an independent NumPy loop
of its equations, composition with kinetic synapses, gradients, counts and errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from helpers import central_fd

# ----------------------------------------------------------------------------------------
# Independent references: the equations of docs/models.md, one spike at a time, in NumPy.


def reference_stp(spikes, dt, U, tau_f, tau_d):
    """Efficacy (T, n) and final (x, u) of STP; a count k is k spikes applied in turn."""
    spikes = np.asarray(spikes)
    T, n = spikes.shape
    U, tau_f, tau_d = (np.broadcast_to(np.asarray(p, float), (n,)) for p in (U, tau_f, tau_d))
    x, u = np.ones(n), np.zeros(n)
    eff = np.zeros((T, n))
    for t in range(T):
        x = 1.0 - (1.0 - x) * np.exp(-dt / tau_d)
        u = u * np.exp(-dt / tau_f)
        for i in range(n):
            for _ in range(int(round(spikes[t, i]))):
                u[i] = u[i] + U[i] * (1.0 - u[i])
                r = u[i] * x[i]
                x[i] = x[i] - r
                eff[t, i] += r
    return eff, x, u


def reference_std(spikes, dt, tau, U):
    spikes = np.asarray(spikes)
    T, n = spikes.shape
    U, tau = (np.broadcast_to(np.asarray(p, float), (n,)) for p in (U, tau))
    x = np.ones(n)
    eff = np.zeros((T, n))
    for t in range(T):
        x = 1.0 - (1.0 - x) * np.exp(-dt / tau)
        for i in range(n):
            for _ in range(int(round(spikes[t, i]))):
                r = U[i] * x[i]
                x[i] = x[i] - r
                eff[t, i] += r
    return eff, x


def events(n_steps=400, n=3, seed=0, rate=0.03, counts=False):
    """An irregular train on the grid: 0/1 events, or Poisson counts (0, 1, 2, ...)."""
    rng = np.random.default_rng(seed)
    if counts:
        return rng.poisson(rate, size=(n_steps, n)).astype(float)
    return (rng.random((n_steps, n)) < rate).astype(float)


def periodic(n_spikes, every, n=1):
    x = np.zeros((n_spikes * every, n))
    x[every - 1 :: every] = 1.0
    return x


def steady_state(U, tau_f, tau_d, interval):
    """docs/models.md: u* just after the facilitation jump, x* just before the release."""
    u = U / (1 - (1 - U) * np.exp(-interval / tau_f))
    x = (1 - np.exp(-interval / tau_d)) / (1 - (1 - u) * np.exp(-interval / tau_d))
    return u, x


# ----------------------------------------------------------------------------------------
# Closed forms.


def test_steady_state_closed_form_is_the_fixed_point_of_one_period():
    """Derivation: with u_n^+ the value after the n-th jump and x_n^- the value just before
    the n-th release, one period maps u^+ -> U + (1 - U) u^+ e^{-D/tau_f} and
    x^- -> 1 - (1 - (1 - u^+) x^-) e^{-D/tau_d}; docs/models.md's (u*, x*) is its fixed point."""
    U, tau_f, tau_d, D = 0.15, 1500.0, 200.0, 50.0
    u, x = steady_state(U, tau_f, tau_d, D)
    np.testing.assert_allclose(U + (1 - U) * u * np.exp(-D / tau_f), u, rtol=1e-14)
    np.testing.assert_allclose(1 - (1 - (1 - u) * x) * np.exp(-D / tau_d), x, rtol=1e-14)
    # It is not the fixed point with the pre-jump u (the other possible reading).
    u_pre = u * np.exp(-D / tau_f)
    assert abs(1 - (1 - (1 - u_pre) * x) * np.exp(-D / tau_d) - x) > 1e-3


@pytest.mark.parametrize(
    "U,tau_f,tau_d,interval",
    [
        (0.15, 1500.0, 200.0, 50.0),  # facilitating set, 20 Hz
        (0.15, 1500.0, 200.0, 25.0),  # 40 Hz
        (0.15, 1500.0, 200.0, 200.0),  # 5 Hz
        (0.5, 50.0, 800.0, 100.0),  # depressing set, 10 Hz
        (0.03, 600.0, 50.0, 25.0),  # weak, strongly facilitating
        (1.0, 100.0, 300.0, 40.0),  # U = 1: every spike releases all of x
    ],
)
def test_stp_periodic_steady_state(U, tau_f, tau_d, interval):
    every = 8
    x = periodic(n_spikes=700, every=every)
    final, r = jsyn.simulate(
        jsyn.STP(U=U, tau_f=tau_f, tau_d=tau_d), jnp.asarray(x), interval / every
    )
    u_star, x_star = steady_state(U, tau_f, tau_d, interval)
    late = np.asarray(r)[every - 1 :: every, 0][-5:]  # the last five spikes
    np.testing.assert_allclose(late, u_star * x_star, rtol=1e-10)
    # After the last spike: u is u* (the post-jump value), x is x* less the release.
    np.testing.assert_allclose(final.u, u_star, rtol=1e-10)
    np.testing.assert_allclose(final.x, x_star * (1 - u_star), rtol=1e-10, atol=1e-14)
    # The closed form is not a coincidence of the first spikes.
    assert abs(float(r[every - 1, 0]) - u_star * x_star) > 1e-3


@pytest.mark.parametrize(
    "tau,U,interval",
    [(200.0, 0.07, 10.0), (200.0, 0.5, 50.0), (30.0, 0.3, 100.0), (50.0, 1.0, 20.0)],
)
def test_std_periodic_steady_state_is_the_fixed_u_limit(tau, U, interval):
    every = 5
    x = periodic(n_spikes=800, every=every)
    final, r = jsyn.simulate(jsyn.STD(tau=tau, U=U), jnp.asarray(x), interval / every)
    e = np.exp(-interval / tau)
    x_star = (1 - e) / (1 - (1 - U) * e)  # docs/models.md with u* = U
    np.testing.assert_allclose(np.asarray(r)[every - 1 :: every, 0][-5:], U * x_star, rtol=1e-10)
    np.testing.assert_allclose(final.x, x_star * (1 - U), rtol=1e-10, atol=1e-14)


def test_std_is_stp_in_the_limit_of_fast_facilitation_decay():
    spikes = jnp.asarray(events(n_steps=500, seed=1, rate=0.1))
    U = jnp.array([0.07, 0.4, 0.9])
    _, r_std = jsyn.simulate(jsyn.STD(tau=40.0, U=U), spikes, 0.5)
    _, r_stp = jsyn.simulate(jsyn.STP(U=U, tau_f=1e-3, tau_d=40.0), spikes, 0.5)
    np.testing.assert_allclose(r_stp, r_std, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "model",
    [jsyn.STP(U=0.23, tau_f=100.0, tau_d=50.0), jsyn.STD(tau=50.0, U=0.23)],
    ids=["STP", "STD"],
)
def test_first_spike_releases_U_and_silence_changes_nothing(model):
    state = model.init_state(4)
    np.testing.assert_array_equal(state.x, 1.0)
    for _ in range(3):  # silent steps: the rested state stays, no efficacy
        state, r = model.step(state, jnp.zeros(4), 0.7)
        np.testing.assert_array_equal(r, 0.0)
        np.testing.assert_array_equal(state.x, 1.0)
    state, r = model.step(state, jnp.array([1.0, 0.0, 1.0, 0.0]), 0.7)
    np.testing.assert_allclose(r, [0.23, 0.0, 0.23, 0.0], rtol=1e-15)
    np.testing.assert_allclose(state.x, [0.77, 1.0, 0.77, 1.0], rtol=1e-15)
    if isinstance(model, jsyn.STP):
        np.testing.assert_array_equal(jsyn.STP().init_state(2).u, 0.0)
        np.testing.assert_allclose(state.u, [0.23, 0.0, 0.23, 0.0], rtol=1e-15)


def test_recovery_is_exact_between_spikes():
    stp = jsyn.STP(U=0.4, tau_f=120.0, tau_d=300.0)
    dt, burst = 0.5, 10  # 10 spikes at 200 Hz, then 1 s of silence
    x = np.zeros((burst * 10 + 2000, 1))
    x[: burst * 10 : 10] = 1.0
    _, states = jsyn.simulate(stp, jnp.asarray(x), dt, record=lambda s, r: s)
    last = burst * 10 - 10
    x0, u0 = float(states.x[last, 0]), float(states.u[last, 0])
    assert x0 < 0.3 and u0 > 0.6  # well depleted and facilitated
    t = (np.arange(last, x.shape[0]) - last) * dt
    np.testing.assert_allclose(states.x[last:, 0], 1 - (1 - x0) * np.exp(-t / 300.0), rtol=1e-12)
    np.testing.assert_allclose(states.u[last:, 0], u0 * np.exp(-t / 120.0), rtol=1e-12)

    std = jsyn.STD(tau=80.0, U=0.6)
    _, states = jsyn.simulate(std, jnp.asarray(x), dt, record=lambda s, r: s)
    x0 = float(states.x[last, 0])
    np.testing.assert_allclose(states.x[last:, 0], 1 - (1 - x0) * np.exp(-t / 80.0), rtol=1e-12)


def test_facilitation_and_depression_along_a_20_hz_train():
    x = jnp.asarray(periodic(n_spikes=10, every=50))  # dt = 1 ms: 20 Hz
    _, r = jsyn.simulate(jsyn.STP(U=0.15, tau_f=1500.0, tau_d=200.0), x, 1.0)
    fac = np.asarray(r)[49::50, 0]
    np.testing.assert_allclose(fac[0], 0.15, rtol=1e-14)
    assert fac[1] > fac[0] and fac[2] > fac[1]  # facilitation wins early
    assert fac[2] > 1.7 * fac[0] and np.all(fac[1:] > 1.3 * fac[0])
    _, r = jsyn.simulate(jsyn.STD(tau=200.0, U=0.5), x, 1.0)
    dep = np.asarray(r)[49::50, 0]
    np.testing.assert_allclose(dep[0], 0.5, rtol=1e-14)
    assert np.all(np.diff(dep) < 0) and dep[-1] < 0.4 * dep[0]


# ----------------------------------------------------------------------------------------
# Against the NumPy loop, alone and driving kinetic synapses.


@pytest.mark.parametrize("counts", [False, True], ids=["events", "counts"])
def test_matches_the_numpy_loop_on_an_irregular_train(counts):
    spikes = events(n_steps=600, seed=2, rate=0.06, counts=counts)
    if counts:
        assert spikes.max() >= 2  # the train does exercise counts
    U, tau_f, tau_d = np.array([0.1, 0.35, 0.8]), np.array([40.0, 300.0, 900.0]), 60.0
    final, r = jsyn.simulate(jsyn.STP(U=U, tau_f=tau_f, tau_d=tau_d), jnp.asarray(spikes), 0.4)
    eff, x, u = reference_stp(spikes, 0.4, U, tau_f, tau_d)
    np.testing.assert_allclose(r, eff, rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(final.x, x, rtol=1e-11)
    np.testing.assert_allclose(final.u, u, rtol=1e-11)
    final, r = jsyn.simulate(jsyn.STD(tau=tau_f, U=U), jnp.asarray(spikes), 0.4)
    eff, x = reference_std(spikes, 0.4, tau_f, U)
    np.testing.assert_allclose(r, eff, rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(final.x, x, rtol=1e-11)


class WithPlasticity(eqx.Module):
    """Pre-side short-term plasticity feeding a kinetic synapse: drive = w * efficacy."""

    stp: jsyn.AbstractShortTermPlasticity
    syn: jsyn.AbstractSynapse
    w: jax.Array

    def init_state(self, n, *, dtype=None):
        return self.stp.init_state(n, dtype=dtype), self.syn.init_state(n, dtype=dtype)

    def step(self, state, spikes, dt):
        pre, post = state
        pre, r = self.stp.step(pre, spikes, dt)
        post, g = self.syn.step(post, self.w * r, dt)
        return (pre, post), g


def dual_expon_kernel(t, tau_rise, tau_decay):
    t_peak = tau_rise * tau_decay / (tau_decay - tau_rise) * np.log(tau_decay / tau_rise)
    peak = np.exp(-t_peak / tau_decay) - np.exp(-t_peak / tau_rise)
    return (np.exp(-t / tau_decay) - np.exp(-t / tau_rise)) / peak


COMPOSITION = dict(dt=0.25, U=0.2, tau_f=150.0, tau_d=80.0, w=np.array([0.5, 1.0, 2.0]))


def test_stp_driving_expon_and_dual_expon_matches_numpy():
    c = COMPOSITION
    spikes = events(n_steps=800, seed=3, rate=0.02)
    stp = jsyn.STP(U=c["U"], tau_f=c["tau_f"], tau_d=c["tau_d"])
    eff, _, _ = reference_stp(spikes, c["dt"], c["U"], c["tau_f"], c["tau_d"])
    drive = c["w"] * eff

    # Expon: g_n = g_{n-1} e^{-dt/tau} + w r_n.
    g_ref, g = np.zeros((800, 3)), np.zeros(3)
    for t in range(800):
        g = g * np.exp(-c["dt"] / 6.0) + drive[t]
        g_ref[t] = g
    model = WithPlasticity(stp, jsyn.Expon(tau=6.0), jnp.asarray(c["w"]))
    _, out = jsyn.simulate(model, jnp.asarray(spikes), c["dt"])
    np.testing.assert_allclose(out, g_ref, rtol=1e-10, atol=1e-13)

    # DualExpon: the superposition of unit-peak kernels scaled by w r.
    lags = (np.arange(800)[:, None] - np.arange(800)[None, :]) * c["dt"]
    kern = np.where(lags >= 0, dual_expon_kernel(np.maximum(lags, 0), 1.5, 7.0), 0.0)
    model = WithPlasticity(stp, jsyn.DualExpon(1.5, 7.0), jnp.asarray(c["w"]))
    _, out = jsyn.simulate(model, jnp.asarray(spikes), c["dt"])
    np.testing.assert_allclose(out, kern @ drive, rtol=1e-9, atol=1e-12)

    # The same with two simulate calls: efficacies first, then the synapse.
    _, r = jsyn.simulate(stp, jnp.asarray(spikes), c["dt"])
    _, out2 = jsyn.simulate(jsyn.DualExpon(1.5, 7.0), jnp.asarray(c["w"])[None] * r, c["dt"])
    np.testing.assert_allclose(out2, out, rtol=1e-12, atol=1e-15)


# ----------------------------------------------------------------------------------------
# Gradients (float64, central finite differences).


def _weights(shape):
    return jnp.linspace(0.5, 1.5, int(np.prod(shape))).reshape(shape)


def _check_grads(loss, values):
    grads = jax.grad(loss)(values)
    for name, v in values.items():
        fd = central_fd(
            lambda e, name=name: loss({**values, name: values[name] + e}), 0.0, 1e-6 * v
        )
        assert np.isfinite(grads[name])
        np.testing.assert_allclose(grads[name], fd, rtol=1e-5, err_msg=name)


@pytest.mark.slow  # 6 s in the default lane (2 workers, 2 cores)
def test_stp_and_std_gradients_match_finite_differences():
    spikes = jnp.asarray(events(n_steps=500, seed=4, rate=0.04, counts=True))

    def stp_loss(p):
        _, r = jsyn.simulate(jsyn.STP(U=p["U"], tau_f=p["tau_f"], tau_d=p["tau_d"]), spikes, 0.5)
        return jnp.sum(_weights(r.shape) * r)

    def std_loss(p):
        _, r = jsyn.simulate(jsyn.STD(tau=p["tau"], U=p["U"]), spikes, 0.5)
        return jnp.sum(_weights(r.shape) * r)

    _check_grads(stp_loss, {"U": 0.2, "tau_f": 300.0, "tau_d": 150.0})
    _check_grads(std_loss, {"tau": 120.0, "U": 0.3})


@pytest.mark.slow  # 8 s in the default lane (2 workers, 2 cores)
def test_gradients_through_the_composition():
    c = COMPOSITION
    spikes = jnp.asarray(events(n_steps=600, seed=5, rate=0.03))

    def loss(p):
        stp = jsyn.STP(U=p["U"], tau_f=p["tau_f"], tau_d=p["tau_d"])
        syn = jsyn.DualExpon(tau_rise=p["tau_rise"], tau_decay=p["tau_decay"])
        _, g = jsyn.simulate(
            WithPlasticity(stp, syn, p["w"] * jnp.asarray(c["w"])), spikes, c["dt"]
        )
        return jnp.sum(_weights(g.shape) * g)

    values = {"U": 0.2, "tau_f": 150.0, "tau_d": 80.0, "tau_rise": 1.5, "tau_decay": 7.0}
    _check_grads(loss, {**values, "w": 1.0})

    def std_loss(p):
        syn = jsyn.Expon(tau=p["tau_syn"])
        model = WithPlasticity(jsyn.STD(tau=p["tau"], U=p["U"]), syn, jnp.asarray(c["w"]))
        _, g = jsyn.simulate(model, spikes, c["dt"])
        return jnp.sum(_weights(g.shape) * g)

    _check_grads(std_loss, {"tau": 90.0, "U": 0.4, "tau_syn": 5.0})


def test_gradients_at_U_equal_one_are_finite():
    spikes = jnp.asarray(events(n_steps=300, seed=6, rate=0.05))
    for make in (lambda U: jsyn.STD(tau=50.0, U=U), lambda U: jsyn.STP(U=U, tau_d=50.0)):
        grad = jax.grad(lambda U, make=make: jnp.sum(jsyn.simulate(make(U), spikes, 0.5)[1]))(1.0)
        assert np.isfinite(grad) and grad > 0  # one-sided: a smaller U releases less
        _, r = jsyn.simulate(make(1.0), spikes, 0.5)
        assert np.all(np.isfinite(r))


# ----------------------------------------------------------------------------------------
# Per-synapse parameters, constrained parametrisations, dt.


def test_per_synapse_parameters_equal_separate_runs():
    spikes = jnp.asarray(events(n_steps=400, n=3, seed=7, rate=0.05))
    U, tau_f, tau_d = jnp.array([0.05, 0.3, 0.9]), jnp.array([20.0, 300.0, 1500.0]), 50.0
    _, r = jsyn.simulate(jsyn.STP(U=U, tau_f=tau_f, tau_d=tau_d), spikes, 0.5)
    _, r_std = jsyn.simulate(jsyn.STD(tau=tau_f, U=U), spikes, 0.5)
    for i in range(3):
        _, ri = jsyn.simulate(
            jsyn.STP(U=U[i], tau_f=tau_f[i], tau_d=tau_d), spikes[:, i : i + 1], 0.5
        )
        np.testing.assert_allclose(r[:, i], ri[:, 0], rtol=1e-14)
        _, ri = jsyn.simulate(jsyn.STD(tau=tau_f[i], U=U[i]), spikes[:, i : i + 1], 0.5)
        np.testing.assert_allclose(r_std[:, i], ri[:, 0], rtol=1e-14)
    # A (2, 3) population takes (3,) parameters along its last axis.
    two = jnp.stack([spikes, spikes[::-1]], axis=1)
    _, r2 = jsyn.simulate(jsyn.STP(U=U, tau_f=tau_f, tau_d=tau_d), two, 0.5)
    np.testing.assert_allclose(r2[:, 0], r, rtol=1e-14)


@pytest.mark.slow  # 5 s in the default lane (2 workers, 2 cores)
def test_constrained_parametrisations_give_the_same_run_and_raw_gradients():
    spikes = jnp.asarray(events(n_steps=300, seed=8, rate=0.05))
    plain = jsyn.STP(U=jnp.array([0.2, 0.5, 0.7]), tau_f=300.0, tau_d=100.0)
    wrapped = jsyn.STP(
        U=jsyn.Bounded(jnp.array([0.2, 0.5, 0.7])),
        tau_f=jsyn.LogPositive(300.0),
        tau_d=jsyn.LogPositive(100.0),
    )
    _, r1 = jsyn.simulate(plain, spikes, 0.5)
    _, r2 = jsyn.simulate(wrapped, spikes, 0.5)
    np.testing.assert_allclose(r2, r1, rtol=1e-12)
    grads = eqx.filter_grad(lambda m: jnp.sum(jsyn.simulate(m, spikes, 0.5)[1]))(wrapped)
    for g in (grads.U.raw, grads.tau_f.raw, grads.tau_d.raw):
        assert np.all(np.isfinite(g)) and np.all(g != 0)


@pytest.mark.parametrize(
    "model",
    [jsyn.STP(U=0.25, tau_f=60.0, tau_d=30.0), jsyn.STD(tau=30.0, U=0.25)],
    ids=["STP", "STD"],
)
def test_grid_values_do_not_depend_on_dt(model):
    coarse = events(n_steps=300, n=2, seed=9, rate=0.1, counts=True)
    runs = []
    for k in (1, 2, 4):
        fine = np.zeros((300 * k, 2))
        fine[k - 1 :: k] = coarse  # spikes at the same times t = (i + 1) * 1.0 ms
        _, rec = jsyn.simulate(model, jnp.asarray(fine), 1.0 / k, record=lambda s, r: (s, r))
        runs.append(jax.tree.map(lambda a, k=k: np.asarray(a)[k - 1 :: k], rec))
    for other in runs[1:]:
        for a, b in zip(jax.tree.leaves(other), jax.tree.leaves(runs[0])):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-15)


def test_float32_run_keeps_its_digits():
    spikes = events(n_steps=400, seed=10, rate=0.05, counts=True)
    model = jsyn.STP(U=0.01, tau_f=500.0, tau_d=100.0)
    _, r32 = jsyn.simulate(model, jnp.asarray(spikes, jnp.float32), 0.5)
    _, r64 = jsyn.simulate(model, jnp.asarray(spikes), 0.5)
    assert r32.dtype == jnp.float32
    # The float32 error (~3e-6 here) is that of a float32 loop of the plain equations:
    # it comes from the recovery of x near 1, not from the closed form of the spikes.
    np.testing.assert_allclose(r32, r64, rtol=1e-5, atol=1e-9)


# ----------------------------------------------------------------------------------------
# Counts other than 0/1.

MODELS = {
    "STP": jsyn.STP(U=0.3, tau_f=80.0, tau_d=40.0),
    "STD": jsyn.STD(tau=40.0, U=0.3),
}


def _primed(model):
    """A state away from rest: after a few spikes."""
    state = model.init_state(1)
    for _ in range(3):
        state, _ = model.step(state, jnp.ones(1), 7.0)
    return state


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("k", [2, 3, 5])
def test_a_count_of_k_is_k_spikes_at_one_instant(name, k):
    model = MODELS[name]
    state = _primed(model)
    together, r = model.step(state, jnp.full(1, float(k)), 3.0)
    one_by_one, total = model.step(state, jnp.ones(1), 3.0)
    for _ in range(k - 1):  # the next spikes of the same instant: no recovery between
        one_by_one, r1 = model.step(one_by_one, jnp.ones(1), 0.0)
        total = total + r1
    np.testing.assert_allclose(r, total, rtol=1e-13)
    assert jax.tree.all(
        jax.tree.map(lambda a, b: np.allclose(a, b, rtol=1e-13), together, one_by_one)
    )


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.slow  # 7 s in the default lane (2 workers, 2 cores)
def test_fractional_counts_interpolate_smoothly(name):
    model = MODELS[name]
    state = _primed(model)

    def release(k):
        return model.step(state, jnp.reshape(k, (1,)), 3.0)[1][0]

    ks = jnp.linspace(0.0, 4.0, 401)
    rs = jax.vmap(release)(ks)
    assert rs[0] == 0.0 and np.all(np.diff(rs) > 0)  # more spikes release more
    x_before = float(model.step(state, jnp.zeros(1), 3.0)[0].x[0])
    assert rs[-1] < x_before  # never more than is available
    for k in (0.0, 0.3, 1.0, 2.5):
        np.testing.assert_allclose(
            jax.grad(release)(jnp.asarray(k)), central_fd(release, k, 1e-6), rtol=1e-6
        )
    np.testing.assert_allclose(release(1.0 + 1e-9), release(1.0), rtol=1e-7)
    np.testing.assert_allclose(release(1.0 - 1e-9), release(1.0), rtol=1e-7)


# ----------------------------------------------------------------------------------------
# Errors.


def test_bad_parameters_are_caught_at_construction():
    with pytest.raises(ValueError, match=r"STP.U must be in \(0, 1\] \(got 0.0\).*jsyn.Bounded"):
        jsyn.STP(U=0.0)
    with pytest.raises(ValueError, match=r"STD.U must be in \(0, 1\] \(got 1.5\).*jsyn.Bounded"):
        jsyn.STD(U=1.5)
    with pytest.raises(ValueError, match=r"STD.tau must be > 0 \(got -1.0\).*LogPositive"):
        jsyn.STD(tau=-1.0)
    with pytest.raises(ValueError, match=r"STP.tau_d must be > 0 \(got 0.0\)"):
        jsyn.STP(tau_d=0.0)
    with pytest.raises(ValueError, match=r"STP.tau_f must be > 0.*index \(1,\)"):
        jsyn.STP(tau_f=jnp.array([10.0, -5.0]))
    jsyn.STP(U=1.0)  # the upper bound is allowed


def test_bad_parameters_are_caught_under_jit_and_vmap():
    spikes = jnp.asarray(events(n_steps=50))
    run = jax.jit(lambda U: jsyn.simulate(jsyn.STP(U=U), spikes, 0.1)[1])
    with pytest.raises(Exception, match=r"STP.U must be in \(0, 1\]"):
        run(1.5).block_until_ready()
    run(0.5).block_until_ready()
    taus = jnp.array([10.0, -1.0])
    with pytest.raises(Exception, match="STD.tau must be > 0"):
        jax.vmap(lambda t: jsyn.simulate(jsyn.STD(tau=t), spikes, 0.1)[1])(taus)


@pytest.mark.parametrize("model", [jsyn.STD(), jsyn.STP()], ids=lambda m: type(m).__name__)
def test_negative_spike_counts_are_refused(model):
    """A count below 0 has no meaning (STD released r = -31 for a count of -5)."""
    owner = type(model).__name__
    spikes = jnp.asarray(events(n_steps=50)).at[7, 1].set(-5.0)

    def run(x):
        return jsyn.simulate(model, x, 0.1)[1]

    match = f"the inputs of {owner} are spike counts and must be >= 0"
    with pytest.raises(ValueError, match=match + r" \(got time step=7.*r \* w"):
        run(spikes)
    with pytest.raises(Exception, match=match):
        jax.jit(run)(spikes).block_until_ready()
    with pytest.raises(Exception, match=match):
        jax.vmap(run)(jnp.stack([spikes.at[7, 1].set(0.0), spikes])).block_until_ready()
    with pytest.raises(ValueError, match=match + r" \(got time step=7"):
        jax.grad(lambda x: run(x).sum())(spikes)
    run(spikes.at[7, 1].set(0.0))


KINETIC_MODELS = [
    jsyn.Expon(tau=6.0),
    jsyn.Alpha(tau_decay=4.0),
    jsyn.DualExpon(1.5, 7.0),
    jsyn.DualExponV2(1.5, 7.0),
    jsyn.AMPA(T_dur=0.37),
    jsyn.GABAa(T_dur=0.83),
    jsyn.NMDA(),
    jsyn.BioNMDA(T_dur=0.37),
    jsyn.GABAb(Kd=1.0, T_dur=0.87),
]


@pytest.mark.parametrize("syn", KINETIC_MODELS, ids=lambda s: type(s).__name__)
@pytest.mark.slow  # 42 s in the default lane (2 workers, 2 cores, load 3-4)
def test_stp_composes_with_every_kinetic_model(syn):
    """The efficacy scales the drive of any synapse: the composed run equals the synapse
    run on `w * r`, and the gradient w.r.t. U flows through it (central differences)."""
    spikes = jnp.asarray(events(n_steps=400, seed=8, rate=0.03))
    w = jnp.asarray([0.3, 0.6, 0.9])

    def composed(U):
        model = WithPlasticity(jsyn.STP(U=U, tau_f=150.0, tau_d=80.0), syn, w)
        return jsyn.simulate(model, spikes, 0.25)[1]

    _, r = jsyn.simulate(jsyn.STP(U=0.2, tau_f=150.0, tau_d=80.0), spikes, 0.25)
    _, alone = jsyn.simulate(syn, w[None] * r, 0.25)
    np.testing.assert_allclose(composed(0.2), alone, rtol=1e-12, atol=1e-15)
    assert float(jnp.max(alone)) > 0.0

    def loss(U):
        return jnp.sum(_weights((400, 3)) * composed(U))

    grad = jax.grad(loss)(0.2)
    assert grad != 0.0
    np.testing.assert_allclose(grad, central_fd(loss, 0.2, 1e-6), rtol=1e-5)
