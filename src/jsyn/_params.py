"""Constrained, differentiable parameters.

A model field holds either a plain array or an `AbstractParam`. Physics code reads the
physical value with `resolve(field)`, so the same class serves analysis (`jax.grad`
directly w.r.t. `tau`) and fitting (gradients w.r.t. an unconstrained `raw` leaf that
an optimiser may move anywhere on the real line).
"""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float


class AbstractParam(eqx.Module):
    """A parameter stored through an unconstrained leaf `raw`.

    `value()` maps `raw` to the physical value (for example, a time constant in ms).
    """

    @abc.abstractmethod
    def value(self) -> Float[Array, "*shape"]:
        """The physical value, with the units of the field that holds this parameter."""


def _float_array(x: ArrayLike) -> Array:
    """`x` as a floating array; Python numbers stay weakly typed so they adopt the
    dtype of the simulation they enter (float32 or float64)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    return x


class LogPositive(AbstractParam):
    r"""A positive parameter stored as its logarithm: $\text{value} = e^{\text{raw}}$.

    Suits time constants and rates, which span decades.

    **Arguments:**
    - `value`: the initial physical value, > 0.
    """

    raw: Float[Array, "*shape"]

    def __init__(self, value: ArrayLike):
        value = _float_array(value)
        _require_concrete_positive(value, "LogPositive")
        self.raw = jnp.log(value)

    def value(self) -> Float[Array, "*shape"]:
        return jnp.exp(self.raw)


class SoftplusPositive(AbstractParam):
    r"""A positive parameter stored through the softplus: $\text{value} = \log(1 + e^{\text{raw}})$.

    Suits conductances (`g_max`): close to linear for large values, so gradient steps keep
    their size.

    **Arguments:**
    - `value`: the initial physical value, > 0.
    """

    raw: Float[Array, "*shape"]

    def __init__(self, value: ArrayLike):
        value = _float_array(value)
        _require_concrete_positive(value, "SoftplusPositive")
        # Stable inverse of softplus: x + log(-expm1(-x)).
        self.raw = value + jnp.log(-jnp.expm1(-value))

    def value(self) -> Float[Array, "*shape"]:
        return jnp.logaddexp(self.raw, jnp.zeros_like(self.raw))


class Bounded(AbstractParam):
    r"""A parameter confined to the open interval (`lower`, `upper`) by a logistic map:
    $\text{value} = \text{lower} + (\text{upper} - \text{lower})\,\sigma(\text{raw})$.

    Suits probabilities and release fractions such as `U`.

    **Arguments:**
    - `value`: the initial physical value, strictly inside the bounds.
    - `lower`, `upper`: the bounds (default 0 and 1); fixed, not fitted.
    """

    raw: Float[Array, "*shape"]
    lower: float = eqx.field(static=True)
    upper: float = eqx.field(static=True)

    def __init__(self, value: ArrayLike, lower: float = 0.0, upper: float = 1.0):
        if not lower < upper:
            raise ValueError(f"Bounded needs lower < upper (got lower={lower}, upper={upper}).")
        self.lower = float(lower)
        self.upper = float(upper)
        value = _float_array(value)
        try:
            v = np.asarray(value)
        except Exception:  # a tracer: nothing to check now
            v = None
        if v is not None and not np.all((v > lower) & (v < upper)):
            raise ValueError(
                f"Bounded value must lie strictly inside ({lower}, {upper}) "
                f"(got {v}); move it inside or widen the bounds."
            )
        p = (value - self.lower) / (self.upper - self.lower)
        self.raw = jnp.log(p) - jnp.log1p(-p)

    def value(self) -> Float[Array, "*shape"]:
        return self.lower + (self.upper - self.lower) * jax.nn.sigmoid(self.raw)


def _require_concrete_positive(value: Array, name: str) -> None:
    try:
        v = np.asarray(value)
    except Exception:  # a tracer: nothing to check now
        return
    if not np.all(v > 0):
        raise ValueError(
            f"{name} needs a value > 0 (got min={v.min()}); "
            "a positive parametrisation cannot represent it."
        )


def as_param(x):
    """Field converter: keep an `AbstractParam` (and `None`, for optional parameters) as
    it is, turn anything else into a floating array (weakly typed for Python numbers)."""
    if x is None or isinstance(x, AbstractParam):
        return x
    return _float_array(x)


def resolve(x, like=None) -> Array:
    """The physical value of a field: `.value()` of an `AbstractParam`, else the array.

    With `like` (an array of the population, such as a state variable), the value takes
    its dtype, so a float32 run stays float32 whatever the parameters were built with,
    and a per-synapse array gains leading axes to match its rank explicitly.
    """
    value = x.value() if isinstance(x, AbstractParam) else x
    if like is None or value is None:
        return value
    value = value.astype(jnp.result_type(like))
    rank = jnp.ndim(like)
    if 0 < value.ndim < rank:
        value = value.reshape((1,) * (rank - value.ndim) + value.shape)
    return value


def param(**kwargs):
    """A model parameter field: converted by `as_param`, differentiable, never static.
    Takes `eqx.field`'s keywords (`default=...`)."""
    return eqx.field(converter=as_param, **kwargs)


Param = Float[Array, "..."] | AbstractParam
"""The type of a parameter field: an array broadcastable to the population, or a
constrained parametrisation of one."""
