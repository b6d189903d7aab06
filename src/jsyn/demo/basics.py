r"""The foundation's examples: exponential, alpha and dual-exponential kinetics driven by a
presynaptic LIF; voltage jumps onto a refractory LIF; current- vs conductance-based output.

The `*_traces` functions return the recorded arrays (time in ms, potentials in mV, currents
in pA); the plots and the summary lines are made from them, and the tests check them.
"""

from pathlib import Path

import numpy as np
from jaxtyping import Array
from matplotlib.figure import Figure

import jsyn
import jsyn.plot

from ._common import (
    DT,
    V_REST,
    V_TH,
    Chain,
    ChainState,
    kinetics_figure,
    kinetics_summary,
    kinetics_traces,
    lif,
    rate,
    run,
    save,
    spike_times,
)

SPIKE_TIMES = (10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 22.0, 60.0, 63.0, 66.0, 69.0, 72.0)
SPIKE_TIMES += (110.0, 111.0, 112.0, 113.0, 114.0, 115.0, 116.0, 117.0, 118.0, 160.0, 180.0)
"""The presynaptic spike train of the voltage-jump and CUBA/COBA examples (ms): bursts at
intervals of 2, 3 and 1 ms, then two single spikes."""
JUMP = 4.0
"""Voltage jump per presynaptic spike (mV)."""
TAU_REF = 5.0
"""Refractory period of the voltage-jump example's postsynaptic LIF (ms)."""
G_MAX = 0.25
"""COBA maximal conductance (nS)."""
E = 0.0
"""COBA reversal potential (mV)."""
CUBA_G_MAX = G_MAX * (E - V_REST)
"""CUBA current per unit of g (pA): the COBA current at rest."""


def _record_jump(state: ChainState, out: dict) -> dict[str, Array]:
    return {
        "pre_spikes": out["pre_spikes"],
        "V": state.post.V,
        "t_ref": state.post.t_ref,
        "post_spikes": out["post_spikes"],
    }


def _record_output(state: ChainState, out: dict) -> dict[str, Array]:
    return {
        "pre_spikes": out["pre_spikes"],
        "g": state.g,
        "I": out["I"],
        "V": state.post.V,
        "post_spikes": out["post_spikes"],
    }


def jump_traces() -> dict[str, np.ndarray]:
    """`SPIKE_TIMES` through `VoltageJump` (`JUMP` mV per spike) onto a LIF with a
    refractory period of `TAU_REF` ms.

    **Returns:** `t` (ms), `pre_spikes`, postsynaptic `V` (mV), refractory time left
    `t_ref` (ms) and `post_spikes`.
    """
    chain = Chain(
        pre=jsyn.SpikeTimes(SPIKE_TIMES),
        synapse=jsyn.VoltageJump(),
        w=JUMP,
        post=lif(tau_ref=TAU_REF),
    )
    return run(chain, 0.0, _record_jump)


def output_traces(output: jsyn.AbstractOutput) -> dict[str, np.ndarray]:
    """`SPIKE_TIMES` through `Expon` (weight 1) and `output` onto a LIF.

    **Returns:** `t` (ms), `pre_spikes`, `g` (dimensionless), the current `I` into the
    postsynaptic cell over each step (pA), its `V` (mV) and `post_spikes`.
    """
    chain = Chain(
        pre=jsyn.SpikeTimes(SPIKE_TIMES),
        synapse=jsyn.Expon(),
        w=1.0,
        output=output,
        post=lif(),
    )
    return run(chain, 0.0, _record_output)


def skipped_jumps(traces: dict[str, np.ndarray]) -> np.ndarray:
    """Which presynaptic spikes of `jump_traces()` found the target refractory (more
    than half a step of refractory time left at the start of their step)."""
    t_ref_before = np.concatenate([[0.0], traces["t_ref"][:-1]])
    return (traces["pre_spikes"] > 0) & (t_ref_before > DT / 2)


def _kinetic_examples() -> list[tuple[str, jsyn.AbstractSynapse, str]]:
    return [
        (
            "expon",
            jsyn.Expon(),
            r"Expon: $dg/dt = -g/\tau$, $g \leftarrow g + w$ at a spike ($\tau$ = 8 ms)",
        ),
        (
            "alpha",
            jsyn.Alpha(),
            r"Alpha: $dh/dt = -h/\tau$, $dg/dt = (h - g)/\tau$, $h \leftarrow h + w$"
            r" ($\tau$ = 10 ms)",
        ),
        (
            "dual_expon",
            jsyn.DualExpon(),
            r"DualExpon: $dh/dt = -h/\tau_r$, $dg/dt = -g/\tau_d + h$, $h \leftarrow h + a w$"
            r" ($\tau_r$ = 1 ms, $\tau_d$ = 10 ms)",
        ),
        (
            "dual_expon_v2",
            jsyn.DualExponV2(),
            r"DualExponV2: $g = A(g_d - g_r)$, $dg_{r,d}/dt = -g_{r,d}/\tau_{r,d}$, both"
            r" $\leftarrow + w$ ($\tau_r$ = 1 ms, $\tau_d$ = 10 ms)",
        ),
    ]


def linear_kinetics_figure(title: str, traces: dict[str, np.ndarray]) -> Figure:
    """A linear kinetics' run: its $g$ is a conductance in units of `g_max` (one spike of
    weight 1 peaks at 1, summed spikes exceed 1), not an open fraction."""
    return kinetics_figure(title, traces, jsyn.plot.RELATIVE_CONDUCTANCE)


def _plot_jump(path: Path, traces: dict[str, np.ndarray]) -> Path:
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    t = traces["t"]
    ax.fill_between(
        t,
        0,
        1,
        where=traces["t_ref"] > DT / 2,
        transform=ax.get_xaxis_transform(),
        color="C1",
        alpha=0.2,
        lw=0,
        label="refractory",
    )
    jsyn.plot.traces(
        t, traces["V"], ylabel="V (mV)", labels="postsynaptic V", ax=ax, color="k", lw=1
    )
    ax.axhline(V_TH, color="0.5", ls="--", lw=0.8, label="threshold")
    skipped = skipped_jumps(traces)
    applied = (traces["pre_spikes"] > 0) & ~skipped
    ax.plot(t[applied], np.full(applied.sum(), V_TH + 3.0), "^", color="C2", label="jump applied")
    ax.plot(t[skipped], np.full(skipped.sum(), V_TH + 3.0), "x", color="C3", label="jump skipped")
    post = spike_times(traces, "post_spikes")
    ax.plot(post, np.full(post.size, V_TH), "*", color="C1", ms=10, label="postsynaptic spike")
    fig.legend(loc="outside lower center", fontsize="small", ncols=6)
    ax.set_title(
        rf"VoltageJump: $V \leftarrow V + w$ at a spike, w = {JUMP:g} mV, "
        rf"skipped while refractory ($\tau_{{ref}}$ = {TAU_REF:g} ms)"
    )
    return save(fig, path)


def _plot_outputs(path: Path, cuba: dict[str, np.ndarray], coba: dict[str, np.ndarray]) -> Path:
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax_v, ax_i = fig.subplots(2, 1, sharex=True)
    pre = spike_times(cuba)
    labels = (f"CUBA, $g_{{max}}$ = {CUBA_G_MAX:g} pA", f"COBA, $g_{{max}}$ = {G_MAX:g} nS")
    V = np.stack([cuba["V"], coba["V"]], axis=1)
    I = np.stack([cuba["I"], coba["I"]], axis=1)
    jsyn.plot.traces(cuba["t"], V, ylabel="postsynaptic V (mV)", labels=labels, spikes=pre, ax=ax_v)
    jsyn.plot.traces(cuba["t"], I, ylabel=jsyn.plot.CURRENT, labels=labels, spikes=pre, ax=ax_i)
    for ax in (ax_v, ax_i):
        ax.lines[0].set(color="C0", lw=1)
        ax.lines[1].set(color="C3", lw=1)
    ax_v.axhline(V_TH, color="0.5", ls="--", lw=0.8)
    ax_v.legend(loc="upper right", fontsize="small")
    ax_v.label_outer()
    ax_i.set_xlabel("time (ms); grey: presynaptic spikes")
    fig.suptitle(
        r"Expon onto LIF: CUBA $I = g_{max}\,g$ vs COBA $I = g_{max}\,g\,(E - V)$,"
        f" E = {E:g} mV"
    )
    return save(fig, path)


def _jump_summary(traces: dict[str, np.ndarray]) -> str:
    n_pre = spike_times(traces).size
    n_skipped = int(skipped_jumps(traces).sum())
    n_post = spike_times(traces, "post_spikes").size
    return (
        f"voltage_jump: {n_pre} presynaptic spikes of {JUMP:g} mV; {n_pre - n_skipped} "
        f"jumps applied, {n_skipped} skipped while refractory; {n_post} postsynaptic spikes "
        f"({rate(n_post):.0f} Hz)"
    )


def _outputs_summary(cuba: dict[str, np.ndarray], coba: dict[str, np.ndarray]) -> str:
    def describe(label: str, traces: dict[str, np.ndarray]) -> str:
        n_post = spike_times(traces, "post_spikes").size
        peak = np.argmax(traces["I"])
        return (
            f"{label} {n_post} postsynaptic spikes ({rate(n_post):.0f} Hz), "
            f"peak I {traces['I'][peak]:.1f} pA at {traces['t'][peak]:.1f} ms"
        )

    n_pre = spike_times(cuba).size
    return (
        f"cuba_vs_coba: {n_pre} presynaptic spikes, peak g {cuba['g'].max():.3f}; "
        f"{describe('CUBA', cuba)}; {describe('COBA', coba)}"
    )


def write(out_dir: Path) -> tuple[list[Path], list[str]]:
    """Simulate and plot the foundation's examples into `out_dir`: the PNGs written and
    one summary line per example."""
    written, summary = [], []
    for name, synapse, title in _kinetic_examples():
        traces = kinetics_traces(synapse)
        written.append(save(linear_kinetics_figure(title, traces), out_dir / f"{name}.png"))
        summary.append(kinetics_summary(name, traces))
    traces = jump_traces()
    written.append(_plot_jump(out_dir / "voltage_jump.png", traces))
    summary.append(_jump_summary(traces))
    cuba = output_traces(jsyn.CUBA(g_max=CUBA_G_MAX))
    coba = output_traces(jsyn.COBA(g_max=G_MAX, E=E))
    written.append(_plot_outputs(out_dir / "cuba_vs_coba.png", cuba, coba))
    summary.append(_outputs_summary(cuba, coba))
    return written, summary
