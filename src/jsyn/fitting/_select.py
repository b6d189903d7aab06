"""Choosing the parameters to fit: names or an equinox filter, and the paths to them."""

import re
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._params import AbstractParam

_KEYS = jax.tree_util


def node_is_param(x) -> bool:
    """Whether a node of a model is a constrained parameter (`AbstractParam`)."""
    return isinstance(x, AbstractParam)


def _name(path) -> str:
    return _KEYS.keystr(path).lstrip(".")


def follow(obj, path):
    """The node of `obj` at `path` (a key path of `jax.tree_util`)."""
    for key in path:
        if isinstance(key, _KEYS.GetAttrKey):
            obj = getattr(obj, key.name)
        elif isinstance(key, _KEYS.SequenceKey):
            obj = obj[key.idx]
        elif isinstance(key, _KEYS.DictKey):
            obj = obj[key.key]
        else:  # pragma: no cover - other pytree nodes
            raise TypeError(f"jsyn.fit cannot follow the path element {key!r}.")
    return obj


def _fittable(model) -> dict[str, tuple]:
    """`{name: path}` of every floating array or constrained parameter of `model`."""
    found = {}
    for path, node in _KEYS.tree_flatten_with_path(model, is_leaf=node_is_param)[0]:
        if node_is_param(node) or (
            isinstance(node, jax.Array | np.ndarray) and jnp.issubdtype(node.dtype, jnp.inexact)
        ):
            found[_name(path)] = path
    return found


def _normalise(name: str) -> str:
    return re.sub(r"\.(\d+)(?=\.|\[|$)", r"[\1]", name.strip())


def select(model, params) -> tuple[tuple[str, ...], tuple[tuple, ...]]:
    """The names and paths of the parameters chosen by `params` (see `jsyn.fit`)."""
    fittable = _fittable(model)
    if isinstance(params, str):
        params = [p for p in params.split(",") if p.strip()]
    if isinstance(params, Sequence) and all(isinstance(p, str) for p in params):
        if not params:
            raise ValueError("jsyn.fit got no parameters to fit; pass params=('tau_decay', ...).")
        names, paths = [], []
        for raw_name in params:
            name = _normalise(raw_name)
            if name in fittable:
                match = [name]
            else:
                match = [k for k in fittable if k.endswith("." + name)]
            if len(match) != 1:
                why = "matches several parameters" if match else "is not a parameter of the model"
                shown = match or list(fittable)
                raise ValueError(
                    f"jsyn.fit: {raw_name!r} {why} (candidates: {', '.join(shown)}); "
                    "give its dotted path, for example 'synapse.tau_decay'."
                )
            if match[0] in names:
                raise ValueError(f"jsyn.fit: {raw_name!r} is listed twice; list it once.")
            names.append(match[0])
            paths.append(fittable[match[0]])
        return tuple(names), tuple(paths)
    # An equinox filter: a pytree of bools (or callables) matching the model, as for
    # eqx.partition.
    chosen, _ = eqx.partition(model, params)
    leaves = _KEYS.tree_flatten_with_path(chosen, is_leaf=node_is_param)[0]
    selected = [
        (_name(path), path)
        for path, node in leaves
        if _name(path) in fittable and not (node_is_param(node) and node.raw is None)
    ]
    if not selected:
        raise ValueError(
            "jsyn.fit: the filter selects no floating parameter; mark some with True "
            f"(fittable: {', '.join(fittable)})."
        )
    names, paths = zip(*selected)
    return tuple(names), tuple(paths)


def _leaf(model, path):
    node = follow(model, path)
    return node.raw if node_is_param(node) else node


def where(paths):
    """A function of a model giving its leaves at `paths` (raw values of parameters), for
    `eqx.tree_at`."""
    return lambda m: [_leaf(m, path) for path in paths]
