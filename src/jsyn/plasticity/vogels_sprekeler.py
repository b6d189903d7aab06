r"""Inhibitory spike-timing-dependent plasticity that balances excitation and inhibition
(Vogels, Sprekeler, Zenke, Clopath & Gerstner 2011)."""

import equinox as eqx
from jaxtyping import Array, Float

from .._params import Param, param, resolve
from .base import AbstractTraceRule, amplitude_checks, pairing_checks, time_checks, unchanged


class VogelsSprekelerState(eqx.Module):
    """State of `VogelsSprekeler`: the presynaptic trace `x_pre` and the postsynaptic trace
    `x_post` (dimensionless), one per synapse or, on an event-driven `jsyn.Sparse`
    projection, one per presynaptic and one per postsynaptic neuron."""

    x_pre: Float[Array, "*pre"]
    x_post: Float[Array, "*post"]


class VogelsSprekeler(AbstractTraceRule):
    r"""Inhibitory STDP with a target rate (NEST's `vogels_sprekeler_synapse`).

    Each synapse (an inhibitory one: $w \ge 0$ is the magnitude of its conductance) keeps
    a presynaptic trace $x_{pre}$ and a postsynaptic trace $x_{post}$, both
    $\tau\,\dot x = -x$, and

    - at a presynaptic event: $w \leftarrow w + \eta\,(x_{post} - \alpha)$, then
      $x_{pre} \leftarrow x_{pre} + 1$;
    - at a postsynaptic spike: $w \leftarrow w + \eta\,x_{pre}$, then
      $x_{post} \leftarrow x_{post} + 1$;

    then $w$ is clipped to $[w_{min}, w_{max}]$. Near-coincident spikes of either order
    strengthen the synapse, every presynaptic spike weakens it by $\eta\alpha$, so the mean
    drift is $\eta\,\rho_{pre}(2\tau\rho_{post} - \alpha)$ for uncorrelated trains: the
    inhibition grows while the postsynaptic cell fires above
    $\rho_0 = \alpha / (2\tau)$ and shrinks below it, settling where the cell fires at
    $\rho_0$, with excitation and inhibition balanced. Choose $\alpha = 2\rho_0\tau$
    (rates in 1/ms; `alpha_for(rate_hz, tau)` does this).

    Discretisation and order within a step as for `jsyn.STDP` (exact decay, pre events,
    post spikes, clip); event-driven on `jsyn.Sparse` (traces kept per neuron).

    **Arguments:**
    - `eta`: learning rate (weight units), >= 0. Default 1e-3.
    - `alpha`: the depression per presynaptic spike in units of `eta`, >= 0
      (dimensionless, $2\rho_0\tau$). Default 0.2 (5 Hz with $\tau$ = 20 ms).
    - `tau`: time constant of both traces (ms), > 0. Default 20.
    - `w_min`, `w_max`: the weight bounds. Default 0 and 1.
    - `clip_each_event`: clip after each side's events (see `jsyn.STDP`). Default `False`.

    **Reference:** Vogels, Sprekeler, Zenke, Clopath & Gerstner 2011, *Science* 334:1569.
    """

    eta: Param = param(default=1e-3)
    alpha: Param = param(default=0.2)
    tau: Param = param(default=20.0)
    w_min: Param = param(default=0.0)
    w_max: Param = param(default=1.0)
    clip_each_event: bool = eqx.field(static=True, default=False)
    pairing: str = eqx.field(static=True, default="all", init=False)
    modulator: None = eqx.field(static=True, default=None, init=False)  # no third factor

    def __check_init__(self):
        pairing_checks("VogelsSprekeler", self.pairing, ("all",))

    def constraints(self):
        owner = "VogelsSprekeler"
        return (
            *amplitude_checks(owner, eta=self.eta, alpha=self.alpha),
            *time_checks(owner, tau=self.tau),
            *self.bound_checks(),
        )

    state_type = VogelsSprekelerState
    pre_taus = {"x_pre": "tau"}
    post_taus = {"x_post": "tau"}

    @staticmethod
    def alpha_for(rate_hz, tau):
        r"""$\alpha = 2\rho_0\tau$ for a target rate `rate_hz` (Hz) and `tau` (ms)."""
        return 2.0 * rate_hz / 1000.0 * tau

    def depress(self, w, pre, traces: VogelsSprekelerState, at=unchanged):
        eta, alpha = at(resolve(self.eta, w)), at(resolve(self.alpha, w))
        return w + pre * eta * (traces.x_post - alpha)

    def potentiate(self, w, post, traces: VogelsSprekelerState, at=unchanged):
        return w + post * at(resolve(self.eta, w)) * traces.x_pre
