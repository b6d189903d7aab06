"""Synaptic kinetics: one small module per family."""

from .base import (
    AbstractDelivery as AbstractDelivery,
    AbstractLinearSynapse as AbstractLinearSynapse,
    AbstractSynapse as AbstractSynapse,
    Drive as Drive,
)
from .exponential import (
    Alpha as Alpha,
    AlphaState as AlphaState,
    DualExpon as DualExpon,
    DualExponState as DualExponState,
    DualExponV2 as DualExponV2,
    DualExponV2State as DualExponV2State,
    Expon as Expon,
    ExponState as ExponState,
)
from .gaba_b import GABAb as GABAb, GABAbState as GABAbState
from .jump import VoltageJump as VoltageJump, VoltageJumpState as VoltageJumpState
from .markov import (
    AMPA as AMPA,
    AMPAState as AMPAState,
    GABAa as GABAa,
    GABAaState as GABAaState,
)
from .nmda import (
    NMDA as NMDA,
    BioNMDA as BioNMDA,
    BioNMDAState as BioNMDAState,
    NMDAState as NMDAState,
)
from .ou import OUNoise as OUNoise, OUNoiseState as OUNoiseState
