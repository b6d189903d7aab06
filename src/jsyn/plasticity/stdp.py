r"""Pair-based spike-timing-dependent plasticity in the trace form (Song, Miller & Abbott
2000)."""

import equinox as eqx
from jaxtyping import Array, Float

from .. import _validation as val
from .._params import Param, param, resolve
from .base import AbstractTraceRule, amplitude_checks, pairing_checks, time_checks, unchanged


class STDPState(eqx.Module):
    """State of `STDP`: the presynaptic trace `a_pre` and the postsynaptic trace `a_post`
    (dimensionless, counts of recent spikes), one per synapse or, on an event-driven
    `jsyn.Sparse` projection, one per presynaptic and one per postsynaptic neuron."""

    a_pre: Float[Array, "*pre"]
    a_post: Float[Array, "*post"]


def pair_update(rule, state: STDPState, w, pre, post, dt):
    r"""The pair-STDP step with the amplitudes and time constants of `rule` (`A_plus`,
    `A_minus`, `tau_pre`, `tau_post`), additive, applied to `w`, unclipped: decay, pre
    events, post spikes (see `STDP`). Returns `(state, w)`."""
    pair = STDP(
        A_plus=rule.A_plus, A_minus=rule.A_minus, tau_pre=rule.tau_pre, tau_post=rule.tau_post
    )
    return pair.update(state, w, pre, post, dt)


class STDP(AbstractTraceRule):
    r"""Pair-based STDP, trace form (all-to-all pairs).

    Each synapse keeps a presynaptic trace $a_{pre}$ and a postsynaptic trace $a_{post}$,
    $\tau_{pre}\,\dot a_{pre} = -a_{pre}$, $\tau_{post}\,\dot a_{post} = -a_{post}$, and

    - at a presynaptic event (the spike's arrival at the synapse):
      $w \leftarrow w - A_-\,a_{post}$, then $a_{pre} \leftarrow a_{pre} + 1$;
    - at a postsynaptic spike: $w \leftarrow w + A_+\,a_{pre}$, then
      $a_{post} \leftarrow a_{post} + 1$;

    then $w$ is clipped to $[w_{min}, w_{max}]$. One pair at lag
    $\Delta t = t_{post} - t_{pre}$ (far from other spikes) changes the weight by
    $A_+ e^{-\Delta t/\tau_{pre}}$ for $\Delta t > 0$ and $-A_- e^{\Delta t/\tau_{post}}$
    for $\Delta t < 0$; a pre event and a post spike in the same step potentiate by $A_+$
    (the pre event counts first).

    With `multiplicative=True` (soft bounds) potentiation is scaled by $w_{max} - w$ and
    depression by $w - w_{min}$.

    **Inhibitory synapses** (`inhibitory=True`, bounds $w_{min} \le w_{max} \le 0$): the
    rule acts on the magnitude $|w|$, as NEST's `stdp_synapse` does with a negative `Wmax`:
    potentiation makes $w$ more negative ($w \leftarrow w - A_+\,a_{pre}$, soft bound
    $w - w_{min}$), depression brings it towards 0 ($w \leftarrow w + A_-\,a_{post}$,
    soft bound $w_{max} - w$).

    **Pairing and clipping** (see `jsyn.AbstractLongTermPlasticity` and NEST's names):
    `pairing="all"` (default, `stdp_synapse`), `"nn_symm"`, `"nn_pre_centered"`,
    `"nn_restr"` (`stdp_nn_symm_synapse`, ...); `clip_each_event=True` clips after the pre
    events and after the post spikes of a step (NEST, Brian2's examples) instead of once.
    NEST pairs spikes at their exact times and ignores a pair at zero lag; on the grid, a pre
    event and a post spike in the same step count as pre before post. NEST's dendritic
    delay: `jsyn.Projection(..., dendritic_delay=d)`, the post spikes reaching the rule
    `d` ms late.

    Discretisation: the traces decay exactly over each step,
    $a \leftarrow a\,e^{-\Delta t/\tau}$, then the step's pre events and post spikes apply
    (see `jsyn.AbstractLongTermPlasticity` for the order). A fractional arrival $f$ (a
    delay between grid points) applies its update with weight $f$.

    **Arguments:**
    - `A_plus`: potentiation per pair (weight units), >= 0. Default 0.01.
    - `A_minus`: depression per pair, >= 0. Default 0.0105 ($A_-/A_+ = 1.05$).
    - `tau_pre`: time constant of the presynaptic trace (ms), > 0. Default 16.8.
    - `tau_post`: time constant of the postsynaptic trace (ms), > 0. Default 33.7.
    - `w_min`, `w_max`: the weight bounds. Default 0 and 1.
    - `multiplicative`: soft bounds (see above). Default `False` (additive).
    - `inhibitory`: the rule acts on $|w|$ of negative weights (see above). Default `False`.
    - `pairing`: `"all"`, `"nn_symm"`, `"nn_pre_centered"` or `"nn_restr"`. Default `"all"`.
    - `clip_each_event`: clip after each side's events (see above). Default `False`.

    **Reference:** Song, Miller & Abbott 2000, *Nat Neurosci* 3:919; time constants from
    the fit of Bi & Poo 1998 (*J Neurosci* 18:10464).
    """

    A_plus: Param = param(default=0.01)
    A_minus: Param = param(default=0.0105)
    tau_pre: Param = param(default=16.8)
    tau_post: Param = param(default=33.7)
    w_min: Param = param(default=0.0)
    w_max: Param = param(default=1.0)
    multiplicative: bool = eqx.field(static=True, default=False)
    inhibitory: bool = eqx.field(static=True, default=False)
    pairing: str = eqx.field(static=True, default="all")
    clip_each_event: bool = eqx.field(static=True, default=False)
    modulator: None = eqx.field(static=True, default=None, init=False)  # no third factor

    def __check_init__(self):
        pairing_checks("STDP", self.pairing)

    def constraints(self):
        w_max = resolve(self.w_max)
        return (
            *amplitude_checks("STDP", A_plus=self.A_plus, A_minus=self.A_minus),
            *time_checks("STDP", tau_pre=self.tau_pre, tau_post=self.tau_post),
            *self.bound_checks(),
            val.Check(
                self.inhibitory & ~(w_max <= 0),
                {"w_max": w_max},
                "STDP(inhibitory=True) acts on negative weights and needs w_max <= 0",
                "pass bounds w_min <= w_max <= 0 (for example w_min=-1.0, w_max=0.0)",
            ),
        )

    state_type = STDPState
    pre_taus = {"a_pre": "tau_pre"}
    post_taus = {"a_post": "tau_post"}

    def _bounds(self, w, at):
        """The weights' distances to the bounds towards which depression and potentiation
        move them."""
        lower = w - at(resolve(self.w_min, w))
        upper = at(resolve(self.w_max, w)) - w
        return (upper, lower) if self.inhibitory else (lower, upper)

    def depress(self, w, pre, traces: STDPState, at=unchanged):
        change = at(resolve(self.A_minus, w)) * traces.a_post * pre
        if self.multiplicative:
            change = change * self._bounds(w, at)[0]
        return w + change if self.inhibitory else w - change

    def potentiate(self, w, post, traces: STDPState, at=unchanged):
        change = at(resolve(self.A_plus, w)) * traces.a_pre * post
        if self.multiplicative:
            change = change * self._bounds(w, at)[1]
        return w - change if self.inhibitory else w + change
