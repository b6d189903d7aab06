r"""A neuromodulator's gain on a projection's transmission."""

import equinox as eqx
import jax.numpy as jnp

from .. import _validation as val
from .._component import AbstractComponent
from .._params import Param, param, resolve


class ModulatedGain(AbstractComponent):
    r"""A neuromodulator's gain on a projection's transmission: the projection's
    conductance is multiplied by

    $$\text{gain}_n = 1 + k\,d_n,$$

    with $d_n$ the concentration of step $n$ of the `jsyn.Neuromodulator` group named by
    `modulator` (the group `jsyn.RewardSTDP` reads, named the same way; several
    projections may share one). Give it to a projection,
    `jsyn.Projection(..., modulation=jsyn.ModulatedGain("DA", k=0.5))`, in a
    `jsyn.Network` that has the group.

    The gain acts on the projection's output $g$ (the weighted conductance, or the voltage
    jump without output law) at every step, as a modulation of the postsynaptic receptors:
    it scales the ongoing response at once, not only the spikes sent while the modulator
    is present; the kinetics themselves are unchanged. So a spike at $t_s$ through an
    `Expon` synapse gives $g(t) = (1 + k\,d(t))\,w\,e^{-(t - t_s)/\tau}$. A group of size
    1 reaches every postsynaptic neuron; one of the size of the postsynaptic group gives
    each neuron its own gain (a size $m$ that divides it gives neuron $k$ the cell
    $k \bmod m$, as in the trials of `jsyn.trials`). $k < 0$ lowers transmission (the
    gain is not clipped: keep $k\,d > -1$ so that it stays positive).

    **Arguments:**
    - `modulator`: the name of the `jsyn.Neuromodulator` group (static).
    - `k`: the gain per unit of concentration (dimensionless), finite: a scalar, or one
      per postsynaptic neuron (shape `(n_post,)`). Default 1.0. Differentiable.
    """

    modulator: str = eqx.field(static=True)
    k: Param = param(default=1.0)

    def __init__(self, modulator: str, k=1.0):
        if not isinstance(modulator, str) or not modulator:
            raise TypeError(
                f"ModulatedGain.modulator must be the name of a jsyn.Neuromodulator group of "
                f"the network (got {modulator!r}), e.g. ModulatedGain('DA', k=0.5)."
            )
        self.modulator = modulator
        self.k = k

    def constraints(self):
        return (val.finite("ModulatedGain", "k", resolve(self.k)),)

    def gain(self, d):
        """The gain $1 + k\\,d$ for the concentration `d`."""
        d = jnp.asarray(d)
        return 1.0 + resolve(self.k, d) * d
