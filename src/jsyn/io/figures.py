"""The figure of `jsyn fit`: the whole train with the fit, its residuals, the first
response zoomed, and the loss history."""

from pathlib import Path

import numpy as np

ZOOM = (2.0, 20.0)
"""The zoomed panel shows from `ZOOM[0]` ms before to `ZOOM[1]` ms after the first
stimulus (cut at the second)."""


def plot_recording_fit(path, fit) -> Path:
    """Draw `fit` (a `jsyn.io.RecordingFit`) into the PNG `path`: top, the data (grey where
    blanked) and the fit over the whole train with the stimuli marked; below, the
    residuals; then the first response zoomed, and the loss history (one fit). With
    `per_sweep`, the first sweep is drawn. Returns `path`."""
    from matplotlib.figure import Figure

    import jsyn.plot

    train, res = fit.train, fit.result
    single = not np.ndim(res.loss)
    fitted = fit.fitted if single else fit.fitted[0]
    target = train.target if single else train.target[:, :1]
    fig = Figure(figsize=(9, 9), layout="constrained")
    rows = (3, 1.2, 2.2, 1.4) if single else (3, 1.2, 2.2)
    axes = fig.subplots(len(rows), 1, height_ratios=rows)
    quantity = "membrane current, inward negative" if fit.convention == "clamp" else None
    jsyn.plot.fit(
        train.t,
        target,
        fitted,
        labels=train.names if single else train.names[:1],
        spikes=train.stim,
        ax=(axes[0], axes[1]),
        **({} if quantity is None else {"quantity": quantity}),
    )
    axes[0].legend(fontsize="small")
    axes[1].set_xlabel("time from the sweep's start (ms); grey: stimuli")
    _zoom(axes[2], train, target, fitted)
    if single:
        jsyn.plot.losses(res.losses(), ax=axes[3])
    fig.suptitle(_title(fit), fontsize="small", wrap=True)
    fig.savefig(path, dpi=100)
    return Path(path)


def _zoom(ax, train, target, fitted) -> None:
    s0 = train.stim[0]
    end = s0 + ZOOM[1] if train.stim.size < 2 else min(s0 + ZOOM[1], train.stim[1])
    inside = (train.t >= s0 - ZOOM[0]) & (train.t <= end)
    blanked = inside & (train.weights[:, 0] == 0)
    for j in range(target.shape[1]):
        shown = np.where(blanked, np.nan, target[:, j])
        ax.plot(train.t[inside], shown[inside], lw=0.8, label=f"{train.names[j]} (data)")
        ax.plot(train.t[inside], fitted[inside, j], lw=1.5, label=f"{train.names[j]} (fit)")
    ax.axvline(s0, color="0.6", lw=0.8)
    ax.set_xlabel("time (ms): the first response; blanked samples left out")
    ax.set_ylabel("current (pA)")
    ax.set_title("first response", fontsize="small")


def _title(fit) -> str:
    parts = []
    for name, e in fit.values.items():
        v, lo, hi = (float(np.ravel(e[k])[0]) for k in ("value", "ci_low", "ci_high"))
        parts.append(f"{name.split('.')[-1]} = {v:.3g} [{lo:.3g}, {hi:.3g}]")
    status = np.asarray(fit.result.status).ravel()[0]
    return f"{'; '.join(parts)} ({fit.result.level:.0%} intervals); status: {status}"
