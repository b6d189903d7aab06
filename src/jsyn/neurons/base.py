"""The neuron protocol."""

import abc

from .._component import AbstractSystem
from .._custom_types import Shape


class AbstractNeuron(AbstractSystem):
    """A neuron group or spike source.

    - `init_state(n, *, dtype=None)`: the initial state of `n` neurons (sources whose size
      is fixed by their parameters accept `n=None`).
    - `step(state, I, dt) -> (state, spikes)`: `I` is the input current of the step (pA,
      positive into the cell; sources ignore it and accept `None`); `spikes` counts the
      spikes emitted at the end of the step (0/1 for neurons, counts for sources).
    """

    @abc.abstractmethod
    def init_state(self, n: Shape | None, *, dtype=None):
        """The initial state of the group."""

    @abc.abstractmethod
    def step(self, state, x, dt):
        """One step of `dt` ms: returns `(state, spikes)`."""
