"""Finding compartments of a jaxley cell, at construction (never inside `jit`)."""

import numpy as np

from ._units import jaxley_numerics


def compartment(cell, branch: int, x: float) -> int:
    """The global index of the compartment of `cell` at relative position `x` in [0, 1]
    along branch `branch` (0 at the branch's start, next to its parent; 1 at its end), as
    `jsyn.dendrites.DendriticCell` takes it. Runs jaxley's selection: call it while
    building, not inside `jit`."""
    if not 0.0 <= float(x) <= 1.0:
        raise ValueError(f"compartment(x=...) is a relative position in [0, 1] (got {x}).")
    n_branches = int(cell.nodes["global_branch_index"].max()) + 1
    if not 0 <= int(branch) < n_branches:
        raise ValueError(
            f"compartment(branch={branch}): the cell has branches 0 to {n_branches - 1}."
        )
    with jaxley_numerics():
        return int(cell.branch(int(branch)).loc(float(x)).nodes.index[0])


def compartments(cell, branch: int) -> np.ndarray:
    """The global indices of every compartment of branch `branch`, from its start to its end."""
    with jaxley_numerics():
        return cell.branch(int(branch)).nodes.index.to_numpy().astype(int)
