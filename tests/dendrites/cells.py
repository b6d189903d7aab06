"""Cells for the tests of `jsyn.dendrites`, built in code with jaxley (a helper module, imported
by the tests of this folder)."""

import pytest

jx = pytest.importorskip("jaxley")
from jaxley.channels import HH, Leak  # noqa: E402

from jsyn.dendrites import jaxley_numerics  # noqa: E402


def ball_and_stick(n_dend: int = 8, *, hh: bool = False, trainable: str | None = None):
    """A soma (branch 0, one compartment, 10 µm × 20 µm) and a dendrite (branch 1, `n_dend`
    compartments of 1 µm radius, 300 µm in all); passive leak everywhere, HH at the soma
    when `hh`; `trainable`: a parameter made trainable (one value for the whole cell)."""
    with jaxley_numerics():
        soma = jx.Branch(jx.Compartment(), 1)
        dend = jx.Branch(jx.Compartment(), n_dend)
        cell = jx.Cell([soma, dend], parents=[-1, 0])
        cell.set("axial_resistivity", 100.0)
        cell.branch(0).set("radius", 10.0)
        cell.branch(0).set("length", 20.0)
        cell.branch(1).set("radius", 1.0)
        cell.branch(1).set("length", 300.0 / n_dend)
        cell.insert(Leak())
        cell.set("Leak_gLeak", 1e-4)
        cell.set("Leak_eLeak", -70.0)
        cell.set("v", -70.0)
        if hh:
            cell.branch(0).insert(HH())
        if trainable is not None:
            cell.make_trainable(trainable, verbose=False)
    return cell
