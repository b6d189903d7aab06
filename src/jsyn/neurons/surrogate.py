r"""Surrogate gradients for the spike nonlinearity.

A spike is the Heaviside step $H(V - V_\text{th})$. Its derivative is zero almost
everywhere, so gradients through spikes use a smooth stand-in for the Dirac delta in the
backward pass while the forward pass stays an exact 0/1. Each surrogate integrates to 1
over $V$ and is finite (and never NaN) for every finite or infinite $V$.
"""

import abc
import functools

import equinox as eqx
import jax
import jax.numpy as jnp


class AbstractSurrogate(eqx.Module):
    """A surrogate derivative for the Heaviside step: `derivative(x)` stands in for
    $\\delta(x)$, with `x = V - V_th` in mV."""

    @abc.abstractmethod
    def derivative(self, x):
        """The surrogate derivative at `x` (1/mV)."""

    def __call__(self, x):
        """The Heaviside step `x >= 0` (0/1, dtype of `x`), with this surrogate gradient."""
        return _heaviside(x, self)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _heaviside(x, surrogate):
    return (x >= 0).astype(x.dtype)


@_heaviside.defjvp
def _heaviside_jvp(surrogate, primals, tangents):
    (x,), (dx,) = primals, tangents
    return _heaviside(x, surrogate), surrogate.derivative(x) * dx


class SigmoidSurrogate(AbstractSurrogate):
    r"""Derivative of the logistic function: $s\,\sigma(s x)\,\sigma(-s x)$.

    **Arguments:**
    - `slope`: sharpness $s$ (1/mV). Default 1.0: the surrogate spans a few mV.
    """

    slope: float = eqx.field(default=1.0, static=True)

    def derivative(self, x):
        z = self.slope * x
        return self.slope * jax.nn.sigmoid(z) * jax.nn.sigmoid(-z)


class FastSigmoidSurrogate(AbstractSurrogate):
    r"""SuperSpike's fast sigmoid (Zenke & Ganguli 2018): $\frac{s/2}{(1 + s|x|)^2}$.

    **Arguments:**
    - `slope`: sharpness $s$ (1/mV). Default 1.0.
    """

    slope: float = eqx.field(default=1.0, static=True)

    def derivative(self, x):
        return 0.5 * self.slope / jnp.square(1.0 + self.slope * jnp.abs(x))
