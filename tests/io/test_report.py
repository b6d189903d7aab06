"""jsyn.io.report: response amplitudes, paired-pulse ratios, the rise as the shorter."""

import numpy as np
import pytest

from jsyn.io.report import paired_pulse_ratios, pulse_amplitudes, rise_first


def test_amplitudes_and_ratios_of_a_known_train():
    t = 0.1 * np.arange(1000)
    stim = [10.0, 30.0, 50.0]
    sizes = [-100.0, -150.0, -75.0]
    y = np.zeros_like(t)
    for s, a in zip(stim, sizes):
        u = np.clip(t - s, 0.0, None)
        y += a * (t > s) * (np.exp(-u / 3.0) - np.exp(-u / 0.5))
    peak = 3.0 * 0.5 / 2.5 * np.log(6.0)  # the peak time of one response
    scale = np.exp(-peak / 3.0) - np.exp(-peak / 0.5)
    amps, idx = pulse_amplitudes(t, y, stim, half_width=0)
    np.testing.assert_allclose(amps / scale, sizes, rtol=0.02)  # later ones ride on tails
    np.testing.assert_allclose(t[idx] - stim, peak, atol=0.1)
    np.testing.assert_allclose(paired_pulse_ratios(amps), amps[1:] / amps[0])
    # measured at given samples (the fit's peaks), blanked samples ignored when searching
    weights = np.ones_like(t)
    weights[idx[0]] = 0.0
    _, moved = pulse_amplitudes(t, y, stim, weights, half_width=0)
    assert moved[0] != idx[0] and moved[1] == idx[1]
    at, _ = pulse_amplitudes(t, y, stim, at=idx, half_width=0)
    np.testing.assert_array_equal(at, y[idx])
    assert np.isnan(paired_pulse_ratios([0.0, 1.0])).all()


@pytest.mark.parametrize("rise, decay, swapped", [(1.0, 5.0, False), (5.0, 1.0, True)])
def test_the_rise_is_reported_as_the_shorter(rise, decay, swapped):
    values = {
        "synapse.tau_rise": {"value": rise, "ci_low": rise / 2},
        "synapse.tau_decay": {"value": decay, "ci_low": decay / 2},
        "output.g_max": {"value": 2.0},
    }
    out, did = rise_first(values, "synapse.")
    assert did is swapped
    assert out["synapse.tau_rise"]["value"] == 1.0 and out["synapse.tau_decay"]["value"] == 5.0
    assert out["synapse.tau_rise"]["ci_low"] == 0.5  # the whole entry moves
    assert out["output.g_max"] == values["output.g_max"]
    assert rise_first({"synapse.tau": {"value": 3.0}}, "synapse.") == (
        {"synapse.tau": {"value": 3.0}},
        False,
    )
