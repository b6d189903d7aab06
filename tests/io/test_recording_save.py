"""jsyn.io.save_recording: what load_recording reads back is exactly what was saved (CSV and
NPZ), off-grid spike times included (NPZ) or refused (CSV), long recordings included."""

import numpy as np
import pytest

from jsyn import io


def recording(n, dt=1 / 30, t0=0.0, spikes=None, names=("I", "V")):
    """`n` samples at 30 kHz; trace 0 takes 2000 distinct values that agree to 6 digits."""
    rng = np.random.default_rng(0)
    traces = np.stack([100.0 + (np.arange(n) % 2000) * 1e-4, rng.normal(size=n)], axis=1)
    return io.Recording(
        t=t0 + np.arange(n) * dt,
        traces=traces[:, : len(names)],
        names=names,
        spikes=spikes,
        V_hold=np.asarray([-70.123456789, 40 + 1 / 3])[: len(names)],
    )


def assert_same(a: io.Recording, b: io.Recording):
    assert a.names == b.names
    for field in ("t", "traces", "spikes", "V_hold"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), strict=True)


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_2000_distinct_values_survive_exactly(tmp_path, suffix):
    rec = recording(2000, t0=12.3456789)
    back = io.load_recording(io.save_recording(tmp_path / f"r{suffix}", rec))
    assert np.unique(back.traces[:, 0]).size == 2000  # 6 significant digits gave 201
    assert_same(back, rec)


def test_spike_times_on_the_samples_survive_the_csv_spikes_column(tmp_path):
    t = recording(500).t
    rec = recording(500, spikes=t[[3, 3, 40, 41, 499]])  # two spikes in one sample
    assert_same(io.load_recording(io.save_recording(tmp_path / "r.csv", rec)), rec)


def test_off_grid_spike_times_survive_npz_and_are_refused_by_csv(tmp_path):
    t = recording(500).t
    rec = recording(500, spikes=np.sort(t[[3, 40, 41]] + [0.0, 0.013, 1e-9]))
    assert_same(io.load_recording(io.save_recording(tmp_path / "r.npz", rec)), rec)
    with pytest.raises(
        io.RecordingError,
        match=r"spike time 1\.3463333333333332 ms is not a sample time \(the nearest is "
        r"1\.3333333333333333 ms\).* save as \.npz",
    ):
        io.save_recording(tmp_path / "r.csv", rec)
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.parametrize("names", [("t",), ("Spikes",), ("I", "I"), (" I",), ("",), ("a\nb",)])
def test_csv_refuses_names_that_would_not_read_back(tmp_path, names):
    rec = recording(10, names=names)
    with pytest.raises(io.RecordingError, match="cannot be CSV column names"):
        io.save_recording(tmp_path / "r.csv", rec)
    assert_same(io.load_recording(io.save_recording(tmp_path / "r.npz", rec)), rec)


def test_names_with_commas_and_quotes_read_back(tmp_path):
    rec = recording(10, names=('I, "soma"', "V"))
    assert_same(io.load_recording(io.save_recording(tmp_path / "r.csv", rec)), rec)


@pytest.mark.parametrize(
    "suffix", [".npz", pytest.param(".csv", marks=pytest.mark.slow)]
)  # CSV: about 10 s for the million rows
def test_a_long_recording_reads_back_exactly(tmp_path, suffix):
    """A million samples at 30 kHz (33 s) starting at t = 1e6 ms: the times keep every digit
    (10 significant digits lost the last ones, 3e-4 ms here)."""
    rec = recording(1_000_000, t0=1e6, spikes=None)
    assert_same(io.load_recording(io.save_recording(tmp_path / f"long{suffix}", rec)), rec)
