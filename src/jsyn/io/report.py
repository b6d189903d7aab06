"""What `jsyn fit` reports beside the fitted values: response amplitudes and paired-pulse
ratios, and the rise of a difference of exponentials as the shorter time constant."""

import numpy as np


def pulse_amplitudes(t, trace, stim, weights=None, *, at=None, half_width: int = 2):
    r"""The amplitude of the response to each stimulus of a train (pA, signed as `trace`).

    The response to stimulus $s_i$ is looked for in $[s_i, s_{i+1})$ (the last one up to
    the end of the trace), among samples of positive weight; its amplitude is the mean of
    `trace` over `half_width` samples either side of its largest magnitude, or of the
    samples `at` (one index per stimulus: measure the data where the fit peaks, so that
    the noise does not bias the data's amplitudes upwards).

    **Returns:** `(amplitudes, indices)`, one per stimulus.
    """
    t, trace = np.asarray(t, dtype=float), np.asarray(trace, dtype=float)
    w = np.ones_like(trace) if weights is None else np.asarray(weights, dtype=float).ravel()
    edges = np.concatenate([np.asarray(stim, dtype=float), [np.inf]])
    amplitudes, indices = [], []
    for i in range(len(stim)):
        if at is None:
            inside = np.flatnonzero((t >= edges[i]) & (t < edges[i + 1]) & (w > 0))
            k = int(inside[np.argmax(np.abs(trace[inside]))]) if inside.size else 0
        else:
            k = int(at[i])
        lo, hi = max(k - half_width, 0), min(k + half_width + 1, trace.size)
        amplitudes.append(float(trace[lo:hi].mean()))
        indices.append(k)
    return np.asarray(amplitudes), np.asarray(indices)


def paired_pulse_ratios(amplitudes) -> np.ndarray:
    """$A_n / A_1$ for $n \\ge 2$ (NaN when $A_1 = 0$)."""
    a = np.asarray(amplitudes, dtype=float)
    if a[0] == 0:
        return np.full(a.size - 1, np.nan)
    return a[1:] / a[0]


def rise_first(values: dict, prefix: str = "") -> tuple[dict, bool]:
    """`values` (`{name: entry}`) with the entries of `<prefix>tau_rise` and
    `<prefix>tau_decay` swapped when the fitted rise is the longer: a normalised difference
    of exponentials (`DualExpon`) is the same current with its two time constants
    exchanged, so the rise is reported as the shorter one (the fit is not constrained).

    **Returns:** `(values, swapped)`; each entry is a dict with a `"value"`.
    """
    rise, decay = f"{prefix}tau_rise", f"{prefix}tau_decay"
    if rise not in values or decay not in values:
        return values, False
    if values[rise]["value"] <= values[decay]["value"]:
        return values, False
    out = dict(values)
    out[rise], out[decay] = values[decay], values[rise]
    return out, True
