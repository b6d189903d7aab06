"""Networks: projections (a fixed pipeline of stages chosen at construction), groups of
neurons joined by them, and trials of a network run side by side."""

from .modulation import ModulatedGain as ModulatedGain
from .network import Network as Network, NetworkState as NetworkState
from .projection import Projection as Projection, ProjectionState as ProjectionState
from .release import StochasticRelease as StochasticRelease
from .trial_batch import TrialBatch as TrialBatch, trials as trials
