"""The adaptive exponential integrate-and-fire neuron."""

import jax.numpy as jnp

from .. import _kinetics as kin, _validation as val
from .._params import Param, param, resolve
from .adaptive import AbstractAdaptiveNeuron
from .surrogate import AbstractSurrogate, SigmoidSurrogate


class AdEx(AbstractAdaptiveNeuron):
    r"""Adaptive exponential integrate-and-fire neuron (Brette & Gerstner 2005).

    $$C \frac{dV}{dt} = -g_L (V - E_L) + g_L \Delta_T\, e^{(V - V_T)/\Delta_T} - w + I,
    \qquad \tau_w \frac{dw}{dt} = a (V - E_L) - w;$$

    when $V \ge V_\text{peak}$ it spikes: $V \leftarrow V_\text{reset}$,
    $w \leftarrow w + b$, and $V$ is held for `tau_ref` ms. Units: pF, nS, mV, pA, ms.

    Integration: Heun's method with the refractory hold exact (see
    `jsyn.AbstractAdaptiveNeuron`); while $V$ is held, $w$ relaxes exactly towards
    $a (V_\text{reset} - E_L)$. At rest $w = a (V - E_L)$.

    **Arguments** (defaults: Brette & Gerstner 2005's cell, with NEST's `aeif` cut at 0 mV):
    - `C`: capacitance (pF), > 0. Default 281.
    - `g_L`: leak conductance (nS), > 0. Default 30.
    - `E_L`: leak reversal (mV). Default -70.6.
    - `V_T`: threshold of the exponential (mV), < `V_peak`. Default -50.4.
    - `Delta_T`: slope factor (mV), > 0. Default 2.
    - `tau_w`: adaptation time constant (ms), > 0. Default 144.
    - `a`: subthreshold adaptation (nS). Default 4.
    - `b`: spike-triggered adaptation (pA). Default 80.5.
    - `V_reset`: reset potential (mV), < `V_peak`. Default -70.6.
    - `V_peak`: spike cut-off (mV). Default 0.
    - `tau_ref`: refractory period (ms), >= 0. Default 0.
    - `surrogate`: surrogate gradient of the spike. Default `SigmoidSurrogate()`.

    Firing patterns (Naud et al. 2008, Table 1) follow from the parameters: tonic
    (`C=200, g_L=10, E_L=-70, V_T=-50, tau_w=30, a=2, b=0, V_reset=-58`, 500 pA), adapting
    (`g_L=12, tau_w=300, b=60`), bursting (`E_L=-58, tau_w=120, b=100, V_reset=-46`, 210 pA).

    **References:** Brette & Gerstner 2005, *J Neurophysiol* 94:3637; Naud, Marcille,
    Clopath & Gerstner 2008, *Biol Cybern* 99:335.
    """

    C: Param = param(default=281.0)
    g_L: Param = param(default=30.0)
    E_L: Param = param(default=-70.6)
    V_T: Param = param(default=-50.4)
    Delta_T: Param = param(default=2.0)
    tau_w: Param = param(default=144.0)
    a: Param = param(default=4.0)
    b: Param = param(default=80.5)
    V_reset: Param = param(default=-70.6)
    V_peak: Param = param(default=0.0)
    tau_ref: Param = param(default=0.0)
    surrogate: AbstractSurrogate = SigmoidSurrogate()

    def constraints(self):
        V_T, peak = resolve(self.V_T), resolve(self.V_peak)
        return (
            val.positive("AdEx", "C", resolve(self.C), "pass a capacitance > 0 (pF)"),
            val.positive("AdEx", "g_L", resolve(self.g_L), "pass a conductance > 0 (nS)"),
            val.positive("AdEx", "Delta_T", resolve(self.Delta_T)),
            val.positive("AdEx", "tau_w", resolve(self.tau_w)),
            *(val.finite("AdEx", n, resolve(getattr(self, n))) for n in ("E_L", "a", "b")),
            val.Check(
                ~(V_T < peak),
                {"V_T": V_T, "V_peak": peak},
                "AdEx needs V_T < V_peak",
                "put the spike cut-off above the threshold (NEST: V_peak = 0 mV)",
            ),
            *self.range_checks(),
        )

    def rest(self):
        return resolve(self.E_L)

    def rates(self, V, w, x, like):
        g_L, E_L, Delta_T = (resolve(p, like) for p in (self.g_L, self.E_L, self.Delta_T))
        spike = g_L * Delta_T * jnp.exp((V - resolve(self.V_T, like)) / Delta_T)
        dV = (-g_L * (V - E_L) + spike - w + x) / resolve(self.C, like)
        dw = (resolve(self.a, like) * (V - E_L) - w) / resolve(self.tau_w, like)
        return dV, dw

    def w_nullcline(self, V, like):
        return resolve(self.a, like) * (V - resolve(self.E_L, like))

    def hold(self, V, w, h, like):
        return kin.relax(w, self.w_nullcline(V, like), h, resolve(self.tau_w, like))

    def jump_of_w(self, like):
        return resolve(self.b, like)
