"""jsyn.plot: each function draws the data it is given on the axes it returns, with axis
labels that give the quantity and its unit, and refuses mismatched input."""

import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

import jsyn
import jsyn.plot

matplotlib.use("Agg")

T = 0.1 * np.arange(50)


def axes(n: int = 1):
    return Figure().subplots(n, 1)


def segments_x(ax) -> np.ndarray:
    """The x positions of the spike marks (one vertical segment each)."""
    (marks,) = ax.collections
    return np.array([segment[0, 0] for segment in marks.get_segments()])


def test_traces_draws_each_column_and_marks_spikes():
    y = np.stack([np.sin(T), np.cos(T)], axis=1)
    ax = axes()
    out = jsyn.plot.traces(T, y, ylabel="V (mV)", labels=["a", "b"], spikes=[1.0, 2.5], ax=ax)
    assert out is ax
    assert len(ax.lines) == 2
    for line, column, label in zip(ax.lines, y.T, "ab"):
        np.testing.assert_array_equal(line.get_xdata(), T)
        np.testing.assert_array_equal(line.get_ydata(), column)
        assert line.get_label() == label
    np.testing.assert_array_equal(segments_x(ax), [1.0, 2.5])
    assert ax.get_xlabel() == "time (ms)" and ax.get_ylabel() == "V (mV)"


def test_traces_takes_jax_arrays_and_one_trace():
    ax = jsyn.plot.traces(jnp.asarray(T), jnp.asarray(T**2), ax=axes())
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), T**2)
    assert not ax.collections  # no spikes given, none marked


def test_conductance_axis_is_the_open_fraction_or_nS():
    g = np.exp(-T / 8.0)
    ax = jsyn.plot.conductance(T, g, ax=axes())
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), g)
    assert ax.get_ylabel() == jsyn.plot.SYNAPSE_OUTPUT and "dimensionless" in ax.get_ylabel()
    ax = jsyn.plot.conductance(T, np.stack([g, g], 1), g_max=[0.5, 2.0], ax=axes())
    np.testing.assert_allclose(ax.lines[0].get_ydata(), 0.5 * g)
    np.testing.assert_allclose(ax.lines[1].get_ydata(), 2.0 * g)
    assert ax.get_ylabel().endswith("(nS)") and "g_{max}" in ax.get_ylabel()


def test_conductance_of_a_simulation():
    spike_times = [1.0, 2.0]
    g = jsyn.simulate(jsyn.Expon(tau=2.0), jsyn.SpikeTimes(spike_times).raster(T.size, 0.1), 0.1)[1]
    ax = jsyn.plot.conductance(T, g, g_max=3.0, spikes=spike_times, ax=axes())
    np.testing.assert_allclose(ax.lines[0].get_ydata(), 3.0 * np.asarray(g[:, 0]))
    np.testing.assert_array_equal(segments_x(ax), spike_times)


def test_raster_puts_each_spike_at_its_time_and_cell():
    spikes = np.zeros((10, 3))
    spikes[2, 0] = spikes[5, 2] = spikes[7, 1] = 1.0
    ax = jsyn.plot.raster(spikes, 0.5, ax=axes())
    (line,) = ax.lines
    order = np.argsort(line.get_xdata())
    np.testing.assert_array_equal(line.get_xdata()[order], [1.0, 2.5, 3.5])
    np.testing.assert_array_equal(line.get_ydata()[order], [0, 2, 1])
    assert ax.get_xlabel() == "time (ms)" and ax.get_ylabel() == "neuron"


def test_raster_stacks_named_groups():
    e, i = np.zeros((4, 3)), np.zeros((4, 2))
    e[1, 2] = i[3, 0] = 1.0
    ax = jsyn.plot.raster({"E": e, "I": i}, 0.1, t0=10.0, ax=axes())
    assert [line.get_label() for line in ax.lines] == ["E", "I"]
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [10.1])
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [2])
    np.testing.assert_allclose(ax.lines[1].get_xdata(), [10.3])
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [3])  # above the 3 E cells
    assert ax.get_ylim() == (-0.5, 4.5)


def test_fit_draws_data_fit_and_residuals():
    data = np.stack([np.sin(T), 2 * np.sin(T)], axis=1)
    fitted = 0.9 * data
    ax_fit, ax_res = jsyn.plot.fit(T, data, fitted, labels=["c0", "c1"], spikes=[1.0], ax=axes(2))
    np.testing.assert_array_equal(ax_fit.lines[0].get_ydata(), data[:, 0])
    np.testing.assert_array_equal(ax_fit.lines[1].get_ydata(), fitted[:, 0])
    np.testing.assert_array_equal(ax_fit.lines[3].get_ydata(), fitted[:, 1])
    assert [line.get_label() for line in ax_fit.lines[:2]] == ["c0 (data)", "c0 (fit)"]
    np.testing.assert_allclose(ax_res.lines[1].get_ydata(), 0.1 * data[:, 1])
    np.testing.assert_array_equal(ax_res.lines[2].get_ydata(), [0.0, 0.0])  # the zero line
    assert ax_fit.get_ylabel() == "current into the cell (pA)"
    assert ax_res.get_ylabel() == "residual (pA)" and ax_res.get_xlabel() == "time (ms)"
    np.testing.assert_array_equal(segments_x(ax_res), [1.0])


def test_losses_on_a_log_axis():
    history = np.array([10.0, 1.0, 0.5])
    ax = jsyn.plot.losses(history, unit="mV", ax=axes())
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [0, 1, 2])
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), history)
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "mean squared error (mV²)"


def test_iv_of_an_output_law():
    V = np.linspace(-100.0, 40.0, 15)
    free = np.asarray(jsyn.COBA(g_max=1.0, E=0.0).current(1.0, V))
    block = np.asarray(jsyn.MgBlock(g_max=1.0, E=0.0).current(1.0, V))
    ax = jsyn.plot.iv(V, np.stack([free, block], 1), labels=["free", "Mg"], ax=axes())
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), V)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), -V)  # I = g (E - V), E = 0, 1 nS
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), block)
    np.testing.assert_array_equal(ax.lines[2].get_ydata(), [0.0, 0.0])
    assert ax.get_xlabel() == "membrane potential V (mV)"
    assert ax.get_ylabel() == "current into the cell (pA)"


def test_without_ax_each_call_draws_on_a_new_figure():
    import matplotlib.pyplot as plt

    fig, mine = plt.subplots()
    try:
        ax = jsyn.plot.traces(T, T)
        assert ax is not mine and ax.figure is not fig and not mine.lines
        ax_fit, ax_res = jsyn.plot.fit(T, T, T)
        assert ax_fit.figure is ax_res.figure is not ax.figure
    finally:
        plt.close("all")


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: jsyn.plot.traces(T, T[:-1]), "y has 49 samples but t has 50"),
        (lambda: jsyn.plot.traces(T, np.zeros((50, 2)), labels=["a"]), "1 labels for 2 traces"),
        (lambda: jsyn.plot.traces(T, np.zeros((50, 2, 2))), r"shape \(time,\) or \(time, k\)"),
        (lambda: jsyn.plot.traces(T, T, spikes=np.zeros((50, 1))), "jsyn.plot.raster"),
        (lambda: jsyn.plot.conductance(T, T, g_max=[1.0, 2.0]), "g_max must be a scalar"),
        (lambda: jsyn.plot.raster(np.zeros(5), 0.1), r"add a neuron axis"),
        (lambda: jsyn.plot.raster({"E": np.zeros(5)}, 0.1), r"spikes\['E'\]"),
        (lambda: jsyn.plot.raster(np.zeros((5, 2)), 0.0), "dt must be"),
        (lambda: jsyn.plot.fit(T, T, T[:10]), "fitted has 10 samples but t has 50"),
        (lambda: jsyn.plot.fit(T, T, np.zeros((50, 2))), "data has 1 traces but fitted has 2"),
        (lambda: jsyn.plot.fit(T, T, T, ax=Figure().subplots()), "pair of axes"),
        (lambda: jsyn.plot.losses(np.zeros((3, 4))), "one loss per step"),
        (lambda: jsyn.plot.iv(T, T[:3]), "I has 3 samples but V has 50"),
    ],
)
def test_bad_input_is_refused_with_the_fix(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_traces_says_what_it_shows_by_default():
    """Without `ylabel` the axis is a membrane potential in mV, the commonest trace."""
    ax = jsyn.plot.traces(T, T, ax=axes())
    assert ax.get_ylabel() == jsyn.plot.VOLTAGE == "membrane potential V (mV)"


def test_conductance_labels_linear_kinetics_as_a_conductance_not_an_open_fraction():
    """Summed spikes of `Expon` exceed 1: the axis must not call that an open fraction."""
    spikes = jsyn.SpikeTimes([1.0, 1.5, 2.0]).raster(T.size, 0.1)
    g = np.asarray(jsyn.simulate(jsyn.Expon(tau=8.0), spikes, 0.1)[1])
    assert g.max() > 1.0
    ax = jsyn.plot.conductance(T, g, ylabel=jsyn.plot.RELATIVE_CONDUCTANCE, ax=axes())
    assert "open fraction" not in ax.get_ylabel() and "g_{max}" in ax.get_ylabel()
    ax = jsyn.plot.conductance(T, g, g_max=2.0, ylabel="g_e (nS)", ax=axes())
    assert ax.get_ylabel() == "g_e (nS)"


def test_raster_of_named_groups_has_a_legend_with_their_names():
    e, i = np.zeros((4, 3)), np.zeros((4, 2))
    e[1, 2] = i[3, 0] = 1.0
    ax = jsyn.plot.raster({"E": e, "I": i}, 0.1, ax=axes())
    legend = ax.get_legend()
    assert legend is not None and [t.get_text() for t in legend.get_texts()] == ["E", "I"]
    assert jsyn.plot.raster(e, 0.1, ax=axes()).get_legend() is None  # one unnamed group


def test_fit_zooms_into_a_window_where_single_responses_can_be_read():
    t = 0.1 * np.arange(15000)  # 1.5 s
    data = np.sin(t / 7.0)
    ax_fit, ax_zoom, ax_res = jsyn.plot.fit(
        t, data, 0.9 * data, spikes=[100.0, 400.0], title="tau = 7.5 ms [7.1, 7.9]", ax=axes(3)
    )
    assert ax_zoom.get_xlim() == (95.0, 145.0)  # 50 ms from 5 ms before the first spike
    np.testing.assert_array_equal(ax_zoom.lines[0].get_ydata(), data)
    assert ax_zoom.get_ylabel() == ax_fit.get_ylabel() == "current into the cell (pA)"
    assert "zoom" in ax_zoom.get_xlabel() and ax_res.get_xlabel() == "time (ms)"
    assert ax_fit.get_title() == "tau = 7.5 ms [7.1, 7.9]" and ax_fit.title.get_wrap()
    _, ax_zoom, _ = jsyn.plot.fit(t, data, data, zoom=(200.0, 230.0), ax=axes(3))
    assert ax_zoom.get_xlim() == (200.0, 230.0)
    with pytest.raises(ValueError, match="start < stop"):
        jsyn.plot.fit(t, data, data, zoom=(230.0, 200.0), ax=axes(3))
