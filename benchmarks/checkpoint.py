"""Gradient memory and time of long simulations, with and without nested checkpointing.

The gradient of a loss of a 64-synapse `DualExpon` run driven by a regular spike train,
recording one number per step (the summed conductance), w.r.t. `tau_decay`, for 1e5 and
1e6 steps, with `jsyn.simulate(..., checkpoint=None | 2 | 3)`. Each configuration runs in
its own process, so its peak resident memory (`ru_maxrss`, which includes the Python
process, JAX and the (steps, 64) float64 input: 51 MB at 1e5 steps, 512 MB at 1e6) is its
own; XLA's compiled temporary memory (`memory_analysis().temp_size_in_bytes`: what the
gradient computation allocates beyond its inputs and outputs) is reported too, and the
rise of the peak resident memory during the first gradient call (after compiling). Times are the
median of the repeats after compilation (the machine may be shared: see min and max).

Run: `python benchmarks/checkpoint.py [--steps 100000 1000000] [--repeats 3]`
"""

import argparse
import json
import platform
import resource
import subprocess
import sys
import time


def one(T: int, checkpoint, n: int, repeats: int) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np

    import jsyn

    # One spike every 20 ms; an argument of the compiled functions, not a constant.
    x = jnp.tile(jnp.zeros((200, n)).at[0].set(1.0), (T // 200, 1))
    tau = jnp.asarray(5.0)

    def loss(tau, x):
        _, rec = jsyn.simulate(
            jsyn.DualExpon(1.0, tau), x, 0.1, record=lambda s, g: jnp.sum(g), checkpoint=checkpoint
        )
        return jnp.sum(rec**2) / T

    grad = jax.jit(jax.value_and_grad(loss))
    t0 = time.perf_counter()
    compiled = grad.lower(tau, x).compile()
    compile_s = time.perf_counter() - t0
    temp = compiled.memory_analysis().temp_size_in_bytes
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    value, g = compiled(tau, x)
    jax.block_until_ready(g)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(tau, x))
        times.append(time.perf_counter() - t0)
    fwd = jax.jit(loss).lower(tau, x).compile()
    fwd(tau, x).block_until_ready()
    fwd_times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fwd(tau, x).block_until_ready()
        fwd_times.append(time.perf_counter() - t0)
    return {
        "steps": T,
        "checkpoint": checkpoint,
        "grad": float(g),
        "compile_s": compile_s,
        "fwd_s": float(np.median(fwd_times)),
        "grad_s": float(np.median(times)),
        "grad_min_s": min(times),
        "grad_max_s": max(times),
        "temp_MB": temp / 1e6,
        "rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3,
        "rss_grad_MB": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1e3,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--checkpoints", nargs="+", default=["none", "2", "3"])
    parser.add_argument("--n", type=int, default=64, help="synapses (default 64)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", nargs=2, metavar=("STEPS", "CHECKPOINT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        T, c = int(args.one[0]), None if args.one[1] == "none" else int(args.one[1])
        print(json.dumps(one(T, c, args.n, args.repeats)))
        return
    import jax

    print(f"device: {jax.devices()[0].device_kind} ({platform.machine()}); jax {jax.__version__}")
    print(
        f"DualExpon, {args.n} synapses, float64, value_and_grad w.r.t. tau_decay; "
        f"median of {args.repeats} after compile"
    )
    header = (
        f"{'steps':>9} {'checkpoint':>10} {'fwd s':>7} {'grad s':>7} {'(min-max)':>13} "
        f"{'XLA temp MB':>12} {'peak RSS MB':>12} {'RSS rise MB':>12}"
    )
    print(header)
    grads = {}
    for T in args.steps:
        for c in args.checkpoints:
            cmd = [
                sys.executable,
                __file__,
                "--one",
                str(T),
                c,
                "--n",
                str(args.n),
                "--repeats",
                str(args.repeats),
            ]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{T:>9} {c:>10}  failed: {out.stderr.strip().splitlines()[-1]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            grads.setdefault(T, []).append(r["grad"])
            print(
                f"{T:>9} {c:>10} {r['fwd_s']:7.2f} {r['grad_s']:7.2f} "
                f"({r['grad_min_s']:5.2f}-{r['grad_max_s']:5.2f}) {r['temp_MB']:12.1f} "
                f"{r['rss_MB']:12.0f} {r['rss_grad_MB']:12.0f}"
            )
    for T, gs in grads.items():
        spread = max(gs) - min(gs)
        print(f"{T} steps: gradients agree to {spread / abs(gs[0]):.1e} (relative)")


if __name__ == "__main__":
    main()
