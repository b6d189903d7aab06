"""The COBA network from 4k to 1M cells, jsyn beside Brian2: do run time and memory grow no
worse than linearly in the number of synapses?

    python benchmarks/scale.py [--sizes 4000,16000,64000,256000,1000000] [--only jsyn,brian2]
        [--repeats R] [--duration 1000] [--json results.json]
    taskset -c 0 python benchmarks/scale.py --sizes 256000,1000000     # pinned to one core

The network of `_ei_network.py` (COBA, 80 % excitatory, p = 0.02 at 4k, 80 synapses per cell
above), 1 s of simulated time: jsyn float32 as `coba.py` runs it (`_ei_network.jsyn_run`), and
Brian2 cpp_standalone on one thread (`references.run_brian2`). Each size and simulator runs in
a fresh interpreter (`_ei_network.run_isolated`). Run times are medians of `--repeats` (default
3 below 256k cells, 1 from 256k on).

Peak memory is the largest resident set of the process that simulates: for jsyn the
interpreter (`VmHWM` of `/proc/self/status` at its end: build, compile and runs), for Brian2
its compiled binary (its `VmHWM`, read every 20 ms while it runs: the binary's `ru_maxrss`
would not do, Linux counts in it the parent's resident set at `exec`), with the interpreter
that generated the code beside it. The growth table divides by the synapses: the run time per
synapse as a multiple of the smallest size's, and the memory added above the smallest size
per synapse added (bytes). Constant columns down the sizes mean linear growth.
"""

import os
import subprocess
import time

import _ei_network as ei

SIZES = "4000,16000,64000,256000,1000000"
LARGE = 256_000  # from here on one repeat by default


def peak_rss_mib(pid="self") -> float:
    """The largest resident set of process `pid` so far (MiB; 0 once it has ended)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def jsyn_point(n: int, duration: float, repeats: int) -> dict:
    """`_ei_network.jsyn_run` with this interpreter's peak memory (run it in a fresh one)."""
    return dict(ei.jsyn_run(ei.COBA, n, duration, repeats), rss=peak_rss_mib())


def brian2_point(n: int, duration: float, repeats: int) -> dict:
    """`_ei_network.brian2_run` with the peak memory of Brian2's binary and of this
    interpreter (run it in a fresh one: `subprocess.call` is replaced for the rest of it)."""
    peaks = []

    def call(args, **kwargs):  # subprocess.call, watching the child's peak memory
        proc, peak = subprocess.Popen(args, **kwargs), 0.0
        while proc.poll() is None:
            peak = max(peak, peak_rss_mib(proc.pid))
            time.sleep(0.02)
        peaks.append(peak)
        return proc.returncode

    subprocess.call = call  # Brian2's device runs its binary with subprocess.call
    res = ei.brian2_run(ei.COBA, n, duration, repeats)
    return dict(res, rss=max(peaks), python_rss=peak_rss_mib())


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def row(name: str, n: int, res: dict) -> str:
    host = f" (interpreter {res['python_rss']:5.0f})" if "python_rss" in res else ""
    return (
        f"{name:6s} N={n:8d}  syn {res['synapses']:11,d}  build {res['build']:6.2f} s  "
        f"compile {res['compile']:6.2f} s  run {res['run']:8.3f} s (median of "
        f"{len(res['runs'])})  end-to-end {res['first']:7.2f} s  rate {res['rate']:5.2f} Hz  "
        f"peak {res['rss']:7.0f} MiB{host}  load {load()}"
    )


def growth(name: str, points: dict) -> None:
    sizes = sorted(points)
    base = points[sizes[0]]
    per_syn = base["run"] / base["synapses"]
    print(f"  {name}, from N={sizes[0]}:")
    for n in sizes:
        r = points[n]
        run_ns = r["run"] / r["synapses"] * 1e9
        added = r["synapses"] - base["synapses"]
        mem = (r["rss"] - base["rss"]) * 2**20 / added if added else float("nan")
        print(
            f"    N={n:8d}  synapses x{r['synapses'] / base['synapses']:7.1f}  run x"
            f"{r['run'] / base['run']:7.1f}  run per synapse {run_ns:6.2f} ns"
            f" (x{r['run'] / r['synapses'] / per_syn:5.2f})  memory x{r['rss'] / base['rss']:6.1f},"
            f" {mem:6.1f} B per synapse added"
        )


def main(argv=None) -> dict:
    import argparse
    import json

    parser = argparse.ArgumentParser(description="COBA from 4k to 1M cells, jsyn and Brian2.")
    parser.add_argument("--sizes", default=SIZES, help="network sizes N")
    parser.add_argument("--only", default="jsyn,brian2", help="simulators to run")
    parser.add_argument(
        "--repeats", type=int, default=None, help=f"timed runs (default 3, 1 from N={LARGE})"
    )
    parser.add_argument("--duration", type=float, default=1000.0, help="simulated time (ms)")
    parser.add_argument("--json", default=None, help="write the results to this file")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    wanted = [w for w in ("jsyn", "brian2") if w in args.only.split(",")]
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"COBA network, dt = {ei.DT} ms, {args.duration:g} ms simulated, float32 (jsyn)")
    print(f"machine: {ei.machine()}; affinity: {ei.pinned()}; {stamp}; load {load()}")
    results: dict = {}
    for n in sizes:
        repeats = args.repeats or (3 if n < LARGE else 1)
        for name in wanted:
            res = ei.run_isolated(f"{name}_point", f"{n}, {args.duration!r}, {repeats}", "scale")
            if res is not None:
                results.setdefault(name, {})[n] = res
                print(row(name, n, res), flush=True)
    print("\ngrowth (constant 'per synapse' columns: linear in synapses):")
    for name, points in results.items():
        growth(name, points)
    print("\njsyn / Brian2 (below 1: jsyn is faster or smaller):")
    for n in sizes:
        a, b = (results.get(k, {}).get(n) for k in ("jsyn", "brian2"))
        if a and b:
            print(
                f"  N={n:8d}  run {a['run'] / b['run']:5.2f}x  end-to-end "
                f"{a['first'] / b['first']:5.2f}x  peak memory {a['rss'] / b['rss']:5.2f}x  "
                f"rate {a['rate'] / b['rate']:5.3f}"
            )
    print(f"done {time.strftime('%H:%M UTC', time.gmtime())}; load {load()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": "COBA", "date": stamp, "results": results}, f, indent=1)
    return results


if __name__ == "__main__":
    main()
