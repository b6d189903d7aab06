"""The synapse protocol."""

import abc

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
    """

    @abc.abstractmethod
    def init_state(self, n: Shape, *, dtype=None):
        """The resting state (all zero) of `n` synapses."""

    @abc.abstractmethod
    def step(self, state, x, dt):
        """Evolve over `dt` ms, apply this step's drive `x`: returns `(state, g)`."""
