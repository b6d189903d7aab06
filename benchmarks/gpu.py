"""One run that fills the README's accelerator table: COBA networks at 64k, 256k and 1M cells,
trial batches of the 4k network (B = 8 ... 256), and `jsyn.fit_many` over 10^4 recordings,
printed as one table with the device named. It runs on whatever JAX's default device is (a
GPU when one is lent, else the CPU), so a single short run on a lent machine gives every
figure; nothing in jsyn needs an accelerator.

    python benchmarks/gpu.py                 # the full table (sized for a GPU)
    python benchmarks/gpu.py --quick         # small sizes, a check of the script on a CPU

Every row: compile time apart from run time (first call vs the median of the repeats),
block_until_ready around every call, float32 throughout (the accelerator's own precision),
the spike rate as a check that each run did what the CPU runs do (about 20 Hz for COBA).
"""

import argparse
import statistics
import time

import _ei_network as ei
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import jsyn

DT = ei.DT


def timed(fn, *args, repeats: int):
    """`(output, compile s, median run s)` of `fn(*args)`: the first call (compile and run)
    apart, then `repeats` runs."""
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        runs.append(time.perf_counter() - t0)
    run = statistics.median(runs)
    return out, max(first - run, 0.0), run


def coba_rows(sizes, duration: float, repeats: int):
    for n in sizes:
        net, n_syn = ei.network(ei.COBA, n, seed=0)
        compile_s, runs, spikes, _, _ = ei.timed_runs(net, n, duration, repeats, seed=0)
        run = statistics.median(runs)
        rate = statistics.mean(spikes) / n / (duration / 1000.0)
        yield (
            f"COBA {n // 1000}k, {duration:g} ms",
            compile_s,
            run,
            duration / 1000 / run,
            f"{n_syn:.3g} synapses, {rate:.1f} Hz",
        )


def trial_rows(batches, duration: float, repeats: int):
    net, _ = ei.network(ei.COBA, 4000, seed=0)
    steps = int(round(duration / DT))

    @eqx.filter_jit
    def run(system, state):
        count = lambda s, spikes: jnp.sum(spikes["cells"])  # noqa: E731
        _, counts = jsyn.simulate(system, None, DT, state=state, n_steps=steps, record=count)
        return jnp.sum(counts)

    def initial(B):
        def one(key):
            V0 = jax.random.uniform(key, (4000,), jnp.float32, minval=-60.0, maxval=-50.0)
            return eqx.tree_at(lambda s: s.groups["cells"].V, net.init_state(), V0)

        return jax.vmap(one)(jax.random.split(jax.random.key(1), B))

    for B in batches:
        batch = jsyn.trials(net, B)
        state = batch.merge_state(initial(B))
        spikes, compile_s, run_s = timed(run, batch.net, state, repeats=repeats)
        rate = float(spikes) / (B * 4000) / (duration / 1000.0)
        yield (
            f"COBA 4k trials, B = {B}",
            compile_s,
            run_s,
            B * duration / 1000 / run_s,
            f"{rate:.1f} Hz",
        )


def fit_rows(n_recordings: int, repeats: int):
    dt, T = 0.1, 2000
    counts = np.zeros((T, 1))
    counts[np.round(np.array([10.0, 40.0, 55.0, 90.0, 130.0, 160.0]) / dt).astype(int), 0] = 1.0
    spikes = jnp.asarray(counts, jnp.float32)

    def psc(tau_r, tau_d, g_max):
        return jsyn.PSC(jsyn.DualExpon(tau_r, tau_d), jsyn.COBA(g_max=g_max, E=0.0), V_hold=-70.0)

    _, clean = jsyn.simulate(psc(1.2, 7.5, 1.8), spikes, dt)
    sigma = 0.05 * float(jnp.max(jnp.abs(clean)))
    noise = sigma * jax.random.normal(jax.random.key(0), (n_recordings, T, 1), jnp.float32)
    targets = clean[None] + noise
    init = psc(jsyn.LogPositive(1.0), jsyn.LogPositive(5.0), jsyn.SoftplusPositive(1.0))

    def many(ys):
        res = jsyn.fit_many(
            init, spikes, ys, dt, params="tau_rise,tau_decay,g_max", shared_inputs=True
        )
        return res.loss, res.converged

    (_, converged), compile_s, run_s = timed(many, targets, repeats=repeats)
    yield (
        f"fit_many, {n_recordings} x {T} samples",
        compile_s,
        run_s,
        None,
        f"{int(jnp.sum(converged))}/{n_recordings} converged",
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a check on a CPU)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.quick:
        sizes, batches, duration, n_fit = (4000,), (2, 4), 100.0, 100
    else:
        sizes, batches, duration, n_fit = (
            (64_000, 256_000, 1_000_000),
            (8, 32, 128, 256),
            1000.0,
            10_000,
        )
    device = jax.devices()[0]
    print(
        f"device: {device.device_kind} ({jax.default_backend()}), {len(jax.devices())} "
        f"device(s), jax {jax.__version__}, jsyn {jsyn.__version__}, float32"
    )
    print(f"host: {ei.machine()}, {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"{'run':<34} {'compile s':>9} {'run s':>9} {'bio s / wall s':>14}  notes", flush=True)
    rows = [
        coba_rows(sizes, duration, args.repeats),
        trial_rows(batches, duration, args.repeats),
        fit_rows(n_fit, args.repeats),
    ]
    for gen in rows:
        for name, compile_s, run_s, speed, note in gen:
            speed_s = "" if speed is None else f"{speed:.3g}"
            print(f"{name:<34} {compile_s:>9.2f} {run_s:>9.3f} {speed_s:>14}  {note}", flush=True)


if __name__ == "__main__":
    main()
