r"""What the demo's examples share: the time grid, a LIF, the chain that composes a
presynaptic cell, a synapse, an output law and a postsynaptic cell, and saving figures.

Figures are `matplotlib.figure.Figure`s filled by `jsyn.plot`; they render PNGs through Agg
without pyplot: no display is needed, no global backend is switched, and no figure outlives
its save.
"""

from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float
from matplotlib.figure import Figure

import jsyn
import jsyn.plot

DT = 0.1
"""Time step (ms)."""
N_STEPS = 2000
"""Steps per run: 200 ms."""
PRE_CURRENT = 15.0
"""Constant current into the presynaptic LIF (pA): with R = 1 GΩ it settles towards
-45 mV, above the `V_TH` threshold, so it fires regularly (about every 22 ms)."""
V_REST = -60.0
"""Resting (and reset) potential of every LIF (mV)."""
V_TH = -50.0
"""Threshold of every LIF (mV)."""


class ChainState(eqx.Module):
    """State of `Chain`; `g` is the synapse's output at the end of the last step."""

    pre: eqx.Module
    stp: eqx.Module | None
    synapse: eqx.Module
    g: Float[Array, "*n"]
    post: jsyn.LIFState | None


class Chain(eqx.Module):
    r"""pre → [short-term plasticity] → synapse → output → post, stepped together.

    The presynaptic spikes of a step (or, with `stp`, their efficacy), scaled by `w`, drive
    the synapse in that step. With an `output`, the current over step $n$ flows from the
    state at the end of step $n-1$: $I_n = $ `output.current`$(g_{n-1}, V_{n-1})$ (the
    discrete-time semantics of the model reference).
    Without one, the synapse's output is a voltage jump (mV) that the postsynaptic cell
    takes in the same step, as an event at $t_n$. Without `post`, the chain stops at $g$.
    """

    pre: jsyn.AbstractNeuron
    synapse: jsyn.AbstractSynapse
    w: float
    output: jsyn.AbstractOutput | None = None
    post: jsyn.LIF | None = None
    stp: jsyn.AbstractShortTermPlasticity | None = None

    def init_state(self, n, *, dtype=None) -> ChainState:
        return ChainState(
            pre=self.pre.init_state(n, dtype=dtype),
            stp=None if self.stp is None else self.stp.init_state(n, dtype=dtype),
            synapse=self.synapse.init_state(n, dtype=dtype),
            g=jnp.zeros(n, dtype),
            post=None if self.post is None else self.post.init_state(n, dtype=dtype),
        )

    def step(self, state: ChainState, x, dt) -> tuple[ChainState, dict[str, Array]]:
        """One step of `dt` ms; `x` is the current into the presynaptic cell (pA; spike
        sources ignore it). Returns the state and the step's presynaptic spikes, their
        `efficacy` (the spikes themselves without `stp`) and, with a `post`, its input
        current `I` (pA) and spikes."""
        pre, pre_spikes = self.pre.step(state.pre, x, dt)
        stp, efficacy = state.stp, pre_spikes
        if self.stp is not None:
            stp, efficacy = self.stp.step(state.stp, pre_spikes, dt)
        synapse, g = self.synapse.step(state.synapse, self.w * efficacy, dt)
        out = {"pre_spikes": pre_spikes, "efficacy": efficacy}
        if self.post is None:
            return ChainState(pre, stp, synapse, g, None), out
        if self.output is None:
            I = jnp.zeros_like(g)
            post, post_spikes = self.post.step(state.post, I, dt, jump=g)
        else:
            I = self.output.current(state.g, state.post.V)
            post, post_spikes = self.post.step(state.post, I, dt)
        return ChainState(pre, stp, synapse, g, post), {**out, "I": I, "post_spikes": post_spikes}


def record_kinetics(state: ChainState, out: dict) -> dict[str, Array]:
    return {"V_pre": state.pre.V, "pre_spikes": out["pre_spikes"], "g": state.g}


def lif(tau_ref: float = 0.0) -> jsyn.LIF:
    return jsyn.LIF(V_rest=V_REST, V_th=V_TH, V_reset=V_REST, tau_ref=tau_ref)


def run(chain: Chain, pre_current: float, record, n_steps: int = N_STEPS) -> dict[str, np.ndarray]:
    """Simulate `chain` (one cell of each kind) for `n_steps`: the traces as 1-d arrays plus
    the time `t` (ms) at the end of each step."""
    inputs = jnp.full((n_steps, 1), pre_current)
    _, recorded = jsyn.simulate(chain, inputs, DT, record=record)
    traces = {name: np.asarray(trace)[:, 0] for name, trace in recorded.items()}
    return {"t": DT * np.arange(n_steps), **traces}


def kinetics_traces(synapse: jsyn.AbstractSynapse) -> dict[str, np.ndarray]:
    """A regularly firing presynaptic LIF drives `synapse` with weight 1.

    **Returns:** `t` (ms), `V_pre` (mV), `pre_spikes` (0/1) and `g` (dimensionless).
    """
    chain = Chain(pre=lif(), synapse=synapse, w=1.0)
    return run(chain, PRE_CURRENT, record_kinetics)


def spike_times(traces: dict[str, np.ndarray], key: str = "pre_spikes") -> np.ndarray:
    return traces["t"][traces[key] > 0]


def rate(n_spikes: int) -> float:
    """Firing rate (Hz) of `n_spikes` over one run."""
    return n_spikes / (N_STEPS * DT / 1000.0)


def save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=100)
    print(path)
    return path


def kinetics_figure(title: str, traces: dict[str, np.ndarray], g_label: str) -> Figure:
    """The presynaptic potential above, the synapse's output $g$ below, labelled `g_label`
    (`jsyn.plot.OPEN_FRACTION` or `jsyn.plot.RELATIVE_CONDUCTANCE`: what $g$ is)."""
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax_v, ax_g = fig.subplots(2, 1, sharex=True)
    pre = spike_times(traces)
    jsyn.plot.traces(
        traces["t"],
        traces["V_pre"],
        ylabel="presynaptic V (mV)",
        spikes=pre,
        ax=ax_v,
        color="k",
        lw=1,
    )
    jsyn.plot.conductance(
        traces["t"], traces["g"], ylabel=g_label, spikes=pre, ax=ax_g, color="C0", lw=1.5
    )
    ax_v.label_outer()  # the time axis is shared: label it once, below
    ax_g.set_xlabel("time (ms); grey: presynaptic spikes")
    fig.suptitle(title)
    return fig


def kinetics_summary(name: str, traces: dict[str, np.ndarray]) -> str:
    spikes = spike_times(traces)
    first, second = spikes[0], spikes[1]
    window = (traces["t"] >= first) & (traces["t"] < second)
    peak = np.argmax(np.where(window, traces["g"], -np.inf))
    return (
        f"{name}: {spikes.size} presynaptic spikes ({rate(spikes.size):.0f} Hz); "
        f"the first at {first:.1f} ms makes g peak at {traces['g'][peak]:.3f}, "
        f"{traces['t'][peak] - first:.1f} ms after it; max g over the run "
        f"{traces['g'].max():.3f} at {traces['t'][np.argmax(traces['g'])]:.1f} ms"
    )
