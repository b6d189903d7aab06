"""`jsyn.stack`, `jsyn.grid`, `jsyn.sweep`: a sweep equals a Python loop of `jsyn.simulate`
over its members, on one device, on 4 emulated devices and over two processes (with a
network of Poisson input and STDP and a sharded trial batch, typed keys)."""

import socket
import subprocess
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from helpers import DT, central_fd, spike_train
from sweep_on_devices import N_STEPS, B, loss as sweep_loss, network, network_keys, problem, record

HERE = Path(__file__).parent
SRC = HERE.parent / "src"


def member(models, b):
    return jax.tree.map(lambda x: x[b] if eqx.is_array(x) else x, models)


# -- building the batch ------------------------------------------------------------------


def test_stack_builds_a_batch_that_filter_vmap_maps_over():
    models = jsyn.stack([jsyn.DualExpon(1.0, 5.0), jsyn.DualExpon(2.0, 9.0)])
    np.testing.assert_array_equal(models.tau_rise, [1.0, 2.0])
    np.testing.assert_array_equal(models.tau_decay, [5.0, 9.0])
    x = spike_train()
    g = eqx.filter_vmap(lambda m: jsyn.simulate(m, x, DT)[1])(models)
    np.testing.assert_array_equal(g[1], jsyn.simulate(jsyn.DualExpon(2.0, 9.0), x, DT)[1])


def test_stack_keeps_dtypes_and_works_on_traced_values():
    models = jsyn.stack([jsyn.Expon(2.0), jsyn.Expon(3.0)])
    assert models.tau.weak_type and models.tau.dtype == jnp.asarray(2.0).dtype
    taus = jax.jit(lambda t: jsyn.stack([jsyn.Expon(t), jsyn.Expon(2 * t)]).tau)(1.5)
    np.testing.assert_array_equal(taus, [1.5, 3.0])


def test_grid_orders_members_like_itertools_product_and_keeps_parametrisations():
    psc = jsyn.PSC(jsyn.Expon(jsyn.LogPositive(5.0)), jsyn.COBA(g_max=1.0, E=0.0))
    models = jsyn.grid(psc, {"output.g_max": [0.5, 1.0, 2.0]}, tau=[2.0, 5.0])
    assert isinstance(models.synapse.tau, jsyn.LogPositive)
    np.testing.assert_allclose(jsyn.resolve(models.synapse.tau), [2.0, 5.0] * 3, rtol=1e-15)
    np.testing.assert_array_equal(models.output.g_max, np.repeat([0.5, 1.0, 2.0], 2))
    np.testing.assert_array_equal(models.output.E, np.zeros(6))  # shared, repeated
    np.testing.assert_array_equal(models.V_hold, np.full(6, -70.0))


def test_grid_values_broadcast_against_the_field():
    models = jsyn.grid(jsyn.Expon(tau=jnp.array([2.0, 3.0, 4.0])), tau=[1.0, 7.0])
    np.testing.assert_array_equal(models.tau, [[1.0] * 3, [7.0] * 3])


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: jsyn.stack([]), "got no models"),
        (
            lambda: jsyn.stack([jsyn.Expon(1.0), jsyn.DualExpon(1.0, 2.0)]),
            r"model 1 \(DualExpon\) differs from model 0 \(Expon\)",
        ),
        (
            lambda: jsyn.stack([jsyn.Expon(1.0), jsyn.Expon(jnp.ones(3))]),
            r"\.tau of one shape.*\(3,\)",
        ),
        (lambda: jsyn.grid(jsyn.Expon(1.0)), "got no parameters"),
        (lambda: jsyn.grid(jsyn.Expon(1.0), tau=2.0), r"non-empty sequence of values for 'tau'"),
        (
            lambda: jsyn.grid(jsyn.PSC(jsyn.DualExpon(1.0, 2.0), jsyn.CUBA()), tau=[1.0]),
            r"jsyn.grid: 'tau' is not a parameter.*synapse.tau_decay",
        ),
        (
            lambda: jsyn.grid(jsyn.Expon(tau=jnp.ones(3)), tau=[[1.0, 2.0]]),
            r"shape \(2,\)\) do not broadcast against the field's shape \(3,\)",
        ),
        (
            lambda: jsyn.grid(jsyn.Expon(jsyn.LogPositive(2.0)), tau=[1.0, -1.0]),
            "LogPositive needs a value > 0",
        ),
        (
            lambda: jsyn.sweep(jsyn.Expon(1.0), spike_train(), DT),
            r"needs a batch of models.*\.tau: \(\)",
        ),
        (
            lambda: jsyn.sweep(
                jsyn.grid(jsyn.Expon(), tau=[1.0, 2.0]), spike_train(), DT, shared_inputs=False
            ),
            r"inputs needs a leading batch axis of 2 \(got shape \(300, 3\)\)",
        ),
    ],
)
def test_bad_batches_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_a_bad_member_is_named_by_its_index_eagerly_and_caught_under_jit():
    models = jsyn.grid(jsyn.Expon(), tau=[1.0, -1.0, 3.0])
    x = spike_train()
    with pytest.raises(ValueError, match=r"Expon.tau must be > 0 \(got -1.0 at index \(1,\)"):
        jsyn.sweep(models, x, DT)
    with pytest.raises(Exception, match="Expon.tau must be > 0"):
        jax.jit(lambda m: jsyn.sweep(m, x, DT)[1])(models).block_until_ready()
    two = jsyn.grid(jsyn.Expon(), tau=[1.0, 3.0])
    with pytest.raises(ValueError, match="inputs must be finite.*time step=4"):
        jsyn.sweep(two, x.at[4, 0].set(jnp.nan), DT)
    per_member = jnp.stack([x, x.at[6, 2].set(jnp.inf)])
    with pytest.raises(ValueError, match="inputs must be finite.*time step=6"):
        jsyn.sweep(two, per_member, DT, shared_inputs=False)


# -- a sweep equals a loop of single runs ----------------------------------------------


@pytest.mark.slow  # 39 s in the default lane (2 workers, 2 cores, load 3-4)
def test_a_sweep_of_1000_dual_exponentials_equals_a_loop():
    rng = np.random.default_rng(0)
    rise = rng.uniform(0.2, 3.0, 1000)
    decay = rise + rng.uniform(1.0, 30.0, 1000)
    x = spike_train(n_steps=200, n=2)
    models = jsyn.stack([jsyn.DualExpon(r, d) for r, d in zip(rise, decay)])
    final, g = jsyn.sweep(models, x, DT)
    assert g.shape == (1000, 200, 2)
    g, final_g = np.asarray(g), np.asarray(final.g)
    for b in range(1000):
        state_b, g_b = jsyn.simulate(jsyn.DualExpon(rise[b], decay[b]), x, DT)
        np.testing.assert_allclose(g[b], g_b, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(final_g[b], state_b.g, rtol=1e-12, atol=1e-15)


@pytest.mark.slow  # 13 s in the default lane (2 workers, 2 cores, load 3-4)
def test_a_grid_of_a_psc_equals_a_loop():
    g_maxes, taus = [0.5, 1.0, 2.0], [2.0, 5.0, 11.0, 20.0]
    x = spike_train(n_steps=250, n=3)
    psc = jsyn.PSC(jsyn.Expon(jsyn.LogPositive(5.0)), jsyn.COBA(jsyn.SoftplusPositive(1.0), 0.0))
    _, current = jsyn.sweep(jsyn.grid(psc, g_max=g_maxes, tau=taus), x, DT)
    current = current.reshape(3, 4, *current.shape[1:])
    for i, g_max in enumerate(g_maxes):
        for j, tau in enumerate(taus):
            one = jsyn.PSC(
                jsyn.Expon(jsyn.LogPositive(tau)), jsyn.COBA(jsyn.SoftplusPositive(g_max), 0.0)
            )
            np.testing.assert_allclose(current[i, j], jsyn.simulate(one, x, DT)[1], rtol=1e-12)


@pytest.mark.slow  # 12 s in the default lane (2 workers, 2 cores, load 3-4)
def test_per_member_inputs_state_and_options_are_those_of_simulate():
    models = jsyn.grid(jsyn.AMPA(), beta=[0.1, 0.19, 0.4])
    xs = jnp.stack([spike_train(seed=s) for s in range(3)])
    record = lambda state, out: out.sum(-1)  # noqa: E731
    final, rec = jsyn.sweep(models, xs[:, :150], DT, shared_inputs=False, record=record)
    _, rest = jsyn.sweep(
        models, xs[:, 150:], DT, shared_inputs=False, state=final, record=record, checkpoint=2
    )
    for b in range(3):
        _, whole = jsyn.simulate(member(models, b), xs[b], DT, record=record)
        np.testing.assert_allclose(jnp.concatenate([rec[b], rest[b]]), whole, rtol=1e-12)


class NoisyExpon(eqx.Module):
    """A user's stochastic system: an exponential synapse with Gaussian noise drawn from a
    key carried in the state."""

    tau: jax.Array

    def init_state(self, n, *, dtype=None, key):
        return (key, jnp.zeros(n, dtype))

    def step(self, state, x, dt):
        key, g = state
        key, sub = jax.random.split(key)
        g = g * jnp.exp(-dt / self.tau) + x + 0.1 * jax.random.normal(sub, g.shape, g.dtype)
        return (key, g), g


def test_one_key_is_shared_and_a_batch_of_keys_is_one_per_member():
    models = jsyn.stack([NoisyExpon(jnp.asarray(t)) for t in (2.0, 4.0, 8.0)])
    x, key = spike_train(n_steps=100), jax.random.key(7)
    keys = jax.random.split(key, 3)
    _, same = jsyn.sweep(models, x, DT, key=key)
    _, own = jsyn.sweep(models, x, DT, key=keys)
    for b in range(3):
        one = member(models, b)
        np.testing.assert_allclose(same[b], jsyn.simulate(one, x, DT, key=key)[1], rtol=1e-12)
        np.testing.assert_allclose(own[b], jsyn.simulate(one, x, DT, key=keys[b])[1], rtol=1e-12)
    assert not np.allclose(own[0], own[1], rtol=0.1)  # the keys differ, so does the noise
    rbg = jax.random.split(jax.random.key(7, impl="rbg"), 3)
    with pytest.raises(ValueError, match="per-member keys of the rbg generator"):
        jsyn.sweep(models, x, DT, key=rbg)


def test_keys_are_checked_once_raw_or_typed():
    models = jsyn.stack([NoisyExpon(jnp.asarray(t)) for t in (2.0, 4.0, 8.0)])
    x = spike_train(n_steps=20)
    with pytest.raises(TypeError, match=r"jsyn.sweep needs a PRNG key \(got float64 of shape"):
        jsyn.sweep(models, x, DT, key=jnp.zeros(2))
    two = jax.random.split(jax.random.key(0), 2)
    with pytest.raises(ValueError, match=r"one key or 3 keys \(got keys of shape \(2,\)\)"):
        jsyn.sweep(models, x, DT, key=two)
    raw = jax.random.split(jax.random.PRNGKey(3), 3)  # uint32, shape (3, 2): one per member
    _, own = jsyn.sweep(models, x, DT, key=raw)
    np.testing.assert_allclose(own[2], jsyn.simulate(member(models, 2), x, DT, key=raw[2])[1])


@pytest.mark.slow  # 5-11 s; CI runs the slow lane too
def test_gradients_through_a_sweep_match_single_runs_and_finite_differences():
    x = spike_train(n_steps=150, n=2)
    psc = jsyn.PSC(jsyn.DualExpon(1.0, jsyn.LogPositive(6.0)), jsyn.COBA(1.0, 0.0))
    models = jsyn.grid(psc, tau_decay=[3.0, 6.0, 12.0], g_max=[0.5, 2.0])
    grad = jax.grad(lambda m: (jsyn.sweep(m, x, DT)[1] ** 2).sum())(models)

    def single(m):
        return (jsyn.simulate(m, x, DT)[1] ** 2).sum()

    for b in range(6):
        one = jax.grad(single)(member(models, b))
        np.testing.assert_allclose(grad.output.g_max[b], one.output.g_max, rtol=1e-12)
        np.testing.assert_allclose(
            grad.synapse.tau_decay.raw[b], one.synapse.tau_decay.raw, rtol=1e-12
        )
    # and against a central finite difference in g_max, for member 5
    m5 = member(models, 5)
    fd = central_fd(
        lambda g: single(eqx.tree_at(lambda m: m.output.g_max, m5, jnp.asarray(g))), 2.0
    )
    np.testing.assert_allclose(grad.output.g_max[5], fd, rtol=1e-6)


# -- sharding: 4 emulated devices, and two processes joined by jax.distributed ---------


def run_workers(tmp_path, n_devices: int, n_processes: int = 1):
    """Start the workers (each with `n_devices` CPU devices) and return their results."""
    outs = [tmp_path / f"out{i}.npz" for i in range(n_processes)]
    port = []
    if n_processes > 1:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            free = str(s.getsockname()[1])
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"}
    procs = []
    for i, out in enumerate(outs):
        if n_processes > 1:
            port = [free, str(i), str(n_processes)]
        cmd = [sys.executable, str(HERE / "sweep_on_devices.py"), str(out), str(n_devices), *port]
        procs.append(
            subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        )
    try:
        logs = [p.communicate(timeout=600)[0].decode() for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-3000:]
    return [dict(np.load(out)) for out in outs]


def reference():
    even, padded, spikes = problem()
    _, current = jsyn.sweep(even, spikes, 0.1)
    _, current_padded = jsyn.sweep(padded, spikes, 0.1)
    grad = jax.grad(sweep_loss)(even, spikes)
    return current, current_padded, grad


def check_against_one_device(got):
    current, current_padded, grad = reference()
    assert jax.device_count() == 1 and len(current.sharding.device_set) == 1
    np.testing.assert_allclose(got["current"], current, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got["current_padded"], current_padded, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got["grad_tau"], grad.synapse.tau_decay.raw, rtol=1e-12)
    np.testing.assert_allclose(got["grad_g_max"], grad.output.g_max.raw, rtol=1e-12)
    even, _, spikes = problem()
    grad_spikes = jax.grad(lambda s: sweep_loss(even, s))(spikes)  # a shared input's
    np.testing.assert_allclose(got["grad_spikes"], grad_spikes, rtol=1e-12)
    check_networks_against_a_loop(got)


def check_networks_against_a_loop(got):
    """The sharded network sweep and trial batch (typed keys, Poisson input, STDP) equal
    a loop of single runs in this process."""
    sweep_keys, trial_keys = network_keys()
    weights = jnp.linspace(0.4, 1.0, B)
    batch = jsyn.trials(network(), B)
    trial_spikes = batch.split_devices(jnp.asarray(got["trials_spikes"]), "E")
    trial_V = batch.split_devices(jnp.asarray(got["trials_V"]), "E")
    for b in range(B):
        runs = {
            "sweep": (
                network(weights[b]),
                sweep_keys[b],
                got["sweep_spikes"][b],
                got["sweep_V"][b],
            ),
            "trials": (network(), trial_keys[b], trial_spikes[b], trial_V[b]),
        }
        for kind, (net, key, spikes, V) in runs.items():
            final, out = jsyn.simulate(net, None, 0.1, key=key, n_steps=N_STEPS, record=record)
            np.testing.assert_array_equal(spikes, out["spikes"], err_msg=f"{kind} {b}")
            np.testing.assert_allclose(V, out["V"], rtol=1e-12, atol=1e-9, err_msg=kind)
            w = final.projections["in"].w
            np.testing.assert_allclose(got[f"{kind}_w"][b], w, rtol=1e-12, atol=1e-12)
            assert out["spikes"].sum() > 5 and np.ptp(w) > 0  # it spikes and it learns


@pytest.mark.slow  # 5-11 s; CI runs the slow lane too
def test_four_devices_give_the_one_device_result_sharded(tmp_path):
    (got,) = run_workers(tmp_path, n_devices=4)
    check_against_one_device(got)
    assert got["n_devices"] == 4 and str(got["spec"]) == "P('batch',)"
    assert got["n_devices_on_two"] == 2  # devices=jax.devices()[:2]
    np.testing.assert_allclose(got["on_two"], got["current"], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(got["local_rows"], [0, 2, 4, 6])  # 2 members a device
    assert got["trials_devices"] == 4


@pytest.mark.slow
def test_two_processes_give_the_one_process_result(tmp_path):
    results = run_workers(tmp_path, n_devices=2, n_processes=2)
    for pid, got in enumerate(results):
        check_against_one_device(got)
        assert got["n_processes"] == 2 and got["n_devices"] == 4 and got["trials_devices"] == 4
        # each process holds its own half of the batch
        np.testing.assert_array_equal(got["local_rows"], [4 * pid, 4 * pid + 2])
