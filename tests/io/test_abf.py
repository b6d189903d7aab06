"""jsyn.io.load_abf: ABF files written by pyabf's own ABF1 writer."""

import struct

import numpy as np
import pytest
from ephys_synthetic import DT, write_abf

from jsyn import io

pytest.importorskip("pyabf")


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    return 50.0 * rng.normal(size=(4, 2000))


def test_sweeps_channel_units_rate_and_starts(tmp_path, data):
    write_abf(tmp_path / "c.abf", data / 1000.0, units="nA")
    rec = io.load_recording(tmp_path / "c.abf", sweeps="1-2", V_hold=-70.0)
    assert rec.names == ("sweep 1", "sweep 2") and rec.traces.shape == (2000, 2)
    assert rec.dt == pytest.approx(DT) and rec.t[0] == 0.0
    # nA -> pA, the factor named; int16 storage keeps ~5 digits of the 16-bit range
    np.testing.assert_allclose(rec.traces, data[1:3].T, atol=2e-3 * np.abs(data).max())
    assert "channel 0 in 'nA': x 1000 to pA" in rec.notes
    np.testing.assert_allclose(rec.sweep_start, [100.0, 200.0])  # 2000 samples of 0.05 ms
    assert rec.V_hold.tolist() == [-70.0, -70.0] and rec.spikes is None


@pytest.mark.parametrize(
    "units, match",
    [
        ("mV", r"the channel is in 'mV', a voltage, where a current \(pA\) is expected"),
        ("furlong", "unknown unit 'furlong'.*fA, pA, nA"),
    ],
)
def test_a_channel_in_other_units_is_refused(tmp_path, data, units, match):
    write_abf(tmp_path / "c.abf", data, units=units)
    with pytest.raises(io.RecordingError, match=f"c.abf, channel 0: {match}"):
        io.load_recording(tmp_path / "c.abf")


def test_truncated_corrupt_and_rateless_files(tmp_path, data):
    write_abf(tmp_path / "c.abf", data)
    whole = (tmp_path / "c.abf").read_bytes()
    cases = {
        "head.abf": (whole[:3000], "cannot be read as an ABF file.*truncated"),
        "tail.abf": (whole[:-500], "cannot be read as an ABF file.*truncated"),
        "junk.abf": (b"not an abf" * 100, "cannot be read as an ABF file"),
    }
    rateless = bytearray(whole)
    struct.pack_into("f", rateless, 122, 0.0)  # fADCSampleInterval
    cases["rate.abf"] = (bytes(rateless), "the header gives no sample rate")
    for name, (raw, match) in cases.items():
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(io.RecordingError, match=f"{name}: {match}") as info:
            io.load_recording(tmp_path / name)
        assert "\n" not in str(info.value)


def test_bad_choices_name_what_exists(tmp_path, data):
    write_abf(tmp_path / "c.abf", data)
    with pytest.raises(io.RecordingError, match="sweep 7 does not exist; the file has sweeps 0-3"):
        io.load_recording(tmp_path / "c.abf", sweeps="0,7")
    with pytest.raises(io.RecordingError, match="no channel 2; the file has 1"):
        io.load_recording(tmp_path / "c.abf", channel=2)
    with pytest.raises(io.RecordingError, match="cannot read the sweeps '0-x'"):
        io.load_recording(tmp_path / "c.abf", sweeps="0-x")
    with pytest.raises(io.RecordingError, match="holds no stimulus protocol"):
        io.evoked_train(io.load_recording(tmp_path / "c.abf"), stim="protocol")


def test_without_pyabf_the_error_names_the_extra(tmp_path, data, monkeypatch):
    import sys

    write_abf(tmp_path / "c.abf", data)
    monkeypatch.setitem(sys.modules, "pyabf", None)  # import pyabf raises ImportError
    with pytest.raises(io.RecordingError, match=r"pip install 'jsyn\[abf\]'"):
        io.load_recording(tmp_path / "c.abf")
