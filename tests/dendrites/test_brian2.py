"""The same ball-and-stick cell, synapse and input in Brian2's `SpatialNeuron` (the bench
extra): jsyn on jaxley agrees within the discretisation error measured in both."""

import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

jx = pytest.importorskip("jaxley")
pytest.importorskip("brian2")
sys.path.insert(0, str(pathlib.Path(__file__).parents[2] / "benchmarks"))
sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _dendrites_brian2 import ball_and_stick_epsp  # noqa: E402
from cells import ball_and_stick  # noqa: E402

import jsyn  # noqa: E402
from jsyn.dendrites import DendriticCell, PSCSites  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning"),  # in jaxley
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # in Brian2's code generation
]

N_DEND, SYN, G_MAX, TAU, E, T_MS = 30, 30, 2.0, 3.0, 0.0, 30.0


def _jsyn(dt):
    T = int(round(T_MS / dt))
    psc = jsyn.PSC(jsyn.Expon(TAU), jsyn.COBA(g_max=G_MAX, E=E))
    system = DendriticCell(ball_and_stick(N_DEND), {"syn": PSCSites(psc, at=[SYN])})
    raster = jnp.zeros((T, 1)).at[int(round(2.0 / dt))].set(1.0)
    return np.asarray(jax.jit(lambda r: jsyn.simulate(system, {"syn": r}, dt)[1])(raster))


def _brian2(dt):
    T = int(round(T_MS / dt))
    v = ball_and_stick_epsp(
        n_dend=N_DEND,
        soma=(10.0, 20.0),
        dend=(1.0, 300.0),
        r_axial=100.0,
        g_leak=1e-4,
        e_leak=-70.0,
        syn_comp=SYN,
        g_max=G_MAX,
        tau=TAU,
        E=E,
        spike_times=np.array([2.0]),
        dt=dt,
        T=T + 1,
    )
    # Brian2 runs on_pre after the state update of the spike's step, so its response starts
    # one step after jsyn's (whose spike in row i acts from t_i): compare row i + 1 with i.
    return v[1:]


def test_agrees_with_brian2_spatial_neuron_within_discretisation_error():
    dt, fine = 0.025, 0.025 / 4
    ours, ours_fine = _jsyn(dt), _jsyn(fine)[::4]
    theirs, theirs_fine = _brian2(dt), _brian2(fine)[::4]
    cols = [0, SYN]  # soma, synapse
    gap = np.abs(ours - theirs)[:, cols].max()
    gap_fine = np.abs(ours_fine - theirs_fine)[:, cols].max()
    ours_err = np.abs(ours - ours_fine)[:, cols].max()
    theirs_err = np.abs(theirs - theirs_fine)[:, cols].max()
    peak = (ours[:, SYN] + 70.0).max()
    print(
        f"peak {peak:.3f} mV; gap {gap:.2e} (dt/4: {gap_fine:.2e}); own errors {ours_err:.2e}, "
        f"{theirs_err:.2e}"
    )
    assert peak > 1.0
    assert gap <= ours_err + theirs_err
    assert gap_fine < gap / 2  # the two converge together
