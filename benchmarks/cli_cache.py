"""The compilation cache of `jsyn fit`: the wall time of a first and a second invocation.

`jsyn fit` keeps JAX's compiled programs in `$XDG_CACHE_HOME/jsyn/jax`
(`jsyn.cli.use_compile_cache`). This script runs the command as a user does (what the
console script runs), each time a new Python process, with `XDG_CACHE_HOME` pointing at a
fresh folder: first with the cache empty (compiles and writes it), then again (reads it),
and once with `--no-cache`; `--repeats` rounds, each with a fresh folder. Two fits: the
shipped example (`jsyn fit --model DualExpon`) and an ABF file of the issue-20 kind
(`tests/io/ephys_synthetic.py`: 10 sweeps of 6000 samples, STP -> DualExpon -> COBA with
a latency, 7 parameters; intervals from the sweeps).

    python benchmarks/cli_cache.py [--repeats 2]

Prints the machine, date and load average, and per fit the wall times (s) of each run and
their medians.
"""

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENTRY = "import sys; from jsyn.cli import main; sys.exit(main(sys.argv[1:]))"
"""What the `jsyn` console script runs (`[project.scripts] jsyn = "jsyn.cli:main"`)."""


def run(argv, cache: Path) -> float:
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    env.pop("JSYN_NO_COMPILE_CACHE", None)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", ENTRY, *argv], env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"jsyn {' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    machine = platform.processor() or platform.machine()
    print(
        f"{machine}, {os.cpu_count()} cores; {now} UTC; load average "
        f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min) at the start"
    )
    sys.path.insert(0, str(ROOT / "tests" / "io"))
    from ephys_synthetic import sweeps, write_abf

    with tempfile.TemporaryDirectory() as tmp:
        abf = Path(tmp) / "cell.abf"
        write_abf(abf, sweeps(10))
        fits = {
            "shipped example, DualExpon": ["fit", "--model", "DualExpon"],
            "ABF, 10 sweeps, STP+DualExpon+delay": [
                "fit",
                str(abf),
                "--V-hold",
                "-70",
                "--stim",
                "auto",
                "--model",
                "DualExpon",
                "--stp",
                "STP",
                "--max-delay",
                "10",
                "--blank",
                "1",
            ],
        }
        for label, argv in fits.items():
            rows = {"first (empty cache)": [], "second (cache read)": [], "--no-cache": []}
            for r in range(args.repeats):
                cache = Path(tmp) / f"cache-{label[:3]}-{r}"
                rows["first (empty cache)"].append(run(argv, cache))
                rows["second (cache read)"].append(run(argv, cache))
                rows["--no-cache"].append(run([*argv, "--no-cache"], cache))
            print(f"\n{label}")
            for name, walls in rows.items():
                walls = sorted(walls)
                median = (
                    walls[len(walls) // 2]
                    if len(walls) % 2
                    else sum(walls[len(walls) // 2 - 1 : len(walls) // 2 + 1]) / 2
                )
                print(
                    f"  {name:<22} median {median:6.1f} s   runs "
                    f"{', '.join(f'{w:.1f}' for w in walls)}"
                )
    print(f"\nload average {' / '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")


if __name__ == "__main__":
    main()
