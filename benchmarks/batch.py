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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
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
