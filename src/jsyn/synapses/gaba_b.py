r"""GABA_B receptor kinetics with a second messenger (Destexhe et al. 1996)."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _kinetics as kin, _validation as val
from .._component import zeros
from .._custom_types import Shape
from .._params import Param, param, resolve
from .base import AbstractSynapse


class GABAbState(eqx.Module):
    """State of `GABAb`: the fraction of activated receptors `R` (dimensionless, in
    [0, 1]), the concentration of activated G-protein `G` (µM, >= 0) and the time the
    transmitter pulse still has to run, `pulse_left` (ms; 0 when there is no pulse)."""

    R: Float[Array, "*n"] = val.bounded(0.0, 1.0)
    G: Float[Array, "*n"] = val.bounded(0.0)
    pulse_left: Float[Array, "*n"] = val.bounded(0.0)


def hill(G, n, Kd):
    r"""The fraction of open channels $G^n/(G^n + K_d)$, computed as
    $\sigma(n\ln G - \ln K_d)$: no overflow for any $G \ge 0$ and $n > 0$, exactly 0 with
    zero gradients at $G = 0$ (the limit for $n > 1$, such as the default $n = 4$)."""
    positive = G > 0
    G_safe = jnp.where(positive, G, 1.0)
    return jnp.where(positive, jax.nn.sigmoid(n * jnp.log(G_safe) - jnp.log(Kd)), 0.0)


class GABAb(AbstractSynapse):
    r"""GABA_B receptor: receptor activation, then G-protein, then the channel.

    $$\frac{dR}{dt} = K_1\,[T](t)\,(1 - R) - K_2\,R, \qquad
    \frac{dG}{dt} = K_3\,R - K_4\,G, \qquad g = \frac{G^n}{G^n + K_d},$$

    where a spike at $t_s$ starts a square pulse $[T] = T$ on $[t_s, t_s + T_{dur})$ and a
    new spike restarts it, as in `AMPA`. The steep output needs $G$ to build up, so single
    spikes barely open the channel and bursts do: the known property of this model. Use
    with `COBA(E=-95.0)`.

    **Exact step.** The state carries the time the pulse still has to run, and a step is
    split in up to two pieces, pulse on for $d_{on} = \min(\text{left}, \Delta t)$ then off.
    Within a piece $[T]$ is constant and $(R, G)$ is a linear cascade, solved exactly:
    $R(s) = R_\infty + (R_0 - R_\infty)e^{-ks}$ with $k = K_1[T] + K_2$,
    $R_\infty = K_1[T]/k$, and
    $G(d) = G_0e^{-K_4d} + K_3\bigl[R_\infty\frac{1 - e^{-K_4d}}{K_4} +
    (R_0 - R_\infty)\frac{e^{-K_4d} - e^{-kd}}{k - K_4}\bigr]$ (the limit where $k = K_4$).
    Nothing is first order: for spikes on the grid the values at grid points do not
    depend on $\Delta t$, whether or not $T_{dur}$ is a multiple of it, and the output is
    a continuous function of $T_{dur}$ with its true gradient (kinks only where the
    continuous model has them, see `AMPA`). The output law is computed as
    $\sigma(n\ln G - \ln K_d)$ (see `hill`), stable for any $G \ge 0$.

    **Drive.** `x` is the release of the step in $[0, 1]$ (1 or more: a spike, restarting
    the pulse; a fraction moves the pulse's remaining time that fraction of the way to a
    restart), exactly as in `AMPA`; weights belong in the output law.

    **Arguments:**
    - `K1`: receptor activation rate (1/(mM ms)), > 0. Default 0.09.
    - `K2`: receptor deactivation rate (1/ms), > 0. Default 0.0012.
    - `K3`: G-protein production rate (µM/ms per unit of `R`), > 0. Default 0.18.
    - `K4`: G-protein removal rate (1/ms), > 0. Default 0.034.
    - `Kd`: dissociation constant of the channel's G-protein binding (µM^n), > 0.
      Default 100.0.
    - `n`: number of G-protein binding sites (dimensionless), > 0. Default 4.0;
      differentiable like every other parameter.
    - `T`: transmitter concentration during the pulse (mM), >= 0. Default 0.5.
    - `T_dur`: pulse duration (ms), >= 0. Default 0.3.

    `G` is in µM, the unit of Destexhe et al. (so `Kd` is in µM^n), not the package's mM.

    **Reference:** Destexhe, Bal, McCormick & Sejnowski 1996, *J Neurophysiol* 76:2049;
    Destexhe, Mainen & Sejnowski 1998, in *Methods in Neuronal Modeling*, 2nd ed.
    """

    K1: Param = param(default=0.09)
    K2: Param = param(default=0.0012)
    K3: Param = param(default=0.18)
    K4: Param = param(default=0.034)
    Kd: Param = param(default=100.0)
    n: Param = param(default=4.0)
    T: Param = param(default=0.5)
    T_dur: Param = param(default=0.3)

    def constraints(self):
        checks = [
            val.positive("GABAb", name, resolve(getattr(self, name)))
            for name in ("K1", "K2", "K3", "K4", "Kd", "n")
        ]
        checks += [
            val.nonnegative("GABAb", name, resolve(getattr(self, name))) for name in ("T", "T_dur")
        ]
        return tuple(checks)

    def init_state(self, n: Shape, *, dtype=None) -> GABAbState:
        return GABAbState(R=zeros(n, dtype), G=zeros(n, dtype), pulse_left=zeros(n, dtype))

    def _piece(self, R, G, concentration, d):
        """Advance `(R, G)` exactly over a piece of `d` ms with a constant transmitter
        concentration (mM)."""
        K1, K2 = resolve(self.K1, R), resolve(self.K2, R)
        K3, K4 = resolve(self.K3, R), resolve(self.K4, R)
        rate, source = K1 * concentration + K2, K1 * concentration
        R_inf = source / rate
        G = kin.decayed_at_rate(G, K4, d) + K3 * (
            R_inf * d * kin.exprel(-K4 * d) + (R - R_inf) * kin.cascade_rate(d, rate, K4)
        )
        return kin.linear_step(R, rate, source, d), G

    def output(self, G: Float[Array, "*n"]) -> Float[Array, "*n"]:
        """The open fraction $G^n/(G^n + K_d)$ (dimensionless) for G-protein `G` (µM)."""
        return hill(G, resolve(self.n, G), resolve(self.Kd, G))

    def step(self, state: GABAbState, x, dt) -> tuple[GABAbState, Float[Array, "*n"]]:
        """Evolve over `dt` ms, then apply this step's release `x`: returns the new state
        and the open fraction `g` at the end of the step (dimensionless)."""
        R, G = state.R, state.G
        dt = jnp.asarray(dt, R.dtype)
        d_on, d_off, pulse_left = kin.pulse_pieces(state.pulse_left, dt)
        R, G = self._piece(R, G, resolve(self.T, R), d_on)
        R, G = self._piece(R, G, jnp.zeros_like(R), d_off)
        pulse_left = kin.restart_pulse(pulse_left, jnp.asarray(x, R.dtype), resolve(self.T_dur, R))
        return GABAbState(R=R, G=G, pulse_left=pulse_left), self.output(G)
