"""Synaptic noise: stochastic transmitter release, quantal stochastic short-term depression,
and Ornstein-Uhlenbeck conductance noise. Random numbers come from explicit keys kept in the
state."""

from .release import StochasticRelease as StochasticRelease
