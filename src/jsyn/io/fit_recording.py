"""`fit_recording`: from a recording on disk to a fitted `jsyn.PSC` with intervals, the
pipeline behind `jsyn fit` (read, prepare the evoked train, build the model, fit, report).

Every choice it makes (stimulus times, averaging, baseline, blanking, initial guesses,
bounds) is listed in `RecordingFit.settings` and `.notes`, and printed by `jsyn fit`.
"""

import dataclasses
from pathlib import Path

import numpy as np

from .evoked import EvokedTrain, evoked_train
from .recording import Recording, RecordingError, example_path, load_recording
from .report import paired_pulse_ratios, pulse_amplitudes, rise_first

MODELS = {
    # model: (default parameters to fit, output law, reversal potential E in mV)
    "Expon": (("tau", "g_max"), "COBA", 0.0),
    "Alpha": (("tau_decay", "g_max"), "COBA", 0.0),
    "DualExpon": (("tau_rise", "tau_decay", "g_max"), "COBA", 0.0),
    "AMPA": (("beta", "g_max"), "COBA", 0.0),  # alpha trades off against g_max
    "GABAa": (("beta", "g_max"), "COBA", -80.0),
    "NMDA": (("tau_rise", "tau_decay", "g_max"), "MgBlock", 0.0),
}
"""The receptor models `fit_recording` builds: the parameters it fits by default, the
output law and the default reversal potential (mV). Join two with `+` for a mixed
current (`"DualExpon+NMDA"`: AMPA-like and NMDA components, fitted jointly)."""

STP_MODELS = {"STP": ("U", "tau_f", "tau_d"), "STD": ("U", "tau")}
"""Short-term plasticity models and the parameters fitted with them."""


@dataclasses.dataclass(frozen=True)
class RecordingFit:
    """What `fit_recording` returns.

    **Attributes:**
    - `result`: the `jsyn.FitResult` (`fit`, or `fit_many` with `per_sweep=True`).
    - `train`: the `EvokedTrain` fitted (target, drive, weights, stimulus times).
    - `fitted`: the fitted model's current, shaped like `train.target` (one sweep per
      leading entry with `per_sweep`).
    - `values`: `{parameter: {"value", "stderr", "ci_low", "ci_high"}}` as reported (a
      difference of exponentials with its rise the shorter time constant).
    - `ppr_data`, `ppr_fit`: paired-pulse ratios $A_n/A_1$ of the first column (or
      sweep), measured on the data and on the fit at the fit's peaks; `None` for a single
      stimulus.
    - `settings`: `(name, value, default)` of every choice, `default` True where the
      user left it.
    - `notes`: what the reader and the preparation did, one line each.
    - `model_name`, `source`, `convention`.
    """

    result: object
    train: EvokedTrain
    fitted: np.ndarray
    values: dict
    ppr_data: np.ndarray | None
    ppr_fit: np.ndarray | None
    settings: tuple
    notes: tuple[str, ...]
    model_name: str
    source: str
    convention: str

    @property
    def converged(self) -> bool:
        """Whether every fit converged (the only success)."""
        return bool(np.all(np.asarray(self.result.converged)))

    def payload(self) -> dict:
        """The report as JSON-ready data (NaN and infinities as `None`)."""
        res = self.result
        return {
            "model": self.model_name,
            "recording": self.source,
            "convention": self.convention,
            "settings": {name: _plain(value) for name, value, _ in self.settings},
            "notes": list(self.notes),
            "dt": self.train.dt,
            "stim": self.train.stim.tolist(),
            "columns": list(self.train.names),
            "V_hold": None if self.train.V_hold is None else self.train.V_hold.tolist(),
            "level": res.level,
            "errors": res.errors,
            "params": {
                name: {key: json_numbers(v) for key, v in entry.items()}
                for name, entry in self.values.items()
            },
            "ppr_data": None if self.ppr_data is None else json_numbers(self.ppr_data),
            "ppr_fit": None if self.ppr_fit is None else json_numbers(self.ppr_fit),
            "loss": json_numbers(res.loss),
            "noise_std": json_numbers(res.noise_std),
            "baseline_noise_std": json_numbers(self.train.noise_std),
            "n_steps": json_numbers(res.n_steps),
            "converged": self.converged,
            "status": np.asarray(res.status).tolist(),
            "message": res.message,
        }


def json_numbers(x):
    """A number or nested list for JSON, with NaN and infinities as `None` (strict JSON
    has no NaN)."""
    a = np.asarray(x, dtype=float)
    return np.where(np.isfinite(a), a, None).tolist()


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value if isinstance(value, int | float | str | bool | type(None)) else str(value)


def _settings(**chosen):
    """`(name, value, default)` triples from `name=(value, default_value)`."""
    return tuple((name, v, v == d) for name, (v, d) in chosen.items())


def _read(path, *, sweeps, channel, V_hold, spikes, columns) -> Recording:
    """The recording; sets of sweeps (one string each) are read apart and joined, each
    with its own holding potential (one `V_hold` per set, or the file's)."""
    sets = [None] if sweeps is None or isinstance(sweeps, str) else list(sweeps)
    sets = [sweeps] if isinstance(sweeps, str) else sets
    holds = [None] * len(sets) if V_hold is None else list(np.atleast_1d(V_hold))
    if len(holds) != len(sets):
        if len(sets) == 1:
            holds = [holds]  # one value per trace of one set
        else:
            raise RecordingError(
                f"{path}: {len(holds)} holding potentials for {len(sets)} sets of sweeps; "
                "give one per set (--V-hold -70,40 for --sweeps 0-4 --sweeps 5-9)"
            )
    parts = [
        load_recording(path, spikes=spikes, V_hold=v, columns=columns, channel=channel, sweeps=s)
        for s, v in zip(sets, holds)
    ]
    if len(parts) == 1:
        return parts[0]
    if any(p.V_hold is None for p in parts):
        raise RecordingError(f"{path}: no holding potential; pass one per set (--V-hold)")
    first = parts[0]
    return dataclasses.replace(
        first,
        traces=np.concatenate([p.traces for p in parts], axis=1),
        names=tuple(n for p in parts for n in p.names),
        V_hold=np.concatenate([p.V_hold for p in parts]),
        sweep_start=None
        if first.sweep_start is None
        else np.concatenate([p.sweep_start for p in parts]),
    )


def _baseline(rec: Recording, stim, baseline) -> float | None:
    """The baseline window to use: `baseline` ms, or none when fewer than 2 samples come
    before the first of the known stimulus times."""
    if baseline is None or baseline <= 0:
        return None
    times = None if isinstance(stim, str) else np.asarray(stim, dtype=float)
    if times is not None and times.size and times.min() - rec.t[0] < 2 * rec.dt:
        return None
    return baseline


def fit_recording(
    path=None,
    *,
    model: str,
    params=None,
    stp: str | None = None,
    max_delay: float | None = None,
    stim=None,
    blank: float = 0.0,
    baseline: float | None | str = "auto",
    sweeps=None,
    channel=None,
    V_hold=None,
    E=None,
    spikes=None,
    columns=None,
    convention: str = "clamp",
    per_sweep: bool = False,
    n_starts: int = 1,
    tol: float | None = None,
    errors: str = "auto",
) -> RecordingFit:
    """Fit `PSC([stp ->] model -> output law [-> delay])` to the evoked currents of a file.

    **Arguments:**
    - `path`: a `.csv`, `.npz`, `.abf` or `.nwb` recording (default: the shipped example).
    - `model`: a key of `MODELS`, or two joined by `+` for a mixed current.
    - `params`: the names to fit (default: the model's, `STP_MODELS`' and `delay`).
    - `stp`: `None`, `"STP"` or `"STD"`.
    - `max_delay`: fit a latency (ms), bounded to `[0, max_delay]`; `None`: no delay.
    - `stim`: `"protocol"`, `"auto"`, or times (ms); default the file's stimulus (or
      spike) times when it has them, else `"auto"`.
    - `baseline`: as `evoked_train`; default `"auto"`: 5 ms for files of sweeps (ABF,
      NWB), none for CSV and NPZ (taken to be free of a holding current).
    - `blank`, `per_sweep`: as `evoked_train` (`per_sweep`: one fit per sweep
      with `jsyn.fit_many`, else the sweeps of each holding potential averaged; the
      columns of a CSV or NPZ file are not averaged but fitted together).
    - `sweeps`, `channel`: which sweeps (a string `"0-9"`, or a list of such strings, one
      set per holding potential) and which channel (ABF index or NWB electrode).
    - `V_hold`: holding potential(s) (mV) where the file does not give them.
    - `E`: reversal potential(s) (mV), default per model; `spikes`, `columns`: as
      `load_recording`; `convention`: of the recorded current (default `"clamp"`).
    - `n_starts`, `tol`: multi-start and the stopping tolerance, as `jsyn.fit`.
    - `errors`: what the intervals rest on. `"sweeps"`: the sweep-to-sweep variability
      of the average (`jsyn.sweep_intervals`: any correlation of the noise in time,
      spontaneous events and baseline errors included; Student's $t$); `"residuals"`:
      `jsyn.fit`'s, independent noise of equal variance. Default `"auto"`: `"sweeps"`
      when at least 2 sweeps are averaged per column, else `"residuals"` (a note says
      so).

    **Returns:** a `RecordingFit`. **Raises:** `RecordingError`/`ValueError` for bad input.
    """
    import jax.numpy as jnp

    import jsyn

    path = example_path() if path is None else Path(path)
    names = model.split("+")
    unknown = [n for n in names if n not in MODELS]
    if unknown or len(names) > 2:
        raise ValueError(
            f"unknown model {model!r}; use one of {', '.join(MODELS)}, or two joined by '+'"
        )
    if stp is not None and stp not in STP_MODELS:
        raise ValueError(f"unknown short-term plasticity {stp!r}; use STP or STD")
    if max_delay is not None and not max_delay > 0:
        raise ValueError(f"max_delay must be > 0 ms (got {max_delay}); or leave it out")
    if int(n_starts) < 1:
        raise ValueError(f"n_starts must be >= 1 (got {n_starts})")
    if errors not in ("auto", "sweeps", "residuals"):
        raise ValueError(f"unknown errors {errors!r}; use auto, sweeps or residuals")
    rec = _read(path, sweeps=sweeps, channel=channel, V_hold=V_hold, spikes=spikes, columns=columns)
    sweeps_file = rec.sweep_start is not None
    if columns is None and not sweeps_file and len(rec.names) > 1:
        raise RecordingError(
            f"{path}: has {len(rec.names)} columns besides time and spikes "
            f"({', '.join(rec.names)}); name the current(s) to fit with --current COLUMN "
            "(columns=; comma-separated for several traces); a spike column must be named "
            "'spikes'"
        )
    if rec.V_hold is None:
        raise RecordingError(
            f"{path}: no holding potential; pass --V-hold MV (V_hold=) or add "
            "'# V_hold = MV' to the file"
        )
    stim_choice = stim if stim is not None else ("protocol" if rec.spikes is not None else "auto")
    if isinstance(baseline, str) and baseline == "auto":
        baseline = 5.0 if sweeps_file else None
    window = _baseline(rec, rec.spikes if stim_choice == "protocol" else stim_choice, baseline)
    train = evoked_train(
        rec, stim=stim_choice, average=sweeps_file and not per_sweep, baseline=window, blank=blank
    )
    notes = [*rec.notes, *train.notes]
    if per_sweep and np.unique(train.V_hold).size > 1:
        raise RecordingError(
            f"{path}: one fit per sweep needs one holding potential (got "
            f"{np.unique(train.V_hold).tolist()} mV); fit each set of sweeps apart"
        )
    E_values = [MODELS[n][2] for n in names] if E is None else list(np.atleast_1d(E))
    if len(E_values) != len(names):
        raise ValueError(f"give one reversal potential per component ({len(names)})")
    fit_names, psc, settings_extra = _build(
        jsyn, names, E_values, stp, max_delay, train, convention, params, per_sweep
    )
    spikes_in = jnp.asarray(train.spikes)
    target = jnp.asarray(train.target)
    weights = jnp.asarray(train.weights) if blank > 0 else None
    if per_sweep:
        result = jsyn.fit_many(
            psc,
            spikes_in[:, :1],
            jnp.moveaxis(target, 1, 0)[:, :, None],
            train.dt,
            params=list(fit_names),
            shared_inputs=True,
            weights=weights,
            n_starts=n_starts,
            tol=tol,
            convention=convention,
        )
    else:
        result = jsyn.fit(
            psc,
            spikes_in,
            target,
            train.dt,
            params=list(fit_names),
            weights=weights,
            n_starts=n_starts,
            tol=tol,
            convention=convention,
        )
    errors_used = _errors(train, errors, per_sweep, path)
    if errors_used == "sweeps":
        result = jsyn.sweep_intervals(
            result, spikes_in, train.sweeps.T, train.dt, columns=train.columns, weights=weights
        )
        notes.append(
            f"intervals from the variability between the {train.columns.size} sweeps "
            "(jsyn.sweep_intervals; Student's t)"
        )
    else:
        notes.append(
            "intervals from the residuals, as independent noise of equal variance (too "
            "narrow where the noise is correlated: spontaneous events, baseline errors)"
        )
    fitted = _predict(jsyn, result, spikes_in, train.dt, per_sweep)
    keys = _KEYS + (("dof",) if result.dof is not None else ())
    values = {
        name: {key: np.asarray(getattr(result, key)[name]) for key in keys} for name in result.names
    }
    for i in range(len(names)):
        prefix = "synapse." if len(names) == 1 else f"synapse[{i}]."
        values, swapped = rise_first(values, prefix) if not per_sweep else (values, False)
        if swapped:
            notes.append(
                f"{prefix}tau_rise and tau_decay came back in the other order; reported "
                "with the rise as the shorter (a difference of exponentials is symmetric in "
                "them: the same current)"
            )
    ppr_data = ppr_fit = None
    if train.stim.size > 1:
        first_fit = fitted[0][:, 0] if per_sweep else fitted[:, 0]
        a_fit, peaks = pulse_amplitudes(train.t, first_fit, train.stim, train.weights)
        a_data, _ = pulse_amplitudes(train.t, train.target[:, 0], train.stim, at=peaks)
        ppr_data, ppr_fit = paired_pulse_ratios(a_data), paired_pulse_ratios(a_fit)
    settings = (
        _settings(
            model=(model, None),
            stp=(stp, None),
            max_delay=(max_delay, None),
            stim=(stim_choice if isinstance(stim_choice, str) else "the times given", None),
            blank=(blank, 0.0),
            baseline=(baseline, 5.0 if sweeps_file else None),
            sweeps=(sweeps, None),
            channel=(channel, None),
            per_sweep=(per_sweep, False),
            convention=(convention, "clamp"),
            E=(E_values, [MODELS[n][2] for n in names]),
            n_starts=(n_starts, 1),
            errors=(
                errors_used if errors == "auto" else errors,
                errors_used if errors == "auto" else None,
            ),
        )
        + settings_extra
    )
    return RecordingFit(
        result=result,
        train=train,
        fitted=fitted,
        values=values,
        ppr_data=ppr_data,
        ppr_fit=ppr_fit,
        settings=settings,
        notes=tuple(notes),
        model_name=model,
        source=str(path),
        convention=convention,
    )


_KEYS = ("value", "stderr", "ci_low", "ci_high")


def _errors(train: EvokedTrain, errors: str, per_sweep: bool, path) -> str:
    """`"sweeps"` or `"residuals"`: what the intervals will rest on."""
    possible = not per_sweep and train.sweeps is not None and np.bincount(train.columns).min() >= 2
    if errors == "sweeps" and not possible:
        raise RecordingError(
            f"{path}: intervals from the sweeps need at least 2 sweeps averaged per "
            "holding potential (not --per-sweep, not a CSV/NPZ trace); use --errors "
            "residuals"
        )
    if errors == "auto":
        return "sweeps" if possible else "residuals"
    return errors


def _predict(jsyn, result, spikes, dt, per_sweep):
    import jax

    if not per_sweep:
        return np.asarray(jsyn.simulate(result.model, spikes, dt)[1])
    one = spikes[:, :1]
    return np.asarray(jax.vmap(lambda m: jsyn.simulate(m, one, dt)[1])(result.model))


def _build(
    jsyn, names, E_values, stp, max_delay, train: EvokedTrain, convention, params, per_sweep
):
    """The initial model (every fitted field wrapped in its constraint) and the names to
    fit; g_max is scaled so that the initial peak matches the data's."""
    import jax.numpy as jnp

    joint = len(names) > 1
    synapses = [getattr(jsyn, n)() for n in names]
    defaults = []
    for i, n in enumerate(names):
        s = f"synapse[{i}]." if joint else "synapse."
        o = f"output[{i}]." if joint else "output."
        defaults += [(o if p == "g_max" else s) + p for p in MODELS[n][0]]
    stp_module = None
    if stp is not None:
        stp_module = getattr(jsyn, stp)()
        defaults += [f"stp.{p}" for p in STP_MODELS[stp]]
    if max_delay is not None:
        defaults.append("delay.delay")
    chosen = (
        defaults
        if params is None
        else [p.strip() for p in (params.split(",") if isinstance(params, str) else params)]
    )
    chosen = [p.strip() for p in chosen if p.strip()]

    def wanted(name):
        return any(c == name or name.endswith("." + c) for c in chosen)

    for i, syn in enumerate(synapses):
        prefix = f"synapse[{i}]." if joint else "synapse."
        for p in MODELS[names[i]][0]:
            if p != "g_max" and wanted(prefix + p):
                syn = _wrap(syn, p, jsyn.LogPositive(getattr(syn, p)))
        synapses[i] = syn
    if stp_module is not None:
        for p in STP_MODELS[stp]:
            if wanted("stp." + p):
                value = getattr(stp_module, p)
                wrapped = jsyn.Bounded(value, 0.0, 1.0) if p == "U" else jsyn.LogPositive(value)
                stp_module = _wrap(stp_module, p, wrapped)
    settings = []
    delay = None
    if max_delay is not None:
        d0 = _initial_delay(train, max_delay)
        settings.append(("initial delay", d0, False))
        value = jsyn.Bounded(d0, 0.0, max_delay) if wanted("delay.delay") else d0
        delay = jsyn.Delay(value, train.dt, max_delay=max_delay)
    V_hold = jnp.asarray(np.unique(train.V_hold) if per_sweep else train.V_hold)

    def build(g):
        outputs = tuple(
            getattr(jsyn, MODELS[n][1])(g_max=g[i], E=E_values[i]) for i, n in enumerate(names)
        )
        return jsyn.PSC(
            tuple(synapses) if joint else synapses[0],
            outputs if joint else outputs[0],
            stp=stp_module,
            delay=delay,
            V_hold=V_hold,
            convention=convention,
        )

    unit = np.asarray(
        jsyn.simulate(build([1.0] * len(names)), jnp.asarray(train.spikes), train.dt)[1]
    )
    peak = float(np.max(np.abs(unit)))
    size = float(np.max(np.abs(train.target * train.weights)))
    g0 = size / peak if peak > 0 and size > 0 else 1.0
    settings.append(("initial g_max", g0, False))
    g = [
        jsyn.SoftplusPositive(g0)
        if wanted((f"output[{i}]." if joint else "output.") + "g_max")
        else g0
        for i in range(len(names))
    ]
    return chosen, build(g), tuple(settings)


def _initial_delay(train: EvokedTrain, max_delay: float) -> float:
    """The latency of the first response: from the first stimulus to the first sample
    (of positive weight, before the next stimulus) past 20 % of the response's peak,
    kept inside (0, max_delay)."""
    t, y, w = train.t, np.abs(train.target[:, 0]), train.weights[:, 0]
    s0 = train.stim[0]
    end = train.stim[1] if train.stim.size > 1 else t[-1]
    inside = np.flatnonzero((t >= s0) & (t < end) & (w > 0))
    d0 = 0.5 * max_delay
    if inside.size:
        over = inside[y[inside] > 0.2 * y[inside].max()]
        if over.size:
            d0 = float(t[over[0]] - s0)
    return float(np.clip(d0, 0.05 * max_delay, 0.95 * max_delay))


def _wrap(module, name, value):
    import equinox as eqx

    return eqx.tree_at(lambda m: getattr(m, name), module, value)
