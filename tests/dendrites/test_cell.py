"""`DendriticCell`: jsyn's gates inside a jaxley cell equal standalone jsyn runs; currents are
the output laws at the local potential; gradients (jsyn's and jaxley's parameters) equal
central differences; vmap equals a loop; spikes of one cell drive synapses on another."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cells import ball_and_stick

jx = pytest.importorskip("jaxley")

import jsyn  # noqa: E402
from jsyn.dendrites import (  # noqa: E402
    DendriticCell,
    ProjectionSites,
    PSCSites,
    compartment,
    jaxley_numerics,
)

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")  # in jaxley

DT, T = 0.025, 400


def _glutamate():
    return jsyn.PSC(
        synapse=(jsyn.AMPA(), jsyn.NMDA()),
        output=(jsyn.COBA(g_max=2.0), jsyn.MgBlock(g_max=1.0)),
        stp=jsyn.STP(),
    )


def _raster(n, seed=0):
    rng = np.random.default_rng(seed)
    return jnp.asarray((rng.random((T, n)) < 0.01).astype(np.float64))


@pytest.fixture(scope="module")
def mixed():
    """Three glutamatergic synapses as a PSC, and the same as a one-to-one projection, on a
    trainable leak conductance."""
    cell = ball_and_stick(trainable="Leak_gLeak")
    sites = [compartment(cell, 1, x) for x in (0.1, 0.5, 0.95)]
    proj = jsyn.Projection(jsyn.one_to_one(3), jsyn.AMPA(), jsyn.COBA(g_max=2.0), stp=jsyn.STP())
    placements = {"glu": PSCSites(_glutamate(), at=sites), "proj": ProjectionSites(proj, at=sites)}
    return DendriticCell(cell, placements, readout=[0]), sites


@pytest.mark.slow  # 16 s in the default lane (2 workers, 2 cores, load 3-4)
def test_gates_equal_standalone_jsyn(mixed):
    system, sites = mixed
    raster = _raster(3)
    record = ("cell.v", "synapses.glu", "current.glu", "current.proj", "synapses.proj")
    _, rec = jsyn.simulate(system, {"glu": raster, "proj": raster}, DT, record=record)
    _, alone = jsyn.simulate(_glutamate(), raster, DT, record="state")
    for inside, outside in zip(jax.tree.leaves(rec["synapses.glu"]), jax.tree.leaves(alone)):
        np.testing.assert_allclose(inside, outside, rtol=1e-14, atol=1e-15)  # to rounding
    # the current of each step is the output laws at the local potential after the step
    V = rec["cell.v"][:, np.asarray(sites)]
    gA, gN = rec["synapses.glu"].synapses[0].g, rec["synapses.glu"].synapses[1].g
    expected = jsyn.COBA(g_max=2.0).current(gA, V) + jsyn.MgBlock(g_max=1.0).current(gN, V)
    np.testing.assert_allclose(rec["current.glu"], expected, rtol=1e-12)
    assert float(jnp.abs(rec["current.glu"]).max()) > 1.0  # the synapses did act
    # a one-to-one projection with the same AMPA and STP gives the PSC's AMPA current
    np.testing.assert_allclose(
        rec["current.proj"], jsyn.COBA(g_max=2.0).current(gA, V), rtol=1e-12, atol=1e-12
    )


def _soma_loss(system, raster):
    _, v = jsyn.simulate(system, {"glu": raster, "proj": jnp.zeros_like(raster)}, DT)
    return jnp.mean((v + 70.0) ** 2)


@pytest.mark.slow  # compiles a jaxley cell's run anew (tens of s on a loaded machine)
def test_gradients_match_central_differences(mixed):
    """d loss / d (AMPA g_max, NMDA tau_decay, jaxley's leak conductance) against central
    differences (float64)."""
    system, _ = mixed
    raster = _raster(3, seed=1)
    where = (
        lambda s: s.placements["glu"].psc.output[0].g_max,
        lambda s: s.placements["glu"].psc.synapse[1].tau_decay,
        lambda s: s.params[0]["Leak_gLeak"],
    )

    def loss(values):
        s = system
        for get, value in zip(where, values):
            s = eqx.tree_at(get, s, value)
        return _soma_loss(s, raster)

    values = [jnp.asarray(get(system), jnp.float64) for get in where]
    grads = jax.jit(jax.grad(loss))(values)
    f = jax.jit(loss)
    for k, (value, grad) in enumerate(zip(values, grads)):
        eps = 1e-4 * float(jnp.abs(value).max())  # measured agreement: 2e-10 to 2e-7
        up = [v + eps if j == k else v for j, v in enumerate(values)]
        down = [v - eps if j == k else v for j, v in enumerate(values)]
        fd = (f(up) - f(down)) / (2 * eps)
        assert float(jnp.sum(grad)) == pytest.approx(float(fd), rel=1e-5)
        assert float(fd) != 0.0


@pytest.mark.slow  # compiles a jaxley cell's run anew (tens of s on a loaded machine)
def test_vmap_over_parameters_and_trials_equals_a_loop(mixed):
    system, _ = mixed
    rasters = jnp.stack([_raster(3, seed=s) for s in (2, 3)])
    g_max = jnp.asarray([1.0, 3.0])

    def run(g, raster):
        s = eqx.tree_at(lambda s: s.placements["glu"].psc.output[0].g_max, system, g)
        return jsyn.simulate(s, {"glu": raster, "proj": raster}, DT)[1]

    batched = jax.jit(jax.vmap(run))(g_max, rasters)
    for k in range(2):
        np.testing.assert_allclose(batched[k], run(g_max[k], rasters[k]), rtol=1e-10)


@pytest.mark.slow  # compiles a jaxley cell's run anew (tens of s on a loaded machine)
def test_spikes_of_one_cell_drive_synapses_on_another(getkey):
    """Cell A (HH soma, driven by a current) fires; its soma detector drives a PSC on cell
    B's dendrite (the PSC's gates equal a standalone run on A's detected spikes) and a
    plastic projection with stochastic release whose weights follow B's soma spikes."""
    a, b = ball_and_stick(hh=True), ball_and_stick(hh=True)
    with jaxley_numerics():
        net = jx.Network([a, b])
    n_a = len(a.nodes)  # cell B's compartments follow cell A's
    soma_a, dend_b, soma_b = 0, n_a + compartment(b, 1, 0.2), n_a
    psc = jsyn.PSC(jsyn.AMPA(), jsyn.COBA(g_max=30.0))
    plastic = jsyn.Projection(
        jsyn.all_to_all(2, 1, 0.5),
        jsyn.AMPA(),
        jsyn.COBA(g_max=30.0),
        plasticity=jsyn.STDP(A_plus=0.05),
        release=jsyn.StochasticRelease(p=0.8),
        synapse_params="synapse",
    )
    system = DendriticCell(
        net,
        {
            "from_a": PSCSites(psc, at=[dend_b], pre="a"),
            "plastic": ProjectionSites(plastic, at=[dend_b]),
        },
        readout=[soma_a, soma_b],
        current_at=[soma_a],
        detectors={"a": soma_a, "b": (soma_b, -20.0)},
        post="b",
    )
    n = 1200
    current = jnp.zeros((n, 1)).at[40:1000].set(300.0)  # pA into A's soma
    pre = jnp.zeros((n, 2)).at[200::200].set(1.0)
    record = ("spikes.a", "spikes.b", "synapses.from_a", "synapses.plastic")
    _, rec = jsyn.simulate(
        system, {"current": current, "plastic": pre}, DT, record=record, key=getkey()
    )
    spikes_a = rec["spikes.a"]
    assert int(spikes_a.sum()) >= 2  # A fired
    _, alone = jsyn.simulate(psc, spikes_a, DT, record="state")
    for inside, outside in zip(jax.tree.leaves(rec["synapses.from_a"]), jax.tree.leaves(alone)):
        np.testing.assert_allclose(inside, outside, rtol=1e-14, atol=1e-15)  # to rounding
    assert int(rec["spikes.b"].sum()) >= 1  # B fired, driven by A
    w = rec["synapses.plastic"].w
    assert float(jnp.abs(w[-1] - w[0]).max()) > 0.0  # the rule saw B's spikes


@pytest.mark.slow  # 12 s in the default lane (2 workers, 2 cores)
def test_errors_name_the_value_and_the_fix():
    cell = ball_and_stick(n_dend=2)
    psc = jsyn.PSC(jsyn.AMPA(), jsyn.COBA())
    with pytest.raises(ValueError, match="compartment 9, but the cell has 3"):
        DendriticCell(cell, {"s": PSCSites(psc, at=[9])})
    with pytest.raises(ValueError, match=r"detectors \['x'\]"):
        DendriticCell(cell, {"s": PSCSites(psc, at=[1], pre="x")})
    with pytest.raises(ValueError, match="convention='into_cell'"):
        PSCSites(jsyn.PSC(jsyn.AMPA(), jsyn.COBA(), convention="clamp"), at=[1])
    with pytest.raises(ValueError, match="2 postsynaptic neurons but at= names 1"):
        ProjectionSites(jsyn.Projection(jsyn.one_to_one(2), jsyn.AMPA(), jsyn.COBA()), at=[1])
    with pytest.raises(ValueError, match="x=...\\) is a relative position"):
        compartment(cell, 1, 1.5)
    system = DendriticCell(cell, {"s": PSCSites(psc, at=[1])}, current_at=[0])
    with pytest.raises(ValueError, match=r"keys \['current', 's'\].*got \['s'\]"):
        jsyn.simulate(system, {"s": jnp.zeros((3, 1))}, 0.025)
    plastic = jsyn.Projection(
        jsyn.one_to_one(1), jsyn.Expon(2.0), jsyn.COBA(), plasticity=jsyn.STDP()
    )
    with pytest.raises(ValueError, match=r"synapses \['p'\] have a plasticity rule.*post="):
        DendriticCell(cell, {"p": ProjectionSites(plastic, at=[1])})
    noisy = jsyn.Projection(
        jsyn.one_to_one(1), jsyn.Expon(2.0), jsyn.COBA(), release=jsyn.StochasticRelease(p=0.5)
    )
    system = DendriticCell(cell, {"s": ProjectionSites(noisy, at=[1])})
    with pytest.raises(TypeError, match="stochastic synapses: pass simulate"):
        system.init_state()
