r"""`jsyn demo`: the seed tutorial's examples, simulated and plotted.

Each example composes jsyn models the way a user would: a small module, `_Chain`, steps a
presynaptic cell, a synapse, an output law and a postsynaptic cell together, so
`jsyn.simulate` runs the whole chain in one `jax.lax.scan`. The `*_traces` functions return
the recorded arrays (time in ms, potentials in mV, currents in pA); the plots and
`summary.txt` are made from them, and the tests check them.

Figures are drawn with `matplotlib.figure.Figure`, which renders PNGs through Agg without
pyplot: no display is needed, no global backend is switched, and no figure outlives its save.
"""

from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float
from matplotlib.figure import Figure

import jsyn

DT = 0.1
"""Time step (ms)."""
N_STEPS = 2000
"""Steps per run: 200 ms."""
PRE_CURRENT = 15.0
"""Constant current into the presynaptic LIF (pA): with R = 1 GΩ it settles towards
-45 mV, above the `V_TH` threshold, so it fires regularly (about every 22 ms)."""
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
V_REST = -60.0
"""Resting (and reset) potential of every LIF (mV)."""
V_TH = -50.0
"""Threshold of every LIF (mV)."""
CUBA_G_MAX = G_MAX * (E - V_REST)
"""CUBA current per unit of g (pA): the COBA current at rest."""


class _ChainState(eqx.Module):
    """State of `_Chain`; `g` is the synapse's output at the end of the last step."""

    pre: eqx.Module
    synapse: eqx.Module
    g: Float[Array, "*n"]
    post: jsyn.LIFState | None


class _Chain(eqx.Module):
    r"""pre → synapse → output → post, stepped together.

    The presynaptic spikes of a step, scaled by `w`, drive the synapse in that step. With an
    `output`, the current over step $n$ flows from the state at the end of step $n-1$:
    $I_n = $ `output.current`$(g_{n-1}, V_{n-1})$ (MODELS.md, discrete-time semantics).
    Without one, the synapse's output is a voltage jump (mV) that the postsynaptic cell
    takes in the same step, as an event at $t_n$. Without `post`, the chain stops at $g$.
    """

    pre: jsyn.AbstractNeuron
    synapse: jsyn.AbstractSynapse
    w: float
    output: jsyn.AbstractOutput | None = None
    post: jsyn.LIF | None = None

    def init_state(self, n, *, dtype=None) -> _ChainState:
        return _ChainState(
            pre=self.pre.init_state(n, dtype=dtype),
            synapse=self.synapse.init_state(n, dtype=dtype),
            g=jnp.zeros(n, dtype),
            post=None if self.post is None else self.post.init_state(n, dtype=dtype),
        )

    def step(self, state: _ChainState, x, dt) -> tuple[_ChainState, dict[str, Array]]:
        """One step of `dt` ms; `x` is the current into the presynaptic cell (pA; spike
        sources ignore it). Returns the state and the step's presynaptic spikes and, with
        a `post`, its input current `I` (pA) and spikes."""
        pre, pre_spikes = self.pre.step(state.pre, x, dt)
        synapse, g = self.synapse.step(state.synapse, self.w * pre_spikes, dt)
        out = {"pre_spikes": pre_spikes}
        if self.post is None:
            return _ChainState(pre, synapse, g, None), out
        if self.output is None:
            I = jnp.zeros_like(g)
            post, post_spikes = self.post.step(state.post, I, dt, jump=g)
        else:
            I = self.output.current(state.g, state.post.V)
            post, post_spikes = self.post.step(state.post, I, dt)
        return _ChainState(pre, synapse, g, post), {**out, "I": I, "post_spikes": post_spikes}


def _record_kinetics(state: _ChainState, out: dict) -> dict[str, Array]:
    return {"V_pre": state.pre.V, "pre_spikes": out["pre_spikes"], "g": state.g}


def _record_jump(state: _ChainState, out: dict) -> dict[str, Array]:
    return {
        "pre_spikes": out["pre_spikes"],
        "V": state.post.V,
        "t_ref": state.post.t_ref,
        "post_spikes": out["post_spikes"],
    }


def _record_output(state: _ChainState, out: dict) -> dict[str, Array]:
    return {
        "pre_spikes": out["pre_spikes"],
        "g": state.g,
        "I": out["I"],
        "V": state.post.V,
        "post_spikes": out["post_spikes"],
    }


def _lif(tau_ref: float = 0.0) -> jsyn.LIF:
    return jsyn.LIF(V_rest=V_REST, V_th=V_TH, V_reset=V_REST, tau_ref=tau_ref)


def _run(chain: _Chain, pre_current: float, record) -> dict[str, np.ndarray]:
    """Simulate `chain` (one cell of each kind) for `N_STEPS`: the traces as 1-d arrays plus the
    time `t` (ms) at the end of each step."""
    inputs = jnp.full((N_STEPS, 1), pre_current)
    _, recorded = jsyn.simulate(chain, inputs, DT, record=record)
    traces = {name: np.asarray(trace)[:, 0] for name, trace in recorded.items()}
    return {"t": DT * np.arange(N_STEPS), **traces}


def kinetics_traces(synapse: jsyn.AbstractSynapse) -> dict[str, np.ndarray]:
    """A regularly firing presynaptic LIF drives `synapse` with weight 1.

    **Returns:** `t` (ms), `V_pre` (mV), `pre_spikes` (0/1) and `g` (dimensionless).
    """
    chain = _Chain(pre=_lif(), synapse=synapse, w=1.0)
    return _run(chain, PRE_CURRENT, _record_kinetics)


def jump_traces() -> dict[str, np.ndarray]:
    """`SPIKE_TIMES` through `VoltageJump` (`JUMP` mV per spike) onto a LIF with a
    refractory period of `TAU_REF` ms.

    **Returns:** `t` (ms), `pre_spikes`, postsynaptic `V` (mV), refractory time left
    `t_ref` (ms) and `post_spikes`.
    """
    chain = _Chain(
        pre=jsyn.SpikeTimes(SPIKE_TIMES),
        synapse=jsyn.VoltageJump(),
        w=JUMP,
        post=_lif(tau_ref=TAU_REF),
    )
    return _run(chain, 0.0, _record_jump)


def output_traces(output: jsyn.AbstractOutput) -> dict[str, np.ndarray]:
    """`SPIKE_TIMES` through `Expon` (weight 1) and `output` onto a LIF.

    **Returns:** `t` (ms), `pre_spikes`, `g` (dimensionless), the current `I` into the
    postsynaptic cell over each step (pA), its `V` (mV) and `post_spikes`.
    """
    chain = _Chain(
        pre=jsyn.SpikeTimes(SPIKE_TIMES),
        synapse=jsyn.Expon(),
        w=1.0,
        output=output,
        post=_lif(),
    )
    return _run(chain, 0.0, _record_output)


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
    ]


def _spike_times(traces: dict[str, np.ndarray], key: str = "pre_spikes") -> np.ndarray:
    return traces["t"][traces[key] > 0]


def _rate(n_spikes: int) -> float:
    """Firing rate (Hz) of `n_spikes` over one run."""
    return n_spikes / (N_STEPS * DT / 1000.0)


def _mark_pre_spikes(axes, traces: dict[str, np.ndarray]) -> None:
    for ax in axes:
        for t in _spike_times(traces):
            ax.axvline(t, color="0.8", lw=0.8, zorder=0)


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=100)
    print(path)
    return path


def _plot_kinetics(path: Path, title: str, traces: dict[str, np.ndarray]) -> Path:
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax_v, ax_g = fig.subplots(2, 1, sharex=True)
    _mark_pre_spikes((ax_v, ax_g), traces)
    ax_v.plot(traces["t"], traces["V_pre"], color="k", lw=1)
    ax_v.set_ylabel("presynaptic V (mV)")
    ax_g.plot(traces["t"], traces["g"], color="C0", lw=1.5)
    ax_g.set_ylabel("g")
    ax_g.set_xlabel("time (ms); grey: presynaptic spikes")
    fig.suptitle(title)
    return _save(fig, path)


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
    ax.plot(t, traces["V"], color="k", lw=1, label="postsynaptic V")
    ax.axhline(V_TH, color="0.5", ls="--", lw=0.8, label="threshold")
    skipped = skipped_jumps(traces)
    applied = (traces["pre_spikes"] > 0) & ~skipped
    ax.plot(t[applied], np.full(applied.sum(), V_TH + 3.0), "^", color="C2", label="jump applied")
    ax.plot(t[skipped], np.full(skipped.sum(), V_TH + 3.0), "x", color="C3", label="jump skipped")
    post = _spike_times(traces, "post_spikes")
    ax.plot(post, np.full(post.size, V_TH), "*", color="C1", ms=10, label="postsynaptic spike")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("V (mV)")
    fig.legend(loc="outside lower center", fontsize="small", ncols=6)
    ax.set_title(
        rf"VoltageJump: $V \leftarrow V + w$ at a spike, w = {JUMP:g} mV, "
        rf"skipped while refractory ($\tau_{{ref}}$ = {TAU_REF:g} ms)"
    )
    return _save(fig, path)


def _plot_outputs(path: Path, cuba: dict[str, np.ndarray], coba: dict[str, np.ndarray]) -> Path:
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax_v, ax_i = fig.subplots(2, 1, sharex=True)
    _mark_pre_spikes((ax_v, ax_i), cuba)
    labels = (f"CUBA, $g_{{max}}$ = {CUBA_G_MAX:g} pA", f"COBA, $g_{{max}}$ = {G_MAX:g} nS")
    for traces, label, color in zip((cuba, coba), labels, ("C0", "C3")):
        ax_v.plot(traces["t"], traces["V"], color=color, lw=1, label=label)
        ax_i.plot(traces["t"], traces["I"], color=color, lw=1.2, label=label)
    ax_v.axhline(V_TH, color="0.5", ls="--", lw=0.8)
    ax_v.set_ylabel("postsynaptic V (mV)")
    ax_v.legend(loc="upper right", fontsize="small")
    ax_i.set_ylabel("current into the cell (pA)")
    ax_i.set_xlabel("time (ms); grey: presynaptic spikes")
    fig.suptitle(
        r"Expon onto LIF: CUBA $I = g_{max}\,g$ vs COBA $I = g_{max}\,g\,(E - V)$,"
        f" E = {E:g} mV"
    )
    return _save(fig, path)


def _kinetics_summary(name: str, traces: dict[str, np.ndarray]) -> str:
    spikes = _spike_times(traces)
    first, second = spikes[0], spikes[1]
    window = (traces["t"] >= first) & (traces["t"] < second)
    peak = np.argmax(np.where(window, traces["g"], -np.inf))
    return (
        f"{name}: {spikes.size} presynaptic spikes ({_rate(spikes.size):.0f} Hz); "
        f"the first at {first:.1f} ms makes g peak at {traces['g'][peak]:.3f}, "
        f"{traces['t'][peak] - first:.1f} ms after it; max g over the run "
        f"{traces['g'].max():.3f} at {traces['t'][np.argmax(traces['g'])]:.1f} ms"
    )


def _jump_summary(traces: dict[str, np.ndarray]) -> str:
    n_pre = _spike_times(traces).size
    n_skipped = int(skipped_jumps(traces).sum())
    n_post = _spike_times(traces, "post_spikes").size
    return (
        f"voltage_jump: {n_pre} presynaptic spikes of {JUMP:g} mV; {n_pre - n_skipped} "
        f"jumps applied, {n_skipped} skipped while refractory; {n_post} postsynaptic spikes "
        f"({_rate(n_post):.0f} Hz)"
    )


def _outputs_summary(cuba: dict[str, np.ndarray], coba: dict[str, np.ndarray]) -> str:
    def describe(label: str, traces: dict[str, np.ndarray]) -> str:
        n_post = _spike_times(traces, "post_spikes").size
        peak = np.argmax(traces["I"])
        return (
            f"{label} {n_post} postsynaptic spikes ({_rate(n_post):.0f} Hz), "
            f"peak I {traces['I'][peak]:.1f} pA at {traces['t'][peak]:.1f} ms"
        )

    n_pre = _spike_times(cuba).size
    return (
        f"cuba_vs_coba: {n_pre} presynaptic spikes, peak g {cuba['g'].max():.3f}; "
        f"{describe('CUBA', cuba)}; {describe('COBA', coba)}"
    )


def run_demo(out_dir: str | Path) -> list[Path]:
    """Simulate the examples, write one PNG per example and `summary.txt` into `out_dir`
    (created if missing), print each path written, and return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, summary = [], []
    for name, synapse, title in _kinetic_examples():
        traces = kinetics_traces(synapse)
        written.append(_plot_kinetics(out_dir / f"{name}.png", title, traces))
        summary.append(_kinetics_summary(name, traces))
    traces = jump_traces()
    written.append(_plot_jump(out_dir / "voltage_jump.png", traces))
    summary.append(_jump_summary(traces))
    cuba = output_traces(jsyn.CUBA(g_max=CUBA_G_MAX))
    coba = output_traces(jsyn.COBA(g_max=G_MAX, E=E))
    written.append(_plot_outputs(out_dir / "cuba_vs_coba.png", cuba, coba))
    summary.append(_outputs_summary(cuba, coba))
    summary_path = out_dir / "summary.txt"
    summary_path.write_text("\n".join(summary) + "\n")
    print(summary_path)
    return [*written, summary_path]
