r"""Evoked trains: from the sweeps of a recording to the target, drive and weights of a fit.

`evoked_train` does the steps a recording of evoked currents needs before `jsyn.fit`:

1. **Stimulus times**: from the file's protocol (`stim="protocol"`: the `spikes` a reader
   found, an ABF digital output or an NWB stimulus series), from a list (ms from the
   sweep's start), or detected from the stimulus artifacts (`stim="auto"`,
   `detect_stimuli`).
2. **Sweeps**: averaged (default; sweeps of one holding potential are averaged together,
   one trace per potential), or kept apart for one fit per sweep (`jsyn.fit_many`).
3. **Baseline**: the mean of a pre-stimulus window (default: the `baseline` ms before
   the first stimulus) is subtracted from each trace.
4. **Artifacts**: the `blank` ms from each stimulus get weight 0 (`weights` for
   `jsyn.fit`), so neither the artifact nor the samples it hides enter the loss.

**Artifact detection** (`detect_stimuli`). A stimulus artifact is the fastest event of a
voltage-clamp trace: it changes the current by hundreds of pA between two samples, where
a synaptic current rising over a millisecond changes it by a few. On the mean of the
sweeps, the first difference $d_i = y_{i+1} - y_i$ is compared with a threshold
$\theta = \max(k\,\hat\sigma, f \max_i |d_i|)$, where $\hat\sigma = 1.4826\,
\mathrm{median}|d - \mathrm{median}\,d|$ is the robust noise scale of the differences,
$k$ = `n_sigma` (default 10) and $f$ = `fraction` (default 0.25). Every run of crossings
closer than `min_interval` ms (default 1 ms) to the previous one is one artifact; its
stimulus time is the first sample after its first crossing, $t_{i+1}$.
"""

import dataclasses

import numpy as np

from .recording import Recording, RecordingError


@dataclasses.dataclass(frozen=True)
class EvokedTrain:
    """What `evoked_train` returns: the pieces of a fit of evoked currents.

    **Attributes:**
    - `t`: sample times (ms from the sweep's start), shape `(time,)`; `dt` the step.
    - `target`: baseline-subtracted current (pA, the recording's sign), `(time, k)`.
    - `spikes`: stimulus counts per sample, `(time, k)` (the same train in every column).
    - `weights`: 1, or 0 inside the blanking windows, `(time, 1)`.
    - `stim`: the stimulus times (ms).
    - `V_hold`: holding potential per column (mV), or `None`.
    - `names`: what each column holds (`"mean of sweep 0-9"` or a sweep's name).
    - `baseline`: the value subtracted from each column (pA).
    - `noise_std`: the standard deviation of each column in the baseline window (pA).
    - `notes`: every choice made, one line each, for the user to see.
    - `sweeps`: the sweeps averaged, each less its own baseline (pA), `(time, n)`, so that
      `target` is the mean of the sweeps of each column; `None` when not averaged.
    - `columns`: the column of `target` each of `sweeps` belongs to, `(n,)`, or `None`.
    """

    t: np.ndarray
    target: np.ndarray
    spikes: np.ndarray
    weights: np.ndarray
    stim: np.ndarray
    V_hold: np.ndarray | None
    names: tuple[str, ...]
    baseline: np.ndarray
    noise_std: np.ndarray
    notes: tuple[str, ...]
    sweeps: np.ndarray | None = None
    columns: np.ndarray | None = None

    @property
    def dt(self) -> float:
        """The sampling interval (ms)."""
        return float(self.t[1] - self.t[0])


def detect_stimuli(
    t, traces, *, n_sigma: float = 10.0, fraction: float = 0.25, min_interval: float = 1.0
) -> np.ndarray:
    """Stimulus times (ms) from the artifacts of `traces` (`(time,)` or `(time, k)`,
    averaged over columns): see the module docstring for the method.

    **Raises:** `RecordingError` when no sample crosses the threshold.
    """
    t = np.asarray(t, dtype=float)
    y = np.asarray(traces, dtype=float).reshape(t.size, -1).mean(axis=1)
    d = np.diff(y)
    sigma = 1.4826 * np.median(np.abs(d - np.median(d)))
    threshold = max(n_sigma * sigma, fraction * float(np.max(np.abs(d))))
    crossings = np.flatnonzero(np.abs(d) > threshold)
    if crossings.size == 0 or threshold == 0:
        raise RecordingError(
            "no stimulus artifact found (no jump between samples above "
            f"{threshold:.3g} pA); give the stimulus times instead"
        )
    times = t[crossings + 1]
    first = np.concatenate([[True], np.diff(times) > min_interval])
    return times[first]


def _window(t: np.ndarray, lo: float, hi: float, what: str, source) -> np.ndarray:
    inside = (t >= lo) & (t < hi)
    if inside.sum() < 2:
        raise RecordingError(
            f"{source}: the {what} window [{lo:g}, {hi:g}) ms holds {int(inside.sum())} "
            f"samples of the sweep [{t[0]:g}, {t[-1]:g}] ms; give a longer one"
        )
    return inside


def _stimulus(rec: Recording, stim) -> tuple[np.ndarray, str]:
    if isinstance(stim, str) and stim == "auto":
        try:
            return detect_stimuli(rec.t, rec.traces), "detected from the artifacts"
        except RecordingError as err:
            raise RecordingError(f"{rec.source}: {err}") from None
    if isinstance(stim, str) and stim == "protocol":
        if rec.spikes is None:
            raise RecordingError(
                f"{rec.source}: the file holds no stimulus protocol (no digital output or "
                "stimulus series); detect the stimuli (stim='auto', --stim auto) or list them"
            )
        return rec.spikes, "from the recording (its protocol or spike times)"
    times = np.atleast_1d(np.asarray(stim, dtype=float))
    outside = (times < rec.t[0]) | (times > rec.t[-1])
    if times.ndim != 1 or not np.all(np.isfinite(times)) or outside.any():
        bad = times[outside][0] if outside.any() else times
        raise RecordingError(
            f"{rec.source}: stimulus time {bad} ms lies outside the sweep [{rec.t[0]:g}, "
            f"{rec.t[-1]:g}] ms; give times in ms from the start of the sweep"
        )
    return np.sort(times), "as given"


def evoked_train(
    rec: Recording,
    *,
    stim="protocol",
    average: bool = True,
    baseline: float | None = 5.0,
    blank: float = 0.0,
) -> EvokedTrain:
    """Prepare the sweeps of `rec` for a fit of evoked currents (see the module docstring).

    **Arguments:**
    - `rec`: the recording (one trace per sweep; `V_hold` per sweep, or `None`).
    - `stim`: `"protocol"` (the recording's `spikes`), `"auto"` (`detect_stimuli`), or
      the stimulus times (ms from the sweep's start).
    - `average`: average the sweeps (per holding potential: sweeps at two potentials give
      two columns); `False` keeps one column per sweep (for `jsyn.fit_many`).
    - `baseline`: the length (ms) of the pre-stimulus window, ending at the first
      stimulus, whose mean is subtracted. Default 5. `None`: nothing is subtracted (and
      `noise_std` is NaN).
    - `blank`: the length (ms) of each artifact's window of zero weight, from each
      stimulus. Default 0 (none).

    **Raises:** `RecordingError` naming the recording and the fix.
    """
    times, how = _stimulus(rec, stim)
    if blank < 0 or (baseline is not None and not baseline > 0):
        raise RecordingError(
            f"{rec.source}: baseline must be > 0 ms (or None) and blank >= 0 ms (got "
            f"{baseline}, {blank:g})"
        )
    t = rec.t - rec.t[0]
    times = times - rec.t[0]
    traces, names, V_hold = rec.traces, rec.names, rec.V_hold
    notes = [f"{times.size} stimuli {how}: {', '.join(f'{s:g}' for s in times)} ms"]
    sweeps = columns = None
    if average:
        traces, names, V_hold, columns = _average(rec)
        notes.append(f"averaged: {'; '.join(names)}")
        sweeps = rec.traces
    if baseline is None:
        level, noise = np.zeros(traces.shape[1]), np.full(traces.shape[1], np.nan)
        notes.append("baseline: none subtracted")
    else:
        quiet = _window(t, times[0] - baseline, times[0], "baseline", rec.source)
        level = traces[quiet].mean(axis=0)
        if sweeps is not None:
            sweeps = sweeps - sweeps[quiet].mean(axis=0)
        noise = traces[quiet].std(axis=0, ddof=1)
        notes.append(
            f"baseline: the mean of [{times[0] - baseline:g}, {times[0]:g}) ms subtracted "
            f"({', '.join(f'{b:.4g}' for b in level)} pA)"
        )
    rows = np.round(times / rec.dt).astype(int)
    counts = np.zeros(t.size)
    np.add.at(counts, rows, 1.0)
    weights = np.ones((t.size, 1))
    for s in times:
        weights[(t >= s) & (t < s + blank), 0] = 0.0
    if blank > 0:
        notes.append(f"blanked: weight 0 in [s, s + {blank:g}) ms from each stimulus s")
    return EvokedTrain(
        t=t,
        target=traces - level,
        spikes=np.repeat(counts[:, None], traces.shape[1], axis=1),
        weights=weights,
        stim=times,
        V_hold=V_hold,
        names=tuple(names),
        baseline=level,
        noise_std=noise,
        notes=tuple(notes),
        sweeps=sweeps,
        columns=columns,
    )


def _average(rec: Recording):
    """The mean of the sweeps of each holding potential (in the order they first come),
    and the column of each sweep."""
    n = rec.traces.shape[1]
    if rec.V_hold is None:
        mean = rec.traces.mean(axis=1, keepdims=True)
        return mean, (_label(rec.names),), None, np.zeros(n, int)
    groups = list(dict.fromkeys(rec.V_hold.tolist()))
    traces, names, columns = [], [], np.zeros(n, int)
    for i, v in enumerate(groups):
        members = rec.V_hold == v
        columns[members] = i
        traces.append(rec.traces[:, members].mean(axis=1))
        chosen = [n for n, m in zip(rec.names, members) if m]
        names.append(f"{_label(chosen)} at {v:g} mV")
    return np.stack(traces, axis=1), tuple(names), np.asarray(groups, dtype=float), columns


def _label(names) -> str:
    return names[0] if len(names) == 1 else f"mean of {len(names)} ({names[0]} .. {names[-1]})"
