"""The `jsyn` command line and the numbers behind `jsyn demo`."""

import numpy as np
import pytest

import jsyn
from jsyn import demo
from jsyn.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def no_compile_cache(monkeypatch):
    """`jsyn fit` and `jsyn demo` would keep compiled programs in ~/.cache/jsyn/jax."""
    monkeypatch.setenv("JSYN_NO_COMPILE_CACHE", "1")


EXAMPLES = ("expon", "alpha", "dual_expon", "dual_expon_v2", "voltage_jump", "cuba_vs_coba")
EXAMPLES += ("ampa", "gaba_a", "bio_nmda", "nmda", "gaba_b", "stp", "std", "gap_junction")
EXAMPLES += ("additive_coupling", "diffusive_coupling", "stdp_window", "triplet_frequency")


@pytest.mark.slow  # 5-11 s; CI runs the slow lane too
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


@pytest.mark.slow  # 11 s in the default lane (2 workers, 2 cores, load 3-4)
def test_fit_runs_on_the_shipped_example(tmp_path, capsys):
    import json

    out, png = tmp_path / "fit.json", tmp_path / "fit.png"
    assert main(["fit", "--model", "DualExpon", "--out", str(out), "--plot", str(png)]) == 0
    printed = capsys.readouterr().out
    assert "synapse.tau_rise" in printed and "95% interval" in printed
    assert "read as clamp (membrane current, inward negative)" in printed
    assert "status: converged" in printed
    result = json.loads(out.read_text())
    # the example was made with tau_rise 1.2, tau_decay 7.5, g_max 1.8 (jsyn/data/README.md)
    for name, truth in [("tau_rise", 1.2), ("tau_decay", 7.5), ("g_max", 1.8)]:
        (entry,) = [v for k, v in result["params"].items() if k.endswith(name)]
        assert entry["ci_low"] < truth < entry["ci_high"]
        assert entry["value"] == pytest.approx(truth, rel=0.03)
    assert result["converged"] and result["status"] == "converged"
    assert result["convention"] == "clamp"
    assert png.read_bytes().startswith(PNG_MAGIC)


@pytest.mark.slow  # 9 s in the default lane (2 workers, 2 cores)
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
        ({"r.csv": "t,I\n0,1\n0.1\n0.2,1\n"}, ["r.csv"], "line 3 has 1 fields"),
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


def test_help_states_the_sign_convention(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--convention {clamp,into_cell}" in text and "inward current negative" in text
    assert "Exit status: 0 when the fit converged, 1 when it did not" in text


@pytest.mark.slow  # 8 s in the default lane (2 workers, 2 cores)
def test_a_fit_that_did_not_converge_exits_1_and_says_why(tmp_path, capsys):
    """A silent recording: nothing determines the kinetics. The old command printed the
    table and exited 0."""
    import json

    path, out = tmp_path / "silent.csv", tmp_path / "fit.json"
    spikes = "".join(f"{0.1 * i:.1f},0,{int(i in (20, 120))}\n" for i in range(400))
    path.write_text("# V_hold = -70\nt,I,spikes\n" + spikes)
    assert main(["fit", str(path), "--model", "DualExpon", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "status: unidentifiable" in captured.out
    assert "did not converge: unidentifiable" in captured.err
    result = json.loads(out.read_text())
    assert result["status"] == "unidentifiable" and not result["converged"]
    # undetermined intervals are null (strict JSON has no NaN)
    assert all(v["stderr"] is None and v["ci_low"] is None for v in result["params"].values())


@pytest.mark.slow  # 6 s in the default lane (2 workers, 2 cores)
def test_gabaa_on_the_excitatory_example_is_a_sign_error(capsys):
    """The shipped example is excitatory (inward); a GABAa current with E = -80 mV at
    -70 mV is outward. The old command fitted beta = 1e17 and called it converged."""
    assert main(["fit", "--model", "GABAa"]) == 2
    err = capsys.readouterr().err
    assert "opposite signs" in err and "--convention into_cell" in err


@pytest.mark.slow  # 7 s in the default lane (2 workers, 2 cores)
def test_the_other_convention_is_refused_on_the_example(capsys):
    assert main(["fit", "--model", "DualExpon", "--convention", "into_cell"]) == 2
    assert "--convention clamp" in capsys.readouterr().err


def test_gabaa_defaults_are_identifiable_on_gabaa_data(tmp_path, capsys):
    import json

    import jax.numpy as jnp

    from jsyn import io

    rec = io.load_recording(io.example_path())
    psc = jsyn.PSC(jsyn.GABAa(beta=0.12), jsyn.COBA(g_max=3.0, E=-80.0), convention="clamp")
    _, clean = jsyn.simulate(psc, jnp.asarray(rec.raster()), rec.dt)
    noise = 0.05 * float(np.abs(clean).max()) * np.random.default_rng(0).normal(size=clean.shape)
    path, out = tmp_path / "gaba.npz", tmp_path / "fit.json"
    np.savez(path, t=rec.t, traces=np.asarray(clean) + noise, spikes=rec.spikes, V_hold=-70.0)
    assert main(["fit", str(path), "--model", "GABAa", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["status"] == "converged"
    for name, truth in [("synapse.beta", 0.12), ("output.g_max", 3.0)]:
        entry = result["params"][name]
        assert entry["ci_low"] < truth < entry["ci_high"]


def test_an_unknown_column_next_to_a_spike_file_needs_current(tmp_path, capsys):
    """A 'spike' column (not 'spikes') is not the spikes: the old command fitted it as a
    second current trace."""
    from jsyn import io

    rec = io.load_recording(io.example_path())
    path, spikes = tmp_path / "r.csv", tmp_path / "s.txt"
    lines = [f"{t:.1f},{i:.6g},0" for t, i in zip(rec.t, rec.traces[:, 0])]
    path.write_text("# V_hold = -70\nt,I,spike\n" + "\n".join(lines) + "\n")
    spikes.write_text("\n".join(f"{t:g}" for t in rec.spikes))
    argv = ["fit", str(path), "--spikes", str(spikes), "--model", "DualExpon"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "2 columns besides time and spikes (I, spike)" in err and "--current" in err
    assert main([*argv, "--current", "I", "--params", "tau_decay,g_max"]) == 0
    assert main([*argv, "--current", "J"]) == 2
    assert "no column 'J'" in capsys.readouterr().err


def test_a_2d_spike_array_is_refused(tmp_path, capsys):
    from jsyn import io

    rec = io.load_recording(io.example_path())
    spikes = tmp_path / "s.npy"
    np.save(spikes, np.stack([rec.spikes, rec.spikes]))
    assert main(["fit", "--spikes", str(spikes), "--model", "DualExpon"]) == 2
    assert "1-D array (got shape (2, 6))" in capsys.readouterr().err


def test_demo_progress_flag_turns_the_default_bar_on_and_off(monkeypatch):
    from jsyn import _progress

    seen = []
    monkeypatch.setattr("jsyn.demo.run_demo", lambda out: seen.append(_progress._AUTO.get()))
    assert main(["demo", "--out", "unused"]) == 0
    assert main(["demo", "--no-progress", "--out", "unused"]) == 0
    assert seen == [True, False]
    assert _progress._AUTO.get() is False  # restored after the command


def _unit_mistakes(tmp_path):
    """The four inputs of issue 19 that `jsyn fit` fitted and called "converged"."""
    from jsyn import io

    rec = io.load_recording(io.example_path())
    np.savez(tmp_path / "plain.npz", t=rec.t, traces=rec.traces, V_hold=-70.0)
    (tmp_path / "s.txt").write_text("0.010 0.040 0.045 0.090 0.120\n")
    counts = rec.raster()[:, 0].astype(int)
    rows = [f"{t / 1000:.6g},{float(i)!r},{s}" for t, i, s in zip(rec.t, rec.traces[:, 0], counts)]
    (tmp_path / "tsec.csv").write_text("# V_hold = -70\nt,I,spikes\n" + "\n".join(rows) + "\n")
    np.savez(tmp_path / "raster.npz", t=rec.t, traces=rec.traces, spikes=counts, V_hold=-70.0)
    np.savez(tmp_path / "volts.npz", t=rec.t, traces=rec.traces, spikes=rec.spikes, V_hold=-0.07)
    return {
        "seconds spikes": (["plain.npz", "--spikes", "s.txt"], "spike times in seconds"),
        "seconds time": (["tsec.csv"], "time step is 0.0001 ms.*in seconds"),
        "raster npz": (["raster.npz"], "0/1 value per sample"),
        "volts V_hold": (["volts.npz"], "V_hold = -0.07 mV.*in volts.*give -70"),
    }


def test_unit_mistakes_are_errors_naming_the_mistake(tmp_path, capsys):
    import re

    for argv, match in _unit_mistakes(tmp_path).values():
        files = [str(tmp_path / a) if "." in a else a for a in argv]
        assert main(["fit", *files, "--model", "DualExpon"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and re.search(match, err), err


@pytest.mark.slow  # a fit (~3 s)
def test_warn_only_shows_the_warning_and_fits(tmp_path, capsys):
    argv, _ = _unit_mistakes(tmp_path)["seconds spikes"]
    files = [str(tmp_path / a) if "." in a else a for a in argv]
    with pytest.warns(UserWarning, match="spike times in seconds"):
        assert main(["fit", *files, "--model", "DualExpon", "--warn-only"]) in (0, 1)
    assert "synapse.tau_rise" in capsys.readouterr().out


def test_the_compile_cache_folder_and_its_opt_outs(tmp_path, monkeypatch):
    import jax

    from jsyn.cli import compile_cache_dir, use_compile_cache

    assert use_compile_cache() is None  # JSYN_NO_COMPILE_CACHE=1 (the autouse fixture)
    monkeypatch.delenv("JSYN_NO_COMPILE_CACHE")
    assert use_compile_cache(disabled=True) is None  # --no-cache
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    before = jax.config.jax_compilation_cache_dir
    try:
        assert use_compile_cache() == tmp_path / "jsyn" / "jax" == compile_cache_dir()
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "jsyn" / "jax")
    finally:
        jax.config.update("jax_compilation_cache_dir", before)
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert compile_cache_dir() == tmp_path / "home" / ".cache" / "jsyn" / "jax"
