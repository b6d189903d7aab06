"""The `jsyn` command line and the numbers behind `jsyn demo`."""

import numpy as np
import pytest

import jsyn
from jsyn import demo
from jsyn.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EXAMPLES = ("expon", "alpha", "dual_expon", "dual_expon_v2", "voltage_jump", "cuba_vs_coba")
EXAMPLES += ("ampa", "gaba_a", "bio_nmda", "nmda", "gaba_b", "stp", "std", "gap_junction")
EXAMPLES += ("additive_coupling", "diffusive_coupling")


def test_demo_writes_pngs_and_summary(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "new" / "folder")]) == 0
    out = tmp_path / "new" / "folder"
    printed = capsys.readouterr().out.split()
    for name in EXAMPLES:
        png = out / f"{name}.png"
        assert str(png) in printed
        data = png.read_bytes()
        assert data.startswith(PNG_MAGIC)
        assert len(data) > 10_000
    lines = (out / "summary.txt").read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == list(EXAMPLES)


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"jsyn {jsyn.__version__}"


@pytest.mark.parametrize("argv", [["nonsense"], [], ["demo", "--bad-flag"]])
def test_bad_usage_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "jsyn" in capsys.readouterr().err


def test_unwritable_out_dir_exits_1(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert main(["demo", "--out", str(blocker / "sub")]) == 1
    assert "cannot write" in capsys.readouterr().err


@pytest.mark.parametrize(
    "synapse, peak, delay",
    [
        (jsyn.Expon(), 1.0, 0.0),
        (jsyn.Alpha(), np.exp(-1.0), 10.0),
        # tau_r tau_d / (tau_d - tau_r) ln(tau_d / tau_r), rounded to the 0.1 ms grid
        (jsyn.DualExpon(), 1.0, 10.0 / 9.0 * np.log(10.0)),
        (jsyn.DualExponV2(), 1.0, 10.0 / 9.0 * np.log(10.0)),
    ],
)
def test_kinetics_first_spike_response(synapse, peak, delay):
    traces = demo.kinetics_traces(synapse)
    spikes = np.flatnonzero(traces["pre_spikes"])
    first, second = spikes[0], spikes[1]
    g = traces["g"][first:second]
    assert np.all(traces["g"][:first] == 0.0)
    assert g.max() == pytest.approx(peak, rel=1e-3)
    assert np.argmax(g) * demo.DT == pytest.approx(delay, abs=demo.DT / 2)


def test_cuba_current_is_g_max_times_previous_g():
    traces = demo.output_traces(jsyn.CUBA(g_max=demo.CUBA_G_MAX))
    I, g = traces["I"], traces["g"]
    assert I[0] == 0.0
    np.testing.assert_allclose(I[1:], demo.CUBA_G_MAX * g[:-1], rtol=1e-12)
    assert traces["post_spikes"].sum() > 0


def test_coba_current_is_g_max_g_times_driving_force_of_previous_step():
    traces = demo.output_traces(jsyn.COBA(g_max=demo.G_MAX, E=demo.E))
    I, g, V = traces["I"], traces["g"], traces["V"]
    assert I[0] == 0.0
    np.testing.assert_allclose(I[1:], demo.G_MAX * g[:-1] * (demo.E - V[:-1]), rtol=1e-12)
    assert np.all(I >= 0.0)  # E = 0 mV lies above every V, so the current is inward


def test_voltage_jumps_apply_except_while_refractory():
    traces = demo.jump_traces()
    V, pre = traces["V"], traces["pre_spikes"] > 0
    skipped = demo.skipped_jumps(traces)
    assert skipped.any() and (pre & ~skipped).any()
    np.testing.assert_array_equal(V[skipped], demo.V_REST)
    quiet = pre & ~skipped & (traces["post_spikes"] == 0)
    before = np.flatnonzero(quiet) - 1
    # one 0.1 ms step of leak moves V by at most (V - V_rest) dt / tau < 0.05 mV
    np.testing.assert_allclose(V[quiet] - V[before], demo.JUMP, atol=0.05)
    # 4 mV kicks from -60 mV: the third of a quick burst crosses -50 mV
    post_spike_times = traces["t"][traces["post_spikes"] > 0]
    np.testing.assert_allclose(post_spike_times, [14.0, 66.0, 112.0])


# ---------------------------------------------------------------------------------------
# jsyn fit


def test_fit_runs_on_the_shipped_example(tmp_path, capsys):
    import json

    out, png = tmp_path / "fit.json", tmp_path / "fit.png"
    assert main(["fit", "--model", "DualExpon", "--out", str(out), "--plot", str(png)]) == 0
    printed = capsys.readouterr().out
    assert "synapse.tau_rise" in printed and "95% interval" in printed
    result = json.loads(out.read_text())
    # the example was made with tau_rise 1.2, tau_decay 7.5, g_max 1.8 (jsyn/data/README.md)
    for name, truth in [("tau_rise", 1.2), ("tau_decay", 7.5), ("g_max", 1.8)]:
        (entry,) = [v for k, v in result["params"].items() if k.endswith(name)]
        assert entry["ci_low"] < truth < entry["ci_high"]
        assert entry["value"] == pytest.approx(truth, rel=0.03)
    assert result["converged"]
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_fit_with_separate_spike_file_and_params(tmp_path, capsys):
    from jsyn import io

    rec = io.load_recording(io.example_path())
    spikes = tmp_path / "spikes.txt"
    spikes.write_text("\n".join(f"{t:g}" for t in rec.spikes))
    plain = tmp_path / "trace.npz"
    np.savez(plain, t=rec.t, traces=rec.traces)
    argv = ["fit", str(plain), "--spikes", str(spikes), "--model", "DualExpon"]
    assert main([*argv, "--V-hold", "-70", "--params", "tau_decay,g_max"]) == 0
    printed = capsys.readouterr().out
    assert "synapse.tau_decay" in printed and "tau_rise " not in printed


@pytest.mark.parametrize(
    "files, extra, match",
    [
        ({}, ["missing.csv"], "missing.csv: file not found"),
        ({"r.csv": "t,I\n0,1\n0.1,x\n0.2,1\n"}, ["r.csv"], "'x' is not a number"),
        ({"r.csv": "t,I\n0,1\n0.1,nan\n0.2,1\n"}, ["r.csv"], "NaN"),
        ({"r.csv": "t,I\n0,1\n0.1\n0.2,1\n"}, ["r.csv"], "row 2 has 1 fields"),
        ({"r.csv": "t,I,spikes\n0,1,0\n0.1,1,1\n0.2,1,0\n"}, ["r.csv"], "no holding potential"),
        (
            {"r.csv": "# V_hold = -70\nt,I\n0,1\n0.1,1\n0.2,1\n", "s.txt": "9.0\n"},
            ["r.csv", "--spikes", "s.txt"],
            "spike time 9 ms lies outside",
        ),
        ({}, ["--params", "tau_nope"], "'tau_nope' is not a parameter"),
    ],
)
def test_fit_bad_inputs_exit_2_with_one_line(tmp_path, capsys, files, extra, match):
    import re

    for name, text in files.items():
        (tmp_path / name).write_text(text)
    extra = [str(tmp_path / a) if a.endswith((".csv", ".txt")) else a for a in extra]
    assert main(["fit", "--model", "DualExpon", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("jsyn fit: error: ")
    assert re.search(match, err)
