"""jsyn: differentiable synapse models in JAX.

Models are frozen `equinox` modules holding parameters; state is a separate pytree that
`step` returns anew; `jsyn.simulate` runs any of them with one `jax.lax.scan`.
Units: ms, mV, nS, pA (nS x mV = pA), GΩ, mM, 1/ms.
"""

from importlib.metadata import version as _version

from ._component import (
    AbstractComponent as AbstractComponent,
    AbstractSystem as AbstractSystem,
    IndexAxis as IndexAxis,
    axis as axis,
)
from ._params import (
    AbstractParam as AbstractParam,
    Bounded as Bounded,
    LogPositive as LogPositive,
    SoftplusPositive as SoftplusPositive,
    resolve as resolve,
)
from ._resume import StoppedBySignal as StoppedBySignal
from ._save import load as load, save as save
from ._units import UnitWarning as UnitWarning
from .batch import grid as grid, stack as stack, sweep as sweep
from .connectivity import (
    AbstractConnection as AbstractConnection,
    Dense as Dense,
    Sparse as Sparse,
    all_to_all as all_to_all,
    fixed_in_degree as fixed_in_degree,
    fixed_out_degree as fixed_out_degree,
    fixed_prob as fixed_prob,
    from_matrix as from_matrix,
    from_pairs as from_pairs,
    one_to_one as one_to_one,
)
from .couplings import (
    AbstractCoupling as AbstractCoupling,
    AdditiveCoupling as AdditiveCoupling,
    DiffusiveCoupling as DiffusiveCoupling,
)
from .delays import Delay as Delay, DelayState as DelayState, split_steps as split_steps
from .fitting import (
    PSC as PSC,
    FitResult as FitResult,
    PSCState as PSCState,
    fit as fit,
    fit_many as fit_many,
    sweep_intervals as sweep_intervals,
)
from .gap_junction import GapJunction as GapJunction
from .network import (
    ModulatedGain as ModulatedGain,
    Network as Network,
    NetworkState as NetworkState,
    Projection as Projection,
    ProjectionState as ProjectionState,
    StochasticRelease as StochasticRelease,
    TrialBatch as TrialBatch,
    trials as trials,
)
from .neurons import (
    LIF as LIF,
    AbstractAdaptiveNeuron as AbstractAdaptiveNeuron,
    AbstractNeuron as AbstractNeuron,
    AbstractSurrogate as AbstractSurrogate,
    AdaptiveState as AdaptiveState,
    AdEx as AdEx,
    FastSigmoidSurrogate as FastSigmoidSurrogate,
    Izhikevich as Izhikevich,
    LIFState as LIFState,
    Neuromodulator as Neuromodulator,
    NeuromodulatorState as NeuromodulatorState,
    Poisson as Poisson,
    PoissonState as PoissonState,
    SigmoidSurrogate as SigmoidSurrogate,
    SpikeInput as SpikeInput,
    SpikeInputState as SpikeInputState,
    SpikeTimes as SpikeTimes,
    SpikeTimesState as SpikeTimesState,
)
from .outputs import (
    COBA as COBA,
    CUBA as CUBA,
    AbstractOutput as AbstractOutput,
    MgBlock as MgBlock,
)
from .plasticity import (
    STD as STD,
    STDP as STDP,
    STP as STP,
    AbstractLongTermPlasticity as AbstractLongTermPlasticity,
    AbstractShortTermPlasticity as AbstractShortTermPlasticity,
    Clopath as Clopath,
    ClopathState as ClopathState,
    QuantalSTP as QuantalSTP,
    QuantalSTPState as QuantalSTPState,
    RewardEventState as RewardEventState,
    RewardSTDP as RewardSTDP,
    RewardSTDPState as RewardSTDPState,
    STDPState as STDPState,
    STDState as STDState,
    STPState as STPState,
    SynapticScaling as SynapticScaling,
    SynapticScalingState as SynapticScalingState,
    TripletSTDP as TripletSTDP,
    TripletSTDPState as TripletSTDPState,
    VogelsSprekeler as VogelsSprekeler,
    VogelsSprekelerState as VogelsSprekelerState,
)
from .simulate import simulate as simulate
from .synapses import (
    AMPA as AMPA,
    NMDA as NMDA,
    AbstractLinearSynapse as AbstractLinearSynapse,
    AbstractSynapse as AbstractSynapse,
    Alpha as Alpha,
    AlphaState as AlphaState,
    AMPAState as AMPAState,
    BioNMDA as BioNMDA,
    BioNMDAState as BioNMDAState,
    DualExpon as DualExpon,
    DualExponState as DualExponState,
    DualExponV2 as DualExponV2,
    DualExponV2State as DualExponV2State,
    Expon as Expon,
    ExponState as ExponState,
    GABAa as GABAa,
    GABAaState as GABAaState,
    GABAb as GABAb,
    GABAbState as GABAbState,
    NMDAState as NMDAState,
    OUNoise as OUNoise,
    OUNoiseState as OUNoiseState,
    VoltageJump as VoltageJump,
    VoltageJumpState as VoltageJumpState,
)

__version__ = _version("jsyn")
