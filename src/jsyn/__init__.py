"""jsyn: differentiable synapse models in JAX.

Models are frozen `equinox` modules holding parameters; state is a separate pytree that
`step` returns anew; `jsyn.simulate` runs any of them with one `jax.lax.scan`.
Units: ms, mV, nS, pA (nS x mV = pA), GΩ, mM, 1/ms.
"""

from importlib.metadata import version as _version

from ._component import (
    AbstractComponent as AbstractComponent,
    AbstractSystem as AbstractSystem,
)
from ._params import (
    AbstractParam as AbstractParam,
    Bounded as Bounded,
    LogPositive as LogPositive,
    SoftplusPositive as SoftplusPositive,
    resolve as resolve,
)
from .neurons import (
    LIF as LIF,
    AbstractNeuron as AbstractNeuron,
    AbstractSurrogate as AbstractSurrogate,
    FastSigmoidSurrogate as FastSigmoidSurrogate,
    LIFState as LIFState,
    Poisson as Poisson,
    PoissonState as PoissonState,
    SigmoidSurrogate as SigmoidSurrogate,
    SpikeTimes as SpikeTimes,
    SpikeTimesState as SpikeTimesState,
)
from .outputs import (
    COBA as COBA,
    CUBA as CUBA,
    AbstractOutput as AbstractOutput,
    MgBlock as MgBlock,
)
from .simulate import simulate as simulate
from .synapses import (
    AbstractSynapse as AbstractSynapse,
    Alpha as Alpha,
    AlphaState as AlphaState,
    DualExpon as DualExpon,
    DualExponState as DualExponState,
    DualExponV2 as DualExponV2,
    DualExponV2State as DualExponV2State,
    Expon as Expon,
    ExponState as ExponState,
    VoltageJump as VoltageJump,
    VoltageJumpState as VoltageJumpState,
)

__version__ = _version("jsyn")
