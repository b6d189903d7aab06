"""Recordings in and out: voltage-clamp currents and presynaptic spike times (CSV, NPZ)."""

from .recording import (
    Recording as Recording,
    RecordingError as RecordingError,
    example_path as example_path,
    load_recording as load_recording,
    load_spikes as load_spikes,
    save_recording as save_recording,
)
