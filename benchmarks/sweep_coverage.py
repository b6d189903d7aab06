"""How often the 95 % intervals of a fitted sweep average hold the truth: `jsyn.fit`'s
(from the residuals, white noise assumed) against `jsyn.sweep_intervals`' (from the
sweep-to-sweep variability), on synthetic ABF files with known truth (the generator of
tests/io/ephys_synthetic.py: 10 sweeps of 300 ms at 20 kHz, a 50 Hz train of 5 and a
recovery stimulus, artifacts, a holding current, white noise of 4 pA and spontaneous
events of -12 pA at `--events` Hz), fitted with STP -> DualExpon -> COBA and a latency
(7 parameters) by `jsyn.io.fit_recording`.

    python benchmarks/sweep_coverage.py --seeds 40 --events 2

Prints, per parameter, the fraction of seeds whose interval held the truth, for both
kinds of interval, and the machine, the date and the load average.
"""

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "io"))
from ephys_synthetic import TRUTH, sweeps, write_abf  # noqa: E402

import jsyn  # noqa: E402
from jsyn import io  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--first", type=int, default=100)
    parser.add_argument("--events", type=float, default=2.0)
    parser.add_argument("--n-sweeps", type=int, default=10)
    args = parser.parse_args()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    machine = platform.processor() or platform.machine()
    print(
        f"{platform.node()} {machine}, {os.cpu_count()} cores, "
        f"{jax.devices()[0].device_kind}; {now} UTC; load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{args.seeds} seeds from {args.first}, {args.n_sweeps} sweeps, events {args.events:g} Hz"
    )
    hits = {"residuals": [], "sweeps": []}
    names = None
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cell.abf"
        for seed in range(args.first, args.first + args.seeds):
            write_abf(path, sweeps(args.n_sweeps, seed=seed, events_hz=args.events))
            fit = io.fit_recording(
                path,
                model="DualExpon",
                stp="STP",
                max_delay=10.0,
                blank=1.0,
                V_hold=-70.0,
                errors="residuals",
            )
            if not fit.converged:
                print(f"seed {seed}: {fit.result.status}; left out")
                continue
            white = fit.result
            train = fit.train
            between = jsyn.sweep_intervals(
                white,
                jnp.asarray(train.spikes),
                train.sweeps.T,
                train.dt,
                columns=train.columns,
                weights=jnp.asarray(train.weights),
            )
            names = white.names
            for kind, res in (("residuals", white), ("sweeps", between)):
                row = []
                for n in names:
                    truth = TRUTH[n.split(".")[-1]]
                    row.append(float(res.ci_low[n]) <= truth <= float(res.ci_high[n]))
                hits[kind].append(row)
    elapsed = time.perf_counter() - start
    n = len(hits["sweeps"])
    print(f"{n} converged fits in {elapsed:.0f} s; coverage of the 95 % intervals:")
    print(f"{'parameter':<20} {'residuals':>10} {'sweeps':>10}")
    for j, name in enumerate(names):
        r = np.mean([row[j] for row in hits["residuals"]])
        s = np.mean([row[j] for row in hits["sweeps"]])
        print(f"{name:<20} {r:>10.2f} {s:>10.2f}")
    for kind in hits:
        every = np.mean([all(row) for row in hits[kind]])
        print(f"all 7 inside ({kind}): {every:.2f}")


if __name__ == "__main__":
    main()
