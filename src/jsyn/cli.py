"""The `jsyn` command line.

Each subcommand is one `_add_*` function that registers its parser and sets `handler`, a
function of the parsed arguments returning the exit code; a new subcommand (`jsyn fit
RECORDING ...`) is one more such function listed in `build_parser`. Handlers import their
heavy dependencies (matplotlib, optax) themselves, so `jsyn --version` stays quick.
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .io.fit_recording import MODELS

CONVENTIONS = ("clamp", "into_cell")
_CONVENTION_TEXT = {
    "clamp": "clamp (membrane current, inward negative)",
    "into_cell": "into_cell (current into the cell, inward positive)",
}


def build_parser() -> argparse.ArgumentParser:
    """The parser of the `jsyn` command and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="jsyn",
        description="Differentiable synapse models in JAX (units: ms, mV, nS, pA).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", required=True
    )
    _add_demo(commands)
    _add_fit(commands)
    return parser


def _add_demo(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="simulate and plot the tutorial examples",
        description="Simulate the tutorial examples and the model catalogue (Expon, Alpha, "
        "DualExpon, DualExponV2, VoltageJump, CUBA vs COBA, AMPA, GABAa, BioNMDA, NMDA with "
        "its Mg block, GABAb, STP, STD, gap junctions, additive and diffusive couplings, the "
        "STDP window and the triplet-STDP frequency curve); "
        "write one PNG per example and summary.txt into DIR.",
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("jsyn-demo"),
        metavar="DIR",
        help="output folder, created if missing (default: ./jsyn-demo)",
    )
    demo.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="show a progress bar for simulations that take over a second (default: on)",
    )
    demo.add_argument(
        "--no-cache",
        action="store_true",
        help="do not use the compilation cache (~/.cache/jsyn/jax; also JSYN_NO_COMPILE_CACHE=1)",
    )
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from ._progress import by_default
    from .demo import run_demo

    use_compile_cache(args.no_cache)
    try:
        with by_default(args.progress):
            run_demo(args.out)
    except OSError as err:
        print(f"jsyn demo: cannot write the results: {err}", file=sys.stderr)
        return 1
    return 0


def _add_fit(commands) -> None:
    fit = commands.add_parser(
        "fit",
        help="fit a synapse model to a voltage-clamp recording",
        description="Fit the current of jsyn.PSC([STP ->] MODEL -> output law [-> delay], "
        "V_hold) to a recording (CSV or NPZ: time in ms, current in pA; ABF or NWB files of "
        "sweeps with the extras abf/nwb; see jsyn.io) driven by the presynaptic spikes or "
        "stimuli, and print every setting, the fitted values with their confidence "
        "intervals, the paired-pulse ratios of data and fit, and the fit's status. The "
        "recording is read as a voltage-clamp membrane current, inward negative "
        "(--convention clamp), unless told otherwise. Without RECORDING, fits the example "
        "recording shipped with jsyn. Runs in float64. Exit status: 0 when the fit "
        "converged, 1 when it did not (or an output file could not be written), 2 for "
        "bad input.",
    )
    fit.add_argument(
        "recording",
        nargs="?",
        type=Path,
        metavar="RECORDING",
        help="a .csv, .npz, .abf or .nwb recording (default: the shipped example, "
        "jsyn/data/example_psc.csv)",
    )
    fit.add_argument(
        "--sweeps",
        action="append",
        metavar="LIST",
        help="ABF/NWB: the sweeps to use, e.g. 0-9 or 0,2,5-7 (default all); repeat for sets "
        "at other holding potentials (--sweeps 0-4 --sweeps 5-9 --V-hold -70,40), fitted "
        "jointly",
    )
    fit.add_argument(
        "--channel",
        metavar="CH",
        help="ABF: the ADC channel index (default 0); NWB: the electrode or series name",
    )
    fit.add_argument(
        "--stim",
        metavar="HOW",
        help="the stimulus times: 'protocol' (the file's: an ABF epoch table's digital output "
        "or pulse trains, an NWB stimulus series, or its spikes), 'auto' (detected from the "
        "stimulus artifacts), or a comma-separated list in ms from the sweep's start "
        "(default: the file's, else auto)",
    )
    fit.add_argument(
        "--stp", choices=("STP", "STD"), help="fit short-term plasticity too (default: none)"
    )
    fit.add_argument(
        "--max-delay",
        type=float,
        metavar="MS",
        help="fit a synaptic latency bounded to [0, MS] ms (default: no delay)",
    )
    fit.add_argument(
        "--blank",
        type=float,
        default=0.0,
        metavar="MS",
        help="give the MS ms from each stimulus weight 0 (artifact blanking; default 0)",
    )
    fit.add_argument(
        "--baseline",
        type=float,
        metavar="MS",
        help="subtract the mean of the MS ms before the first stimulus (0: none; default 5 "
        "for ABF and NWB sweeps, none for CSV and NPZ)",
    )
    fit.add_argument(
        "--per-sweep",
        action="store_true",
        help="fit each sweep on its own (jsyn.fit_many) instead of their average",
    )
    fit.add_argument(
        "--spikes",
        type=Path,
        metavar="SPIKES",
        help="presynaptic spike times (ms): a text/.npy list or a CSV with a 0/1 'spikes' "
        "column (default: the recording's own 'spikes')",
    )
    fit.add_argument(
        "--current",
        metavar="COLUMNS",
        help="the recording's current column(s) to fit, comma-separated (needed when it has "
        "more than one column besides time and spikes)",
    )
    fit.add_argument(
        "--convention",
        choices=CONVENTIONS,
        default="clamp",
        help="sign convention of the recorded current: 'clamp' (default), the membrane "
        "current of a voltage-clamp amplifier with inward current negative, as "
        "electrophysiology files hold it; or 'into_cell', jsyn's current into the cell "
        "(inward positive)",
    )
    fit.add_argument(
        "--model",
        required=True,
        metavar="MODEL",
        help=f"the receptor kinetics: one of {', '.join(MODELS)}, or two joined by '+' for a "
        "mixed current (DualExpon+NMDA: AMPA- and NMDA-like parts, fitted jointly on sweeps "
        "at two holding potentials)",
    )
    fit.add_argument(
        "--params",
        metavar="NAMES",
        help="comma-separated parameters to fit (default per model, e.g. "
        "tau_rise,tau_decay,g_max for DualExpon, plus those of --stp and the delay)",
    )
    fit.add_argument(
        "--V-hold",
        dest="V_hold",
        metavar="MV",
        help="holding potential(s) (mV), if the recording does not give them: one value, or "
        "one per set of --sweeps, comma-separated",
    )
    fit.add_argument(
        "--E",
        metavar="MV",
        help="reversal potential(s) (mV; default by model), one per part of MODEL",
    )
    fit.add_argument("--out", type=Path, metavar="JSON", help="write the results as JSON")
    fit.add_argument(
        "--plot",
        type=Path,
        metavar="PNG",
        help="plot the whole train with the fit, its residuals, the first response zoomed "
        "and the loss",
    )
    fit.add_argument(
        "--errors",
        choices=("auto", "sweeps", "residuals"),
        default="auto",
        help="what the intervals rest on: 'sweeps', the variability between the sweeps "
        "averaged (holds with correlated noise: spontaneous events, baseline errors; "
        "Student's t), or 'residuals', independent noise of equal variance (default auto: "
        "sweeps when at least 2 are averaged per holding potential)",
    )
    fit.add_argument("--starts", type=int, default=1, metavar="K", help="multi-start (default 1)")
    fit.add_argument(
        "--warn-only",
        action="store_true",
        help="report the unit checks of jsyn.io (a time step below 0.001 ms, several spikes "
        "in one sample, V_hold between -1 and 1 mV: the marks of seconds or volts) as "
        "warnings and fit anyway (default: they are errors, exit status 2)",
    )
    fit.add_argument(
        "--no-cache",
        action="store_true",
        help="do not use the compilation cache (~/.cache/jsyn/jax; also JSYN_NO_COMPILE_CACHE=1)",
    )
    fit.set_defaults(handler=_fit)


def _fit(args: argparse.Namespace) -> int:
    import warnings

    from .io import RecordingError, RecordingWarning

    try:
        with warnings.catch_warnings():
            if not args.warn_only:
                warnings.simplefilter("error", RecordingWarning)
            return _run_fit(args)
    except (RecordingError, RecordingWarning, ValueError, TypeError) as err:
        message = " ".join(str(err).split())
        print(f"jsyn fit: error: {message}", file=sys.stderr)
        return 2


def _numbers(text: str | None, what: str):
    if text is None:
        return None
    try:
        values = [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise ValueError(f"{what} must be numbers in mV, comma-separated (got {text!r})") from None
    return values[0] if len(values) == 1 else values


def _stim(text: str | None):
    if text is None or text in ("auto", "protocol"):
        return text
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise ValueError(
            f"--stim must be 'protocol', 'auto' or times in ms, comma-separated (got {text!r})"
        ) from None


def _run_fit(args: argparse.Namespace) -> int:
    import json

    import jax

    jax.config.update("jax_enable_x64", True)
    use_compile_cache(args.no_cache)
    from .io.fit_recording import fit_recording

    if args.starts < 1:
        raise ValueError(f"--starts must be >= 1 (got {args.starts})")
    fit = fit_recording(
        args.recording,
        model=args.model,
        params=args.params,
        stp=args.stp,
        max_delay=args.max_delay,
        stim=_stim(args.stim),
        blank=args.blank,
        baseline="auto" if args.baseline is None else (args.baseline or None),
        sweeps=args.sweeps[0] if args.sweeps and len(args.sweeps) == 1 else args.sweeps,
        channel=args.channel,
        V_hold=_numbers(args.V_hold, "--V-hold"),
        E=_numbers(args.E, "--E"),
        spikes=args.spikes,
        columns=args.current,
        convention=args.convention,
        per_sweep=args.per_sweep,
        n_starts=args.starts,
        errors=args.errors,
    )
    print(_report(fit))
    if args.out is not None:
        try:
            args.out.write_text(json.dumps(fit.payload(), indent=2, allow_nan=False) + "\n")
        except OSError as err:
            print(f"jsyn fit: cannot write {args.out}: {err}", file=sys.stderr)
            return 1
        print(args.out)
    if args.plot is not None:
        from .io.figures import plot_recording_fit

        try:
            plot_recording_fit(args.plot, fit)
        except OSError as err:
            print(f"jsyn fit: cannot write {args.plot}: {err}", file=sys.stderr)
            return 1
        print(args.plot)
    if not fit.converged:
        print(f"jsyn fit: the fit did not converge: {fit.result.message}", file=sys.stderr)
        return 1
    return 0


def _report(fit) -> str:
    """The printed report: settings (defaults marked), notes, values, ratios, status."""
    import numpy as np

    train, res = fit.train, fit.result
    V = "?" if train.V_hold is None else ", ".join(f"{v:g}" for v in train.V_hold)
    lines = [
        f"{fit.model_name} fitted to {fit.source} ({train.t.size} samples, dt = "
        f"{train.dt:g} ms, {train.stim.size} stimuli, V_hold = {V} mV)",
        f"current column(s) {', '.join(train.names)}, read as {_CONVENTION_TEXT[fit.convention]}",
        "settings (* = default):",
    ]
    for name, value, default in fit.settings:
        shown = f"{value:.4g}" if isinstance(value, float) else value
        lines.append(f"  {name:<16} {shown}{' *' if default else ''}")
    lines += [f"  - {note}" for note in fit.notes]
    if np.ndim(res.loss):
        lines.append(res.summary())
    else:
        basis = "" if res.dof is None else " (t, between sweeps)"
        lines.append(
            f"{'parameter':<24} {'value':>12} {'stderr':>11}   {res.level:.0%} interval{basis}"
        )
        for name, e in fit.values.items():
            v, se, lo, hi = (np.ravel(e[k]) for k in ("value", "stderr", "ci_low", "ci_high"))
            for i in range(v.size):
                label = name if v.size == 1 else f"{name}[{i}]"
                lines.append(
                    f"{label:<24} {v[i]:>12.6g} {se[i]:>11.3g}   [{lo[i]:.6g}, {hi[i]:.6g}]"
                )
        lines.append(f"loss {float(res.loss):.6g} after {int(res.n_steps)} steps")
        lines.append(f"status: {res.message}")
    if fit.ppr_data is not None:
        pairs = ", ".join(f"{d:.3g} | {f:.3g}" for d, f in zip(fit.ppr_data, fit.ppr_fit))
        lines.append(f"paired-pulse ratios A_n/A_1, data | fit: {pairs}")
    return "\n".join(lines)


def compile_cache_dir() -> Path:
    """Where `jsyn fit` and `jsyn demo` keep JAX's compiled programs:
    `$XDG_CACHE_HOME/jsyn/jax`, else `~/.cache/jsyn/jax`."""
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "jsyn" / "jax"


def use_compile_cache(disabled: bool = False) -> Path | None:
    """Turn on JAX's persistent compilation cache in `compile_cache_dir()`, so a second
    `jsyn fit` or `jsyn demo` skips compiling; not when `disabled` (`--no-cache`) or the
    environment sets `JSYN_NO_COMPILE_CACHE=1`. Returns the folder used, or `None`."""
    import os

    import jax

    if disabled or os.environ.get("JSYN_NO_COMPILE_CACHE", "") not in ("", "0"):
        return None
    folder = compile_cache_dir()
    jax.config.update("jax_compilation_cache_dir", str(folder))
    return folder


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `jsyn` command with `argv` (default: `sys.argv[1:]`) and return its exit
    code. As with any argparse program, `--help` and `--version` exit with status 0 and
    bad usage exits with status 2 and a one-line message (`SystemExit`)."""
    args = build_parser().parse_args(argv)
    return args.handler(args)
