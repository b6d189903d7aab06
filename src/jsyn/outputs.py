r"""Output laws: the synaptic current **into** the postsynaptic cell (pA).

Sign convention (whole project): a positive current depolarises. Conductance-based output is
therefore $I = g_{\max}\,g\,(E - V)$, with $g_{\max}$ in nS and voltages in mV
(nS × mV = pA). Textbooks that write $g(V - E)$ give the outward current, the negative of
this one.
"""

import abc
from typing import ClassVar

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from . import _validation as val
from ._component import AbstractComponent
from ._params import Param, param, resolve


class AbstractOutput(AbstractComponent):
    """An output law: `current(g, V) -> I`, stateless.

    `g` is the dimensionless gating variable a synapse returns, `V` the postsynaptic
    membrane potential (mV); `I` is in pA, positive into the cell. `needs_potential`
    (class variable) declares whether the law reads `V` (`COBA`, `MgBlock`), so that a
    `jsyn.Network` checks at construction that the postsynaptic group has one.
    """

    needs_potential: ClassVar[bool] = False

    @abc.abstractmethod
    def current(self, g, V=None) -> Float[Array, "*n"]:
        """The current into the cell (pA)."""


class CUBA(AbstractOutput):
    r"""Current-based output: $I = g_{\max}\,g$, independent of $V$.

    **Arguments:**
    - `g_max`: peak current per unit of `g` (pA). Default 1.0. Its sign sets excitation
      (> 0) or inhibition (< 0).
    """

    g_max: Param = param(default=1.0)

    def constraints(self):
        return (val.finite("CUBA", "g_max", resolve(self.g_max)),)

    def current(self, g, V=None) -> Float[Array, "*n"]:
        return resolve(self.g_max, g) * g


class COBA(AbstractOutput):
    r"""Conductance-based output: $I = g_{\max}\,g\,(E - V)$.

    The current reverses sign at $V = E$: excitatory for `E` above the resting potential
    (`E=0.` for AMPA), inhibitory below it (`E=-80.` for GABA_A).

    **Arguments:**
    - `g_max`: maximal conductance (nS), >= 0. Default 1.0.
    - `E`: reversal potential (mV). Default 0.0.

    **Reference:** Brette et al. 2007, J Comput Neurosci 23:349.
    """

    g_max: Param = param(default=1.0)
    E: Param = param(default=0.0)
    needs_potential: ClassVar[bool] = True

    def constraints(self):
        return (
            val.nonnegative(
                "COBA",
                "g_max",
                resolve(self.g_max),
                "a conductance cannot be negative: for inhibition lower E below rest, "
                "or use jsyn.SoftplusPositive while fitting",
            ),
            val.finite("COBA", "E", resolve(self.E)),
        )

    def current(self, g, V=None) -> Float[Array, "*n"]:
        if V is None:
            raise TypeError("COBA.current needs the membrane potential V (mV).")
        return resolve(self.g_max, g) * g * (resolve(self.E, V) - V)


@jax.custom_jvp
def _unblocked(z, c):
    r"""$1/(1 + c\,e^{-z})$ for $c \ge 0$, computed as $\sigma(z - \ln c)$: stable for any
    $z$, exactly 1 at $c = 0$."""
    return jax.nn.sigmoid(z - jnp.log(c))


@_unblocked.defjvp
def _unblocked_jvp(primals, tangents):
    # dB/dz = B (1 - B) and dB/dc = -B^2 e^{-z} = -B/(e^z + c): finite at c = 0 (where the
    # chain rule through ln c would give 0 * inf) and for any z.
    (z, c), (dz, dc) = primals, tangents
    B = _unblocked(z, c)
    return B, B * jax.nn.sigmoid(jnp.log(c) - z) * dz - B / (jnp.exp(z) + c) * dc


class MgBlock(AbstractOutput):
    r"""Conductance-based output with the voltage-dependent magnesium block of NMDA
    receptors (Jahr & Stevens 1990):

    $$I = \frac{g_{\max}\,g\,(E - V)}{1 + \frac{[\mathrm{Mg}^{2+}]}{\beta}
          e^{-\alpha (V - V_\text{offset})}}.$$

    **Arguments:**
    - `g_max`: maximal conductance (nS), >= 0. Default 1.0.
    - `E`: reversal potential (mV). Default 0.0.
    - `cc_Mg`: extracellular magnesium concentration (mM), >= 0. Default 1.2.
    - `alpha`: voltage sensitivity of the block (1/mV). Default 0.062.
    - `beta`: magnesium dissociation constant (mM), > 0. Default 3.57.
    - `V_offset`: voltage offset of the block (mV). Default 0.0.

    **Reference:** Jahr & Stevens 1990, J Neurosci 10:3178.
    """

    g_max: Param = param(default=1.0)
    E: Param = param(default=0.0)
    needs_potential: ClassVar[bool] = True
    cc_Mg: Param = param(default=1.2)
    alpha: Param = param(default=0.062)
    beta: Param = param(default=3.57)
    V_offset: Param = param(default=0.0)

    def constraints(self):
        return (
            val.nonnegative("MgBlock", "g_max", resolve(self.g_max)),
            val.finite("MgBlock", "E", resolve(self.E)),
            val.nonnegative("MgBlock", "cc_Mg", resolve(self.cc_Mg)),
            val.finite("MgBlock", "alpha", resolve(self.alpha)),
            val.positive("MgBlock", "beta", resolve(self.beta)),
            val.finite("MgBlock", "V_offset", resolve(self.V_offset)),
        )

    def unblocked(self, V) -> Float[Array, "*n"]:
        """The fraction of channels free of magnesium at `V` (mV), in (0, 1]."""
        z = resolve(self.alpha, V) * (V - resolve(self.V_offset, V))
        return _unblocked(z, resolve(self.cc_Mg, V) / resolve(self.beta, V))

    def current(self, g, V=None) -> Float[Array, "*n"]:
        if V is None:
            raise TypeError("MgBlock.current needs the membrane potential V (mV).")
        return resolve(self.g_max, g) * g * (resolve(self.E, V) - V) * self.unblocked(V)
