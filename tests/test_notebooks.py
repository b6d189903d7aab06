"""Every notebook runs top to bottom (its own assertions included)."""

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((pathlib.Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.slow  # ~45 s for the four; CI runs the slow lane too
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()


def test_there_are_notebooks():
    assert NOTEBOOKS


def test_notebooks_are_numbered_without_gaps():
    """`NN_topic.ipynb`, NN = 00, 01, ... in order, so the docs and the README list them all."""
    numbers = [path.name.split("_", 1)[0] for path in NOTEBOOKS]
    assert numbers == [f"{i:02d}" for i in range(len(NOTEBOOKS))], numbers
