"""Synaptic noise: stochastic transmitter release, quantal stochastic short-term depression,
and Ornstein-Uhlenbeck conductance noise. Random numbers come from explicit keys kept in the
state."""

from .ou import OUNoise as OUNoise, OUNoiseState as OUNoiseState
from .quantal import QuantalSTP as QuantalSTP, QuantalSTPState as QuantalSTPState
from .release import StochasticRelease as StochasticRelease
