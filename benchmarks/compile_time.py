"""Compile time of the COBA benchmark network (`_ei_network.py`: one LIF group of N cells,
two event-driven `jsyn.Sparse` projections with Expon + COBA from its E and I slices,
float32, dt = 0.1 ms), apart from its run time, at N = 4k, 16k and 64k (issue 22).

    python benchmarks/compile_time.py [--sizes 4000,16000,64000] [--repeats 3] [--rounds 2]
    python benchmarks/compile_time.py --against /path/to/other/src   # alternate two trees

Each measurement runs in a fresh interpreter (no compilation cache, clean imports): the
network is built, `jax.jit(run).trace(...)`, `.lower()` and `.compile()` are timed apart
(wall and process CPU time), the number of fused kernels of the compiled module is counted,
then 1 s of network time runs `--repeats` times (median wall and CPU time). The spike count
and a hash of the final state say whether two trees simulate the same thing bit for bit.
With `--against SRC`, the jsyn source tree `SRC` (a directory holding `jsyn/`) is measured
too, alternating with this tree, `--rounds` times each, so that a noisy shared machine
loads both alike; the medians of each tree and their ratios are printed at the end.
"""

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OWN_SRC = os.path.join(os.path.dirname(HERE), "src")


def measure(n: int, repeats: int, duration: float = 1000.0) -> dict:
    """One fresh-process measurement of the network of `n` cells (see the module docstring)."""
    import _ei_network as m
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    import jsyn

    net, _ = m.network(m.COBA, n, 0)
    state = net.init_state()
    n_steps = int(round(duration / m.DT))
    params, static = eqx.partition(net, eqx.is_array)

    def count(state, spikes):
        return jnp.sum(spikes["cells"])

    @jax.jit
    def run(params, state):
        network = eqx.combine(params, static)
        final, counts = jsyn.simulate(
            network, None, m.DT, state=state, n_steps=n_steps, record=count
        )
        return jnp.sum(counts), final

    marks = [(time.perf_counter(), time.process_time())]
    traced = run.trace(params, state)
    marks.append((time.perf_counter(), time.process_time()))
    lowered = traced.lower()
    marks.append((time.perf_counter(), time.process_time()))
    compiled = lowered.compile()
    marks.append((time.perf_counter(), time.process_time()))
    wall = [b[0] - a[0] for a, b in zip(marks, marks[1:])]
    cpu = [b[1] - a[1] for a, b in zip(marks, marks[1:])]
    kernels = sum(" fusion(" in line for line in compiled.as_text().splitlines())
    V0 = jax.random.uniform(jax.random.key(1), (n,), minval=-60.0, maxval=-50.0)
    s0 = jax.block_until_ready(eqx.tree_at(lambda s: s.groups["cells"].V, state, V0))
    runs, run_cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        spikes, final = jax.block_until_ready(compiled(params, s0))
        runs.append(time.perf_counter() - t)
        run_cpu.append(time.process_time() - c)
    leaves = jax.tree.leaves(final)
    digest = hashlib.sha1(b"".join(np.asarray(x).tobytes() for x in leaves)).hexdigest()[:12]
    return {
        "n": n,
        "trace": wall[0],
        "lower": wall[1],
        "compile": wall[2],
        "total": sum(wall),
        "total_cpu": sum(cpu),
        "kernels": kernels,
        "run": statistics.median(runs),
        "run_cpu": statistics.median(run_cpu),
        "spikes": int(spikes),
        "state": digest,
        "load": os.getloadavg()[0],
    }


def isolated(src: str, n: int, repeats: int) -> dict | None:
    """`measure(n, repeats)` in a fresh interpreter importing jsyn from `src`."""
    code = (
        f"import json, sys; sys.path[:0] = [{src!r}, {HERE!r}]; import compile_time as c; "
        f"print('RESULT', json.dumps(c.measure({n}, {repeats})))"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, HERE]))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    sys.stderr.write(f"N={n} ({src}) failed:\n{proc.stderr[-3000:]}\n")
    return None


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="4000,16000,64000")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of 1 s per process")
    parser.add_argument("--rounds", type=int, default=1, help="processes per tree and size")
    parser.add_argument("--against", default=None, metavar="SRC", help="another jsyn src tree")
    args = parser.parse_args(argv)
    import _ei_network as m

    trees = {"this": OWN_SRC} | ({"other": os.path.abspath(args.against)} if args.against else {})
    print(f"machine: {m.machine()}; affinity: {m.pinned()}; {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"load average at start: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for name, src in trees.items():
        print(f"{name}: {src}")
    header = (
        f"{'tree':6s} {'N':>6s}  {'trace':>6s} {'lower':>6s} {'compile':>7s} {'total':>6s}"
        f" {'cpu':>6s} {'kernels':>7s}  {'run':>6s} {'run cpu':>7s}  spikes   state         load"
    )
    print(header)
    results: dict = {}
    for n in (int(s) for s in args.sizes.split(",")):
        for _ in range(args.rounds):
            for name, src in trees.items():  # alternating, so that both see the same load
                r = isolated(src, n, args.repeats)
                if r is None:
                    continue
                results.setdefault((name, n), []).append(r)
                print(
                    f"{name:6s} {n:6d}  {r['trace']:6.2f} {r['lower']:6.2f} {r['compile']:7.2f}"
                    f" {r['total']:6.2f} {r['total_cpu']:6.2f} {r['kernels']:7d}  {r['run']:6.3f}"
                    f" {r['run_cpu']:7.3f}  {r['spikes']:7d} {r['state']} {r['load']:5.1f}",
                    flush=True,
                )
    print("\nmedians over the processes (s): compile = trace + lower + compile")
    for (name, n), rs in results.items():
        keys = ("total", "total_cpu", "run", "run_cpu")
        med = {k: statistics.median(r[k] for r in rs) for k in keys}
        line = f"  {name:6s} N={n:6d}: compile {med['total']:6.2f} (cpu {med['total_cpu']:6.2f})"
        line += f", run {med['run']:6.3f} (cpu {med['run_cpu']:6.3f}), {len(rs)} processes"
        other = results.get(("other", n)) if name == "this" else None
        if other:
            o = {k: statistics.median(r[k] for r in other) for k in med}
            line += (
                f"; this / other: compile {med['total'] / o['total']:.2f}"
                f" (cpu {med['total_cpu'] / o['total_cpu']:.2f}), run {med['run'] / o['run']:.2f}"
                f" (cpu {med['run_cpu'] / o['run_cpu']:.2f})"
            )
        print(line)
    print(f"load average at end: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
