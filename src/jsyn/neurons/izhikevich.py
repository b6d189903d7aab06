"""The Izhikevich (2003) simple spiking neuron."""

from .. import _kinetics as kin, _validation as val
from .._params import Param, param, resolve
from .adaptive import AbstractAdaptiveNeuron
from .surrogate import AbstractSurrogate, SigmoidSurrogate


class Izhikevich(AbstractAdaptiveNeuron):
    r"""Izhikevich's simple model of spiking neurons (2003).

    $$\frac{dv}{dt} = 0.04\,v^2 + 5\,v + 140 - u + \frac{I}{C}, \qquad
    \frac{du}{dt} = a\,(b\,v - u);$$

    when $v \ge v_\text{peak}$ (30 mV) it spikes: $v \leftarrow c$, $u \leftarrow u + d$,
    and $v$ is held for `tau_ref` ms. $v$ in mV, $t$ in ms, $u$ in mV/ms; the input current
    $I$ (pA) enters through a capacitance $C$ (pF, default 1, so that $I$ is the paper's
    $I$: 10 drives the regular-spiking cell). In the state, $v$ is `V` and $u$ is `w`.

    Integration: Heun's method with the refractory hold exact (see
    `jsyn.AbstractAdaptiveNeuron`; the paper uses Euler steps of 0.5 ms); while $v$ is held,
    $u$ relaxes exactly towards $b\,c$. The state starts at $v = -65$ mV, $u = b\,v$.

    **Arguments** (defaults: regular spiking):
    - `a`: rate of the recovery $u$ (1/ms), > 0. Default 0.02 (fast spiking: 0.1).
    - `b`: coupling of $u$ to $v$ (1/ms). Default 0.2.
    - `c`: reset potential (mV), < `V_peak`. Default -65 (chattering: -50).
    - `d`: increment of $u$ at a spike (mV/ms). Default 8 (fast spiking, chattering: 2).
    - `C`: capacitance scaling the input (pF), > 0. Default 1.
    - `V_peak`: spike cut-off (mV). Default 30.
    - `tau_ref`: refractory period (ms), >= 0. Default 0.
    - `surrogate`: surrogate gradient of the spike. Default `SigmoidSurrogate()`.

    **Reference:** Izhikevich 2003, *IEEE Trans Neural Netw* 14:1569.
    """

    a: Param = param(default=0.02)
    b: Param = param(default=0.2)
    c: Param = param(default=-65.0)
    d: Param = param(default=8.0)
    C: Param = param(default=1.0)
    V_peak: Param = param(default=30.0)
    tau_ref: Param = param(default=0.0)
    surrogate: AbstractSurrogate = SigmoidSurrogate()

    @property
    def V_reset(self):
        return self.c

    def constraints(self):
        return (
            val.positive("Izhikevich", "a", resolve(self.a)),
            val.positive("Izhikevich", "C", resolve(self.C), "pass a capacitance > 0 (pF)"),
            *(val.finite("Izhikevich", n, resolve(getattr(self, n))) for n in ("b", "d")),
            *self.range_checks(),
        )

    def rest(self):
        return -65.0

    def rates(self, V, w, x, like):
        dV = 0.04 * V * V + 5.0 * V + 140.0 - w + x / resolve(self.C, like)
        dw = resolve(self.a, like) * (resolve(self.b, like) * V - w)
        return dV, dw

    def w_nullcline(self, V, like):
        return resolve(self.b, like) * V

    def hold(self, V, w, h, like):
        a = resolve(self.a, like)
        return kin.relax(w, self.w_nullcline(V, like), h, 1.0 / a)

    def jump_of_w(self, like):
        return resolve(self.d, like)
