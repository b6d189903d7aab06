"""The documentation stays true to the package: the API reference documents every public
name (and only existing ones), the nav lists every notebook, nothing points outside the
repository, and the code on the pages runs as pasted. `mkdocs build --strict` (CI) checks
the links, anchors and docstrings."""

import importlib
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import equinox as eqx
import pytest

import jsyn
import jsyn.io
import jsyn.plot

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
# `::: path` and its indented options; `heading:` names an object whose path a module of the
# same name shadows (the function `jsyn.simulate` is documented as `jsyn.simulate.simulate`).
DIRECTIVE = re.compile(r"^::: ([\w.]+)\n((?:    .*\n)*)", re.M)
HEADING = re.compile(r"^ +heading: ([\w.]+)$", re.M)


def documented() -> set[str]:
    names = set()
    for page in (DOCS / "api").glob("*.md"):
        for path, options in DIRECTIVE.findall(page.read_text() + "\n"):
            heading = HEADING.search(options)
            names.add(heading.group(1) if heading else path)
    return names


def public(module, prefix: str) -> set[str]:
    """The classes and functions a user reaches as `prefix.name`."""
    names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
    objects = {name: getattr(module, name) for name in names}
    return {
        f"{prefix}.{name}"
        for name, obj in objects.items()
        if (inspect.isclass(obj) or inspect.isfunction(obj))
        and (module is jsyn or obj.__module__ == module.__name__)  # not jsyn.io's imports
    }


def resolve(path: str):
    """The object `path` names, importing a submodule (e.g. `jsyn.dendrites`) the way
    mkdocstrings does when the package has not imported it."""
    parts = path.split(".")
    assert parts[0] == "jsyn", path
    obj = jsyn
    for i, attr in enumerate(parts[1:], start=2):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            obj = importlib.import_module(".".join(parts[:i]))
    return obj


def test_the_api_reference_documents_every_public_name():
    expected = public(jsyn, "jsyn") | public(jsyn.io, "jsyn.io") | public(jsyn.plot, "jsyn.plot")
    missing = sorted(expected - documented())
    assert not missing, f"add `::: name` to a page of docs/api/ for {missing}"


def test_the_api_reference_names_only_what_exists():
    for path in sorted(documented()):
        resolve(path)  # AttributeError names a stale entry


def test_the_model_reference_covers_every_model():
    """Every model class (synapses, plasticity, outputs, couplings, delays, neurons, sources,
    composite systems) is described in docs/models.md; connections, constrained parameters
    results and the trial-batch builder are not models."""
    not_models = (jsyn.AbstractConnection, jsyn.AbstractParam, jsyn.FitResult, jsyn.TrialBatch)
    models = [
        name
        for name, obj in vars(jsyn).items()
        if inspect.isclass(obj)
        and issubclass(obj, eqx.Module)
        and not issubclass(obj, not_models)
        and not name.startswith("Abstract")
        and not name.endswith("State")
    ]
    text = (DOCS / "models.md").read_text()
    assert len(models) > 20
    missing = [name for name in models if f"`{name}" not in text]
    assert not missing, f"describe {missing} in docs/models.md"


def test_the_nav_lists_every_notebook():
    nav = set(re.findall(r"notebooks/(\d\d_\w+\.ipynb)", (ROOT / "mkdocs.yml").read_text()))
    assert nav == {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}


def test_nothing_points_outside_the_repository():
    outside = re.compile(r"MODELS\.md|DESIGN\.md|STYLE\.md|design documents?|\.\./shared")
    files = subprocess.run(
        ["git", "ls-files", "README.md", "docs", "src", "notebooks", "tests", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    hits = [
        f"{name}:{i}: {line.strip()}"
        for name in files
        if name != "tests/test_docs.py" and (ROOT / name).is_file()
        for i, line in enumerate((ROOT / name).read_text(errors="replace").splitlines(), 1)
        if outside.search(line)
    ]
    assert not hits, "point to docs/models.md instead:\n" + "\n".join(hits)


def python_blocks(path: Path) -> str:
    return "\n".join(re.findall(r"^```python\n(.*?)^```", path.read_text(), flags=re.S | re.M))


@pytest.mark.slow
@pytest.mark.parametrize(
    "page",
    [
        "README.md",
        "docs/index.md",
        "docs/getting-started.md",
        "docs/networks.md",
        "docs/fitting.md",
        "docs/batch.md",
        "docs/plasticity.md",
        "docs/save-load.md",
        "docs/coming-from.md",
        "docs/catalogue.md",
    ],
)
def test_the_code_on_a_page_runs_as_pasted(page, tmp_path):
    """The page's python blocks, in order, in a fresh interpreter (float32, as a user runs),
    in an empty folder (what they write stays out of the repository)."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    run = subprocess.run(
        [sys.executable, "-c", python_blocks(ROOT / page)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
