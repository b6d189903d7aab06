"""The composability matrix: every feature of a projection or a network (rows) under every
way of running it (columns). Each cell either works and equals its reference, or is
refused by design with an error whose reason is written in docs/composability.md (which
prints `MATRIX`; a test checks that the page matches it).

Columns and their references:
- `simulate`: a run transmits (the observed trace is finite and not all zero), and
  `jax.jit` of the run equals the eager run;
- `grad`: `jax.grad` of the summed trace w.r.t. the row's parameter equals central finite
  differences;
- `vmap`: `jax.vmap` over two values of the parameter equals the loop over them;
- `trials`: `jsyn.trials` of two trials (each with its own external drive and, where
  the row is stochastic, its own key) equals each trial's single run, spikes identical and
  traces to 1e-9 (four rows in the default lane, the rest in the slow lane);
- `sharded`: `TrialBatch.simulate` of four trials over four emulated CPU devices (one
  subprocess with `XLA_FLAGS=--xla_force_host_platform_device_count=4` runs every row)
  equals each trial's single run, likewise;
- `save`: a run cut in two, its state saved (`jsyn.save`) and loaded (`jsyn.load`) between
  the halves, equals one run.

The networks are small (4 source cells onto 3 LIF cells, 60 steps, float64); the
projection's current is scaled by 0 (`CUBA(g_max=0)`) where a gradient must not pass
through spikes, whose surrogate derivative finite differences cannot see.
"""

import dataclasses
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from helpers import DT, central_fd

T, N_PRE, N_POST = 60, 4, 3
SOURCE = jsyn.SpikeTimes(
    times=[0.2, 0.5, 1.0, 1.3, 2.0, 2.2, 3.0, 4.1, 4.6],
    indices=[0, 1, 2, 3, 0, 1, 2, 3, 0],
    n=N_PRE,
)
DRIVE = 300.0  # pA into the LIF cells: they spike every millisecond or so
DOCS = Path(__file__).parents[2] / "docs" / "composability.md"
COLUMNS = ("simulate", "grad", "vmap", "trials", "sharded", "save")


@dataclasses.dataclass(frozen=True)
class Row:
    """A feature: `build(a)` gives `(system, inputs)` with the row's parameter `a`;
    `observe(state)` the smooth trace of a step; `key`: whether runs need a PRNG key;
    `refused`: column -> (the error's type, a regex of its message, the reason)."""

    build: Callable
    observe: Callable
    a: float = 5.0
    key: bool = False
    refused: dict = dataclasses.field(default_factory=dict)


def _net(a, *, groups=None, inputs=None, **kw):
    """The source "P" onto the LIF group "E" through projection "p": Expon(tau=a)
    kinetics, `kw` the rest of the projection's arguments (conn, synapse, output...)."""
    conn = kw.pop("conn", None) or jsyn.all_to_all(N_PRE, N_POST, 0.5, sparse=True)
    synapse = kw.pop("synapse", None) or jsyn.Expon(tau=a)
    output = kw.pop("output", jsyn.CUBA(g_max=0.0))
    proj = jsyn.Projection(conn, synapse, output, pre="P", post="E", **kw)
    all_groups = {"P": SOURCE, "E": (jsyn.LIF(tau_ref=0.5), N_POST)} | (groups or {})
    x = {"E": jnp.full((T, N_POST), DRIVE)} | (inputs or {})
    return jsyn.Network(all_groups, {"p": proj}), x


def _g(state):
    return state.projections["p"].g


def _rewards(n):
    return jnp.zeros((T, n)).at[20].set(1.0).at[45].set(0.5)


def _gap_net(a):
    """Two LIF groups below threshold joined by a gap junction of conductance `a / 10`."""
    # no spikelets: the surrogate derivative of A's spikes would reach B through them
    gap = jsyn.GapJunction(jsyn.all_to_all(2, 2, a / 10.0), 0.0, pre="A", post="B")
    net = jsyn.Network({"A": (jsyn.LIF(), 2), "B": (jsyn.LIF(), 2)}, gaps={"gj": gap})
    x = {"A": jnp.full((T, 2), 8.0), "B": jnp.full((T, 2), 2.0)}
    return net, x


def _coupling(a):
    C = jnp.asarray([[0.0, 1.0, 0.5], [0.3, 0.0, 0.2]]) * a
    delay = jnp.asarray([[0.0, 0.25, 0.1], [0.3, 0.0, 0.15]])
    coupling = jsyn.AdditiveCoupling(C, delay=delay, dt=DT, max_delay=0.3)
    x = jnp.sin(jnp.arange(T, dtype=jnp.float64)[:, None] * 0.3 + jnp.arange(2.0)[None, :])
    return coupling, x


_ALONE = (
    TypeError,
    "needs a jsyn.Network",
    "by design: a coupling runs alone under jsyn.simulate, not in a network, so there is no "
    "network to lay side by side; batch it with jax.vmap (the vmap column), or split a "
    "batch over devices with jsyn.sweep",
)
ROWS = {
    "STP": Row(lambda a: _net(a, stp=jsyn.STP(U=0.2, tau_f=50.0, tau_d=100.0)), _g),
    "STD": Row(lambda a: _net(a, stp=jsyn.STD(U=0.4, tau=80.0)), _g),
    "STDP": Row(lambda a: _net(a, plasticity=jsyn.STDP()), _g),
    "TripletSTDP": Row(lambda a: _net(a, plasticity=jsyn.TripletSTDP()), _g),
    "RewardSTDP": Row(
        lambda a: _net(
            a,
            plasticity=jsyn.RewardSTDP(modulator="DA"),
            groups={"DA": (jsyn.Neuromodulator(), N_POST)},
            inputs={"DA": _rewards(N_POST)},
        ),
        _g,
    ),
    "RewardSTDP, event-driven": Row(
        lambda a: _net(
            a,
            plasticity=jsyn.RewardSTDP(modulator="DA", event_driven=True),
            groups={"DA": (jsyn.Neuromodulator(), N_POST)},
            inputs={"DA": _rewards(N_POST)},
        ),
        _g,
    ),
    "SynapticScaling": Row(lambda a: _net(a, plasticity=jsyn.SynapticScaling(rate_target=5.0)), _g),
    "VogelsSprekeler": Row(lambda a: _net(a, plasticity=jsyn.VogelsSprekeler()), _g),
    "Clopath": Row(lambda a: _net(a, plasticity=jsyn.Clopath()), _g),
    "dendritic delay": Row(
        lambda a: _net(a, plasticity=jsyn.STDP(), dendritic_delay=0.3, dt=DT), _g
    ),
    "binomial release": Row(
        lambda a: _net(a, release=jsyn.StochasticRelease(p=0.6, n_sites=3)),
        _g,
        key=True,
    ),
    "quantal release": Row(
        lambda a: _net(a, stp=jsyn.QuantalSTP(U=0.5, n_sites=4)),
        _g,
        key=True,
    ),
    "modulated gain": Row(
        lambda a: _net(
            a,
            modulation=jsyn.ModulatedGain("DA", k=0.5),
            groups={"DA": (jsyn.Neuromodulator(), N_POST)},
            inputs={"DA": _rewards(N_POST)},
        ),
        _g,
    ),
    "one delay": Row(lambda a: _net(a, delay=0.3, dt=DT), _g),
    "per-synapse delays": Row(
        lambda a: _net(a, delay=jnp.linspace(0.0, 0.6, N_PRE * N_POST), dt=DT, max_delay=0.6), _g
    ),
    "STDP, per-synapse delays": Row(
        lambda a: _net(
            a,
            plasticity=jsyn.STDP(A_plus=0.05),
            delay=jnp.linspace(0.0, 0.6, N_PRE * N_POST),
            dt=DT,
            max_delay=0.6,
        ),
        _g,
    ),
    "fractional delay": Row(lambda a: _net(a, delay=0.25, dt=DT), _g),
    "Dense": Row(lambda a: _net(a, conn=jsyn.all_to_all(N_PRE, N_POST, 0.5)), _g),
    "Sparse": Row(lambda a: _net(a, conn=jsyn.fixed_prob(N_PRE, N_POST, 0.6, key=2, w=0.5)), _g),
    "gap junctions": Row(
        _gap_net,
        lambda s: s.groups["B"].V,
    ),
    "couplings": Row(
        _coupling,
        None,
        refused={"trials": _ALONE, "sharded": _ALONE},
    ),
}


def _run(row: Row, a, n_steps=T, state=None, inputs=None):
    """`(final state, (spikes or None, trace))` of a run of the row's system."""
    system, x = row.build(a)
    x = x if inputs is None else inputs
    if row.observe is None:  # a coupling: its output is the trace
        return jsyn.simulate(system, x, DT, state=state, record=lambda s, out: (None, out))
    key = jax.random.key(7) if row.key and state is None else None

    def record(s, spikes):
        return spikes, row.observe(s)

    return jsyn.simulate(system, x, DT, state=state, key=key, n_steps=n_steps, record=record)


def _trace(row, a):
    return _run(row, a)[1][1]


def _cell(name, column):
    """The row's refusal of the column (an error), if it refuses it."""
    return ROWS[name].refused.get(column)


@pytest.mark.parametrize("name", list(ROWS))
@pytest.mark.slow  # 104 s in the default lane (2 workers, 2 cores, load 3-4)
def test_simulate_and_jit(name):
    row = ROWS[name]
    trace = np.asarray(_trace(row, row.a))
    assert np.all(np.isfinite(trace)) and np.any(trace != 0.0)
    jitted = jax.jit(lambda a: _trace(row, a))(row.a)
    np.testing.assert_allclose(jitted, trace, rtol=1e-12, atol=1e-14)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ROWS))
def test_grad_equals_finite_differences(name):
    row = ROWS[name]

    def loss(a):
        return jnp.sum(_trace(row, a))

    grad = float(jax.grad(loss)(jnp.asarray(row.a)))
    fd = central_fd(lambda a: float(loss(jnp.asarray(a))), row.a, eps=1e-5)
    assert grad != 0.0
    np.testing.assert_allclose(grad, fd, rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ROWS))
def test_vmap_equals_loop(name):
    row = ROWS[name]
    values = jnp.asarray([row.a, 1.5 * row.a])
    batched = jax.vmap(lambda a: _trace(row, a))(values)
    for i, a in enumerate(values):
        np.testing.assert_allclose(batched[i], _trace(row, a), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", list(ROWS))
@pytest.mark.slow  # 51 s in the default lane (2 workers, 2 cores)
def test_save_load_continue_equals_one_run(name, tmp_path):
    row = ROWS[name]
    system, x = row.build(row.a)
    half = T // 2
    first = jax.tree.map(lambda v: v[:half], x)
    second = jax.tree.map(lambda v: v[half:], x)
    mid, (_, trace_a) = _run(row, row.a, half, inputs=first)
    path = jsyn.save(tmp_path / "state.jsyn", mid)
    back = jsyn.load(path, mid)
    _, (_, trace_b) = _run(row, row.a, T - half, state=back, inputs=second)
    _, (_, whole) = _run(row, row.a)
    np.testing.assert_array_equal(np.concatenate([trace_a, trace_b]), whole)


# -- trials, on one device and over four ------------------------------------------------


def _trial_inputs(x, B):
    """Per-trial inputs `{group: (time, B, n)}`: trial `b`'s currents scaled by
    `1 + b / 20` (the neuromodulator's rewards as they are), so the trials differ."""
    out = {}
    for g, v in x.items():
        scale = 1.0 if g == "DA" else 1.0 + jnp.arange(B, dtype=v.dtype) / 20.0
        out[g] = jnp.broadcast_to(
            v[:, None, :] * jnp.reshape(scale, (1, -1, 1)), (T, B, v.shape[1])
        )
    return out


def _trial_setup(name, B):
    """`(batch, state, per-trial inputs, keys)` of `B` trials of the row's network."""
    row = ROWS[name]
    net, x = row.build(row.a)
    batch = jsyn.trials(net, B)
    keys = jax.random.split(jax.random.key(11), B) if row.key else None
    return batch, batch.init_state(keys), _trial_inputs(x, B), keys


def _trial_record(name):
    observe = ROWS[name].observe
    return lambda s, spikes: (spikes, observe(s))


def _check_against_single_runs(name, batch, keys, inputs, spikes, trace):
    """`spikes` (by group) and `trace`, per trial `(B, time, n)`, equal the single runs."""
    row = ROWS[name]
    net, _ = row.build(row.a)
    for b in range(batch.B):
        x = {g: v[:, b] for g, v in inputs.items()}
        key = None if keys is None else keys[b]
        _, (one_spikes, one_trace) = jsyn.simulate(
            net, x, DT, key=key, n_steps=T, record=_trial_record(name)
        )
        for g, s in one_spikes.items():
            np.testing.assert_array_equal(spikes[g][b], s)
        np.testing.assert_allclose(trace[b], one_trace, rtol=0, atol=1e-9)
    assert np.any(np.asarray(trace) != 0.0)  # the trials transmit


# the trials rows of the default lane (each compiles a batch and two single runs); the
# others run in the slow lane
_LIGHT_TRIALS = ("binomial release", "quantal release", "gap junctions", "couplings")


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=() if n in _LIGHT_TRIALS else pytest.mark.slow) for n in ROWS]
)
def test_each_trial_equals_its_single_run(name):
    row = ROWS[name]
    if "trials" in row.refused:
        kind, match, _ = row.refused["trials"]
        with pytest.raises(kind, match=match):  # when built, or when it lays out a state
            jsyn.trials(row.build(row.a)[0], 2).init_state()
        return
    batch, state, inputs, keys = _trial_setup(name, 2)
    x = batch.merge_inputs(inputs)
    _, (spikes, trace) = jsyn.simulate(
        batch.net, x, DT, state=state, n_steps=T, record=_trial_record(name)
    )
    per_trial = {g: batch.split(s, g) for g, s in spikes.items()}
    n = jnp.shape(trace)[-1] // batch.B
    _check_against_single_runs(name, batch, keys, inputs, per_trial, batch.split(trace, n))


ON_FOUR_DEVICES = """
import json, sys
sys.path[:0] = [{here!r}, {tests!r}]
import jax, jax.numpy as jnp
import test_composability as tc
assert len(jax.devices()) == 4
out = {}
for name, row in tc.ROWS.items():
    try:
        batch, state, inputs, keys = tc._trial_setup(name, 4)
        _, (spikes, trace) = batch.simulate(
            tc.DT, state=state, inputs=inputs, n_steps=tc.T, record=tc._trial_record(name)
        )
        assert len(trace.sharding.device_set) == 4
        per_trial = {g: batch.split_devices(s, g) for g, s in spikes.items()}
        n = jnp.shape(trace)[-1] // (batch.B // 4)
        tc._check_against_single_runs(
            name, batch, keys, inputs, per_trial, batch.split_devices(trace, n)
        )
        out[name] = "ok"
    except Exception as e:
        out[name] = f"{type(e).__name__}: {e}"
print("RESULT" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def four_devices():
    """Every row's trials over four emulated devices, in one subprocess: row -> "ok" or
    the error."""
    here = Path(__file__).parent
    code = ON_FOUR_DEVICES.replace("{here!r}", repr(str(here)))
    code = code.replace("{tests!r}", repr(str(here.parent)))
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
        "PYTHONPATH": os.pathsep.join(
            [str(here.parents[1] / "src"), os.environ.get("PYTHONPATH", "")]
        ),
        "JAX_ENABLE_X64": "1",
    }
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    line = [s for s in run.stdout.splitlines() if s.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT") :])


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ROWS))
def test_trials_over_four_devices_equal_single_runs(name, four_devices):
    refusal = ROWS[name].refused.get("sharded")
    if refusal is not None:
        kind, match, _ = refusal
        assert four_devices[name].startswith(kind.__name__), four_devices[name]
        assert re.search(match, four_devices[name]), four_devices[name]
        return
    assert four_devices[name] == "ok", four_devices[name]


# -- the page --------------------------------------------------------------------------


def matrix() -> str:
    """The matrix as the markdown table of docs/composability.md."""
    lines = ["| feature | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    notes = []
    for name, row in ROWS.items():
        cells = []
        for column in COLUMNS:
            refusal = row.refused.get(column)
            if refusal is None:
                cells.append("✓")
            else:
                notes.append(f"- **{name}, {column}**: {refusal[2]}.")
                cells.append(f"refused ({len(notes)})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n" + "\n".join(f"{i + 1}. {n[2:]}" for i, n in enumerate(notes))


def test_the_docs_page_prints_the_matrix():
    assert matrix() in DOCS.read_text(), (
        "docs/composability.md must hold the matrix of this test; paste:\n" + matrix()
    )
