"""No module of jsyn imports another module's private names (`from .x import _y`).

Private modules (`jsyn._validation`, `jsyn.fitting._solve`) are implementation modules
and may be imported; a private *name* inside another module may not: what one module
needs from another is public there. The known exceptions below are listed one by one so
that any new one fails; each is to be made public in its module (or moved) and then
dropped from the list.
"""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# (importing file, module, name) of imports allowed by exception: none left.
KNOWN: set[tuple[str, str, str]] = set()


def _target(path: Path, node: ast.ImportFrom) -> list[str]:
    """The module an `ImportFrom` in `path` reads from, as a list of names."""
    if not node.level:
        return node.module.split(".")
    package = list(path.relative_to(SRC).parts[:-1])
    package = package[: len(package) - (node.level - 1)]
    return package + (node.module.split(".") if node.module else [])


def _private_imports() -> set[tuple[str, str, str]]:
    found = set()
    for path in sorted((SRC / "jsyn").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            target = _target(path, node)
            if target[0] != "jsyn":
                continue
            for alias in node.names:
                name = alias.name
                if not name.startswith("_") or name.startswith("__"):
                    continue
                module = SRC.joinpath(*target, name)
                if module.with_suffix(".py").exists() or module.is_dir():
                    continue  # a private module, imported whole
                found.add((path.relative_to(SRC).as_posix(), ".".join(target), name))
    return found


def test_no_module_imports_another_modules_private_names():
    found = _private_imports()
    new = sorted(found - KNOWN)
    assert not new, (
        "modules import private names of other modules (make them public there): "
        + "; ".join(f"{f} imports {n} from {m}" for f, m, n in new)
    )


def test_the_check_resolves_relative_imports():
    """The parser sees `from .x import _y` and resolves relative imports."""
    path = SRC / "jsyn" / "network" / "network.py"
    node = ast.parse("from ..connectivity.sparse import _pack").body[0]
    assert _target(path, node) == ["jsyn", "connectivity", "sparse"]
