"""brainevent's event-driven CSR product against `jsyn.Sparse.deliver` (issue 22): the
delivery of one step's spikes through the COBA network's wiring, its agreement, its
gradients, and (`--network`) the whole network with brainevent delivering.

    python benchmarks/brainevent_delivery.py [--sizes 4000,16000,64000] [--active 0.005]
        [--steps 200] [--rounds 7] [--jit-grad 4000] [--network] [--json results.json]

Needs brainevent (0.2.1 measured; the bench venv), which jsyn does not depend on.

Delivery: the E and I connections of `_ei_network.network(COBA, N)` (the same `jsyn.Sparse`
tables), fed `--steps` different spike vectors with `--active` of the cells spiking (0.5 %
by default, the issue's figure; 20 Hz averages 0.2 % per step of 0.1 ms), each vector
delivered through both connections into one conductance vector inside one jitted
`lax.scan`: jsyn's `Sparse.deliver`
(its own tier switch and selection) against `brainevent.BinaryArray(spikes) @ CSR` (the
transposed binary CSR product, rows = presynaptic cells, `indptr` and targets taken from the
`Sparse`), with the network's scalar weights and with one weight per synapse. Compiled apart;
then `--rounds` rounds, the variants alternating (order reversed every other round), the
median time per step and the ratio. Agreement: the largest difference of the drives over the
largest drive (float32). Gradients of `sum(drive * r)` (r random) w.r.t. the per-synapse
weights and w.r.t. the spike vector, op by op, compared the same way; at the `--jit-grad`
sizes also the compile time of each gradient under `jit`.

`--network`: the whole COBA network (`_ei_network.compiled_run`), jsyn as it is against the
same network whose connections deliver through brainevent (`event_driven=False` copies of the
connections, whose `deliver` this script alone replaces: no tier switch, no selection),
alternating, medians.
"""

import os
import statistics
import time

import _ei_network as ei
import brainevent
import equinox as eqx
import jax
import jax.numpy as jnp

import jsyn
from jsyn.connectivity.sparse import Sparse


def data(w):
    """Weights as brainevent's CSR takes them: shape `(1,)` for one shared weight, else one
    per synapse (the `Sparse`'s stored order)."""
    return jnp.reshape(jnp.asarray(w, jnp.float32), (-1,))


def matrix(conn: Sparse) -> brainevent.CSR:
    """`conn` as brainevent's CSR (rows: the presynaptic cells), built eagerly with its task
    workspace. brainevent keeps `indices` and `indptr` static (pytree metadata): they are
    constants of any function that uses the matrix; only the weights are its arguments."""
    mat = brainevent.CSR(
        (data(conn.w), conn.post_idx, conn.indptr), shape=(conn.n_pre, conn.n_post)
    )
    brainevent.BinaryArray(jnp.zeros(conn.n_pre)) @ mat  # registers the workspace on `mat`
    return mat


def brainevent_drive(mats):
    """`drive(ws, n_e, spikes, into)` through brainevent's E and I matrices `mats` with
    weights `ws`."""

    def drive(ws, n_e, spikes, into):
        e, i = (m.with_data(data(w)) for m, w in zip(mats, ws))
        x_e, x_i = brainevent.BinaryArray(spikes[:n_e]), brainevent.BinaryArray(spikes[n_e:])
        return into + x_e @ e + x_i @ i

    return drive


def connections(n: int, per_synapse: bool, seed: int = 0):
    """The E and I `Sparse` of the COBA network at `n` cells (scalar weights, or the same
    values one per synapse), and `n_e`."""
    net, _ = ei.network(ei.COBA, n, seed)
    conns = [net.projections[k].conn for k in ("E", "I")]
    if per_synapse:
        conns = [eqx.tree_at(lambda c: c.w, c, jnp.full(c.syn_shape, c.w)) for c in conns]
    return conns, conns[0].n_pre


def jsyn_drive(conns, n_e, spikes, into):
    e, i = conns
    return i.deliver(spikes[n_e:], e.deliver(spikes[:n_e], into))


def looped(drive, n_e: int, n_post: int):
    """A jitted scan that delivers each row of `spikes` through `tables` (`drive`'s) into
    one conductance vector, the sum."""

    @jax.jit
    def run(tables, spikes):
        step = lambda acc, s: (drive(tables, n_e, s, acc), None)  # noqa: E731
        return jax.lax.scan(step, jnp.zeros(n_post, spikes.dtype), spikes)[0]

    return run


def alternate(fns: dict, args: dict, rounds: int) -> dict:
    """Compile each `fns[k](*args[k])` ahead of time, then time them in `rounds` rounds,
    alternating (the order reversed every other round): `{k: (compile s, [run s])}`."""
    compiled, times = {}, {}
    for k, fn in fns.items():
        t = time.perf_counter()
        compiled[k] = fn.lower(*args[k]).compile()
        times[k] = (time.perf_counter() - t, [])
        jax.block_until_ready(compiled[k](*args[k]))  # one call before the timed ones
    order = list(fns)
    for r in range(rounds):
        for k in order if r % 2 == 0 else order[::-1]:
            t = time.perf_counter()
            jax.block_until_ready(compiled[k](*args[k]))
            times[k][1].append(time.perf_counter() - t)
    return times


def rel(a, b) -> float:
    """The largest difference of `a` and `b` over the largest magnitude of `b`."""
    return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


def spike_vectors(n: int, steps: int, active: float, seed: int = 1):
    """`steps` spike vectors (0/1, float32) of `n` cells, each with `active` of them on."""
    return jax.random.bernoulli(jax.random.key(seed), active, (steps, n)).astype(jnp.float32)


def delivery(n: int, spikes, rounds: int, jit_grad: bool) -> dict:
    """Time, agreement and gradients of the two deliveries at `n` cells."""
    out = {}
    for per_syn in (False, True):
        conns, n_e = connections(n, per_syn)
        drive = brainevent_drive([matrix(c) for c in conns])
        fns = {"jsyn": looped(jsyn_drive, n_e, n), "brainevent": looped(drive, n_e, n)}
        ws = [c.w for c in conns]
        args = {"jsyn": (conns, spikes), "brainevent": (ws, spikes)}
        times = alternate(fns, args, rounds)
        kind = "per-synapse w" if per_syn else "scalar w"
        res = {
            k: dict(compile=c, step=statistics.median(r) / len(spikes))
            for k, (c, r) in times.items()
        }
        res["agreement"] = rel(fns["brainevent"](ws, spikes), fns["jsyn"](conns, spikes))
        if per_syn:
            res.update(gradients(conns, drive, n_e, spikes[0], jit_grad))
        out[kind] = res
    return out


def gradients(conns, drive, n_e: int, spikes, jit: bool) -> dict:
    """The largest relative difference of the gradients of `sum(drive * r)` w.r.t. the
    per-synapse weights and w.r.t. the spike vector, computed op by op; with `jit`, also
    the compile time of each gradient under `jit` (brainevent's static structure is a
    constant there, and XLA folds the row of every synapse from it at compile time)."""
    n_post = conns[0].n_post
    r = jax.random.normal(jax.random.key(2), (n_post,))
    into = jnp.zeros(n_post)
    out, grads = {}, {}
    ws = [c.w for c in conns]
    for name, d, tables in (("jsyn", jsyn_drive, conns), ("brainevent", drive, ws)):
        loss = lambda args, d=d: jnp.sum(d(args[0], n_e, args[1], into) * r)  # noqa: E731
        grad = eqx.filter_grad(loss)  # w.r.t. the floats of (tables, spikes)
        grads[name] = grad((tables, spikes))
        if jit:
            t = time.perf_counter()
            eqx.filter_jit(grad).lower((tables, spikes)).compile()
            out[f"grad compile {name}"] = time.perf_counter() - t
    (ga, gs_a), (gb, gs_b) = grads["jsyn"], grads["brainevent"]
    out["grad w"] = max(rel(b, a.w) for a, b in zip(ga, gb))
    out["grad spikes"] = rel(gs_b, gs_a)
    return out


_jsyn_deliver = Sparse.deliver
_MATRICES = {}  # brainevent's matrix of each copy of `through_brainevent`, by its shape


def _deliver(self, signal, into, **kwargs):
    """`Sparse.deliver`, through brainevent for the connections built with
    `event_driven=False` (`through_brainevent`'s copies; nothing else here builds one)."""
    if self.event_driven:
        return _jsyn_deliver(self, signal, into, **kwargs)
    if any(v is not None for v in kwargs.values()):
        raise ValueError(f"the brainevent delivery takes no {sorted(kwargs)}")
    mat = _MATRICES[self.n_pre, self.n_post, self.n_syn].with_data(data(self.weights(into)))
    return into + brainevent.BinaryArray(signal) @ mat


Sparse.deliver = _deliver


def through_brainevent(net):
    """`net` with its E and I connections delivering through brainevent."""
    for k in ("E", "I"):
        c = net.projections[k].conn
        copy = Sparse(c.pre_idx, c.post_idx, c.n_pre, c.n_post, c.w, event_driven=False)
        _MATRICES[c.n_pre, c.n_post, c.n_syn] = matrix(c)
        net = eqx.tree_at(lambda m: m.projections[k].conn, net, copy)
    return net


def network(n: int, duration: float, rounds: int) -> dict:
    """The whole network, jsyn against brainevent delivering: compile s, median run s,
    mean rate (Hz) of each, the runs alternating, from the same initial states."""
    net, _ = ei.network(ei.COBA, n)
    variants = {"jsyn": net, "brainevent": through_brainevent(net)}
    prepared = {k: ei.compiled_run(v, n, duration, seed=0) for k, v in variants.items()}
    times = {k: [] for k in variants}
    spikes = {k: [] for k in variants}
    order = list(variants)
    for r in range(rounds):
        for k in order if r % 2 == 0 else order[::-1]:
            _, initial, run = prepared[k]
            s0 = initial(r)
            t = time.perf_counter()
            total, _ = run(s0)
            times[k].append(time.perf_counter() - t)
            spikes[k].append(float(total))
    return {
        k: dict(
            compile=prepared[k][0],
            run=statistics.median(times[k]),
            rate=statistics.mean(spikes[k]) / n / (duration / 1000.0),
        )
        for k in variants
    }


def main(argv=None) -> dict:
    import argparse
    import json

    parser = argparse.ArgumentParser(description="brainevent's CSR product in jsyn's delivery.")
    parser.add_argument("--sizes", default="4000,16000,64000", help="network sizes N")
    parser.add_argument("--active", type=float, default=0.005, help="fraction of cells spiking")
    parser.add_argument("--steps", type=int, default=200, help="spike vectors per timed call")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds")
    parser.add_argument(
        "--jit-grad", default="4000", help="sizes at which to time the gradients' compile"
    )
    parser.add_argument("--network", action="store_true", help="also the whole network")
    parser.add_argument("--duration", type=float, default=1000.0, help="--network: ms")
    parser.add_argument("--json", default=None, help="write the results to this file")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    jit_sizes = args.jit_grad.split(",")
    load = lambda: " ".join(f"{x:.1f}" for x in os.getloadavg())  # noqa: E731
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"machine: {ei.machine()}; affinity: {ei.pinned()}; {stamp}; load {load()}")
    print(
        f"jax {jax.__version__}, brainevent {brainevent.__version__}, jsyn {jsyn.__version__}, "
        f"device {jax.devices()[0].device_kind}; float32"
    )
    print(
        f"delivery of {args.steps} spike vectors ({args.active:.2%} of the cells active) "
        f"through the E and I connections, median of {args.rounds} alternating rounds:"
    )
    results: dict = {}
    for n in sizes:
        spikes = spike_vectors(n, args.steps, args.active)
        res = results[n] = {"delivery": delivery(n, spikes, args.rounds, str(n) in jit_sizes)}
        for kind, r in res["delivery"].items():
            a, b = r["jsyn"], r["brainevent"]
            grads = ""
            if "grad w" in r:
                grads = f"  grad w {r['grad w']:.1e}, grad spikes {r['grad spikes']:.1e}"
            if "grad compile jsyn" in r:
                grads += (
                    f" (compile under jit: jsyn {r['grad compile jsyn']:.1f} s, brainevent "
                    f"{r['grad compile brainevent']:.1f} s)"
                )
            print(
                f"  N={n:6d} {kind:13s}  jsyn {a['step'] * 1e6:8.1f} us/step (compile "
                f"{a['compile']:5.2f} s)  brainevent {b['step'] * 1e6:8.1f} us/step (compile "
                f"{b['compile']:5.2f} s)  jsyn / brainevent {a['step'] / b['step']:5.2f}x  "
                f"max rel diff {r['agreement']:.1e}{grads}  load {load()}",
                flush=True,
            )
        if args.network:
            net = res["network"] = network(n, args.duration, args.rounds)
            a, b = net["jsyn"], net["brainevent"]
            print(
                f"  N={n:6d} whole network, {args.duration:g} ms: jsyn {a['run']:7.3f} s "
                f"({a['rate']:.2f} Hz, compile {a['compile']:.2f} s)  with brainevent "
                f"{b['run']:7.3f} s ({b['rate']:.2f} Hz, compile {b['compile']:.2f} s)  "
                f"jsyn / brainevent {a['run'] / b['run']:5.2f}x  load {load()}",
                flush=True,
            )
    print(f"done {time.strftime('%H:%M UTC', time.gmtime())}; load {load()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": stamp, "results": results}, f, indent=1)
    return results


if __name__ == "__main__":
    main()
