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
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from ._progress import by_default
    from .demo import run_demo

    try:
        with by_default(args.progress):
            run_demo(args.out)
    except OSError as err:
        print(f"jsyn demo: cannot write the results: {err}", file=sys.stderr)
        return 1
    return 0


_FIT_MODELS = {
    # model: (default parameters to fit, output law, reversal potential E in mV)
    "Expon": (("tau", "g_max"), "COBA", 0.0),
    "Alpha": (("tau_decay", "g_max"), "COBA", 0.0),
    "DualExpon": (("tau_rise", "tau_decay", "g_max"), "COBA", 0.0),
    "AMPA": (("beta", "g_max"), "COBA", 0.0),  # alpha trades off against g_max
    "GABAa": (("beta", "g_max"), "COBA", -80.0),
    "NMDA": (("tau_rise", "tau_decay", "g_max"), "MgBlock", 0.0),
}


def _add_fit(commands) -> None:
    fit = commands.add_parser(
        "fit",
        help="fit a synapse model to a voltage-clamp recording",
        description="Fit the current of jsyn.PSC(MODEL, output law, V_hold) to a recording "
        "(CSV or NPZ: time in ms, current in pA; see jsyn.io) driven by the presynaptic "
        "spikes, and print the fitted values with their confidence intervals and the fit's "
        "status. The recording is read as a voltage-clamp membrane current, inward negative "
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
        help="a .csv or .npz recording (default: the shipped example, jsyn/data/example_psc.csv)",
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
        "--model", required=True, choices=sorted(_FIT_MODELS), help="the receptor kinetics"
    )
    fit.add_argument(
        "--params",
        metavar="NAMES",
        help="comma-separated parameters to fit (default per model, e.g. "
        "tau_rise,tau_decay,g_max for DualExpon)",
    )
    fit.add_argument(
        "--V-hold",
        dest="V_hold",
        type=float,
        metavar="MV",
        help="holding potential (mV), if the recording does not give it",
    )
    fit.add_argument(
        "--E", type=float, metavar="MV", help="reversal potential (mV; default by model)"
    )
    fit.add_argument("--out", type=Path, metavar="JSON", help="write the results as JSON")
    fit.add_argument("--plot", type=Path, metavar="PNG", help="plot data, fit and loss")
    fit.add_argument("--starts", type=int, default=1, metavar="K", help="multi-start (default 1)")
    fit.set_defaults(handler=_fit)


def _fit(args: argparse.Namespace) -> int:
    from .io import RecordingError

    try:
        return _run_fit(args)
    except (RecordingError, ValueError, TypeError) as err:
        message = " ".join(str(err).split())
        print(f"jsyn fit: error: {message}", file=sys.stderr)
        return 2


def _run_fit(args: argparse.Namespace) -> int:
    import json

    import jax
    import jax.numpy as jnp
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    import jsyn

    from .io import RecordingError, example_path, load_recording

    path = example_path() if args.recording is None else args.recording
    rec = load_recording(path, spikes=args.spikes, V_hold=args.V_hold, columns=args.current)
    if args.current is None and len(rec.names) > 1:
        raise RecordingError(
            f"{path}: has {len(rec.names)} columns besides time and spikes "
            f"({', '.join(rec.names)}); name the current(s) to fit with --current COLUMN "
            "(comma-separated for several traces); a spike column must be named 'spikes'"
        )
    if rec.V_hold is None:
        raise RecordingError(
            f"{path}: no holding potential; pass --V-hold MV or add '# V_hold = MV' to the file"
        )
    defaults, output_name, E = _FIT_MODELS[args.model]
    E = E if args.E is None else args.E
    names = (
        defaults
        if args.params is None
        else tuple(n.strip() for n in args.params.split(",") if n.strip())
    )
    if args.starts < 1:
        raise ValueError(f"--starts must be >= 1 (got {args.starts})")
    spikes = jnp.asarray(rec.raster())
    target = jnp.asarray(rec.traces)
    V_hold = jnp.asarray(rec.V_hold)

    def build(synapse, g_max):
        output = getattr(jsyn, output_name)(g_max=g_max, E=E)
        return jsyn.PSC(synapse, output, V_hold=V_hold, convention=args.convention)

    synapse = getattr(jsyn, args.model)()
    # Initial guess: the model's defaults, and g_max scaled to the recording's peak.
    _, unit = jsyn.simulate(build(synapse, 1.0), spikes, rec.dt)
    peak = float(jnp.max(jnp.abs(unit)))
    size = float(jnp.max(jnp.abs(target)))
    g0 = size / peak if peak > 0 and size > 0 else 1.0
    for name in names:
        if name != "g_max" and hasattr(synapse, name):
            value = getattr(synapse, name)
            synapse = _wrap(synapse, name, jsyn.LogPositive(value))
    model = build(synapse, jsyn.SoftplusPositive(g0) if "g_max" in names else g0)
    res = jsyn.fit(
        model,
        spikes,
        target,
        rec.dt,
        params=list(names),
        n_starts=args.starts,
        convention=args.convention,
    )
    print(
        f"{args.model} fitted to {path} ({rec.traces.shape[0]} samples, dt = {rec.dt:g} ms, "
        f"{rec.spikes.size} spikes, V_hold = {', '.join(f'{v:g}' for v in rec.V_hold)} mV)"
    )
    print(f"current column(s) {', '.join(rec.names)}, read as {_CONVENTION_TEXT[args.convention]}")
    print(res.summary())
    if args.out is not None:
        payload = {
            "model": args.model,
            "output": output_name,
            "E": E,
            "recording": str(path),
            "dt": rec.dt,
            "V_hold": rec.V_hold.tolist(),
            "level": res.level,
            "params": {
                name: {
                    key: _json_numbers(getattr(res, key)[name])
                    for key in ("value", "stderr", "ci_low", "ci_high")
                }
                for name in res.names
            },
            "loss": _json_numbers(res.loss),
            "noise_std": _json_numbers(res.noise_std),
            "n_steps": int(res.n_steps),
            "converged": bool(res.converged),
            "status": res.status,
            "message": res.message,
            "convention": args.convention,
            "columns": list(rec.names),
        }
        try:
            args.out.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n")
        except OSError as err:
            print(f"jsyn fit: cannot write {args.out}: {err}", file=sys.stderr)
            return 1
        print(args.out)
    if args.plot is not None:
        _, fitted = jsyn.simulate(res.model, spikes, rec.dt)
        try:
            _plot_fit(args.plot, rec, np.asarray(fitted), res, args.convention)
        except OSError as err:
            print(f"jsyn fit: cannot write {args.plot}: {err}", file=sys.stderr)
            return 1
        print(args.plot)
    if not res.converged:
        print(f"jsyn fit: the fit did not converge: {res.message}", file=sys.stderr)
        return 1
    return 0


def _json_numbers(x):
    """A number or nested list for JSON, with NaN and infinities (undetermined intervals,
    a non-finite loss) as null, which strict JSON readers accept."""
    import numpy as np

    a = np.asarray(x, dtype=float)
    return np.where(np.isfinite(a), a, None).tolist()


def _wrap(module, name, value):
    import equinox as eqx

    return eqx.tree_at(lambda m: getattr(m, name), module, value)


def _plot_fit(path: Path, rec, fitted, res, convention: str) -> None:
    import numpy as np
    from matplotlib.figure import Figure

    import jsyn.plot

    fig = Figure(figsize=(8, 7), layout="constrained")
    ax_fit, ax_res, ax_loss = fig.subplots(3, 1, height_ratios=(3, 1.2, 1.5))
    quantity = "membrane current, inward negative" if convention == "clamp" else None
    jsyn.plot.fit(
        rec.t,
        rec.traces,
        fitted,
        labels=rec.names,
        spikes=rec.spikes,
        ax=(ax_fit, ax_res),
        **({} if quantity is None else {"quantity": quantity}),
    )
    ax_fit.legend(fontsize="small")
    text = "; ".join(
        f"{n.split('.')[-1]} = {float(np.ravel(res.value[n])[0]):.4g} "
        f"[{float(np.ravel(res.ci_low[n])[0]):.4g}, {float(np.ravel(res.ci_high[n])[0]):.4g}]"
        for n in res.names
    )
    ax_fit.set_title(f"{text} ({res.level:.0%} intervals)", fontsize="small")
    ax_res.set_xlabel("time (ms); grey: presynaptic spikes")
    jsyn.plot.losses(res.losses(), ax=ax_loss)
    fig.savefig(path, dpi=100)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `jsyn` command with `argv` (default: `sys.argv[1:]`) and return its exit
    code. As with any argparse program, `--help` and `--version` exit with status 0 and
    bad usage exits with status 2 and a one-line message (`SystemExit`)."""
    args = build_parser().parse_args(argv)
    return args.handler(args)
