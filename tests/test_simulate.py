"""The simulator's contract and its errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jaxtyping
import numpy as np
import pytest

import jsyn
from helpers import spike_train


def test_default_records_outputs_and_returns_final_state():
    x = spike_train(n_steps=50, n=4)
    final, g = jsyn.simulate(jsyn.Expon(), x, 0.1)
    assert g.shape == (50, 4)
    assert isinstance(final, jsyn.ExponState)
    np.testing.assert_array_equal(final.g, g[-1])


def test_record_keeps_only_what_it_returns():
    x = spike_train(n_steps=50, n=4)
    _, rec = jsyn.simulate(jsyn.DualExpon(), x, 0.1, record=lambda s, g: {"h0": s.h[0]})
    assert rec["h0"].shape == (50,)
    _, full = jsyn.simulate(jsyn.DualExpon(), x, 0.1, record=lambda s, g: s.h)
    np.testing.assert_array_equal(rec["h0"], full[:, 0])


def test_state_is_inferred_from_the_input_shape_and_dtype():
    x = jnp.zeros((10, 2, 3), jnp.float32)
    final, g = jsyn.simulate(jsyn.Alpha(), x, 0.1)
    assert final.h.shape == (2, 3) and final.h.dtype == jnp.float32


def test_integer_spike_counts_are_accepted():
    counts = jnp.zeros((20, 2), jnp.int32).at[3, 1].set(2)
    _, g = jsyn.simulate(jsyn.Expon(tau=5.0), counts, 0.1)
    assert g[3, 1] == 2.0 and jnp.issubdtype(g.dtype, jnp.floating)


def test_pytree_inputs_reach_a_user_system():
    """simulate drives any module with the protocol, with pytree inputs."""

    class TwoChannels(eqx.Module):
        fast: jsyn.Expon
        slow: jsyn.Expon

        def init_state(self, n, *, dtype=None):
            return (self.fast.init_state(n, dtype=dtype), self.slow.init_state(n, dtype=dtype))

        def step(self, state, x, dt):
            a, ga = self.fast.step(state[0], x["ampa"], dt)
            b, gb = self.slow.step(state[1], x["nmda"], dt)
            return (a, b), ga + gb

    sys = TwoChannels(jsyn.Expon(tau=2.0), jsyn.Expon(tau=50.0))
    x = {"ampa": spike_train(n=2, seed=1), "nmda": spike_train(n=2, seed=2)}
    _, g = jsyn.simulate(sys, x, 0.1)
    _, g1 = jsyn.simulate(sys.fast, x["ampa"], 0.1)
    _, g2 = jsyn.simulate(sys.slow, x["nmda"], 0.1)
    np.testing.assert_allclose(g, g1 + g2, rtol=1e-12)


def test_grad_wrt_dt_like_any_parameter():
    """d/d(dt) of sum_n g_n, with g_n = sum_{k <= n} x_k e^{-(n - k) dt/tau} (Expon, tau = 8):
    sum_n sum_{k <= n} x_k (-(n - k)/tau) e^{-(n - k) dt/tau}, written out with NumPy."""
    x = spike_train(n_steps=80, n=1)
    grad = jax.grad(lambda dt: jsyn.simulate(jsyn.Expon(), x, dt)[1].sum())(jnp.asarray(0.1))
    lag = np.arange(80)[:, None] - np.arange(80)[None, :]  # n - k
    kernel = np.where(lag >= 0, -lag / 8.0 * np.exp(-np.maximum(lag, 0) * 0.1 / 8.0), 0.0)
    np.testing.assert_allclose(grad, np.sum(kernel @ np.asarray(x)), rtol=1e-12)


# -- errors: eager (the bad value is named), under jit and under vmap (named parameter) ---

BAD = [
    (lambda: jsyn.simulate(jsyn.Expon(), spike_train(), -0.1), "dt must be finite and > 0"),
    (lambda: jsyn.simulate(jsyn.Expon(), spike_train(), 0.0), "dt must be finite and > 0"),
    (
        lambda: jsyn.simulate(jsyn.Expon(), spike_train().at[7, 2].set(jnp.nan), 0.1),
        r"inputs must be finite.*time step=7",
    ),
    (
        lambda: jsyn.simulate(jsyn.Expon(), spike_train().at[9, 0].set(jnp.inf), 0.1),
        r"inputs must be finite.*time step=9",
    ),
]


@pytest.mark.parametrize("call,match", BAD)
def test_bad_input_is_named_eagerly(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def _bad_tau_model():
    # Built through tree_at so construction-time checks are bypassed: the simulate entry
    # must still catch it.
    return eqx.tree_at(lambda s: s.tau, jsyn.Expon(), jnp.asarray(-2.0))


def test_bad_parameter_is_caught_at_simulate_entry():
    with pytest.raises(ValueError, match=r"Expon.tau must be > 0 \(got -2.0\).*LogPositive"):
        jsyn.simulate(_bad_tau_model(), spike_train(), 0.1)


def test_bad_parameter_is_caught_at_construction():
    with pytest.raises(ValueError, match=r"Expon.tau must be > 0 \(got -1.0\)"):
        jsyn.Expon(tau=-1.0)
    with pytest.raises(ValueError, match=r"Alpha.tau_decay must be > 0 \(got 0.0\)"):
        jsyn.Alpha(tau_decay=0.0)
    with pytest.raises(ValueError, match=r"DualExpon.tau_rise must be > 0.*index \(1,\)"):
        jsyn.DualExpon(tau_rise=jnp.array([1.0, -1.0]))


def test_errors_under_jit():
    x = spike_train()
    run = jax.jit(lambda tau, dt, x: jsyn.simulate(jsyn.Expon(tau=tau), x, dt)[1])
    with pytest.raises(Exception, match="Expon.tau must be > 0"):
        run(-1.0, 0.1, x).block_until_ready()
    with pytest.raises(Exception, match="dt must be finite and > 0"):
        run(5.0, -0.1, x).block_until_ready()
    with pytest.raises(Exception, match="inputs must be finite"):
        run(5.0, 0.1, x.at[3, 0].set(jnp.nan)).block_until_ready()
    with pytest.raises(Exception, match="DualExponV2 needs tau_rise < tau_decay"):
        jax.jit(lambda t: jsyn.simulate(jsyn.DualExponV2(t, 5.0), x, 0.1)[1])(
            9.0
        ).block_until_ready()


def test_errors_under_vmap():
    x = spike_train()
    taus = jnp.array([5.0, -1.0, 3.0])
    with pytest.raises(Exception, match="Expon.tau must be > 0"):
        jax.vmap(lambda t: jsyn.simulate(jsyn.Expon(tau=t), x, 0.1)[1])(taus)
    trials = jnp.stack([x, x.at[5, 1].set(jnp.nan)])
    with pytest.raises(Exception, match="inputs must be finite"):
        jax.vmap(lambda x: jsyn.simulate(jsyn.Expon(), x, 0.1)[1])(trials)


def test_good_values_pass_under_jit_and_vmap():
    x = spike_train()
    taus = jnp.array([5.0, 1.0, 3.0])
    out = jax.jit(jax.vmap(lambda t: jsyn.simulate(jsyn.Expon(tau=t), x, 0.1)[1]))(taus)
    assert out.shape == (3,) + x.shape and np.all(np.isfinite(out))


def test_state_shape_mismatch_is_named():
    with pytest.raises(ValueError, match=r"state whose \.g has shape \(5,\).*need \(3,\)"):
        jsyn.simulate(jsyn.Expon(), spike_train(n=3), 0.1, state=jsyn.Expon().init_state(5))


def test_state_of_another_model_is_rejected():
    with pytest.raises(ValueError, match="does not match DualExpon"):
        jsyn.simulate(jsyn.DualExpon(), spike_train(), 0.1, state=jsyn.Expon().init_state(3))


def test_inputs_must_share_the_time_axis():
    x = {"a": jnp.zeros((10, 2)), "b": jnp.zeros((12, 2))}
    with pytest.raises(ValueError, match="share the time axis"):
        jsyn.simulate(jsyn.Expon(), x, 0.1, state=jsyn.Expon().init_state(2))


def test_sources_need_n_steps():
    with pytest.raises(ValueError, match="n_steps"):
        jsyn.simulate(jsyn.SpikeTimes([1.0]), None, 0.1)
    with pytest.raises(ValueError, match="n_steps=5 but inputs with 10"):
        jsyn.simulate(jsyn.Expon(), jnp.zeros((10, 1)), 0.1, n_steps=5)


def test_key_for_a_deterministic_model_is_refused(getkey):
    with pytest.raises(TypeError, match="deterministic"):
        jsyn.simulate(jsyn.Expon(), jnp.zeros((10, 1)), 0.1, key=getkey())


# -- half precision ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_half_precision_is_refused_naming_float32(dtype):
    x = spike_train(n_steps=20, n=2).astype(dtype)
    match = f"inputs dtype is {jnp.dtype(dtype).name}.*float32 or float64.*use float32"
    with pytest.raises(TypeError, match=match):
        jsyn.simulate(jsyn.Expon(tau=1000.0), x, 0.1)
    with pytest.raises(TypeError, match=match):
        jax.jit(lambda x: jsyn.simulate(jsyn.Expon(tau=1000.0), x, 0.1)[1])(x)
    state = jsyn.Expon().init_state(2)
    state = jax.tree.map(lambda a: a.astype(dtype), state)
    with pytest.raises(TypeError, match=r"state\.g dtype is .*use float32"):
        jsyn.simulate(jsyn.Expon(), x.astype(jnp.float32), 0.1, state=state)
    for system in (jsyn.Expon(), jsyn.STP(), jsyn.AMPA()):
        with pytest.raises(TypeError, match=r"init_state\(dtype=...\) is .*use float32"):
            system.init_state(3, dtype=dtype)
    with pytest.raises(TypeError, match="use float32"):
        jsyn.Poisson(jnp.full(2, 10.0)).init_state(dtype=dtype, key=jax.random.key(0))
    net = jsyn.Network({"c": (jsyn.LIF(), 2)})
    with pytest.raises(TypeError, match="use float32"):
        net.init_state(dtype=dtype)


def test_float32_still_runs():
    x = spike_train(n_steps=20, n=2).astype(jnp.float32)
    _, g = jsyn.simulate(jsyn.Expon(), x, 0.1)
    assert g.dtype == jnp.float32


# -- arguments that fix the run's length: integers, never truncated -------------------------

LENGTH_ERRORS = [
    (dict(inputs=None, n_steps=-1), ValueError, r"n_steps must be >= 1 \(got -1\)"),
    (dict(inputs=None, n_steps=0), ValueError, r"n_steps must be >= 1 \(got 0\)"),
    (dict(inputs=None, n_steps=2.5), TypeError, r"n_steps must be an integer \(got 2.5\)"),
    (dict(inputs=None, n_steps=10.0), TypeError, r"n_steps must be an integer \(got 10.0\)"),
    (dict(inputs=None), ValueError, "got no inputs: pass n_steps"),
    (dict(inputs=jnp.zeros((0, 2))), ValueError, "inputs with 0 time steps"),
    (dict(record_every=1.5), TypeError, r"record_every must be an integer \(got 1.5\)"),
    (dict(record_every="2"), TypeError, r"record_every must be an integer \(got '2'\)"),
    (dict(record_every=0), ValueError, r"record_every must be >= 1 \(got 0\)"),
    (dict(record_every=3), ValueError, "record_every >= 1 dividing the number of steps"),
]


@pytest.fixture
def untyped():
    """Run without the tests' jaxtyping/beartype checks of annotations, as a user does, so
    that jsyn's own checks of the arguments are what is tested."""
    jaxtyping.config.update("jaxtyping_disable", True)
    yield
    jaxtyping.config.update("jaxtyping_disable", False)


@pytest.mark.parametrize("kwargs,error,match", LENGTH_ERRORS)
def test_bad_run_length_is_a_clear_error(kwargs, error, match, untyped):
    kwargs = {"inputs": jnp.zeros((10, 2)), **kwargs}
    inputs = kwargs.pop("inputs")
    system = jsyn.Expon() if inputs is not None else jsyn.SpikeTimes([0.5], n=2)
    with pytest.raises(error, match=match):
        jsyn.simulate(system, inputs, 0.1, **kwargs)


def test_sizes_are_integers_never_truncated(untyped):
    with pytest.raises(TypeError, match=r"Network group 'c''s size must be an integer \(got 2.7\)"):
        jsyn.Network({"c": (jsyn.LIF(), 2.7)})
    with pytest.raises(ValueError, match=r"Network group 'c''s size must be >= 1 \(got -3\)"):
        jsyn.Network({"c": (jsyn.LIF(), -3)})
    with pytest.raises(TypeError, match=r"population size must be an integer \(got 2.7\)"):
        jsyn.Expon().init_state(2.7)
    assert jsyn.Network({"c": (jsyn.LIF(), np.int64(3))}).init_state().groups["c"].V.shape == (3,)


def test_numpy_integers_are_accepted_as_lengths(untyped):
    src = jsyn.SpikeTimes([0.5], n=2)
    _, s = jsyn.simulate(src, None, 0.1, n_steps=np.int64(10), record_every=np.int32(5))
    assert s.shape == (2, 2)


# -- record by name, and repeated runs that do not compile again ---------------------------


def test_record_by_name():
    x = spike_train(n_steps=30, n=3)
    syn = jsyn.DualExpon()
    final, out = jsyn.simulate(syn, x, 0.1)
    _, by_fn = jsyn.simulate(syn, x, 0.1, record=lambda s, o: s.h)
    _, h = jsyn.simulate(syn, x, 0.1, record="h")
    np.testing.assert_array_equal(h, by_fn)
    np.testing.assert_array_equal(jsyn.simulate(syn, x, 0.1, record="out")[1], out)
    states = jsyn.simulate(syn, x, 0.1, record="state")[1]
    assert isinstance(states, jsyn.DualExponState)
    np.testing.assert_array_equal(states.g[-1], final.g)
    both = jsyn.simulate(syn, x, 0.1, record=("g", "h"))[1]
    np.testing.assert_array_equal(both["g"], out)
    np.testing.assert_array_equal(both["h"], h)


def test_record_by_dotted_name_in_a_network():
    src = jsyn.SpikeTimes([1.0, 1.5], [0, 1], n=2)
    proj = jsyn.Projection(
        jsyn.Dense(jnp.full((2, 2), 3.0)), jsyn.Expon(), jsyn.CUBA(), pre="src", post="c"
    )
    net = jsyn.Network({"src": src, "c": (jsyn.LIF(), 2)}, {"p": proj})
    _, V = jsyn.simulate(net, None, 0.1, n_steps=40, record="groups.c.V")
    _, ref = jsyn.simulate(net, None, 0.1, n_steps=40, record=lambda s, o: s.groups["c"].V)
    np.testing.assert_array_equal(V, ref)
    _, spikes = jsyn.simulate(net, None, 0.1, n_steps=40, record="out.src")
    assert spikes.shape == (40, 2) and float(spikes.sum()) == 2.0
    with pytest.raises(ValueError, match=r"state.groups has no 'E' \(it has \['c', 'src'\]\)"):
        jsyn.simulate(net, None, 0.1, n_steps=40, record="groups.E.V")


def test_unknown_record_name_is_named(untyped):
    with pytest.raises(ValueError, match=r"state has no 'V' \(it has \['g'\]\)"):
        jsyn.simulate(jsyn.Expon(), spike_train(n_steps=5), 0.1, record="V")
    with pytest.raises(TypeError, match="record must be None, a name"):
        jsyn.simulate(jsyn.Expon(), spike_train(n_steps=5), 0.1, record=3)


TRACES = []
INDEX = 0


class Counting(eqx.Module):
    """An Expon that counts how often its step is traced (once per compilation)."""

    syn: jsyn.Expon

    def init_state(self, n, *, dtype=None):
        return self.syn.init_state(n, dtype=dtype)

    def step(self, state, x, dt):
        TRACES.append(1)
        return self.syn.step(state, x, dt)


def test_repeated_runs_do_not_compile_again():
    x = spike_train(n_steps=30, n=3)
    TRACES.clear()
    for tau in (3.0, 4.0, 5.0):  # new parameter values, a new lambda each time
        _, g = jsyn.simulate(Counting(jsyn.Expon(tau=tau)), x, 0.1, record=lambda s, o: s.g)
        np.testing.assert_array_equal(g, jsyn.simulate(jsyn.Expon(tau=tau), x, 0.1)[1])
    assert len(TRACES) == 1
    for _ in range(2):
        jsyn.simulate(Counting(jsyn.Expon()), x, 0.1, record="g")
    assert len(TRACES) == 2


def test_equal_code_with_other_captured_values_is_not_reused():
    """A lambda recreated with other captured values records what it says, never the
    record of an earlier compilation."""
    global INDEX
    x = spike_train(n_steps=30, n=3)
    _, g = jsyn.simulate(jsyn.Expon(), x, 0.1)
    for i in range(3):  # a closure
        _, gi = jsyn.simulate(jsyn.Expon(), x, 0.1, record=lambda s, o: s.g[i])
        np.testing.assert_array_equal(gi, g[:, i])
    for i in range(3):  # a module global
        INDEX = i
        _, gi = jsyn.simulate(jsyn.Expon(), x, 0.1, record=lambda s, o: s.g[INDEX])
        np.testing.assert_array_equal(gi, g[:, i])
    for cols in ([0, 1], [2, 0]):  # a mutable capture: never trusted
        idx = np.array(cols)
        _, gi = jsyn.simulate(jsyn.Expon(), x, 0.1, record=lambda s, o: s.g[idx])
        np.testing.assert_array_equal(gi, g[:, cols])
    for scale in (1.0, -0.0, 2):  # numbers of other types or signs are other values
        _, gi = jsyn.simulate(jsyn.Expon(), x, 0.1, record=lambda s, o, c=scale: s.g * c)
        np.testing.assert_array_equal(gi, g * scale)


def test_no_inputs_for_a_system_sized_by_them_is_named(untyped):
    with pytest.raises(ValueError, match="no inputs, but Expon takes its size from them"):
        jsyn.simulate(jsyn.Expon(), None, 0.1, n_steps=10)


@pytest.mark.parametrize("kw", [{}, {"record_every": 5}, {"checkpoint": 2}])
@pytest.mark.parametrize("use", ["final", "record", "grad"])
def test_traced_inputs_are_checked_during_the_run(kw, use):
    # Under jit the inputs' finiteness is checked inside the run; the check must hold
    # whichever result is used, on every scan variant, and under grad.
    x = spike_train(n_steps=40, n=3)

    def run(x, tau=5.0):
        final, rec = jsyn.simulate(jsyn.DualExpon(1.0, tau), x, 0.1, **kw)
        return final.g.sum() if use == "final" else rec.sum()

    f = jax.jit(lambda x: jax.grad(run, argnums=1)(x, 5.0) if use == "grad" else run(x))
    good = f(x)
    assert np.isfinite(good)
    for bad in (x.at[37, 2].set(jnp.inf), x.at[0, 0].set(jnp.nan)):
        with pytest.raises(Exception, match="inputs must be finite"):
            jax.block_until_ready(f(bad))
