r"""Short-term plasticity: the presynaptic efficacy of each spike (Tsodyks & Markram 1997;
Markram, Wang & Tsodyks 1998).

A model of this family runs on the presynaptic side. Its `step` turns the spikes of a step
into their efficacy `r` (the fraction of synaptic resources they release, dimensionless),
and `r * w` is the drive of any kinetic synapse (`Expon`, `DualExpon`, ...):

```python
stp, syn = jsyn.STP(), jsyn.Expon(tau=5.0)
s_stp, r = stp.step(s_stp, spikes, dt)
s_syn, g = syn.step(s_syn, w * r, dt)
```

Recovery between spikes is linear and advanced with its exact solution, so for spikes on
the time grid the values at grid points do not depend on `dt`.

**Spike counts.** The input of `step` is the number $k$ of presynaptic spikes arriving at
the end of the step (0/1 from a neuron, counts from a source such as `Poisson`), not a
weighted drive: apply weights afterwards, as `r * w`. A count $k$ means $k$ spikes at the
same instant, each applied in turn by the rule of the model with no recovery in between.
Their total release has a closed form that is smooth in $k$ (see each model), exact at
$k = 0, 1, 2, \dots$; between integers it interpolates, so gradients w.r.t. the spikes
(for example the surrogate gradients of `LIF`) exist. $k = 0$ leaves the state unchanged
and gives $r = 0$. Negative values have no physical meaning; the formula extends smoothly
through 0 only so that perturbations of a silent step stay differentiable; `jsyn.simulate`
refuses negative inputs (and a given state with `x` or `u` outside [0, 1]). The one
exception is $U = 1$, where any count above 0 releases all of $x$: there the release jumps
at $k = 0$ (values and parameter gradients stay finite).
"""

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _kinetics as kin, _validation as val
from .._component import AbstractSystem, zeros
from .._custom_types import Shape
from .._params import Param, param, resolve


class AbstractShortTermPlasticity(AbstractSystem):
    r"""Short-term plasticity: turns the spikes of each step into their efficacy.

    - `init_state(n, *, dtype=None)`: the rested state of `n` presynaptic neurons or
      synapses (an int or a shape): all resources available, no facilitation.
    - `step(state, spikes, dt) -> (state, efficacy)`: first the exact recovery over `dt`
      ms, then this step's spikes (a count per element, shape `n`; see the module
      docstring for counts other than 0/1). `efficacy` is the total fraction of resources
      released by the step's spikes (dimensionless, 0 where there is no spike), so that
      `efficacy * w` is the drive of a kinetic synapse.

    Parameters may be scalars or arrays broadcastable to the population (per-synapse
    values), plain or wrapped (`LogPositive` for time constants, `Bounded` for `U`).
    """

    @abc.abstractmethod
    def init_state(self, n: Shape, *, dtype=None):
        """The rested state of `n` presynaptic neurons or synapses."""

    @abc.abstractmethod
    def step(self, state, spikes, dt):
        """Recover over `dt` ms, apply this step's spikes: returns `(state, efficacy)`."""

    def input_constraints(self, spikes):
        """The inputs of a run (time leading) are spike counts: finite and >= 0."""
        owner = type(self).__name__
        return (
            val.each_step(
                ~(jnp.asarray(spikes) >= 0),
                f"the inputs of {owner} are spike counts and must be >= 0",
                "pass presynaptic spike counts (0/1 or counts) and apply weights to the "
                "efficacy afterwards, as r * w",
            ),
        )


def _one_minus_pow(c, p):
    r"""$1 - (1 - c)^p$ for $0 \le c \le 1$: the fraction removed by $p$ successive
    removals of the fraction $c$.

    Accurate for small $c$ (through `log1p` and `expm1`); finite, with the one-sided
    derivative, at $c = 1$.
    """
    inside = c < 1
    c_in = jnp.where(inside, c, 0.0)
    accurate = -jnp.expm1(p * jnp.log1p(-c_in))
    # c = 1: 1 - 0^p is 1 for p > 0 and 0 for p = 0 (where the derivative of 0^p w.r.t.
    # its base is undefined, so that case is taken apart).
    silent = p == 0
    p_on = jnp.where(silent, 1.0, p)
    at_one = jnp.where(silent, 0.0, 1.0 - jnp.power(1.0 - c, p_on))
    return jnp.where(inside, accurate, at_one)


def check_U(owner: str, U) -> val.Check:
    U = jnp.asarray(U)
    return val.Check(
        ~((U > 0) & (U <= 1)),
        U,
        f"{owner}.U must be in (0, 1]",
        "pass a release fraction 0 < U <= 1; use jsyn.Bounded(U) to keep it inside (0, 1) "
        "while fitting",
    )


def _check_fraction(owner: str, name: str, x) -> val.Check:
    return val.Check(
        ~((x >= 0) & (x <= 1)),
        x,
        f"{owner}.{name} must be in [0, 1]",
        f"pass an initial {name[0]} between 0 and 1 (a fraction of the resources)",
    )


class STDState(eqx.Module):
    """State of `STD`: the available fraction of resources `x` (dimensionless, in [0, 1])."""

    x: Float[Array, "*n"] = val.bounded(0.0, 1.0)


class STD(AbstractShortTermPlasticity):
    r"""Short-term depression: each spike releases the fraction $U$ of the available
    resources $x$, which recover towards 1.

    $$\frac{dx}{dt} = \frac{1 - x}{\tau}, \qquad \text{at a spike: } r = U x,\quad
    x \leftarrow x - r.$$

    Exact step: recovery $x \leftarrow 1 - (1 - x)\,e^{-\Delta t/\tau}$, then the spikes of
    the step. $k$ spikes at once release $r = x\,[1 - (1 - U)^k]$ in total and leave
    $x (1 - U)^k$. The step returns the efficacy $r$ (0 where there is no spike).
    Initial state $x = 1$, so the first spike releases $U$.

    Under periodic spikes with interval $\Delta$, $x$ just before a spike settles at
    $x^* = (1 - e^{-\Delta/\tau}) / (1 - (1 - U)\,e^{-\Delta/\tau})$ and each spike
    releases $U x^*$. `STD` is `STP` with $u$ fixed at $U$ (the limit $\tau_f \to 0$).

    **Arguments:**
    - `tau`: recovery time constant of $x$ (ms), > 0. Default 200.0.
    - `U`: fraction of the available resources released by a spike, in (0, 1]
      (dimensionless). Default 0.07.

    **Reference:** Tsodyks & Markram 1997, *PNAS* 94:719.
    """

    tau: Param = param(default=200.0)
    U: Param = param(default=0.07)

    def constraints(self):
        return (
            val.positive("STD", "tau", resolve(self.tau)),
            check_U("STD", resolve(self.U)),
        )

    def init_state(self, n: Shape, *, dtype=None) -> STDState:
        return STDState(x=zeros(n, dtype) + 1.0)

    def step(self, state: STDState, spikes, dt) -> tuple[STDState, Float[Array, "*n"]]:
        x = state.x
        k = jnp.asarray(spikes, x.dtype)
        dt = jnp.asarray(dt, x.dtype)
        x = kin.relax(x, 1.0, dt, resolve(self.tau, x))
        r = x * _one_minus_pow(resolve(self.U, x), k)
        return STDState(x=x - r), r


class STPState(eqx.Module):
    """State of `STP`: the available fraction of resources `x` and the utilisation `u`
    (both dimensionless, in [0, 1])."""

    x: Float[Array, "*n"] = val.bounded(0.0, 1.0)
    u: Float[Array, "*n"] = val.bounded(0.0, 1.0)


class STP(AbstractShortTermPlasticity):
    r"""Short-term plasticity with facilitation and depression (Tsodyks-Markram model).

    $$\frac{du}{dt} = -\frac{u}{\tau_f}, \qquad \frac{dx}{dt} = \frac{1 - x}{\tau_d},$$

    and at a spike, in this order: $u \leftarrow u + U(1 - u)$; $r = u x$;
    $x \leftarrow x - r$. The efficacy of the spike is $r$.

    Exact step: recovery $u \leftarrow u\,e^{-\Delta t/\tau_f}$,
    $x \leftarrow 1 - (1 - x)\,e^{-\Delta t/\tau_d}$, then the spikes of the step.
    $k$ spikes at once leave $u \leftarrow 1 - (1 - u)(1 - U)^k$ and release
    $r = x\,[1 - (1 - u)^k (1 - U)^{k(k+1)/2}]$ in total ($u$, $x$ before the spikes),
    leaving $x - r$. The step returns $r$ (0 where there is no spike). Initial state
    $x = x_0$, $u = u_0$ (default 1 and 0, rested, so the first spike releases $U$; in
    general $(u_0 + U(1 - u_0))\,x_0$).

    Under periodic spikes with interval $\Delta$ the model settles where each spike sees
    $u^* = U / (1 - (1 - U)\,e^{-\Delta/\tau_f})$ just *after* its facilitation jump and
    $x^* = (1 - e^{-\Delta/\tau_d}) / (1 - (1 - u^*)\,e^{-\Delta/\tau_d})$ just *before*
    its release, and releases $u^* x^*$.

    **Arguments:**
    - `U`: increment of $u$ per spike, and the release of the first spike, in (0, 1]
      (dimensionless). Default 0.15.
    - `tau_f`: facilitation time constant, decay of $u$ (ms), > 0. Default 1500.0.
    - `tau_d`: depression time constant, recovery of $x$ (ms), > 0. Default 200.0.
    - `u0`, `x0`: the initial $u$ (before a spike's jump) and $x$, in [0, 1], scalars or
      one per element; for example the state a synapse reached before the recording
      began (NEST's tsodyks2 `u` and `x`). Defaults 0.0 and 1.0.

    **Reference:** Markram, Wang & Tsodyks 1998, *PNAS* 95:5323; Tsodyks & Markram 1997,
    *PNAS* 94:719.
    """

    U: Param = param(default=0.15)
    tau_f: Param = param(default=1500.0)
    tau_d: Param = param(default=200.0)
    u0: Param = param(default=0.0)
    x0: Param = param(default=1.0)

    def constraints(self):
        return (
            check_U("STP", resolve(self.U)),
            val.positive("STP", "tau_f", resolve(self.tau_f)),
            val.positive("STP", "tau_d", resolve(self.tau_d)),
            *(_check_fraction("STP", name, resolve(getattr(self, name))) for name in ("u0", "x0")),
        )

    def init_state(self, n: Shape, *, dtype=None) -> STPState:
        z = zeros(n, dtype)
        return STPState(x=z + resolve(self.x0, z), u=z + resolve(self.u0, z))

    def step(self, state: STPState, spikes, dt) -> tuple[STPState, Float[Array, "*n"]]:
        x, u = state.x, state.u
        k = jnp.asarray(spikes, x.dtype)
        dt = jnp.asarray(dt, x.dtype)
        U = resolve(self.U, x)
        x = kin.relax(x, 1.0, dt, resolve(self.tau_d, x))
        u = kin.decayed(u, dt, resolve(self.tau_f, u))
        # Released fraction 1 - (1 - u)^k (1 - U)^(k(k+1)/2), written as a + (1 - a) b
        # so that it keeps its digits for small u and U (k = 1: u + U(1 - u)).
        a = _one_minus_pow(u, k)
        released = a + (1.0 - a) * _one_minus_pow(U, k * (k + 1.0) / 2.0)
        r = x * released
        u = u + (1.0 - u) * _one_minus_pow(U, k)
        return STPState(x=x - r, u=u), r
