r"""Networks of neuron groups and the projections between them.

A `Projection` (module `jsyn.projection`, re-exported here) carries the spikes of a
presynaptic group to a postsynaptic group:

    pre spikes ─► STP efficacy ─► delay ─► connection ─► synapse kinetics ─► output law ─► post

A `Network` steps groups of neurons and the projections between them together, with one
`init_state`/`step`, so `jsyn.simulate`, `jax.jit`, `jax.vmap` and `jax.grad` apply to a
whole network.

**One step of a network** (docs/models.md, discrete-time semantics), from $t_{n-1}$ to $t_n$:
1. every projection turns its conductance at $t_{n-1}$ and its postsynaptic potential at
   $t_{n-1}$ into a current, $I = $ `output.current(g, V)` (pA), held over the step (a
   projection without output law gives a voltage jump, mV, applied at $t_n$ instead);
2. every group steps with the sum of its currents (plus any external current) and emits
   the spikes of step $n$;
3. every projection takes the spikes of step $n$ of its presynaptic group: they arrive
   after their delay $d$, in step $n + d/\Delta t$ (interpolated linearly between two
   steps when that is not a whole number; see `Projection`), and the kinetics step with
   the drive arriving in step $n$, giving the conductance at $t_n$; a plastic projection
   then updates its weights from the presynaptic events arriving in step $n$ and the
   spikes of step $n$ of its postsynaptic group (and, for `jsyn.RewardSTDP`, the
   concentration of step $n$ of its `jsyn.Neuromodulator` group; for `jsyn.Clopath`, the
   group's membrane potential at $t_n$).

So a spike of step $n$ changes the conductance in step $n + d/\Delta t$ and the membrane
potential from the next step on, as in Brian2 and BrainPy.

In step 3 the projections that leave a group through event-driven `jsyn.Sparse` wiring
(default tiers, summed kinetics) find the group's spiking cells once and share them: one
count and one capacity-tier switch per group (per slice in groups of more than 8192 cells),
the same result, bit for bit, as each projection selecting on its own.

**Gap junctions** (`jsyn.GapJunction`, electrical synapses) join in on their own path: in
step 1 each adds its currents, from the potentials of both groups at $t_{n-1}$, to both
groups (a group coupled to itself receives $\sum_i w_{ij}(V_i - V_j)$), and hands the post
group the spikelets of the pre spikes of step $n - 1$ as voltage jumps (one way, pre to
post; within one group, from each cell to its partners); after step 2 it takes the spikes
of step $n$ for the spikelets of the next step.
"""

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._component import AbstractSystem, as_count
from .._custom_types import Shape
from ..connectivity import ALL, Sparse, default_tiers
from ..connectivity.sparse import by_tier, tier_branches
from ..gap_junction import GapJunction
from ..neurons import AbstractNeuron, Neuromodulator
from .projection import Projection, ProjectionState

__all__ = ["Network", "NetworkState", "Projection", "ProjectionState"]


class NetworkState(eqx.Module):
    """State of a `Network`: `groups` maps each group's name to its neuron state,
    `projections` each projection's name to its `ProjectionState`, and `gaps` each gap
    junction's name to the spikelets (mV) its post group receives in the next step."""

    groups: dict[str, Any]
    projections: dict[str, ProjectionState]
    gaps: dict[str, Float[Array, " n_post"]] = eqx.field(default_factory=dict)


def _take(x, rng: tuple[int, int] | None):
    return x if rng is None else x[rng[0] : rng[1]]


def _add(total, part, rng: tuple[int, int] | None):
    if rng is None:
        return part if total is None else total + part
    if total is None:
        raise AssertionError  # totals are built full-size before a sliced add
    return total.at[rng[0] : rng[1]].add(part)


class Network(AbstractSystem):
    r"""Groups of neurons and the projections between them, stepped together.

    `step(state, x, dt) -> (state, spikes)`: `x` is `None` or a dict of external currents
    (pA) by group name, each of the group's shape `(n,)` (groups left out get none);
    `spikes` is a dict of each group's spikes in this step, by name. See the module
    docstring for the order of a step. `jsyn.simulate(net, None, dt, n_steps=T)` runs it
    (or with `inputs` a dict of currents with time leading); pass
    `record=lambda state, spikes: ...` to keep only what you need, for example spike
    counts, a few potentials or conductances, and `record_every=k` to keep every k-th step.

    **Arguments:**
    - `groups`: a dict from name to a group: `(neuron, n)`, such as `(jsyn.LIF(), 4000)`,
      or a source whose size is fixed by its parameters (`jsyn.SpikeTimes`,
      `jsyn.Poisson`), or a neuromodulator, `(jsyn.Neuromodulator(), 1)`, that
      `jsyn.RewardSTDP` projections read (its external input is the reward events).
    - `projections`: a dict from name to `jsyn.Projection` (or a sequence, named `"0"`,
      `"1"`, ...), each naming its `pre` and `post` groups.
    - `gaps`: a dict from name to `jsyn.GapJunction`, each naming its `pre` and `post`
      groups (the same group for one coupled to itself, with a symmetric `w`), e.g.
      `gaps={"gj": jsyn.GapJunction(jsyn.all_to_all(2, 3, 0.5), 5.0, pre="A", post="B")}`.
      Both groups need a membrane potential `V` and take voltage jumps (`jsyn.LIF`). See
      the module docstring for when their currents and spikelets act.

    `init_state(n=None, *, dtype=None, key=None)` builds the state of every group at rest
    (`n` is ignored: the groups fix the sizes); `key` seeds stochastic groups and projections
    (stochastic release, `jsyn.OUNoise`, `jsyn.QuantalSTP`). To start from
    other potentials, replace them:
    `state = eqx.tree_at(lambda s: s.groups["E"].V, state, V0)`.
    """

    groups: dict[str, AbstractNeuron]
    projections: dict[str, Projection]
    gaps: dict[str, GapJunction]
    sizes: tuple[tuple[str, int], ...] = eqx.field(static=True)
    sized_by_inputs: ClassVar[bool] = False  # the groups fix the sizes

    def __init__(
        self,
        groups: Mapping[str, AbstractNeuron | tuple[AbstractNeuron, int]],
        projections: Mapping[str, Projection] | Sequence[Projection] = (),
        gaps: Mapping[str, GapJunction] | None = None,
    ):
        if not isinstance(groups, Mapping) or not groups:
            raise ValueError(
                "Network.groups must be a non-empty dict from name to (neuron, n) or to a "
                "source, e.g. {'E': (jsyn.LIF(), 3200)}."
            )
        neurons, sizes = {}, []
        for name, group in groups.items():
            if isinstance(group, tuple):
                if len(group) != 2:
                    raise ValueError(
                        f"Network group {name!r} must be (neuron, n) (got a tuple of {len(group)})."
                    )
                neuron, n = group
                n = as_count(n, f"Network group {name!r}'s size", minimum=1)
            else:
                neuron = group
                n = neuron.own_size() if isinstance(neuron, AbstractNeuron) else None
                if n is None:
                    raise ValueError(
                        f"Network group {name!r}: give its size as ({type(neuron).__name__}"
                        "(...), n); only sources fix their own size."
                    )
            if not isinstance(neuron, AbstractNeuron):
                raise TypeError(
                    f"Network group {name!r} must be a jsyn neuron or source (got "
                    f"{type(neuron).__name__})."
                )
            neurons[str(name)] = neuron
            sizes.append((str(name), int(n)))
        if not isinstance(projections, Mapping):
            projections = {str(i): p for i, p in enumerate(projections)}
        size_of = dict(sizes)
        for pname, proj in projections.items():
            if not isinstance(proj, Projection):
                raise TypeError(
                    f"Network projection {pname!r} must be a jsyn.Projection (got "
                    f"{type(proj).__name__})."
                )
            for side, group, rng, n in (
                ("pre", proj.pre, proj.pre_slice, proj.n_pre),
                ("post", proj.post, proj.post_slice, proj.n_post),
            ):
                if group not in size_of:
                    raise ValueError(
                        f"Network projection {pname!r} has {side}={group!r}, which is not a "
                        f"group (groups: {sorted(size_of)}); name its {side} group."
                    )
                span = size_of[group] if rng is None else rng[1] - rng[0]
                if (rng is not None and rng[1] > size_of[group]) or span != n:
                    raise ValueError(
                        f"Network projection {pname!r}: its connection has n_{side}={n}, but "
                        f"{side} group {group!r} has {size_of[group]} neurons"
                        + ("" if rng is None else f" and the slice {rng} spans {span}")
                        + f"; match the connection to the group or set {side}_slice."
                    )
            rule_source = None if proj.plasticity is None else proj.plasticity.modulator
            gain_source = None if proj.modulation is None else proj.modulation.modulator
            for source, reader in ((rule_source, "rule"), (gain_source, "modulation")):
                if source is not None:
                    _check_modulator(pname, reader, source, neurons, size_of, proj.n_post)
            post = neurons[proj.post]
            if proj.output is not None and proj.output.needs_potential and not post.has_potential:
                raise ValueError(
                    f"Network projection {pname!r}: its {type(proj.output).__name__} output "
                    f"reads the membrane potential V of its post group {proj.post!r}, but "
                    f"{type(post).__name__} declares none (has_potential = False); target a "
                    "group with a potential (jsyn.LIF; a neuron of your own declares "
                    "has_potential: ClassVar[bool] = True) or use jsyn.CUBA."
                )
            rule = proj.plasticity
            if rule is not None and rule.needs_post_voltage and not post.has_potential:
                raise ValueError(
                    f"Network projection {pname!r}: its {type(rule).__name__} rule reads the "
                    f"membrane potential V of its post group {proj.post!r}, but "
                    f"{type(post).__name__} declares none (has_potential = False); target a "
                    "group with a potential, such as jsyn.AdEx or jsyn.LIF."
                )
            if proj.output is None and not post.takes_jump:
                raise ValueError(
                    f"Network projection {pname!r} gives voltage jumps (no output law), but its "
                    f"post group {proj.post!r} ({type(neurons[proj.post]).__name__}) takes no "
                    "jump; give it an output law or target a jsyn.LIF group."
                )
        self.groups = neurons
        self.projections = {str(k): v for k, v in projections.items()}
        self.gaps = _check_gaps(gaps, neurons, size_of)
        self.sizes = tuple(sizes)

    def constraints(self):
        return ()

    @property
    def needs_key(self) -> bool:
        """Whether a group (`jsyn.Poisson`) or a projection (stochastic release,
        `jsyn.OUNoise`, `jsyn.QuantalSTP`) is stochastic, so that `init_state` needs a key."""
        return any(g.needs_key for g in self.groups.values()) or any(
            p.needs_key for p in self.projections.values()
        )

    def stochastic_parts(self) -> str:
        """The stochastic groups and projections, named: `"Network groups ['P'] are"`."""
        which = [
            f"{kind} {names}"
            for kind, names in (
                ("groups", [n for n, g in self.groups.items() if g.needs_key]),
                ("projections", [n for n, p in self.projections.items() if p.needs_key]),
            )
            if names
        ]
        return f"Network {' and '.join(which)} are"

    def init_state(
        self, n: Shape | None = None, *, dtype=None, key: PRNGKeyArray | None = None
    ) -> NetworkState:
        """The state at rest. `n` is ignored (the groups fix the sizes); `key` seeds the
        stochastic groups (`jsyn.Poisson`) and projections (stochastic release)."""
        dtype = jnp.result_type(float) if dtype is None else dtype
        groups = {}
        # by name, not by dict order: pytree maps (jax.tree.map, jit, jsyn.stack) sort dicts,
        # and the same network must draw the same numbers from the same key after one
        stochastic = sorted(name for name, g in self.groups.items() if g.needs_key)
        random_projections = sorted(name for name, p in self.projections.items() if p.needs_key)
        if self.needs_key and key is None:
            raise TypeError(
                f"{self.stochastic_parts()} stochastic and need a key: pass "
                "simulate(..., key=jax.random.key(0)) or net.init_state(key=...)."
            )
        proj_keys = {}
        if random_projections:  # from a key of their own: the groups' keys stay as without them
            sub = jax.random.fold_in(key, _PROJECTION_KEYS)
            proj_keys = dict(
                zip(random_projections, jax.random.split(sub, len(random_projections)))
            )
        keys = dict(zip(stochastic, jax.random.split(key, len(stochastic)))) if stochastic else {}
        for name, size in self.sizes:
            neuron = self.groups[name]
            if name in keys:
                groups[name] = neuron.init_state(size, dtype=dtype, key=keys[name])
            else:
                groups[name] = neuron.init_state(size, dtype=dtype)
        projections = {
            name: p.init_state(p.n_pre, dtype=dtype, **_key_of(proj_keys, name))
            for name, p in self.projections.items()
        }
        gaps = {name: jnp.zeros((gap.n_post,), dtype) for name, gap in self.gaps.items()}
        return NetworkState(groups=groups, projections=projections, gaps=gaps)

    def step(self, state: NetworkState, x, dt) -> tuple[NetworkState, dict[str, Array]]:
        size_of = dict(self.sizes)
        x = {} if x is None else x
        if not isinstance(x, Mapping) or not set(x) <= set(size_of):
            raise ValueError(
                f"Network.step takes x=None or a dict of external currents by group name "
                f"(groups: {sorted(size_of)}; got {_describe_input(x)})."
            )
        currents: dict[str, Array | None] = {name: None for name in size_of}
        jumps: dict[str, Array | None] = {name: None for name in size_of}
        for name, I in x.items():
            I = jnp.asarray(I)
            if I.shape != (size_of[name],):
                raise ValueError(
                    f"Network.step: the current into group {name!r} must have shape "
                    f"({size_of[name]},) (got {I.shape})."
                )
            currents[name] = I
        # 1. currents (and jumps) over this step, from the state at the end of the last one
        for pname, proj in self.projections.items():
            ps = state.projections[pname]
            total = jumps if proj.output is None else currents
            if proj.post_slice is not None and total[proj.post] is None:
                total[proj.post] = jnp.zeros((size_of[proj.post],), ps.g.dtype)
            if proj.output is None:
                part = ps.g
            else:
                post = self.groups[proj.post]
                V = state.groups[proj.post].V if post.has_potential else None
                part = proj.output.current(ps.g, _take(V, proj.post_slice))
            total[proj.post] = _add(total[proj.post], part, proj.post_slice)
        # 1b. gap-junction currents, and the spikelets of the last step's spikes
        for gname, gap in self.gaps.items():
            V_pre = state.groups[gap.pre].V
            if gap.recurrent:
                currents[gap.pre] = _add(currents[gap.pre], gap.recurrent_current(V_pre), None)
            else:
                I_pre, I_post = gap.currents(V_pre, state.groups[gap.post].V)
                currents[gap.pre] = _add(currents[gap.pre], I_pre, None)
                currents[gap.post] = _add(currents[gap.post], I_post, None)
            jumps[gap.post] = _add(jumps[gap.post], state.gaps[gname], None)
        # 2. the groups
        groups, spikes = {}, {}
        for name, _ in self.sizes:
            neuron, s = self.groups[name], state.groups[name]
            I = currents[name]
            if I is None:
                I = 0.0
            if jumps[name] is not None:
                groups[name], spikes[name] = neuron.step(s, I, dt, jump=jumps[name])
            else:
                groups[name], spikes[name] = neuron.step(s, I, dt)
        # 3. the spikes of this step into the projections; those leaving a group through
        # event-driven sparse wiring share one selection of its spiking cells
        projections, shared = {}, {}
        for pname, proj in self.projections.items():
            if _shares_selection(proj):
                across = size_of[proj.pre] <= _ACROSS_SLICES
                shared.setdefault((proj.pre, None if across else proj.pre_slice), []).append(pname)
            else:
                projections[pname] = self._project(pname, proj, state, spikes, groups, dt)
        for (pre, rng), names in shared.items():
            projections.update(self._project_shared(pre, rng, names, state, spikes, groups, dt))
        gaps = {
            gname: gap.recurrent_spikelet(spikes[gap.pre])
            if gap.recurrent
            else gap.spikelet(spikes[gap.pre])
            for gname, gap in self.gaps.items()
        }
        return NetworkState(groups=groups, projections=projections, gaps=gaps), spikes

    def _project(self, pname, proj, state, spikes, groups, dt, selection=None):
        """Step projection `pname` with the spikes of this step: its new state."""
        kwargs = {} if selection is None else {"selection": selection}
        if proj.modulation is not None:
            kwargs["gain_modulator"] = _per_post(groups[proj.modulation.modulator].d, proj.n_post)
        pre_spikes = _take(spikes[proj.pre], proj.pre_slice)
        if proj.plasticity is not None:
            source = proj.plasticity.modulator
            kwargs["post_spikes"] = _take(spikes[proj.post], proj.post_slice)
            kwargs["modulator"] = (
                None if source is None else _per_post(groups[source].d, proj.n_post)
            )
            if proj.plasticity.needs_post_voltage:
                kwargs["post_voltage"] = _take(groups[proj.post].V, proj.post_slice)
        return proj.step(state.projections[pname], pre_spikes, dt, **kwargs)[0]

    def _project_shared(self, pre, rng, names, state, spikes, groups, dt):
        """Step the projections `names` leaving the range `rng` of group `pre` (`None`: the
        whole group), which find its spiking cells once: one switch over the range's
        capacity tiers (`jsyn.Sparse`'s default), one selection in each branch, handed to
        every projection (shifted to its own slice of the range)."""
        signal = _take(spikes[pre], rng)
        tiers = default_tiers(signal.shape[0])
        start = 0 if rng is None else rng[0]

        def run(idx):
            out = {}
            for name in names:
                proj = self.projections[name]
                offset = (0 if proj.pre_slice is None else proj.pre_slice[0]) - start
                # entries outside the projection's slice fall outside [0, n_pre): padding
                sel = idx if idx is ALL or not offset else idx - offset
                out[name] = self._project(name, proj, state, spikes, groups, dt, sel)
            return out

        return by_tier(signal, tiers, tier_branches(run, tiers))


# Slices of a group up to this size share one switch and one selection (a step's fixed
# costs dominate there); in larger groups each slice selects its own cells at its own
# tier, so that a sparsely active slice does not run at the capacity of a busy one.
_ACROSS_SLICES = 8192


def _shares_selection(proj: Projection) -> bool:
    """Whether `proj` takes its group's shared selection: event-driven `jsyn.Sparse` with
    its default tiers, delivering into summed kinetics the spikes of this step (a plastic
    projection delivers the spikes arriving in it, and selects them itself)."""
    conn = proj.conn
    return (
        proj.plasticity is None
        and isinstance(conn, Sparse)
        and conn.event_driven
        and conn.width > 0
        and conn.tiers == default_tiers(conn.n_pre)
        and not proj.per_synapse
    )


def _per_post(d, n_post: int):
    """The concentration a projection's postsynaptic neuron `k` reads: that of cell
    `k mod m` of a neuromodulator group of `m` cells (`m` divides `n_post`; 1 reaches
    every neuron, `n_post` gives each its own), as `(1,)` or `(n_post,)`."""
    m = d.shape[0]
    return d if m in (1, n_post) else jnp.tile(d, n_post // m)


def _check_modulator(pname, reader, source, neurons, size_of, n_post) -> None:
    """The neuromodulator group `source` that a projection's rule or gain reads: a
    `jsyn.Neuromodulator` group whose size divides `n_post` (1: every postsynaptic neuron
    reads its one cell; `n_post`: each its own; `m`: neuron `k` reads cell `k mod m`, as
    the trials of `jsyn.trials` share theirs)."""
    sizes = "1" if n_post == 1 else f"1 or {n_post}"
    where = f"Network projection {pname!r}: its {reader} reads the neuromodulator group {source!r}"
    if source not in neurons:
        raise ValueError(
            f"{where}, which is not a group (groups: {sorted(size_of)}); add it, e.g. "
            f"{{{source!r}: (jsyn.Neuromodulator(tau_d=200.0), 1)}}."
        )
    if not isinstance(neurons[source], Neuromodulator):
        raise ValueError(
            f"{where}, which is a {type(neurons[source]).__name__} group; make it a "
            f"jsyn.Neuromodulator group, e.g. {{{source!r}: (jsyn.Neuromodulator(), 1)}}."
        )
    if n_post % size_of[source]:
        raise ValueError(
            f"{where}, which has {size_of[source]} cells; make it of size {sizes} (one "
            "cell for every postsynaptic neuron, or one per postsynaptic neuron; a size "
            f"m that divides {n_post} gives neuron k the cell k mod m)."
        )


def _check_gaps(gaps, neurons, size_of) -> dict[str, GapJunction]:
    """The gap junctions by name, each checked against the groups it joins."""
    gaps = {} if gaps is None else gaps
    if not isinstance(gaps, Mapping):
        raise TypeError(
            f"Network.gaps must be a dict from name to jsyn.GapJunction (got "
            f"{type(gaps).__name__})."
        )
    for gname, gap in gaps.items():
        if not isinstance(gap, GapJunction):
            raise TypeError(
                f"Network gap junction {gname!r} must be a jsyn.GapJunction (got "
                f"{type(gap).__name__})."
            )
        for side, group, n in (("pre", gap.pre, gap.n_pre), ("post", gap.post, gap.n_post)):
            if group not in size_of:
                raise ValueError(
                    f"Network gap junction {gname!r} has {side}={group!r}, which is not a "
                    f"group (groups: {sorted(size_of)}); name its {side} group."
                )
            if size_of[group] != n:
                raise ValueError(
                    f"Network gap junction {gname!r}: its connection has n_{side}={n}, but "
                    f"{side} group {group!r} has {size_of[group]} neurons; match them."
                )
            neuron = neurons[group]
            if not neuron.has_potential or (side == "post" and not neuron.takes_jump):
                raise ValueError(
                    f"Network gap junction {gname!r} joins group {group!r} "
                    f"({type(neuron).__name__}), which has no membrane potential V"
                    + (" that takes voltage jumps" if side == "post" else "")
                    + "; join neurons such as jsyn.LIF."
                )
    return {str(k): v for k, v in gaps.items()}


_PROJECTION_KEYS = 0x5EED_0001  # folded into the network's key for its projections' keys


def _key_of(keys, name) -> dict:
    return {"key": keys[name]} if name in keys else {}


def _describe_input(x) -> str:
    return f"keys {sorted(x)}" if isinstance(x, Mapping) else type(x).__name__
