"""Recordings in and out: voltage-clamp currents and presynaptic spike times (CSV, NPZ,
ABF with the extra `abf`, NWB with the extra `nwb`), and evoked trains prepared for a fit."""

from .abf import load_abf as load_abf
from .evoked import (
    EvokedTrain as EvokedTrain,
    detect_stimuli as detect_stimuli,
    evoked_train as evoked_train,
)
from .figures import plot_recording_fit as plot_recording_fit
from .fit_recording import (
    MODELS as MODELS,
    STP_MODELS as STP_MODELS,
    RecordingFit as RecordingFit,
    fit_recording as fit_recording,
)
from .nwb import load_nwb as load_nwb
from .recording import (
    MIN_DT as MIN_DT,
    Recording as Recording,
    RecordingError as RecordingError,
    RecordingWarning as RecordingWarning,
    example_path as example_path,
    load_recording as load_recording,
    load_spikes as load_spikes,
    save_recording as save_recording,
)
from .sweeps import parse_sweeps as parse_sweeps
from .units import factor_to as factor_to
