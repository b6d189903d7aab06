"""Sharded `jsyn.sweep`s and a sharded trial batch on emulated CPU devices, in a process of
its own, started by tests/test_batch.py: the device count is fixed by `XLA_FLAGS` before
JAX is imported, so it cannot be changed inside the test process.

    python sweep_on_devices.py OUT.npz N_DEVICES [PORT PROCESS_ID N_PROCESSES]

With a port, the process joins a `jax.distributed` run coordinated on 127.0.0.1:PORT and
the batch spans the devices of every process. The gathered results go to OUT.npz.
"""

import os
import sys


def problem():
    """The sweeps every process runs: a g_max x tau grid of a PSC (B = 8, a multiple of
    the device count) and one of B = 6 (padded to 8)."""
    import jax.numpy as jnp
    import numpy as np

    import jsyn

    rng = np.random.default_rng(3)
    spikes = jnp.asarray(rng.poisson(0.03, size=(300, 2)).astype(float))
    psc = jsyn.PSC(
        jsyn.DualExpon(jsyn.LogPositive(1.0), jsyn.LogPositive(8.0)),
        jsyn.COBA(g_max=jsyn.SoftplusPositive(1.0), E=0.0),
    )
    even = jsyn.grid(psc, g_max=[0.5, 1.0, 1.5, 2.0], tau_decay=[4.0, 9.0])
    padded = jsyn.grid(psc, g_max=[0.5, 1.0, 2.0], tau_decay=[4.0, 9.0])
    return even, padded, spikes


N_STEPS, B = 200, 4


def network(w=0.6):
    """A Poisson group driving LIF cells through a plastic (STDP) projection: stochastic,
    so every run needs a key (`jax.random.key`)."""
    import jax.numpy as jnp

    import jsyn

    return jsyn.Network(
        {"P": jsyn.Poisson(jnp.full((12,), 80.0)), "E": (jsyn.LIF(V_rest=-52.0), 6)},
        {
            "in": jsyn.Projection(
                jsyn.Dense(jnp.full((12, 6), w)),
                jsyn.Expon(5.0),
                jsyn.COBA(E=0.0),
                pre="P",
                post="E",
                plasticity=jsyn.STDP(A_plus=0.05, w_max=2.0),
            )
        },
    )


def network_keys():
    """The typed keys of the network runs: one per sweep member, one per trial."""
    import jax

    return jax.random.split(jax.random.key(11), B), jax.random.split(jax.random.key(12), B)


def record(state, spikes):
    return {"spikes": spikes["E"], "V": state.groups["E"].V}


def network_runs():
    """A sweep of B networks (weights 0.4 ... 1.0, a key each) and a trial batch of B
    trials of one (a key each), both split over every device: `(sweep, trials)`, each
    `(spikes, V, final weights)`, the trials' records as `TrialBatch.simulate` returns
    them (device leading)."""
    import jax.numpy as jnp

    import jsyn

    sweep_keys, trial_keys = network_keys()
    nets = jsyn.stack([network(w) for w in jnp.linspace(0.4, 1.0, B)])
    final, out = jsyn.sweep(nets, None, 0.1, key=sweep_keys, n_steps=N_STEPS, record=record)
    swept = (out["spikes"], out["V"], final.projections["in"].w)
    batch = jsyn.trials(network(), B)
    state = batch.init_state(trial_keys)
    final, out = batch.simulate(0.1, state=state, n_steps=N_STEPS, record=record)
    w = batch.split_state(final).projections["in"].w
    return swept, (out["spikes"], out["V"], w)


def loss(models, spikes):
    import jsyn

    return (jsyn.sweep(models, spikes, 0.1)[1] ** 2).sum()


def main(out: str, n_devices: str, port: str | None = None, pid: str = "0", n: str = "1"):
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={n_devices}"
    import jax

    if port is not None:
        jax.distributed.initialize(
            coordinator_address=f"127.0.0.1:{port}", num_processes=int(n), process_id=int(pid)
        )
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    from jax.experimental import multihost_utils

    import jsyn

    even, padded, spikes = problem()
    _, current = jsyn.sweep(even, spikes, 0.1)
    _, current_padded = jsyn.sweep(padded, spikes, 0.1)
    mine = {}
    if jax.process_count() == 1:  # devices= a subset of this process's devices
        _, on_two = jsyn.sweep(even, spikes, 0.1, devices=jax.devices()[:2])
        mine = {"on_two": on_two, "n_devices_on_two": len(on_two.sharding.device_set)}
    grad = jax.grad(loss)(even, spikes)
    grad_spikes = jax.grad(lambda s: loss(even, s))(spikes)
    swept, trials = network_runs()

    def gather(x):
        return multihost_utils.process_allgather(x, tiled=True)

    np.savez(
        out,
        current=gather(current),
        current_padded=gather(current_padded),
        grad_tau=gather(grad.synapse.tau_decay.raw),
        grad_g_max=gather(grad.output.g_max.raw),
        grad_spikes=gather(grad_spikes),
        **{f"sweep_{k}": gather(x) for k, x in zip(("spikes", "V", "w"), swept)},
        **{f"trials_{k}": gather(x) for k, x in zip(("spikes", "V", "w"), trials)},
        trials_devices=len(trials[0].sharding.device_set),
        n_devices=len(current.sharding.device_set),
        spec=str(current.sharding.spec),
        local_rows=sorted(s.index[0].start for s in current.addressable_shards),
        n_processes=jax.process_count(),
        **mine,
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
