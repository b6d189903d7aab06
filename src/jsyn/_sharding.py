r"""Splitting a batch over devices, the one helper of `jsyn.sweep` and
`TrialBatch.simulate`.

`shard_batch(fn, batched, shared)` lays a one-axis `jax.sharding.Mesh` (axis `"batch"`)
over the devices (default `jax.devices()`: every device of every process joined by
`jax.distributed.initialize()`), pads the batch to a multiple of the device count $D$
with copies of its first member, places each batched array split along its leading axis
(`PartitionSpec("batch")`) and each shared one whole on every device, and runs `fn` on
each device's block under `jax.shard_map`: device $d$ computes members
$dB'/D, \ldots, (d+1)B'/D - 1$ of the padded batch of $B'$, with no communication.

**Several processes.** Every process calls with the same values (SPMD). Concrete arrays
are placed with `jax.make_array_from_callback` from this process's copy, which builds a
global array from the blocks of this process's devices: it serves typed PRNG keys
(`jax.random.key`) as well as numbers, where `jax.device_put` of a key array onto a mesh
that spans other processes raises `ValueError` (it needs addressable devices).
"""

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "batch"


def mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A one-axis mesh named `"batch"` over `devices` (default `jax.devices()`)."""
    return Mesh(np.asarray(list(jax.devices() if devices is None else devices)), (AXIS,))


def shard_batch(fn: Callable, batched, shared=None, devices: Sequence[jax.Device] | None = None):
    r"""`fn(block, shared)` on every device's block of `batched`, results concatenated.

    **Arguments:**
    - `fn`: a function (define it once, at module level: it is a static argument of the
      compiled run) of a block of `batched`, leading axis $B'/D$, and of `shared`; it
      returns a pytree of arrays with the same leading axis.
    - `batched`: a pytree whose array leaves share a leading batch axis $B$.
    - `shared`: a pytree that every device gets whole (arrays, and other leaves that are
      static settings such as `dt` or a `record` function).
    - `devices`: default `jax.devices()`.

    **Returns:** `fn`'s results with the leading axis $B$, split over the devices along it
    (whole on every device when padding was needed, since shardings split an axis into
    equal parts).
    """
    on = mesh(devices)
    B = batch_size(batched)
    split, whole = NamedSharding(on, PartitionSpec(AXIS)), NamedSharding(on, PartitionSpec())
    batched = place(pad(batched, -B % on.size), split)
    return _run(fn, batched, place(shared, whole), split, B)


def batch_size(batched) -> int:
    """The common leading axis of the array leaves of `batched`."""
    sizes = {jnp.shape(x)[0] for x in jax.tree.leaves(batched) if eqx.is_array(x)}
    if len(sizes) != 1:
        raise ValueError(f"a batch needs one leading axis on every array (got sizes {sizes}).")
    return sizes.pop()


def pad(tree, n: int):
    """`tree` with `n` copies of its member 0 appended to every array (to fill the last
    device)."""
    if not n:
        return tree

    def grow(x):
        return jnp.concatenate([x, jnp.broadcast_to(x[:1], (n, *jnp.shape(x)[1:]))])

    return jax.tree.map(lambda x: grow(x) if eqx.is_array(x) else x, tree)


def place(tree, sharding: NamedSharding):
    """The concrete arrays of `tree` on the devices of `sharding`, from this process's
    copy (typed keys included, across processes too). Traced ones (under `jit` or `grad`)
    stay as they are: the compiled run constrains them."""

    def put(x):
        if not eqx.is_array(x) or isinstance(x, jax.core.Tracer):
            return x
        if sharding.is_fully_addressable:
            return jax.device_put(x, sharding)
        return jax.make_array_from_callback(jnp.shape(x), sharding, lambda index: x[index])

    return jax.tree.map(put, tree)


def constrain(tree, sharding: NamedSharding):
    """`jax.lax.with_sharding_constraint` on the arrays of `tree`."""
    arrays, rest = eqx.partition(tree, eqx.is_array)
    return eqx.combine(jax.lax.with_sharding_constraint(arrays, sharding), rest)


@eqx.filter_jit
def _run(fn, batched, shared, split, B):
    whole = NamedSharding(split.mesh, PartitionSpec())
    batched, shared = constrain(batched, split), constrain(shared, whole)
    batched_arrays, batched_rest = eqx.partition(batched, eqx.is_array)
    shared_arrays, shared_rest = eqx.partition(shared, eqx.is_array)

    def block(batched_arrays, shared_arrays):
        batched = eqx.combine(batched_arrays, batched_rest)
        return fn(batched, eqx.combine(shared_arrays, shared_rest))

    spec = PartitionSpec(AXIS)
    out = jax.shard_map(
        block, mesh=split.mesh, in_specs=(spec, PartitionSpec()), out_specs=spec, check_vma=False
    )(batched_arrays, shared_arrays)
    if jax.tree.leaves(out)[0].shape[0] == B:
        return out
    # Uneven shardings do not exist: without the padding the results are gathered.
    return constrain(jax.tree.map(lambda x: x[:B], out), whole)
