r"""`DendriticCell`: jsyn synapses on the compartments of a jaxley cell, one system for
`jsyn.simulate`.

jaxley owns the cable (morphology, axial resistance, channels, the implicit voltage solve);
jsyn owns the synapses (their state is advanced by jsyn's own `step`). Each step hands the
synaptic currents to jaxley's step function as an external current.
"""

from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxley.integrate import build_init_and_step_fn
from jaxtyping import Array, Float

from .._component import AbstractSystem, float_dtype
from ._units import jaxley_numerics, to_jaxley_current
from .placement import AbstractPlacement

DEFAULT_THRESHOLD = -20.0
"""The threshold (mV) of a spike detector given without one."""


class DendriticState(eqx.Module):
    """State of `DendriticCell`.

    - `cell`: jaxley's states (a dict): `"v"`, the membrane potential of every compartment
      (mV), and the gates of its channels.
    - `synapses`: the state of each placement's jsyn system, by name.
    - `current`: each placement's current at its sites at the end of the last step (pA,
      into the cell), which drives the next step.
    - `spikes`: each detector's spike (shape `(1,)`, 0 or 1) in the last step.
    """

    cell: dict
    synapses: dict
    current: dict
    spikes: dict


class _Jaxley(eqx.Module):
    """jaxley's init and step functions of one cell, built once (no selection in a trace)."""

    init_fn: Any = eqx.field(static=True)
    step_fn: Any = eqx.field(static=True)


def _float_like(tree, dtype):
    return jax.tree.map(
        lambda x: x.astype(dtype) if jnp.issubdtype(jnp.result_type(x), jnp.floating) else x,
        tree,
    )


def _detectors(detectors, n_comp) -> tuple[tuple[str, int, float], ...]:
    found = []
    for name, spec in dict(detectors or {}).items():
        comp, threshold = (spec, DEFAULT_THRESHOLD) if np.ndim(spec) == 0 else spec
        comp = int(comp)
        if not 0 <= comp < n_comp:
            raise ValueError(
                f"DendriticCell detector {name!r} sits at compartment {comp}, but the cell has "
                f"{n_comp} (0 to {n_comp - 1}); pick one of those."
            )
        found.append((str(name), comp, float(threshold)))
    return tuple(found)


class DendriticCell(AbstractSystem):
    r"""A jaxley cell with jsyn synapses on its compartments, run by `jsyn.simulate`.

    The membrane potential of each compartment follows jaxley's cable equation, with the
    synaptic currents of jsyn as an external current:

    $$C_m \frac{dV_k}{dt} = \sum_{\text{axial}} g_{kl}(V_l - V_k)
      - I_\text{channels}(V_k) + \frac{1}{A_k}\Big(\sum_{s \in k} I_s + I_{\text{ext},k}\Big),$$

    where $I_s$ is the current of synapse $s$ into the cell (pA) from jsyn's output law at
    the local potential, e.g. $I_s = g_{\max}\,g_s\,(E - V_k)$ (nS × mV), and $A_k$ the
    membrane area of compartment $k$.

    **One step** of `dt` ms (jsyn's time convention: row $i$ of the inputs is the drive of
    the step ending at $t_i = i\,\Delta t$; the output is the state at $t_i$):
    1. jaxley advances the cable over the step (its implicit solver) with the synaptic
       currents of the end of the last step and this step's injected current (`"current"`
       input), converted once (pA → nA, `_units.py`);
    2. the spike detectors fire on an upward crossing of their threshold within the step;
    3. each placement steps its jsyn system with this step's presynaptic spikes (the
       inputs under its name, or detector spikes) and the new local potentials, giving
       the currents of the next step.

    The synaptic current is thus explicit in $V$ (taken at the start of each step). It is
    stable while a compartment's synaptic conductance stays well below $C_k/\Delta t$
    (for a 10 µm long compartment of 1 µm radius, $C_k \approx 0.6$ pF: 25 nS at
    `dt=0.025`); use a smaller `dt` or longer compartments for larger conductances.

    **Inputs** (a dict, time leading): under each placement name with `pre=None`, its
    presynaptic spikes (shape `(time, n_pre)`, 0/1 or counts; turn a `jsyn.SpikeTimes`
    into one with `.raster(n_steps, dt)`, a `jsyn.Poisson` with
    `jsyn.simulate(poisson, None, dt, n_steps=..., key=...)`); under `"current"`, the
    current injected at the compartments `current_at` (pA into the cell, shape
    `(time, len(current_at))`). Nothing else; `inputs=None` with `n_steps` when every
    placement is driven by detectors.

    **Output** of a step: the membrane potential at the `readout` compartments (mV). Record
    anything else by name: `record="cell.v"` (every compartment), `"synapses.ampa"` (a
    placement's jsyn state), `"current.ampa"` (its currents), `"spikes.soma"`.

    **Arguments:**
    - `cell`: a jaxley module (`jx.Cell`, or a `jx.Network` of cells without jaxley
      synapses), its channels inserted and its parameters set. Its trainable parameters
      (`cell.make_trainable(...)` before building) become the field `params`
      (`cell.get_parameters()`, a list of dicts), differentiable like jsyn's. Its
      initial states (`cell.set("v", ...)`, channel gates) are read once, here, into the
      field `initial` (trainable parameters do not change them).
    - `synapses`: a dict of name to placement (`PSCSites`, `ProjectionSites`).
    - `readout`: compartments whose potential the step returns. Default: all.
    - `current_at`: compartments that take an injected current (the `"current"` input).
    - `detectors`: a dict of name to a compartment (threshold -20 mV) or a
      `(compartment, threshold_mV)` pair: spike detectors that drive placements
      (`pre=`) and plasticity rules (`post=`).
    - `post`: the detector whose spikes are the postsynaptic spikes of plasticity rules.
    - `voltage_solver`: jaxley's voltage solver. Default `"jaxley.dhs.cpu"`
      (`"jaxley.dhs.gpu"` on a GPU).

    Compartment indices are jaxley's global ones (`cell.nodes.index`); find one at a
    location with `jsyn.dendrites.compartment(cell, branch, x)`. All of jaxley's selection
    happens here, at construction: the system then runs under `jit`, `vmap` and `grad` as
    often as needed.
    """

    placements: dict[str, AbstractPlacement]
    params: list
    initial: dict
    jaxley: _Jaxley
    n_comp: int = eqx.field(static=True)
    readout: tuple[int, ...] = eqx.field(static=True)
    current_at: tuple[int, ...] = eqx.field(static=True)
    detectors: tuple[tuple[str, int, float], ...] = eqx.field(static=True)
    post: str | None = eqx.field(static=True)

    def __init__(
        self,
        cell,
        synapses: Mapping[str, AbstractPlacement],
        *,
        readout=None,
        current_at=(),
        detectors: Mapping | None = None,
        post: str | None = None,
        voltage_solver: str = "jaxley.dhs.cpu",
    ):
        if not isinstance(synapses, Mapping):
            raise TypeError(
                f"DendriticCell takes synapses as a dict of name to placement (got "
                f"{type(synapses).__name__}); e.g. {{'ampa': PSCSites(psc, at=[3, 7])}}."
            )
        if not synapses and not current_at:
            raise ValueError(
                "DendriticCell needs synapses (a dict of placements) or current_at (an "
                "injected current); got neither."
            )
        with jaxley_numerics():
            cell.to_jax()
        self.n_comp = n_comp = len(cell.nodes)
        for name, p in synapses.items():
            if not isinstance(p, AbstractPlacement):
                raise TypeError(
                    f"DendriticCell synapse {name!r} must be a placement (PSCSites or "
                    f"ProjectionSites; got {type(p).__name__})."
                )
            if name == "current":
                raise ValueError(
                    "DendriticCell: 'current' names the injected current input; rename that "
                    "placement."
                )
            if max(p.sites) >= n_comp:
                raise ValueError(
                    f"DendriticCell synapse {name!r} sits at compartment {max(p.sites)}, but "
                    f"the cell has {n_comp} (0 to {n_comp - 1}); pick one of those."
                )
        self.placements = dict(synapses)
        self.detectors = _detectors(detectors, n_comp)
        names = [d[0] for d in self.detectors]
        for name, p in synapses.items():
            missing = sorted(set(p.pre or ()) - set(names))
            if missing:
                raise ValueError(
                    f"DendriticCell synapse {name!r} is driven by detectors {missing}, which "
                    f"are not among detectors= (got {names}); add them."
                )
        if post is not None and post not in names:
            raise ValueError(
                f"DendriticCell post={post!r} is not a detector (got {names}); add it to "
                "detectors=."
            )
        learning = sorted(name for name, p in synapses.items() if p.learns)
        if learning and post is None:
            raise ValueError(
                f"DendriticCell synapses {learning} have a plasticity rule, which needs the "
                "cell's spikes: name a detector as post= (e.g. detectors={'soma': 0}, "
                "post='soma')."
            )
        self.post = post
        comps = range(n_comp) if readout is None else np.atleast_1d(readout).tolist()
        self.readout = tuple(int(k) for k in comps)
        self.current_at = tuple(int(k) for k in np.atleast_1d(current_at).tolist())
        for what, comps in (("readout", self.readout), ("current_at", self.current_at)):
            if any(not 0 <= k < n_comp for k in comps):
                raise ValueError(
                    f"DendriticCell {what}={comps} names compartments outside 0 to "
                    f"{n_comp - 1}; pick among the cell's {n_comp}."
                )
        with jaxley_numerics():
            self.params = cell.get_parameters()
            init_fn, step_fn = build_init_and_step_fn(cell, voltage_solver=voltage_solver)
            # jaxley builds its initial states by writing arrays onto the cell: done here,
            # outside any trace (inside one, the next trace meets leaked tracers).
            self.initial = jax.tree.map(np.asarray, init_fn(self.params)[0])
        self.jaxley = _Jaxley(init_fn, step_fn)

    def constraints(self):
        return ()

    @property
    def needs_key(self) -> bool:
        """Whether `init_state` needs a PRNG key (a placement with stochastic parts)."""
        return any(p.needs_key for p in self.placements.values())

    def _sites(self) -> np.ndarray:
        return np.concatenate(
            [np.asarray(p.sites, np.int32) for p in self.placements.values()]
            + [np.asarray(self.current_at, np.int32)]
        )

    def _check_inputs(self, x):
        wanted = {name for name, p in self.placements.items() if p.pre is None}
        wanted |= {"current"} if self.current_at else set()
        given = set(x) if isinstance(x, Mapping) else None
        if given != wanted:
            raise ValueError(
                f"DendriticCell takes a dict of inputs with keys {sorted(wanted)} (spikes of "
                f"the placements without pre=, and 'current' with current_at; got "
                f"{sorted(given) if given is not None else type(x).__name__}); match them."
            )
        return x

    def init_state(self, n=None, *, dtype=None, key=None) -> DendriticState:
        """The state at the cell's initial potentials (jaxley's `"v"`, set with
        `cell.set("v", ...)`) and channel gates, synapses at rest. `n` is ignored (the
        placements fix the sizes). `key`: a `jax.random.key`, needed when a placement is
        stochastic (`needs_key`), split between them."""
        dtype = float_dtype(dtype)
        if self.needs_key and key is None:
            raise TypeError(
                "DendriticCell has stochastic synapses: pass simulate(..., key=jax.random.key(0)) "
                "or init_state(key=...)."
            )
        if key is not None and not self.needs_key:
            raise TypeError("DendriticCell.init_state takes no key: it is deterministic, drop key.")
        keys = iter(jax.random.split(key, len(self.placements)) if key is not None else [])
        synapses = {}
        for name, p in self.placements.items():
            synapses[name] = p.init_state(dtype=dtype, key=next(keys) if p.needs_key else None)
        return DendriticState(
            cell=_float_like(jax.tree.map(jnp.asarray, self.initial), dtype),
            synapses=synapses,
            current={n: jnp.zeros(len(p.sites), dtype) for n, p in self.placements.items()},
            spikes={d[0]: jnp.zeros((1,), dtype) for d in self.detectors},
        )

    def step(self, state: DendriticState, x, dt) -> tuple[DendriticState, Float[Array, " n"]]:
        """One step of `dt` ms (see the class docstring): returns the new state and the
        membrane potential at the `readout` compartments (mV)."""
        x = self._check_inputs({} if x is None else x)
        v_old = state.cell["v"]
        dtype = v_old.dtype
        currents = [state.current[name] for name in self.placements]
        if self.current_at:
            currents.append(jnp.asarray(x["current"], dtype))
        with jaxley_numerics():
            _, params = self.jaxley.init_fn(self.params, all_states=state.cell)
            cell = self.jaxley.step_fn(
                state.cell,
                _float_like(params, dtype),
                {"i": to_jaxley_current(jnp.concatenate(currents))},
                {"i": jnp.asarray(self._sites())},
                delta_t=dt,
            )
        cell = _float_like(cell, dtype)
        v = cell["v"]
        spikes = {
            name: ((v_old[k] < th) & (v[k] >= th)).astype(dtype)[None]
            for name, k, th in self.detectors
        }
        synapses, current = {}, {}
        for name, p in self.placements.items():
            if p.pre is None:
                pre = jnp.asarray(x[name], dtype)
            else:
                pre = jnp.concatenate([spikes[d] for d in p.pre])
                pre = jnp.broadcast_to(pre, (p.n_pre,))
            post = jnp.zeros((len(p.sites),), dtype)
            if self.post is not None:
                post = jnp.broadcast_to(spikes[self.post], post.shape)
            V_sites = v[np.asarray(p.sites)]
            synapses[name], current[name] = p.step(
                state.synapses[name], pre, V_sites, dt, post_spikes=post
            )
        new = DendriticState(cell=cell, synapses=synapses, current=current, spikes=spikes)
        return new, v[np.asarray(self.readout)]
