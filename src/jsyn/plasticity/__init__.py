"""Plasticity: short-term (presynaptic efficacy: STD, STP, QuantalSTP) and long-term rules,
whose weights live in the network state (`jsyn.Projection(..., plasticity=rule)`)."""

from .base import AbstractLongTermPlasticity as AbstractLongTermPlasticity
from .clopath import Clopath as Clopath, ClopathState as ClopathState
from .homeostatic import (
    SynapticScaling as SynapticScaling,
    SynapticScalingState as SynapticScalingState,
)
from .quantal import QuantalSTP as QuantalSTP, QuantalSTPState as QuantalSTPState
from .reward import (
    RewardEventState as RewardEventState,
    RewardSTDP as RewardSTDP,
    RewardSTDPState as RewardSTDPState,
)
from .short_term import (
    STD as STD,
    STP as STP,
    AbstractShortTermPlasticity as AbstractShortTermPlasticity,
    STDState as STDState,
    STPState as STPState,
)
from .stdp import STDP as STDP, STDPState as STDPState
from .triplet import TripletSTDP as TripletSTDP, TripletSTDPState as TripletSTDPState
from .vogels_sprekeler import (
    VogelsSprekeler as VogelsSprekeler,
    VogelsSprekelerState as VogelsSprekelerState,
)
