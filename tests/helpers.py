"""Shared test utilities and the registry every model joins."""

import dataclasses
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import jsyn

DT = 0.1


def _plain(x):
    """A PRNG key as its raw data (so that keys compare equal exactly), anything else as is."""
    if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(x)
    return x


def tree_allclose(a, b, rtol=1e-10, atol=1e-12) -> bool:
    """Same structure, and every leaf close (PRNG keys: equal)."""
    if jax.tree.structure(a) != jax.tree.structure(b):
        return False
    a, b = jax.tree.map(_plain, a), jax.tree.map(_plain, b)
    return all(
        np.shape(x) == np.shape(y) and np.allclose(x, y, rtol=rtol, atol=atol)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


def central_fd(f: Callable[[float], float], x: float, eps: float = 1e-6) -> float:
    """Central finite difference of a scalar function."""
    return (f(x + eps) - f(x - eps)) / (2 * eps)


def spike_train(n_steps=300, n=3, seed=0, rate=0.04, dtype=jnp.float64):
    """An irregular spike train on the grid: counts (0, 1, sometimes 2) per step,
    with weights, shape (n_steps, n)."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rate, size=(n_steps, n)).astype(float)
    weights = rng.uniform(0.5, 1.5, size=(n_steps, n))
    return jnp.asarray(counts * weights, dtype=dtype)


def current_steps(n_steps=300, n=3, seed=0, low=0.0, high=30.0, dtype=jnp.float64):
    """A piecewise-constant input current (pA), shape (n_steps, n)."""
    rng = np.random.default_rng(seed)
    levels = rng.uniform(low, high, size=(n_steps // 50 + 1, n))
    return jnp.asarray(np.repeat(levels, 50, axis=0)[:n_steps], dtype=dtype)


@dataclasses.dataclass(frozen=True)
class Case:
    """A ready-built system for the conformance suite.

    `params` names the fields whose gradient must match finite differences; `inputs`
    makes the drive of a run, shape (time, n); `record` picks the smooth trace that
    gradients are checked on (default: the step output). `constraints` maps a parameter
    to the parametrisation a fit would give it, where `fit_parametrisation`'s default
    does not suit it. `bursts=False` says the system refuses more than one spike of a
    neuron per step (its inputs are 0/1 events). `slow` moves the case's conformance tests
    to the slow lane (`-m slow`, which CI runs too): for systems whose eager and
    finite-difference runs take seconds and that their own test module already checks in
    the default run.
    """

    name: str
    system: eqx.Module
    inputs: Callable[..., jax.Array]
    params: tuple[str, ...]
    record: Callable | None = None
    fixed_size: bool = False
    constraints: dict[str, Callable] = dataclasses.field(default_factory=dict)
    slow: bool = False
    bursts: bool = True  # takes several spikes of one neuron in one step

    def __repr__(self):
        return self.name


class PlasticPair(eqx.Module):
    """A plastic projection run alone: each input row holds the presynaptic spikes, then the
    postsynaptic spikes (then, for a neuromodulated rule, the concentration; for a rule that
    reads the postsynaptic potential, the potential, mV) of a step; the
    output is the weights at the end of the step, one per synapse (flat). The rule's parameters
    read as attributes (`A_plus`, `tau_pre`, ...), so the suite can perturb them."""

    proj: jsyn.Projection

    def __getattr__(self, name):
        if name == "proj":
            raise AttributeError(name)
        return getattr(self.proj.plasticity, name)

    def init_state(self, n=None, *, dtype=None):
        return self.proj.init_state(dtype=dtype)

    def step(self, state, x, dt):
        n_pre, n_post = self.proj.n_pre, self.proj.n_post
        rule, rest = self.proj.plasticity, x[n_pre + n_post :]
        modulator = rest if rule.modulator else None
        post_voltage = rest if rule.needs_post_voltage else None
        state, _ = self.proj.step(
            state,
            x[:n_pre],
            dt,
            post_spikes=x[n_pre : n_pre + n_post],
            modulator=modulator,
            post_voltage=post_voltage,
        )
        return state, state.w.reshape(-1)


def pre_and_post_spikes(n_steps=300, n=6, seed=0, dtype=jnp.float64):
    """The inputs of a `PlasticPair`: 3 presynaptic, then 3 postsynaptic spike trains (then a
    concentration for n=7), fractional counts."""
    return spike_train(n_steps=n_steps, n=n, seed=seed, rate=0.06, dtype=dtype)


def plastic_pair(rule, n_syn=6, sparse=False, delay=None) -> PlasticPair:
    """3 -> 3 cells: dense wiring (kept cheap for the eager runs of the suite), or
    event-driven sparse wiring with per-synapse delays off the grid (or one `delay`, the
    event-driven update of `jsyn.Sparse.learn`)."""
    if not sparse:
        w = jnp.linspace(0.3, 0.7, 9).reshape(3, 3)
        return PlasticPair(jsyn.Projection(jsyn.Dense(w), jsyn.Expon(tau=4.0), plasticity=rule))
    pre, post = [0, 0, 1, 2, 2, 1, 0][:n_syn], [0, 2, 1, 0, 1, 2, 1][:n_syn]
    return PlasticPair(
        jsyn.Projection(
            jsyn.Sparse(pre, post, 3, 3, jnp.linspace(0.3, 0.7, n_syn), tiers=(1, 2, 3)),
            jsyn.Expon(tau=4.0),
            jsyn.CUBA(),
            delay=jnp.linspace(0.05, 0.87, n_syn) if delay is None else delay,
            dt=DT,
            max_delay=1.0,
            plasticity=rule,
        )
    )


ALL_SYSTEMS = [
    Case("Expon", jsyn.Expon(tau=6.0), spike_train, ("tau",)),
    Case("Expon-per-synapse", jsyn.Expon(tau=jnp.array([2.0, 5.0, 11.0])), spike_train, ("tau",)),
    Case("Expon-LogPositive", jsyn.Expon(tau=jsyn.LogPositive(6.0)), spike_train, ("tau",)),
    Case("Alpha", jsyn.Alpha(tau_decay=4.0), spike_train, ("tau_decay",)),
    Case("DualExpon", jsyn.DualExpon(1.5, 7.0), spike_train, ("tau_rise", "tau_decay")),
    Case(
        "DualExpon-equal-taus",
        jsyn.DualExpon(tau_rise=5.0, tau_decay=5.0),
        spike_train,
        ("tau_rise", "tau_decay"),
    ),
    Case(
        "DualExpon-A",
        jsyn.DualExpon(tau_rise=2.0, tau_decay=6.0, A=0.7),
        spike_train,
        ("tau_rise", "tau_decay", "A"),
    ),
    Case("DualExponV2", jsyn.DualExponV2(1.5, 7.0), spike_train, ("tau_rise", "tau_decay")),
    Case("VoltageJump", jsyn.VoltageJump(), spike_train, ()),
    # Subthreshold drive: no spike, so the potential is smooth and finite differences apply.
    # The trace is V + 60 mV, of order 10, so the finite differences do not lose digits.
    Case(
        "LIF-subthreshold",
        jsyn.LIF(tau=15.0, R=0.5),
        lambda **kw: current_steps(high=18.0, **kw),
        ("V_rest", "tau", "R"),
        record=lambda state, spikes: state.V + 60.0,
        constraints={"V_rest": lambda v: jsyn.Bounded(v, -80.0, -40.0)},
    ),
    # A source: its size is fixed by its spikes, and it ignores the drive it is given.
    Case(
        "SpikeTimes",
        jsyn.SpikeTimes([0.0, 1.0, 1.34, 7.3, 19.9, 25.0], [0, 1, 1, 2, 0, 2], n=3),
        spike_train,
        (),
        fixed_size=True,
    ),
    # Short-term plasticity takes spikes as 0/1 events (a count k is k spikes at once).
    Case(
        "STD",
        jsyn.STD(tau=10.0, U=0.4),
        lambda dtype=jnp.float64, **kw: (spike_train(**kw) > 0).astype(dtype),
        ("tau", "U"),
    ),
    Case(
        "STP-per-synapse",
        jsyn.STP(U=jnp.array([0.1, 0.3, 0.6]), tau_f=20.0, tau_d=8.0),
        lambda dtype=jnp.float64, **kw: (spike_train(**kw) > 0).astype(dtype),
        ("U", "tau_f", "tau_d"),
    ),
    # Transmitter-pulse models. With T_dur a multiple of dt the sampled output has kinks in
    # T_dur (a pulse ending exactly at a recorded time, or at the next spike, which hides
    # its end), where central differences fail; so T_dur is off the 0.1 ms grid here (the
    # default T_dur is checked in tests/synapses, at a dt it is not a multiple of).
    # The drive is clipped to [0, 1], a kink at x = 0 where central differences are only
    # first-order accurate; the parameters keep that error well inside the tolerance.
    Case(
        "AMPA",
        jsyn.AMPA(T_dur=0.37),
        spike_train,
        ("alpha", "beta", "T", "T_dur"),
    ),
    Case(
        "AMPA-per-synapse",
        jsyn.AMPA(beta=jnp.array([0.18, 0.3, 0.1]), T_dur=jnp.array([0.45, 0.37, 1.23])),
        spike_train,
        ("alpha", "beta", "T", "T_dur"),
    ),
    Case("GABAa", jsyn.GABAa(T_dur=0.83), spike_train, ("alpha", "beta", "T", "T_dur")),
    Case("NMDA", jsyn.NMDA(), spike_train, ("tau_rise", "tau_decay", "a")),
    Case(
        "BioNMDA",
        jsyn.BioNMDA(alpha1=0.5, T=0.5, T_dur=0.37),
        spike_train,
        ("alpha1", "beta1", "alpha2", "beta2", "T", "T_dur"),
        slow=True,  # tests/synapses/test_nmda.py
    ),
    # Kd = 1 (not 100 uM^4) and a longer pulse, so 30 ms of input open a fair fraction of
    # channels (g up to ~0.35) and every gradient, n and Kd included, is well conditioned.
    Case(
        "GABAb",
        jsyn.GABAb(Kd=1.0, T_dur=0.87),
        spike_train,
        ("K1", "K2", "K3", "K4", "Kd", "n", "T", "T_dur"),
        slow=True,  # tests/synapses/test_gaba_b.py
    ),
    # Per-element delays off the grid (3.7, 12.3, 25.7 steps), so the output is smooth in
    # each of them; max_delay leaves room for the finite-difference perturbations.
    Case(
        "Delay-per-element",
        jsyn.Delay(jnp.array([0.37, 1.23, 2.57]), DT, max_delay=3.0),
        spike_train,
        ("delay",),
        constraints={"delay": lambda d: jsyn.Bounded(d, 0.0, 3.0)},
    ),
    # Projections: 3 -> 3 cells. Event-driven sparse wiring (tiers 1, 2, 3, so steps with
    # 0, 1, 2 and 3 spiking cells take different branches) with STD and per-synapse delays
    # off the grid (smooth in each). Dense wiring and per-synapse kinetics are checked in
    # tests/network/test_network.py.
    Case(
        "Projection-Sparse-STD-delays",
        jsyn.Projection(
            jsyn.Sparse(
                [0, 0, 1, 2, 2],
                [0, 2, 1, 0, 1],
                3,
                3,
                jnp.array([0.5, 1.2, 0.8, 1.0, 0.3]),
                tiers=(1, 2, 3),
            ),
            jsyn.Expon(tau=4.0),
            stp=jsyn.STD(tau=30.0, U=0.3),
            delay=jnp.array([0.37, 1.23, 0.05, 2.57, 0.91]),
            dt=DT,
            max_delay=3.0,
        ),
        spike_train,
        ("delay",),
        fixed_size=True,
        constraints={"delay": lambda d: jsyn.Bounded(d, 0.0, 3.0)},
    ),
    # Long-term plasticity: the weights of a 3 -> 3 projection under imposed pre and post
    # spikes (fractional, so the updates are smooth in them). The output is the weights:
    # 6 sparse synapses (pre, post: 6 inputs) or 9 dense ones (pre, post, 3 concentrations).
    Case(
        "STDP-Sparse-delays",
        plastic_pair(jsyn.STDP(A_plus=0.02, A_minus=0.015), sparse=True),
        pre_and_post_spikes,
        ("A_plus", "tau_pre"),
        fixed_size=True,
        slow=True,  # tests/plasticity/test_stdp.py
    ),
    Case(
        "TripletSTDP-Sparse-events",
        plastic_pair(jsyn.TripletSTDP(A2_plus=5e-3), sparse=True, delay=0.37),
        pre_and_post_spikes,
        ("A3_plus", "tau_x"),
        fixed_size=True,
        slow=True,  # tests/plasticity/test_events.py (event-driven == dense)
    ),
    Case(
        "TripletSTDP-Dense",
        plastic_pair(jsyn.TripletSTDP(A2_plus=5e-3)),
        lambda **kw: pre_and_post_spikes(**{"n": 9, **kw}),
        ("A3_plus", "tau_y"),
        fixed_size=True,
    ),
    Case(
        "RewardSTDP-Dense",
        plastic_pair(jsyn.RewardSTDP("DA", A_plus=0.05, tau_c=50.0)),
        lambda **kw: pre_and_post_spikes(**{"n": 9, **kw}),
        ("A_plus", "tau_c"),
        fixed_size=True,
        slow=True,  # tests/plasticity/test_reward.py
    ),
    Case(
        "SynapticScaling-Dense",
        plastic_pair(jsyn.SynapticScaling(rate_target=100.0, tau_a=20.0, beta=0.5)),
        lambda **kw: pre_and_post_spikes(**{"n": 9, **kw}),
        ("tau_a", "beta"),
        fixed_size=True,
    ),
    # Couplings of rate models: 3 nodes fixed by conn_mat, per-connection delays (ms) up to
    # 5 steps, off the grid (smooth in each), so the ring buffer wraps many times and a
    # split run crosses it mid-way.
    Case(
        "AdditiveCoupling-delays",
        jsyn.AdditiveCoupling(
            jnp.array([[0.5, -0.2, 1.0], [0.3, 0.0, 0.7], [-0.4, 0.9, 0.1]]),
            delay=jnp.array([[0.013, 0.23, 0.47], [0.11, 0.037, 0.31], [0.38, 0.09, 0.021]]),
            dt=DT,
            max_delay=0.5,
        ),
        spike_train,
        ("conn_mat", "delay"),
        fixed_size=True,
        constraints={"conn_mat": lambda c: jsyn.Bounded(c, -2.0, 2.0)},
    ),
    # One array of inputs: nodes coupled to themselves, y = x.
    Case(
        "DiffusiveCoupling-recurrent",
        jsyn.DiffusiveCoupling(
            jnp.array([[0.0, 0.4, 0.1], [0.4, 0.0, 0.8], [0.2, 0.8, 0.0]]), 0.2, dt=DT
        ),
        current_steps,
        ("conn_mat",),
        fixed_size=True,
        constraints={"conn_mat": lambda c: jsyn.Bounded(c, -2.0, 2.0)},
    ),
]
"""Every model of the package, ready-built. A new model joins the suite with one line."""

# --- Synaptic noise (stochastic release, quantal STP, OU noise) and the modulator gain ------


class Keyed(eqx.Module):
    """A stochastic system with its key fixed (`jax.random.key(0)`), so that the suite's runs
    without `key=` see one realisation of it. Parameters read as attributes."""

    system: eqx.Module

    def __getattr__(self, name):
        if name == "system":
            raise AttributeError(name)
        return getattr(self.system, name)

    def init_state(self, n=None, *, dtype=None):
        return self.system.init_state(n, dtype=dtype, key=jax.random.key(0))

    def step(self, state, x, dt):
        return self.system.step(state, x, dt)


class ReleasePair(eqx.Module):
    """A projection with stochastic release run alone (key fixed); the release's parameters
    (`p`, `temperature`) read as attributes."""

    proj: jsyn.Projection

    def __getattr__(self, name):
        if name == "proj":
            raise AttributeError(name)
        return getattr(self.proj.release, name)

    def init_state(self, n=None, *, dtype=None):
        return self.proj.init_state(dtype=dtype, key=jax.random.key(0))

    def step(self, state, x, dt):
        return self.proj.step(state, x, dt)


class GainPair(eqx.Module):
    """A modulated projection run alone: each input row holds the presynaptic spikes, then
    the concentration of the step (the last entry); the gain's `k` reads as an attribute."""

    proj: jsyn.Projection

    def __getattr__(self, name):
        if name == "proj":
            raise AttributeError(name)
        return getattr(self.proj.modulation, name)

    def init_state(self, n=None, *, dtype=None):
        return self.proj.init_state(dtype=dtype)

    def step(self, state, x, dt):
        state, g = self.proj.step(state, x[:-1], dt, gain_modulator=x[-1:])
        return state, jnp.concatenate([g, x[-1:]])


def _release_projection(release):
    """3 -> 3 cells, event-driven sparse wiring (tiers 1, 2, 3) with per-synapse delays off
    the grid and per-synapse release probabilities."""
    return ReleasePair(
        jsyn.Projection(
            jsyn.Sparse(
                [0, 0, 1, 2, 2],
                [0, 2, 1, 0, 1],
                3,
                3,
                jnp.array([0.5, 1.2, 0.8, 1.0, 0.3]),
                tiers=(1, 2, 3),
            ),
            jsyn.Expon(tau=4.0),
            delay=jnp.array([0.37, 1.23, 0.05, 2.57, 0.91]),
            dt=DT,
            max_delay=3.0,
            release=release,
        )
    )


def _spikes01(dtype=jnp.float64, **kw):
    return (spike_train(**kw) > 0).astype(dtype)


NOISE_SYSTEMS = [
    # Hard draws: the drive is linear in the spikes (gradients w.r.t. the inputs), not
    # differentiable in p. The relaxed draws are smooth in p and the temperature.
    Case(
        "StochasticRelease-Sparse-delays",
        _release_projection(
            jsyn.StochasticRelease(p=jnp.array([0.2, 0.5, 0.9, 0.4, 0.7]), n_sites=3)
        ),
        spike_train,
        (),
        fixed_size=True,
        slow=True,  # tests/network/test_release.py
    ),
    Case(
        "StochasticRelease-relaxed",
        _release_projection(
            jsyn.StochasticRelease(p=0.4, n_sites=2, mode="relaxed", temperature=0.5)
        ),
        spike_train,
        ("p", "temperature"),
        fixed_size=True,
        constraints={"p": lambda p: jsyn.Bounded(p, 0.0, 1.0)},
        slow=True,  # tests/network/test_release.py
    ),
    Case(
        "OUNoise",
        Keyed(jsyn.OUNoise(g0=1.0, sigma=0.3, tau=3.0)),
        spike_train,
        ("g0", "sigma", "tau"),
    ),
    # Binomial draws: no gradient w.r.t. the parameters (piecewise constant in them).
    Case(
        "QuantalSTP",
        Keyed(jsyn.QuantalSTP(n_sites=5, U=0.4, tau_f=20.0, tau_d=30.0)),
        _spikes01,
        (),
        bursts=False,
    ),
    Case(
        "ModulatedGain",
        GainPair(
            jsyn.Projection(
                jsyn.Dense(jnp.linspace(0.3, 0.7, 9).reshape(3, 3)),
                jsyn.Expon(tau=4.0),
                modulation=jsyn.ModulatedGain("DA", k=0.7),
            )
        ),
        lambda **kw: spike_train(**{"n": 4, **kw}),
        ("k",),
        fixed_size=True,
        constraints={"k": jsyn.SoftplusPositive},
        slow=True,  # tests/network/test_modulation.py
    ),
]
ALL_SYSTEMS += NOISE_SYSTEMS


def fit_parametrisation(name: str) -> Callable:
    """The parametrisation a fit gives a parameter by default: `Bounded` in (0, 1) for the
    release fraction `U`, `SoftplusPositive` for amplitudes (`A`, `g_max`), `LogPositive`
    for the rest (time constants, rates, concentrations, durations, `Kd`, `n`, `R`)."""
    if name == "U":
        return lambda u: jsyn.Bounded(u, 0.0, 1.0)
    if name in ("A", "g_max"):
        return jsyn.SoftplusPositive
    return jsyn.LogPositive


def constrained(case: Case) -> eqx.Module:
    """`case.system` with every parameter of `case.params` stored through the parametrisation
    a fit would use (a field that already holds one keeps it)."""
    system = case.system
    for name in case.params:
        field = getattr(system, name)
        if not isinstance(field, jsyn.AbstractParam):
            wrap = case.constraints.get(name, fit_parametrisation(name))
            system = eqx.tree_at(lambda s, name=name: getattr(s, name), system, wrap(field))
    return system


def param_value(system, name):
    return jsyn.resolve(getattr(system, name))


def with_param(system, name, value):
    """`system` with parameter `name` replaced by a plain array `value`."""
    return eqx.tree_at(lambda s: getattr(s, name), system, value, is_leaf=lambda x: x is None)


# The catalogue (issue 23): AdEx and Izhikevich below threshold (smooth traces), and the
# new plasticity options on 3 -> 3 projections.
ALL_SYSTEMS += [
    Case(
        "AdEx-subthreshold",
        jsyn.AdEx(),
        lambda **kw: current_steps(high=300.0, **kw),
        ("g_L", "tau_w", "a"),
        record=lambda state, spikes: state.V + 70.0,
    ),
    Case(
        "Izhikevich-subthreshold",
        jsyn.Izhikevich(),
        lambda **kw: current_steps(high=2.0, **kw),
        ("a", "b"),
        record=lambda state, spikes: state.V + 65.0,
    ),
    Case(
        "VogelsSprekeler-Dense",
        plastic_pair(jsyn.VogelsSprekeler(eta=0.005, alpha=0.5)),
        lambda **kw: pre_and_post_spikes(**{"n": 9, **kw}),
        ("eta", "tau"),
        fixed_size=True,
    ),
    # Event-driven (`Sparse.learn`, one delay off the grid). With w_max = 1 the weights
    # sit at the bound for hundreds of steps and the loss, linear in eta between clips, has
    # a kink wherever a crossing moves: one lies within 1e-5 of eta = 0.005 (the one-sided
    # differences differ by 0.3%; the gradient equals the left one, and a step of 1e-6
    # agrees to 1e-11). With w_max = 2 no weight reaches a bound in the run.
    Case(
        "VogelsSprekeler-Sparse-events",
        plastic_pair(
            jsyn.VogelsSprekeler(eta=0.005, alpha=0.5, w_max=2.0), sparse=True, delay=0.37
        ),
        pre_and_post_spikes,
        ("eta", "tau"),
        fixed_size=True,
        slow=True,  # tests/plasticity/test_vogels_sprekeler.py (event-driven == dense)
    ),
    # The potential (inputs 6-8) is -45 mV plus fractional counts: above both thresholds,
    # so the rule is smooth in it, and no clamp (t_clamp=0, a jump in the post spikes; tested
    # in tests/plasticity/test_clopath.py); LTP stays small, w off the bounds.
    Case(
        "Clopath-Dense",
        plastic_pair(jsyn.Clopath(A_LTD=1e-4, A_LTP=1e-4, t_clamp=0.0)),
        lambda **kw: pre_and_post_spikes(**{"n": 9, **kw}).at[:, 6:].add(-45.0),
        ("A_LTP", "tau_plus"),
        fixed_size=True,
    ),
    Case(
        "STDP-nn_restr-clip-each-event-Dense",
        plastic_pair(
            jsyn.STDP(A_plus=0.02, A_minus=0.015, pairing="nn_restr", clip_each_event=True)
        ),
        lambda **kw: pre_and_post_spikes(**{"n": 9, **kw}),
        ("A_plus", "tau_pre"),
        fixed_size=True,
    ),
]
