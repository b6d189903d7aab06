"""The numbers behind `jsyn demo`'s catalogue figures, against independent references."""

import numpy as np
import pytest

import jsyn
from jsyn.demo import catalogue as cat, plasticity as pl

DT = 0.1


def test_nmda_iv_follows_jahr_stevens():
    iv = cat.nmda_iv()
    V = iv["V"]
    block = 1.0 / (1.0 + (1.2 / 3.57) * np.exp(-0.062 * V))
    np.testing.assert_allclose(iv["unblocked"], block, rtol=1e-6)
    np.testing.assert_allclose(iv["I_free"], -V, rtol=1e-6, atol=1e-5)  # 1 nS, E = 0 mV
    np.testing.assert_allclose(iv["I_block"], -V * block, rtol=1e-6, atol=1e-5)
    # The region of negative slope: the inward current grows as V rises from -100 mV.
    peak = V[np.argmax(iv["I_block"])]
    assert -40.0 < peak < -10.0


@pytest.mark.slow  # 5 s in the default lane (2 workers, 2 cores)
def test_gaba_b_needs_bursts():
    peaks = [tr["g"].max() for tr in cat.gaba_b_traces().values()]
    assert peaks[0] > 0.0
    assert peaks[0] < peaks[1] < peaks[2]
    assert peaks[2] > 1000.0 * peaks[0]  # G^4: ten spikes open far more than ten times one


def np_release(spike_times, U, tau_f, tau_d):
    """The STP rule of docs/models.md spike by spike, with exact recovery between spikes; tau_f=None
    is STD (u fixed at U)."""
    u, x, last, out = 0.0, 1.0, None, []
    for t in spike_times:
        if last is not None:
            x = 1.0 - (1.0 - x) * np.exp(-(t - last) / tau_d)
            u = u * np.exp(-(t - last) / tau_f) if tau_f else u
        u = u + U * (1.0 - u) if tau_f else U
        r = u * x
        x -= r
        out.append(r)
        last = t
    return np.array(out)


@pytest.mark.parametrize(
    "model,params",
    [
        (cat.STP_SETS["facilitating"], (0.1, 1000.0, 50.0)),
        (cat.STP_SETS["depressing"], (0.5, 20.0, 800.0)),
        (cat.STD_SETS["U = 0.5"], (0.5, None, 200.0)),
    ],
)
def test_release_efficacies_match_the_spike_by_spike_rule(model, params):
    tr = cat.release_traces(model)
    r = tr["efficacy"][tr["pre_spikes"] > 0]
    np.testing.assert_allclose(r, np_release(cat.TRAIN, *params), rtol=1e-5)


def test_facilitation_and_depression_go_their_ways():
    fac = cat.release_traces(cat.STP_SETS["facilitating"])
    dep = cat.release_traces(cat.STP_SETS["depressing"])
    r_fac = fac["efficacy"][fac["pre_spikes"] > 0][:10]
    r_dep = dep["efficacy"][dep["pre_spikes"] > 0][:10]
    assert np.all(np.diff(r_fac) > 0) and np.all(np.diff(r_dep) < 0)


def test_gap_spikelets_are_k_w_per_presynaptic_spike():
    tr = cat.gap_traces()
    expected = cat.GAP_K * cat.GAP_W * tr["pre_spikes"].sum(axis=1)
    np.testing.assert_allclose(tr["dV"], np.repeat(expected[:, None], 3, axis=1), rtol=1e-12)
    assert tr["pre_spikes"].sum() > 0 and tr["post_spikes"].sum() > 0


def test_additive_coupling_arrives_after_its_delays():
    tr = cat.additive_traces()
    r0 = tr["r"][:, 0]
    for node, weight, delay_ms in ((1, 1.0, 5.0), (2, 0.5, 12.0)):
        lag = round(delay_ms / DT) + 1  # the delay, plus the step a node reads the last one
        np.testing.assert_allclose(tr["out"][lag:, node], weight * r0[:-lag], rtol=1e-12)
        np.testing.assert_array_equal(tr["out"][:lag, node], 0.0)
        assert cat.first_rise(tr, node) == pytest.approx(cat.PULSE[0] + delay_ms + DT)


def test_diffusive_coupling_pulls_the_nodes_together():
    tr = cat.diffusive_traces()
    spread = np.ptp(tr["r"], axis=1)
    assert spread[0] > 1.9 and spread[-1] < 1e-9


@pytest.mark.slow  # ~1 s of CPU, most of it compiling
def test_stdp_window_equals_the_pair_rule():
    tr = pl.window_traces()
    assert tr["lag"].min() == -100.0 and tr["lag"].max() == 100.0
    np.testing.assert_allclose(tr["dw"], tr["analytic"], rtol=1e-9, atol=1e-14)
    assert np.all(np.sign(tr["dw"]) == np.where(tr["lag"] >= 0, 1.0, -1.0))


def test_triplet_curve_follows_sjostrom():
    tr = pl.triplet_curve()
    assert tr["post_pre"][0] < -0.1 and abs(tr["pre_post"][0]) < 1e-6  # 0.1 Hz
    assert tr["pre_post"][-1] > 0.05 and tr["post_pre"][-1] > 0.05  # 50 Hz
    assert np.all(np.diff(tr["pre_post"]) > 0)


@pytest.mark.slow  # ~1 s of CPU, most of it compiling
def test_pairings_event_by_event_equal_the_network_on_its_grid():
    # the protocols at 10-50 Hz in a Network of two SpikeTimes groups, on a 5 ms grid (every
    # spike time on it, where the rule is exact), against Pairings' one step per spike time
    rule = pl.triplet_rule()
    cases = [(f, lag) for f in pl.FREQUENCIES[1:] for lag in pl.PAIR_LAGS]
    protocols = [pl.frequency_protocol(f, lag) for f, lag in cases]
    _, dw = jsyn.simulate(pl.Pairings(rule), pl.pairing_inputs(protocols), 1.0)
    n, cells = len(cases), np.repeat(np.arange(len(cases)), pl.N_PAIRS)
    pre = np.concatenate([a for a, _ in protocols])
    post = np.concatenate([b for _, b in protocols])
    net = jsyn.Network(
        {"pre": jsyn.SpikeTimes(pre, cells, n=n), "post": jsyn.SpikeTimes(post, cells, n=n)},
        {
            "p": jsyn.Projection(
                jsyn.Sparse(np.arange(n), np.arange(n), n, n, w=0.0),
                jsyn.Expon(),
                jsyn.CUBA(),
                pre="pre",
                post="post",
                plasticity=rule,
            )
        },
    )
    grid = 5.0
    n_steps = int(round(post.max() / grid)) + 2
    final, _ = jsyn.simulate(net, None, grid, n_steps=n_steps, record=lambda s, o: ())
    np.testing.assert_allclose(final.projections["p"].w, dw[-1], rtol=1e-9, atol=1e-15)


# -- the figures: what their axes say, and what they leave out (labels and limits, not pixels)


def test_linear_kinetics_are_labelled_a_conductance_in_units_of_g_max():
    """Summed spikes of DualExpon reach 1.14: its axis must not say "open fraction"."""
    from jsyn.demo import basics

    traces = basics.kinetics_traces(jsyn.DualExpon())
    assert traces["g"].max() > 1.0
    (_, ax_g) = basics.linear_kinetics_figure("DualExpon", traces).axes
    assert ax_g.get_ylabel() == jsyn.plot.RELATIVE_CONDUCTANCE
    assert "open fraction" not in ax_g.get_ylabel()
    (_, ax_g) = cat.receptor_figure("AMPA", cat.kinetics_traces(jsyn.AMPA())).axes
    assert ax_g.get_ylabel() == jsyn.plot.OPEN_FRACTION


def test_release_figure_labels_both_panels_and_does_not_join_the_recovery_spike():
    traces = {label: cat.release_traces(model) for label, model in cat.STP_SETS.items()}
    ax_r, ax_g = cat.release_figure("STP", traces).axes
    assert ax_r.get_xlabel() and ax_g.get_xlabel()
    for line, tr in zip(ax_r.lines, traces.values()):
        t, r = line.get_xdata(), line.get_ydata()
        gap = np.flatnonzero(np.isnan(r))
        assert gap.size == 1 and t[gap[0] - 1] == cat.TRAIN[9] and t[gap[0] + 1] == cat.TRAIN[10]
        np.testing.assert_array_equal(r[~np.isnan(r)], tr["efficacy"][tr["pre_spikes"] > 0])


def test_gap_junction_figure_marks_each_spike_of_the_cells_shown():
    traces = cat.gap_traces()
    ax_post, ax_pre = cat.gap_figure(traces).axes
    for ax, spikes in ((ax_post, traces["post_spikes"]), (ax_pre, traces["pre_spikes"])):
        (marks,) = [line for line in ax.lines if line.get_label() == "spike, then reset"]
        np.testing.assert_allclose(marks.get_xdata(), traces["t"][spikes[:, 0] > 0])
        assert marks.get_xdata().size > 0
        assert "spike, then reset" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_gaba_b_log_axis_spans_a_few_decades_and_keeps_every_response():
    traces = cat.gaba_b_traces()
    (ax,) = cat.gaba_b_figure(traces).axes
    low, high = ax.get_ylim()
    assert ax.get_yscale() == "log" and high / low <= 10.0 ** (cat.GABA_B_DECADES + 1)
    for tr in traces.values():
        assert low < tr["g"].max() < high  # one spike's response stays on the axis


def test_nmda_iv_is_drawn_inward_negative_and_says_so():
    traces, iv = cat.kinetics_traces(jsyn.NMDA()), cat.nmda_iv()
    _, ax_iv = cat.nmda_figure(traces, iv).axes
    assert "inward negative" in ax_iv.get_ylabel()
    np.testing.assert_allclose(ax_iv.lines[1].get_ydata(), -iv["I_block"])
    at_minus_70 = np.argmin(np.abs(iv["V"] + 70.0))
    assert ax_iv.lines[1].get_ydata()[at_minus_70] < 0.0  # inward at rest: below zero
