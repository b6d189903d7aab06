"""Synthetic evoked trains with known truth, written by the field's own libraries (pyabf's
ABF1 writer, pynwb): stimulus artifacts, a holding-current baseline, white noise and
spontaneous events on top of the current of a known `jsyn.PSC`."""

import datetime

import jax.numpy as jnp
import numpy as np

import jsyn

DT = 0.05  # ms: 20 kHz
T = 6000  # samples: 300 ms per sweep
STIM = np.array([20.0, 40.0, 60.0, 80.0, 100.0, 250.0])  # a 50 Hz train and a recovery pulse
TRUTH = {"U": 0.3, "tau_f": 60.0, "tau_d": 120.0, "tau_rise": 0.8, "tau_decay": 5.0}
TRUTH |= {"g_max": 4.0, "delay": 2.0}
V_HOLD = -70.0
ARTIFACT = np.array([900.0, -500.0, 150.0])  # pA on the 3 samples from each stimulus


def truth_psc(V_hold=V_HOLD):
    d = TRUTH
    return jsyn.PSC(
        jsyn.DualExpon(d["tau_rise"], d["tau_decay"]),
        jsyn.COBA(g_max=d["g_max"], E=0.0),
        stp=jsyn.STP(U=d["U"], tau_f=d["tau_f"], tau_d=d["tau_d"]),
        delay=jsyn.Delay(d["delay"], DT, max_delay=10.0),
        V_hold=V_hold,
        convention="clamp",
    )


def clean_current(V_hold=V_HOLD) -> np.ndarray:
    """The clamp current (pA, inward negative) of the truth, shape `(T,)`."""
    spikes = np.zeros((T, 1))
    spikes[np.round(STIM / DT).astype(int), 0] = 1.0
    _, current = jsyn.simulate(truth_psc(V_hold), jnp.asarray(spikes), DT)
    return np.asarray(current)[:, 0]


def sweeps(n: int = 10, *, noise=4.0, seed=0, V_hold=V_HOLD, events_hz=2.0) -> np.ndarray:
    """`n` sweeps `(n, T)` pA: the truth, a holding current of -30 pA (drifting by a few pA
    from sweep to sweep), white noise, spontaneous events of -12 pA (`events_hz`, Poisson:
    0.6 per sweep on average at 2 Hz) at random times, and a stimulus artifact at each
    stimulus."""
    rng = np.random.default_rng(seed)
    clean = clean_current(V_hold)
    t = DT * np.arange(T)
    out = np.empty((n, T))
    for i in range(n):
        y = clean - 30.0 + rng.normal(0.0, 2.0) + noise * rng.normal(size=T)
        for onset in rng.uniform(0.0, t[-1], size=rng.poisson(events_hz * t[-1] / 1000.0)):
            s = np.clip(t - onset, 0.0, None)
            y -= 12.0 * (np.exp(-s / 4.0) - np.exp(-s / 0.5)) * (t > onset) / 0.7
        for k in np.round(STIM / DT).astype(int):
            y[k : k + ARTIFACT.size] += ARTIFACT
        out[i] = y
    return out


def mixed_psc(V_hold, *, delay=2.0):
    """The truth of a mixed current: an AMPA-like `DualExpon` and an `NMDA` component
    (Mg-blocked), as `jsyn fit --model DualExpon+NMDA` fits it, without STP."""
    d = MIXED
    return jsyn.PSC(
        (jsyn.DualExpon(d["tau_rise"], d["tau_decay"]), jsyn.NMDA(d["nmda_rise"], d["nmda_decay"])),
        (jsyn.COBA(g_max=d["g_ampa"], E=0.0), jsyn.MgBlock(g_max=d["g_nmda"], E=0.0)),
        delay=jsyn.Delay(delay, SMALL_DT, max_delay=10.0),
        V_hold=V_hold,
        convention="clamp",
    )


MIXED = {"tau_rise": 0.8, "tau_decay": 5.0, "nmda_rise": 3.0, "nmda_decay": 60.0}
MIXED |= {"g_ampa": 4.0, "g_nmda": 3.0}
SMALL_DT, SMALL_T = 0.1, 2500  # 10 kHz, 250 ms
SMALL_STIM = np.array([20.0, 40.0, 60.0])


def small_sweeps(psc, n, *, seed=0, noise=3.0, events_hz=2.0) -> np.ndarray:
    """`n` sweeps `(n, SMALL_T)` pA of `psc` driven by `SMALL_STIM` (a cheaper file than
    `sweeps`, for the command line's end-to-end tests): holding current, white noise,
    spontaneous events of -12 pA and artifacts, as `sweeps`."""
    rng = np.random.default_rng(seed)
    spikes = np.zeros((SMALL_T, 1))
    rows = np.round(SMALL_STIM / SMALL_DT).astype(int)
    spikes[rows, 0] = 1.0
    clean = np.asarray(jsyn.simulate(psc, jnp.asarray(spikes), SMALL_DT)[1])[:, 0]
    t = SMALL_DT * np.arange(SMALL_T)
    out = np.empty((n, SMALL_T))
    for i in range(n):
        y = clean - 30.0 + rng.normal(0.0, 2.0) + noise * rng.normal(size=SMALL_T)
        for onset in rng.uniform(0.0, t[-1], size=rng.poisson(events_hz * t[-1] / 1000.0)):
            s = np.clip(t - onset, 0.0, None)
            y -= 12.0 * (np.exp(-s / 4.0) - np.exp(-s / 0.5)) * (t > onset) / 0.7
        for k in rows:
            y[k : k + 2] += ARTIFACT[:2]
        out[i] = y
    return out


def write_abf(path, data: np.ndarray, *, units="pA", dt=DT) -> None:
    """`data` `(sweeps, T)` in `units`, as an ABF1 file at 1/`dt` (default 20 kHz; pyabf's
    writer)."""
    import pyabf.abfWriter

    pyabf.abfWriter.writeABF1(data.astype(np.float32), str(path), 1000.0 / dt, units=units)


def write_nwb(path, data: np.ndarray, *, V_hold=None, ttl=True, dt=DT, stim=STIM) -> None:
    """`data` `(sweeps, T)` pA as an NWB 2 file: one VoltageClampSeries per sweep (in
    amperes, conversion 1e-12), each with its VoltageClampStimulusSeries (the holding
    command, volts) in the IntracellularRecordingsTable, sweeps 1 s apart, and a TTL
    series of the stimuli on the session clock (`ttl`)."""
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.icephys import VoltageClampSeries, VoltageClampStimulusSeries

    n = data.shape[0]
    V_hold = np.full(n, V_HOLD) if V_hold is None else np.asarray(V_hold)
    start = datetime.datetime(2026, 12, 7, tzinfo=datetime.timezone.utc)
    nwb = NWBFile(session_description="jsyn test", identifier="jsyn", session_start_time=start)
    device = nwb.create_device(name="amplifier")
    electrode = nwb.create_icephys_electrode(name="elec0", description="", device=device)
    rate = 1000.0 / dt
    T = data.shape[1]
    for i in range(n):
        common = dict(
            starting_time=float(i), rate=rate, electrode=electrode, sweep_number=np.uint32(i)
        )
        command = VoltageClampStimulusSeries(
            name=f"command{i:02d}", data=np.full(T, V_hold[i] / 1000.0), gain=1.0, **common
        )
        response = VoltageClampSeries(
            name=f"sweep{i:02d}", data=data[i], conversion=1e-12, gain=1.0, **common
        )
        nwb.add_intracellular_recording(electrode=electrode, stimulus=command, response=response)
    if ttl:
        level = np.zeros(int(round(n * rate)))
        for i in range(n):
            for s in stim:
                k = int(round((i * 1000.0 + s) / dt))
                level[k : k + 4] = 5.0
        nwb.add_stimulus(TimeSeries(name="stim_ttl", data=level, unit="volts", rate=rate))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
