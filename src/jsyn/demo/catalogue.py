r"""The rest of the seed catalogue: receptor kinetics (AMPA, GABA_A, NMDA with its Mg
block, BioNMDA, GABA_B), short-term plasticity (STP, STD), the seed's gap-junction example
and the delayed couplings of rate models.

The `*_traces` functions return the recorded arrays (time in ms, potentials in mV); the
plots and the summary lines are made from them, and the tests check them.
"""

from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float
from matplotlib.figure import Figure

import jsyn

from ._common import (
    DT,
    V_TH,
    Chain,
    kinetics_figure,
    kinetics_summary,
    kinetics_traces,
    run,
    save,
)

# -- receptor kinetics -------------------------------------------------------------------

NMDA_BLOCK = jsyn.MgBlock(g_max=1.0, E=0.0)
"""The NMDA example's output law: 1 nS at full opening, E = 0 mV, 1.2 mM Mg²⁺."""
IV_VOLTAGES = np.linspace(-100.0, 40.0, 141)
"""Holding potentials of the NMDA I–V curve (mV)."""
BURST_SIZES = (1, 4, 10)
"""Spikes per burst in the GABA_B example, at `BURST_INTERVAL` ms."""
BURST_INTERVAL = 5.0
"""Interval between the spikes of a GABA_B burst (ms): 200 Hz."""
BURST_START = 20.0
"""Time of the first spike of each GABA_B burst (ms)."""
GABA_B_STEPS = 8000
"""Steps of the GABA_B runs: 800 ms."""


def _receptor_examples() -> list[tuple[str, jsyn.AbstractSynapse, str]]:
    return [
        (
            "ampa",
            jsyn.AMPA(),
            r"AMPA: $dg/dt = \alpha[T](1 - g) - \beta g$, [T] = 0.5 mM for 0.5 ms after a spike",
        ),
        (
            "gaba_a",
            jsyn.GABAa(),
            r"GABAa: $dg/dt = \alpha[T](1 - g) - \beta g$, [T] = 1 mM for 1 ms after a spike",
        ),
        (
            "bio_nmda",
            jsyn.BioNMDA(),
            r"BioNMDA: $dg/dt = \alpha_1 x(1 - g) - \beta_1 g$,"
            r" $dx/dt = \alpha_2 [T](1 - x) - \beta_2 x$",
        ),
    ]


def nmda_iv(g: float = 1.0) -> dict[str, np.ndarray]:
    """The NMDA current (pA, into the cell) at gating `g` and each of `IV_VOLTAGES`, with and
    without the Mg block (`NMDA_BLOCK`), and the unblocked fraction."""
    V = jnp.asarray(IV_VOLTAGES)
    unblocked_law = jsyn.COBA(g_max=NMDA_BLOCK.g_max, E=NMDA_BLOCK.E)
    return {
        "V": IV_VOLTAGES,
        "I_block": np.asarray(NMDA_BLOCK.current(g, V)),
        "I_free": np.asarray(unblocked_law.current(g, V)),
        "unblocked": np.asarray(NMDA_BLOCK.unblocked(V)),
    }


def _record_g(state, out: dict) -> dict[str, Array]:
    return {"g": state.g, "pre_spikes": out["pre_spikes"], "efficacy": out["efficacy"]}


def burst_times(n_spikes: int) -> list[float]:
    """A burst of `n_spikes` at `BURST_INTERVAL` ms from `BURST_START` (ms)."""
    return [BURST_START + BURST_INTERVAL * k for k in range(n_spikes)]


def gaba_b_traces() -> dict[int, dict[str, np.ndarray]]:
    """GABA_B's open fraction after bursts of each of `BURST_SIZES` spikes, by burst size."""
    return {
        n: run(
            Chain(pre=jsyn.SpikeTimes(burst_times(n)), synapse=jsyn.GABAb(), w=1.0),
            0.0,
            _record_g,
            GABA_B_STEPS,
        )
        for n in BURST_SIZES
    }


def receptor_figure(title: str, traces: dict[str, np.ndarray]) -> Figure:
    """A receptor model's run: its $g$ is the fraction of open channels, in [0, 1]."""
    return kinetics_figure(title, traces, jsyn.plot.OPEN_FRACTION)


def nmda_figure(traces: dict[str, np.ndarray], iv: dict[str, np.ndarray]) -> Figure:
    """NMDA's gating after spikes, and the I–V curve of its Mg block drawn in the
    voltage-clamp convention of the field: the membrane current, inward negative (minus
    jsyn's current into the cell), so the block shows as the familiar J-shaped curve."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_g, ax_iv = fig.subplots(1, 2, width_ratios=(3, 2))
    for t in traces["t"][traces["pre_spikes"] > 0]:
        ax_g.axvline(t, color="0.8", lw=0.8, zorder=0)
    ax_g.plot(traces["t"], traces["g"], color="C0")
    ax_g.set_xlabel("time (ms); grey: presynaptic spikes")
    ax_g.set_ylabel(jsyn.plot.OPEN_FRACTION)
    ax_g.set_title(r"NMDA: $dg/dt = -g/\tau_d + a x (1 - g)$, $dx/dt = -x/\tau_r$")
    ax_iv.plot(iv["V"], -iv["I_free"], color="0.5", ls="--", label="no Mg²⁺")
    ax_iv.plot(iv["V"], -iv["I_block"], color="C3", label="1.2 mM Mg²⁺")
    ax_iv.axhline(0.0, color="k", lw=0.5)
    ax_iv.set_xlabel("holding potential V (mV)")
    ax_iv.set_ylabel("membrane current at g = 1 (pA),\ninward negative (clamp convention)")
    ax_iv.set_title("MgBlock I–V (Jahr & Stevens 1990)")
    ax_iv.legend(fontsize="small")
    return fig


def _nmda_summary(traces: dict[str, np.ndarray], iv: dict[str, np.ndarray]) -> str:
    at = {v: int(np.argmin(np.abs(iv["V"] - v))) for v in (-70.0, -20.0)}
    peak = int(np.argmax(iv["I_block"]))
    return (
        kinetics_summary("nmda", traces) + f"; Mg block leaves {iv['unblocked'][at[-70.0]]:.3f} "
        f"of the channels free at -70 mV and {iv['unblocked'][at[-20.0]]:.3f} at -20 mV; "
        f"the inward current peaks at {iv['V'][peak]:.0f} mV"
    )


GABA_B_DECADES = 5
"""Decades of the GABA_B figure's log axis below its largest value."""


def gaba_b_figure(traces: dict[int, dict[str, np.ndarray]]) -> Figure:
    """The open fraction after one spike and after bursts, on a log axis that spans
    `GABA_B_DECADES` decades below the largest value (a single spike's response, orders of
    magnitude below a burst's, stays on the axis; the first steps' tiny values do not
    squeeze it)."""
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    for color, (n, tr) in zip(("C0", "C1", "C3"), traces.items()):
        label = f"{n} spike" if n == 1 else f"burst of {n} at {1000 / BURST_INTERVAL:.0f} Hz"
        ax.semilogy(tr["t"], np.where(tr["g"] > 0, tr["g"], np.nan), color=color, label=label)
    top = max(float(tr["g"].max()) for tr in traces.values())
    ax.set_ylim(top * 10.0**-GABA_B_DECADES, top * 2.0)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("open fraction g (log scale)")
    ax.legend(fontsize="small")
    ax.set_title(
        r"GABAb: $dR/dt = K_1[T](1 - R) - K_2 R$, $dG/dt = K_3 R - K_4 G$,"
        r" $g = G^4/(G^4 + K_d)$"
    )
    return fig


def _gaba_b_summary(traces: dict[int, dict[str, np.ndarray]]) -> str:
    peaks = {n: (tr["g"].max(), tr["t"][np.argmax(tr["g"])]) for n, tr in traces.items()}
    described = ", ".join(f"{n} spikes {g:.2e} at {t:.0f} ms" for n, (g, t) in peaks.items())
    ratio = peaks[BURST_SIZES[-1]][0] / peaks[1][0]
    return (
        f"gaba_b: peak open fraction after {described}; the {BURST_SIZES[-1]}-spike burst "
        f"opens {ratio:.0f} times more channels than one spike"
    )


# -- short-term plasticity ---------------------------------------------------------------

TRAIN = tuple(50.0 + 50.0 * k for k in range(10)) + (1000.0,)
"""The STP/STD train (ms): 10 spikes at 20 Hz, then a recovery spike at 1 s."""
TRAIN_STEPS = 11000
"""Steps of the STP/STD runs: 1.1 s."""
PSC_TAU = 5.0
"""Decay of the exponential synapse that the efficacies drive (ms)."""
STP_SETS = {
    "facilitating": jsyn.STP(U=0.1, tau_f=1000.0, tau_d=50.0),
    "depressing": jsyn.STP(U=0.5, tau_f=20.0, tau_d=800.0),
}
"""The STP example's parameter sets."""
STD_SETS = {"U = 0.07 (default)": jsyn.STD(), "U = 0.5": jsyn.STD(U=0.5)}
"""The STD example's parameter sets."""


def release_traces(stp: jsyn.AbstractShortTermPlasticity) -> dict[str, np.ndarray]:
    """`TRAIN` through `stp` into `Expon(tau=PSC_TAU)` with weight 1.

    **Returns:** `t` (ms), `pre_spikes`, `efficacy` (released fraction per step) and `g`."""
    chain = Chain(pre=jsyn.SpikeTimes(TRAIN), stp=stp, synapse=jsyn.Expon(tau=PSC_TAU), w=1.0)
    return run(chain, 0.0, _record_g, TRAIN_STEPS)


def break_at_gaps(t: np.ndarray, y: np.ndarray, factor: float = 3.0):
    """`t`, `y` with a NaN inserted where an interval exceeds `factor` times the shortest, so
    a line joins the spikes of a train but not the train to a spike after a pause."""
    gaps = np.flatnonzero(np.diff(t) > factor * np.diff(t).min()) + 1
    return np.insert(t, gaps, np.nan), np.insert(y, gaps, np.nan)


def release_figure(title: str, traces: dict[str, dict[str, np.ndarray]]) -> Figure:
    """The efficacy of each spike above (the train's spikes joined, the recovery spike on its
    own), the exponential synapse they drive below."""
    fig = Figure(figsize=(9, 5), layout="constrained")
    ax_r, ax_g = fig.subplots(2, 1, sharex=True)
    for color, (label, tr) in zip(("C0", "C3"), traces.items()):
        spikes = tr["pre_spikes"] > 0
        t, r = break_at_gaps(tr["t"][spikes], tr["efficacy"][spikes])
        ax_r.plot(t, r, "o-", color=color, label=label)
        ax_g.plot(tr["t"], tr["g"], color=color, lw=1, label=label)
    ax_r.set_ylabel("efficacy r per spike")
    ax_r.set_xlabel("presynaptic spike time (ms)")
    ax_r.xaxis.set_tick_params(labelbottom=True)
    ax_r.legend(fontsize="small")
    ax_g.set_ylabel(rf"g of Expon($\tau$ = {PSC_TAU:g} ms)" "\n" r"(units of $g_{max}$)")
    ax_g.set_xlabel("time (ms): 10 spikes at 20 Hz, a recovery spike at 1 s")
    fig.suptitle(title)
    return fig


def _release_summary(name: str, traces: dict[str, dict[str, np.ndarray]]) -> str:
    parts = []
    for label, tr in traces.items():
        r = tr["efficacy"][tr["pre_spikes"] > 0]
        parts.append(
            f"{label}: first spike {r[0]:.3f}, tenth {r[9]:.3f} ({r[9] / r[0]:.2f} x), "
            f"recovery spike {r[10]:.3f}"
        )
    return f"{name}: efficacy " + "; ".join(parts)


# -- gap junctions (the seed tutorial's example) ------------------------------------------

GAP_W = 0.5
"""Junction conductance (nS), every pre cell to every post cell."""
GAP_K = 5.0
"""Spikelet per unit of conductance (mV/nS)."""
GAP_V0 = -10.0
"""Initial potential of every cell (mV)."""
GAP_INPUT = 30.0
"""Current into the first group (pA)."""
GAP_STEPS = 1000
"""Steps of the gap-junction run: 100 ms."""


def gap_network() -> jsyn.Network:
    """The seed's two LIF groups (no refractory period), "A" of 2 cells and "B" of 3,
    every cell of A joined to every cell of B by a gap junction of `GAP_W` nS."""
    lif = jsyn.LIF(tau_ref=0.0)
    gap = jsyn.GapJunction(jsyn.all_to_all(2, 3, GAP_W), GAP_K, pre="A", post="B")
    return jsyn.Network({"A": (lif, 2), "B": (lif, 3)}, gaps={"gj": gap})


def gap_traces() -> dict[str, np.ndarray]:
    """The seed: groups of 2 and 3 LIFs (no refractory period), all to all, w = 0.5 nS,
    k_spikelet = 5 mV/nS, V0 = -10 mV, 30 pA into the first group, 100 ms, as a
    `jsyn.Network` (the spikelets of the spikes of step n act in step n + 1).

    **Returns:** `t` (ms), potentials `V_pre` `(time, 2)` and `V_post` `(time, 3)` (mV),
    the groups' spikes and the spikelets `dV` (mV) of each step's pre spikes."""
    net = gap_network()
    state = net.init_state()
    for name, n in net.sizes:
        state = eqx.tree_at(lambda s, name=name: s.groups[name].V, state, jnp.full((n,), GAP_V0))

    def record(state, spikes):
        return {
            "V_pre": state.groups["A"].V,
            "V_post": state.groups["B"].V,
            "pre_spikes": spikes["A"],
            "post_spikes": spikes["B"],
            "dV": state.gaps["gj"],
        }

    inputs = {"A": jnp.full((GAP_STEPS, 2), GAP_INPUT)}
    _, rec = jsyn.simulate(net, inputs, DT, state=state, record=record)
    return {"t": DT * np.arange(GAP_STEPS), **{k: np.asarray(v) for k, v in rec.items()}}


def gap_figure(traces: dict[str, np.ndarray]) -> Figure:
    """One cell of each group; each spike marked at the threshold it crossed (a LIF's
    potential is reset in the step it spikes, so the trace itself never shows the crossing)."""
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax_post, ax_pre = fig.subplots(2, 1, sharex=True)
    t = traces["t"]
    for ax, V, spikes, color, label in (
        (ax_post, traces["V_post"][:, 0], traces["post_spikes"][:, 0], "C3", "V1 (second group)"),
        (ax_pre, traces["V_pre"][:, 0], traces["pre_spikes"][:, 0], "C0", "V0 (first group)"),
    ):
        ax.plot(t, V, color=color, label=label)
        fired = t[spikes > 0]
        ax.plot(fired, np.full(fired.size, V_TH), "*", color="k", ms=8, label="spike, then reset")
        ax.axhline(V_TH, color="0.5", ls="--", lw=0.8, label="threshold")
        ax.set_ylabel("V (mV)")
        ax.legend(loc="upper right", fontsize="small")
    ax_pre.set_xlabel("time (ms)")
    fig.suptitle(
        rf"GapJunction: $I_1 = w(V_0 - V_1)$, w = {GAP_W:g} nS, all to all (2 → 3 cells)"
        "\n"
        rf"each pre spike adds $k_{{spikelet}}\,w$ = {GAP_K * GAP_W:g} mV to the second group"
    )
    return fig


def _gap_summary(traces: dict[str, np.ndarray]) -> str:
    n_pre, n_post = traces["pre_spikes"].sum(), traces["post_spikes"].sum()
    return (
        f"gap_junction: first group {n_pre:.0f} spikes, second group {n_post:.0f} spikes in "
        f"{GAP_STEPS * DT:.0f} ms; largest spikelet {traces['dV'].max():.1f} mV"
    )


# -- couplings of rate models -------------------------------------------------------------

NODE_TAU = 10.0
"""Time constant of the rate nodes (ms)."""
COUPLING_STEPS = 1500
"""Steps of the coupling runs: 150 ms."""
PULSE = (20.0, 25.0)
"""The additive example's input pulse into node 0 (start, end; ms), of height 1."""
ADDITIVE_WEIGHTS = np.array([[0.0, 1.0, 0.5], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
"""Additive example: node 0 feeds nodes 1 and 2."""
ADDITIVE_DELAYS_MS = np.array([[0.0, 5.0, 12.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
"""Additive example: its transmission delays (ms)."""
DIFFUSIVE_WEIGHTS = np.array([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]])
"""Diffusive example: three nodes, all coupled both ways."""
DIFFUSIVE_DELAY_MS = 3.0
"""Diffusive example: its delay (ms)."""
DIFFUSIVE_R0 = np.array([1.0, 0.0, -1.0])
"""Diffusive example: the nodes' initial values."""


class RateNodesState(eqx.Module):
    """State of `RateNodes`: the coupling's history and the nodes' activities `r`."""

    coupling: jsyn.DelayState | None
    r: Float[Array, " n"]


class RateNodes(eqx.Module):
    r"""Rate nodes coupled through `coupling`:
    $\tau\,dr_j/dt = -\ell\,r_j + I_j + \text{out}_j$, with $\text{out}$ the coupling of the
    activities at the end of the previous step (held over the step, so the step is exact:
    relaxation towards $I + \text{out}$ with a leak $\ell = 1$, a ramp without)."""

    coupling: jsyn.AbstractCoupling
    r0: Float[Array, " n"]
    leak: bool = eqx.field(static=True)
    tau: float = NODE_TAU

    def init_state(self, n, *, dtype=None) -> RateNodesState:
        r = jnp.asarray(self.r0, dtype)
        return RateNodesState(self.coupling.init_state(r.shape, dtype=dtype), r)

    def step(self, state: RateNodesState, x, dt) -> tuple[RateNodesState, Array]:
        """`x`: the external input of each node. Returns the nodes' coupling input `out`."""
        coupling, out = self.coupling.step(state.coupling, state.r, dt)
        drive = x + out
        if self.leak:
            r = drive + (state.r - drive) * jnp.exp(-dt / self.tau)
        else:
            r = state.r + dt * drive / self.tau
        return RateNodesState(coupling, r), out


def _run_nodes(nodes: RateNodes, inputs) -> dict[str, np.ndarray]:
    _, rec = jsyn.simulate(nodes, inputs, DT, record=lambda s, out: {"r": s.r, "out": out})
    return {"t": DT * np.arange(COUPLING_STEPS), **{k: np.asarray(v) for k, v in rec.items()}}


def additive_traces() -> dict[str, np.ndarray]:
    """Leaky rate nodes (`NODE_TAU`): a pulse into node 0 reaches nodes 1 and 2 through
    `AdditiveCoupling` after 5 and 12 ms. **Returns:** `t` (ms), `input`, `r`, `out`."""
    coupling = jsyn.AdditiveCoupling(jnp.asarray(ADDITIVE_WEIGHTS), ADDITIVE_DELAYS_MS, dt=DT)
    t = DT * np.arange(COUPLING_STEPS)
    pulse = ((t >= PULSE[0]) & (t < PULSE[1])).astype(float)
    inputs = np.zeros((COUPLING_STEPS, 3))
    inputs[:, 0] = pulse
    nodes = RateNodes(coupling, jnp.zeros(3), leak=True)
    return {"input": inputs, **_run_nodes(nodes, jnp.asarray(inputs))}


def diffusive_traces() -> dict[str, np.ndarray]:
    """Three nodes without leak, `DIFFUSIVE_R0` at first, pulled together through
    `DiffusiveCoupling` with a delay of 3 ms. **Returns:** `t` (ms), `r`, `out`."""
    coupling = jsyn.DiffusiveCoupling(jnp.asarray(DIFFUSIVE_WEIGHTS), DIFFUSIVE_DELAY_MS, dt=DT)
    nodes = RateNodes(coupling, jnp.asarray(DIFFUSIVE_R0), leak=False)
    return _run_nodes(nodes, jnp.zeros((COUPLING_STEPS, 3)))


def _plot_nodes(path: Path, title: str, traces: dict[str, np.ndarray]) -> Path:
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    if "input" in traces:
        ax.fill_between(traces["t"], 0, traces["input"][:, 0], color="0.85", label="input")
    for j in range(traces["r"].shape[1]):
        ax.plot(traces["t"], traces["r"][:, j], color=f"C{j}", label=f"node {j}")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("activity r")
    ax.legend(fontsize="small")
    ax.set_title(title)
    return save(fig, path)


def first_rise(traces: dict[str, np.ndarray], node: int) -> float:
    """The time (ms) at which `node`'s coupling input first leaves 0."""
    return float(traces["t"][np.flatnonzero(traces["out"][:, node] != 0.0)[0]])


def _additive_summary(traces: dict[str, np.ndarray]) -> str:
    rises = ", ".join(f"node {j} at {first_rise(traces, j):.1f} ms" for j in (1, 2))
    peaks = ", ".join(f"{traces['r'][:, j].max():.3f}" for j in range(3))
    return (
        f"additive_coupling: the pulse into node 0 at {PULSE[0]:g} ms reaches {rises}; "
        f"peak activities {peaks}"
    )


def _diffusive_summary(traces: dict[str, np.ndarray]) -> str:
    spread = np.ptp(traces["r"], axis=1)
    return (
        f"diffusive_coupling: spread of the three nodes {spread[0]:.3f} at the first step, "
        f"{spread[-1]:.2e} after {COUPLING_STEPS * DT:.0f} ms (delay {DIFFUSIVE_DELAY_MS:g} ms)"
    )


def write(out_dir: Path) -> tuple[list[Path], list[str]]:
    """Simulate and plot the catalogue's examples into `out_dir`: the PNGs written and one
    summary line per example."""
    written, summary = [], []
    for name, synapse, title in _receptor_examples():
        traces = kinetics_traces(synapse)
        written.append(save(receptor_figure(title, traces), out_dir / f"{name}.png"))
        summary.append(kinetics_summary(name, traces))
    traces, iv = kinetics_traces(jsyn.NMDA()), nmda_iv()
    written.append(save(nmda_figure(traces, iv), out_dir / "nmda.png"))
    summary.append(_nmda_summary(traces, iv))
    bursts = gaba_b_traces()
    written.append(save(gaba_b_figure(bursts), out_dir / "gaba_b.png"))
    summary.append(_gaba_b_summary(bursts))
    for name, sets, title in (
        ("stp", STP_SETS, "STP (Tsodyks-Markram): facilitation vs depression"),
        ("std", STD_SETS, "STD: each spike releases U of the available resources"),
    ):
        traces = {label: release_traces(model) for label, model in sets.items()}
        written.append(save(release_figure(title, traces), out_dir / f"{name}.png"))
        summary.append(_release_summary(name, traces))
    traces = gap_traces()
    written.append(save(gap_figure(traces), out_dir / "gap_junction.png"))
    summary.append(_gap_summary(traces))
    traces = additive_traces()
    title = r"AdditiveCoupling: $\mathrm{out}_j = \sum_i c_{ij}\,r_i(t - d_{ij})$, delays 5, 12 ms"
    written.append(_plot_nodes(out_dir / "additive_coupling.png", title, traces))
    summary.append(_additive_summary(traces))
    traces = diffusive_traces()
    title = (
        r"DiffusiveCoupling: $\mathrm{out}_j = \sum_i c_{ij}\,(r_i(t - d) - r_j(t))$,"
        f" d = {DIFFUSIVE_DELAY_MS:g} ms"
    )
    written.append(_plot_nodes(out_dir / "diffusive_coupling.png", title, traces))
    summary.append(_diffusive_summary(traces))
    return written, summary
