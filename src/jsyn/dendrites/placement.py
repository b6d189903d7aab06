r"""Synapses placed on compartments: a jsyn system and the compartment of each of its
postsynaptic sites.

A placement turns a step's presynaptic spikes and the membrane potential at its sites into
the synaptic current at those sites (pA, into the cell), with jsyn's own `step`:

- `PSCSites`: a `jsyn.PSC` chain (STP, one or more receptor kinetics with their output
  laws, optional delay), one synapse per site, each driven by its own spike train;
- `ProjectionSites`: a `jsyn.Projection` (a connection from `n_pre` presynaptic cells onto
  `n_post` sites, with STP, stochastic release, delays, long-term plasticity), one site per
  postsynaptic neuron of the projection.
"""

import abc

import equinox as eqx
import numpy as np
from jaxtyping import Array, Float

from .. import PSC, Projection


def _as_sites(at, what: str) -> tuple[int, ...]:
    sites = tuple(int(k) for k in np.atleast_1d(np.asarray(at)).tolist())
    if not sites:
        raise ValueError(f"{what} needs at least one compartment (got at={at!r}).")
    if any(k < 0 for k in sites):
        raise ValueError(
            f"{what}: compartment indices must be >= 0 (got {min(sites)}); use the indices "
            "jsyn.dendrites.compartment(...) returns."
        )
    return sites


class AbstractPlacement(eqx.Module):
    """A jsyn system whose postsynaptic sites sit on compartments of a jaxley cell.

    `pre` says where its presynaptic spikes come from: `None`, the run's inputs under the
    placement's name (a raster, shape `(time, n_pre)`); or a tuple of spike-detector names
    of the `DendriticCell` (the spikes of those compartments in the same step, one
    presynaptic train per name; one name drives every presynaptic input).
    """

    sites: eqx.AbstractVar[tuple[int, ...]]
    pre: eqx.AbstractVar[tuple[str, ...] | None]

    @property
    @abc.abstractmethod
    def n_pre(self) -> int:
        """The number of presynaptic spike trains a step takes."""

    @property
    def needs_key(self) -> bool:
        """Whether `init_state` needs a PRNG key (stochastic parts). Default: no."""
        return False

    @property
    def learns(self) -> bool:
        """Whether a plasticity rule reads the postsynaptic spikes. Default: no."""
        return False

    @abc.abstractmethod
    def init_state(self, *, dtype, key=None):
        """The state of the placed system at rest."""

    @abc.abstractmethod
    def step(self, state, spikes, V, dt, *, post_spikes) -> tuple[object, Float[Array, " n_sites"]]:
        """Step the system with this step's presynaptic `spikes` (shape `(n_pre,)`) and the
        membrane potential `V` (mV) at its sites at the end of the step; return the new
        state and the current into the cell at each site (pA). `post_spikes`: the spikes
        of the cell's postsynaptic detector in this step (shape `(n_sites,)`), for
        plasticity rules."""


class PSCSites(AbstractPlacement):
    r"""A `jsyn.PSC` chain with one synapse per compartment in `at`.

    Each step the chain's output laws are evaluated at the local membrane potential
    $V_k$ of each site's compartment (the PSC's `V_hold` is replaced by it):
    $I_k = \sum_r \text{output}_r.\text{current}(g_{r,k}, V_k)$ (pA, into the cell).

    **Arguments:**
    - `psc`: the chain (`jsyn.PSC`, with `convention="into_cell"`); its parameters are
      scalars or one per site.
    - `at`: the compartment of each synapse (global indices of the jaxley cell; several
      synapses may share one). Shape `(n_sites,)`.
    - `pre`: `None` (a raster of shape `(time, n_sites)` in the inputs, under this
      placement's name) or a tuple of detector names (see `AbstractPlacement`): one name
      drives every synapse, otherwise one name per synapse.
    """

    psc: PSC
    sites: tuple[int, ...] = eqx.field(static=True)
    pre: tuple[str, ...] | None = eqx.field(static=True)

    def __init__(self, psc: PSC, at, *, pre: tuple[str, ...] | str | None = None):
        if not isinstance(psc, PSC):
            raise TypeError(
                f"PSCSites takes a jsyn.PSC (got {type(psc).__name__}); for a jsyn.Projection "
                "use ProjectionSites."
            )
        if psc.convention != "into_cell":
            raise ValueError(
                f"PSCSites needs the PSC's current into the cell (got convention="
                f"{psc.convention!r}); build it with convention='into_cell'."
            )
        self.psc = psc
        self.sites = _as_sites(at, "PSCSites")
        self.pre = (pre,) if isinstance(pre, str) else (None if pre is None else tuple(pre))
        if self.pre is not None and len(self.pre) not in (1, len(self.sites)):
            raise ValueError(
                f"PSCSites: pre names {len(self.pre)} detectors for {len(self.sites)} "
                "synapses; give one detector (drives all) or one per synapse."
            )

    @property
    def n_pre(self) -> int:
        return len(self.sites)

    def init_state(self, *, dtype, key=None):
        return self.psc.init_state(len(self.sites), dtype=dtype)

    def step(self, state, spikes, V, dt, *, post_spikes):
        local = eqx.tree_at(lambda p: p.V_hold, self.psc, V)
        return local.step(state, spikes, dt)


class ProjectionSites(AbstractPlacement):
    r"""A `jsyn.Projection` whose postsynaptic neurons are compartments: post neuron $j$ of
    the projection is the site `at[j]`, and its current is
    `projection.current(state, V)` $= \text{output}.\text{current}(g_j, V_j)$ (pA) at the
    local potential $V_j$ (mV).

    Plasticity rules see the spikes of the cell's postsynaptic detector (the `post=` of
    `DendriticCell`) as the postsynaptic spikes of every site.

    **Arguments:**
    - `projection`: the projection (with an output law). Stochastic release, STP, delays
      and plasticity rules work as in a `jsyn.Network`.
    - `at`: the compartment of each postsynaptic neuron of the projection, shape
      `(n_post,)`.
    - `pre`: `None` (a raster of shape `(time, n_pre)` in the inputs, under this
      placement's name) or a tuple of detector names, one per presynaptic neuron (or one
      for all).
    """

    projection: Projection
    sites: tuple[int, ...] = eqx.field(static=True)
    pre: tuple[str, ...] | None = eqx.field(static=True)

    def __init__(self, projection: Projection, at, *, pre: tuple[str, ...] | str | None = None):
        if not isinstance(projection, Projection):
            raise TypeError(
                f"ProjectionSites takes a jsyn.Projection (got {type(projection).__name__}); "
                "for a jsyn.PSC use PSCSites."
            )
        if projection.output is None:
            raise ValueError(
                "ProjectionSites needs a projection with an output law (currents, not voltage "
                "jumps); pass output=jsyn.COBA(...) to the projection."
            )
        self.projection = projection
        self.sites = _as_sites(at, "ProjectionSites")
        if len(self.sites) != projection.n_post:
            raise ValueError(
                f"ProjectionSites: the projection has {projection.n_post} postsynaptic neurons "
                f"but at= names {len(self.sites)} compartments; give one per neuron."
            )
        self.pre = (pre,) if isinstance(pre, str) else (None if pre is None else tuple(pre))
        if self.pre is not None and len(self.pre) not in (1, projection.n_pre):
            raise ValueError(
                f"ProjectionSites: pre names {len(self.pre)} detectors for "
                f"{projection.n_pre} presynaptic neurons; give one (drives all) or one each."
            )

    @property
    def n_pre(self) -> int:
        return self.projection.n_pre

    @property
    def needs_key(self) -> bool:
        return self.projection.needs_key

    @property
    def learns(self) -> bool:
        return self.projection.plasticity is not None

    def init_state(self, *, dtype, key=None):
        return self.projection.init_state(dtype=dtype, key=key)

    def step(self, state, spikes, V, dt, *, post_spikes):
        kwargs = {"post_spikes": post_spikes} if self.learns else {}
        state, _ = self.projection.step(state, spikes, dt, **kwargs)
        return state, self.projection.current(state, V)
