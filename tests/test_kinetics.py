"""The exact-step helpers of `jsyn._kinetics` against 100-digit decimal arithmetic.

The reference is Python's `decimal` (correctly rounded `exp` and `ln`) evaluating the plain
closed forms, whose cancellations 100 digits absorb; derivatives are decimal central
differences with a step of 1e-30. Inputs are the float32/float64 numbers themselves, so
any error measured is the helper's own.
"""

import decimal
import functools
import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import jsyn
from jsyn import _kinetics as kin

DTYPES = [jnp.float32, jnp.float64]


@pytest.fixture(autouse=True)
def hundred_digits():
    with decimal.localcontext(prec=100):
        yield


def dec(x):
    """The float `x` as a Decimal, exactly."""
    return decimal.Decimal(float(x))


def ref_exprel(z):
    return decimal.Decimal(1) if z == 0 else (z.exp() - 1) / z


def ref_log1p_rel(u):
    return decimal.Decimal(1) if u == 0 else (1 + u).ln() / u


def ref_phi2(z):
    return decimal.Decimal(1) / 2 if z == 0 else (z.exp() - 1 - z) / (z * z)


def ref_cascade(dt, tau1, tau2):
    """(e^{-dt/tau2} - e^{-dt/tau1}) / (1/tau1 - 1/tau2), or dt e^{-dt/tau} at a tie."""
    if tau1 == tau2:
        return dt * (-dt / tau1).exp()
    return ((-dt / tau2).exp() - (-dt / tau1).exp()) / (1 / tau1 - 1 / tau2)


def ref_derivative(f, args, i, h=decimal.Decimal("1e-30")):
    """Central difference of `f` in its argument `i`, in 200-digit arithmetic (the step and
    the cancellations of the closed forms at 0 +- h each cost 60 digits)."""
    with decimal.localcontext(prec=200):
        up, down = list(args), list(args)
        up[i] += h
        down[i] -= h
        return (f(*up) - f(*down)) / (2 * h)


def ulp_error(value, reference, dtype):
    """|value - reference| in units of eps relative to |reference|."""
    reference = float(reference)
    return abs(float(value) - reference) / abs(reference) / float(jnp.finfo(dtype).eps)


def sweep(lowest=-1.0):
    """Arguments of the special functions: both signs over 13 decades, ties at the series
    switches, and 0."""
    mags = np.logspace(-12, 1.5, 160)
    switch = [0.5, 1.0]
    near = [s * (1 + d) for s in switch for d in (-1e-7, 0.0, 1e-7)]
    values = np.concatenate([-mags, mags, -np.asarray(near), near, [0.0]])
    return values[values > lowest]


SPECIAL = {
    "exprel": (kin.exprel, ref_exprel, -np.inf),
    "phi2": (kin.phi2, ref_phi2, -np.inf),
    "log1p_rel": (kin.log1p_rel, ref_log1p_rel, -0.999),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", SPECIAL)
def test_special_functions_and_derivatives_to_float_precision(name, dtype):
    """Values within 4 ulp and derivatives within 16 ulp of the decimal reference, on
    both sides of the series switch and far from it (XLA's own float64 `log1p` is off by
    up to 120 ulp near -0.4, so `log1p_rel` must not rest on it)."""
    f, ref, lowest = SPECIAL[name]
    z = np.asarray(sweep(lowest), dtype)
    values = jax.jit(f)(jnp.asarray(z))
    grads = jax.jit(jax.vmap(jax.grad(f)))(jnp.asarray(z))
    for zi, v, g in zip(z, values, grads):
        d = dec(zi)
        assert ulp_error(v, ref(d), dtype) <= 4, (name, zi, v)
        assert ulp_error(g, ref_derivative(ref, [d], 0), dtype) <= 16, (name, zi, g)


TAUS = [1e-3, 0.01, 0.3, 1.0, 5.0, 5.000001, 5.0 * (1 + 1e-12), 7.0, 100.0, 1e4]
STEPS = [1e-4, 0.1, 1.0, 10.0]


def check_cascade(dt, tau1, tau2, dtype):
    """Both forms of the cascade kernel against the decimal reference: relative error
    within 3 eps (1 + dt/tau_slow), the conditioning of e^{-dt/tau} for inputs rounded to
    the dtype; values below the dtype's smallest normal number may flush to zero."""
    dt, tau1, tau2 = (jnp.asarray(v, dtype) for v in (dt, tau1, tau2))
    reference = ref_cascade(dec(dt), dec(tau1), dec(tau2))
    values = [kin.cascade(dt, tau1, tau2), kin.cascade_rate(dt, 1 / tau1, 1 / tau2)]
    eps, tiny = float(jnp.finfo(dtype).eps), float(jnp.finfo(dtype).tiny)
    # cascade_rate also rounds the rates 1/tau: one more eps on each exponent.
    for value, extra in zip(values, (0.0, 1.0)):
        assert np.isfinite(value)
        if float(reference) < tiny:
            assert abs(float(value)) < 2 * tiny
            continue
        bound = 3 * eps * (1 + (1 + extra) * float(dt) / float(jnp.maximum(tau1, tau2)))
        assert abs(float(value) - float(reference)) <= bound * float(reference), (
            dt,
            tau1,
            tau2,
            value,
        )


@pytest.mark.parametrize("dtype", DTYPES)
def test_cascade_to_float_precision_on_a_grid(dtype):
    """Every pair of time constants, either order, ties and near-ties, from dt/tau = 1e-8
    to 1e4 (where the old form overflowed: e^{+99.8} in float32 for tau = 5, 0.01 at
    dt = 1)."""
    for tau1, tau2, dt in itertools.product(TAUS, TAUS, STEPS):
        check_cascade(dt, tau1, tau2, dtype)


log_floats = st.floats(-3.0, 4.0).map(lambda e: 10.0**e)


@settings(max_examples=60, deadline=None)
@given(
    tau1=log_floats,
    ratio=st.one_of(st.just(1.0), st.floats(1 - 1e-5, 1 + 1e-5), st.floats(1e-3, 1e3)),
    dt=st.floats(-4.0, 2.0).map(lambda e: 10.0**e),
    dtype=st.sampled_from(DTYPES),
)
def test_cascade_to_float_precision_anywhere(tau1, ratio, dt, dtype):
    check_cascade(dt, tau1, tau1 * ratio, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cascade_gradients_match_decimal_central_differences(dtype):
    """d/d(dt), d/dtau_1, d/dtau_2 of `cascade` (and d/d(rates) of `cascade_rate`), across
    ties, near-ties and either order: each within 4 eps (1 + dt/tau_slow) of K/x, the
    largest over the arguments x (the scale of a relative sensitivity)."""
    eps = float(jnp.finfo(dtype).eps)
    grad = jax.jit(jax.grad(kin.cascade, argnums=(0, 1, 2)))
    grad_rate = jax.jit(jax.grad(kin.cascade_rate, argnums=(0, 1, 2)))
    for tau1, tau2, dt in itertools.product(TAUS[2:-1], TAUS[2:-1], STEPS[1:3]):
        args = [jnp.asarray(v, dtype) for v in (dt, tau1, tau2)]
        exact = [dec(a) for a in args]
        reference = ref_cascade(*exact)
        if float(reference) < 1e-30:
            continue
        scale = float(reference) / np.array([float(a) for a in args])  # |K| / |x|
        bound = 4 * eps * (1 + float(dt) / max(tau1, tau2))
        rates = [args[0], 1 / args[1], 1 / args[2]]
        exact_rates = [dec(r) for r in rates]

        def by_rates(dt, k1, k2):
            return ref_cascade(dt, 1 / k1, 1 / k2)

        rate_scale = float(reference) / np.array([float(r) for r in rates])
        for got, want, s in [
            (grad(*args), [ref_derivative(ref_cascade, exact, i) for i in range(3)], scale),
            (
                grad_rate(*rates),
                [ref_derivative(by_rates, exact_rates, i) for i in range(3)],
                rate_scale,
            ),
        ]:
            for i in range(3):
                assert np.isfinite(got[i])
                error = abs(float(got[i]) - float(want[i]))
                assert error <= bound * max(s), (dt, tau1, tau2, i, got[i], float(want[i]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_step_and_mean_never_overflow(dtype):
    """The relaxation helpers at rates x steps from 1e-8 to 1e8, with their gradients."""
    rate = jnp.asarray(np.logspace(-8, 8, 33), dtype)
    dt = jnp.asarray(1.0, dtype)

    def total(rate):
        x0, source = jnp.asarray(0.3, dtype), jnp.asarray(2.0, dtype)
        return jnp.sum(
            kin.linear_step(x0, rate, source, dt) + kin.linear_mean(x0, rate, source, dt)
        )

    assert np.isfinite(jax.jit(total)(rate))
    assert np.all(np.isfinite(jax.jit(jax.grad(total))(rate)))


# Every model built on these helpers, with per-synapse rates far above and far below 1/dt
# (dt = 1 ms), in the combinations that make a cascade's two rates differ by 1e7 either
# way, or meet.
F, S = 1e3, 1e-4
EXTREME_MODELS = {
    "Alpha": jsyn.Alpha(tau_decay=jnp.array([1 / F, 1 / S])),
    "DualExpon": jsyn.DualExpon(jnp.array([1 / F, 1 / S, 1 / F]), jnp.array([1 / S, 1 / F, 1 / F])),
    "DualExponV2": jsyn.DualExponV2(jnp.array([1 / F, 1 / F]), jnp.array([1 / S, 2 / F])),
    "NMDA": jsyn.NMDA(
        tau_rise=jnp.array([1 / F, 1 / S, 1 / F]),
        tau_decay=jnp.array([1 / F, 1 / F, 1 / S]),
        a=jnp.array([F, F, S]),
    ),
    "AMPA": jsyn.AMPA(alpha=jnp.array([F, S]), beta=jnp.array([F, S]), T_dur=0.37),
    "BioNMDA": jsyn.BioNMDA(
        alpha1=jnp.array([F, S, F]),
        beta1=jnp.array([F, F, S]),
        alpha2=jnp.array([F, F, S]),
        beta2=jnp.array([F, S, F]),
        T_dur=0.37,
    ),
    "GABAb": jsyn.GABAb(
        K1=jnp.array([F, F, S]),
        K2=jnp.array([F, S, S]),
        K4=jnp.array([F, F / 2, S]),
        K3=1.0,
        Kd=1.0,
        T_dur=0.37,
    ),
}


@eqx.filter_jit
@functools.partial(eqx.filter_grad, has_aux=True)
def weighted_output(model, x):
    _, g = jsyn.simulate(model, x, 1.0)
    return jnp.sum(g * jnp.linspace(0.5, 1.5, g.size, dtype=g.dtype).reshape(g.shape)), g


@pytest.mark.slow  # one compilation of a gradient per model (the DualExpon case is also
# covered, fast, by tests/synapses/test_exponential.py)
@pytest.mark.parametrize("name", EXTREME_MODELS)
def test_models_stay_finite_at_extreme_rates_in_float32(name):
    """Values and gradients w.r.t. every parameter stay finite in float32 with rates 1000
    times faster and 10000 times slower than the step (DualExpon once gave NaN there)."""
    model = EXTREME_MODELS[name]
    n = jnp.size(jax.tree.leaves(model)[0])
    x = jnp.zeros((30, n), jnp.float32).at[jnp.array([0, 3, 4, 20])].set(1.0)
    grads, g = weighted_output(model, x)
    assert g.dtype == jnp.float32 and np.all(np.isfinite(g))
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(grads))


# -- slow time constants in float32: the step's change keeps the time constant ------------

EPS32 = float(np.finfo(np.float32).eps)
SLOW = [10.0, 1e2, 1e3, 1e4, 1e5]  # tau / dt


@pytest.mark.parametrize("tau_over_dt", SLOW)
@pytest.mark.parametrize("name", ["decayed", "decayed_at_rate", "relax", "linear_step"])
def test_float32_decay_keeps_the_time_constant(name, tau_over_dt):
    """A decay or relaxation run in float32 for min(5 tau/dt, 20000) steps stays within
    3 eps sqrt(steps) of the same run in float64: the rounding of each step is not
    systematic. Advancing by the factor `exp(-dt/tau)` rounded to float32 drifts as
    eps * steps (up to 25 eps sqrt(steps), 4e-4 relative, at tau/dt = 1e4)."""
    steps = {
        "decayed": lambda x, dt, tau: kin.decayed(x, dt, tau),
        "decayed_at_rate": lambda x, dt, tau: kin.decayed_at_rate(x, 1.0 / tau, dt),
        "relax": lambda x, dt, tau: kin.relax(x, 0.25, dt, tau),
        "linear_step": lambda x, dt, tau: kin.linear_step(x, 1.0 / tau, 0.25 / tau, dt),
    }
    n = int(min(5 * tau_over_dt, 20000))

    def run(dtype):
        dt = jnp.asarray(np.float32(0.1), dtype)
        tau = jnp.asarray(np.float32(0.1 * tau_over_dt), dtype)

        def body(x, _):
            x = steps[name](x, dt, tau)
            return x, x

        return np.asarray(jax.lax.scan(body, jnp.asarray(1.0, dtype), None, length=n)[1])

    x32, x64 = run(jnp.float32).astype(np.float64), run(jnp.float64)
    target = 0.0 if name.startswith("decayed") else 0.25
    t_over_tau = np.arange(1, n + 1) * (
        float(np.float32(0.1)) / float(np.float32(0.1 * tau_over_dt))
    )
    exact = target + (1.0 - target) * np.exp(-t_over_tau)  # the closed form, float64
    # float64 itself: each step rounds once, so n steps drift by up to ~n eps
    np.testing.assert_allclose(x64, exact, rtol=4 * float(np.finfo(np.float64).eps) * n)
    error = np.max(np.abs(x32 - x64) / np.abs(x64))
    assert error <= 3 * EPS32 * np.sqrt(n), error


def _float32_error(model, spikes, dt):
    _, r32 = jsyn.simulate(model, jnp.asarray(spikes, jnp.float32), dt)
    _, r64 = jsyn.simulate(model, jnp.asarray(spikes, jnp.float64), dt)
    r32, r64 = np.asarray(r32, np.float64), np.asarray(r64)
    hit = np.abs(r64) > 1e-3 * np.abs(r64).max()
    return np.max(np.abs(r32[hit] - r64[hit]) / np.abs(r64[hit]))


@pytest.mark.parametrize(
    "model",
    [
        jsyn.STP(U=0.15, tau_f=1500.0, tau_d=200.0),
        jsyn.Expon(tau=1000.0),
        jsyn.Alpha(tau_decay=1000.0),
        jsyn.DualExpon(tau_rise=50.0, tau_decay=1000.0),
        jsyn.DualExponV2(tau_rise=50.0, tau_decay=1000.0),
        jsyn.NMDA(tau_rise=50.0, tau_decay=1000.0, a=0.01),
    ],
    ids=lambda m: type(m).__name__,
)
def test_float32_keeps_slow_time_constants_over_20000_steps(model):
    """Issue 19: STP with tau_f = 1500 ms at dt = 0.1 ms was off by 1.4e-4 in float32 (the
    factor exp(-dt/tau) rounded); a train of 5 spikes 4000 steps apart, then 4000 steps of
    silence, now stays within 2e-5 of float64 (a 20000-step accumulation of float32
    rounding, below 2e-4 / 10)."""
    spikes = np.zeros((20000, 1))
    spikes[:16001:4000] = 1.0
    assert _float32_error(model, spikes, 0.1) < 2e-5


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["decayed", "relax"])
def test_a_step_per_element_is_exact_in_both_regimes(name, dtype):
    """With `dt / tau` per element (refractory neurons, a time constant per neuron) the
    increment of `relax` is a series, alone while every element is slow, beside the factor
    when some are fast: both agree with the closed form (float64, on the host) to a few units in the
    last place, and with the same step taken one element at a time (scalar `dt / tau`)."""
    eps = float(np.finfo(dtype).eps)
    x, target = jnp.asarray(0.8, dtype), jnp.asarray(-0.3 if name == "relax" else 0.0, dtype)
    step = {
        "decayed": lambda dt, tau: kin.decayed(x, dt, tau),
        "relax": lambda dt, tau: kin.relax(x, target, dt, tau),
    }[name]
    slow = np.array([1e-6, 1e-3, 0.1, 0.3, 0.49])
    for ratios in (slow, np.concatenate([slow, [0.5, 0.9, 3.0, 30.0]])):
        dt = jnp.asarray(ratios, dtype)  # a step per element, tau = 1
        got = np.asarray(jax.jit(step)(dt, jnp.asarray(1.0, dtype)), np.float64)
        z = np.asarray(dt, np.float64)
        x64, t64 = float(x), float(target)
        exact = t64 + (x64 - t64) * np.exp(-z)
        np.testing.assert_allclose(got, exact, rtol=4 * eps, atol=0)
        one_by_one = [float(step(d, jnp.asarray(1.0, dtype))) for d in dt]
        np.testing.assert_allclose(got, one_by_one, rtol=2 * eps, atol=0)
