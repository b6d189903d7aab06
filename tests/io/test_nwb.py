"""jsyn.io.load_nwb: NWB 2 files written by pynwb."""

import numpy as np
import pytest
from ephys_synthetic import DT, STIM, T, write_nwb

from jsyn import io

pytest.importorskip("pynwb")


@pytest.fixture
def data():
    return 20.0 * np.random.default_rng(2).normal(size=(3, T))


def test_sweeps_units_holding_starts_and_ttl_stimuli(tmp_path, data):
    write_nwb(tmp_path / "c.nwb", data, V_hold=[-70.0, -70.0, 40.0])
    rec = io.load_recording(tmp_path / "c.nwb")
    assert rec.names == ("sweep00", "sweep01", "sweep02") and rec.dt == pytest.approx(DT)
    np.testing.assert_allclose(rec.traces, data.T, rtol=1e-12)  # amperes x 1e12 -> pA
    assert "series in 'amperes' x conversion 1e-12: x 1e+12 to pA" in rec.notes
    np.testing.assert_allclose(rec.V_hold, [-70.0, -70.0, 40.0])  # volts -> mV
    np.testing.assert_allclose(rec.sweep_start, [0.0, 1000.0, 2000.0])
    np.testing.assert_allclose(rec.spikes, STIM)  # session clock -> from each sweep's start
    two = io.load_recording(tmp_path / "c.nwb", sweeps="1-2")
    assert two.names == ("sweep01", "sweep02") and two.V_hold.tolist() == [-70.0, 40.0]


def test_without_a_ttl_series_there_is_no_protocol(tmp_path, data):
    write_nwb(tmp_path / "c.nwb", data, ttl=False)
    rec = io.load_recording(tmp_path / "c.nwb")
    assert rec.spikes is None
    with pytest.raises(io.RecordingError, match="holds no stimulus protocol.*--stim auto"):
        io.evoked_train(rec, stim="protocol")


def test_truncated_and_foreign_files(tmp_path, data):
    write_nwb(tmp_path / "c.nwb", data)
    whole = (tmp_path / "c.nwb").read_bytes()
    (tmp_path / "cut.nwb").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "text.nwb").write_text("hello")
    for name in ("cut.nwb", "text.nwb"):
        with pytest.raises(io.RecordingError, match=f"{name}: cannot be read as an NWB 2 file"):
            io.load_recording(tmp_path / name)
    with pytest.raises(io.RecordingError, match="no VoltageClampSeries named 'elec9'"):
        io.load_recording(tmp_path / "c.nwb", channel="elec9")


def test_without_pynwb_the_error_names_the_extra(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pynwb", None)
    (tmp_path / "c.nwb").write_bytes(b"")
    with pytest.raises(io.RecordingError, match=r"pip install 'jsyn\[nwb\]'"):
        io.load_recording(tmp_path / "c.nwb")
