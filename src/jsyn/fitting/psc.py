r"""`PSC`: the postsynaptic current of a voltage-clamped cell, the usual target of fitting.

A small, fixed chain (not a general network container; see `Projection`/`Network` for
those): presynaptic spikes, then an optional short-term plasticity model, one or more
receptor kinetics, their output laws evaluated at the holding potential, and an optional
delay of the whole response.
"""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .. import _validation as val
from .._component import AbstractSystem
from .._custom_types import Shape
from .._params import Param, param, resolve
from .._units import warn_unit
from ..outputs import AbstractOutput

CONVENTIONS = ("into_cell", "clamp")
"""Sign conventions of a current: `"into_cell"`, jsyn's (positive depolarising), and
`"clamp"`, the membrane current a voltage-clamp amplifier records (inward negative)."""


class PSCState(eqx.Module):
    """State of `PSC`: the states of its delay and short-term plasticity (`None` when
    absent) and a tuple with the state of each receptor's kinetics."""

    delay: eqx.Module | None
    stp: eqx.Module | None
    synapses: tuple


def _as_tuple(x) -> tuple:
    return tuple(x) if isinstance(x, list | tuple) else (x,)


class PSC(AbstractSystem):
    r"""Postsynaptic current under voltage clamp at $V_\text{hold}$:

    $$\text{spikes} \to [\text{STP}] \to g_k \to
    I = \sum_k \text{output}_k.\text{current}(g_k, V_\text{hold}) \to [\text{delay}].$$

    One step of `dt` ms takes the presynaptic spike counts of the step (shape `n`), turns
    them into efficacies with the short-term plasticity model (if any; otherwise the spikes
    themselves are the drive), steps every receptor's kinetics with that drive, and returns
    the current at the end of the step (pA), passed through the delay (if any), in the
    chosen sign `convention`:

    - `"into_cell"` (default, jsyn's convention): the current into the cell, positive
      depolarising; with `COBA`, $I = g_{\max}\,g\,(E - V_\text{hold})$, so an
      excitatory current at rest is positive.
    - `"clamp"`: the membrane current a voltage-clamp amplifier records, inward negative
      (the usual sign of electrophysiology files): $-I$.

    Each column of a population is one recording; `V_hold` may differ per column, so the
    same cell clamped at two potentials is a population of 2.

    The delay shifts the whole response: the chain does not change with time, so delaying
    the spikes or the current is the same shift, and for a fractional delay (interpolated
    between two steps, see `jsyn.Delay`) delaying the current keeps the size of every
    response, where splitting a spike over two steps would change the response of
    nonlinear kinetics (AMPA, NMDA, ...).

    **Arguments:**
    - `synapse`: a kinetic synapse (`DualExpon`, `AMPA`, ...), or a tuple of them for a
      mixed current (AMPA + NMDA).
    - `output`: its output law (`CUBA`, `COBA`, `MgBlock`), or a tuple, one per synapse.
    - `stp`: optional short-term plasticity (`STD`, `STP`), applied before the kinetics.
    - `delay`: optional delay system (for example `jsyn.Delay`), applied to the current.
    - `V_hold`: holding potential (mV), scalar or per column. Default -70.0. A value
      between -1 and 1 mV other than 0 is most likely in volts (`-0.07` for -70 mV, which
      would fit a conductance 1000 times too large): built with known values it gives a
      `jsyn.UnitWarning` (0 mV, a common holding potential for inhibitory currents, does
      not).
    - `convention`: `"into_cell"` (default) or `"clamp"`, the sign of the output (above).

    Fit its parameters by dotted name, for example `"synapse.tau_decay"`,
    `"output[1].g_max"`, `"stp.U"` (see `jsyn.fit`).
    """

    synapse: AbstractSystem | tuple
    output: AbstractOutput | tuple
    stp: AbstractSystem | None = None
    delay: AbstractSystem | None = None
    V_hold: Param = param(default=-70.0)
    convention: str = eqx.field(static=True, default="into_cell")

    def __check_init__(self):
        if self.convention not in CONVENTIONS:
            raise ValueError(
                f"PSC.convention must be 'into_cell' (current into the cell, inward "
                f"positive) or 'clamp' (membrane current, inward negative; got "
                f"{self.convention!r})."
            )
        synapses, outputs = _as_tuple(self.synapse), _as_tuple(self.output)
        if len(synapses) != len(outputs):
            raise ValueError(
                f"PSC needs one output law per synapse (got {len(synapses)} synapses and "
                f"{len(outputs)} outputs); pass tuples of equal length."
            )
        for s in synapses:
            if not isinstance(s, AbstractSystem):
                raise TypeError(f"PSC.synapse must be jsyn synapses (got {type(s).__name__}).")
        for o in outputs:
            if not isinstance(o, AbstractOutput):
                raise TypeError(
                    f"PSC.output must be jsyn output laws such as COBA (got {type(o).__name__})."
                )

        V_hold = val.concrete(resolve(self.V_hold))
        volts = None if V_hold is None else V_hold[(V_hold != 0) & (np.abs(V_hold) < 1)]
        if volts is not None and volts.size:
            warn_unit(
                f"PSC.V_hold is in mV and {volts.flat[0]:g} mV is most likely a potential in "
                f"volts ({volts.flat[0] * 1000:g} mV); pass V_hold in mV, or if it is meant, "
                "silence this with warnings.filterwarnings('ignore', "
                "category=jsyn.UnitWarning)."
            )

    def constraints(self):
        return (val.finite("PSC", "V_hold", resolve(self.V_hold)),)

    def init_state(self, n: Shape, *, dtype=None) -> PSCState:
        return PSCState(
            delay=None if self.delay is None else self.delay.init_state(n, dtype=dtype),
            stp=None if self.stp is None else self.stp.init_state(n, dtype=dtype),
            synapses=tuple(s.init_state(n, dtype=dtype) for s in _as_tuple(self.synapse)),
        )

    def step(self, state: PSCState, x, dt) -> tuple[PSCState, Float[Array, "*n"]]:
        """Step the chain with this step's presynaptic spike counts `x`: returns the new
        state and the current at the end of the step (pA; into the cell, or the clamp's
        membrane current with `convention="clamp"`)."""
        delay, stp = state.delay, state.stp
        if self.stp is not None:
            stp, x = self.stp.step(stp, x, dt)
        synapses, current = [], None
        for syn, out, s in zip(_as_tuple(self.synapse), _as_tuple(self.output), state.synapses):
            s, g = syn.step(s, x, dt)
            V = jnp.broadcast_to(resolve(self.V_hold, g), g.shape)
            i = out.current(g, V)
            synapses.append(s)
            current = i if current is None else current + i
        if self.delay is not None:
            delay, current = self.delay.step(delay, current, dt)
        if self.convention == "clamp":
            current = -current
        return PSCState(delay=delay, stp=stp, synapses=tuple(synapses)), current
