"""Random numbers inside the loop: a sweep of n independent exponential synapses (one time
constant each), each driven by its own Poisson spike train drawn inside the scan.

For every PRNG implementation JAX offers (`jax.random.key(seed, impl=...)`), one step splits
the key and draws n uniforms, compared with the spike probability (as `jsyn.Poisson` does),
then steps `jsyn.Expon`. "update only" steps the same synapses with a fixed 0/1 drive
drawn once outside the loop, so the difference is the cost of the generator. Each
implementation is also checked for what a sweep needs: the same key gives the same spikes
(rerun), and `jax.vmap` over keys equals a loop over them (per-member keys in `jsyn.sweep`).
Prints the device, the sizes, compile time apart, and the median and minimum of the repeats.

    python benchmarks/batch.py [--n 1000000] [--steps 200] [--repeats 5]

With `--coba B [B ...]`: trials of the COBA 4k network (the network of `coba.py`, built from
`_ei_network`'s constants; each trial its own initial potentials) run as one batch with
`jsyn.trials`, against a loop of single runs and, with `--vmap B`, `jax.vmap` over the
trials; `--brian2` adds Brian2 standalone (`references.run_brian2`, one thread) running the
trials one after another. Throughput: biological seconds simulated per wall second (trials
x duration / run time) and synapse updates per second (synapses x trials x steps / run
time; every synapse counted at every step, as the dense equivalent).

    python benchmarks/batch.py --coba 1 8 32 --duration 1000 [--vmap 8] [--brian2]
"""

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import jsyn

IMPLS = ("threefry2x32", "threefry4x32", "philox2x32", "philox4x32", "rbg", "unsafe_rbg")
RATE = 0.02  # spikes per ms (20 Hz)


class PoissonDriven(eqx.Module):
    """n `Expon` synapses, each fed a Bernoulli spike train drawn in the step (`key` in the
    state), or the fixed drive `fixed` when it is given."""

    synapse: jsyn.Expon
    fixed: jax.Array | None
    n: int = eqx.field(static=True)

    def init_state(self, n=None, *, dtype=None, key=None):
        return key, self.synapse.init_state(self.n, dtype=dtype)

    def step(self, state, x, dt):
        key, syn = state
        if self.fixed is None:
            key, sub = jax.random.split(key)
            p = -jnp.expm1(-RATE * dt)
            u = jax.random.uniform(sub, syn.g.shape, syn.g.dtype)
            spikes = (u < p).astype(syn.g.dtype)
        else:
            spikes = self.fixed
        syn, g = self.synapse.step(syn, spikes, dt)
        return (key, syn), g


def run(system, key, steps, dt):
    # record one number per step (the mean conductance), so memory stays O(n)
    final, mean_g = jsyn.simulate(
        system, None, dt, n_steps=steps, key=key, record=lambda s, g: jnp.mean(g)
    )
    return final[1].g, mean_g


def timed(fn, *args, repeats):
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    compile_s = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        runs.append(time.perf_counter() - t0)
    return out, compile_s, float(np.median(runs)), float(np.min(runs))


def vmap_exact(impl: str) -> bool:
    """`jax.vmap` over keys gives what a loop over the same keys gives."""
    keys = jax.random.split(jax.random.key(1, impl=impl), 4)
    mapped = jax.vmap(lambda k: jax.random.uniform(k, (16,)))(keys)
    looped = jnp.stack([jax.random.uniform(k, (16,)) for k in keys])
    return bool(jnp.array_equal(mapped, looped))


def coba_network(n: int = 4000, seed: int = 0):
    """The COBA network of `coba.py`, `(net, number of synapses)`."""
    import _ei_network as ei

    return ei.network(ei.COBA, n, seed)


def initial_states(net, B: int, seed: int = 1):
    """B states at rest but for the potentials, V0 ~ U(-60, -50) mV, one key per trial."""
    n = dict(net.sizes)["cells"]

    def one(key):
        V0 = jax.random.uniform(key, (n,), jnp.float32, minval=-60.0, maxval=-50.0)
        return eqx.tree_at(lambda s: s.groups["cells"].V, net.init_state(), V0)

    return jax.vmap(one)(jax.random.split(jax.random.key(seed), B))


def count(state, spikes):
    return jnp.sum(spikes["cells"])


@eqx.filter_jit
def simulate_net(net, state, steps):
    final, counts = jsyn.simulate(net, None, 0.1, state=state, n_steps=steps, record=count)
    return jnp.sum(counts)


@eqx.filter_jit
def simulate_vmap(net, states, steps):
    return jax.vmap(lambda s: simulate_net(net, s, steps))(states)


def coba(args) -> None:
    import _ei_network as ei

    dt, duration = 0.1, args.duration
    steps = int(round(duration / dt))
    net, n_syn = coba_network()
    print(
        f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}"
    )
    print(f"COBA 4000 cells, {n_syn} synapses, {duration} ms ({steps} steps of {dt} ms), float32")
    print(f"{ei.machine()}, {ei.pinned()}, load: {open('/proc/loadavg').read().split()[:3]}")
    head = f"{'runner':>22} {'B':>4} {'compile s':>9} {'run s':>8} {'min s':>8}"
    print(f"{head} {'bio s/wall s':>12} {'syn upd/s':>10} {'rate Hz':>8}")

    def row(name, B, c, med, mn, spikes, steps=steps):
        bio = B * steps * dt / 1000.0
        rate = spikes / (B * 4000) / (steps * dt / 1000.0)
        print(
            f"{name:>22} {B:>4} {c:>9.2f} {med:>8.3f} {mn:>8.3f} {bio / med:>12.3f} "
            f"{n_syn * B * steps / med:>10.3g} {rate:>8.2f}",
            flush=True,
        )

    one = jax.tree.map(lambda x: x[0], initial_states(net, 1))
    spikes, c, med, mn = timed(simulate_net, net, one, steps, repeats=args.repeats)
    row("single run", 1, c, med, mn, float(spikes))
    single = med
    for B in args.coba:
        batch = jsyn.trials(net, B)
        state = batch.merge_state(initial_states(net, B))
        spikes, c, med, mn = timed(simulate_net, batch.net, state, steps, repeats=args.repeats)
        row("jsyn.trials", B, c, med, mn, float(spikes))
        print(f"{'loop of single runs':>22} {B:>4} {'':>9} {B * single:>8.3f} {'(B x single)':>8}")
    for B in args.vmap:
        vsteps = max(1, steps // args.vmap_divide)
        out, c, med, mn = timed(simulate_vmap, net, initial_states(net, B), vsteps, repeats=1)
        row(f"jax.vmap ({vsteps} steps)", B, c, med, mn, float(jnp.sum(out)), steps=vsteps)
    if args.brian2:
        import references

        res = references.run_brian2("coba", 4000, duration_ms=duration, dt=dt, repeats=args.repeats)
        run_s = res["run_s"]
        print(
            f"Brian2 standalone, one trial: compile {res['compile_s']:.1f} s, run median "
            f"{run_s:.4f} s (min {res['run_s_min']:.4f}), rate {res['rate_hz']}"
        )
        for B in (1, 8, 32, 128):
            bio = B * duration / 1000.0
            print(
                f"{'Brian2, one by one':>22} {B:>4} {'':>9} {B * run_s:>8.3f} {'':>8} "
                f"{bio / (B * run_s):>12.3f} {n_syn * B * steps / (B * run_s):>10.3g}"
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--coba", type=int, nargs="*", default=None)
    parser.add_argument("--duration", type=float, default=1000.0)
    parser.add_argument("--vmap", type=int, nargs="*", default=[])
    parser.add_argument("--vmap-divide", type=int, default=10)
    parser.add_argument("--brian2", action="store_true")
    args = parser.parse_args()
    if args.coba is not None:
        return coba(args)
    dt, n = 0.1, args.n
    print(
        f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}"
    )
    print(f"n = {n} Expon synapses, tau from 2 to 20 ms, {args.steps} steps of {dt} ms, float32")
    synapse = jsyn.Expon(tau=jnp.linspace(2.0, 20.0, n, dtype=jnp.float32))
    fixed = jnp.asarray(np.random.default_rng(0).random(n) < 0.002, jnp.float32)
    fn = eqx.filter_jit(run)
    header = f"{'generator':>14} {'compile s':>10} {'median s':>9} {'min s':>9} {'ms/step':>8}"
    print(f"{header} {'x update':>9} {'rerun equal':>11} {'vmap exact':>10}")
    reps = args.repeats
    _, c, base, mn = timed(fn, PoissonDriven(synapse, fixed, n), None, args.steps, dt, repeats=reps)
    print(f"{'update only':>14} {c:>10.3f} {base:>9.4f} {mn:>9.4f} {1e3 * base / args.steps:>8.3f}")
    system = PoissonDriven(synapse, None, n)
    for impl in IMPLS:
        key = jax.random.key(0, impl=impl)
        out, c, med, mn = timed(fn, system, key, args.steps, dt, repeats=reps)
        again = fn(system, jax.random.key(0, impl=impl), args.steps, dt)
        same = all(bool(jnp.array_equal(a, b)) for a, b in zip(out, again))
        print(
            f"{impl:>14} {c:>10.3f} {med:>9.4f} {mn:>9.4f} {1e3 * med / args.steps:>8.3f} "
            f"{med / base:>9.1f} {str(same):>11} {str(vmap_exact(impl)):>10}"
        )


if __name__ == "__main__":
    main()
