"""Neurons and spike sources that drive and receive synapses."""

from .adaptive import (
    AbstractAdaptiveNeuron as AbstractAdaptiveNeuron,
    AdaptiveState as AdaptiveState,
)
from .adex import AdEx as AdEx
from .base import AbstractNeuron as AbstractNeuron
from .izhikevich import Izhikevich as Izhikevich
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
