"""The voltage-jump synapse: no kinetics, an instantaneous kick to the membrane."""

import equinox as eqx
from jaxtyping import Array, Float

from .._custom_types import Shape
from .base import AbstractDelivery, AbstractLinearSynapse


class VoltageJumpState(eqx.Module):
    """State of `VoltageJump`: none (the synapse has no kinetics)."""


class VoltageJump(AbstractLinearSynapse):
    r"""Voltage-jump synapse: each spike moves the postsynaptic potential at once.

    $$V_{\text{post}} \leftarrow V_{\text{post}} + w\,x \text{ at each spike, skipped while the
    target is refractory.}$$

    `step` returns the jump of the step, $w x$ (mV), with no dynamics. Hand it to the
    postsynaptic neuron's `jump` argument (`LIF.step(state, I, dt, jump=dV)`), which
    applies it after the membrane's own evolution and ignores it while refractory.

    **Reference:** the "voltage jump" synapse of BrainPy's synapse tutorial.
    """

    def constraints(self):
        return ()

    def init_state(self, n: Shape, *, dtype=None) -> VoltageJumpState:
        return VoltageJumpState()

    def step(self, state: VoltageJumpState, x, dt) -> tuple[VoltageJumpState, Float[Array, "*n"]]:
        return state, x

    def add_drive(self, state: VoltageJumpState, delivery: AbstractDelivery):
        return state, delivery.drive()
