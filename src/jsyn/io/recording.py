"""Recordings from files: CSV and NPZ traces with a time column, spike times, holding
potentials.

**CSV.** A header row names the columns; lines starting with `#` are comments, and a
comment `# V_hold = -70` (mV; one value, or one per trace separated by commas) gives the
holding potential. The time column is `t` (or `time`, or the first column), in ms, evenly
spaced. Every other column is a trace (pA), except a column named `spikes`: 0/1 (or
counts) per sample, the presynaptic spikes.

**NPZ.** Arrays `t` (ms, shape `(time,)`), `traces` (shape `(time,)` or `(time, k)`),
optionally `spikes` (spike times, ms), `V_hold` (mV, scalar or one per trace) and `names`.

**Spike files** (`load_spikes`): spike times in ms, as text (one per line, or separated by
commas or whitespace; a non-numeric first line is a header), `.npy`, or a CSV with a
column `spikes` of 0/1 per sample (then a time column is needed too).

**Unit checks.** The commonest unit mistakes pass every shape check, so they are caught
where the data enter, as a `RecordingWarning` (a `UserWarning`; silence it with
`warnings.simplefilter("ignore", jsyn.io.RecordingWarning)` when the data are truly so;
`jsyn fit` makes it an error): a time step below `MIN_DT` = 0.001 ms (a time column in
seconds), several spike times in one sample (spike times in seconds on a recording in ms),
and a holding potential between -1 and 1 mV other than 0 (volts for millivolts). An
`.npz` whose `spikes` hold one 0 or 1 per sample (the CSV layout, a raster) is refused.

Every problem (missing file, malformed column, mismatched lengths, NaN samples, uneven
time steps) raises `RecordingError`, a `ValueError` with a one-line message naming the
file, the column, the place (for text files the line number in the file, counting every
line from 1; for `.npz` files the sample index, from 0) and the fix.
"""

import csv
import dataclasses
import warnings
from importlib import resources
from pathlib import Path

import numpy as np

EXAMPLE = "example_psc.csv"
"""The example recording shipped in the package (see `example_path`)."""


MIN_DT = 1e-3
"""The smallest time step (ms) taken without a `RecordingWarning` (1 MHz sampling)."""


class RecordingError(ValueError):
    """A recording or spike file that cannot be used; the message says why, in one line."""


class RecordingWarning(UserWarning):
    """A recording whose numbers suggest a unit mistake (seconds for ms, volts for mV);
    the message names the likely mistake and the fix. `jsyn fit` treats it as an error."""


def _warn(source, what: str) -> None:
    warnings.warn(f"{source}: {what}", RecordingWarning, stacklevel=3)


@dataclasses.dataclass(frozen=True)
class Recording:
    """A recording: evenly sampled traces, and optionally the presynaptic spike times and
    holding potentials.

    **Attributes:**
    - `t`: sample times (ms), shape `(time,)`, evenly spaced.
    - `traces`: the recorded traces (pA for currents), shape `(time, k)`.
    - `names`: the name of each trace.
    - `spikes`: presynaptic spike times (ms), shape `(n_spikes,)`, or `None`.
    - `V_hold`: holding potential per trace (mV), shape `(k,)`, or `None`.
    - `source`: where it was read from.
    - `sweep_start`: for files of sweeps (ABF, NWB), the start of each trace's sweep (ms,
      on the file's clock), shape `(k,)`, or `None`.
    - `notes`: what the reader assumed or converted, one line each (for example
      `"channel 0 'nA' -> pA: x 1000"`), for the user to see.
    """

    t: np.ndarray
    traces: np.ndarray
    names: tuple[str, ...]
    spikes: np.ndarray | None = None
    V_hold: np.ndarray | None = None
    source: str = ""
    sweep_start: np.ndarray | None = None
    notes: tuple[str, ...] = ()

    @property
    def dt(self) -> float:
        """The sampling interval (ms)."""
        return float(self.t[1] - self.t[0])

    def raster(self) -> np.ndarray:
        """Spike counts per sample, shape `(time, k)`: the same spikes drive every trace
        (sample $i$ holds the spikes nearest to `t[i]`, counting from `t[0]`)."""
        if self.spikes is None:
            raise RecordingError(
                f"{self.source or 'the recording'} has no spike times; give them with "
                "load_recording(..., spikes=...) or a 'spikes' column."
            )
        rows = np.round((self.spikes - self.t[0]) / self.dt).astype(int)
        counts = np.zeros(self.t.shape)
        np.add.at(counts, rows, 1.0)
        return np.repeat(counts[:, None], self.traces.shape[1], axis=1)

    def with_spikes(self, spikes) -> "Recording":
        """A copy with the spike times `spikes` (ms), checked against the time axis."""
        return dataclasses.replace(self, spikes=_check_spikes(spikes, self.t, self.source))


def example_path() -> Path:
    """The path of the example recording shipped with jsyn: a dual-exponential PSC train
    (`t` in ms, `I` in pA, `spikes` 0/1; `V_hold = -70` mV; see `jsyn/data/README.md`)."""
    return Path(str(resources.files("jsyn") / "data" / EXAMPLE))


def _fail(source, what: str) -> RecordingError:
    return RecordingError(f"{source}: {what}")


def _read_text(path: Path) -> str:
    if not path.exists():
        raise _fail(path, "file not found; check the path")
    if path.is_dir():
        raise _fail(path, "is a folder, not a file")
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise _fail(path, f"cannot be read as text ({err.__class__.__name__}: {err})") from None


def _number(text: str, source, column: str, line: int) -> float:
    try:
        return float(text)
    except ValueError:
        raise _fail(
            source, f"line {line}, column {column!r}: {text.strip()!r} is not a number"
        ) from None


def _place(lines: np.ndarray | None, i: int) -> str:
    """Where sample `i` is: its line in a text file, or its index in an array file."""
    return f"sample {i}" if lines is None else f"line {int(lines[i])}"


def _check_values(source, name: str, values: np.ndarray, t, lines=None) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad.reshape(len(values), -1).any(axis=1))[0])
        at = "" if t is None else f" (t = {t[i]:g} ms)"
        raise _fail(
            source,
            f"{name} has {int(bad.sum())} NaN or infinite samples, the first at "
            f"{_place(lines, i)}{at}; drop or interpolate them before fitting",
        )


def _check_time(source, t: np.ndarray, lines=None) -> None:
    if t.ndim != 1 or t.size < 2:
        raise _fail(source, f"needs a time column with at least 2 samples (got shape {t.shape})")
    _check_values(source, "the time column", t, None, lines)
    steps = np.diff(t)
    dt = steps[0]
    uneven = np.abs(steps - dt) > 1e-6 * abs(dt) + 1e-9 * np.abs(t[1:])
    if dt <= 0 or uneven.any():
        i = int(np.flatnonzero(uneven)[0]) if uneven.any() else 0
        raise _fail(
            source,
            f"the time column must increase in even steps (ms); the step from "
            f"{_place(lines, i)} to {_place(lines, i + 1)} is {steps[i]:g} ms, the first is "
            f"{dt:g} ms; resample the recording",
        )
    if dt < MIN_DT:
        _warn(
            source,
            f"the time step is {dt:g} ms, below {MIN_DT:g} ms (sampling above 1 MHz); is "
            "the time column in seconds? jsyn reads time in ms: multiply it by 1000",
        )


def _check_spikes(spikes, t: np.ndarray, source, *, counted: bool = False) -> np.ndarray:
    """The spike times, sorted, checked to lie on the recording; unless `counted` (they
    come from a column of counts per sample), several in one sample warn of seconds."""
    spikes = np.atleast_1d(np.asarray(spikes, dtype=float))
    if spikes.ndim != 1:
        raise _fail(source, f"spike times must be a list (got shape {spikes.shape})")
    if not np.all(np.isfinite(spikes)):
        raise _fail(source, "spike times contain NaN or infinite values; remove them")
    half = 0.5 * (t[1] - t[0])
    outside = (spikes < t[0] - half) | (spikes > t[-1] + half)
    if outside.any():
        raise _fail(
            source,
            f"spike time {spikes[outside][0]:g} ms lies outside the recording "
            f"[{t[0]:g}, {t[-1]:g}] ms; spike times are in ms, on the recording's clock",
        )
    spikes = np.sort(spikes)
    if not counted:
        _check_crowding(source, spikes, t)
    return spikes


def _check_crowding(source, spikes: np.ndarray, t: np.ndarray) -> None:
    rows = np.round((spikes - t[0]) / (t[1] - t[0]))
    shared = rows[1:] == rows[:-1]
    if shared.any():
        i = int(np.flatnonzero(shared)[0])
        counts = np.unique(rows, return_counts=True)[1]
        _warn(
            source,
            f"{int(counts[counts > 1].sum())} spike times share a sample with another (the "
            f"first: {spikes[i]:g} and {spikes[i + 1]:g} ms, sample {int(rows[i])}); are the "
            "spike times in seconds? jsyn reads them in ms: multiply them by 1000",
        )


def _check_V_hold(source, V_hold: np.ndarray) -> None:
    small = (V_hold != 0.0) & (np.abs(V_hold) < 1.0)
    if small.any():
        v = float(V_hold[small][0])
        _warn(
            source,
            f"V_hold = {v:g} mV lies between -1 and 1 mV; is it in volts? jsyn reads mV: "
            f"give {1000 * v:g}",
        )


def _parse_V_hold(text: str, source, line: int) -> np.ndarray:
    return np.asarray(
        [_number(v, source, "V_hold", line) for v in text.replace(",", " ").split()],
        dtype=float,
    )


def _load_csv(path: Path, need_traces: bool = True) -> Recording:
    text = _read_text(path)
    V_hold = None
    rows, numbers = [], []  # the fields of each header or data line, and its line number
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("#"):
            key, _, value = line[1:].partition("=")
            if key.strip() == "V_hold":
                V_hold = _parse_V_hold(value, path, number)
            continue
        if line:
            rows.extend(csv.reader([line]))
            numbers.append(number)
    if len(rows) < 3:
        raise _fail(path, "needs a header row and at least 2 rows of samples")
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header) or "" in header:
        raise _fail(path, f"the header must name every column once (got {header})")
    lines = np.asarray(numbers[1:])
    data = np.empty((len(rows) - 1, len(header)))
    for r, (row, number) in enumerate(zip(rows[1:], numbers[1:])):
        if len(row) != len(header):
            raise _fail(
                path,
                f"line {number} has {len(row)} fields but the header (line {numbers[0]}) "
                f"has {len(header)}; every line needs one value per column",
            )
        for c, cell in enumerate(row):
            data[r, c] = _number(cell, path, header[c], number)
    lower = [h.lower() for h in header]
    t_col = lower.index("t") if "t" in lower else lower.index("time") if "time" in lower else 0
    t = data[:, t_col]
    _check_time(path, t, lines)
    spikes = None
    trace_cols = [c for c in range(len(header)) if c != t_col and lower[c] != "spikes"]
    if "spikes" in lower:
        column = data[:, lower.index("spikes")]
        _check_values(path, "column 'spikes'", column, t, lines)
        bad = (column < 0) | (column != np.round(column))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _fail(
                path,
                f"column 'spikes' must hold spike counts per sample (0, 1, ...); line "
                f"{int(lines[i])} holds {column[i]:g}",
            )
        spikes = np.repeat(t, column.astype(int))
    if not trace_cols and need_traces:
        raise _fail(path, "has no trace column besides time and spikes")
    traces = data[:, trace_cols]
    for j, c in enumerate(trace_cols):
        _check_values(path, f"column {header[c]!r}", traces[:, j], t, lines)
    names = tuple(header[c] for c in trace_cols)
    return checked_recording(path, t, traces, names, spikes, V_hold, counted=True)


def _load_npz(path: Path) -> Recording:
    if not path.exists():
        raise _fail(path, "file not found; check the path")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as err:
        raise _fail(path, f"is not a readable .npz file ({err})") from None
    for key in ("t", "traces"):
        if key not in arrays:
            raise _fail(path, f"has no array {key!r} (found {sorted(arrays)}); see jsyn.io")
    try:
        t = np.asarray(arrays["t"], dtype=float)
        traces = np.asarray(arrays["traces"], dtype=float)
    except (TypeError, ValueError):
        raise _fail(path, "arrays 't' and 'traces' must be numeric") from None
    _check_time(path, t)
    if traces.ndim == 1:
        traces = traces[:, None]
    if traces.ndim != 2 or traces.shape[0] != t.size:
        raise _fail(
            path,
            f"'traces' has shape {traces.shape} but 't' has {t.size} samples; "
            "give traces of shape (time,) or (time, k) matching t",
        )
    _check_values(path, "'traces'", traces, t)
    names = arrays.get("names")
    names = (
        tuple(str(n) for n in np.atleast_1d(names))
        if names is not None
        else tuple(f"trace{j}" for j in range(traces.shape[1]))
    )
    if len(names) != traces.shape[1]:
        raise _fail(path, f"'names' has {len(names)} entries for {traces.shape[1]} traces")
    V_hold = arrays.get("V_hold")
    spikes = arrays.get("spikes")
    if spikes is not None and _is_raster(spikes, t):
        raise _fail(
            path,
            f"'spikes' holds one 0/1 value per sample ({spikes.size} values, the CSV layout), "
            "but an .npz holds spike times (ms); save spikes=t[raster > 0] instead",
        )
    return checked_recording(path, t, traces, names, spikes, V_hold)


def _is_raster(spikes, t: np.ndarray) -> bool:
    """A 1-D array of 0s and 1s as long as the time axis: a raster, not spike times."""
    a = np.asarray(spikes)
    return a.shape == t.shape and bool(np.isin(a, (0, 1)).all())


def checked_recording(
    source, t, traces, names, spikes, V_hold, *, counted=False, sweep_start=None, notes=()
) -> Recording:
    """A `Recording` of arrays a reader has checked (time, traces), with the spike times
    and holding potentials checked here (`counted`: spikes from counts per sample)."""
    if spikes is not None:
        spikes = _check_spikes(spikes, t, source, counted=counted)
    if V_hold is not None:
        V_hold = np.atleast_1d(np.asarray(V_hold, dtype=float))
        if V_hold.size == 1:
            V_hold = np.repeat(V_hold, traces.shape[1])
        if V_hold.shape != (traces.shape[1],) or not np.all(np.isfinite(V_hold)):
            raise _fail(
                source,
                f"V_hold must be one finite value or one per trace ({traces.shape[1]}); "
                f"got {V_hold.tolist()}",
            )
        _check_V_hold(source, V_hold)
    return Recording(
        t=t,
        traces=traces,
        names=tuple(names),
        spikes=spikes,
        V_hold=V_hold,
        source=str(source),
        sweep_start=sweep_start,
        notes=tuple(notes),
    )


def load_recording(
    path, *, spikes=None, V_hold=None, columns=None, channel=None, sweeps=None
) -> Recording:
    """Read a recording from a `.csv`, `.npz`, `.abf` (`jsyn.io.load_abf`, extra `abf`)
    or `.nwb` (`jsyn.io.load_nwb`, extra `nwb`) file (see the module docstring).

    **Arguments:**
    - `path`: the file.
    - `channel`, `sweeps`: for ABF and NWB files, the channel (ABF: ADC index, default 0;
      NWB: the name of the series' electrode or of one series) and the sweeps
      (`"0-9"`, default all), one trace each.
    - `spikes`: spike times (ms) or a spike file (`load_spikes`), replacing any in the file.
    - `V_hold`: holding potential(s) (mV), replacing any in the file (one value, or one
      per kept trace).
    - `columns`: the names of the traces to keep, in this order (a sequence, or one
      comma-separated string); default all. A per-trace `V_hold` of the file is kept
      for the chosen traces.

    **Raises:** `RecordingError` with a one-line message.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if (channel is not None or sweeps is not None) and suffix not in (".abf", ".nwb"):
        raise _fail(path, "channel= and sweeps= are for .abf and .nwb files; use columns=")
    if suffix == ".npz":
        rec = _load_npz(path)
    elif suffix in (".csv", ".txt", ".tsv"):
        rec = _load_csv(path)
    elif suffix == ".abf":
        from .abf import load_abf

        rec = load_abf(path, channel=0 if channel is None else int(channel), sweeps=sweeps)
    elif suffix == ".nwb":
        from .nwb import load_nwb

        rec = load_nwb(path, series=channel, sweeps=sweeps)
    else:
        raise _fail(path, f"unknown format {suffix!r}; use a .csv, .npz, .abf or .nwb file")
    if columns is not None:
        rec = _select(rec, columns)
    if spikes is not None:
        if isinstance(spikes, str | Path):
            spikes = load_spikes(spikes, t=rec.t)
        rec = rec.with_spikes(spikes)
    if V_hold is not None:
        rec = checked_recording(
            rec.source,
            rec.t,
            rec.traces,
            rec.names,
            rec.spikes,
            V_hold,
            counted=True,  # checked already
            sweep_start=rec.sweep_start,
            notes=rec.notes,
        )
    return rec


def _select(rec: Recording, columns) -> Recording:
    if isinstance(columns, str):
        columns = [c.strip() for c in columns.split(",") if c.strip()]
    columns = list(columns)
    unknown = [c for c in columns if c not in rec.names]
    if unknown or not columns or len(set(columns)) != len(columns):
        why = f"no column {unknown[0]!r}" if unknown else "pick each column once"
        raise _fail(
            rec.source,
            f"{why} (asked for {', '.join(columns) or 'none'}); the trace columns are "
            f"{', '.join(rec.names)}",
        )
    idx = [rec.names.index(c) for c in columns]
    return dataclasses.replace(
        rec,
        traces=rec.traces[:, idx],
        names=tuple(columns),
        V_hold=None if rec.V_hold is None else rec.V_hold[idx],
    )


def load_spikes(path, *, t: np.ndarray | None = None) -> np.ndarray:
    """Spike times (ms) from a file: text or CSV of times (one per line, or separated by
    commas/whitespace, optional header line), `.npy`, or a CSV with a 0/1 `spikes` column
    and a time column. With `t`, the times are checked to lie inside it.

    **Raises:** `RecordingError` with a one-line message.
    """
    path = Path(path)
    counted = False  # times from a column of counts per sample
    if path.suffix.lower() == ".npy":
        if not path.exists():
            raise _fail(path, "file not found; check the path")
        try:
            times = np.asarray(np.load(path, allow_pickle=False), dtype=float)
        except (OSError, ValueError) as err:
            raise _fail(path, f"is not a readable .npy file of spike times ({err})") from None
        if times.ndim > 1:
            raise _fail(
                path,
                f"spike times must be a 1-D array (got shape {times.shape}); save one "
                "list of times (ms), for example np.save(path, times.ravel()) if that is "
                "what the array holds",
            )
        times = np.atleast_1d(times)
    else:
        text = _read_text(path)
        lines = [
            (number, ln.strip())
            for number, ln in enumerate(text.splitlines(), start=1)
            if ln.strip() and not ln.strip().startswith("#")
        ]
        header = lines[0][1].lower().replace(" ", "") if lines else ""
        if "spikes" in header.split(",") and len(header.split(",")) > 1:
            times, counted = _load_csv(path, need_traces=False).spikes, True
        else:
            if lines and not _is_number(lines[0][1].replace(",", " ").split()[0]):
                lines = lines[1:]
            times = np.asarray(
                [
                    _number(v, path, "spike times", number)
                    for number, line in lines
                    for v in line.replace(",", " ").split()
                ],
                dtype=float,
            )
    if times.size == 0:
        raise _fail(path, "holds no spike times")
    if t is not None:
        return _check_spikes(times, np.asarray(t, dtype=float), path, counted=counted)
    if not np.all(np.isfinite(times)):
        raise _fail(path, "spike times contain NaN or infinite values; remove them")
    return np.sort(times)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def save_recording(path, rec: Recording) -> Path:
    """Write `rec` so that `load_recording` reads back exactly the same values.

    - `.npz`: the arrays `t`, `traces`, `names`, and `spikes`, `V_hold` when present, as
      they are (no pickle).
    - `.csv` (any other suffix): a `# V_hold = ...` comment, the header `t,<names>` (and
      `spikes`), one row per sample. Numbers are written with Python's shortest exact form
      (`repr`), so they read back bit for bit. The `spikes` column counts the spikes of each
      sample, so every spike time must equal a sample time; other spike times raise
      `RecordingError` (save as `.npz`, which keeps them exactly).

    **Returns:** the path written.
    """
    path = Path(path)
    if path.suffix.lower() == ".npz":
        extra = {} if rec.spikes is None else {"spikes": rec.spikes}
        if rec.V_hold is not None:
            extra["V_hold"] = rec.V_hold
        np.savez(path, t=rec.t, traces=rec.traces, names=np.asarray(rec.names, dtype=str), **extra)
        return path
    names = list(rec.names)
    clash = [n for n in names if n == "t" or n.lower() == "spikes" or n != n.strip() or not n]
    if clash or len(set(names)) != len(names) or any("\n" in n or "\r" in n for n in names):
        raise _fail(
            path,
            f"trace names {names} cannot be CSV column names (each must be unique, non-empty, "
            "one line without surrounding spaces, and not 't' or 'spikes'); rename them or "
            "save as .npz",
        )
    columns = [rec.t[:, None], rec.traces]
    if rec.spikes is not None:
        columns.append(_spike_counts(path, rec)[:, None])
        names.append("spikes")
    with path.open("w", newline="") as f:
        if rec.V_hold is not None:
            f.write(f"# V_hold = {', '.join(repr(float(v)) for v in rec.V_hold)}\n")
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["t", *names])
        writer.writerows(np.hstack(columns).tolist())  # floats as repr: exact
    return path


def _spike_counts(path: Path, rec: Recording) -> np.ndarray:
    """Spikes per sample for a CSV `spikes` column; every spike time must be a sample time."""
    rows = np.minimum(np.searchsorted(rec.t, rec.spikes), rec.t.size - 1)
    off = rec.t[rows] != rec.spikes
    if off.any():
        s = float(rec.spikes[off][0])
        near = float(rec.t[np.argmin(np.abs(rec.t - s))])
        raise _fail(
            path,
            f"spike time {s!r} ms is not a sample time (the nearest is {near!r} ms); a CSV "
            "'spikes' column counts spikes per sample and would move it: save as .npz, "
            "which keeps spike times exactly",
        )
    return np.bincount(rows, minlength=rec.t.size).astype(float)
