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
    return parser


def _add_demo(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="simulate and plot the tutorial examples",
        description="Simulate the tutorial examples and the model catalogue (Expon, Alpha, "
        "DualExpon, DualExponV2, VoltageJump, CUBA vs COBA, AMPA, GABAa, BioNMDA, NMDA with "
        "its Mg block, GABAb, STP, STD, gap junctions, additive and diffusive couplings); "
        "write one PNG per example and summary.txt into DIR.",
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("jsyn-demo"),
        metavar="DIR",
        help="output folder, created if missing (default: ./jsyn-demo)",
    )
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    try:
        run_demo(args.out)
    except OSError as err:
        print(f"jsyn demo: cannot write the results: {err}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `jsyn` command with `argv` (default: `sys.argv[1:]`) and return its exit
    code. As with any argparse program, `--help` and `--version` exit with status 0 and
    bad usage exits with status 2 and a one-line message (`SystemExit`)."""
    args = build_parser().parse_args(argv)
    return args.handler(args)
