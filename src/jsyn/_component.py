"""The protocol every jsyn model follows."""

import abc

import equinox as eqx
import jax.numpy as jnp

from ._custom_types import Shape


class AbstractComponent(eqx.Module):
    """Any jsyn model: a frozen module that holds parameters only.

    Subclasses declare `constraints()`; they are checked when the model is built (where
    the values are concrete) and once more at the entry of `jsyn.simulate`.
    """

    @abc.abstractmethod
    def constraints(self) -> tuple:
        """The value constraints of this model's own parameters (`jsyn` checks of the
        form `positive(owner, name, value)`); nested components report their own."""

    def __check_init__(self):
        from ._validation import raise_concrete

        raise_concrete(self.constraints())


class AbstractSystem(AbstractComponent):
    """A dynamical component: anything `jsyn.simulate` can run.

    The protocol:
    - `init_state(n, *, dtype=None) -> state`: the initial state for a population of shape
      `n` (an int or a tuple), in floating `dtype` (default: JAX's default float).
    - `step(state, x, dt) -> (state, out)`: advance by one step of `dt` ms with the
      drive `x` of this step, returning the new state and the step's output at the end
      of the step (just after its events). See docs/models.md, "Discrete-time semantics".

    Both are pure: the state is a small pytree returned anew, nothing is mutated.
    """

    @abc.abstractmethod
    def init_state(self, n: Shape, *, dtype=None):
        """The initial state of a population of shape `n`."""

    @abc.abstractmethod
    def step(self, state, x, dt):
        """One step of `dt` ms: returns `(state, out)`."""


def as_shape(n: Shape) -> tuple[int, ...]:
    """A population size as a shape tuple: `5 -> (5,)`, `(2, 3) -> (2, 3)`."""
    return (int(n),) if isinstance(n, int) or hasattr(n, "__index__") else tuple(n)


def zeros(n: Shape, dtype=None):
    """The zero array of a population of shape `n`, in `dtype` (default: JAX's float)."""
    return jnp.zeros(as_shape(n), dtype=jnp.result_type(float) if dtype is None else dtype)
