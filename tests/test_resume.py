"""simulate / sweep / TrialBatch.simulate with checkpoint_to=: runs that write checkpoints and
their record to disk and resume bit for bit, after a crash in the process (default lane) or
a SIGKILL at random moments and in the middle of a write (slow lane: child processes)."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from jsyn import _resume, _save

DT = 0.1
_rng = np.random.default_rng(0)
W_IN = jnp.asarray(_rng.uniform(0, 1, (20, 8)) * (_rng.uniform(size=(20, 8)) < 0.5))
W_REC = jnp.asarray(_rng.uniform(0, 0.5, (8, 8)) * (_rng.uniform(size=(8, 8)) < 0.4))


def network():
    """Poisson inputs onto LIF cells through STP, a fractional delay and STDP, and recurrent
    AMPA synapses with a delay."""
    return jsyn.Network(
        {"in": jsyn.Poisson(jnp.full(20, 80.0)), "E": (jsyn.LIF(tau_ref=2.0), 8)},  # Hz
        {
            "in": jsyn.Projection(
                jsyn.all_to_all(20, 8, W_IN),
                jsyn.Expon(tau=5.0),
                jsyn.COBA(g_max=2.0, E=0.0),
                stp=jsyn.STP(U=0.2, tau_f=50.0, tau_d=100.0),
                plasticity=jsyn.STDP(A_plus=0.02, A_minus=0.015),
                delay=0.75,
                dt=DT,
                pre="in",
                post="E",
            ),
            "rec": jsyn.Projection(
                jsyn.all_to_all(8, 8, W_REC),
                jsyn.AMPA(),
                jsyn.COBA(g_max=1.0, E=0.0),
                delay=1.3,
                dt=DT,
                pre="E",
                post="E",
            ),
        },
    )


def record(state, spikes):
    return {"spikes": spikes, "V": state.groups["E"].V, "w": state.projections["in"].w}


def run_network(path, n_steps=2000, every=100, **kw):
    return jsyn.simulate(
        network(), None, DT, n_steps=n_steps, key=jax.random.key(0), record=record,
        checkpoint_to=path, checkpoint_every=every, **kw,
    )  # fmt: skip


def run_trials(path, n_steps=600, every=50, resume=True):
    batch = jsyn.trials(network(), 2)
    state = batch.init_state(jax.random.split(jax.random.key(1), 2))
    return batch.simulate(
        DT, state=state, n_steps=n_steps, record=record, devices=jax.devices()[:1],
        checkpoint_to=path, checkpoint_every=every, resume=resume,
    )  # fmt: skip


def run_poisson(path, resume=True):
    """10 chunks of 300 steps of a Poisson source, checkpointed at the default interval (so
    at the end only, unless a signal comes)."""
    return jsyn.simulate(
        jsyn.Poisson(jnp.full(5, 80.0)), None, DT, n_steps=3000, key=jax.random.key(2),
        record_every=10, progress_chunk=300, checkpoint_to=path, resume=resume,
    )  # fmt: skip


def bits(tree) -> list[np.ndarray]:
    """The leaves of `tree` as NumPy arrays (PRNG keys as their key data)."""
    out = []
    for x in jax.tree.leaves(tree):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        out.append(np.asarray(x))
    return out


def assert_bitwise(a, b):
    la, lb = bits(a), bits(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(x, y, strict=True)


def spikes(n_steps=240, n=3):
    return jnp.asarray(np.random.default_rng(1).uniform(size=(n_steps, n)) < 0.05, float)


# -- in one process ----------------------------------------------------------------------------


@pytest.mark.parametrize("every, record_every", [(40, 1), (40, 4), ("1h", 2)])
def test_equals_the_one_scan_run_and_records_on_disk(tmp_path, every, record_every):
    syn, x = jsyn.DualExpon(1.5, 7.0), spikes()
    plain = jsyn.simulate(syn, x, DT, record_every=record_every)
    path = tmp_path / "run.ckpt"
    kw = dict(record_every=record_every, checkpoint_to=path, checkpoint_every=every)
    final, rec = jsyn.simulate(syn, x, DT, **kw)
    assert_bitwise((final, rec), plain)
    assert isinstance(rec, np.memmap) and rec.shape == (240 // record_every, 3)
    np.testing.assert_array_equal(np.load(tmp_path / "run.ckpt.records" / "0.npy"), rec)
    assert _save.load_info(path)["step"] == 240
    # a finished run resumed returns its result without running again
    assert_bitwise(jsyn.simulate(syn, x, DT, resume=True, **kw), plain)


class Crash(Exception):
    pass


def crash_at_save(monkeypatch, n: int):
    """Make the `n`-th checkpoint write raise before it renames its file into place."""
    calls = iter(range(1, 1000))
    save = _resume.save

    def failing(path, tree, *, info):
        if next(calls) == n:
            raise Crash
        return save(path, tree, info=info)

    monkeypatch.setattr(_resume, "save", failing)


@pytest.mark.slow  # compiles the network: 40 s on the loaded 2-core machine
def test_a_crashed_network_run_resumes_bit_for_bit(tmp_path, monkeypatch):
    whole = run_network(tmp_path / "whole.ckpt", n_steps=400, every=50)
    crash_at_save(monkeypatch, 3)
    with pytest.raises(Crash):
        run_network(tmp_path / "run.ckpt", n_steps=400, every=50)
    assert _save.load_info(tmp_path / "run.ckpt")["step"] == 100
    monkeypatch.undo()
    resumed = run_network(tmp_path / "run.ckpt", n_steps=400, every=50, resume=True)
    assert_bitwise(resumed, whole)
    rec = whole[1]
    assert rec["spikes"]["in"][:100].sum() > 5 and rec["spikes"]["E"][100:].sum() > 2
    assert not np.array_equal(rec["w"][100], rec["w"][-1])  # STDP changed the weights


@pytest.mark.slow  # 5 s in the default lane (2 workers, 2 cores)
def test_a_crashed_sweep_resumes_bit_for_bit(tmp_path, monkeypatch):
    models = jsyn.grid(jsyn.Poisson(jnp.full(4, 50.0)), rates=[20.0, 80.0, 150.0])
    kw = dict(n_steps=300, key=jax.random.key(3), devices=jax.devices()[:1])
    plain = jsyn.sweep(models, None, DT, **kw)
    path = tmp_path / "sweep.ckpt"
    crash_at_save(monkeypatch, 2)
    with pytest.raises(Crash):
        jsyn.sweep(models, None, DT, checkpoint_to=path, checkpoint_every=60, **kw)
    monkeypatch.undo()
    resumed = jsyn.sweep(
        models, None, DT, checkpoint_to=path, checkpoint_every=60, resume=True, **kw
    )
    assert resumed[1].shape == (3, 300, 4)
    assert_bitwise(resumed, plain)


@pytest.mark.slow  # compiles the trial batch twice: 3-5 min on the loaded 2-core machine
def test_trial_batch_equals_its_one_call_run(tmp_path):
    batch = jsyn.trials(network(), 2)
    state = batch.init_state(jax.random.split(jax.random.key(1), 2))
    kw = dict(state=state, n_steps=120, record=record, devices=jax.devices()[:1])
    plain = batch.simulate(DT, **kw)
    resumable = batch.simulate(DT, checkpoint_to=tmp_path / "t.ckpt", checkpoint_every=40, **kw)
    assert resumable[1]["V"].shape == (1, 120, 16)
    assert_bitwise(resumable, plain)


def test_signal_handlers_are_put_back_and_a_programs_own_left_alone(tmp_path, monkeypatch):
    heard, during = [], []
    append = _resume._Records.append

    def append_and_signal(self, rec, row):
        append(self, rec, row)
        during.append(signal.getsignal(signal.SIGTERM))
        os.kill(os.getpid(), signal.SIGUSR1)  # the program's handler runs, the run goes on

    monkeypatch.setattr(_resume._Records, "append", append_and_signal)
    mine = signal.signal(signal.SIGUSR1, lambda signum, frame: heard.append(signum))
    try:
        before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGUSR1)
        final, rec = run_poisson(tmp_path / "run.ckpt", resume=False)
        after = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGUSR1)
    finally:
        signal.signal(signal.SIGUSR1, mine)
    assert heard == [signal.SIGUSR1] * 10 and rec.shape == (300, 5)
    assert after == before
    if before[0] is signal.SIG_DFL:  # caught during the run only
        assert all(h is not signal.SIG_DFL for h in during)


# -- refusals ----------------------------------------------------------------------------------


@pytest.fixture
def finished(tmp_path):
    """A finished checkpointed run of a DualExpon synapse, and how it was called."""
    path = tmp_path / "run.ckpt"
    kw = dict(checkpoint_to=path, checkpoint_every=60)
    jsyn.simulate(jsyn.DualExpon(1.5, 7.0), spikes(), DT, **kw)
    return path, kw


OTHER_STRUCTURE = (
    r"the inputs differ in structure: the checkpoint's has <root>: jax array float64 of shape "
    r"\(240, 3\), this one <root>: jax array float64 of shape \(240, 4\)"
)


@pytest.mark.parametrize(
    "change, match",
    [
        (
            dict(system=jsyn.DualExpon(1.5, 8.0)),
            r"the system differs at \.tau_decay: the checkpoint's holds 7\.0, this one 8\.0",
        ),
        (
            dict(system=jsyn.Expon(7.0)),
            r"the system differs in structure: the checkpoint's has \.tau_rise: jax array",
        ),
        (dict(dt=0.2), r"dt differs: the checkpoint's run has '0\.1', this one '0\.2'"),
        (dict(x=spikes(n=4)), OTHER_STRUCTURE),
        (dict(x=spikes() * 2.0), r"the inputs differ at <root>: the checkpoint's holds 720 values"),
        (dict(x=spikes(300)), r"n_steps differs: the checkpoint's run has 240, this one 300"),
        (dict(checkpoint_every=80), r"chunk differs: the checkpoint's run has 60, this one 80"),
    ],
)
def test_a_checkpoint_of_another_run_is_refused_naming_the_difference(finished, change, match):
    path, kw = finished
    args = dict(system=jsyn.DualExpon(1.5, 7.0), x=spikes(), dt=DT, **kw)
    args.update(change)
    with pytest.raises(ValueError, match=rf"checkpoint .*run\.ckpt is of another run: {match}"):
        jsyn.simulate(args.pop("system"), args.pop("x"), args.pop("dt"), resume=True, **args)


def test_existing_truncated_and_foreign_checkpoints_are_refused(finished):
    path, kw = finished
    syn, x = jsyn.DualExpon(1.5, 7.0), spikes()
    with pytest.raises(ValueError, match="a checkpoint exists at .*run.ckpt; pass resume=True"):
        jsyn.simulate(syn, x, DT, **kw)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"run\.ckpt is truncated"):
        jsyn.simulate(syn, x, DT, resume=True, **kw)
    np.save(path.with_suffix(".npy"), np.zeros(3))
    os.replace(path.with_suffix(".npy"), path)
    with pytest.raises(ValueError, match="is a NumPy .npy file, not a jsyn save file"):
        jsyn.simulate(syn, x, DT, resume=True, **kw)
    jsyn.save(path, syn)
    with pytest.raises(ValueError, match="a jsyn save file but not a checkpoint of a run"):
        jsyn.simulate(syn, x, DT, resume=True, **kw)


def test_damaged_record_files_are_refused(tmp_path, monkeypatch):
    syn, x = jsyn.DualExpon(1.5, 7.0), spikes()
    path = tmp_path / "run.ckpt"
    kw = dict(checkpoint_to=path, checkpoint_every=60, resume=True)
    crash_at_save(monkeypatch, 3)
    with pytest.raises(Crash):
        jsyn.simulate(syn, x, DT, **kw)
    monkeypatch.undo()
    file = tmp_path / "run.ckpt.records" / "0.npy"
    good = file.read_bytes()
    rows = np.load(file, mmap_mode="r+")
    rows[5, 1] += 1.0  # a row the checkpoint vouches for
    rows.flush()
    del rows
    with pytest.raises(ValueError, match=r"0\.npy does not hold the 120 rows its checkpoint"):
        jsyn.simulate(syn, x, DT, **kw)
    file.write_bytes(good[:1000])  # the header and 36 rows
    with pytest.raises(ValueError, match=r"0\.npy does not hold the 120 rows"):
        jsyn.simulate(syn, x, DT, **kw)
    file.write_bytes(b"not a record")
    with pytest.raises(ValueError, match=r"0\.npy beside the checkpoint is not the record"):
        jsyn.simulate(syn, x, DT, **kw)
    file.unlink()
    with pytest.raises(ValueError, match=r"0\.npy beside the checkpoint is missing"):
        jsyn.simulate(syn, x, DT, **kw)


@pytest.mark.parametrize(
    "kw, error, match",
    [
        (dict(checkpoint_every="10 minutes"), ValueError, r"such as '30s'.*got '10 minutes'"),
        (dict(checkpoint_every=2.5), TypeError, r"got the float 2\.5\); write"),
        (dict(checkpoint_every=0), ValueError, "checkpoint_every"),
        (
            dict(checkpoint_every=30, record_every=4),
            ValueError,
            r"multiple of record_every \(got a chunk of 30",
        ),
        (
            dict(checkpoint_every=60, progress_chunk=40),
            ValueError,
            r"checkpoint_every=60 steps must be a multiple of progress_chunk=40",
        ),
        (dict(checkpoint=2), ValueError, "takes checkpoint_to or checkpoint, not both"),
    ],
)
def test_bad_options_are_refused(tmp_path, kw, error, match, untyped):
    with pytest.raises(error, match=match):
        jsyn.simulate(jsyn.Expon(), spikes(), DT, checkpoint_to=tmp_path / "c", **kw)


def test_options_without_a_path_and_inside_jit_are_refused(tmp_path):
    with pytest.raises(ValueError, match="checkpoint_every and resume only with checkpoint_to"):
        jsyn.simulate(jsyn.Expon(), spikes(), DT, resume=True)
    with pytest.raises(ValueError, match="cannot happen inside jax.jit"):
        jax.jit(lambda x: jsyn.simulate(jsyn.Expon(), x, DT, checkpoint_to=tmp_path / "c"))(
            spikes()
        )


# -- killed child processes (slow lane) --------------------------------------------------------

CHILD = """
import sys
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np
import test_resume
runner, path, out = sys.argv[1:]
np.savez(out, *test_resume.bits(getattr(test_resume, runner)(path, resume=True)))
"""


def child_env() -> dict:
    """The environment of a child process: this jsyn and these tests importable."""
    env = dict(os.environ)
    paths = [str(Path(jsyn.__file__).parents[1]), str(Path(__file__).parent)]
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    env.pop(_save._PAUSE, None)
    return env


def start(runner: str, path: Path, out: Path, pause: int | None = None):
    env = child_env()
    if pause is not None:
        env[_save._PAUSE] = f"{pause}:{path}.paused"
    return subprocess.Popen([sys.executable, "-c", CHILD, runner, path, out], env=env)


def step_of(path: Path) -> int:
    return _save.load_info(path)["step"] if path.exists() else -1


def kill_mid_write(runner: str, path: Path, out: Path, pause: int, every: int) -> None:
    """Kill a child while it writes its `pause`-th checkpoint (one every `every` steps); the
    checkpoint before stays whole."""
    marker = Path(f"{path}.paused")
    marker.unlink(missing_ok=True)
    before = step_of(path)
    child = start(runner, path, out, pause)
    while not marker.exists():
        assert child.poll() is None, "the child ended before its paused write"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL
    partial = Path(f"{path}.tmp")
    assert 0 < partial.stat().st_size < path.stat().st_size  # killed half way through
    assert step_of(path) == max(before, 0) + (pause - 1) * every  # the one before is whole


def kill_at_random(runner: str, path: Path, out: Path, rng: random.Random) -> None:
    """Kill a child at a random moment after it has written one checkpoint of its own."""
    before = step_of(path)
    child = start(runner, path, out)
    while step_of(path) == before and child.poll() is None:
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 0.3))
    child.send_signal(signal.SIGKILL)
    child.wait()


def finish(runner: str, path: Path, out: Path) -> list[np.ndarray]:
    assert start(runner, path, out).wait() == 0
    with np.load(out) as f:
        return [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]


@pytest.mark.slow  # a process per kill, each compiling: 10-20 min in all at load 19-30
@pytest.mark.parametrize(
    "runner, every, pauses", [("run_network", 100, (2, 1)), ("run_trials", 50, (3,))]
)
def test_killed_runs_resume_bit_for_bit(tmp_path, runner, every, pauses):
    reference = finish(runner, tmp_path / "ref.ckpt", tmp_path / "ref.npz")
    path, rng = tmp_path / "run.ckpt", random.Random(runner)
    for pause in pauses:
        kill_mid_write(runner, path, tmp_path / "out.npz", pause, every)
        kill_at_random(runner, path, tmp_path / "out.npz", rng)
    assert 0 < step_of(path) < _save.load_info(tmp_path / "ref.ckpt")["n_steps"]
    resumed = finish(runner, path, tmp_path / "out.npz")
    assert len(resumed) == len(reference)
    for a, b in zip(resumed, reference):
        np.testing.assert_array_equal(a, b, strict=True)


SIGNALLED_CHILD = """
import os, signal, sys
import jax
jax.config.update("jax_enable_x64", True)
from jsyn import _resume
import test_resume
name, row, path = sys.argv[1:]
append = _resume._Records.append

def append_then_signal(self, rec, at):  # the signal comes while the next chunk runs
    append(self, rec, at)
    if at == int(row):
        os.kill(os.getpid(), getattr(signal, name))

_resume._Records.append = append_then_signal
test_resume.run_poisson(path)
"""


@pytest.mark.parametrize("name", ["SIGTERM", "SIGUSR1"])
@pytest.mark.slow  # 12 s in the default lane (2 workers, 2 cores, load 3-4)
def test_a_signalled_run_checkpoints_stops_and_resumes_bit_for_bit(tmp_path, name):
    """The scheduler's warning (SLURM: SIGTERM before a kill, or `--signal=USR1@...`) while
    the 4th chunk's record is written: the run checkpoints the end of that chunk (step
    1200), drops the 5th (already dispatched), and exits with status 1 naming the step."""
    path = tmp_path / "run.ckpt"
    child = subprocess.run(
        [sys.executable, "-c", SIGNALLED_CHILD, name, "90", str(path)],
        env=child_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert child.returncode == 1, child.stderr
    assert f"jsyn: stopped by {name} after step 1200 of 3000, with a checkpoint" in child.stderr
    info = _save.load_info(path)
    assert (info["step"], info["rows"]) == (1200, 120)
    whole = run_poisson(tmp_path / "whole.ckpt")
    resumed = run_poisson(path)
    assert_bitwise(resumed, whole)
    assert resumed[1][:120].sum() > 0 and resumed[1][120:].sum() > 0  # spikes on both sides
