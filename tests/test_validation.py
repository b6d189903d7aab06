"""The validation machinery (`jsyn._validation`): every parameter finite, checks that name
the bad value eagerly and under `jit`, `vmap` and eager `grad`, state ranges, and PRNG keys
in states (skipped by the value checks)."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from helpers import ALL_SYSTEMS, DT, spike_train, with_param

X = spike_train(n_steps=40, n=3)


def _parameters(system):
    """The names of the floating parameters of `system` (its own fields)."""
    return [
        f.name
        for f in dataclasses.fields(system)
        if isinstance(getattr(system, f.name), jsyn.AbstractParam)
        or eqx.is_inexact_array(getattr(system, f.name))
    ]


INFINITE = [
    (case, name) for case in ALL_SYSTEMS for name in _parameters(case.system) if name != "times"
]


@pytest.mark.parametrize("case,name", INFINITE, ids=lambda c: getattr(c, "name", c))
def test_every_infinite_parameter_of_every_model_is_refused(case, name):
    """Built through tree_at (no construction check), so the simulate entry must catch it."""
    value = jsyn.resolve(getattr(case.system, name))
    system = with_param(case.system, name, jnp.full_like(value, jnp.inf))
    x = case.inputs(n_steps=10)
    with pytest.raises(ValueError, match=rf"{name}.*\(got .*inf"):
        jsyn.simulate(system, x, DT)


OUTPUTS = [
    (jsyn.CUBA, "g_max"),
    *((jsyn.COBA, p) for p in ("g_max", "E")),
    *((jsyn.MgBlock, p) for p in ("g_max", "E", "cc_Mg", "alpha", "beta", "V_offset")),
    *((jsyn.LIF, p) for p in ("V_rest", "V_th", "V_reset", "tau", "R", "tau_ref")),
    *((jsyn.AMPA, p) for p in ("alpha", "beta", "T", "T_dur")),
    *((jsyn.GABAb, p) for p in ("K1", "K2", "K3", "K4", "Kd", "n", "T", "T_dur")),
    (jsyn.STP, "tau_f"),
    (jsyn.Poisson, "rates"),
]


@pytest.mark.parametrize("cls,name", OUTPUTS, ids=lambda c: getattr(c, "__name__", c))
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_infinite_parameters_are_refused_at_construction(cls, name, sign):
    kwargs = {name: sign * jnp.inf}
    if cls is jsyn.Poisson:
        kwargs = {"rates": jnp.full(2, sign * jnp.inf)}
    with pytest.raises(ValueError, match=rf"{cls.__name__}.*{name}.*\(got .*inf"):
        cls(**kwargs)


@pytest.mark.parametrize("name", ["alpha", "beta", "T", "T_dur"])
def test_infinite_ampa_parameter_under_jit_vmap_and_grad(name):
    def run(v):
        return jsyn.simulate(jsyn.AMPA(**{name: v}), X, DT)[1]

    match = f"AMPA.{name} must be finite"
    with pytest.raises(ValueError, match=rf"{match} \(got inf\)"):
        run(jnp.inf)
    with pytest.raises(Exception, match=match):
        jax.jit(run)(jnp.inf).block_until_ready()
    with pytest.raises(Exception, match=match):
        jax.vmap(run)(jnp.array([0.5, jnp.inf])).block_until_ready()
    with pytest.raises(ValueError, match=rf"{match} \(got inf\)"):
        jax.grad(lambda v: run(v).sum())(jnp.inf)


def test_bad_parameter_under_eager_grad_is_named():
    """Eager grad traces the parameter, but its value is known: the message shows it."""
    loss = lambda tau: jsyn.simulate(jsyn.Expon(tau=tau), X, DT)[1].sum()  # noqa: E731
    with pytest.raises(ValueError, match=r"Expon.tau must be > 0 \(got -1.0\).*LogPositive"):
        jax.grad(loss)(-1.0)
    with pytest.raises(ValueError, match=r"DualExponV2 needs tau_rise < tau_decay \(got "):
        jax.grad(lambda t: jsyn.simulate(jsyn.DualExponV2(t, 5.0), X, DT)[1].sum())(9.0)
    # A model built outside, a bad value reached through tree_at, differentiated.
    bad = eqx.tree_at(lambda s: s.tau, jsyn.Expon(), jnp.asarray(-2.0))
    with pytest.raises(ValueError, match=r"Expon.tau must be > 0 \(got -2.0\)"):
        eqx.filter_grad(lambda m: jsyn.simulate(m, X, DT)[1].sum())(bad)
    assert np.isfinite(jax.grad(loss)(5.0))


def test_bad_input_under_eager_grad_names_the_time_step():
    x = X.at[7, 1].set(jnp.nan)
    loss = lambda x: jsyn.simulate(jsyn.Expon(), x, DT)[1].sum()  # noqa: E731
    with pytest.raises(ValueError, match=r"inputs must be finite.*time step=7"):
        jax.grad(loss)(x)


def test_concrete_catches_every_tracer_error():
    from jsyn import _validation as val

    seen = []
    jax.jit(lambda x: seen.append(val.concrete(x)) or x)(1.0)
    jax.vmap(lambda x: seen.append(val.concrete(x)) or x)(jnp.ones(2))
    jax.grad(lambda x: seen.append((val.concrete(x), val.known(x))) or x)(3.0)
    assert seen[0] is None and seen[1] is None
    assert seen[2][0] is None and seen[2][1] == 3.0


# -- PRNG keys in states: a network with a Poisson group under jit and vmap ---------------


def _poisson_network():
    return jsyn.Network(
        {"in": jsyn.Poisson(jnp.full(20, 400.0)), "c": (jsyn.LIF(), 4)},
        {
            "p": jsyn.Projection(
                jsyn.Dense(jnp.full((20, 4), 2.0)),
                jsyn.Expon(),
                jsyn.CUBA(g_max=10.0),
                pre="in",
                post="c",
            )
        },
    )


@pytest.mark.slow  # 15 s in the default lane (2 workers, 2 cores, load 3-4)
def test_network_with_poisson_group_runs_under_jit_and_vmap():
    net = _poisson_network()

    def run(key):
        return jsyn.simulate(net, None, DT, n_steps=100, key=key)[1]["in"].sum()

    key = jax.random.key(3)
    keys = jax.random.split(key, 2)
    eager = [run(k) for k in keys]
    assert min(eager) > 0
    np.testing.assert_array_equal(jax.jit(jax.vmap(run))(keys), eager)
    # a given state (holding a key) passes the state checks under jit too
    state = net.init_state(key=key)
    final, _ = jax.jit(lambda s: jsyn.simulate(net, None, DT, n_steps=10, state=s))(state)
    assert jnp.issubdtype(final.groups["in"].key.dtype, jax.dtypes.prng_key)


def test_network_with_poisson_group_still_checks_its_parameters_under_jit():
    net = _poisson_network()
    run = jax.jit(
        lambda w, key: jsyn.simulate(
            eqx.tree_at(lambda n: n.projections["p"].output.g_max, net, w),
            None,
            DT,
            n_steps=10,
            key=key,
        )[1]["c"]
    )
    run(1.0, jax.random.key(0)).block_until_ready()
    with pytest.raises(Exception, match="CUBA.g_max must be finite"):
        run(jnp.inf, jax.random.key(0)).block_until_ready()


# -- states: finite and inside their declared ranges --------------------------------------

STATES = [
    (jsyn.STP(), lambda s: s.u, -2.0, r"state.u must lie in \[0.0, 1.0\] \(got -2.0"),
    (jsyn.STP(), lambda s: s.x, 1.5, r"state.x must lie in \[0.0, 1.0\] \(got 1.5"),
    (jsyn.STD(), lambda s: s.x, -0.1, r"state.x must lie in \[0.0, 1.0\]"),
    (jsyn.AMPA(), lambda s: s.g, -0.3, r"state.g must lie in \[0.0, 1.0\]"),
    (jsyn.GABAa(), lambda s: s.pulse_left, -1.0, r"state.pulse_left must lie in \[0.0, inf\]"),
    (jsyn.BioNMDA(), lambda s: s.x_s, 2.0, r"state.x_s must lie in \[0.0, 1.0\]"),
    (jsyn.GABAb(), lambda s: s.G, -1.0, r"state.G must lie in \[0.0, inf\]"),
    (jsyn.Expon(), lambda s: s.g, jnp.nan, r"state.g must be finite \(NaN or inf found\)"),
    (jsyn.DualExpon(), lambda s: s.h, jnp.inf, r"state.h must be finite"),
]


@pytest.mark.parametrize(
    "system,where,value,match", STATES, ids=[type(s[0]).__name__ + "-" + s[3][6:14] for s in STATES]
)
def test_bad_state_is_refused_eagerly_and_under_jit_vmap_grad(system, where, value, match):
    spikes = (X > 0).astype(X.dtype)
    good = system.init_state(3)
    bad = eqx.tree_at(where, good, where(good).at[1].set(value))

    def run(state):
        return jsyn.simulate(system, spikes, DT, state=state)[1]

    with pytest.raises(ValueError, match=match):
        run(bad)
    with pytest.raises(Exception, match=match.split(r" \(got")[0]):
        jax.jit(run)(bad).block_until_ready()
    batch = jax.tree.map(lambda a, b: jnp.stack([a, b]), good, bad)
    with pytest.raises(Exception, match=match.split(r" \(got")[0]):
        jax.vmap(run)(batch).block_until_ready()
    with pytest.raises(ValueError, match=match):
        jax.grad(lambda s: run(s).sum())(bad)
    run(good)  # the rested state passes


def test_state_of_a_network_is_checked_at_any_depth():
    net = jsyn.Network(
        {"src": jsyn.SpikeTimes([1.0, 2.0], n=2), "c": (jsyn.LIF(), 2)},
        {
            "p": jsyn.Projection(
                jsyn.Dense(jnp.ones((2, 2))),
                jsyn.Expon(),
                jsyn.CUBA(),
                stp=jsyn.STP(),
                pre="src",
                post="c",
            )
        },
    )
    state = net.init_state()
    bad = eqx.tree_at(lambda s: s.projections["p"].stp.u, state, jnp.full(2, -2.0))
    with pytest.raises(ValueError, match=r"state.projections\['p'\].stp.u must lie in \[0.0"):
        jsyn.simulate(net, None, DT, n_steps=10, state=bad)
    bad = eqx.tree_at(lambda s: s.groups["c"].V, state, jnp.array([-60.0, jnp.nan]))
    with pytest.raises(ValueError, match=r"state.groups\['c'\].V must be finite"):
        jsyn.simulate(net, None, DT, n_steps=10, state=bad)


@pytest.mark.parametrize("case", ALL_SYSTEMS, ids=lambda c: c.name)
@pytest.mark.slow  # 33 s in the default lane (2 workers, 2 cores, load 3-4)
def test_every_state_a_run_passes_through_passes_the_state_checks(case):
    """The declared ranges hold at every step of a run (bursts of up to 6 spikes per step
    included, for systems that take them; float32, where rounding is largest), so a run can
    always continue from its final state."""
    from jsyn import _validation as val

    x = case.inputs(n_steps=300, dtype=jnp.float32) * (3.0 if case.bursts else 1.0)
    final, states = jsyn.simulate(case.system, x, DT, record="state")
    assert val.raise_concrete(val.state_checks(states)) == []  # every step at once
    jsyn.simulate(case.system, x, DT, state=final)


def test_guard_passes_prng_keys_through_and_still_raises_under_jit():
    # The state of a stochastic system carries a typed PRNG key, which eqx.error_if
    # cannot take (it raised TypeError "Cannot interpret 'key<fry>' as a data type").
    from jsyn import _validation as val

    key = jax.random.key(3)
    state = {"key": key, "g": jnp.ones(2)}

    @jax.jit
    def run(x):
        check = val.Check(x < 0, x, "x must be >= 0", "pass x >= 0")
        return val.guard(state, [check])

    out = run(1.0)
    np.testing.assert_array_equal(jax.random.key_data(out["key"]), jax.random.key_data(key))
    np.testing.assert_array_equal(out["g"], state["g"])
    with pytest.raises(Exception, match="x must be >= 0"):
        jax.block_until_ready(run(-1.0))
