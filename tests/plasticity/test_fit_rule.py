"""Fitting a plasticity rule to data: `jsyn.fit` recovers the triplet amplitudes from the
pairing-frequency curve (60 pairings at ±10 ms, 0.1-50 Hz) plus 10 % noise, with 95 %
intervals that hold the truth as often as they claim."""

import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from jsyn.demo import plasticity as pl

NAMES = ("A2_plus", "A3_plus", "A2_minus", "A3_minus")
PARAMS = ",".join(NAMES)
GUESS = dict(zip(NAMES, (1e-9, 1e-2, 1e-2, 1e-3)))  # each off by 1.4x to 4x
REPLICATES = 6  # cells per (frequency, lag) condition
NOISE = 0.1  # relative: each cell's change is the rule's times (1 + 0.1 N(0, 1))

TRUTH = pl.triplet_rule()
INPUTS = tuple(map(jnp.asarray, pl.frequency_inputs()))
N_CONDITIONS = INPUTS[0].shape[1]
COLUMNS = np.repeat(np.arange(N_CONDITIONS), REPLICATES)  # one column per cell
CELL_INPUTS = (INPUTS[0][:, COLUMNS], INPUTS[1][:, COLUMNS], INPUTS[2])
N_EVENTS = INPUTS[0].shape[0]


@pytest.fixture(scope="module")
def curve():
    _, dw = jsyn.simulate(pl.Pairings(TRUTH), INPUTS, 1.0)
    return np.asarray(dw[-1])


def datasets(curve, seeds):
    """Targets and weights of `jsyn.fit_many`: the weight change of every cell at the last
    event, nothing before it (weight 0); each condition weighted by the inverse square of
    its mean change over the cells (the noise is relative)."""
    obs = np.stack(
        [
            curve[COLUMNS] * (1.0 + NOISE * np.random.default_rng(s).normal(size=COLUMNS.size))
            for s in seeds
        ]
    )
    mean = np.abs(obs.reshape(len(seeds), N_CONDITIONS, REPLICATES).mean(axis=2))
    targets = np.zeros((len(seeds), N_EVENTS, COLUMNS.size))
    weights = np.zeros_like(targets)
    targets[:, -1] = obs
    weights[:, -1] = 1.0 / mean[:, COLUMNS] ** 2
    return jnp.asarray(targets), jnp.asarray(weights)


def fit_many(curve, seeds):
    guess = pl.triplet_rule(**{k: jsyn.LogPositive(v) for k, v in GUESS.items()})
    targets, weights = datasets(curve, seeds)
    return jsyn.fit_many(
        pl.Pairings(guess),
        CELL_INPUTS,
        targets,
        1.0,
        params=PARAMS,
        weights=weights,
        shared_inputs=True,
    )


def inside(res, name):
    truth = float(getattr(TRUTH, name))
    key = f"rule.{name}"
    return (np.asarray(res.ci_low[key]) < truth) & (truth < np.asarray(res.ci_high[key]))


@pytest.mark.slow
def test_recovers_the_triplet_amplitudes_within_their_intervals(curve):
    # one data set, as in the notebook (seed 2), with jsyn.fit. Four 95 % intervals all
    # hold the truth in about 0.95**4 = 81 % of data sets: of seeds 0-11, 0, 1 and 8 miss
    # one parameter each; the next test checks that this is the rate the intervals claim.
    targets, weights = datasets(curve, [2])
    guess = pl.triplet_rule(**{k: jsyn.LogPositive(v) for k, v in GUESS.items()})
    res = jsyn.fit(
        pl.Pairings(guess), CELL_INPUTS, targets[0], 1.0, params=PARAMS, weights=weights[0]
    )
    assert res.converged, res.message
    for name in NAMES:
        assert inside(res, name), (name, res.summary())
    # the three amplitudes the curve determines are recovered to within 10 %; A3_minus (a
    # small correction to depression at high frequency) only to its (wide) interval
    for name in ("A2_plus", "A3_plus", "A2_minus"):
        key = f"rule.{name}"
        assert abs(float(res.value[key]) / float(getattr(TRUTH, name)) - 1.0) < 0.1, name
        assert float(res.ci_high[key]) / float(res.ci_low[key]) < 1.3, name


@pytest.mark.slow
def test_intervals_hold_the_truth_about_95_percent_of_the_time(curve):
    # 200 noisy data sets, each fitted on its own: a calibrated 95 % interval holds the
    # truth in 95 % of them (binomial sd 1.5 %); intervals half as wide would hold it in
    # about 68 %, twice as wide in about 100 %
    res = fit_many(curve, range(200))
    assert np.all(np.asarray(res.status) == "converged"), res.message
    for name in NAMES:
        coverage = inside(res, name).mean()
        assert 0.9 <= coverage <= 0.99, (name, coverage)
