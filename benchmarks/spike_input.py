"""Recorded input at any length: the cost of a step of a `jsyn.SpikeTimes` source against
the number of spikes it stores (issue 22).

A source of `--cells` neurons (default 1000) replays a recording whose spikes are spread
uniformly at `--rate` Hz per neuron (default 10 Hz: about one spike per step of 0.1 ms),
so every recording has the same spikes per step and only its length changes, from 10^3 to
10^7 stored spikes. Each run replays the first steps inside one `jax.jit`, compiled apart,
for `--steps` and for a quarter of it (default 2000 and 500); the cost per step is the
slope between the two (medians over `--repeats`), and the fixed cost per call is what is
left: the checks at the start of a run, which read every stored spike once (finite times,
>= 0). The eager `jsyn.simulate` call of `--steps` steps adds the host's float64 step
indices (the exact rows, the unit warning), also one pass over the stored spikes.

`before` is the step jsyn used until issue 22, kept here for the comparison: at every step
it rounds every stored spike time and scatters the ones due (a scan of all stored spikes),
run up to `--before-max` stored spikes (it costs ~1 ms per step at 10^6).

    taskset -c 0 python benchmarks/spike_input.py [--repeats 5] [--steps 2000] [--totals 1e3,1e7]
"""

import argparse
import os
import platform
import time
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import jsyn

jax.config.update("jax_enable_x64", True)
# random recordings put a few spikes of one neuron into one step; they are meant here
warnings.filterwarnings("ignore", category=jsyn.UnitWarning)
DT = 0.1


class ScanAll(eqx.Module):
    """The step before issue 22: every stored spike tested at every step."""

    times: jax.Array
    indices: jax.Array
    n: int = eqx.field(static=True)

    def init_state(self, n=None, *, dtype=None):
        return jsyn.SpikeTimesState(i=jnp.zeros((), jnp.int32), spikes=jnp.zeros(self.n))

    def step(self, state, x, dt):
        hits = (jnp.round(self.times / dt).astype(jnp.int32) == state.i).astype(state.spikes.dtype)
        spikes = jnp.zeros_like(state.spikes).at[self.indices].add(hits)
        return jsyn.SpikeTimesState(i=state.i + 1, spikes=spikes), spikes


def recording(total, cells, rate, seed=0):
    """`total` spikes of `cells` neurons at `rate` Hz each, uniform over the recording."""
    rng = np.random.default_rng(seed)
    duration = total / (cells * rate) * 1000.0  # ms
    return rng.uniform(0.0, duration, total), rng.integers(0, cells, total)


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--before-max", type=int, default=1_000_000)
    parser.add_argument("--totals", default="1e3,1e4,1e5,1e6,1e7")
    args = parser.parse_args()
    print(
        f"# {platform.machine()} {jax.devices()[0].device_kind}, jax {jax.__version__}, "
        f"load average {os.getloadavg()[0]:.2f}, {args.cells} cells at {args.rate} Hz, "
        f"{args.steps} and {args.steps // 4} steps of {DT} ms, float64, medians of {args.repeats}"
    )
    print(
        "| stored spikes | spikes per step | jsyn us/step | jsyn ms/call (fixed) | "
        "eager call (s) | before us/step | load |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    long, short = args.steps, args.steps // 4

    def runner(n_steps):
        return eqx.filter_jit(
            lambda src: jsyn.simulate(src, None, DT, n_steps=n_steps, state=src.init_state())[1]
        )

    run_long, run_short = runner(long), runner(short)

    def slope(src):
        """(us per step, ms per call) from the runs of `long` and `short` steps."""
        t_long = median_time(lambda: run_long(src), args.repeats)
        t_short = median_time(lambda: run_short(src), args.repeats)
        per_step = (t_long - t_short) / (long - short)
        return per_step * 1e6, (t_long - per_step * long) * 1e3

    for total in (int(float(t)) for t in args.totals.split(",")):
        times, cells = recording(total, args.cells, args.rate)
        src = jsyn.SpikeTimes(times, cells, n=args.cells)
        first = jax.block_until_ready(run_long(src))  # compiles
        jax.block_until_ready(run_short(src))
        per_step, per_call = slope(src)
        jax.block_until_ready(jsyn.simulate(src, None, DT, n_steps=long)[1])  # compiles
        eager = median_time(
            lambda: jsyn.simulate(src, None, DT, n_steps=long)[1], max(1, args.repeats // 2)
        )
        before = "-"
        if total <= args.before_max:
            old = ScanAll(src.times, src.indices, args.cells)
            np.testing.assert_array_equal(run_long(old), first)  # the same spikes
            jax.block_until_ready(run_short(old))
            before = f"{slope(old)[0]:.1f}"
        per = float(first.sum()) / long
        print(
            f"| {total:.0e} | {per:.2f} | {per_step:.1f} | {per_call:.1f} | {eager:.3f} | "
            f"{before} | {os.getloadavg()[0]:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
