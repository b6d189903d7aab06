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


def test_epoch_pulse_times_from_a_pyabf_epoch_table():
    """The pulse trains of an epoch table, built with pyabf's own `EpochSweepWaveform`
    (the object `abf.sweepEpochs` holds): a train of 5 pulses every 400 samples after a
    step, a 'Pulse' epoch at the level before (no pulse) and a single pulse. pyabf's
    ABF1 writer writes no epoch table, so no file of these is tested."""
    from pyabf.waveform import EpochSweepWaveform

    off = [0] * 8
    ep = EpochSweepWaveform()
    ep.addEpoch(0, 93, 0.0, "Step", 0, 0, off)  # pyabf's pre-epoch holding (1/64)
    ep.addEpoch(93, 400, 0.0, "Step", 0, 0, off)
    ep.addEpoch(400, 2400, 5.0, "Pulse", 2, 400, off)  # 5 pulses: 400, 800, ... 2000
    ep.addEpoch(2400, 2800, 5.0, "Pulse", 2, 400, off)  # level unchanged: no pulse
    ep.addEpoch(2800, 3000, 0.0, "Step", 0, 0, off)
    ep.addEpoch(3000, 3100, 5.0, "BiPhsc", 4, 100, off)  # one pulse at 3000
    ep.addEpoch(3100, 6000, 0.0, "Step", 0, 0, off)
    times = io.abf.epoch_pulse_times(ep, 0.05)
    np.testing.assert_allclose(times, [20.0, 40.0, 60.0, 80.0, 100.0, 150.0])
    # the waveform pyabf draws from the same table: the pulses of the train rise there
    rising = np.flatnonzero(np.diff(ep.getWaveform()) > 0) + 1
    np.testing.assert_array_equal(rising[rising < 2400], [400, 800, 1200, 1600, 2000])


def test_epoch_pulse_times_without_trains_is_none():
    from pyabf.waveform import EpochSweepWaveform

    ep = EpochSweepWaveform()
    ep.addEpoch(0, 100, 0.0, "Step", 0, 0, [0] * 8)
    ep.addEpoch(100, 200, -10.0, "Step", 0, 0, [0] * 8)
    assert io.abf.epoch_pulse_times(ep, 0.05) is None
