"""A passive, sealed-end cable against the cable equation's closed forms: the steady state of
a constant current and the EPSP of a current-based synapse (Rall's series)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

jx = pytest.importorskip("jaxley")
from jaxley.channels import Leak  # noqa: E402

import jsyn  # noqa: E402
from jsyn.dendrites import DendriticCell, PSCSites, jaxley_numerics  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")  # in jaxley

N_COMP, LENGTH, RADIUS, R_AXIAL, G_LEAK, C_M = (
    50,
    500.0,
    1.0,
    100.0,
    1e-4,
    1.0,
)  # µm, Ω cm, S/cm², µF/cm²
LAMBDA = np.sqrt(RADIUS * 1e-4 / G_LEAK / (2 * R_AXIAL)) * 1e4  # µm
X = (np.arange(N_COMP) + 0.5) * LENGTH / N_COMP  # compartment centres (µm)
TAU_M = C_M / G_LEAK * 1e-3  # ms
TAU_SYN, I_SYN = 2.0, 50.0  # ms, pA


@pytest.fixture(scope="module")
def cable():
    with jaxley_numerics():
        cell = jx.Cell([jx.Branch(jx.Compartment(), N_COMP)], parents=[-1])
        cell.set("radius", RADIUS)
        cell.set("length", LENGTH / N_COMP)
        cell.set("axial_resistivity", R_AXIAL)
        cell.insert(Leak())
        cell.set("Leak_gLeak", G_LEAK)
        cell.set("Leak_eLeak", -70.0)
        cell.set("v", -70.0)
    psc = jsyn.PSC(jsyn.Expon(TAU_SYN), jsyn.CUBA(g_max=I_SYN))
    system = DendriticCell(cell, {"syn": PSCSites(psc, at=[0])}, current_at=[0])
    run = jax.jit(lambda system, inputs, dt: jsyn.simulate(system, inputs, dt)[1])
    return system, run


def _inputs(T, spike=0.0, current=0.0):
    return {"syn": jnp.zeros((T, 1)).at[0].set(spike), "current": jnp.full((T, 1), current)}


@pytest.mark.slow  # 11 s in the default lane (2 workers, 2 cores, load 3-4)
def test_steady_state_attenuation(cable):
    """V(x) = I R_in cosh((L - x)/λ) / cosh(L/λ), R_in = r_a λ coth(L/λ): checks the cable and
    the conversion of jsyn's pA into jaxley's current (a factor 1000 off would show)."""
    system, run = cable
    current = 10.0  # pA
    v = run(system, _inputs(600, current=current), 0.5)[-1] + 70.0  # 300 ms >> τ_m = 10 ms
    r_axial = R_AXIAL / (np.pi * (RADIUS * 1e-4) ** 2)  # Ω/cm
    r_in = r_axial * LAMBDA * 1e-4 / np.tanh(LENGTH / LAMBDA)  # Ω
    expected = current * 1e-12 * r_in * 1e3 * np.cosh((LENGTH - X) / LAMBDA)
    expected /= np.cosh(LENGTH / LAMBDA)
    np.testing.assert_allclose(v, expected, rtol=1e-4)  # measured 1.0e-5 (50 compartments)
    attenuation = np.cosh((LENGTH - X[-1]) / LAMBDA) / np.cosh((LENGTH - X[0]) / LAMBDA)
    assert float(v[-1] / v[0]) == pytest.approx(attenuation, rel=1e-4)


def _rall_epsp(t):
    """Rall's series for a sealed cable, current I(t) = I_syn e^{-t/τ_s} injected at x = 0:
    V(x, t) = Σ_n ε_n/(c_m L) ∫ I(s) e^{-(t-s)/τ_n} ds cos(nπx/L), τ_n = τ_m/(1 + (nπλ/L)²)."""
    c_m = C_M * 1e-6 * 2 * np.pi * RADIUS * 1e-4  # F/cm
    V = np.zeros((len(t), N_COMP))
    for n in range(3000):
        tau_n = TAU_M / (1 + (n * np.pi * LAMBDA / LENGTH) ** 2)
        eps = 1.0 if n == 0 else 2.0
        amp = eps / (c_m * LENGTH * 1e-4) * I_SYN * 1e-12 * 1e-3  # V per ms of integral
        kernel = TAU_SYN * tau_n / (TAU_SYN - tau_n) * (np.exp(-t / TAU_SYN) - np.exp(-t / tau_n))
        V += amp * 1e3 * kernel[:, None] * np.cos(n * np.pi * X / LENGTH)[None, :]
    return V


@pytest.mark.slow  # 9 s in the default lane (2 workers, 2 cores)
def test_epsp_attenuation(cable):
    """The EPSP of a synapse at the sealed end x = 0, along the cable: peaks within 1% of
    Rall's series at dt = 0.025 ms, the error halving with dt (first order, the synaptic
    current being taken at the start of each step), attenuation to x = L within 0.3%."""
    system, run = cable
    T, errors = 1200, []
    for dt in (0.025, 0.0125):
        v = np.asarray(run(system, _inputs(T, spike=1.0), dt)) + 70.0
        ref = _rall_epsp(np.arange(T) * dt)
        peaks, ref_peaks = v.max(0), ref.max(0)
        errors.append(np.abs(peaks / ref_peaks - 1).max())
        assert errors[-1] < 0.01  # measured 0.70% and 0.35%
        assert peaks[-1] / peaks[0] == pytest.approx(ref_peaks[-1] / ref_peaks[0], rel=3e-3)
    assert 0.4 < errors[1] / errors[0] < 0.6
