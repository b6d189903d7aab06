r"""Triplet spike-timing-dependent plasticity (Pfister & Gerstner 2006), all-to-all."""

import equinox as eqx
from jaxtyping import Array, Float

from .._params import Param, param, resolve
from .base import AbstractTraceRule, amplitude_checks, pairing_checks, time_checks, unchanged


class TripletSTDPState(eqx.Module):
    """State of `TripletSTDP`: the presynaptic traces `r1`, `r2` and the postsynaptic
    traces `o1`, `o2` (dimensionless), one per synapse or, on an event-driven `jsyn.Sparse`
    projection, one per presynaptic and one per postsynaptic neuron."""

    r1: Float[Array, "*pre"]
    r2: Float[Array, "*pre"]
    o1: Float[Array, "*post"]
    o2: Float[Array, "*post"]


class TripletSTDP(AbstractTraceRule):
    r"""Triplet STDP, all-to-all interactions (minimal and full models share this form).

    Two presynaptic traces $r_1$ ($\tau_+$), $r_2$ ($\tau_x$) and two postsynaptic traces
    $o_1$ ($\tau_-$), $o_2$ ($\tau_y$), each decaying exponentially and jumping by 1 at its
    side's spikes, and

    - at a presynaptic event: $w \leftarrow w - o_1\,(A_2^- + A_3^-\,r_2)$, then
      $r_1 \leftarrow r_1 + 1$, $r_2 \leftarrow r_2 + 1$;
    - at a postsynaptic spike: $w \leftarrow w + r_1\,(A_2^+ + A_3^+\,o_2)$, then
      $o_1 \leftarrow o_1 + 1$, $o_2 \leftarrow o_2 + 1$

    ($r_2$ and $o_2$ are read before their own jump), then $w$ is clipped to
    $[w_{min}, w_{max}]$. The triplet terms make potentiation grow with the pairing
    frequency: with the visual-cortex set, 60 pairings at $\Delta t = \pm 10$ ms depress
    (post before pre) or barely change $w$ (pre before post) at 0.1 Hz, and both
    potentiate at 50 Hz (Sjöström et al. 2001).

    Discretisation and order within a step as for `jsyn.STDP`: exact decay over the step,
    then the pre events, then the post spikes. A count $k$ of events in one step (or a
    fractional arrival $f$, from a delay between grid points) applies $k$ times the update
    of one event with the traces as they were before them: events of one side within one
    step form no triplets among themselves (exact for 0/1 events).

    **Arguments** (defaults: the visual-cortex all-to-all set of Pfister & Gerstner 2006):
    - `A2_plus`, `A3_plus`: pair and triplet potentiation amplitudes, >= 0. Defaults
      5e-10 and 6.2e-3.
    - `A2_minus`, `A3_minus`: pair and triplet depression amplitudes, >= 0. Defaults
      7e-3 and 2.3e-4.
    - `tau_plus`, `tau_x`: presynaptic time constants (ms), > 0. Defaults 16.8 and 101.
    - `tau_minus`, `tau_y`: postsynaptic time constants (ms), > 0. Defaults 33.7 and 125.
    - `w_min`, `w_max`: the weight bounds. Default 0 and 1.
    - `pairing`: `"all"` (all-to-all) or `"nn_symm"` (Pfister & Gerstner's nearest-spike
      model: each trace is reset to 1 at its side's spikes instead of jumping by 1).
      Default `"all"`.
    - `clip_each_event`: clip after the pre events and again after the post spikes of a
      step, as NEST does (see `jsyn.STDP`). Default `False` (once per step).

    **Reference:** Pfister & Gerstner 2006, *J Neurosci* 26:9673 (Table 4, visual cortex).
    """

    A2_plus: Param = param(default=5e-10)
    A3_plus: Param = param(default=6.2e-3)
    A2_minus: Param = param(default=7e-3)
    A3_minus: Param = param(default=2.3e-4)
    tau_plus: Param = param(default=16.8)
    tau_x: Param = param(default=101.0)
    tau_minus: Param = param(default=33.7)
    tau_y: Param = param(default=125.0)
    w_min: Param = param(default=0.0)
    w_max: Param = param(default=1.0)
    pairing: str = eqx.field(static=True, default="all")
    clip_each_event: bool = eqx.field(static=True, default=False)
    modulator: None = eqx.field(static=True, default=None, init=False)  # no third factor

    def __check_init__(self):
        pairing_checks("TripletSTDP", self.pairing, ("all", "nn_symm"))

    def constraints(self):
        owner = "TripletSTDP"
        return (
            *amplitude_checks(
                owner,
                A2_plus=self.A2_plus,
                A3_plus=self.A3_plus,
                A2_minus=self.A2_minus,
                A3_minus=self.A3_minus,
            ),
            *time_checks(
                owner,
                tau_plus=self.tau_plus,
                tau_x=self.tau_x,
                tau_minus=self.tau_minus,
                tau_y=self.tau_y,
            ),
            *self.bound_checks(),
        )

    state_type = TripletSTDPState
    pre_taus = {"r1": "tau_plus", "r2": "tau_x"}
    post_taus = {"o1": "tau_minus", "o2": "tau_y"}

    def depress(self, w, pre, traces: TripletSTDPState, at=unchanged):
        a2, a3 = (at(resolve(a, w)) for a in (self.A2_minus, self.A3_minus))
        return w - pre * traces.o1 * (a2 + a3 * traces.r2)

    def potentiate(self, w, post, traces: TripletSTDPState, at=unchanged):
        a2, a3 = (at(resolve(a, w)) for a in (self.A2_plus, self.A3_plus))
        return w + post * traces.r1 * (a2 + a3 * traces.o2)
