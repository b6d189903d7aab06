"""The conformance suite: every registered system obeys the protocol and the
JAX transformations (jit, vmap, scan, grad, dtypes)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from helpers import (
    ALL_SYSTEMS,
    DT,
    central_fd,
    constrained,
    param_value,
    tree_allclose,
    with_param,
)

cases = pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=pytest.mark.slow) if c.slow else c for c in ALL_SYSTEMS],
    ids=repr,
)


@cases
@pytest.mark.slow  # 410 s in the default lane (2 workers, 2 cores, load 3-4)
def test_jit_equals_eager(case):
    x = case.inputs(n_steps=120)  # eager runs op by op: keep it short
    jitted = jax.jit(lambda s, x: jsyn.simulate(s, x, DT))(case.system, x)
    with jax.disable_jit():
        eager = jsyn.simulate(case.system, x, DT)
    assert tree_allclose(jitted, eager)


@cases
@pytest.mark.slow  # 12 s in the default lane (2 workers, 2 cores, load 3-4)
def test_vmap_over_trials_equals_loop(case):
    trials = jnp.stack([case.inputs(seed=s) for s in range(3)])
    batched = jax.vmap(lambda x: jsyn.simulate(case.system, x, DT))(trials)
    for i in range(3):
        single = jsyn.simulate(case.system, trials[i], DT)
        assert tree_allclose(jax.tree.map(lambda a: a[i], batched), single)


@cases
def test_scan_equals_manual_step_loop(case):
    x = case.inputs(n_steps=60)
    final, rec = jsyn.simulate(case.system, x, DT)
    state = case.system.init_state(x.shape[1:])
    step = jax.jit(lambda state, x_t: case.system.step(state, x_t, DT))  # one step, compiled
    outs = []
    for t in range(x.shape[0]):
        state, out = step(state, x[t])
        outs.append(out)
    assert tree_allclose(final, state)
    assert tree_allclose(rec, jnp.stack(outs))


@cases
@pytest.mark.slow  # 6 s in the default lane (2 workers, 2 cores)
def test_split_run_equals_whole_run(case):
    x = case.inputs()
    final, rec = jsyn.simulate(case.system, x, DT)
    mid, rec1 = jsyn.simulate(case.system, x[:137], DT)
    final2, rec2 = jsyn.simulate(case.system, x[137:], DT, state=mid)
    assert tree_allclose(final, final2)
    assert tree_allclose(rec, jnp.concatenate([rec1, rec2]))


def _loss(system, x, record=None):
    _, rec = jsyn.simulate(system, x, DT, record=record)
    weights = jnp.linspace(0.5, 1.5, rec.size).reshape(rec.shape)
    return jnp.sum(weights * rec)


@cases
@pytest.mark.slow  # 23 s in the default lane (2 workers, 2 cores, load 3-4)
def test_grad_wrt_parameters_matches_finite_differences(case):
    if not case.params:
        pytest.skip(f"{case.name} has no parameters")
    x = case.inputs()
    values = {
        name: jnp.asarray(param_value(case.system, name), dtype=jnp.float64) for name in case.params
    }

    @jax.jit
    def loss_of(values):
        system = case.system
        for name, v in values.items():
            system = with_param(system, name, v)
        return _loss(system, x, case.record)

    grads = jax.jit(jax.grad(loss_of))(values)  # every parameter in one compiled gradient
    for name, value in values.items():
        for idx in np.ndindex(value.shape):

            def along(eps, name=name, idx=idx):
                return loss_of({**values, name: values[name].at[idx].add(eps)})

            fd = central_fd(along, 0.0, eps=1e-5)
            assert np.isfinite(grads[name][idx])
            np.testing.assert_allclose(grads[name][idx], fd, rtol=1e-5, atol=1e-8, err_msg=name)


def _inputs_bounded(system, x) -> bool:
    """Whether the system declares checks on its inputs (a wrapper of the suite reads its
    model's)."""
    inner = getattr(system, "system", system)
    return isinstance(inner, jsyn.AbstractSystem) and bool(inner.input_constraints(x))


@cases
@pytest.mark.slow  # 8 s in the default lane (2 workers, 2 cores)
def test_grad_wrt_inputs_matches_finite_differences(case):
    x = case.inputs(n_steps=80)
    grad = jax.grad(lambda x: _loss(case.system, x, case.record))(x)
    for idx in [(3, 0), (40, 1), (79, 2)]:

        def f(e, idx=idx):
            return _loss(case.system, x.at[idx].add(e), case.record)

        if _inputs_bounded(case.system, x):  # spike counts >= 0: one-sided, O(e^2)
            fd = (-3 * f(0.0) + 4 * f(1e-5) - f(2e-5)) / 2e-5
        else:
            fd = central_fd(f, 0.0, 1e-5)
        np.testing.assert_allclose(grad[idx], fd, rtol=1e-5, atol=1e-8)


@cases
@pytest.mark.slow  # 11 s in the default lane (2 workers, 2 cores, load 3-4)
def test_grad_through_constrained_parameters(case):
    """Through the parametrisations a fit uses (`LogPositive`, `SoftplusPositive`,
    `Bounded`), the gradient w.r.t. each raw leaf matches a central finite difference in
    raw space (the fitting path: constraint, then physics)."""
    if not case.params:
        pytest.skip(f"{case.name} has no parameters")
    system = constrained(case)
    x = case.inputs(n_steps=80)
    grads = eqx.filter_grad(_loss)(system, x, case.record)
    for name in case.params:
        assert isinstance(getattr(system, name), jsyn.AbstractParam)
        raw = getattr(system, name).raw
        grad = getattr(grads, name).raw
        for idx in np.ndindex(raw.shape):

            def along(eps, name=name, raw=raw, idx=idx):
                moved = raw.at[idx].add(eps)
                return _loss(
                    eqx.tree_at(lambda s: getattr(s, name).raw, system, moved), x, case.record
                )

            fd = central_fd(along, 0.0, eps=1e-5)
            np.testing.assert_allclose(grad[idx], fd, rtol=1e-5, atol=1e-8, err_msg=name)


@cases
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_dtype_is_preserved(case, dtype):
    x = case.inputs(dtype=dtype)
    final, rec = jsyn.simulate(case.system, x, DT)
    for leaf in jax.tree.leaves((final, rec)):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            assert leaf.dtype == dtype


@cases
def test_step_keeps_state_structure(case):
    x = case.inputs(n_steps=1)
    state = case.system.init_state(x.shape[1:])
    new, out = case.system.step(state, x[0], DT)
    assert jax.tree.structure(new) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(state)):
        assert a.shape == b.shape and a.dtype == b.dtype
    assert out.shape == x.shape[1:]


@cases
@pytest.mark.slow  # 15 s in the default lane (2 workers, 2 cores, load 3-4)
def test_population_may_be_a_shape(case):
    if case.fixed_size:
        pytest.skip(f"{case.name} has a size fixed by its parameters")
    x = case.inputs(n=6).reshape(-1, 2, 3)
    _, rec = jsyn.simulate(case.system, x, DT)
    assert rec.shape == x.shape
