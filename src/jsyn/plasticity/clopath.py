r"""Voltage-based spike-timing-dependent plasticity (Clopath, Büsing, Vasilaki & Gerstner
2010)."""

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _kinetics as kin, _validation as val
from .._component import zeros
from .._custom_types import Shape
from .._params import Param, param, resolve
from .base import AbstractLongTermPlasticity, amplitude_checks, time_checks


class ClopathState(eqx.Module):
    """State of `Clopath`, one value per synapse: the presynaptic trace `x_bar` (1/ms), the
    potential the rule sees low-pass filtered with `tau_minus` and `tau_plus`, `u_minus` and
    `u_plus` (mV), and `clamp`, the time left (ms) of the spike waveform of the last
    postsynaptic spike."""

    x_bar: Float[Array, "*syn"]
    u_minus: Float[Array, "*syn"]
    u_plus: Float[Array, "*syn"]
    clamp: Float[Array, "*syn"]


class Clopath(AbstractLongTermPlasticity):
    r"""Voltage-based STDP (NEST's `clopath_synapse`, without its homeostatic $A_{LTD}$).

    The weight reads the presynaptic spike train $X$ and the postsynaptic membrane
    potential $u$: a presynaptic trace $\tau_x\,\dot{\bar x} = -\bar x + X$ (it jumps by
    $1/\tau_x$ at each presynaptic spike) and two low-pass filters of the potential,
    $\tau_\pm\,\dot{\bar u}_\pm = -\bar u_\pm + u$, and

    - LTD at each presynaptic spike: $w \leftarrow w - A_{LTD}\,[\bar u_- - \theta_-]_+$;
    - LTP all the time: $\dot w = A_{LTP}\,\bar x\,[u - \theta_+]_+\,[\bar u_+ - \theta_-]_+$;

    $[\cdot]_+$ is the positive part; $w$ is clipped to $[w_{min}, w_{max}]$. LTP needs
    the potential far above $\theta_+$ (during a spike) while it has been depolarized for
    a while ($\bar u_+ > \theta_-$) after a presynaptic spike ($\bar x > 0$), so post-pre
    pairings depress at low repetition frequencies and potentiate at high ones.

    **The spike the rule sees.** LTP integrates $[u - \theta_+]_+$ over the spike, which an
    integrate-and-fire neuron resets within a step; so the rule gives each postsynaptic
    spike a waveform, as NEST's `aeif_psc_delta_clopath` clamps its potential: $u$ =
    `V_clamp` (33 mV) from the step of the spike on, for `t_clamp` (2 ms), and $u = V$,
    the neuron's potential, otherwise. Give the neuron a refractory period of `t_clamp`
    (`jsyn.AdEx(tau_ref=2.0)`) to hold it while the rule sees the spike, as NEST does.
    `t_clamp=0` shows the rule the potential as it is (a neuron that draws its spikes).

    One step of $\Delta t$, with `V` the potential at the end of the step and `post` the
    postsynaptic spikes of the step: 0. the clamp: its time left $c \leftarrow \max(c -
    \Delta t, 0)$, set to `t_clamp` at a post spike; $u$ = `V_clamp` where
    $c > \Delta t/2$, else `V` (so the spike shows in `round(t_clamp / dt)` steps); 1. the
    filters relax exactly towards $u$, $\bar u_\pm \leftarrow u + (\bar u_\pm - u)
    e^{-\Delta t/\tau_\pm}$, and $\bar x \leftarrow \bar x\,e^{-\Delta t/\tau_x}$; 2. LTP
    over the step, $w \leftarrow w + \Delta t\,A_{LTP}\,\bar x\,[u - \theta_+]_+[\bar u_+ -
    \theta_-]_+$; 3. the step's presynaptic events: LTD, then $\bar x \leftarrow \bar x +
    \text{pre}/\tau_x$; 4. the clip. First order in $\Delta t$ for the LTP integral.

    **In a network:** `jsyn.Projection(..., plasticity=jsyn.Clopath())` onto a group with
    a membrane potential (`jsyn.AdEx`, `jsyn.LIF`, ...): the rule declares
    `needs_post_voltage`, and the network hands it the post group's potential at the end
    of each step with its spikes. Alone, `step(state, w, pre, post, dt, V=V)` takes the
    presynaptic events, the post spikes and the potential at each synapse
    (`conn.spread_post(V)`). The state is kept per synapse, the filters starting at -70.6
    mV (`init_state(..., V0=...)` for another potential).

    **Arguments** (defaults: Clopath et al. 2010, Table 1b, visual cortex):
    - `A_LTD`: depression amplitude (weight/mV), >= 0. Default 14e-5.
    - `A_LTP`: potentiation amplitude (weight/mV²), >= 0. Default 8e-5.
    - `theta_minus`: LTD threshold, and the gate of LTP on $\bar u_+$ (mV). Default -70.6.
    - `theta_plus`: LTP threshold on $u$ (mV). Default -45.3.
    - `tau_x`: presynaptic trace (ms), > 0. Default 15.
    - `tau_minus`, `tau_plus`: the filters of $u$ (ms), > 0. Defaults 10 and 7.
    - `V_clamp`: the potential the rule sees during a spike (mV). Default 33 (NEST).
    - `t_clamp`: how long it sees it (ms), >= 0. Default 2 (NEST).
    - `w_min`, `w_max`: the weight bounds. Default 0 and 1 (1 = the paper's $w_{max}$ 3,
      rescaled).

    **Reference:** Clopath, Büsing, Vasilaki & Gerstner 2010, *Nat Neurosci* 13:344.
    """

    A_LTD: Param = param(default=14e-5)
    A_LTP: Param = param(default=8e-5)
    theta_minus: Param = param(default=-70.6)
    theta_plus: Param = param(default=-45.3)
    tau_x: Param = param(default=15.0)
    tau_minus: Param = param(default=10.0)
    tau_plus: Param = param(default=7.0)
    V_clamp: Param = param(default=33.0)
    t_clamp: Param = param(default=2.0)
    w_min: Param = param(default=0.0)
    w_max: Param = param(default=1.0)
    modulator: None = eqx.field(static=True, default=None, init=False)  # no third factor

    needs_post_voltage: ClassVar[bool] = True

    def constraints(self):
        owner = "Clopath"
        return (
            *amplitude_checks(owner, A_LTD=self.A_LTD, A_LTP=self.A_LTP),
            *time_checks(owner, tau_x=self.tau_x, tau_minus=self.tau_minus, tau_plus=self.tau_plus),
            *(val.finite(owner, n, resolve(getattr(self, n))) for n in _POTENTIALS),
            val.nonnegative(owner, "t_clamp", resolve(self.t_clamp)),
            *self.bound_checks(),
        )

    def init_state(self, shape: Shape, *, dtype=None, V0=-70.6) -> ClopathState:
        """The rested state of `shape` synapses: no presynaptic trace, no spike showing,
        the filters at the potential `V0` (mV; default the paper's rest, -70.6)."""
        z = zeros(shape, dtype)
        return ClopathState(x_bar=z, u_minus=z + V0, u_plus=z + V0, clamp=z)

    def step(
        self, state: ClopathState, w, pre, post, dt, modulator=None, *, V=None
    ) -> tuple[ClopathState, Float[Array, "*syn"]]:
        """One step of `dt` ms with the presynaptic events `pre`, the postsynaptic spikes
        `post` and the postsynaptic potential `V` (mV) at the end of the step, each at
        every synapse: returns `(state, w)`."""
        if V is None:
            raise TypeError(
                "Clopath reads the postsynaptic membrane potential: pass step(..., V=...) "
                "(mV, one per synapse); a jsyn.Network passes its post group's."
            )
        like = w
        pre, post, V = (jnp.asarray(x, like.dtype) for x in (pre, post, V))
        dt = jnp.asarray(dt, like.dtype)
        clamp = jnp.where(post > 0, resolve(self.t_clamp, like), jnp.maximum(state.clamp - dt, 0.0))
        u = jnp.where(clamp > 0.5 * dt, resolve(self.V_clamp, like), V)
        tau_x = resolve(self.tau_x, like)
        u_minus = kin.relax(state.u_minus, u, dt, resolve(self.tau_minus, like))
        u_plus = kin.relax(state.u_plus, u, dt, resolve(self.tau_plus, like))
        x_bar = kin.decayed(state.x_bar, dt, tau_x)
        theta_minus = resolve(self.theta_minus, like)
        ltp = jnp.maximum(u - resolve(self.theta_plus, like), 0.0) * jnp.maximum(
            u_plus - theta_minus, 0.0
        )
        w = w + dt * resolve(self.A_LTP, like) * x_bar * ltp
        w = w - pre * resolve(self.A_LTD, like) * jnp.maximum(u_minus - theta_minus, 0.0)
        x_bar = x_bar + pre / tau_x
        new = ClopathState(x_bar=x_bar, u_minus=u_minus, u_plus=u_plus, clamp=clamp)
        return new, self.clip(w)


_POTENTIALS = ("theta_minus", "theta_plus", "V_clamp")
