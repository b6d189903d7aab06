r"""Long-term plasticity: the pair-STDP window from a pairing protocol in a network, and the
triplet rule's pairing-frequency curve (Sjöström et al. 2001; Pfister & Gerstner 2006,
Fig. 5), computed event by event with `Pairings`.

`Pairings` runs pairing protocols with one step per spike time, so a protocol of 60
pairings at 0.1 Hz (10 minutes) takes 120 steps, not the 120 000 of a 5 ms grid. Its output
is the weight change of each synapse; it is a system for `jsyn.simulate` and `jsyn.fit`,
so the rule's parameters can be fitted to weight changes measured with such protocols.
"""

from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float
from matplotlib.figure import Figure

import jsyn

from ._common import save

WINDOW_DT = 0.1
"""Time step of the STDP-window network (ms)."""
WINDOW_LAGS = np.arange(-100.0, 100.01, 2.0)
r"""Lags $\Delta t = t_{post} - t_{pre}$ of the STDP window (ms), one synapse each."""
WINDOW_T0 = 110.0
"""Time of every presynaptic spike of the window protocol (ms)."""
W0 = 0.5
"""Initial weight of the window's synapses."""
FREQUENCIES = (0.1, 10.0, 20.0, 40.0, 50.0)
"""Pairing frequencies of the triplet curve (Hz), as in Sjöström et al. 2001."""
PAIR_LAGS = (10.0, -10.0)
"""Lags of the triplet curve's pairings (ms): pre before post, post before pre."""
N_PAIRS = 60
"""Pairings per protocol."""
T_START = 100.0
"""Time of the first presynaptic spike of every protocol (ms)."""


def window_traces(rule: jsyn.STDP | None = None) -> dict[str, np.ndarray]:
    r"""The pair-STDP window: synapse $i$ between two `SpikeTimes` cells, the presynaptic
    one spiking at `WINDOW_T0` and the postsynaptic one at `WINDOW_T0 + WINDOW_LAGS[i]`,
    simulated in a `jsyn.Network` with `plasticity=rule` (default `jsyn.STDP()`).

    **Returns:** `lag` (ms), `dw` (the simulated weight changes) and `analytic`,
    $A_+ e^{-\Delta t/\tau_{pre}}$ for $\Delta t \ge 0$, $-A_- e^{\Delta t/\tau_{post}}$
    below.
    """
    rule = jsyn.STDP() if rule is None else rule
    n = WINDOW_LAGS.size
    cells = np.arange(n)
    net = jsyn.Network(
        {
            "pre": jsyn.SpikeTimes(np.full(n, WINDOW_T0), cells, n=n),
            "post": jsyn.SpikeTimes(WINDOW_T0 + WINDOW_LAGS, cells, n=n),
        },
        {
            "p": jsyn.Projection(
                jsyn.Sparse(cells, cells, n, n, w=W0),
                jsyn.Expon(),
                jsyn.CUBA(),
                pre="pre",
                post="post",
                plasticity=rule,
            )
        },
    )
    n_steps = int(round((WINDOW_T0 + WINDOW_LAGS.max() + 10.0) / WINDOW_DT))
    final, _ = jsyn.simulate(net, None, WINDOW_DT, n_steps=n_steps, record=lambda s, o: ())
    dw = np.asarray(final.projections["p"].w) - W0
    return {"lag": WINDOW_LAGS, "dw": dw, "analytic": pair_window(rule, WINDOW_LAGS)}


def pair_window(rule: jsyn.STDP, lag) -> np.ndarray:
    r"""The weight change of one pair at lag $\Delta t$ (ms) under pair STDP, far from
    other spikes: $A_+ e^{-\Delta t/\tau_{pre}}$ for $\Delta t \ge 0$ (a simultaneous
    pair counts pre first), $-A_- e^{\Delta t/\tau_{post}}$ below."""
    lag = np.asarray(lag, float)
    return np.where(
        lag >= 0,
        float(rule.A_plus) * np.exp(-lag / float(rule.tau_pre)),
        -float(rule.A_minus) * np.exp(lag / float(rule.tau_post)),
    )


class PairingsState(eqx.Module):
    """State of `Pairings`: the rule's traces and the weight change `dw` of each synapse."""

    rule: eqx.Module
    dw: Float[Array, " n"]


class Pairings(eqx.Module):
    r"""Pairing protocols event by event: a long-term plasticity rule on `n` synapses, with
    one step per spike time of any of them, so that long silent gaps cost nothing.

    The input of step $k$ is a tuple `(pre, post, gap)`: the presynaptic events and
    postsynaptic spikes of each synapse at time $t_k$ (0/1, shape `(n,)`) and
    $t_k - t_{k-1}$ (ms; $t_{-1} = 0$). The step calls `rule.step` with that gap as its
    time step, which is exact: the rule's traces decay exactly over any step, and its
    updates happen at the events. The `dt` of `jsyn.simulate` is not used. The output
    is the weight change of each synapse so far.

    The weight starts at 0, so the rule needs `w_min <= -|Δw|` and `w_max >= |Δw|` (for
    example -10 and 10) to keep its changes unclipped; its updates do not depend on `w`
    (additive rules).
    """

    rule: jsyn.AbstractLongTermPlasticity

    def init_state(self, n, *, dtype=None) -> PairingsState:
        dw = jnp.zeros(n, dtype)
        return PairingsState(rule=self.rule.init_state(dw.shape, dtype=dw.dtype), dw=dw)

    def step(self, state: PairingsState, x, dt) -> tuple[PairingsState, Array]:
        pre, post, gap = x
        rule, dw = self.rule.step(state.rule, state.dw, pre, post, gap)
        return PairingsState(rule=rule, dw=dw), dw


def pairing_inputs(protocols) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The input of `Pairings` for protocols given as `(pre_times, post_times)` pairs (ms),
    one synapse each: `(pre, post, gap)` with one row per distinct spike time."""
    times = np.unique(np.concatenate([np.concatenate([a, b]) for a, b in protocols]))
    pre = np.zeros((times.size, len(protocols)))
    post = np.zeros_like(pre)
    for i, (pre_t, post_t) in enumerate(protocols):
        pre[np.searchsorted(times, pre_t), i] = 1.0
        post[np.searchsorted(times, post_t), i] = 1.0
    return pre, post, np.diff(times, prepend=0.0)


def frequency_protocol(freq: float, lag: float, n_pairs: int = N_PAIRS):
    """`n_pairs` pairings at `freq` Hz, post at `lag` ms after pre: `(pre, post)` times."""
    pre = T_START + np.arange(n_pairs) * 1000.0 / freq
    return pre, pre + lag


def frequency_conditions() -> list[tuple[float, float]]:
    """The `(freq, lag)` of the triplet curve, frequency-major."""
    return [(f, lag) for f in FREQUENCIES for lag in PAIR_LAGS]


def frequency_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The input of `Pairings` for `frequency_conditions()`, one synapse each."""
    return pairing_inputs([frequency_protocol(f, lag) for f, lag in frequency_conditions()])


def triplet_rule(**amplitudes) -> jsyn.TripletSTDP:
    """`jsyn.TripletSTDP` with the visual-cortex set (or the given amplitudes), its bounds
    at ±10 so that weight changes from 0 stay unclipped."""
    return jsyn.TripletSTDP(**amplitudes, w_min=-10.0, w_max=10.0)


def triplet_curve(rule: jsyn.TripletSTDP | None = None) -> dict[str, np.ndarray]:
    r"""The weight change of 60 pairings at $\Delta t = \pm 10$ ms against the pairing
    frequency (default rule: `triplet_rule()`).

    **Returns:** `freq` (Hz) and `pre_post`, `post_pre` (the weight change at +10 and
    -10 ms, one per frequency).
    """
    model = Pairings(triplet_rule() if rule is None else rule)
    _, dw = jsyn.simulate(model, tuple(map(jnp.asarray, frequency_inputs())), 1.0)
    final = np.asarray(dw[-1]).reshape(len(FREQUENCIES), len(PAIR_LAGS))
    return {"freq": np.array(FREQUENCIES), "pre_post": final[:, 0], "post_pre": final[:, 1]}


def _plot_window(path: Path, tr: dict[str, np.ndarray]) -> Path:
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    lag = np.linspace(-100.0, 100.0, 801)
    label = r"$A_+e^{-\Delta t/\tau_{pre}}$, $-A_-e^{\Delta t/\tau_{post}}$"
    ax.plot(lag, pair_window(jsyn.STDP(), lag), color="0.6", lw=2, label=label)
    ax.plot(tr["lag"], tr["dw"], "o", color="C3", ms=3, label="simulated (one pair per synapse)")
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set(xlabel=r"$\Delta t = t_{post} - t_{pre}$ (ms)", ylabel=r"$\Delta w$")
    ax.legend(fontsize="small")
    fig.suptitle("STDP (pair rule, Song, Miller & Abbott 2000): the window")
    return save(fig, path)


def _plot_triplet(path: Path, tr: dict[str, np.ndarray]) -> Path:
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    ax.plot(tr["freq"], tr["pre_post"], "o-", color="C3", label=r"$\Delta t = +10$ ms")
    ax.plot(tr["freq"], tr["post_pre"], "s-", color="C0", label=r"$\Delta t = -10$ ms")
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set(xlabel="pairing frequency (Hz)", ylabel=rf"$\Delta w$ after {N_PAIRS} pairings")
    ax.legend(fontsize="small")
    fig.suptitle("Triplet STDP, visual cortex (Pfister & Gerstner 2006, Fig. 5)")
    return save(fig, path)


def write(out_dir: Path) -> tuple[list[Path], list[str]]:
    """Simulate and plot the STDP window and the triplet frequency curve into `out_dir`:
    the PNGs written and one summary line each."""
    window = window_traces()
    err = np.abs(window["dw"] - window["analytic"]).max()
    at = {lag: window["dw"][np.argmin(np.abs(window["lag"] - lag))] for lag in (10.0, -10.0)}
    triplet = triplet_curve()
    return [
        _plot_window(out_dir / "stdp_window.png", window),
        _plot_triplet(out_dir / "triplet_frequency.png", triplet),
    ], [
        f"stdp_window: dw = {at[10.0]:+.5f} at +10 ms, {at[-10.0]:+.5f} at -10 ms; "
        f"{window['lag'].size} lags in [-100, 100] ms, max |simulated - analytic| {err:.1e}",
        "triplet_frequency: dw after 60 pairings at +10 / -10 ms: "
        + ", ".join(
            f"{f:g} Hz {a:+.4f} / {b:+.4f}"
            for f, a, b in zip(triplet["freq"], triplet["pre_post"], triplet["post_pre"])
        ),
    ]
