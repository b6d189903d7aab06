"""Axon Binary Format (ABF 1 and 2, pCLAMP) recordings, read with `pyabf`
(`pip install 'jsyn[abf]'`).

`load_abf` reads the sweeps of one channel into a `Recording`: one trace per sweep (pA for a
current channel, converted from the channel's unit with the factor named in `notes`), the
time axis of a sweep from 0 (ms, from the sample rate), each sweep's start time, the holding
potential where an ABF 2 header holds it (`holdingCommand` of the DAC, in mV), and the
stimulus times of the protocol's epoch table where it holds them: the rising edges of a
digital output in the first sweep read, else the pulses of a pulse train (`Pulse` or
`BiPhsc` epochs) on an analog output other than the recorded channel's own command
(`epoch_pulse_times`). pyabf builds neither digital *trains* (the `*` pattern of an
epoch's digital outputs: pyabf reads such an epoch as one level) nor user lists; for those
give the times, or detect them from the artifacts.

Reference: pyabf, https://swharden.com/pyabf/ (Harden 2022).
"""

from pathlib import Path

import numpy as np

from .recording import Recording, RecordingError, checked_recording
from .sweeps import parse_sweeps
from .units import factor_to


def _pyabf():
    try:
        import pyabf
    except ImportError:
        raise RecordingError(
            "reading .abf files needs pyabf: pip install 'jsyn[abf]' (or 'jsyn[ephys]')"
        ) from None
    return pyabf


def _open(path: Path):
    pyabf = _pyabf()
    if not path.exists():
        raise RecordingError(f"{path}: file not found; check the path")
    try:
        return pyabf.ABF(str(path))
    except ZeroDivisionError:  # pyabf divides by the header's sample interval
        raise RecordingError(
            f"{path}: the header gives no sample rate (a sample interval of 0); re-save the "
            "file from Clampfit, or export it as CSV with a time column (ms)"
        ) from None
    except Exception as err:  # pyabf raises struct, index and value errors on bad bytes
        raise RecordingError(
            f"{path}: cannot be read as an ABF file ({type(err).__name__}: {err}); it may "
            "be truncated or not an ABF: copy it again or re-save it from Clampfit"
        ) from None


def load_abf(path, *, channel: int = 0, sweeps=None, quantity: str = "current") -> Recording:
    """Read sweeps of one channel of an ABF file (ABF 1 or 2).

    **Arguments:**
    - `path`: the `.abf` file.
    - `channel`: the ADC channel (default 0).
    - `sweeps`: which sweeps, as indices or a string `"0-9,12"` (default all).
    - `quantity`: `"current"` (converted to pA) or `"voltage"` (to mV); a channel in the
      other quantity's unit, or an unknown unit, is refused.

    **Returns:** a `Recording` with one trace per sweep (names `"sweep 3"`), `V_hold`
    per sweep (mV) where the header holds it, `spikes` the protocol's stimulus times (ms,
    from the sweep's start) where a digital output holds them, and `sweep_start`.

    **Raises:** `RecordingError` naming the file and the fix.
    """
    path = Path(path)
    abf = _open(path)
    if not 0 <= channel < abf.channelCount:
        raise RecordingError(
            f"{path}: no channel {channel}; the file has {abf.channelCount} "
            f"(0-{abf.channelCount - 1}: {', '.join(map(str, abf.adcUnits))})"
        )
    rate = float(abf.dataRate)
    if not np.isfinite(rate) or rate <= 0:
        raise RecordingError(
            f"{path}: the header gives no sample rate ({rate:g} Hz); re-save the file from "
            "Clampfit, or export it as CSV with a time column"
        )
    unit = str(abf.adcUnits[channel])
    factor = factor_to(unit, quantity, f"{path}, channel {channel}")
    chosen = parse_sweeps(sweeps, abf.sweepCount, path)
    traces = []
    for s in chosen:
        abf.setSweep(int(s), channel=channel)
        traces.append(np.asarray(abf.sweepY, dtype=float) * factor)
    lengths = {trace.size for trace in traces}
    if len(lengths) != 1 or min(lengths) < 2:
        raise RecordingError(
            f"{path}: the sweeps hold {sorted(lengths)} samples; the file may be truncated"
        )
    dt = 1000.0 / rate
    t = dt * np.arange(traces[0].size)
    starts = 1000.0 * np.asarray(abf.sweepTimesSec, dtype=float)[chosen]
    notes = [f"channel {channel} in {unit.strip()!r}: x {factor:g} to pA"]
    notes[0] = notes[0].replace("pA", "pA" if quantity == "current" else "mV")
    notes.append(f"sample rate {rate:g} Hz from the header: dt = {dt:g} ms")
    V_hold = _holding(abf, channel)
    if V_hold is not None:
        notes.append(f"V_hold = {V_hold:g} mV, the holding command of the header")
    first = int(chosen[0])
    stim = _digital_edges(abf, t, first)
    if stim is not None:
        notes.append(f"{stim.size} stimulus times from the protocol's digital output")
    else:
        stim, dac = _epoch_trains(abf, channel, first, dt)
        if stim is not None:
            notes.append(
                f"{stim.size} stimulus times from the pulse trains of the protocol's epoch "
                f"table (DAC {dac}, sweep {first})"
            )
    return checked_recording(
        path,
        t,
        np.stack(traces, axis=1),
        tuple(f"sweep {s}" for s in chosen),
        stim,
        V_hold,
        sweep_start=starts,
        notes=tuple(notes),
    )


def _holding(abf, channel: int) -> float | None:
    """The holding command (mV) of an ABF 2 file's DAC of this channel, if it is a voltage."""
    if int(abf.abfVersion["major"]) < 2:
        return None
    dac = min(channel, len(abf.holdingCommand) - 1)
    value, unit = float(abf.holdingCommand[dac]), str(abf.dacUnits[dac]).strip("\x00 ")
    if not np.isfinite(value) or unit != "mV":
        return None
    return value


def epoch_pulse_times(epochs, dt: float) -> np.ndarray | None:
    r"""The stimulus times (ms from the sweep's start) of the pulse trains of one sweep's
    epoch table: pyabf's `EpochSweepWaveform` (`abf.sweepEpochs`: the sample ranges
    `p1s`, `p2s`, `types`, `levels`, `pulsePeriods` in samples). A `Pulse` or `BiPhsc`
    epoch of period $P > 0$ samples whose level differs from the epoch before gives
    $\lfloor (p_2 - p_1)/P \rfloor$ pulses at samples $p_1 + kP$ (pyabf's own rule for
    drawing the waveform); `dt` is the sampling interval (ms). `None` when there are none."""
    pulses = []
    for i, kind in enumerate(epochs.types):
        period = int(epochs.pulsePeriods[i])
        before = epochs.levels[i - 1] if i else epochs.levels[i]
        if kind not in ("Pulse", "BiPhsc") or period <= 0 or epochs.levels[i] == before:
            continue
        p1, p2 = int(epochs.p1s[i]), int(epochs.p2s[i])
        pulses += [p1 + k * period for k in range((p2 - p1) // period)]
    return dt * np.asarray(sorted(pulses), dtype=float) if pulses else None


def _epoch_trains(abf, channel: int, sweep: int, dt: float):
    """`(times, dac)`: the pulse trains of the first analog output, other than the
    recorded channel's own command, whose epoch table holds some; `(None, None)` else."""
    import pyabf.waveform

    for dac in range(len(abf.holdingCommand)):
        if dac == channel:
            continue  # the recorded cell's command: a test pulse there is no stimulus
        try:
            table = pyabf.waveform.EpochTable(abf, dac)
            epochs = table.epochWaveformsBySweep[sweep]
        except Exception:  # pyabf raises on headers without an epoch table for this DAC
            continue
        times = epoch_pulse_times(epochs, dt)
        if times is not None:
            return times, dac
    return None, None


def _digital_edges(abf, t: np.ndarray, sweep: int = 0) -> np.ndarray | None:
    """The rising edges (ms) of the first digital output that rises in `sweep`."""
    abf.setSweep(sweep)
    for output in range(8):
        try:
            levels = np.asarray(abf.sweepD(output), dtype=float)
        except Exception:  # pyabf raises on files without a digital-output table
            return None
        rising = np.flatnonzero((levels[1:] > 0.5) & (levels[:-1] <= 0.5)) + 1
        if rising.size:
            return t[rising[rising < t.size]]
    return None
