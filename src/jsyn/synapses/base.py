"""The synapse protocol, and the delivery of a drive into linear kinetics."""

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike

from .._component import AbstractSystem
from .._custom_types import Shape


class AbstractSynapse(AbstractSystem):
    r"""Synaptic kinetics: turns the drive of each step into a gating variable `g`.

    - `init_state(n, *, dtype=None)`: the resting state of `n` synapses (an int or a shape).
    - `step(state, x, dt) -> (state, g)`: `x` is the drive of the step, the (weighted)
      number of presynaptic spikes arriving at the end of the step, shape `n`; `dt` is
      in ms. The step evolves the kinetics over `dt`, then applies this step's spikes,
      and returns `g` just after them (dimensionless; `g_max` lives in the output law).

    Parameters may be scalars or arrays broadcastable to the population (per-synapse
    values), plain or wrapped in a constrained parametrisation such as `LogPositive`.

    Kinetics that are linear in their state and drive subclass `AbstractLinearSynapse`,
    which declares it (a `jsyn.Projection` then sums the drives of all the synapses onto a
    cell before the kinetics, and delivers them straight into the state).
    """

    @abc.abstractmethod
    def init_state(self, n: Shape, *, dtype=None):
        """The resting state (all zero) of `n` synapses."""

    @abc.abstractmethod
    def step(self, state, x, dt):
        """Evolve over `dt` ms, apply this step's drive `x`: returns `(state, g)`."""


class AbstractDelivery(eqx.Module):
    r"""The drive $x$ of one step, as a linear synapse takes it: added into a state
    variable, scaled, without first being made into an array of its own where that
    can be avoided (a projection scatters its spikes straight into the state)."""

    @abc.abstractmethod
    def add(self, into: Array, scale: ArrayLike | None = None) -> Array:
        r"""`into` $+$ `scale` $\cdot\,x$ (`scale` a scalar or of the shape of `into`;
        `None` for 1)."""

    @abc.abstractmethod
    def drive(self) -> Array:
        """The drive $x$ itself."""


class Drive(AbstractDelivery):
    """A drive given as an array `x` (what `AbstractSynapse.step` takes)."""

    x: ArrayLike

    def add(self, into, scale=None):
        x = jnp.asarray(self.x, into.dtype)
        return into + (x if scale is None else scale * x)

    def drive(self):
        return jnp.asarray(self.x)


class AbstractLinearSynapse(AbstractSynapse):
    r"""Kinetics linear in their state and drive: a step is
    $s_n = A(\Delta t)\,s_{n-1} + B\,x_n$ with output $g_n = C\,s_n$.

    So the response to a sum of drives is the sum of the responses: a population of such
    synapses onto one cell, with shared parameters, is one state driven by the summed
    drive, and a drive split over two steps (a fractional delay) gives the same total
    response. A step splits into the evolution without drive, `step(state, 0, dt)`, and
    `add_drive`, which puts this step's drive into the state:
    `step(state, x, dt) == add_drive(step(state, 0, dt)[0], Drive(x))` (tested for every
    model).
    """

    @abc.abstractmethod
    def add_drive(self, state, delivery: AbstractDelivery):
        """Add this step's drive (an `AbstractDelivery`) to `state`, the state evolved over
        the step without drive: returns `(state, g)`, as `step` does."""

    def step_with_delivery(self, state, delivery: AbstractDelivery, dt):
        """`step`, with the drive given as an `AbstractDelivery` (for example a
        projection's spikes, scattered straight into the state): returns `(state, g)`."""
        decayed, _ = self.step(state, jnp.asarray(0.0), dt)
        return self.add_drive(decayed, delivery)
