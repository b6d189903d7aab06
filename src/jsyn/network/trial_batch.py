r"""Trial batches of networks: $B$ independent trials of one `jsyn.Network` run as one
network, laid side by side.

`jax.vmap` over trials of a network with event-driven `jsyn.Sparse` connections is a
trap: a batched `jax.lax.switch` runs every branch, the all-neuron one included, so each
step costs a dense pass per trial. `trials` instead builds **one** network holding the $B$
trials: every group of $n$ neurons becomes a group of $nB$, every connection a
block-diagonal `jsyn.Sparse` (trial $b$ wired only to trial $b$), so one step counts the
spikes of all trials together and picks one capacity tier for the total.

**Layout.** Neuron $i$ of trial $b$ is neuron $iB + b$ of the batched group (neuron-major),
so a `pre_slice`/`post_slice` $(a, c)$ of a group stays contiguous, $(aB, cB)$. A
per-neuron array of the batch therefore reads `x.reshape(n, B)` (use `TrialBatch.split`).
Per-synapse arrays follow the batched `jsyn.Sparse`'s own order. A state is laid out from
what its fields declare (`jsyn.axis`): one value per element of its
population (a group's cells, a projection's presynaptic or postsynaptic cells or
synapses) is laid as above, a value the trials share (a step counter, a ring buffer's
position) stays one, and a PRNG key becomes one key per trial, shape `(B,)`.

**Exactness.** Each trial computes what its single run computes: neurons, outputs, STP,
plasticity and kinetics are elementwise; deliveries reach each postsynaptic neuron from
the same synapses in the same order. A `jsyn.Dense` connection becomes a `jsyn.Sparse`
one with all $n_\text{pre} n_\text{post}$ synapses (block-diagonal, so memory grows as
$B$, not $B^2$), which sums in another order than the single run's matrix product: its
traces agree to rounding.

**Randomness.** Each trial draws from its own key what its single run draws with that
key. A stochastic part (one that declares `needs_key`: `jsyn.Poisson`, `jsyn.OUNoise`,
`jsyn.QuantalSTP`, or one of your own) keeps one key per trial and steps each trial with
its own key and state (`jax.vmap` over the trials: exact, for JAX's default generator).
Stochastic release draws counter-based numbers per synapse from the step's key: in the
batch, each synapse draws from its trial's key with its number in the single run (see
`jsyn.StochasticRelease`'s `ids`).

Gap junctions are batched as projections are (block-diagonal connections, the spikelets
of the next step per postsynaptic cell). A `jsyn.Neuromodulator` group becomes one cell
per trial and cell; a group of one cell, read by every postsynaptic neuron, reaches
postsynaptic neuron $jB + b$ through its cell $b$ (see `jsyn.Network`).
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from .. import _validation as val
from .._component import EACH, POST, PRE, SHARED, STREAM, SYNAPSE, IndexAxis, field_axis
from .._resume import resumable_trials
from .._sharding import shard_batch
from ..batch import batch_size
from ..connectivity import Dense, Sparse
from ..gap_junction import GapJunction
from ..neurons import AbstractNeuron
from ..plasticity import AbstractShortTermPlasticity
from ..simulate import simulate
from ..synapses import AbstractLinearSynapse, AbstractSynapse
from .network import Network, NetworkState
from .projection import Projection

__all__ = ["TrialBatch", "trials"]


def trials(net: Any, B: int | None = None) -> "TrialBatch":
    r"""$B$ trials of `net` as one network (see the module docstring for how).

    **Arguments:**
    - `net`: the network, either one `jsyn.Network` (every trial with its parameters; give
      `B`), or a batch of networks of one structure, with a leading axis $B$ on every
      array leaf (`jsyn.grid(net, {"projections.E.output.g_max": [...]})` or
      `jsyn.stack([net_0, ..., net_{B-1}])`) for parameters per trial. A parameter that
      differs between trials becomes one value per neuron (or per synapse) of the batch;
      one the trials share keeps its shape.
    - `B`: the number of trials, with one network; leave it out with a batch of networks.

    **Returns:** a `TrialBatch` (an `equinox.Module`): the batched network `.net`, and
    helpers to build its initial state and inputs and to split results back per trial.

    ```python
    tb = jsyn.trials(net, 32)                           # 32 trials of net
    state = tb.init_state(jax.random.split(key, 32))    # each trial's own key
    _, spikes = jsyn.simulate(tb.net, None, 0.1, state=state, n_steps=5000)
    per_trial = tb.split(spikes["E"], "E")              # (32, 5000, n_E)
    ```
    Trial $b$ of `per_trial` equals
    `jsyn.simulate(net, None, 0.1, key=key_b, n_steps=5000)[1]["E"]`: spike trains
    identical, traces to rounding, for every part of a network, stochastic ones included
    (stochastic release, `jsyn.QuantalSTP`, `jsyn.OUNoise`, `jsyn.Poisson`: each trial
    draws from its own key what its single run draws), gap junctions, neuromodulator
    groups and modulated gains.

    Refused, with the reason: a connection other than `jsyn.Sparse` or `jsyn.Dense`; a
    state field that declares no axis (`jsyn.axis`) where the batch cannot
    tell how it lies; per-synapse kinetics with one delay that differs between trials
    (give each trial one delay per synapse). `TrialBatch.simulate` over several devices
    takes trials of one network (parameters per trial run on one device).
    """
    if not isinstance(net, Network):
        raise TypeError(
            f"jsyn.trials needs a jsyn.Network or a batch of them (got {type(net).__name__})."
        )
    if B is None:
        B = batch_size(
            net,
            "jsyn.trials(net) without B needs a batch of networks",
            "build it with jsyn.stack or jsyn.grid, or pass B for B trials of one network.",
        )
        stacked = net
        net = jax.tree.map(lambda x: x[0] if eqx.is_array(x) else x, stacked)
    else:
        B = int(B)
        if B < 1:
            raise ValueError(f"jsyn.trials needs B >= 1 trials (got {B}).")
        stacked = None
    builder = _Builder(B)
    batched = builder.network(net, stacked)
    return TrialBatch(batched, net, stacked, B, tuple(builder.kinds.items()))


def _interleave(n: int, B: int) -> np.ndarray:
    """Batched position `i * B + b` -> trial-major position `b * n + i`."""
    return (np.arange(B)[None, :] * n + np.arange(n)[:, None]).reshape(-1)


def _column(stacked) -> Array | None:
    """The trials' values of one leaf, shape `(B, ...)`, or `None` when they share it."""
    if stacked is None:
        return None
    concrete = val.concrete(stacked)
    if concrete is not None and np.all(concrete == concrete[:1]):
        return None
    return stacked


@dataclasses.dataclass(frozen=True, eq=False)
class _Kind:
    """How one population (a group's neurons, a projection's pre/post neurons or
    synapses) lies in the batch: `perm[k]` is the trial-major position (`b * size + i`)
    of batched position `k`; `shape` the axes of one trial (two for a `Dense`'s
    synapses)."""

    shape: tuple[int, ...]
    perm: np.ndarray

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def blocks(self, k: int) -> "_Kind":
        """`k` blocks of this one-axis population laid end to end, `(k * size,)` (each
        block laid as this one)."""
        if k == 1:
            return self
        n = self.size
        b, i = np.divmod(self.perm, n)
        perm = np.concatenate([b * k * n + h * n + i for h in range(k)])
        return _Kind((k * n,), perm)

    def merge(self, stacked: Array) -> Array:
        """Per-trial arrays `(B, *lead, *shape)` -> the batch's `(*lead, B * size)`."""
        B, m = stacked.shape[0], len(self.shape)
        if tuple(stacked.shape[stacked.ndim - m :]) != self.shape or stacked.ndim < m + 1:
            raise _Unlaid(f"shape {stacked.shape[1:]} per trial", self)
        flat = stacked.reshape(*stacked.shape[: stacked.ndim - m], self.size)
        flat = jnp.moveaxis(flat, 0, -2)
        return flat.reshape(*flat.shape[:-2], B * self.size)[..., self.perm]

    def split(self, x: Array, B: int) -> Array:
        """The batch's `(*lead, B * size)` -> per-trial `(B, *lead, *shape)`."""
        if jnp.shape(x)[-1:] != (B * self.size,):
            raise _Unlaid(f"shape {jnp.shape(x)} in the batch", self)
        inverse = np.empty_like(self.perm)
        inverse[self.perm] = np.arange(self.perm.size)
        x = jnp.asarray(x)[..., inverse].reshape(*jnp.shape(x)[:-1], B, *self.shape)
        return jnp.moveaxis(x, -1 - len(self.shape), 0)


@dataclasses.dataclass(frozen=True, eq=False)
class _IndexKind:
    """How a field of positions in the population `into`, one per element of `along`, lies
    in the batch: laid over `along`, each value renumbered to the batch's position of its
    trial's element of `into`."""

    along: _Kind
    into: _Kind

    def merge(self, stacked: Array) -> Array:
        B = stacked.shape[0]
        trial = jnp.arange(B, dtype=stacked.dtype).reshape(B, *(1,) * (stacked.ndim - 1))
        position = np.empty_like(self.into.perm)
        position[self.into.perm] = np.arange(self.into.perm.size)  # trial-major -> batch
        batched = jnp.asarray(position)[stacked + trial * self.into.size]
        return self.along.merge(batched.astype(stacked.dtype))

    def split(self, x: Array, B: int) -> Array:
        positions = self.along.split(x, B)
        return (jnp.asarray(self.into.perm)[positions] % self.into.size).astype(positions.dtype)


class _Unlaid(ValueError):
    """A value that does not lie over its population as one value per element."""

    def __init__(self, shape: str, kind: "_Kind | None"):
        where = "" if kind is None else f", its population {kind.shape}"
        super().__init__(f"{shape}{where}")


def _undeclared(what: str, why: str) -> ValueError:
    return ValueError(
        f"jsyn.trials cannot lay out {what} ({why}): a state field that is not one value "
        "per element of its population must declare its axis (jsyn.axis: "
        '"shared" for a value the trials share, such as a step counter; "stream" for a PRNG '
        "key; or the population it lies over); batch such trials with jax.vmap."
    )


# -- laying out a state by the axes its fields declare ----------------------------------

_FIELDS = "fields of the next state"  # a key of `where`: axes by field, for one module


def _lay(tree, where: dict, leaf, what: str = "a state"):
    """`tree` (a state, or part of one) with each array leaf `x` replaced by
    `leaf(x, how)`: `how` is the `_Kind` of the population it lies over, `SHARED` or
    `STREAM`, as its fields declare (`jsyn.axis`). `where` maps axis names to
    `_Kind`s (`EACH`: the population of a field that declares none), or to other names
    (`(name, k)`: `k` blocks of one; a dict: the axes of the fields of a nested state)."""
    if tree is None:
        return None
    if isinstance(tree, eqx.Module) and dataclasses.is_dataclass(tree):
        by_field = where.get(_FIELDS, {})
        inner = {k: v for k, v in where.items() if k != _FIELDS}
        new = object.__new__(type(tree))
        for f in dataclasses.fields(tree):
            value = getattr(tree, f.name)
            if not f.metadata.get("static", False) and value is not None:
                how = by_field.get(f.name, field_axis(f))
                what = f"{type(tree).__name__}.{f.name}"
                value = _lay_field(value, how, inner, leaf, what)
            object.__setattr__(new, f.name, value)
        return new
    if eqx.is_array(tree):
        kind = where.get(EACH)
        if kind is None:
            raise _undeclared(what, "it declares no axis")
        try:
            return leaf(tree, kind)
        except _Unlaid as e:
            raise _undeclared(what, str(e)) from None
    children, treedef = jax.tree.flatten(
        tree, is_leaf=lambda x: x is not tree and (eqx.is_array(x) or isinstance(x, eqx.Module))
    )
    if len(children) == 1 and children[0] is tree:  # a leaf that is not an array
        return tree
    return jax.tree.unflatten(treedef, [_lay(c, where, leaf, what) for c in children])


def _lay_field(value, how, where, leaf, what):
    if isinstance(how, str) and where.get(how) in (SHARED, STREAM):  # a name for one of them
        how = where[how]
    if isinstance(how, str) and how in (SHARED, STREAM):
        return jax.tree.map(lambda x: leaf(x, how), value)
    if isinstance(how, str) and how == EACH:
        return _lay(value, where, leaf, what)
    return _lay(value, _resolve(how, where, what), leaf, what)


def _resolve(how, where: dict, what: str) -> dict:
    """`where` with `EACH` (or the fields' axes) set to what the axis `how` names."""
    if isinstance(how, tuple):  # (name, k): k blocks of the population `name`
        name, k = how
        return where | {EACH: _resolve(name, where, what)[EACH].blocks(k)}
    if isinstance(how, IndexAxis):  # positions in `into`, one per element of `along`
        along, into = (_resolve(name, where, what)[EACH] for name in (how.along, how.into))
        return where | {EACH: _IndexKind(along, into)}
    if isinstance(how, Mapping):  # the axes of the fields of a nested state
        return where | {_FIELDS: dict(how)}
    if how not in where or where[how] is None:
        raise ValueError(
            f"jsyn.trials cannot lay out {what}: it declares the axis {how!r}, which its "
            f"system does not resolve (known: {sorted(k for k in where if k != _FIELDS)}); "
            "declare it in the system's state_axes, or batch such trials with jax.vmap."
        )
    target = where[how]
    if isinstance(target, _Kind):
        return where | {EACH: target}
    return _resolve(target, where, what)


def _merge_leaf(B: int):
    def leaf(x, how):
        if jnp.shape(x)[:1] != (B,):
            raise ValueError(
                f"TrialBatch.merge_state needs the trials' states stacked with a leading "
                f"axis of {B} (got a leaf of shape {jnp.shape(x)}); stack them, e.g. with "
                "jax.vmap over the trials' keys."
            )
        if how == SHARED:
            return x[0]
        if how == STREAM:
            return x
        return how.merge(jnp.asarray(x))

    return leaf


def _split_leaf(B: int):
    def leaf(x, how):
        if how == SHARED:
            return jnp.broadcast_to(x, (B, *jnp.shape(x)))
        if how == STREAM:
            return x
        return how.split(x, B)

    return leaf


# -- stochastic parts: each trial with its own key and state ----------------------------


def _per_trial_params(part, kind: _Kind, B: int):
    """The array parameters of `part` (laid over the batch by `kind`, or shared
    scalars) per trial: `(params, axes, static)` for `jax.vmap`."""
    params, static = eqx.partition(part, eqx.is_array)
    axes = jax.tree.map(lambda p: 0 if jnp.ndim(p) else None, params)
    params = jax.tree.map(lambda p: kind.split(p, B) if jnp.ndim(p) else p, params)
    return params, axes, static


def _per_trial_input(x, kind: _Kind, B: int):
    """An input of the batch per trial, with its `jax.vmap` axis."""
    if x is None or jnp.ndim(x) == 0:
        return x, None
    return kind.split(x, B), 0


def _per_trial_step(part, kind: _Kind, B: int, state, x, dt, **kwargs):
    """One step of `part` for each trial of the batch: its parameters, state and inputs
    split per trial, the single part's step mapped over the trials (`jax.vmap`), the
    results laid back; each trial draws from its own key what its single run draws."""
    params, axes, static = _per_trial_params(part, kind, B)
    states = _lay(state, {EACH: kind}, _split_leaf(B))
    x, x_axis = _per_trial_input(x, kind, B)
    kw = {name: _per_trial_input(v, kind, B) for name, v in kwargs.items()}

    def one(p, s, x, kw):
        return eqx.combine(p, static).step(s, x, dt, **kw)

    new, out = jax.vmap(one, in_axes=(axes, 0, x_axis, {k: a for k, (_, a) in kw.items()}))(
        params, states, x, {k: v for k, (v, _) in kw.items()}
    )
    return _lay(new, {EACH: kind}, _merge_leaf(B)), kind.merge(out)


def _per_trial_init(part, kind: _Kind, B: int, dtype, key):
    """The batch's state of `part`: trial `b`'s from key `b` of `key` split into `B`."""
    params, axes, static = _per_trial_params(part, kind, B)
    keys = key if val.check_key(key, "a stochastic part of jsyn.trials", B) else None
    keys = jax.random.split(key, B) if keys is None else keys

    def one(p, k):
        return eqx.combine(p, static).init_state(kind.shape, dtype=dtype, key=k)

    states = jax.vmap(one, in_axes=(axes, 0))(params, keys)
    return _lay(states, {EACH: kind}, _merge_leaf(B))


class _AbstractPerTrial(eqx.Module):
    """A stochastic part of a trial batch: each trial steps with its own key and state
    (`_per_trial_init`, `_per_trial_step`); its constraints are the wrapped part's own."""

    part: eqx.AbstractVar[Any]
    kind: eqx.AbstractVar[_Kind]
    B: eqx.AbstractVar[int]
    needs_key: ClassVar[bool] = True

    def constraints(self):
        return ()

    def init_state(self, n=None, *, dtype=None, key):
        return _per_trial_init(self.part, self.kind, self.B, dtype, key)

    def step(self, state, x, dt, **kwargs):
        return _per_trial_step(self.part, self.kind, self.B, state, x, dt, **kwargs)


class _TrialNeuron(_AbstractPerTrial, AbstractNeuron):
    """A stochastic neuron group of a trial batch."""

    part: AbstractNeuron
    kind: _Kind = eqx.field(static=True)
    B: int = eqx.field(static=True)
    sized_by_inputs: ClassVar[bool] = False

    @property
    def has_potential(self) -> bool:  # as the wrapped neuron declares
        return self.part.has_potential

    @property
    def takes_jump(self) -> bool:
        return self.part.takes_jump

    def stochastic_parts(self) -> str:
        return self.part.stochastic_parts()


class _TrialSTP(_AbstractPerTrial, AbstractShortTermPlasticity):
    """A stochastic short-term plasticity model of a trial batch (`jsyn.QuantalSTP`)."""

    part: AbstractShortTermPlasticity
    kind: _Kind = eqx.field(static=True)
    B: int = eqx.field(static=True)


class _TrialLinearSynapse(_AbstractPerTrial, AbstractLinearSynapse):
    """Stochastic linear kinetics of a trial batch (`jsyn.OUNoise`); the drive is added
    into the batch's state as the part adds it."""

    part: AbstractLinearSynapse
    kind: _Kind = eqx.field(static=True)
    B: int = eqx.field(static=True)

    def add_drive(self, state, delivery):
        return self.part.add_drive(state, delivery)


class _TrialSynapse(_AbstractPerTrial, AbstractSynapse):
    """Stochastic nonlinear kinetics of a trial batch."""

    part: AbstractSynapse
    kind: _Kind = eqx.field(static=True)
    B: int = eqx.field(static=True)


def _per_trial_synapse(synapse, kind: _Kind, B: int):
    wrap = _TrialLinearSynapse if isinstance(synapse, AbstractLinearSynapse) else _TrialSynapse
    return wrap(synapse, kind, B)


# -- building the batched network ---------------------------------------------------------


class _Builder:
    """Builds the batched network of `B` trials, and records how each population lies
    (`kinds`, by group name or `(projection or gap junction, "pre"/"post"/"syn")`)."""

    def __init__(self, B: int):
        self.B = B
        self.kinds: dict[Any, _Kind] = {}

    def network(self, net: Network, stacked: Network | None) -> Network:
        sizes = dict(net.sizes)
        groups = {}
        for name, n in net.sizes:
            self.kinds[name] = _Kind((n,), _interleave(n, self.B))
            neuron = net.groups[name]
            column = None if stacked is None else stacked.groups[name]
            groups[name] = (self._group(name, neuron, column), n * self.B)
        projections = {
            pname: self._projection(
                pname, proj, None if stacked is None else stacked.projections[pname], sizes
            )
            for pname, proj in net.projections.items()
        }
        gaps = {
            gname: self._gap(gname, gap, None if stacked is None else stacked.gaps[gname])
            for gname, gap in net.gaps.items()
        }
        return Network(groups, projections, gaps)

    def _expand(self, tree, stacked, kind: _Kind):
        """`tree` with each array leaf made one per batched element of `kind`, unless the
        trials share a scalar."""
        if tree is None:
            return None
        leaves, treedef = jax.tree.flatten(tree)
        columns = _columns(tree, stacked)
        out = []
        for leaf, column in zip(leaves, columns):
            if not eqx.is_array(leaf):
                out.append(leaf)
                continue
            column = _column(column)
            if column is None and jnp.ndim(leaf) == 0:
                out.append(leaf)
                continue
            values = leaf[None] if column is None else column
            pad = len(kind.shape) - (values.ndim - 1)  # align a trial's value to the right
            values = values.reshape(values.shape[0], *(1,) * max(pad, 0), *values.shape[1:])
            try:
                full = jnp.broadcast_to(values, (self.B, *kind.shape))
            except ValueError:
                raise ValueError(
                    f"jsyn.trials: a parameter of shape {jnp.shape(values)[1:]} does not fit "
                    f"the {kind.shape} it belongs to; give a scalar or that shape."
                ) from None
            out.append(kind.merge(full))
        return jax.tree.unflatten(treedef, out)

    def _group(self, name: str, neuron: AbstractNeuron, stacked) -> AbstractNeuron:
        B, kind = self.B, self.kinds[name]
        own = neuron.for_trials(B, stacked)  # laid out by the group itself
        if own is not None:
            return own
        expanded = self._expand(neuron, stacked, kind)
        return _TrialNeuron(expanded, kind, B) if neuron.needs_key else expanded

    def _connection(self, what: str, conn, stacked, event_driven: bool) -> tuple[Sparse, _Kind]:
        """`conn` for the batch: block-diagonal `jsyn.Sparse` (trial $b$ wired to trial $b$
        only), its synapses ordered by presynaptic neuron; and how they lie. A `Dense`
        connection is event-driven when `event_driven`; a `Sparse` one keeps its own."""
        B = self.B
        if isinstance(conn, Sparse):
            pre, post = np.asarray(conn.pre_idx), np.asarray(conn.post_idx)
            event_driven = conn.event_driven
        elif isinstance(conn, Dense):
            pre, post = (a.reshape(-1) for a in np.indices(conn.syn_shape))
        else:
            raise TypeError(
                f"jsyn.trials batches jsyn.Sparse and jsyn.Dense connections ({what} has "
                f"{type(conn).__name__}): it wires each trial to itself, block-diagonally."
            )
        trial = np.arange(B)[:, None]
        pre_b = (pre[None, :] * B + trial).reshape(-1)  # trial-major: b * n_syn + s
        post_b = (post[None, :] * B + trial).reshape(-1)
        order = np.argsort(pre_b, kind="stable")
        syn_kind = _Kind(conn.syn_shape, order)
        w = self._expand(conn.w, None if stacked is None else stacked.w, syn_kind)
        batched = Sparse(
            pre_b[order],
            post_b[order],
            conn.n_pre * B,
            conn.n_post * B,
            w,
            event_driven=event_driven,
        )
        return batched, syn_kind

    def _gap(self, gname: str, gap: GapJunction, stacked) -> GapJunction:
        """A gap junction of the batch: its connection block-diagonal, its spikelet
        factor one per postsynaptic cell of the batch (or shared)."""
        post_kind = _Kind((gap.n_post,), _interleave(gap.n_post, self.B))
        self.kinds[(gname, "post")] = post_kind
        conn, _ = self._connection(
            f"gap junction {gname!r}", gap.conn, None if stacked is None else stacked.conn, True
        )
        k = self._expand(gap.k_spikelet, None if stacked is None else stacked.k_spikelet, post_kind)
        return GapJunction(conn, k, pre=gap.pre, post=gap.post)

    def _projection(self, pname: str, p: Projection, stacked, sizes) -> Projection:
        B = self.B
        pre_kind = _Kind((p.n_pre,), _interleave(p.n_pre, B))
        post_kind = _Kind((p.n_post,), _interleave(p.n_post, B))
        s = stacked
        # a plastic Dense projection keeps its per-synapse traces (its single run's)
        batched_conn, syn_kind = self._connection(
            f"projection {pname!r}", p.conn, None if s is None else s.conn, p.plasticity is None
        )
        self.kinds[(pname, "pre")] = pre_kind
        self.kinds[(pname, "post")] = post_kind
        self.kinds[(pname, "syn")] = syn_kind
        layout = syn_kind if p.synapse_params == "synapse" else post_kind
        delay = None
        if p.line is not None:
            delay_column = None if s is None else s.line.delay
            if (
                p.per_synapse
                and jnp.ndim(jax.tree.leaves(p.line.delay)[0]) == 0
                and any(_column(c) is not None for c in _columns(p.line.delay, delay_column))
            ):
                raise ValueError(
                    f"jsyn.trials: projection {pname!r} has per-synapse kinetics and one delay "
                    "that differs between trials; give each trial one delay per synapse "
                    "(an array of the connection's syn_shape)."
                )
            delay = self._expand(p.line.delay, delay_column, syn_kind)

        def part(name, kind):
            return self._expand(getattr(p, name), None if s is None else getattr(s, name), kind)

        def scaled(rng):
            return None if rng is None else (rng[0] * B, rng[1] * B)

        synapse, stp = part("synapse", layout), part("stp", pre_kind)
        if p.synapse.needs_key:  # each trial's kinetics draw from its key
            synapse = _per_trial_synapse(synapse, syn_kind if p.per_synapse else post_kind, B)
        if stp is not None and stp.needs_key:
            stp = _TrialSTP(stp, pre_kind, B)
        release = None
        if p.release is not None:  # each synapse numbered as in its single run
            ids = np.arange(int(np.prod(p.conn.syn_shape))).reshape(p.conn.syn_shape)
            release = self._expand(
                _numbered(p.release, ids),
                None if s is None else _numbered(s.release, np.broadcast_to(ids, (B, *ids.shape))),
                syn_kind,
            )
        return Projection(
            batched_conn,
            synapse,
            part("output", post_kind),
            stp=stp,
            delay=delay,
            dt=next((line.dt for line in (p.line, p.dendrite) if line is not None), None),
            max_delay=None if p.line is None else p.line.max_delay,
            pre=p.pre,
            post=p.post,
            pre_slice=scaled(p.pre_slice),
            post_slice=scaled(p.post_slice),
            synapse_params=p.synapse_params,
            plasticity=part("plasticity", syn_kind),
            dendritic_delay=None if p.dendrite is None else p.dendrite.delay,
            release=release,
            modulation=part("modulation", post_kind),
        )


def _numbered(release, ids):
    """`release` with its synapses numbered by `ids`, unless it numbers them itself."""
    if release.ids is not None:
        return release
    return eqx.tree_at(lambda r: r.ids, release, jnp.asarray(ids), is_leaf=lambda x: x is None)


# -- the batch ----------------------------------------------------------------------------


class TrialBatch(eqx.Module):
    """$B$ trials of a network as one (`jsyn.trials` builds it).

    **Attributes:** `net`, the batched `jsyn.Network` (run it with `jsyn.simulate`);
    `single`, the network of one trial (trial 0's parameters); `stacked`, the networks of
    the trials stacked (parameters per trial), or `None`; `B`, the number of trials.

    Per-trial arrays have the trials leading, `(B, ...)`, shaped as for one trial: a
    stacked state is what `jax.vmap(lambda k: net.init_state(key=k))(keys)` gives.
    """

    net: Network
    single: Network
    stacked: Network | None
    B: int = eqx.field(static=True)
    layout: tuple = eqx.field(static=True)  # ((population, _Kind), ...)

    def _kind(self, key) -> _Kind:
        return dict(self.layout)[key]

    # -- states, inputs and results ---------------------------------------------------

    def _map_state(self, state: NetworkState, leaf) -> NetworkState:
        """Apply `leaf(x, how)` to every leaf of a network state, laid out by the axes
        its fields declare (see `_lay`)."""
        groups = {name: _lay(s, {EACH: self._kind(name)}, leaf) for name, s in state.groups.items()}
        projections = {}
        for pname, ps in state.projections.items():
            proj = self.single.projections[pname]
            where = {
                PRE: self._kind((pname, "pre")),
                POST: self._kind((pname, "post")),
                SYNAPSE: self._kind((pname, "syn")),
                EACH: None,
            }
            projections[pname] = _lay(ps, where | proj.state_axes(), leaf)
        gaps = {g: _lay(x, {EACH: self._kind((g, "post"))}, leaf) for g, x in state.gaps.items()}
        return NetworkState(groups=groups, projections=projections, gaps=gaps)

    def merge_state(self, states: NetworkState) -> NetworkState:
        """The batched network's state from the trials' states, stacked `(B, ...)` (each
        trial's state as `single.init_state` shapes it, e.g. with its own potentials)."""
        return self._map_state(states, _merge_leaf(self.B))

    def split_state(self, state: NetworkState) -> NetworkState:
        """The trials' states, stacked `(B, ...)`, from the batched network's state (the
        inverse of `merge_state`): trial `b`'s is
        `jax.tree.map(lambda x: x[b], split_state(state))`."""
        return self._map_state(state, _split_leaf(self.B))

    def init_state(self, key: Array | None = None, *, dtype=None) -> NetworkState:
        """The batched state at rest: trial `b` as `single.init_state(key=key[b])`.

        `key`: for stochastic groups and projections (`jsyn.Poisson`, stochastic release,
        `jsyn.QuantalSTP`, `jsyn.OUNoise`), one key per trial, shape `(B,)` (e.g.
        `jax.random.split(key, B)`), or one key, split into `B`."""
        if self.single.needs_key:
            if key is None:
                raise TypeError(
                    f"TrialBatch.init_state: {self.single.stochastic_parts()} stochastic; pass "
                    "one key per trial, key=jax.random.split(jax.random.key(0), B)."
                )
            if not val.check_key(key, "TrialBatch.init_state", self.B):
                key = jax.random.split(key, self.B)
            states = jax.vmap(lambda k: self.single.init_state(dtype=dtype, key=k))(key)
        else:
            one = self.single.init_state(dtype=dtype)
            states = jax.tree.map(lambda x: jnp.broadcast_to(x, (self.B, *jnp.shape(x))), one)
        return self.merge_state(states)

    def simulate(
        self,
        dt,
        *,
        state: NetworkState,
        inputs: Mapping[str, Array] | None = None,
        n_steps: int | None = None,
        record=None,
        devices: Sequence[jax.Device] | None = None,
        checkpoint_to=None,
        checkpoint_every: int | str | None = None,
        resume: bool = False,
    ):
        r"""Run the trials split over `devices` (default `jax.devices()`): device $d$ of $D$
        runs trials $dB/D, \ldots, (d+1)B/D - 1$ as one network of $B/D$ trials (the
        `TrialBatch` `shard(D)`), event-driven, under `jax.shard_map`; the same call on 1
        device runs them all as `net`. $B$ must be a multiple of $D$.

        **Arguments:** `state`, the batch's state (`init_state`, `merge_state`, or the final
        state of an earlier run); `inputs`, `None` or external currents per trial,
        `{group: (time, B, n)}`; `dt`, `n_steps`, `record` as for `jsyn.simulate`.

        **Returns:** `(final_state, recorded)`: the batch's state after the run (as
        `jsyn.simulate(net, ...)` returns it) and each device's record, with a leading
        axis $D$ (`split_devices` turns a record of a group's neurons into `(B, ..., n)`).
        Trials with parameters per trial run on one device only.

        `checkpoint_to`, `checkpoint_every`, `resume`: as for `jsyn.simulate`, a run that
        writes checkpoints and its record to disk and resumes bit for bit (the record comes
        back memory-mapped, `(D, time, ...)`).
        """
        if checkpoint_to is not None or checkpoint_every is not None or resume:
            return resumable_trials(
                self,
                dt,
                state,
                inputs,
                n_steps,
                record,
                devices,
                checkpoint_to,
                checkpoint_every,
                resume,
            )
        devices = list(jax.devices() if devices is None else devices)
        D = len(devices)
        if self.B % D:
            raise ValueError(
                f"TrialBatch.simulate splits {self.B} trials over {D} devices; make B a "
                f"multiple of {D} or pass fewer devices (devices=jax.devices()[:k])."
            )
        shard = self.shard(D)
        per_trial = self.split_state(state)
        per_device = jax.tree.map(lambda x: x.reshape(D, self.B // D, *x.shape[1:]), per_trial)
        states = jax.vmap(shard.merge_state)(per_device)
        if inputs is not None:
            inputs = {
                g: jnp.moveaxis(jnp.asarray(x).reshape(x.shape[0], D, -1, x.shape[2]), 1, 0)
                for g, x in inputs.items()
            }
            inputs = jax.vmap(shard.merge_inputs)(inputs)
        shared = (shard.net, dt, n_steps, record)
        finals, recorded = shard_batch(_simulate_shard, (states, inputs), shared, devices)
        finals = jax.vmap(shard.split_state)(finals)
        finals = jax.tree.map(lambda x: x.reshape(self.B, *x.shape[2:]), finals)
        return self.merge_state(finals), recorded

    def shard(self, D: int) -> "TrialBatch":
        """The batch of $B/D$ trials that each of $D$ devices runs in `simulate`."""
        if D == 1:
            return self
        if self.stacked is not None:
            raise ValueError(
                "TrialBatch.simulate: trials with parameters per trial run on one device "
                "(each device runs B/D trials of one network); pass "
                "devices=jax.devices()[:1], or give every trial the same parameters."
            )
        return trials(self.single, self.B // D)

    def split_devices(self, x: Array, group: str | int) -> Array:
        """Per-trial results, `(B, ..., n)`, from a record of `simulate`, `(D, ..., n * B / D)`
        (device leading; the last axis the neurons of `group`, as for `split`)."""
        D = jnp.shape(x)[0]
        parts = jax.vmap(lambda r: self.shard(D).split(r, group))(x)
        return parts.reshape(self.B, *parts.shape[2:])

    def merge_inputs(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        """External currents per trial, `{group: (time, B, n)}`, as the batched network's
        inputs, `{group: (time, n * B)}`."""
        out = {}
        for name, x in inputs.items():
            if not isinstance(name, str) or name not in dict(self.single.sizes):
                raise ValueError(
                    f"TrialBatch.merge_inputs: {name!r} is not a group (groups: "
                    f"{sorted(dict(self.single.sizes))})."
                )
            kind = self._kind(name)
            x = jnp.asarray(x)
            if x.ndim != 3 or x.shape[1:] != (self.B, kind.size):
                raise ValueError(
                    f"TrialBatch.merge_inputs: the input of group {name!r} must have shape "
                    f"(time, {self.B}, {kind.size}), one row per trial (got {x.shape})."
                )
            out[name] = kind.merge(jnp.moveaxis(x, 1, 0))
        return out

    def split(self, x: Array, group: str | int) -> Array:
        """Per-trial results from the batch's: `x` has a last axis of `n * B`, the neurons
        of `group` (a group name, or the per-trial size `n`, e.g. a projection's
        `n_post` for its `g`); returns `(B, ..., n)`, trial leading."""
        n = dict(self.single.sizes)[group] if isinstance(group, str) else int(group)
        if jnp.shape(x)[-1:] != (n * self.B,):
            raise ValueError(
                f"TrialBatch.split: the last axis must hold {n} x {self.B} = {n * self.B} "
                f"values (got shape {jnp.shape(x)})."
            )
        return _Kind((n,), _interleave(n, self.B)).split(x, self.B)


def _columns(tree, stacked) -> list:
    """The trials' values of each leaf of `tree` (`stacked`'s leaves), or `None`s."""
    return [None] * len(jax.tree.leaves(tree)) if stacked is None else jax.tree.leaves(stacked)


def _simulate_shard(batched, shared):
    """`jsyn.simulate` of one device's shard of a trial batch (a block of one)."""
    states, inputs = jax.tree.map(lambda x: x[0], batched)
    net, dt, n_steps, record = shared
    out = simulate(net, inputs, dt, state=states, n_steps=n_steps, record=record)
    return jax.tree.map(lambda a: a[None], out)
