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
"""The axis label of a receptor model's output $g$ (`AMPA`, `GABAa`, `GABAb`, `NMDA`,
`BioNMDA`): the fraction of open channels, in [0, 1]."""
RELATIVE_CONDUCTANCE = r"conductance $g$ (units of $g_{max}$)"
r"""The axis label of a linear kinetics' output $g$ (`Expon`, `Alpha`, `DualExpon`,
`DualExponV2`): a conductance in units of $g_{max}$, one spike of weight 1 peaking at 1, so
summed spikes may exceed 1."""
SYNAPSE_OUTPUT = r"synaptic $g$ (dimensionless; $g_{max}\,g$ in nS)"
"""The default axis label of `conductance` without `g_max`: a synapse's output as it comes,
an open fraction or a conductance in units of `g_max`, depending on the model."""
VOLTAGE = "membrane potential V (mV)"
"""The axis label of a membrane potential, and the default of `traces`."""
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
    ylabel: str = VOLTAGE,
    labels: Sequence[str] | str | None = None,
    spikes=None,
    ax: Axes | None = None,
    **line_kwargs,
) -> Axes:
    """Traces against time, with the spike times marked as grey vertical lines.

    **Arguments:**
    - `t`: sample times (ms), shape `(time,)`.
    - `y`: the traces, shape `(time,)` or `(time, k)`: one line per column.
    - `ylabel`: the y-axis label, with its unit (default `VOLTAGE`, a membrane potential in
      mV; give `CURRENT` or your own for anything else).
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
    ax.set_ylabel(ylabel)
    return ax


def conductance(
    t,
    g,
    *,
    g_max=None,
    ylabel: str | None = None,
    labels: Sequence[str] | str | None = None,
    spikes=None,
    ax: Axes | None = None,
    **line_kwargs,
) -> Axes:
    r"""A synapse's output $g$ against time, on an axis that says what it is.

    Without `g_max` the axis shows $g$ as it comes from the synapse, dimensionless: for the
    receptor models the fraction of open channels, in [0, 1] (say so with
    `ylabel=OPEN_FRACTION`); for the linear kinetics a conductance in units of `g_max`, a
    peak of 1 per spike of weight 1, so summed spikes exceed 1
    (`ylabel=RELATIVE_CONDUCTANCE`). With `g_max` (nS, a scalar or one value per column) it
    shows the conductance $g_{max}\,g$ in nS.

    **Arguments:**
    - `t`: sample times (ms), shape `(time,)`.
    - `g`: the synapse's output, shape `(time,)` or `(time, k)`.
    - `g_max`: maximal conductance (nS), or `None` for $g$ as it comes.
    - `ylabel`: the y-axis label (default: `CONDUCTANCE` with `g_max`, `SYNAPSE_OUTPUT`
      without).
    - `labels`, `spikes`, `ax`, `line_kwargs`: as in `traces`.

    **Returns:** the axes; `ax.lines[j]` is column `j` (times `g_max` when given).
    """
    t = _time(t)
    g = _columns(t, g, "g")
    if g_max is None:
        ylabel = SYNAPSE_OUTPUT if ylabel is None else ylabel
        return traces(t, g, ylabel=ylabel, labels=labels, spikes=spikes, ax=ax, **line_kwargs)
    g_max = np.asarray(g_max, dtype=float)
    if g_max.ndim > 1 or g_max.size not in (1, g.shape[1]):
        raise ValueError(
            f"g_max must be a scalar or one value per column of g ({g.shape[1]}); "
            f"got shape {g_max.shape}."
        )
    ylabel = CONDUCTANCE if ylabel is None else ylabel
    return traces(t, g * g_max, ylabel=ylabel, labels=labels, spikes=spikes, ax=ax, **line_kwargs)


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
      with its name in a legend (e.g. the `E` and `I` groups of a network recording).
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
    if None not in groups:  # the groups are named: say which marks are which
        ax.legend(loc="upper right", fontsize="small", markerscale=2, framealpha=0.9)
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
    zoom: tuple[float, float] | None = None,
    title: str | None = None,
    ax=None,
) -> tuple[Axes, ...]:
    """Recorded traces with the fitted model on top, and the residuals below; optionally a
    zoomed panel in between, where single responses can be read (a train of 30 PSCs over
    a second and a half cannot).

    **Arguments:**
    - `t`: sample times (ms), shape `(time,)`.
    - `data`, `fitted`: the recording and the model's prediction, shape `(time,)` or
      `(time, k)` (the same shape).
    - `labels`: one name per trace (legend entries `"<name> (data)"`, `"<name> (fit)"`;
      without names `"data"` and `"fit"`).
    - `spikes`: presynaptic spike times (ms) to mark on both panels.
    - `quantity`, `unit`: what the traces are, for the axis labels (default: the current
      into the cell, pA).
    - `zoom`: a time window `(start, stop)` (ms) to show data and fit again, enlarged. With
      three axes and no `zoom`, the window is the 50 ms from 5 ms before the first spike
      (or the first 50 ms without spikes).
    - `title`: a title over the top panel, wrapped to the figure's width (fit results with
      their intervals make long ones).
    - `ax`: a pair `(ax_fit, ax_residuals)` or a triple `(ax_fit, ax_zoom, ax_residuals)`
      to draw on (default: a new figure, with two panels, or three with `zoom`).

    **Returns:** `(ax_fit, ax_residuals)`, or `(ax_fit, ax_zoom, ax_residuals)`. On `ax_fit`
    (and `ax_zoom`), `lines[2j]` is trace `j` of the data and `lines[2j + 1]` its fit;
    `ax_residuals.lines[j]` is `data - fitted` of trace `j`, and `ax_residuals.lines[k]`
    (after the `k` residuals) the zero line.
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
    if ax is None and zoom is None:
        ax = _new_axes(2, sharex=True, height_ratios=(3, 1))
    elif ax is None:
        ax = _new_axes(3, height_ratios=(3, 2, 1))
        ax[2].sharex(ax[0])  # the residuals under the whole recording
    panels = _fit_panels(ax)
    ax_fit, ax_res = panels[0], panels[-1]
    shown = [ax_fit] if len(panels) == 2 else [ax_fit, panels[1]]
    for j, (d, f, name) in enumerate(zip(data.T, fitted.T, names)):
        data_label, fit_label = (
            ("data", "fit") if name is None else (f"{name} (data)", f"{name} (fit)")
        )
        for a in shown:
            a.plot(t, d, color="0.6", lw=0.8, label=data_label)
            a.plot(t, f, color=f"C{j}", lw=1.5, label=fit_label)
        ax_res.plot(t, d - f, color=f"C{j}", lw=0.6)
    ax_res.axhline(0.0, color="k", lw=0.5)
    for a in panels:
        _mark_spikes(a, spikes)
    ax_res.set_xlabel(TIME)
    for a in shown:
        a.set_ylabel(f"{quantity} ({unit})")
    ax_res.set_ylabel(f"residual ({unit})")
    if len(panels) == 3:
        start, stop = _zoom_window(t, spikes) if zoom is None else map(float, zoom)
        if not start < stop:
            raise ValueError(
                f"zoom must be a window (start, stop) in ms with start < stop (got {zoom})."
            )
        panels[1].set_xlim(start, stop)
        panels[1].set_xlabel(f"{TIME}, zoomed in")
    if title is not None:
        ax_fit.set_title(title, fontsize="small", wrap=True)
    return panels


def _fit_panels(ax) -> tuple[Axes, ...]:
    try:
        panels = tuple(ax)
    except TypeError:
        panels = ()
    if len(panels) not in (2, 3):
        raise ValueError(
            f"ax must be a pair of axes (ax_fit, ax_residuals) or a triple (ax_fit, ax_zoom, "
            f"ax_residuals) (got {ax!r}); e.g. fig.subplots(2, 1, sharex=True)."
        )
    return panels


def _zoom_window(t: np.ndarray, spikes) -> tuple[float, float]:
    """50 ms from 5 ms before the first spike, or the first 50 ms."""
    times = np.asarray([] if spikes is None else spikes, dtype=float).ravel()
    start = times.min() - 5.0 if times.size else t[0]
    return max(float(start), float(t[0])), max(float(start), float(t[0])) + 50.0


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
