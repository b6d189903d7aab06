"""The neuron protocol."""

import abc
from typing import ClassVar

from .._component import AbstractSystem
from .._custom_types import Shape


class AbstractNeuron(AbstractSystem):
    """A neuron group or spike source.

    - `init_state(n, *, dtype=None)`: the initial state of `n` neurons (sources whose size
      is fixed by their parameters accept `n=None`).
    - `step(state, I, dt) -> (state, spikes)`: `I` is the input current of the step (pA,
      positive into the cell; sources ignore it and accept `None`); `spikes` counts the
      spikes emitted at the end of the step (0/1 for neurons, counts for sources).

    Declared for a `jsyn.Network`: `has_potential`, whether the state has a membrane
    potential `V` (mV) that output laws and gap junctions read; `takes_jump`, whether
    `step` takes voltage jumps, `step(state, I, dt, jump=dV)` (mV), from voltage-jump
    projections and gap-junction spikelets; `own_size()`, the size of a source fixed by its
    parameters (`None` for neurons, whose size the network gives); `for_trials(B,
    stacked)`, the group of `B` trials side by side where its parameters are not one value
    per neuron (a source's per-spike times).
    """

    has_potential: ClassVar[bool] = False
    takes_jump: ClassVar[bool] = False

    def own_size(self) -> int | None:
        """The number of neurons fixed by the parameters (sources), or `None`."""
        return None

    def for_trials(self, B: int, stacked) -> "AbstractNeuron | None":
        """The group of `B` trials side by side, for `jsyn.trials`: neuron `i` of trial `b`
        is neuron `i * B + b` of the result; `stacked` holds the trials' own parameters
        (this group's leaves with a leading axis of `B`), or is `None` where every trial
        has these. `None` (the default) lets `jsyn.trials` lay the parameters out itself,
        each one value per neuron or shared; a group whose parameters are laid out
        otherwise (per spike, say) returns its batch here."""
        return None

    @abc.abstractmethod
    def init_state(self, n: Shape | None, *, dtype=None):
        """The initial state of the group."""

    @abc.abstractmethod
    def step(self, state, x, dt):
        """One step of `dt` ms: returns `(state, spikes)`."""
