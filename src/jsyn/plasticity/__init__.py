"""Plasticity: short-term (presynaptic efficacy) now; long-term rules, whose weights live
in the network state, join as their own modules."""

from .short_term import (
    STD as STD,
    STP as STP,
    AbstractShortTermPlasticity as AbstractShortTermPlasticity,
    STDState as STDState,
    STPState as STPState,
)
