"""The protocol every jsyn model follows."""

import abc

import equinox as eqx
import jax.numpy as jnp

from ._custom_types import Shape


class AbstractComponent(eqx.Module):
    """Any jsyn model: a frozen module that holds parameters only.

    Subclasses declare `constraints()`; they are checked when the model is built (where
    the values are concrete) and once more at the entry of `jsyn.simulate`, together with
    the finiteness of every parameter (every floating field, plain or `AbstractParam`).

    A component whose parameters are only valid for some time steps may also define
    `dt_constraints(dt) -> tuple` (for example `Poisson`: at most one spike per step);
    `jsyn.simulate` checks it with the `dt` of the run.
    """

    @abc.abstractmethod
    def constraints(self) -> tuple:
        """The value constraints of this model's own parameters (`jsyn` checks of the
        form `positive(owner, name, value)`); nested components report their own."""

    def __check_init__(self):
        from ._validation import own_checks, raise_concrete

        raise_concrete(own_checks(self))


class AbstractSystem(AbstractComponent):
    """A dynamical component: anything `jsyn.simulate` can run.

    The protocol:
    - `init_state(n, *, dtype=None) -> state`: the initial state for a population of shape
      `n` (an int or a tuple), in floating `dtype` (default: JAX's default float; float32
      or float64, half precision is refused).
    - `step(state, x, dt) -> (state, out)`: advance by one step of `dt` ms with the
      drive `x` of this step, returning the new state and the step's output at the end
      of the step (just after its events): the continuous dynamics evolve over the step
      with the inputs of earlier steps, then this step's events (spikes arriving at its
      end) apply (docs/models.md, "Discrete-time semantics").

    Both are pure: the state is a small pytree returned anew, nothing is mutated.
    State modules declare the range of their fields with `jsyn._validation.bounded`
    (for example a fraction in [0, 1]); `jsyn.simulate` checks a given `state=` against
    those ranges and for NaN or infinite values. A system whose inputs have a restricted
    range (spike counts >= 0) may define `input_constraints(inputs) -> tuple`, checked on
    the inputs of a run (time leading).
    """

    @abc.abstractmethod
    def init_state(self, n: Shape, *, dtype=None):
        """The initial state of a population of shape `n`."""

    @abc.abstractmethod
    def step(self, state, x, dt):
        """One step of `dt` ms: returns `(state, out)`."""


def as_count(value, what: str, minimum: int = 0) -> int:
    """`value` as a Python int >= `minimum`; a float such as 2.7 (or 2.0), a bool or a
    string is refused rather than truncated."""
    if isinstance(value, bool | str) or not hasattr(value, "__index__"):
        raise TypeError(f"{what} must be an integer (got {value!r}); pass a whole number.")
    count = int(value.__index__())
    if count < minimum:
        raise ValueError(f"{what} must be >= {minimum} (got {count}).")
    return count


def as_shape(n: Shape) -> tuple[int, ...]:
    """A population size as a shape tuple: `5 -> (5,)`, `(2, 3) -> (2, 3)`."""
    if n is None:
        raise TypeError("a population size is needed (got None); pass n, e.g. 5 or (2, 3).")
    if hasattr(n, "__index__") or isinstance(n, bool | float | str):
        return (as_count(n, "a population size"),)
    return tuple(as_count(k, "a population size") for k in n)


def float_dtype(dtype=None, what: str = "init_state(dtype=...)"):
    """`dtype` as a floating dtype for a state (default: JAX's float). Half precision is
    refused: decay factors such as `exp(-dt/tau)` round to 1 in float16 and bfloat16."""
    dtype = jnp.dtype(jnp.result_type(float) if dtype is None else dtype)
    if jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize < 4:
        raise TypeError(
            f"{what} is {dtype.name}, but jsyn computes in float32 or float64: half "
            "precision rounds decay factors such as exp(-dt/tau) to 1, so nothing decays; "
            "use float32 (x.astype(jnp.float32), or dtype=jnp.float32)."
        )
    return dtype


def zeros(n: Shape, dtype=None):
    """The zero array of a population of shape `n`, in `dtype` (default: JAX's float)."""
    return jnp.zeros(as_shape(n), dtype=float_dtype(dtype))
