"""jsyn.io: recordings and spike files, and their one-line errors."""

import numpy as np
import pytest

from jsyn import io


def write(path, text):
    path.write_text(text)
    return path


def test_example_recording_is_shipped_and_loads():
    rec = io.load_recording(io.example_path())
    assert rec.traces.shape == (2000, 1) and rec.names == ("I",)
    assert rec.dt == pytest.approx(0.1)
    np.testing.assert_allclose(rec.spikes, [10.0, 40.0, 55.0, 90.0, 130.0, 160.0])
    np.testing.assert_array_equal(rec.V_hold, [-70.0])
    raster = rec.raster()
    assert raster.shape == (2000, 1) and raster.sum() == 6 and raster[100, 0] == 1


def test_csv_with_several_traces_and_spike_column(tmp_path):
    path = write(
        tmp_path / "r.csv",
        "# a comment\n# V_hold = -70, 40\ntime,Ia,Ib,spikes\n"
        + "".join(f"{0.5 * i},{i},{-i},{int(i == 3)}\n" for i in range(10)),
    )
    rec = io.load_recording(path)
    assert rec.names == ("Ia", "Ib") and rec.traces.shape == (10, 2)
    np.testing.assert_array_equal(rec.V_hold, [-70.0, 40.0])
    np.testing.assert_array_equal(rec.spikes, [1.5])
    assert rec.raster()[3].tolist() == [1.0, 1.0]


def test_npz_round_trip_and_overrides(tmp_path):
    t = 0.1 * np.arange(50)
    rec = io.Recording(t=t, traces=np.sin(t)[:, None], names=("I",), spikes=np.array([1.0]))
    for suffix in (".npz", ".csv"):
        path = io.save_recording(tmp_path / f"r{suffix}", rec)
        back = io.load_recording(path, V_hold=-60.0, spikes=[0.5, 2.0])
        np.testing.assert_allclose(back.traces, rec.traces, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(back.spikes, [0.5, 2.0])
        np.testing.assert_array_equal(back.V_hold, [-60.0])


def test_spike_files(tmp_path):
    assert io.load_spikes(write(tmp_path / "s.txt", "spike_time\n3.0\n1.0\n")).tolist() == [1, 3]
    assert io.load_spikes(write(tmp_path / "s.csv", "1.0, 2.5,4\n")).tolist() == [1, 2.5, 4]
    np.save(tmp_path / "s.npy", np.array([2.0, 1.0]))
    assert io.load_spikes(tmp_path / "s.npy").tolist() == [1.0, 2.0]
    column = write(tmp_path / "c.csv", "t,spikes\n0,0\n0.1,1\n0.2,0\n")
    assert io.load_spikes(column).tolist() == [0.1]


@pytest.mark.parametrize(
    "name, text, match",
    [
        ("missing.csv", None, "missing.csv: file not found"),
        ("bad.csv", "t,I\n0,1\n0.1,abc\n0.2,3\n", r"column 'I', row 2: 'abc' is not a number"),
        ("ragged.csv", "t,I\n0,1\n0.1\n0.2,3\n", "row 2 has 1 fields but the header has 2"),
        ("nan.csv", "t,I\n0,1\n0.1,nan\n0.2,3\n", r"column 'I' has 1 NaN.*row 1 \(t = 0.1 ms\)"),
        ("uneven.csv", "t,I\n0,1\n0.1,2\n0.3,3\n", "even steps.*step 1 is 0.2 ms"),
        ("short.csv", "t,I\n0,1\n", "at least 2 rows"),
        ("spk.csv", "t,I,spikes\n0,1,0\n0.1,2,0.5\n0.2,3,0\n", "spike counts per sample"),
        ("vh.csv", "# V_hold = -70, 40\nt,I\n0,1\n0.1,2\n", "V_hold must be one finite value"),
        ("x.json", "{}", "unknown format '.json'"),
    ],
)
def test_bad_csv_files(tmp_path, name, text, match):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(io.RecordingError, match=match) as info:
        io.load_recording(path)
    assert "\n" not in str(info.value)


def test_bad_npz_and_spikes(tmp_path):
    t = 0.1 * np.arange(20)
    np.savez(tmp_path / "len.npz", t=t, traces=np.zeros(19))
    with pytest.raises(io.RecordingError, match=r"'traces' has shape \(19, 1\) but 't' has 20"):
        io.load_recording(tmp_path / "len.npz")
    np.savez(tmp_path / "key.npz", t=t)
    with pytest.raises(io.RecordingError, match="has no array 'traces'"):
        io.load_recording(tmp_path / "key.npz")
    np.savez(tmp_path / "ok.npz", t=t, traces=np.zeros(20))
    with pytest.raises(io.RecordingError, match="spike time 5 ms lies outside"):
        io.load_recording(tmp_path / "ok.npz", spikes=[1.0, 5.0])
    with pytest.raises(io.RecordingError, match="has no spike times"):
        io.load_recording(tmp_path / "ok.npz").raster()
    bad = write(tmp_path / "s.txt", "1.0\nfoo\n")
    with pytest.raises(io.RecordingError, match="'foo' is not a number"):
        io.load_spikes(bad)
