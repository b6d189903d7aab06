r"""Stochastic transmitter release: each spike releases on each synapse with a probability
(or at `n_sites` independent release sites), drawn per synapse from an explicit key."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Int, PRNGKeyArray

from .. import _validation as val
from .._component import AbstractComponent
from .._params import Param, as_param, param, resolve

_MODES = ("hard", "straight_through", "relaxed")


def _lowbias32(x):
    """A 32-bit integer hash with low bias (Wellons' `lowbias32`, hash-prospector)."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def uniforms(key: PRNGKeyArray, syn: Int[Array, "..."], n_sites: int, dtype) -> Array:
    r"""Uniform numbers in the open interval (0, 1), shape `syn.shape + (n_sites,)`: those
    of synapse $s$ depend only on `key` and $s$, so any subset of synapses, gathered in any
    order, draws the same numbers for the same synapse.

    Counter-based: two words $k_0, k_1$ drawn from `key` (one JAX draw per step) key a hash
    of the counter, $h(h(s \oplus k_0) \oplus (k_1 + arphi\,	ext{site}))$ with $h$ the
    `lowbias32` integer hash and $arphi$ = 0x9E3779B9: a few integer operations per
    number, where JAX's Threefry costs some eighty (and doubled the cost of the COBA
    benchmark network; see benchmarks/README.md)."""
    k0, k1 = jax.random.bits(key, (2,), jnp.uint32)
    site = jnp.arange(n_sites, dtype=jnp.uint32) * jnp.uint32(0x9E3779B9)
    site = site.reshape((1,) * syn.ndim + (n_sites,))
    first = _lowbias32(syn.astype(jnp.uint32) ^ k0)[..., None]
    bits = _lowbias32(first ^ (site + k1))
    # 24 random bits, centred in their bin: never exactly 0 or 1 (log u is finite)
    return ((bits >> 8).astype(dtype) + 0.5) * (1.0 / 2**24)


class StochasticRelease(AbstractComponent):
    r"""Stochastic release: each presynaptic spike releases transmitter at each synapse
    with probability $p$, independently of other synapses and other spikes. Give it to a
    projection, `jsyn.Projection(..., release=jsyn.StochasticRelease(p=0.3))`.

    With `n_sites` $= n$ each synapse has $n$ release sites, each releasing with
    probability $p$ (binomial quantal release): a spike of weight $w$ delivers

    $$w\,\frac{k}{n}, \qquad k \sim \operatorname{Binomial}(n, p),$$

    with mean $p\,w$ and variance $p(1 - p)\,w^2/n$ ($n = 1$, the default, is one
    Bernoulli draw: $w$ or 0). The total drive of $n$ sites of quantal size $w$ each
    ($n\,p\,w$ on average, variance $n\,p(1-p)\,w^2$) is this with weight $n\,w$.
    With short-term plasticity on the projection and `p=None`, the release probability is
    the spike's STP efficacy $r$ (`jsyn.STD`, `jsyn.STP`), so a spike delivers $w$ with
    probability $r$ instead of $r\,w$ always: the same mean. With both `p` and STP, the
    efficacy scales the released drive ($r\,w$ with probability $p$).

    **Random numbers.** The projection keeps a PRNG key in its state (`state.key`), split
    once per step; the uniform numbers of synapse $s$ in a step come from a counter-based
    hash of (step key, $s$). They are drawn only for the synapses of the neurons that
    spiked (event-driven with `jsyn.Sparse`), and the same synapse draws the same numbers
    whichever neurons spiked with it, so a run is reproducible for a given key and
    `jsyn.Dense` equals an all-to-all `jsyn.Sparse` exactly.

    **Gradients** (`mode`): `"hard"` (default) draws 0/1 releases, whose derivative w.r.t.
    $p$ is zero. `"straight_through"` draws the same 0/1 releases and passes the gradient
    of their expectation, $\partial/\partial p = 1$ per site, so the gradient of the mean
    drive over many trials is exact ($w$ per spike of weight $w$).
    `"relaxed"` replaces each 0/1 draw by the relaxed Bernoulli (Concrete) sample
    $\sigma\big((\operatorname{logit} p + \operatorname{logit} u)/T\big)$ with temperature
    $T$ (Maddison et al. 2017; Jang et al. 2017), smooth in $p$, which tends to the hard
    draw as $T \to 0$ (its mean differs from $p$ by $O(T)$).

    **Arguments:**
    - `p`: release probability in [0, 1] (dimensionless): a scalar or one per synapse
      (shape `conn.syn_shape`); `None` to release with the STP efficacy (the projection
      needs `stp=`). Array or `AbstractParam` (`jsyn.Bounded(p, 0, 1)` for fitting).
      Default 0.5.
    - `n_sites`: the number of release sites per synapse, >= 1 (static). Default 1.
    - `mode`: `"hard"`, `"straight_through"` or `"relaxed"` (static). Default `"hard"`.
    - `temperature`: the relaxation temperature $T$ of `"relaxed"`, > 0. Default 0.1.

    **Reference:** Katz 1969, *The Release of Neural Transmitter Substances*; del Castillo
    & Katz 1954, *J Physiol* 124:560 (binomial quantal release).
    """

    p: Param | None
    temperature: Param = param(default=0.1)
    n_sites: int = eqx.field(static=True, default=1)
    mode: str = eqx.field(static=True, default="hard")

    def __init__(self, p=0.5, *, n_sites: int = 1, mode: str = "hard", temperature=0.1):
        if mode not in _MODES:
            raise ValueError(
                f"StochasticRelease.mode must be one of {_MODES} (got {mode!r}); use "
                "'straight_through' or 'relaxed' to fit p by gradient."
            )
        if isinstance(n_sites, bool) or not isinstance(n_sites, int) or n_sites < 1:
            raise ValueError(
                f"StochasticRelease.n_sites must be a whole number >= 1 (got {n_sites!r})."
            )
        self.p = as_param(p)
        self.temperature = as_param(temperature)
        self.n_sites = n_sites
        self.mode = mode

    def constraints(self):
        checks = [val.positive("StochasticRelease", "temperature", resolve(self.temperature))]
        if self.p is not None:
            p = jnp.asarray(resolve(self.p))
            checks.append(
                val.Check(
                    ~((p >= 0) & (p <= 1)),
                    p,
                    "StochasticRelease.p must be a probability in [0, 1]",
                    "pass 0 <= p <= 1; use jsyn.Bounded(p, 0.0, 1.0) to keep it inside while "
                    "fitting",
                )
            )
        return tuple(checks)

    def released(self, key: PRNGKeyArray, syn, prob) -> Array:
        r"""The released fraction $k/n$ of each synapse `syn` (int array) releasing with
        probability `prob` (broadcast to `syn`'s shape), drawn with `key` (see the class
        docstring for the modes)."""
        prob = jnp.broadcast_to(prob, jnp.shape(syn))[..., None]
        u = uniforms(key, syn, self.n_sites, prob.dtype)
        hard = (u < prob).astype(prob.dtype)
        if self.mode == "straight_through":
            hard = hard + (prob - jax.lax.stop_gradient(prob))
        elif self.mode == "relaxed":
            T = resolve(self.temperature, prob)
            logit_p = jnp.log(prob) - jnp.log1p(-prob)
            hard = jax.nn.sigmoid((logit_p + jnp.log(u) - jnp.log1p(-u)) / T)
        return jnp.mean(hard, axis=-1)


class ReleaseEvents(eqx.Module):
    """The per-event hook of a step's delivery (see `jsyn.AbstractConnection.deliver`):
    scales the gathered values of each synapse by its released fraction.

    `p_pre` is the release probability of each presynaptic neuron's spike (its STP
    efficacy), or `None` to use the release's own `p`."""

    release: StochasticRelease
    key: PRNGKeyArray
    p_pre: Array | None = None

    def __call__(self, values, syn, pre):
        """`values` (the weighted signal of synapses `syn`, presynaptic neurons `pre`, all
        broadcastable to one shape) times the released fraction of each synapse."""
        if self.p_pre is not None:
            prob = self.p_pre[pre]
        else:
            p = resolve(self.release.p, values)
            prob = jnp.reshape(p, -1)[syn] if jnp.ndim(p) else p
        return values * self.release.released(self.key, syn, prob)
