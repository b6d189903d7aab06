r"""Quantal stochastic short-term depression (Fuhrmann et al. 2002; NEST's
`quantal_stp_synapse`)."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Key, PRNGKeyArray

from .. import _kinetics as kin, _validation as val
from .._component import STREAM, axis, zeros
from .._custom_types import Shape
from .._params import Param, param, resolve
from .short_term import AbstractShortTermPlasticity, check_U


class QuantalSTPState(eqx.Module):
    """State of `QuantalSTP`: the number of available release sites `a` (a whole number in
    [0, n_sites], stored as a float), the utilisation `u` (in [0, 1]) and the PRNG `key`
    of the next step."""

    a: Float[Array, "*n"] = val.bounded(0.0, None)
    u: Float[Array, "*n"] = val.bounded(0.0, 1.0)
    key: Key[Array, "*streams"] = axis(STREAM)  # one per trial in jsyn.trials


class QuantalSTP(AbstractShortTermPlasticity):
    r"""Quantal stochastic short-term plasticity: $n$ release sites, each available or
    empty (Fuhrmann et al. 2002; NEST's `quantal_stp_synapse`).

    Between spikes each empty site recovers independently, with probability
    $1 - e^{-\Delta t/\tau_d}$ over a step of $\Delta t$ (so with probability
    $1 - e^{-\Delta/\tau_d}$ over any interval $\Delta$, at any `dt`); the utilisation
    decays, $u \leftarrow u\,e^{-\Delta t/\tau_f}$. At a spike $u$ facilitates as in
    `jsyn.STP`, $u \leftarrow u + U(1 - u)$, then each available site releases with
    probability $u$: $k \sim \operatorname{Binomial}(a, u)$ sites release and become empty,
    $a \leftarrow a - k$. The step returns the efficacy $k/n$ (0 where there is no spike),
    so `efficacy * w` is the drive, $w\,k/n$.

    The expected efficacy equals the deterministic `jsyn.STP` efficacy $u\,x$ with the
    same $U$, $\tau_f$, $\tau_d$ (the expectation of $a/n$ follows $x$ exactly, since $u$
    is deterministic), and the fluctuations around it shrink as $1/\sqrt{n}$: many sites
    give back the Tsodyks-Markram model. Initial state: every site available, $u = 0$ (the
    first spike releases with probability $U$).

    Used as a projection's `stp=`, it runs per presynaptic neuron like `jsyn.STP`: the
    sites are a pool of the neuron, shared by its synapses (one draw per spike, which
    every synapse of the neuron transmits). Alone, `jsyn.simulate(model, spikes, dt,
    key=...)` runs one pool per input column. A step's spike count is 0 or 1 (a count
    $0 < s < 1$ scales the release probability and the facilitation, so that the model
    stays continuous in it; counts above 1 are refused at the `simulate` entry: two spikes
    within one step would release from a pool that recovered and a $u$ that decayed over
    an interval shorter than `dt`, which a count does not carry, so any answer would
    invent that interval; use a smaller `dt`). The draws have no gradient
    (the efficacy is piecewise constant in the parameters); for a differentiable mean,
    use `jsyn.STP`.

    **Arguments:**
    - `n_sites`: the number of release sites $n$, >= 1 (static). Default 10.
    - `U`: increment of $u$ per spike, in (0, 1]. Default 0.5.
    - `tau_f`: facilitation time constant, decay of $u$ (ms), > 0. Default 1e-3 (no
      facilitation worth the name: $u = U$ at each spike after a few steps).
    - `tau_d`: recovery time constant of an empty site (ms), > 0. Default 800.0.

    The defaults follow NEST's `quantal_stp_synapse` (U=0.5, n=1 there, tau_rec=800 ms,
    tau_fac=0).

    **Reference:** Fuhrmann, Segev, Markram & Tsodyks 2002, *J Neurophysiol* 87:140;
    Loebel, Silberberg, Helbig, Markram, Tsodyks & Richardson 2009, *Front Comput Neurosci*
    3:27.
    """

    U: Param = param(default=0.5)
    tau_f: Param = param(default=1e-3)
    tau_d: Param = param(default=800.0)
    n_sites: int = eqx.field(static=True, default=10)
    needs_key: ClassVar[bool] = True

    def __check_init__(self):
        if isinstance(self.n_sites, bool) or not isinstance(self.n_sites, int) or self.n_sites < 1:
            raise ValueError(
                f"QuantalSTP.n_sites must be a whole number >= 1 (got {self.n_sites!r})."
            )

    def constraints(self):
        return (
            check_U("QuantalSTP", resolve(self.U)),
            val.positive("QuantalSTP", "tau_f", resolve(self.tau_f)),
            val.positive("QuantalSTP", "tau_d", resolve(self.tau_d)),
        )

    def input_constraints(self, spikes):
        spikes = jnp.asarray(spikes)
        return (
            val.each_step(
                ~((spikes >= 0) & (spikes <= 1)),
                "the inputs of QuantalSTP are spikes, 0 or 1 per step",
                "pass presynaptic spikes (0/1); several spikes of one neuron in a step do "
                "not fit this model, use a smaller dt",
            ),
        )

    def init_state(self, n: Shape, *, dtype=None, key: PRNGKeyArray) -> QuantalSTPState:
        """All sites available, $u = 0$, and the PRNG `key` (required)."""
        u = zeros(n, dtype)
        return QuantalSTPState(a=u + float(self.n_sites), u=u, key=key)

    def step(self, state: QuantalSTPState, spikes, dt):
        a, u = state.a, state.u
        s = jnp.asarray(spikes, a.dtype)
        dt = jnp.asarray(dt, a.dtype)
        key, k_rec, k_rel = jax.random.split(state.key, 3)
        recover = kin.lost(dt, resolve(self.tau_d, a))
        a = a + self._count(k_rec, self.n_sites - a, recover)
        u = kin.decayed(u, dt, resolve(self.tau_f, u))
        u = u + s * resolve(self.U, u) * (1.0 - u)
        k = self._count(k_rel, a, jnp.clip(s * u, 0.0, 1.0))
        return QuantalSTPState(a=a - k, u=u, key=key), k / self.n_sites

    def _count(self, key, m, p):
        r"""$\operatorname{Binomial}(m, p)$ for whole numbers $0 \le m \le n$: the successes
        among the first $m$ of $n$ Bernoulli draws (exact, without loops; no gradient)."""
        m = jax.lax.stop_gradient(m)
        p = jnp.broadcast_to(jax.lax.stop_gradient(p), m.shape)
        u = jax.random.uniform(key, (*m.shape, self.n_sites), m.dtype)
        sites = jnp.arange(self.n_sites, dtype=m.dtype).reshape((1,) * m.ndim + (-1,))
        used = sites < m[..., None]
        return jnp.sum(used & (u < p[..., None]), axis=-1).astype(m.dtype)
