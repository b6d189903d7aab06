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
    # a voltage-clamp file: the excitatory (inward) currents are negative
    assert rec.traces.min() < -100.0 and rec.traces.sum() < 0.0


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
        ("bad.csv", "t,I\n0,1\n0.1,abc\n0.2,3\n", r"line 3, column 'I': 'abc' is not a number"),
        ("ragged.csv", "t,I\n0,1\n0.1\n0.2,3\n", r"line 3 has 1 fields but the header \(line 1\)"),
        ("nan.csv", "t,I\n0,1\n0.1,nan\n0.2,3\n", r"column 'I' has 1 NaN.*line 3 \(t = 0.1 ms\)"),
        ("uneven.csv", "t,I\n0,1\n0.1,2\n0.3,3\n", "even steps.*from line 3 to line 4 is 0.2 ms"),
        ("short.csv", "t,I\n0,1\n", "at least 2 rows"),
        ("spk.csv", "t,I,spikes\n0,1,0\n0.1,2,0.5\n0.2,3,0\n", "spike counts.*line 3 holds 0.5"),
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


def test_errors_count_file_lines_the_same_way(tmp_path):
    """Every message names the line of the file (from 1, comments and blank lines
    included), whatever the check; the old messages counted data rows from 1, samples
    from 0, or non-blank lines, each differently."""
    head = "# recorded 2026-12-04\n# V_hold = -70\n\nt,I,spikes\n0,1,0\n"  # data from line 5
    cases = [
        ("0.1,abc,0\n", r"line 6, column 'I': 'abc'"),
        ("0.1,2\n", r"line 6 has 2 fields"),
        ("0.1,nan,0\n", r"first at line 6 \(t = 0.1 ms\)"),
        ("0.3,2,0\n", r"from line 6 to line 7 is -0.1 ms"),
        ("0.1,2,2.5\n", r"line 6 holds 2.5"),
    ]
    for tail, match in cases:
        path = write(tmp_path / "r.csv", head + tail + "0.2,3,0\n")
        with pytest.raises(io.RecordingError, match=match):
            io.load_recording(path)
    spikes = write(tmp_path / "s.txt", "# times in ms\nspike_time\n\n1.0\n2.x\n")
    with pytest.raises(io.RecordingError, match=r"line 5, column 'spike times': '2.x'"):
        io.load_spikes(spikes)
    with pytest.raises(io.RecordingError, match=r"line 1, column 'V_hold': 'x'"):
        io.load_recording(write(tmp_path / "v.csv", "# V_hold = x\nt,I\n0,1\n0.1,2\n"))


def test_a_2d_spike_array_is_refused_not_flattened(tmp_path):
    np.save(tmp_path / "s.npy", np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    with pytest.raises(io.RecordingError, match=r"1-D array \(got shape \(2, 3\)\)"):
        io.load_spikes(tmp_path / "s.npy")
    np.save(tmp_path / "one.npy", np.array(2.0))
    assert io.load_spikes(tmp_path / "one.npy").tolist() == [2.0]


def test_choosing_trace_columns(tmp_path):
    path = write(
        tmp_path / "r.csv",
        "# V_hold = -70, 40\nt,Ia,Ib\n" + "".join(f"{0.5 * i},{i},{-i}\n" for i in range(5)),
    )
    rec = io.load_recording(path, columns="Ib")
    assert rec.names == ("Ib",) and rec.traces[:, 0].tolist() == [0, -1, -2, -3, -4]
    np.testing.assert_array_equal(rec.V_hold, [40.0])
    assert io.load_recording(path, columns=["Ib", "Ia"]).names == ("Ib", "Ia")
    with pytest.raises(io.RecordingError, match="no column 'I'.*the trace columns are Ia, Ib"):
        io.load_recording(path, columns="I")
    with pytest.raises(io.RecordingError, match="pick each column once"):
        io.load_recording(path, columns="Ia,Ia")


# ---------------------------------------------------------------------------------------
# Unit mistakes (issue 19): each passed every check and fitted nonsense


def test_spike_times_in_seconds_warn(tmp_path):
    t = 0.1 * np.arange(2000)
    np.savez(tmp_path / "r.npz", t=t, traces=np.zeros(2000))
    seconds = [0.010, 0.040, 0.045, 0.090, 0.120]  # 10, 40, 45, 90, 120 ms
    with pytest.warns(io.RecordingWarning, match=r"5 spike times share a sample.*seconds"):
        io.load_recording(tmp_path / "r.npz", spikes=seconds)
    with pytest.warns(io.RecordingWarning, match="multiply them by 1000"):
        io.load_spikes(write(tmp_path / "s.txt", " ".join(map(str, seconds))), t=t)
    # counts per sample in a CSV column are explicit, not a unit mistake
    column = write(tmp_path / "c.csv", "t,I,spikes\n0,1,0\n0.1,1,2\n0.2,1,0\n")
    assert io.load_recording(column, V_hold=-70.0).spikes.tolist() == [0.1, 0.1]


def test_a_time_column_in_seconds_warns(tmp_path):
    path = write(tmp_path / "r.csv", "t,I\n" + "".join(f"{1e-4 * i:.4f},1\n" for i in range(5)))
    with pytest.warns(io.RecordingWarning, match=r"time step is 0.0001 ms.*in seconds"):
        rec = io.load_recording(path)
    assert rec.dt == pytest.approx(1e-4)
    fine = write(tmp_path / "f.csv", "t,I\n" + "".join(f"{1e-3 * i:.3f},1\n" for i in range(5)))
    assert io.load_recording(fine).dt == pytest.approx(io.MIN_DT)


def test_an_npz_raster_as_spike_times_is_refused(tmp_path):
    t = 0.1 * np.arange(100)
    raster = np.zeros(100)
    raster[[10, 40]] = 1
    np.savez(tmp_path / "r.npz", t=t, traces=np.zeros(100), spikes=raster)
    with pytest.raises(io.RecordingError, match=r"0/1 value per sample.*spikes=t\[raster > 0\]"):
        io.load_recording(tmp_path / "r.npz")
    np.savez(tmp_path / "ok.npz", t=t, traces=np.zeros(100), spikes=t[raster > 0])
    assert io.load_recording(tmp_path / "ok.npz").spikes.tolist() == [1.0, 4.0]


@pytest.mark.parametrize("V_hold, warns", [(-0.07, True), (0.5, True), (0.0, False), (-70, False)])
def test_a_holding_potential_in_volts_warns(tmp_path, V_hold, warns):
    np.savez(tmp_path / "r.npz", t=0.1 * np.arange(10), traces=np.zeros(10))
    if warns:
        with pytest.warns(io.RecordingWarning, match=f"give {1000 * V_hold:g}"):
            io.load_recording(tmp_path / "r.npz", V_hold=V_hold)
    else:  # 0 mV is a common holding potential (IPSCs at the AMPA reversal)
        assert io.load_recording(tmp_path / "r.npz", V_hold=V_hold).V_hold == [V_hold]
