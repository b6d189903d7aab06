"""What `jsyn.simulate` records, as a hashable object, so that repeated runs reuse the
compiled scan: `eqx.filter_jit` keys its cache on the static arguments, and a new
`lambda` at every call would otherwise compile the run anew."""

import dataclasses
import types
from collections.abc import Callable, Mapping, Sequence

import equinox as eqx
import jax


def recorder(record):
    """`record` of `jsyn.simulate` as a hashable callable `(state, out) -> pytree`, or `None`
    for the step outputs."""
    if record is None:
        return None
    if isinstance(record, str):
        return Named((record,), single=True)
    if isinstance(record, Sequence) and record and all(isinstance(r, str) for r in record):
        return Named(tuple(record), single=False)
    if not callable(record):
        raise TypeError(
            f"simulate's record must be None, a name such as 'state' or 'g', a tuple of "
            f"names, or a callable record(state, out) (got {record!r})."
        )
    key = _function_key(record)
    return record if key is None else SameCode(record, key)


@dataclasses.dataclass(frozen=True)
class Named:
    """Records a field of the state or the outputs by name (dotted for nested fields)."""

    names: tuple[str, ...]
    single: bool

    def __call__(self, state, out):
        if self.single:
            return _lookup(state, out, self.names[0])
        return {name: _lookup(state, out, name) for name in self.names}


def _lookup(state, out, name: str):
    first, *rest = name.split(".")
    if first == "out":
        node = out
    elif first == "state":
        node = state
    else:
        node, rest = state, [first, *rest]
    done = [first] if first in ("out", "state") else ["state"]
    for part in rest:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, eqx.Module) and part in _field_names(node):
            node = getattr(node, part)
        else:
            if isinstance(node, Mapping):
                has = sorted(map(str, node))
            elif isinstance(node, eqx.Module):
                has = _field_names(node)
            else:
                has = []
            where = ".".join(done)
            raise ValueError(
                f"simulate(record={name!r}): {where} has no {part!r}"
                + (f" (it has {has})" if has else " (it is an array)")
                + "; record 'out', 'state', a field of the state or a dotted path into them."
            )
        done.append(part)
    return node


def _field_names(module) -> list[str]:
    return [f.name for f in dataclasses.fields(module) if not f.metadata.get("static", False)]


@dataclasses.dataclass(frozen=True, eq=False)
class SameCode:
    """A record function that equals any other with the same code and equal captured
    values (closure, defaults and the globals it names), so a `lambda` recreated at each
    call still finds the compiled run."""

    fn: Callable
    key: tuple

    def __call__(self, state, out):
        return self.fn(state, out)

    def __eq__(self, other):
        return isinstance(other, SameCode) and self.key == other.key

    def __hash__(self):
        return hash(self.key)


class _Same:
    """Compares by identity, and holds its object so that its `id` is not reused."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __eq__(self, other):
        return isinstance(other, _Same) and other.obj is self.obj

    def __hash__(self):
        return id(self.obj)


_IMMUTABLE = (
    types.ModuleType,
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    eqx.Module,
    jax.Array,
)


def _frozen(value):
    """A hashable stand-in for a captured value that two runs may share, or `None` when
    equality cannot be trusted (mutable containers, NumPy arrays, tracers)."""
    if value is None or isinstance(value, bool | int | str | bytes):
        return (type(value), value)
    if isinstance(value, float | complex):
        return (type(value), repr(value))  # repr tells -0.0 from 0.0
    if isinstance(value, tuple | frozenset):
        parts = tuple(_frozen(v) for v in value)
        return None if any(p is None for p in parts) else (type(value), parts)
    if isinstance(value, jax.core.Tracer):
        return None
    if isinstance(value, _IMMUTABLE):
        return _Same(value)
    return None


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _function_key(fn) -> tuple | None:
    """What makes two record functions behave the same, or `None` if it is unknown."""
    if not isinstance(fn, types.FunctionType):
        return None
    try:
        cells = [cell.cell_contents for cell in fn.__closure__ or ()]
    except ValueError:  # an empty cell
        return None
    names = sorted(n for n in _global_names(fn.__code__) if n in fn.__globals__)
    kwdefaults = fn.__kwdefaults__ or {}
    values = [
        *cells,
        *(fn.__globals__[n] for n in names),
        *(fn.__defaults__ or ()),
        *(kwdefaults[k] for k in sorted(kwdefaults)),
    ]
    frozen = tuple(_frozen(v) for v in values)
    if any(f is None for f in frozen):
        return None
    return (fn.__code__, tuple(names), tuple(sorted(kwdefaults)), frozen)
