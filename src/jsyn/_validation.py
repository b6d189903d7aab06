"""Value checks of parameters and inputs: raised with the bad value where it is concrete,
otherwise (under `jit`, `vmap`, `grad`) turned into `eqx.error_if` at the `simulate` entry."""

import dataclasses
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool


class Check(NamedTuple):
    """One constraint: `bad` marks the entries that break it.

    `value` is the offending array, or a dict of named arrays for a relation between
    parameters. The message reads `"{what} (got {value}); {fix}"`.
    """

    bad: Bool[Array, "*shape"]
    value: Array | dict
    what: str
    fix: str


def concrete(x) -> np.ndarray | None:
    """`x` as a NumPy array, or `None` when it is traced (inside `jit`, `vmap`, `grad`)."""
    try:
        return np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def _describe(value, bad: np.ndarray) -> str:
    named = value if isinstance(value, dict) else {"": value}
    arrays = {k: np.asarray(v) for k, v in named.items()}
    shape = np.broadcast_shapes(bad.shape, *(v.shape for v in arrays.values()))
    bad = np.broadcast_to(bad, shape)
    idx = np.unravel_index(int(np.flatnonzero(bad)[0]), shape)
    idx = tuple(int(i) for i in idx)
    shown = ", ".join(
        f"{k + '=' if k else ''}{np.broadcast_to(v, shape)[idx].item()!r}"
        for k, v in arrays.items()
    )
    if bad.size == 1:
        return shown
    return f"{shown} at index {idx}; {int(bad.sum())} of {bad.size} entries are bad"


def message(check: Check, bad: np.ndarray | None = None) -> str:
    if bad is None:
        got = "a bad value, not shown under jit/vmap; run eagerly to see it"
    else:
        got = _describe(check.value, bad)
    return f"{check.what} (got {got}); {check.fix}"


def positive(owner: str, name: str, x, fix: str = "") -> Check:
    x = jnp.asarray(x)
    fix = fix or "use jsyn.LogPositive to keep it positive during fitting"
    return Check(~(x > 0), x, f"{owner}.{name} must be > 0", fix)


def nonnegative(owner: str, name: str, x, fix: str = "") -> Check:
    x = jnp.asarray(x)
    return Check(~(x >= 0), x, f"{owner}.{name} must be >= 0", fix or "pass a value >= 0")


def finite(owner: str, name: str, x, fix: str = "") -> Check:
    x = jnp.asarray(x)
    return Check(
        ~jnp.isfinite(x),
        x,
        f"{owner}.{name} must be finite",
        fix or "pass a finite value",
    )


def raise_concrete(checks) -> list[Check]:
    """Raise `ValueError` for the first broken check whose verdict is concrete; return the
    checks that are traced (their verdict is only known at run time)."""
    traced = []
    for check in checks:
        bad = concrete(check.bad)
        if bad is None:
            traced.append(check)
        elif bad.any():
            raise ValueError(message(check, bad))
    return traced


def guard(tree, checks):
    """Attach the traced checks to `tree` with `eqx.error_if`, so that they run (once) when
    the computation that uses `tree` runs. A tree without arrays computes nothing and
    is returned as it is."""
    if not jax.tree.leaves(tree) or not checks:
        return tree
    # eqx.error_if takes numeric arrays only: PRNG keys (a stochastic system's state)
    # pass through it as their key data.
    data = jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)
    for check in checks:
        data = eqx.error_if(data, jnp.any(check.bad), message(check))
    return jax.tree.map(
        lambda new, old: (
            jax.random.wrap_key_data(new, impl=jax.random.key_impl(old)) if _is_key(old) else new
        ),
        data,
        tree,
    )


def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def collect(tree) -> list[Check]:
    """The `constraints()` of every jsyn component found in `tree`, at any depth."""
    from ._component import AbstractComponent

    def is_component(x):
        return isinstance(x, AbstractComponent)

    found = []
    for leaf in jax.tree.leaves(tree, is_leaf=is_component):
        if is_component(leaf):
            found.extend(leaf.constraints())
            for field in dataclasses.fields(leaf):
                found.extend(collect(getattr(leaf, field.name)))
    return found
