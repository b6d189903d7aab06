r"""`jsyn demo`: the seed tutorial's examples and the rest of the model catalogue,
simulated and plotted.

Each example composes jsyn models the way a user would, in a small module that steps them
together, so `jsyn.simulate` runs the whole example in one `jax.lax.scan`. Each example
module has a `write(out_dir)` that saves its PNGs and returns one summary line per
example; its `*_traces` functions return the recorded arrays, which the tests check.
"""

from pathlib import Path

from . import basics, catalogue, plasticity
from ._common import DT as DT, V_REST as V_REST, V_TH as V_TH, kinetics_traces as kinetics_traces
from .basics import (
    CUBA_G_MAX as CUBA_G_MAX,
    G_MAX as G_MAX,
    JUMP as JUMP,
    E as E,
    jump_traces as jump_traces,
    output_traces as output_traces,
    skipped_jumps as skipped_jumps,
)

EXAMPLE_MODULES = (basics, catalogue, plasticity)
"""The example modules, in the order of the summary."""


def run_demo(out_dir: str | Path) -> list[Path]:
    """Simulate the examples, write one PNG per example and `summary.txt` into `out_dir`
    (created if missing), print each path written, and return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, summary = [], []
    for module in EXAMPLE_MODULES:
        paths, lines = module.write(out_dir)
        written += paths
        summary += lines
    summary_path = out_dir / "summary.txt"
    summary_path.write_text("\n".join(summary) + "\n")
    print(summary_path)
    return [*written, summary_path]
