r"""Two-state receptor kinetics driven by a transmitter pulse (AMPA, GABA_A).

The closed-open scheme of Destexhe, Mainen & Sejnowski (1994):

$$\frac{dg}{dt} = \alpha\,[T](t)\,(1 - g) - \beta\,g,$$

with $g$ the open fraction and $[T](t)$ a square transmitter pulse of concentration $T$
(mM) and duration $T_{dur}$ (ms) started by each presynaptic spike.
"""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _kinetics as kin, _validation as val
from .._component import zeros
from .._custom_types import Shape
from .._params import Param, param, resolve
from .base import AbstractSynapse


def _binding_step(model, g, pulse_left, x, dt):
    """One exact step of `dg/dt = alpha [T] (1 - g) - beta g` with a square pulse, shared by
    `AMPA` and `GABAa`: returns `(g, pulse_left)` after the step's events."""
    alpha, beta = resolve(model.alpha, g), resolve(model.beta, g)
    T, T_dur = resolve(model.T, g), resolve(model.T_dur, g)
    dt = jnp.asarray(dt, g.dtype)
    d_on, d_off, pulse_left = kin.pulse_pieces(pulse_left, dt)
    # Pulse on: relaxation towards alpha T / (alpha T + beta) with rate alpha T + beta.
    g = kin.linear_step(g, alpha * T + beta, alpha * T, d_on)
    # Pulse off: decay with rate beta.
    g = kin.decayed_at_rate(g, beta, d_off)
    pulse_left = kin.restart_pulse(pulse_left, jnp.asarray(x, g.dtype), T_dur)
    return g, pulse_left


def _binding_checks(owner, model):
    return (
        val.positive(owner, "alpha", resolve(model.alpha)),
        val.positive(owner, "beta", resolve(model.beta)),
        val.nonnegative(owner, "T", resolve(model.T)),
        val.nonnegative(owner, "T_dur", resolve(model.T_dur)),
    )


class AMPAState(eqx.Module):
    """State of `AMPA`: the open fraction `g` (dimensionless, in [0, 1]) and the time the
    transmitter pulse still has to run, `pulse_left` (ms; 0 when there is no pulse)."""

    g: Float[Array, "*n"] = val.bounded(0.0, 1.0)
    pulse_left: Float[Array, "*n"] = val.bounded(0.0)


class AMPA(AbstractSynapse):
    r"""AMPA receptor: two-state kinetics driven by a square transmitter pulse.

    $$\frac{dg}{dt} = \alpha\,[T](t)\,(1 - g) - \beta\,g,$$

    where a spike at $t_s$ starts a pulse $[T] = T$ on $[t_s, t_s + T_{dur})$ ($[T] = 0$
    otherwise) and a new spike restarts it (concentrations do not add). A spike of step $n$
    arrives at $t_n$, so $g$ starts rising after $t_n$: one spike gives
    $g(t) = g_\infty(1 - e^{-(\alpha T + \beta)(t - t_s)})$ during the pulse,
    $g_\infty = \alpha T/(\alpha T + \beta)$, and decays as $e^{-\beta t}$ after it.

    **Exact step.** The state carries the time the pulse still has to run. A step of length
    $\Delta t$ is integrated exactly in two pieces: the pulse is on for
    $d_{on} = \min(\text{left}, \Delta t)$ (relaxation towards $g_\infty$ with rate
    $\alpha T + \beta$), then off for $\Delta t - d_{on}$ (decay with rate $\beta$). So the
    values at grid points do not depend on $\Delta t$, whether or not $T_{dur}$ is a
    multiple of it, $g$ stays in $[0, 1]$, and $g$ is a continuous function of $T_{dur}$
    with its true, nonzero gradient. (Like the continuous model, $g(t)$ has a kink where
    the pulse ends exactly at $t$, and where $T_{dur}$ equals the interval between two
    spikes, whose restart then hides the end of the earlier pulse; there autodiff returns
    one of the one-sided derivatives.)

    **Drive.** `x` is the release of the step, in $[0, 1]$: 1 (or more) is a spike, which
    restarts the pulse for $T_{dur}$; 0 is none. A fraction $s$ in between (a release
    probability or a short-term-plasticity efficacy) moves the pulse's remaining time that
    fraction of the way to a full restart, $\text{left} \leftarrow (1 - s)\,\text{left} +
    s\,T_{dur}$; from rest that is a pulse of duration $s\,T_{dur}$ at concentration $T$,
    so the transmitter released is proportional to $s$. This keeps $g$ continuous and
    differentiable in `x` (surrogate gradients pass through), and exact for 0/1 spikes.
    Negative values count as 0 and values above 1 as 1: synaptic weights belong in the
    output law (`g_max`), not in `x`.

    **Arguments:**
    - `alpha`: binding rate (1/(mM ms)), > 0. Default 0.98.
    - `beta`: unbinding rate (1/ms), > 0. Default 0.18.
    - `T`: transmitter concentration during the pulse (mM), >= 0. Default 0.5.
    - `T_dur`: pulse duration (ms), >= 0. Default 0.5.

    Each may be a scalar or a per-synapse array, plain or constrained (`LogPositive`).

    **Reference:** Destexhe, Mainen & Sejnowski 1994, *Neural Comput* 6:14; Destexhe,
    Mainen & Sejnowski 1998, in *Methods in Neuronal Modeling*, 2nd ed.
    """

    alpha: Param = param(default=0.98)
    beta: Param = param(default=0.18)
    T: Param = param(default=0.5)
    T_dur: Param = param(default=0.5)

    def constraints(self):
        return _binding_checks("AMPA", self)

    def init_state(self, n: Shape, *, dtype=None) -> AMPAState:
        return AMPAState(g=zeros(n, dtype), pulse_left=zeros(n, dtype))

    def step(self, state: AMPAState, x, dt) -> tuple[AMPAState, Float[Array, "*n"]]:
        """Evolve over `dt` ms, then apply this step's release `x`: returns the new state
        and the open fraction `g` at the end of the step (dimensionless)."""
        g, pulse_left = _binding_step(self, state.g, state.pulse_left, x, dt)
        return AMPAState(g=g, pulse_left=pulse_left), g


class GABAaState(eqx.Module):
    """State of `GABAa`: the open fraction `g` (dimensionless, in [0, 1]) and the time the
    transmitter pulse still has to run, `pulse_left` (ms; 0 when there is no pulse)."""

    g: Float[Array, "*n"] = val.bounded(0.0, 1.0)
    pulse_left: Float[Array, "*n"] = val.bounded(0.0)


class GABAa(AbstractSynapse):
    r"""GABA_A receptor: the kinetics of `AMPA` with the GABA_A rates.

    $$\frac{dg}{dt} = \alpha\,[T](t)\,(1 - g) - \beta\,g,$$

    with a square transmitter pulse $[T] = T$ on $[t_s, t_s + T_{dur})$ restarted by each
    spike. The step is exact in two pieces (pulse on, pulse off) and the drive `x` is a
    release in $[0, 1]$, exactly as in `AMPA` (see there). Use with `COBA(E=-80.0)`.

    **Arguments:**
    - `alpha`: binding rate (1/(mM ms)), > 0. Default 0.53.
    - `beta`: unbinding rate (1/ms), > 0. Default 0.18.
    - `T`: transmitter concentration during the pulse (mM), >= 0. Default 1.0.
    - `T_dur`: pulse duration (ms), >= 0. Default 1.0.

    **Reference:** Destexhe, Mainen & Sejnowski 1994, *Neural Comput* 6:14; Destexhe,
    Mainen & Sejnowski 1998, in *Methods in Neuronal Modeling*, 2nd ed.
    """

    alpha: Param = param(default=0.53)
    beta: Param = param(default=0.18)
    T: Param = param(default=1.0)
    T_dur: Param = param(default=1.0)

    def constraints(self):
        return _binding_checks("GABAa", self)

    def init_state(self, n: Shape, *, dtype=None) -> GABAaState:
        return GABAaState(g=zeros(n, dtype), pulse_left=zeros(n, dtype))

    def step(self, state: GABAaState, x, dt) -> tuple[GABAaState, Float[Array, "*n"]]:
        """Evolve over `dt` ms, then apply this step's release `x`: returns the new state
        and the open fraction `g` at the end of the step (dimensionless)."""
        g, pulse_left = _binding_step(self, state.g, state.pulse_left, x, dt)
        return GABAaState(g=g, pulse_left=pulse_left), g
