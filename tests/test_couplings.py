"""Delayed couplings (docs/models.md, "Gap junctions and couplings"): formulas against NumPy,
exact delays, jit, vmap, grad, dtypes and errors. Gap junctions: test_gap_junction.py."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from helpers import DT, central_fd, current_steps, spike_train, tree_allclose

# -- NumPy reference, written with explicit loops over the connections ----------------------


def np_coupling(C, D, X, Y=None):
    """out[n, j] = sum_i C[i, j] (X(n - D[i, j], i) - Y[n, j]), with D in steps (maybe
    fractional, k + f: X(n - k - f) = (1 - f) X[n - k] + f X[n - k - 1]), X = 0 before
    step 0."""
    T, (n_pre, n_post) = X.shape[0], C.shape
    out = np.zeros((T, n_post))
    for n in range(T):
        for i in range(n_pre):
            for j in range(n_post):
                k = int(np.floor(D[i, j] + 1e-9))
                f = max(D[i, j] - k, 0.0)
                x = sum(
                    weight * X[n - lag, i]
                    for lag, weight in ((k, 1.0 - f), (k + 1, f))
                    if n - lag >= 0
                )
                y = 0.0 if Y is None else Y[n, j]
                out[n, j] += C[i, j] * (x - y)
    return out


# -- delayed couplings -----------------------------------------------------------------------

DELAYS = np.array([[0, 2, 5], [1, 0, 3], [4, 1, 0], [7, 3, 2]])
"""Heterogeneous per-connection delays (steps) of a 4 -> 3 coupling; `DELAYS * DT` in ms."""
FRACTIONAL = np.array([[0.0, 2.3, 4.71], [1.5, 0.25, 3.0], [3.9, 0.6, 0.05], [6.2, 2.99, 1.4]])
"""Delays off the grid (steps), interpolated between the neighbouring steps."""


def random_conn(seed=12, shape=(4, 3)):
    return np.random.default_rng(seed).normal(size=shape)


def coupled(kind, C, steps=None, **kw):
    """A coupling with delays given in steps, built in ms."""
    if steps is None:
        return kind(jnp.asarray(C), **kw)
    return kind(jnp.asarray(C), steps * DT, dt=DT, **kw)


@pytest.mark.parametrize(
    "steps", [None, 0, 3, DELAYS, np.array([[1], [0], [4], [2]]), FRACTIONAL, 2.5]
)
def test_additive_coupling_matches_numpy(steps):
    C = random_conn()
    X = np.asarray(current_steps(n_steps=60, n=4)) + np.asarray(spike_train(n_steps=60, n=4))
    _, out = jsyn.simulate(coupled(jsyn.AdditiveCoupling, C, steps), jnp.asarray(X), DT)
    D = np.broadcast_to(0 if steps is None else steps, C.shape)
    np.testing.assert_allclose(out, np_coupling(C, D, X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("steps", [None, 2, DELAYS, FRACTIONAL])
def test_diffusive_coupling_matches_numpy(steps):
    C = random_conn(13)
    X = np.asarray(current_steps(n_steps=60, n=4, seed=1))
    Y = np.asarray(current_steps(n_steps=60, n=3, seed=2))
    coupling = coupled(jsyn.DiffusiveCoupling, C, steps)
    _, out = jsyn.simulate(coupling, (jnp.asarray(X), jnp.asarray(Y)), DT)
    D = np.broadcast_to(0 if steps is None else steps, C.shape)
    np.testing.assert_allclose(out, np_coupling(C, D, X, Y), rtol=1e-12, atol=1e-11)


def test_diffusive_coupling_of_nodes_to_themselves():
    """One array x means y = x: out_j = sum_i c_ij (x_i(t - d_ij) - x_j(t))."""
    C = random_conn(14, (3, 3))
    D = np.array([[0, 1, 2], [3, 0, 1.5], [2, 2, 0]])
    X = np.asarray(current_steps(n_steps=40, n=3, seed=3))
    _, out = jsyn.simulate(coupled(jsyn.DiffusiveCoupling, C, D), jnp.asarray(X), DT)
    np.testing.assert_allclose(out, np_coupling(C, D, X, X), rtol=1e-12, atol=1e-11)
    # Without delays, equal activities do not diffuse.
    _, out = jsyn.simulate(jsyn.DiffusiveCoupling(jnp.asarray(C)), jnp.ones((5, 3)), DT)
    np.testing.assert_allclose(out, 0.0, atol=1e-14)


@pytest.mark.parametrize("coupling", [jsyn.AdditiveCoupling, jsyn.DiffusiveCoupling])
def test_impulse_arrives_exactly_after_each_connection_delay(coupling):
    C = jnp.asarray(random_conn(15) ** 2 + 0.1)
    n_steps, s = 20, 6
    for i in range(4):
        x = jnp.zeros((n_steps, 4)).at[s, i].set(1.0)
        inputs = (x, jnp.zeros((n_steps, 3))) if coupling is jsyn.DiffusiveCoupling else x
        _, out = jsyn.simulate(coupled(coupling, C, DELAYS), inputs, DT)
        for j in range(3):
            want = np.zeros(n_steps)
            want[s + DELAYS[i, j]] = C[i, j]
            np.testing.assert_array_equal(out[:, j], want, err_msg=f"connection {i} -> {j}")


def test_fractional_delay_splits_an_impulse_and_conserves_it():
    C = jnp.ones((1, 2))
    x = jnp.zeros((14, 1)).at[2, 0].set(1.0)
    _, out = jsyn.simulate(jsyn.AdditiveCoupling(C, jnp.array([0.33, 0.7]), dt=DT), x, DT)
    want = np.zeros((14, 2))
    want[5, 0], want[6, 0] = 0.7, 0.3  # 3.3 steps: 1 - 0.3 after 3 steps, 0.3 after 4
    want[9, 1] = 1.0  # 7 steps
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-15)


def test_history_before_the_first_step_is_zero_and_carries_over_runs():
    C = jnp.ones((1, 1))
    x = jnp.arange(1.0, 11.0)[:, None]
    coupling = jsyn.AdditiveCoupling(C, delay=0.3, dt=DT)
    final, out = jsyn.simulate(coupling, x, DT)
    np.testing.assert_array_equal(out[:, 0], [0, 0, 0, 1, 2, 3, 4, 5, 6, 7])
    _, more = jsyn.simulate(coupling, jnp.zeros((4, 1)), DT, state=final)
    np.testing.assert_array_equal(more[:, 0], [8, 9, 10, 0])


def test_delays_longer_than_the_run_give_nothing():
    coupling = jsyn.AdditiveCoupling(jnp.ones((2, 2)), 5.0, dt=DT)
    _, out = jsyn.simulate(coupling, jnp.ones((30, 2)), DT)
    assert np.all(out == 0.0)


@pytest.mark.parametrize("coupling", [jsyn.AdditiveCoupling, jsyn.DiffusiveCoupling])
@pytest.mark.slow  # 6 s in the default lane (2 workers, 2 cores)
def test_grad_wrt_delays_matches_finite_differences(coupling):
    C = jnp.asarray(random_conn(19))
    x = current_steps(n_steps=40, n=4, seed=6) + spike_train(n_steps=40, n=4, seed=6)
    y = current_steps(n_steps=40, n=3, seed=7)
    inputs = (x, y) if coupling is jsyn.DiffusiveCoupling else x
    delay = jnp.asarray((FRACTIONAL + 0.013) * DT)  # off the grid: smooth in each delay

    def loss(d):
        _, out = jsyn.simulate(coupling(C, d, dt=DT, max_delay=1.0), inputs, DT)
        return jnp.sum(jnp.linspace(0.5, 1.5, out.size).reshape(out.shape) * out**2)

    grad = jax.grad(loss)(delay)
    assert np.any(np.abs(np.asarray(grad)) > 1e-2)
    for idx in np.ndindex(delay.shape):
        fd = central_fd(lambda e, idx=idx: loss(delay.at[idx].add(e)), 0.0, 1e-7)
        np.testing.assert_allclose(grad[idx], fd, rtol=1e-5, atol=1e-6, err_msg=str(idx))


@pytest.mark.slow  # 5-11 s; CI runs the slow lane too
def test_coupling_jit_equals_eager_and_vmap_equals_loop():
    coupling = coupled(jsyn.DiffusiveCoupling, random_conn(16), FRACTIONAL)
    xs = jnp.stack([spike_train(n_steps=30, n=4, seed=s, rate=0.2) for s in range(3)])
    ys = jnp.stack([current_steps(n_steps=30, n=3, seed=s) for s in range(3)])
    run = jax.jit(lambda c, x, y: jsyn.simulate(c, (x, y), DT))
    with jax.disable_jit():
        eager = jsyn.simulate(coupling, (xs[0], ys[0]), DT)
    assert tree_allclose(run(coupling, xs[0], ys[0]), eager)
    batched = jax.vmap(lambda x, y: jsyn.simulate(coupling, (x, y), DT))(xs, ys)
    for i in range(3):
        single = jsyn.simulate(coupling, (xs[i], ys[i]), DT)
        assert tree_allclose(jax.tree.map(lambda a, i=i: a[i], batched), single)
    # vmap over coupling matrices and delays (parameter sets) equals a loop too.
    mats = jnp.stack([jnp.asarray(random_conn(s)) for s in range(3)])
    delays = jnp.stack([jnp.asarray(FRACTIONAL * DT * (1.0 + 0.1 * s)) for s in range(3)])

    def with_params(C, d):
        coupling = jsyn.AdditiveCoupling(C, d, dt=DT, max_delay=1.0)
        return jsyn.simulate(coupling, xs[0], DT)[1]

    batched = jax.vmap(with_params)(mats, delays)
    for i in range(3):
        np.testing.assert_allclose(batched[i], with_params(mats[i], delays[i]), rtol=1e-12)


@pytest.mark.parametrize("coupling", [jsyn.AdditiveCoupling, jsyn.DiffusiveCoupling])
def test_grad_wrt_conn_mat_matches_finite_differences(coupling):
    C = jnp.asarray(random_conn(17))
    x = current_steps(n_steps=40, n=4, seed=4)
    y = current_steps(n_steps=40, n=3, seed=5)
    inputs = (x, y) if coupling is jsyn.DiffusiveCoupling else x

    def loss(C):
        _, out = jsyn.simulate(coupled(coupling, C, DELAYS), inputs, DT)
        return jnp.sum(jnp.linspace(0.5, 1.5, out.size).reshape(out.shape) * out**2)

    grad = jax.grad(loss)(C)
    for idx in np.ndindex(C.shape):
        fd = central_fd(lambda e, idx=idx: loss(C.at[idx].add(e)), 0.0, 1e-5)
        assert abs(float(grad[idx])) > 1e-3
        np.testing.assert_allclose(grad[idx], fd, rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_coupling_dtype_is_preserved(dtype):
    coupling = coupled(jsyn.DiffusiveCoupling, random_conn(18), FRACTIONAL)  # float64 matrix
    x, y = jnp.ones((10, 4), dtype), jnp.ones((10, 3), dtype)
    final, out = jsyn.simulate(coupling, (x, y), DT)
    assert final.buffer.dtype == dtype and out.dtype == dtype
    final, out = jsyn.simulate(coupled(jsyn.AdditiveCoupling, random_conn(18), 2), x, DT)
    assert final.buffer.dtype == dtype and out.dtype == dtype
    final, out = jsyn.simulate(jsyn.AdditiveCoupling(jnp.asarray(random_conn(18))), x, DT)
    assert final is None and out.dtype == dtype


def test_coupling_construction_errors():
    C = jnp.ones((4, 3))
    cases = [
        (lambda: jsyn.AdditiveCoupling(jnp.ones(3)), ValueError, r"conn_mat must be an \(n_pre"),
        (
            lambda: jsyn.AdditiveCoupling(C, -0.1, dt=DT),
            ValueError,
            r"AdditiveCoupling.delay must be finite and >= 0 ms \(got -0.1\)",
        ),
        (
            lambda: jsyn.DiffusiveCoupling(C, jnp.asarray(DELAYS - 1.0), dt=DT),
            ValueError,
            r"DiffusiveCoupling.delay must be finite and >= 0 ms \(got -1.0 at index \(0, 0\)",
        ),
        (lambda: jsyn.AdditiveCoupling(C, np.nan, dt=DT), ValueError, "finite and >= 0 ms"),
        (
            lambda: jsyn.AdditiveCoupling(C, 0.5, dt=DT, max_delay=0.2),
            ValueError,
            r"delay must be <= max_delay=0.2 ms.*got 0.5",
        ),
        (
            lambda: jsyn.AdditiveCoupling(C, np.zeros((3, 4)), dt=DT),
            ValueError,
            r"broadcastable to.*\(4, 3\)",
        ),
        (
            lambda: jsyn.AdditiveCoupling(C.at[1, 2].set(jnp.inf)),
            ValueError,
            "conn_mat must be finite",
        ),
        (lambda: jsyn.AdditiveCoupling(C, 2), ValueError, r"delay is in ms and needs dt.*k \* dt"),
    ]
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()
    # Two steps of 0.1 ms, written as integer steps times dt, are exactly 2 steps.
    assert jsyn.AdditiveCoupling(C, 2 * DT, dt=DT).line.n_slots == 4


def test_coupling_errors_under_jit():
    x, y = jnp.ones((10, 4)), jnp.ones((10, 3))
    C = jnp.ones((4, 3))
    with pytest.raises(TypeError, match="needs max_delay"):
        jax.jit(lambda d: jsyn.AdditiveCoupling(C, d, dt=DT))(0.2)
    run = jax.jit(lambda C, x: jsyn.simulate(coupled(jsyn.AdditiveCoupling, C, DELAYS), x, DT)[1])
    with pytest.raises(Exception, match="AdditiveCoupling.conn_mat must be finite"):
        run(C.at[0, 0].set(jnp.nan), x).block_until_ready()
    with pytest.raises(ValueError, match=r"takes x of shape \(4,\)"):
        run(C, y)
    with pytest.raises(Exception, match=r"AdditiveCoupling.delay must be <= max_delay=0.5"):
        jax.jit(
            lambda d: jsyn.simulate(jsyn.AdditiveCoupling(C, d, dt=DT, max_delay=0.5), x, DT)[1]
        )(0.7).block_until_ready()
    with pytest.raises(Exception, match=r"AdditiveCoupling was built for dt=0.1 ms"):
        jax.jit(lambda h: jsyn.simulate(jsyn.AdditiveCoupling(C, 0.3, dt=DT), x, h)[1])(
            0.05
        ).block_until_ready()
    additive = coupled(jsyn.AdditiveCoupling, C, DELAYS)
    with pytest.raises(ValueError, match=r"x of shape \(4,\).*got shape \(3,\)"):
        jax.jit(lambda x: additive.step(additive.init_state(), x, DT))(y[0])
    diffusive = jsyn.DiffusiveCoupling(C)
    with pytest.raises(ValueError, match=r"y of shape \(3,\).*got shape \(4,\)"):
        jax.jit(lambda x: jsyn.simulate(diffusive, (x, x), DT))(x)
    with pytest.raises(ValueError, match="needs a square conn_mat"):
        jax.jit(lambda x: jsyn.simulate(diffusive, x, DT))(x)
    with pytest.raises(ValueError, match=r"takes x of shape \(4,\)"):
        diffusive.init_state(3)
    with pytest.raises(ValueError, match=r"takes x of shape \(4,\)"):
        jsyn.simulate(diffusive, (y, y), DT)
