"""jsyn.io.evoked_train and detect_stimuli: stimulus times, averaging, baseline, blanking."""

import numpy as np
import pytest

from jsyn import io

DT = 0.05
STIM = [20.0, 40.0, 60.0, 80.0, 100.0]


def artifact_sweeps(n=6, *, seed=0, artifact=(900.0, -500.0, 150.0), V_hold=None):
    """Sweeps of 150 ms: -30 pA holding current, 4 pA noise, an EPSC-like -80 pA
    (rise 1 ms, decay 5 ms) 2 ms after each stimulus, and an artifact at each stimulus."""
    rng = np.random.default_rng(seed)
    t = DT * np.arange(3000)
    clean = np.zeros_like(t)
    for s in STIM:
        u = np.clip(t - s - 2.0, 0.0, None)
        clean -= 80.0 * (np.exp(-u / 5.0) - np.exp(-u / 1.0)) * (u > 0) / 0.53
    traces = clean[:, None] - 30.0 + 4.0 * rng.normal(size=(t.size, n))
    for s in STIM:
        k = int(round(s / DT))
        traces[k : k + len(artifact)] += np.asarray(artifact)[:, None]
    rec = io.Recording(
        t=t,
        traces=traces,
        names=tuple(f"sweep {i}" for i in range(n)),
        V_hold=None if V_hold is None else np.asarray(V_hold, dtype=float),
        source="synthetic",
    )
    return rec, clean


@pytest.mark.parametrize("artifact", [(900.0, -500.0, 150.0), (-300.0, 250.0), (120.0,)])
def test_detects_the_artifacts_at_their_first_sample(artifact):
    rec, _ = artifact_sweeps(artifact=artifact)
    np.testing.assert_allclose(io.detect_stimuli(rec.t, rec.traces), STIM)


def test_without_artifacts_nothing_is_detected():
    """The synaptic currents (a few pA per sample) and the noise stay below the threshold:
    detection says so and invents no stimulus."""
    rec, _ = artifact_sweeps(artifact=(0.0,))
    with pytest.raises(io.RecordingError, match="synthetic: no stimulus artifact found"):
        io.evoked_train(rec, stim="auto")
    with pytest.raises(io.RecordingError, match="no stimulus artifact found"):
        io.detect_stimuli(rec.t, np.zeros_like(rec.t))


def test_average_baseline_and_blanking():
    rec, clean = artifact_sweeps()
    train = io.evoked_train(rec, stim="auto", baseline=10.0, blank=0.5)
    assert train.target.shape == (3000, 1) and train.names == ("mean of 6 (sweep 0 .. sweep 5)",)
    # the mean of [10, 20) ms, -30 pA +- 4/sqrt(6 * 200), is subtracted
    assert train.baseline[0] == pytest.approx(-30.0, abs=0.5)
    assert train.noise_std[0] == pytest.approx(4.0 / np.sqrt(6), rel=0.15)
    w = train.weights[:, 0]
    for s in STIM:
        k = int(round(s / DT))
        assert w[k : k + 10].tolist() == [0.0] * 10 and w[k + 10] == 1.0 and w[k - 1] == 1.0
    kept = w > 0
    resid = (train.target[:, 0] - clean)[kept]
    assert np.abs(resid.mean()) < 0.5 and resid.std() == pytest.approx(4.0 / np.sqrt(6), rel=0.15)
    assert train.spikes[:, 0].sum() == 5 and np.flatnonzero(train.spikes[:, 0]).tolist() == [
        400,
        800,
        1200,
        1600,
        2000,
    ]
    assert any("5 stimuli detected from the artifacts" in n for n in train.notes)


def test_sweeps_at_two_holding_potentials_average_apart_or_stay_apart():
    rec, _ = artifact_sweeps(V_hold=[-70, -70, 40, 40, -70, 40])
    train = io.evoked_train(rec, stim=STIM)
    assert train.V_hold.tolist() == [-70.0, 40.0] and train.target.shape == (3000, 2)
    assert train.names[1] == "mean of 3 (sweep 2 .. sweep 5) at 40 mV"
    apart = io.evoked_train(rec, stim=STIM, average=False)
    assert apart.target.shape == (3000, 6) and apart.V_hold.tolist() == rec.V_hold.tolist()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"stim": [20.0, 400.0]}, r"stimulus time 400.0 ms lies outside the sweep \[0, 149.95\]"),
        ({"stim": [0.5]}, r"baseline window \[-4.5, 0.5\) ms holds 10 samples|holds"),
        ({"stim": STIM, "blank": -1.0}, r"and blank >= 0 ms \(got 5.0, -1\)"),
    ],
)
def test_bad_choices_are_named(kwargs, match):
    rec, _ = artifact_sweeps(n=2)
    if kwargs["stim"] == [0.5]:
        kwargs["stim"] = [0.05]
        match = r"the baseline window \[-4.95, 0.05\) ms holds 1 samples"
    with pytest.raises(io.RecordingError, match=match):
        io.evoked_train(rec, **kwargs)
