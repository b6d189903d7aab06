r"""Voltage-based spike-timing-dependent plasticity (Clopath, Büsing, Vasilaki & Gerstner
2010)."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _kinetics as kin, _validation as val
from .._component import AbstractComponent, zeros
from .._custom_types import Shape
from .._params import Param, param, resolve
from .base import amplitude_checks, time_checks


class ClopathState(eqx.Module):
    """State of `Clopath`: the presynaptic trace `x_bar` (1/ms) and the postsynaptic
    potential low-pass filtered with `tau_minus` and `tau_plus`, `u_minus` and `u_plus`
    (mV), one per synapse."""

    x_bar: Float[Array, "*syn"]
    u_minus: Float[Array, "*syn"]
    u_plus: Float[Array, "*syn"]


class Clopath(AbstractComponent):
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

    One step of $\Delta t$, with `V` the potential at the end of the step (from the
    neuron's step; give the spike's waveform, see below): 1. the filters relax exactly
    towards `V`, $\bar u_\pm \leftarrow V + (\bar u_\pm - V)e^{-\Delta t/\tau_\pm}$, and
    $\bar x \leftarrow \bar x\,e^{-\Delta t/\tau_x}$; 2. LTP over the step,
    $w \leftarrow w + \Delta t\,A_{LTP}\,\bar x\,[V - \theta_+]_+[\bar u_+ - \theta_-]_+$;
    3. the step's presynaptic events: LTD, then $\bar x \leftarrow \bar x + \text{pre}/\tau_x$;
    4. the clip. First order in $\Delta t$ for the LTP integral.

    **The spike the rule sees.** LTP integrates $[u - \theta_+]_+$ over the spike: an
    integrate-and-fire model resets within a step, so pass the potential with a spike
    waveform, as NEST's `aeif_psc_delta_clopath` clamps $u$ at `V_clamp` = 33 mV for
    `t_clamp` = 2 ms: with `jsyn.AdEx(tau_ref=2.0)`, `where(state.t_ref > 0, 33.0,
    state.V)`.

    **Not yet inside a `jsyn.Projection`**: the projection's rule interface passes the
    post spikes, not the potential. `step(state, w, pre, V, dt)` takes `V` per synapse
    (`conn.spread_post(V)`); `needs_post_voltage` declares what the projection must pass.

    **Arguments** (defaults: Clopath et al. 2010, Table 1b, visual cortex):
    - `A_LTD`: depression amplitude (weight/mV), >= 0. Default 14e-5.
    - `A_LTP`: potentiation amplitude (weight/mV²), >= 0. Default 8e-5.
    - `theta_minus`: LTD threshold, and the gate of LTP on $\bar u_+$ (mV). Default -70.6.
    - `theta_plus`: LTP threshold on $u$ (mV). Default -45.3.
    - `tau_x`: presynaptic trace (ms), > 0. Default 15.
    - `tau_minus`, `tau_plus`: the filters of $u$ (ms), > 0. Defaults 10 and 7.
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
    w_min: Param = param(default=0.0)
    w_max: Param = param(default=1.0)

    needs_post_voltage = True  # the projection hook this rule waits for (see above)

    def constraints(self):
        owner = "Clopath"
        lo, hi = resolve(self.w_min), resolve(self.w_max)
        return (
            *amplitude_checks(owner, A_LTD=self.A_LTD, A_LTP=self.A_LTP),
            *time_checks(owner, tau_x=self.tau_x, tau_minus=self.tau_minus, tau_plus=self.tau_plus),
            val.finite(owner, "theta_minus", resolve(self.theta_minus)),
            val.finite(owner, "theta_plus", resolve(self.theta_plus)),
            val.Check(
                ~(hi >= lo),
                {"w_min": lo, "w_max": hi},
                "Clopath needs w_min <= w_max",
                "swap or fix the weight bounds",
            ),
        )

    def init_state(self, shape: Shape, *, dtype=None, V0=-70.6) -> ClopathState:
        """The rested state of `shape` synapses: no presynaptic trace, the filters at the
        potential `V0` (mV; default the paper's rest, -70.6)."""
        z = zeros(shape, dtype)
        return ClopathState(x_bar=z, u_minus=z + V0, u_plus=z + V0)

    def step(self, state: ClopathState, w, pre, V, dt) -> tuple[ClopathState, Float[Array, "*syn"]]:
        """One step of `dt` ms with the presynaptic events `pre` and the postsynaptic
        potential `V` (mV) at each synapse: returns `(state, w)`."""
        like = w
        pre, V = jnp.asarray(pre, like.dtype), jnp.asarray(V, like.dtype)
        dt = jnp.asarray(dt, like.dtype)
        tau_x = resolve(self.tau_x, like)
        u_minus = kin.relax(state.u_minus, V, dt, resolve(self.tau_minus, like))
        u_plus = kin.relax(state.u_plus, V, dt, resolve(self.tau_plus, like))
        x_bar = kin.decayed(state.x_bar, dt, tau_x)
        theta_minus = resolve(self.theta_minus, like)
        ltp = jnp.maximum(V - resolve(self.theta_plus, like), 0.0) * jnp.maximum(
            u_plus - theta_minus, 0.0
        )
        w = w + dt * resolve(self.A_LTP, like) * x_bar * ltp
        w = w - pre * resolve(self.A_LTD, like) * jnp.maximum(u_minus - theta_minus, 0.0)
        x_bar = x_bar + pre / tau_x
        w = jnp.clip(w, resolve(self.w_min, like), resolve(self.w_max, like))
        return ClopathState(x_bar=x_bar, u_minus=u_minus, u_plus=u_plus), w
