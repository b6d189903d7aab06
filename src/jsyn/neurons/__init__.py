"""Neurons and spike sources that drive and receive synapses."""

from .base import AbstractNeuron as AbstractNeuron
from .lif import LIF as LIF, LIFState as LIFState
from .neuromodulator import (
    Neuromodulator as Neuromodulator,
    NeuromodulatorState as NeuromodulatorState,
)
from .sources import (
    Poisson as Poisson,
    PoissonState as PoissonState,
    SpikeInput as SpikeInput,
    SpikeInputState as SpikeInputState,
    SpikeTimes as SpikeTimes,
    SpikeTimesState as SpikeTimesState,
)
from .surrogate import (
    AbstractSurrogate as AbstractSurrogate,
    FastSigmoidSurrogate as FastSigmoidSurrogate,
    SigmoidSurrogate as SigmoidSurrogate,
)
