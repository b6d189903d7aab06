"""simulate(checkpoint=...): nested, rematerialised scans give the plain run's values and
gradients, with gradient memory that does not grow with the number of steps."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from helpers import DT, spike_train, tree_allclose


def loss(system, x, checkpoint, record=None):
    _, rec = jsyn.simulate(system, x, DT, checkpoint=checkpoint, record=record)
    rec = jax.tree.leaves(rec)[0]
    return jnp.sum(jnp.linspace(0.5, 1.5, rec.size).reshape(rec.shape) * rec**2)


# 301 steps: 2 levels of 18 (pads 23 steps), 3 of 7 (pads 42), explicit lengths.
@pytest.mark.parametrize("checkpoint", [2, 3, (7, 43)])
@pytest.mark.slow  # 58 s in the default lane (2 workers, 2 cores, load 3-4)
def test_values_and_gradients_equal_the_plain_run(checkpoint):
    system = jsyn.DualExpon(1.5, 7.0)
    x = spike_train(n_steps=301, n=3)
    plain = jsyn.simulate(system, x, DT)
    nested = jsyn.simulate(system, x, DT, checkpoint=checkpoint)
    assert tree_allclose(nested, plain, rtol=1e-13, atol=1e-13)
    grad = eqx.filter_jit(eqx.filter_grad(lambda sx, c: loss(*sx, c)))
    g_plain = grad((system, x), None)
    g_nested = grad((system, x), checkpoint)
    assert tree_allclose(g_nested, g_plain, rtol=1e-10, atol=1e-12)


def test_record_and_sources_without_inputs():
    src = jsyn.SpikeTimes([0.5, 3.0, 3.1, 9.9], [0, 1, 1, 0], n=2)
    plain = jsyn.simulate(src, None, DT, n_steps=101)
    nested = jsyn.simulate(src, None, DT, n_steps=101, checkpoint=2)
    assert tree_allclose(nested, plain)
    x = spike_train(n_steps=77)
    rec = lambda s, g: {"h": s.h, "g2": g * g}  # noqa: E731
    a = jsyn.simulate(jsyn.DualExpon(), x, DT, record=rec)
    b = jsyn.simulate(jsyn.DualExpon(), x, DT, record=rec, checkpoint=(3, 3, 9))
    assert tree_allclose(a, b)


@pytest.mark.slow  # 5-11 s; CI runs the slow lane too
def test_gradient_memory_does_not_grow_with_steps():
    """Compiled temporary memory of the gradient (XLA's own accounting) for 64 synapses,
    recording one number per step: the plain scan stores every step's state (2 x 64
    floats), so 10x the steps is 10x the memory; nested in three levels it stores about
    3 T^(1/3) states, and what still grows is the recorded number per step."""

    def temp_bytes(T, checkpoint):
        x = jnp.zeros((T, 64)).at[::50].set(1.0)
        record = lambda s, g: jnp.sum(g)  # noqa: E731
        f = jax.jit(jax.grad(lambda tau: loss(jsyn.DualExpon(1.0, tau), x, checkpoint, record)))
        return f.lower(5.0).compile().memory_analysis().temp_size_in_bytes

    plain = [temp_bytes(T, None) for T in (2_000, 20_000)]
    nested = [temp_bytes(T, 3) for T in (2_000, 20_000)]
    assert plain[1] > 9 * plain[0]
    per_step_plain = (plain[1] - plain[0]) / 18_000
    per_step_nested = (nested[1] - nested[0]) / 18_000
    assert per_step_plain > 2 * 64 * 8  # at least the state of every step
    assert per_step_nested < per_step_plain / 20


@pytest.mark.parametrize(
    "checkpoint, error, match",
    [
        (0, ValueError, "checkpoint must be >= 1 nested levels"),
        ((10, 10), ValueError, r"product covers the 300 steps \(got \(10, 10\), product 100\)"),
        (True, TypeError, "checkpoint must be None, a number of levels"),
    ],
)
def test_bad_checkpoint(checkpoint, error, match):
    with pytest.raises(error, match=match):
        jsyn.simulate(jsyn.Expon(), spike_train(), DT, checkpoint=checkpoint)


@pytest.mark.parametrize(
    "checkpoint, n_steps, error, match",
    [
        ("2", 300, TypeError, r"checkpoint must be None, a number of levels.*\(got '2'\)"),
        (2.0, 300, TypeError, r"checkpoint must be None, a number of levels.*\(got 2.0\)"),
        ((2.5, 200), 300, TypeError, r"checkpoint lengths must be an integer \(got 2.5\)"),
        (3, 3, ValueError, r"checkpoint=3 nests more levels than 3 steps can fill.*<= 2"),
        (5, 1, ValueError, r"checkpoint=5 nests more levels than 1 steps.*<= 1"),
        (5000, 300, ValueError, r"checkpoint=5000 nests more levels than 300 steps.*<= 9"),
    ],
)
def test_checkpoint_is_a_clear_error(checkpoint, n_steps, error, match, untyped):
    with pytest.raises(error, match=match):
        jsyn.simulate(jsyn.Expon(), spike_train(n_steps=n_steps), DT, checkpoint=checkpoint)


@pytest.mark.parametrize("T", [1, 2, 3, 4, 7, 8, 300])
def test_the_most_levels_a_run_can_fill_equal_the_plain_run(T):
    x = spike_train(n_steps=T)
    levels = T.bit_length()
    final, g = jsyn.simulate(jsyn.Expon(), x, DT)
    final_c, g_c = jsyn.simulate(jsyn.Expon(), x, DT, checkpoint=levels)
    np.testing.assert_allclose(g_c, g, rtol=1e-12)
    np.testing.assert_allclose(final_c.g, final.g, rtol=1e-12)
