r"""Parameter sweeps: many copies of one system with different parameters, run at once and
spread over every available device.

A *batch of models* is one module of the usual kind whose array leaves all carry a leading
batch axis of the same length $B$, one entry per member (parameter set). `stack` builds it
from a list of models, `grid` from one model and the values of a few named parameters; it
is what `eqx.filter_vmap` expects, so `eqx.filter_vmap(f)(models)` maps `f` over the
members. `sweep` runs every member through `jsyn.simulate`; member $b$'s result equals
`jsyn.simulate(member_b, ...)`.

**Sharding.** `sweep` splits the batch over the devices (default `jax.devices()`: every
device of every process) with JAX's own sharding: a one-axis `jax.sharding.Mesh` named
`"batch"`, `NamedSharding(mesh, PartitionSpec("batch"))` on every batched array, and one
`jax.shard_map`, so each device runs $B/D$ members. $B$ is padded to a multiple of the
device count $D$ with copies of the first member, and the padding is dropped from the
results. The same call runs unchanged on 1 device, $N$ devices, or several hosts joined
by `jax.distributed.initialize()`, with raw or typed PRNG keys (see the "Batch runs"
page of the documentation).
"""

import dataclasses
import math
from collections.abc import Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _validation as val
from ._params import AbstractParam
from ._resume import resumable_sweep
from ._sharding import shard_batch
from .fitting import select
from .fitting._select import follow
from .simulate import input_checks, simulate, step_checks

_NOT_VMAP_EXACT = ("rbg", "unsafe_rbg")  # see the jax.random documentation


def stack(models: Sequence[eqx.Module]) -> eqx.Module:
    """Stack models of one structure into a batch of models (`jnp.stack` of every array
    leaf along a new leading axis).

    **Arguments:**
    - `models`: a non-empty sequence of models of the same class and structure (the same
      static fields, and array leaves of the same shape), for example
      `[jsyn.DualExpon(1.0, tau) for tau in taus]`.

    **Returns:** one model whose array leaves have a leading axis of `len(models)`, for
    `jsyn.sweep` or `eqx.filter_vmap`. Member `b` is `jax.tree.map(lambda x: x[b], batch)`.
    """
    models = list(models)
    if not models:
        raise ValueError("jsyn.stack got no models; pass a non-empty list of models.")
    first, structure = jax.tree_util.tree_flatten_with_path(models[0])
    rows = []
    for i, model in enumerate(models):
        leaves, treedef = jax.tree.flatten(model)
        if treedef != structure:
            raise ValueError(
                f"jsyn.stack needs models of one structure, but model {i} "
                f"({type(model).__name__}) differs from model 0 ({type(models[0]).__name__}) "
                "in its class, its fields or a static setting; stack only like models."
            )
        rows.append(leaves)
    stacked = []
    for j, (path, leaf) in enumerate(first):
        column = [row[j] for row in rows]
        where = jax.tree_util.keystr(path)
        if not eqx.is_array(leaf):  # a Python object held as a leaf: shared by all
            if any(x is not leaf for x in column):
                raise ValueError(
                    f"jsyn.stack needs the non-array field {where} to be the same object in "
                    f"every model (got {leaf!r} and others); make it an array or share it."
                )
            stacked.append(leaf)
            continue
        shapes = {jnp.shape(x) for x in column}
        if len(shapes) > 1:
            raise ValueError(
                f"jsyn.stack needs {where} of one shape in every model (got shapes "
                f"{sorted(shapes)}); give it the same shape in each, for example a scalar."
            )
        stacked.append(_stack(column))
    return jax.tree.unflatten(structure, stacked)


def _stack(column):
    """`jnp.stack(column)`, through NumPy when the values are concrete: `jnp.stack` of
    many arrays compiles one concatenation of that many operands (30 s for 10 000)."""
    values = [val.concrete(x) for x in column]
    if any(v is None for v in values):
        return jnp.stack(column)
    return _filled(column[0], np.stack(values))


def _filled(like, values):
    """`values` (broadcast to a batch of `like`) with the dtype and weak type of `like`."""
    shape = (values.shape[0], *jnp.shape(like))
    return jnp.broadcast_to(like, shape).at[...].set(values)


def grid(model: eqx.Module, values: Mapping[str, object] | None = None, /, **named) -> eqx.Module:
    r"""A batch of models over the Cartesian product of parameter values.

    **Arguments:**
    - `model`: the model every member starts from.
    - `values` and/or keywords: `{name: sequence of values}`. A name is a dotted path
      into the model (`"synapse.tau_decay"`, `"output[1].g_max"`) or a unique last part
      (`"tau_decay"`), as for `jsyn.fit`; dotted paths go in the `values` dict, short
      names may be keywords. Each value is one entry of the sequence, a number or an
      array that broadcasts against the field. Values are physical (ms, nS, ...): a field
      held in `LogPositive`, `SoftplusPositive` or `Bounded` keeps its parametrisation,
      with the raw value of each entry.

    **Returns:** a batch of $B = \prod_j k_j$ models ($k_j$ values of the $j$-th name),
    ordered like `itertools.product` (the first name varies slowest), so results reshape
    to `(k_1, k_2, ..., ...)`. Fields not named are the same in every member.

    ```python
    psc = jsyn.PSC(jsyn.Expon(5.0), jsyn.COBA(g_max=1.0, E=0.0))
    models = jsyn.grid(psc, g_max=[0.5, 1.0, 2.0], tau=[2.0, 5.0])   # B = 6
    _, current = jsyn.sweep(models, spikes, dt=0.1)      # (6, time, n)
    current.reshape(3, 2, *current.shape[1:])            # [g_max index, tau index]
    ```
    """
    values = {**(values or {}), **named}
    if not values:
        raise ValueError("jsyn.grid got no parameters; pass, for example, tau=[2.0, 5.0].")
    try:
        names, paths = select(model, list(values))
    except ValueError as err:
        raise ValueError(str(err).replace("jsyn.fit:", "jsyn.grid:", 1)) from None
    columns = [
        _entries(model, path, name, v) for name, path, v in zip(names, paths, values.values())
    ]
    counts = [len(jax.tree.leaves(c)[0]) for c in columns]
    B = math.prod(counts)
    index = np.unravel_index(np.arange(B), counts)
    batch = jax.tree.map(lambda x: _repeat(x, B) if eqx.is_array(x) else x, model)
    for path, column, idx in zip(paths, columns, index):
        batch = eqx.tree_at(
            lambda m, p=path: follow(m, p), batch, jax.tree.map(lambda c: c[idx], column)
        )
    return batch


def _entries(model, path, name: str, values):
    """The `k` entries of one named parameter, shaped `(k, *field_shape)`: an array, or an
    `AbstractParam` of the field's kind holding `k` raw values."""
    node = follow(model, path)
    values = jnp.asarray(values)
    if values.ndim == 0 or values.shape[0] == 0:
        raise ValueError(
            f"jsyn.grid needs a non-empty sequence of values for {name!r} (got "
            f"{values.tolist()!r}); pass a list, for example {name}=[1.0, 2.0]."
        )
    field = node.raw if isinstance(node, AbstractParam) else node
    try:
        shape = (values.shape[0], *jnp.broadcast_shapes(values.shape[1:], jnp.shape(field)))
    except ValueError:
        raise ValueError(
            f"jsyn.grid: the values of {name!r} (entries of shape {values.shape[1:]}) do "
            f"not broadcast against the field's shape {jnp.shape(field)}; give numbers or "
            "arrays of the field's shape."
        ) from None
    entry = (1,) * (len(shape) - values.ndim) + values.shape[1:]
    values = jnp.broadcast_to(values.reshape(values.shape[0], *entry), shape)
    if not isinstance(node, AbstractParam):
        return _filled(jnp.broadcast_to(field, shape[1:]), values)
    statics = {k: getattr(node, k) for k in _static_fields(node)}
    return type(node)(values, **statics)


def _repeat(x, B: int):
    return jnp.broadcast_to(x, (B, *jnp.shape(x)))


def _static_fields(node) -> list[str]:
    return [f.name for f in dataclasses.fields(node) if f.metadata.get("static", False)]


def batch_size(
    models,
    needs: str = "jsyn.sweep needs a batch of models",
    fix: str = "build it with jsyn.stack or jsyn.grid.",
) -> int:
    """The batch length $B$ of a batch of models: the common leading axis of its array
    leaves. Raises `ValueError` when there is none, saying what `needs` it and the `fix`."""
    leaves = jax.tree_util.tree_flatten_with_path(eqx.filter(models, eqx.is_array))[0]
    sizes = {jnp.shape(leaf)[0] if jnp.ndim(leaf) else None for _, leaf in leaves}
    if len(sizes) != 1 or None in sizes:
        shown = ", ".join(f"{jax.tree_util.keystr(p)}: {jnp.shape(x)}" for p, x in leaves[:6])
        raise ValueError(
            f"{needs}, every array leaf with the same leading (batch) axis (got shapes "
            f"{shown or 'no arrays'}); {fix}"
        )
    return sizes.pop()


def sweep(
    models,
    inputs,
    dt,
    *,
    shared_inputs: bool = True,
    state=None,
    key=None,
    record=None,
    n_steps: int | None = None,
    checkpoint=None,
    record_every: int = 1,
    devices: Sequence[jax.Device] | None = None,
    checkpoint_to=None,
    checkpoint_every: int | str | None = None,
    resume: bool = False,
):
    r"""Run every member of a batch of models, as `jsyn.simulate` runs one model.

    Member $b$'s results equal `jsyn.simulate(member_b, inputs_b, dt, ...)` with the same
    options; the whole batch is one compiled `eqx.filter_vmap` of it, split over `devices`.

    **Arguments:**
    - `models`: a batch of models (`jsyn.stack`, `jsyn.grid`, or any module whose array
      leaves share a leading batch axis of length $B$).
    - `inputs`: the drive, time leading, as for `jsyn.simulate`. With `shared_inputs=True`
      (default) one drive, `(time, ...)`, goes to every member; with `shared_inputs=False`
      each member has its own, `(B, time, ...)`.
    - `dt`: the time step (ms), the same for every member.
    - `state`: `None` (default) builds each member's initial state as `jsyn.simulate`
      does; or per-member states with a leading axis $B$, such as the final states of an
      earlier sweep (to continue it exactly).
    - `key`: for stochastic systems: one PRNG key, used by every member (the same random
      numbers for each parameter set), or $B$ keys (`jax.random.split(key, B)`), one each.
      Per-member keys need a generator that is exact under `jax.vmap` (the default
      `threefry2x32`, or `philox*`); `rbg`/`unsafe_rbg` ones are refused (under `vmap`
      they draw the whole batch from the first key).
    - `record`, `n_steps`, `checkpoint`, `record_every`: as for `jsyn.simulate`.
    - `devices`: the devices to split the batch over; default `jax.devices()` (all
      devices of all processes). Pass `jax.devices()[:1]` for one device (in one process).
    - `checkpoint_to`, `checkpoint_every`, `resume`: as for `jsyn.simulate`: the sweep
      runs in chunks of steps, writes checkpoints and its record to disk, and resumes bit
      for bit (the record comes back memory-mapped, `(B, time, ...)`).

    **Returns:** `(final_states, recorded)`, as `jsyn.simulate` returns for one member,
    with a leading batch axis $B$ on every array, sharded over `devices` along it. A
    sharding splits an axis into equal parts, so when $B$ is not a multiple of the
    number of devices the batch is padded for the run and the results, without the
    padding, come back whole on every device: choose $B$ a multiple of it for large
    sweeps.

    ```python
    models = jsyn.stack([jsyn.DualExpon(1.0, tau) for tau in np.linspace(2, 20, 1000)])
    _, g = jsyn.sweep(models, spikes, dt=0.1)            # g: (1000, time, n)
    ```
    """
    if checkpoint_to is not None or checkpoint_every is not None or resume:
        options = dict(shared_inputs=shared_inputs, record=record, record_every=record_every)
        options.update(n_steps=n_steps, checkpoint=checkpoint, devices=devices)
        return resumable_sweep(
            sweep, models, inputs, dt, state, key, options, checkpoint_to, checkpoint_every, resume
        )
    B = batch_size(models)
    if not shared_inputs:
        _check_leading(inputs, B, "inputs", "or pass shared_inputs=True for one drive")
    if state is not None:
        _check_leading(state, B, "state", "pass per-member states, e.g. a sweep's final states")
    per_member_key = key is not None and val.check_key(key, "jsyn.sweep", B)
    if per_member_key and val.is_key(key) and str(jax.random.key_impl(key)) in _NOT_VMAP_EXACT:
        raise ValueError(
            f"jsyn.sweep: per-member keys of the {jax.random.key_impl(key)} generator "
            "are not exact under jax.vmap (it draws the batch from the first key), so "
            "members would not equal their own runs; use impl='threefry2x32' or "
            "'philox2x32' for per-member keys, or pass one key shared by all."
        )
    # The value checks of jsyn.simulate, once for the whole batch while the values are
    # concrete (a bad member is named by its index); under jit they run with the batch.
    steps_first = inputs if shared_inputs else jax.tree.map(_time_first, inputs)
    val.raise_concrete(val.collect(models) + step_checks(dt) + input_checks(steps_first))
    batched = (models, None if shared_inputs else inputs, state, key if per_member_key else None)
    shared = (inputs if shared_inputs else None, None if per_member_key else key, dt)
    options = dict(record=record, n_steps=n_steps, checkpoint=checkpoint, record_every=record_every)
    return shard_batch(_simulate_members, batched, (*shared, options), devices)


def _simulate_members(batched, shared):
    """`jsyn.simulate` of every member of one device's block of a sweep."""
    shared_inputs, shared_key, dt, options = shared

    def one(model, inputs, state, key):
        inputs = shared_inputs if inputs is None else inputs
        key = shared_key if key is None else key
        return simulate(model, inputs, dt, state=state, key=key, **options)

    return eqx.filter_vmap(one)(*batched)


def _check_leading(tree, B: int, what: str, fix: str) -> None:
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if jnp.shape(leaf)[:1] != (B,):
            raise ValueError(
                f"jsyn.sweep: {what}{jax.tree_util.keystr(path)} needs a leading batch axis "
                f"of {B} (got shape {jnp.shape(leaf)}); {fix}."
            )


def _time_first(x):
    """Per-member inputs `(B, time, ...)` as `(time, B, ...)`, so that a check names the
    bad time step (a NumPy view; traced inputs stay as they are)."""
    concrete = val.concrete(x)
    return x if concrete is None else np.moveaxis(concrete, 0, 1)
