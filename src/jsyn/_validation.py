"""Value checks of parameters, states and inputs: raised with the bad value where it is
concrete, otherwise (under `jit`, `vmap`, `grad`) turned into `eqx.error_if` at the
`simulate` entry."""

import dataclasses
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool

_RANGE = "jsyn_range"


class Check(NamedTuple):
    """One constraint: `bad` marks the entries that break it.

    `value` is the offending array, or a dict of named arrays for a relation between
    parameters. The message reads `"{what} (got {value}); {fix}"`.
    """

    bad: Bool[Array, "*shape"]
    value: Array | dict
    what: str
    fix: str


def is_key(x) -> bool:
    """Whether `x` is an array of typed PRNG keys (`jax.random.key`), which holds no
    value to check."""
    return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def check_key(key, where: str, n: int | None = None) -> bool:
    """Check that `key` is one PRNG key, or (with `n`) `n` of them along a leading axis;
    return whether it holds `n` keys. Typed keys (`jax.random.key`, shape `()` for one)
    and raw ones (`jax.random.PRNGKey`, uint32 of shape `(2,)` for one) both count.
    `where` names the caller in the messages."""
    typed = is_key(key)
    if not typed and (jnp.result_type(key) != jnp.uint32 or jnp.ndim(key) < 1):
        raise TypeError(
            f"{where} needs a PRNG key (got {jnp.result_type(key)} of shape {jnp.shape(key)}); "
            "pass jax.random.key(0), or jax.random.split(jax.random.key(0), n) for n keys."
        )
    many = jnp.ndim(key) > (0 if typed else 1)
    if many and (n is None or jnp.shape(key)[:1] != (n,)):
        wanted = "one key" if n is None else f"one key or {n} keys"
        raise ValueError(
            f"{where} needs {wanted} (got keys of shape {jnp.shape(key)}); pass one key"
            + ("." if n is None else f", or jax.random.split(key, {n}).")
        )
    return many


def concrete(x) -> np.ndarray | None:
    """`x` as a NumPy array, or `None` when it is traced (inside `jit`, `vmap`, `grad`)."""
    try:
        return np.asarray(x)
    except jax.errors.JAXTypeError:  # every tracer-conversion error
        return None


def known(x) -> np.ndarray | None:
    """The value of `x` where it is known now: under eager `grad` that is its primal."""
    value = concrete(x)
    return value if value is not None else concrete(jax.lax.stop_gradient(x))


def _describe(value, bad: np.ndarray) -> str | None:
    named = value if isinstance(value, dict) else {"": value}
    arrays = {k: known(v) for k, v in named.items()}
    if any(v is None for v in arrays.values()):
        return None
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
    got = None if bad is None else _describe(check.value, bad)
    if got is None:
        got = "a bad value, not shown under jit/vmap; run eagerly to see it"
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


def time_step(dt) -> Check:
    """The time step of a run: finite and > 0 ms."""
    dt = np.asarray(dt) if isinstance(dt, int | float) else jnp.asarray(dt)
    return Check(
        ~(jnp.isfinite(dt) & (dt > 0)),
        dt,
        "dt must be finite and > 0 ms",
        "pass the time step in ms, e.g. dt=0.1",
    )


def each_step(bad, what: str, fix: str) -> Check:
    """A check of an array with time leading (`bad` marks its bad entries): eagerly the
    message names the first bad time step; traced, it is one reduction."""
    known = concrete(bad)
    if known is None:
        bad = jnp.any(bad)
        return Check(bad, bad, what, fix)
    bad_steps = known.reshape(known.shape[0], -1).any(axis=1)
    return Check(bad_steps, {"time step": np.arange(bad_steps.shape[0])}, what, fix)


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


def can_guard(tree) -> bool:
    """Whether `tree` holds an array that `guard` can attach checks to."""
    return any(eqx.is_array(x) for x in jax.tree.leaves(tree))


def guard(tree, checks):
    """Attach the traced checks to `tree` with `eqx.error_if`, so that they run (once) when
    the computation that uses `tree` runs. PRNG keys carry them through their key data, so
    a tree read only through its keys keeps its checks; a tree without arrays computes
    nothing and is returned as it is."""
    arrays, rest = eqx.partition(tree, eqx.is_array)
    if not checks or not jax.tree.leaves(arrays):
        return tree
    plain = jax.tree.map(lambda x: jax.random.key_data(x) if is_key(x) else x, arrays)
    for check in checks:
        plain = eqx.error_if(plain, jnp.any(check.bad), message(check))
    arrays = jax.tree.map(
        lambda x, p: jax.random.wrap_key_data(p, impl=jax.random.key_impl(x)) if is_key(x) else p,
        arrays,
        plain,
    )
    return eqx.combine(arrays, rest)


def _parameter_values(component):
    """`(name, value)` of each parameter of `component`: its floating fields, plain arrays
    or `AbstractParam` (resolved); nested components are left to report their own."""
    from ._params import AbstractParam

    for field in dataclasses.fields(component):
        if field.metadata.get("static", False):
            continue
        value = getattr(component, field.name, None)
        if isinstance(value, AbstractParam):
            yield field.name, value.value()
        elif eqx.is_inexact_array(value):
            yield field.name, value


def own_checks(component) -> list[Check]:
    """The checks of one component: its `constraints()` and the finiteness of every
    parameter (an infinite time constant or rate gives NaN, never a model)."""
    owner = type(component).__name__
    checks = list(component.constraints())
    checks += [finite(owner, name, value) for name, value in _parameter_values(component)]
    return checks


def collect(tree, dt=None) -> list[Check]:
    """The checks of every jsyn component found in `tree`, at any depth (`own_checks`),
    and, with the `dt` of a run, their `dt_constraints(dt)`."""
    from ._component import AbstractComponent

    def is_component(x):
        return isinstance(x, AbstractComponent)

    found = []
    for leaf in jax.tree.leaves(tree, is_leaf=is_component):
        if is_component(leaf):
            found.extend(own_checks(leaf))
            if dt is not None:
                found.extend(leaf.dt_constraints(dt))
            for field in dataclasses.fields(leaf):
                found.extend(collect(getattr(leaf, field.name), dt))
    return found


def bounded(lower: float | None = None, upper: float | None = None):
    """A state field whose values must lie in `[lower, upper]` (`None`: unbounded), checked
    on a `state=` given to `jsyn.simulate`: for example `x: Array = bounded(0.0, 1.0)`
    for a fraction of resources."""
    return eqx.field(metadata={_RANGE: (lower, upper)})


_STATE_FIX = (
    "pass a state built by init_state or the final state of an earlier run (or fix the "
    "field with eqx.tree_at)"
)


def state_checks(state, where: str = "state") -> list[Check]:
    """The checks of a state pytree: every floating array finite, and every field declared
    with `bounded` inside its range. PRNG keys are skipped."""
    checks = []
    if isinstance(state, eqx.Module) and dataclasses.is_dataclass(state):
        for field in dataclasses.fields(state):
            if field.metadata.get("static", False):
                continue
            value = getattr(state, field.name)
            name = f"{where}.{field.name}"
            checks += state_checks(value, name)
            span = field.metadata.get(_RANGE)
            if span is not None and eqx.is_array(value) and not is_key(value):
                checks.append(_in_range(name, value, *span))
        return checks
    leaves = jax.tree_util.tree_leaves_with_path(
        state, is_leaf=lambda x: x is not state and isinstance(x, eqx.Module)
    )
    if len(leaves) == 1 and leaves[0][1] is state:
        if eqx.is_inexact_array(state) and not is_key(state):
            checks.append(finite_state(where, state))
        return checks
    for path, leaf in leaves:
        checks += state_checks(leaf, where + jax.tree_util.keystr(path))
    return checks


def finite_state(where: str, x) -> Check:
    return Check(~jnp.isfinite(x), x, f"{where} must be finite (NaN or inf found)", _STATE_FIX)


def _in_range(where: str, x, lower, upper) -> Check:
    bad = jnp.zeros(jnp.shape(x), bool)
    if lower is not None:
        bad = bad | ~(x >= lower)
    if upper is not None:
        bad = bad | ~(x <= upper)
    span = f"[{'-inf' if lower is None else lower}, {'inf' if upper is None else upper}]"
    return Check(bad, x, f"{where} must lie in {span}", _STATE_FIX)
