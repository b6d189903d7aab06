"""jsyn.simulate against a hand-written `jax.lax.scan` of the same kinetics.

Measures what the protocol costs: a DualExpon population of n synapses driven by a random
spike raster for T steps, forward and forward+backward (gradient w.r.t. both time
constants), compile time apart from run time. Prints the device, the sizes, the median and
minimum of the repeats, and the ratio jsyn / baseline.

    python benchmarks/synapse_scan.py [--steps 10000] [--sizes 100,10000] [--repeats 7]
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import jsyn


def baseline(tau_r, tau_d, x, dt):
    """The DualExpon cascade written by hand, exact over each step."""
    fr, fd = jnp.exp(-dt / tau_r), jnp.exp(-dt / tau_d)
    k = (fd - fr) / (1 / tau_r - 1 / tau_d)
    r = tau_r / tau_d
    a = jnp.exp(r * jnp.log(r) / (r - 1)) / tau_r

    def body(carry, xt):
        h, g = carry
        g = g * fd + h * k
        h = h * fr + a * xt
        return (h, g), g

    zeros = jnp.zeros(x.shape[1:], x.dtype)
    return jax.lax.scan(body, (zeros, zeros), x)[1]


def with_jsyn(tau_r, tau_d, x, dt):
    return jsyn.simulate(jsyn.DualExpon(tau_rise=tau_r, tau_decay=tau_d), x, dt)[1]


def timed(fn, *args, repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    compile_s = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        runs.append(time.perf_counter() - t0)
    return compile_s, float(np.median(runs)), float(np.min(runs))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--sizes", default="100,10000")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    dt = 0.1
    print(
        f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}"
    )
    print(f"{'n':>7} {'mode':>8} {'impl':>8} {'compile s':>10} {'median s':>10} {'min s':>10}")
    for n in map(int, args.sizes.split(",")):
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.random((args.steps, n)) < 0.01, jnp.float32)
        taus = (jnp.float32(1.5), jnp.float32(7.0))
        medians = {}
        for impl, fn in (("baseline", baseline), ("jsyn", with_jsyn)):
            fwd = jax.jit(lambda a, b, x, fn=fn: fn(a, b, x, dt))
            bwd = jax.jit(jax.grad(lambda a, b, x, fn=fn: fn(a, b, x, dt).sum(), argnums=(0, 1)))
            for mode, f in (("fwd", fwd), ("fwd+bwd", bwd)):
                c, med, mn = timed(f, *taus, x, repeats=args.repeats)
                medians[impl, mode] = med
                print(f"{n:>7} {mode:>8} {impl:>8} {c:>10.3f} {med:>10.4f} {mn:>10.4f}")
        for mode in ("fwd", "fwd+bwd"):
            ratio = medians["jsyn", mode] / medians["baseline", mode]
            print(f"{n:>7} {mode:>8} jsyn/baseline median ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
