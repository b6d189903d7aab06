"""Neurodata Without Borders (NWB 2) voltage-clamp recordings, read with `pynwb`
(`pip install 'jsyn[nwb]'`).

`load_nwb` reads the `VoltageClampSeries` of a file's acquisition, one trace per sweep
(ordered by `sweep_number`, else by name): the samples times the series' `conversion`
(plus its `offset`) in its `unit` (SI amperes), converted to pA with the factor named in
`notes`; the time axis of a sweep from 0 (ms, from `rate`, or from evenly spaced
`timestamps`); each sweep's `starting_time` (ms); the holding potential from the sweep's
`VoltageClampStimulusSeries` (its first command sample, in mV), found through the file's
`IntracellularRecordingsTable` or the same `sweep_number`; and the stimulus times from
the file's other stimulus series (a TTL `TimeSeries` in `stimulus`: the rising edges
through half its range, on the session clock, taken relative to each sweep's start).

Reference: Rübel et al. 2022, eLife 11:e78362 (NWB 2); https://pynwb.readthedocs.io.
"""

from pathlib import Path

import numpy as np

from .recording import Recording, RecordingError, checked_recording
from .sweeps import parse_sweeps
from .units import factor_to


def _pynwb():
    try:
        import pynwb
    except ImportError:
        raise RecordingError(
            "reading .nwb files needs pynwb: pip install 'jsyn[nwb]' (or 'jsyn[ephys]')"
        ) from None
    return pynwb


def load_nwb(path, *, series=None, sweeps=None) -> Recording:
    """Read the voltage-clamp sweeps of an NWB 2 file.

    **Arguments:**
    - `path`: the `.nwb` file.
    - `series`: the name of an electrode (keep its sweeps) or of one series; default all
      `VoltageClampSeries` (they must share one electrode).
    - `sweeps`: which of them, as indices into that ordered list or a string `"0-9"`.

    **Returns:** a `Recording` with one trace per sweep (pA), named after the series,
    `V_hold` (mV) where the stimulus series give it, `spikes` the stimulus times (ms from
    the sweep's start) where a TTL series gives them, and `sweep_start` (ms).

    **Raises:** `RecordingError` naming the file and the fix.
    """
    pynwb = _pynwb()
    path = Path(path)
    if not path.exists():
        raise RecordingError(f"{path}: file not found; check the path")
    try:
        with pynwb.NWBHDF5IO(str(path), "r") as reader:
            return _read(reader.read(), pynwb, path, series, sweeps)
    except RecordingError:
        raise
    except Exception as err:  # h5py and hdmf raise OSError, KeyError, ValueError, ...
        raise RecordingError(
            f"{path}: cannot be read as an NWB 2 file ({type(err).__name__}: "
            f"{' '.join(str(err).split())[:200]}); it may be truncated or not NWB: copy it "
            "again, or check it with pynwb's validator (python -m pynwb.validate)"
        ) from None


def _read(nwb, pynwb, path: Path, series, sweeps) -> Recording:
    clamp = pynwb.icephys.VoltageClampSeries
    found = sorted(
        (s for s in nwb.acquisition.values() if isinstance(s, clamp)),
        key=lambda s: (s.sweep_number if s.sweep_number is not None else -1, s.name),
    )
    if series is not None:
        found = [s for s in found if series in (s.name, s.electrode.name)]
    if not found:
        names = ", ".join(sorted(nwb.acquisition)) or "none"
        what = f" named {series!r}" if series is not None else ""
        raise RecordingError(
            f"{path}: no VoltageClampSeries{what} in the acquisition (it holds: {names}); "
            "jsyn fits voltage-clamp currents"
        )
    if len({s.electrode.name for s in found}) > 1:
        raise RecordingError(
            f"{path}: the series come from several electrodes "
            f"({', '.join(sorted({s.electrode.name for s in found}))}); pick one with "
            "series= (jsyn fit --channel NAME)"
        )
    chosen = [found[i] for i in parse_sweeps(sweeps, len(found), path)]
    first = chosen[0]
    dt = _step(first, path)
    factor = factor_to(str(first.unit), "current", f"{path}, series {first.name!r}")
    traces, V_hold, starts = [], [], []
    for s in chosen:
        if _step(s, path) != dt or s.unit != first.unit:
            raise RecordingError(
                f"{path}: series {s.name!r} differs from {first.name!r} in sample rate or "
                "unit; choose sweeps recorded alike (sweeps=)"
            )
        offset = float(s.offset)
        traces.append((np.asarray(s.data[:], dtype=float) * s.conversion + offset) * factor)
        V_hold.append(_holding(nwb, pynwb, s, path))
        starts.append(1000.0 * _start(s))
    if len({trace.size for trace in traces}) != 1:
        raise RecordingError(
            f"{path}: the sweeps hold {sorted({tr.size for tr in traces})} samples; choose "
            "sweeps of one length (sweeps=)"
        )
    t = dt * np.arange(traces[0].size)
    notes = [
        f"series in {first.unit!r} x conversion {first.conversion:g}: x {factor:g} to pA",
        f"dt = {dt:g} ms from the series' {'rate' if first.rate else 'timestamps'}",
    ]
    has_hold = all(v is not None for v in V_hold)
    if has_hold:
        notes.append("V_hold from each sweep's VoltageClampStimulusSeries (first sample)")
    stim = _ttl_times(nwb, pynwb, np.asarray(starts), t, path)
    if stim is not None:
        notes.append(f"{stim[1].size} stimulus times from the stimulus series {stim[0]!r}")
    return checked_recording(
        path,
        t,
        np.stack(traces, axis=1),
        tuple(s.name for s in chosen),
        None if stim is None else stim[1],
        np.asarray(V_hold, dtype=float) if has_hold else None,
        sweep_start=np.asarray(starts),
        notes=tuple(notes),
    )


def _start(s) -> float:
    if s.starting_time is not None:
        return float(s.starting_time)
    return float(s.timestamps[0])


def _step(s, path: Path) -> float:
    """The sampling interval (ms) of a series, from its rate or its timestamps."""
    if s.rate is not None and np.isfinite(s.rate) and s.rate > 0:
        return 1000.0 / float(s.rate)
    stamps = None if s.timestamps is None else np.asarray(s.timestamps[:], dtype=float)
    if stamps is None or stamps.size < 2:
        raise RecordingError(
            f"{path}: series {s.name!r} has no sample rate (no rate, no timestamps); "
            "write it with rate= (Hz)"
        )
    steps = np.diff(stamps)
    if steps[0] <= 0 or np.any(np.abs(steps - steps[0]) > 1e-6 * steps[0]):
        raise RecordingError(
            f"{path}: series {s.name!r} is not evenly sampled (timestamps); resample it"
        )
    return 1000.0 * float(steps[0])


def _holding(nwb, pynwb, response, path: Path) -> float | None:
    """The first command sample (mV) of the response's voltage-clamp stimulus."""
    stimulus = None
    table = nwb.intracellular_recordings
    if table is not None and len(table) > 0:
        responses, stimuli = table["responses"]["response"], table["stimuli"]["stimulus"]
        for i in range(len(table)):
            if responses[i].timeseries is response and stimuli[i] is not None:
                stimulus = stimuli[i].timeseries
                break
    if stimulus is None and response.sweep_number is not None:
        command = pynwb.icephys.VoltageClampStimulusSeries
        stimulus = next(
            (
                s
                for s in nwb.stimulus.values()
                if isinstance(s, command) and s.sweep_number == response.sweep_number
            ),
            None,
        )
    if stimulus is None:
        return None
    factor = factor_to(str(stimulus.unit), "voltage", f"{path}, series {stimulus.name!r}")
    return float(stimulus.data[0]) * stimulus.conversion * factor


def _ttl_times(nwb, pynwb, starts: np.ndarray, t: np.ndarray, path: Path):
    """(name, times): the rising edges of the first plain stimulus `TimeSeries` (not a
    patch-clamp series), relative to each sweep's start; the same in every sweep."""
    plain = [
        s
        for name, s in sorted(nwb.stimulus.items())
        if not isinstance(s, pynwb.icephys.PatchClampSeries)
    ]
    if not plain:
        return None
    ttl = plain[0]
    level = np.asarray(ttl.data[:], dtype=float)
    half = 0.5 * (level.min() + level.max())
    rising = np.flatnonzero((level[1:] > half) & (level[:-1] <= half)) + 1
    stamps = 1000.0 * (_start(ttl) + rising * _step(ttl, path) / 1000.0)
    per_sweep = [np.sort(stamps[(stamps >= s) & (stamps <= s + t[-1])] - s) for s in starts]
    ref = per_sweep[0]
    for i, times in enumerate(per_sweep[1:], start=1):
        if times.shape != ref.shape or np.any(np.abs(times - ref) > t[1]):
            raise RecordingError(
                f"{path}: the stimulus series {ttl.name!r} gives other times in sweep {i} "
                f"({times.size} pulses) than in the first ({ref.size}); fit the sweeps "
                "apart (sweeps=) or give the stimulus times"
            )
    return (ttl.name, ref) if ref.size else None
