r"""Figures of jsyn's results, drawn with matplotlib.

Every function takes the arrays to draw (NumPy or JAX), an optional `ax` to draw into, and
returns the axes it drew on; without `ax` it draws on a new figure (`plt.subplots`). Nothing
reads or changes matplotlib's current figure, current axes or rc settings, so the functions
compose into any layout:

```python
import matplotlib.pyplot as plt
import jsyn.plot

fig, (ax_v, ax_g) = plt.subplots(2, 1, sharex=True)
jsyn.plot.traces(t, V, ylabel="V (mV)", spikes=pre_times, ax=ax_v)
jsyn.plot.conductance(t, g, g_max=0.5, spikes=pre_times, ax=ax_g)   # axis in nS
```

Axes say what they show: time in ms, potentials in mV, currents into the cell in pA, and a
synapse's output $g$ either as the dimensionless open fraction (the synapse's output as it
comes) or as a conductance in nS once multiplied by `g_max`. Row $i$ of a recording is the
value at $t_i = t_0 + i\,\Delta t$, as `jsyn.simulate` returns it.

Bad input (traces whose length differs from the time axis, labels that do not match the
traces, a non-positive `dt`) raises a `ValueError` that names the sizes and the fix.
"""

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes

__all__ = ["conductance", "fit", "iv", "losses", "raster", "traces"]

OPEN_FRACTION = "open fraction g"
"""The axis label of a synapse's dimensionless output $g$."""
CONDUCTANCE = r"conductance $g_{max}\,g$ (nS)"
r"""The axis label of $g_{max}\,g$, in nS."""
CURRENT = "current into the cell (pA)"
"""The axis label of a synaptic current (positive depolarises)."""
TIME = "time (ms)"
"""The axis label of time."""
SPIKE_COLOR = "0.8"
"""The colour of the spike marks of `traces` and `conductance`."""


def _new_axes(nrows: int = 1, **kwargs):
    import matplotlib.pyplot as plt  # only when the caller gave no axes

    _, ax = plt.subplots(nrows, 1, layout="constrained", **kwargs)
    return ax


def _time(t) -> np.ndarray:
    t = np.asarray(t, dtype=float)
    if t.ndim != 1:
        raise ValueError(f"t must be 1-d, the sample times in ms (got shape {t.shape}).")
    return t


def _columns(t: np.ndarray, y, name: str, axis: str = "t") -> np.ndarray:
    """`y` as a `(time, k)` array whose first axis matches `t` (called `axis` in errors)."""
    y = np.asarray(y, dtype=float)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2:
        raise ValueError(
            f"{name} must have shape (time,) or (time, k) (got shape {y.shape}); "
            "index one trial or cell of a batched recording first."
        )
    if y.shape[0] != t.shape[0]:
        raise ValueError(
            f"{name} has {y.shape[0]} samples but {axis} has {t.shape[0]}; give one row of "
            f"{name} per entry of {axis} (the leading axis)."
        )
    return y


def _labels(labels, k: int, name: str) -> list:
    if labels is None:
        return [None] * k
    if isinstance(labels, str):
        labels = [labels]
    labels = list(labels)
    if len(labels) != k:
        raise ValueError(f"{len(labels)} labels for {k} {name}; give one label per column.")
    return labels


def _mark_spikes(ax: Axes, spikes) -> None:
    if spikes is None:
        return
    times = np.asarray(spikes, dtype=float)
    if times.ndim != 1:
        raise ValueError(
            f"spikes must be a 1-d array of spike times in ms (got shape {times.shape}); "
            "for a (time, n) raster use jsyn.plot.raster, or pass t[raster[:, j] > 0]."
        )
    transform = ax.get_xaxis_transform()  # x in ms, y from the bottom to the top of the axes
    ax.vlines(times, 0, 1, transform=transform, color=SPIKE_COLOR, lw=0.8, zorder=0, label="spikes")


def traces(
    t,
    y,
    *,
    ylabel: str | None = None,
    labels: Sequence[str] | str | None = None,
    spikes=None,
    ax: Axes | None = None,
    **line_kwargs,
) -> Axes:
    """Traces against time, with the spike times marked as grey vertical lines.

    **Arguments:**
    - `t`: sample times (ms), shape `(time,)`.
    - `y`: the traces, shape `(time,)` or `(time, k)`: one line per column.
    - `ylabel`: the y-axis label, with its unit (e.g. `"V (mV)"`).
    - `labels`: one legend label per column (the legend is left to the caller).
    - `spikes`: spike times (ms) to mark, shape `(n_spikes,)`, e.g. `t[pre_spikes > 0]`.
      They are drawn as one `LineCollection` behind the traces, labelled `"spikes"`.
    - `ax`: the axes to draw on (default: a new figure).
    - `line_kwargs`: passed to `ax.plot` for every trace (`color`, `lw`, ...).

    **Returns:** the axes; `ax.lines[j]` is column `j` of `y`.
    """
    t = _time(t)
    y = _columns(t, y, "y")
    labels = _labels(labels, y.shape[1], "traces")
    ax = _new_axes() if ax is None else ax
    for column, label in zip(y.T, labels):
        ax.plot(t, column, label=label, **line_kwargs)
    _mark_spikes(ax, spikes)
    ax.set_xlabel(TIME)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    return ax


def conductance(
    t,
    g,
    *,
    g_max=None,
    labels: Sequence[str] | str | None = None,
    spikes=None,
    ax: Axes | None = None,
    **line_kwargs,
) -> Axes:
    r"""A synapse's output $g$ against time, on an axis that says what it is.

    Without `g_max` the axis shows $g$ as it comes from the synapse: a dimensionless open
    fraction (a peak of 1 per spike for the normalised linear kinetics, a fraction of open
    channels between 0 and 1 for the receptor models). With `g_max` (nS, a scalar or one
    value per column) it shows the conductance $g_{max}\,g$ in nS.

    **Arguments:**
    - `t`: sample times (ms), shape `(time,)`.
    - `g`: the synapse's output, shape `(time,)` or `(time, k)`.
    - `g_max`: maximal conductance (nS), or `None` for the open fraction.
    - `labels`, `spikes`, `ax`, `line_kwargs`: as in `traces`.

    **Returns:** the axes; `ax.lines[j]` is column `j` (times `g_max` when given).
    """
    t = _time(t)
    g = _columns(t, g, "g")
    if g_max is None:
        return traces(
            t, g, ylabel=OPEN_FRACTION, labels=labels, spikes=spikes, ax=ax, **line_kwargs
        )
    g_max = np.asarray(g_max, dtype=float)
    if g_max.ndim > 1 or g_max.size not in (1, g.shape[1]):
        raise ValueError(
            f"g_max must be a scalar or one value per column of g ({g.shape[1]}); "
            f"got shape {g_max.shape}."
        )
    return traces(
        t, g * g_max, ylabel=CONDUCTANCE, labels=labels, spikes=spikes, ax=ax, **line_kwargs
    )


def raster(
    spikes: Mapping[str, object] | object,
    dt: float,
    *,
    t0: float = 0.0,
    ax: Axes | None = None,
    **marker_kwargs,
) -> Axes:
    r"""A spike raster: a mark at $(t_i, j)$ for every spike of neuron $j$ in row $i$.

    **Arguments:**
    - `spikes`: a `(time, n)` array of spikes per step (0/1 or counts; a row's time is
      $t_i = t_0 + i\,\Delta t$), or a mapping `{group name: (time, n) array}`, drawn one
      above the other in the mapping's order, each group in its own colour and labelled
      with its name (e.g. the `E` and `I` groups of a network recording).
    - `dt`: the time step (ms), > 0.
    - `t0`: the time of row 0 (ms).
    - `ax`: the axes to draw on (default: a new figure).
    - `marker_kwargs`: passed to `ax.plot` (`ms`, `color`, ...).

    **Returns:** the axes; `ax.lines[k]` holds group `k`'s spikes, x the spike times (ms)
    and y the neuron indices (counting on from the groups below it).
    """
    dt = float(dt)
    if not np.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt must be a finite time step > 0 in ms (got {dt}).")
    groups = dict(spikes) if isinstance(spikes, Mapping) else {None: spikes}
    ax = _new_axes() if ax is None else ax
    offset = 0
    for name, group in groups.items():
        group = np.asarray(group)
        if group.ndim != 2:
            what = "spikes" if name is None else f"spikes[{name!r}]"
            raise ValueError(
                f"{what} must have shape (time, n) (got shape {group.shape}); "
                "add a neuron axis with x[:, None] for a single cell."
            )
        rows, cells = np.nonzero(group)
        style = {"marker": "|", "ls": "none", "ms": 4, **marker_kwargs}
        ax.plot(t0 + rows * dt, cells + offset, label=name, **style)
        offset += group.shape[1]
    ax.set_xlabel(TIME)
    ax.set_ylabel("neuron")
    ax.set_ylim(-0.5, max(offset, 1) - 0.5)
    return ax


def fit(
    t,
    data,
    fitted,
    *,
    labels: Sequence[str] | str | None = None,
    spikes=None,
    quantity: str = "current into the cell",
    unit: str = "pA",
    ax=None,
) -> tuple[Axes, Axes]:
    """Recorded traces with the fitted model on top, and the residuals below.

    **Arguments:**
    - `t`: sample times (ms), shape `(time,)`.
    - `data`, `fitted`: the recording and the model's prediction, shape `(time,)` or
      `(time, k)` (the same shape).
    - `labels`: one name per trace (legend entries `"<name> (data)"`, `"<name> (fit)"`;
      without names `"data"` and `"fit"`).
    - `spikes`: presynaptic spike times (ms) to mark on both panels.
    - `quantity`, `unit`: what the traces are, for the axis labels (default: the current
      into the cell, pA).
    - `ax`: a pair `(ax_fit, ax_residuals)` to draw on (default: a new figure with two
      panels sharing the time axis).

    **Returns:** `(ax_fit, ax_residuals)`. On `ax_fit`, `lines[2j]` is trace `j` of the data
    and `lines[2j + 1]` its fit; `ax_residuals.lines[j]` is `data - fitted` of trace `j`,
    and `ax_residuals.lines[k]` (after the `k` residuals) the zero line.
    """
    t = _time(t)
    data = _columns(t, data, "data")
    fitted = _columns(t, fitted, "fitted")
    if data.shape != fitted.shape:
        raise ValueError(
            f"data has {data.shape[1]} traces but fitted has {fitted.shape[1]}; "
            "simulate the fitted model with the recording's inputs."
        )
    names = _labels(labels, data.shape[1], "traces")
    if ax is None:
        ax = _new_axes(2, sharex=True, height_ratios=(3, 1))
    try:
        ax_fit, ax_res = ax
    except (TypeError, ValueError):
        raise ValueError(
            f"ax must be a pair of axes (ax_fit, ax_residuals) (got {ax!r}); e.g. "
            "fig.subplots(2, 1, sharex=True)."
        ) from None
    for j, (d, f, name) in enumerate(zip(data.T, fitted.T, names)):
        data_label, fit_label = (
            ("data", "fit") if name is None else (f"{name} (data)", f"{name} (fit)")
        )
        ax_fit.plot(t, d, color="0.6", lw=0.8, label=data_label)
        ax_fit.plot(t, f, color=f"C{j}", lw=1.5, label=fit_label)
        ax_res.plot(t, d - f, color=f"C{j}", lw=0.6)
    ax_res.axhline(0.0, color="k", lw=0.5)
    for a in (ax_fit, ax_res):
        _mark_spikes(a, spikes)
    ax_fit.set_ylabel(f"{quantity} ({unit})")
    ax_res.set_ylabel(f"residual ({unit})")
    ax_res.set_xlabel(TIME)
    return ax_fit, ax_res


def losses(history, *, unit: str = "pA", ax: Axes | None = None) -> Axes:
    """The loss after each optimiser step (log scale), e.g. `FitResult.losses()`.

    **Arguments:**
    - `history`: the losses, shape `(steps,)`; `history[0]` is the loss at the initial guess.
    - `unit`: the unit of the fitted traces; the mean squared error is in its square.
    - `ax`: the axes to draw on (default: a new figure).

    **Returns:** the axes; `ax.lines[0]` is the history against the step number.
    """
    history = np.asarray(history, dtype=float)
    if history.ndim != 1:
        raise ValueError(
            f"history must be 1-d, one loss per step (got shape {history.shape}); "
            "plot one fit of a fit_many result at a time."
        )
    ax = _new_axes() if ax is None else ax
    ax.semilogy(np.arange(history.size), history, "o-", ms=3)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel(f"mean squared error ({unit}²)")
    return ax


def iv(
    V,
    I,
    *,
    labels: Sequence[str] | str | None = None,
    ax: Axes | None = None,
    **line_kwargs,
) -> Axes:
    """A current–voltage curve: the current into the cell against the membrane potential,
    with the zero-current line (where a curve crosses it is its reversal potential).

    ```python
    V = np.linspace(-100.0, 40.0, 141)
    jsyn.plot.iv(V, jsyn.MgBlock(g_max=1.0).current(1.0, V))   # the NMDA I-V, g = 1
    ```

    **Arguments:**
    - `V`: membrane (or holding) potentials (mV), shape `(n_V,)`.
    - `I`: currents into the cell (pA), shape `(n_V,)` or `(n_V, k)`: one curve per column.
    - `labels`: one legend label per curve.
    - `ax`: the axes to draw on (default: a new figure).
    - `line_kwargs`: passed to `ax.plot` for every curve.

    **Returns:** the axes; `ax.lines[j]` is curve `j`, then the zero line.
    """
    V = np.asarray(V, dtype=float)
    if V.ndim != 1:
        raise ValueError(f"V must be 1-d, the potentials in mV (got shape {V.shape}).")
    I = _columns(V, I, "I", axis="V")
    labels = _labels(labels, I.shape[1], "curves")
    ax = _new_axes() if ax is None else ax
    for column, label in zip(I.T, labels):
        ax.plot(V, column, label=label, **line_kwargs)
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set_xlabel("membrane potential V (mV)")
    ax.set_ylabel(CURRENT)
    return ax
