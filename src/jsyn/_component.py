"""The protocol every jsyn model follows."""

import abc
import dataclasses
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp

from ._custom_types import Shape


class AbstractComponent(eqx.Module):
    """Any jsyn model: a frozen module that holds parameters only.

    Subclasses declare `constraints()`; they are checked when the model is built (where
    the values are concrete) and once more at the entry of `jsyn.simulate`, together with
    the finiteness of every parameter (every floating field, plain or `AbstractParam`).

    What the network and the simulator need to know of a component is declared, never
    guessed from a signature or an error: `needs_key` (class variable, or a property where
    it depends on the parts) says whether `init_state` takes a PRNG `key=` (required then,
    refused otherwise); `dt_constraints(dt)` gives the checks that depend on the time step
    (for example `Poisson`: at most one spike per step), made by `jsyn.simulate` with the
    `dt` of the run.
    """

    needs_key: ClassVar[bool] = False

    def stochastic_parts(self) -> str:
        """The parts that need a key, named for an error message (`"Poisson is"`)."""
        return f"{type(self).__name__} is"

    def dt_constraints(self, dt) -> tuple:
        """The checks of this model's parameters with the time step `dt` (ms) of a run;
        none by default."""
        return ()

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
    those ranges and for NaN or infinite values.

    Declared: `sized_by_inputs` (class variable), whether `init_state` needs the population
    size `n` (`jsyn.simulate` takes it from the inputs); sources whose size is fixed by
    their parameters, a `Projection` and a `Network` accept `n=None`.
    `input_constraints(inputs)` gives the checks of a run's inputs (time leading), for
    example spike counts >= 0; none by default.
    """

    sized_by_inputs: ClassVar[bool] = True

    def input_constraints(self, inputs) -> tuple:
        """The checks of the inputs of a run (time leading); none by default."""
        return ()

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


# -- the axis of each state field (read by `jsyn.trials`) --------------------------------

EACH = "each"
SHARED = "shared"
STREAM = "stream"
PRE, POST, SYNAPSE = "pre", "post", "synapse"
_AXIS = "jsyn_axis"


def axis(kind, **kwargs):
    r"""A state field that declares how it lies over the population its state was built
    for (`eqx.field` metadata, as a range is declared for the checks of a given state), so
    that `jsyn.trials` can lay $B$ trials of any state side by side without knowing its
    model, e.g. `key: PRNGKeyArray = jsyn.axis("stream")`. `kind` is one of:

    - `"each"` (`EACH`, the default of an undeclared field): one value per element of
      the population, its shape last (leading axes, such as a delay buffer's slots, are
      kept);
    - `"shared"` (`SHARED`): one value for every element and every trial, such as a step
      counter or a ring buffer's position (the trials of a batch step in lockstep);
    - `"stream"` (`STREAM`): a PRNG key, the stream of the step's draws: one per trial in
      a batch, each drawing what its single run draws;
    - an `IndexAxis(into, along)`: positions of the elements of population `into`, one
      per element of `along` (renumbered trial by trial in a batch);
    - a name (`"pre"`, `"post"`, `"synapse"`, or a name that the owning system resolves,
      see `jsyn.Projection.state_axes`): a nested state (or array) whose `"each"` fields
      are laid over that population instead.

    `kwargs` go to `eqx.field` (e.g. `default=None`)."""
    return eqx.field(metadata={_AXIS: kind}, **kwargs)


@dataclasses.dataclass(frozen=True)
class IndexAxis:
    """The axis of a field that holds, for each element of the population `along`, the
    position of an element of the population `into` (each synapse's postsynaptic neuron,
    say): `jsyn.trials` lays it out over `along` and renumbers its values to the batch's
    positions of `into`, trial by trial. Declare it as `jsyn.axis(jsyn.IndexAxis("post",
    "synapse"))`."""

    into: str
    along: str


def field_axis(field) -> object:
    """The axis a dataclass field declares (`EACH` when it declares none)."""
    return field.metadata.get(_AXIS, EACH)
