r"""Stochastic transmitter release: each spike releases on each synapse with a probability
(or at `n_sites` independent release sites), drawn per synapse from an explicit key."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Int, Key, PRNGKeyArray

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


def split_streams(key: Key[Array, "*streams"]) -> tuple[Array, Array]:
    """`(next, sub)`: `jax.random.split` of a key, or of each key of a batch of streams
    (shape `(B,)`, one per trial of `jsyn.trials`), each as its own split."""
    if jnp.ndim(key) == 0:
        pair = jax.random.split(key)
        return pair[0], pair[1]
    pairs = jax.vmap(jax.random.split)(key)
    return pairs[:, 0], pairs[:, 1]


def key_words(key: Key[Array, "*streams"]) -> tuple[Array, Array]:
    """The two 32-bit words $k_0, k_1$ that key a step's counter-based draws (`uniforms`),
    one JAX draw from `key`; for a batch of streams, shape `(B,)` each."""
    if jnp.ndim(key) == 0:
        words = jax.random.bits(key, (2,), jnp.uint32)
    else:
        words = jax.vmap(lambda k: jax.random.bits(k, (2,), jnp.uint32))(key)
    return words[..., 0], words[..., 1]


def uniforms(key: PRNGKeyArray, syn: Int[Array, "..."], n_sites: int, dtype, spike=0) -> Array:
    r"""Uniform numbers in the open interval (0, 1), shape `syn.shape + (n_sites,)`: those
    of synapse $s$ depend only on `key`, $s$ and `spike` (the index of a spike within a
    step, int, scalar or broadcast to `syn`), so any subset of synapses, gathered in any
    order, draws the same numbers for the same synapse, and each spike its own.

    Counter-based: two words $k_0, k_1$ drawn from `key` (one JAX draw per step) key a hash
    of the counter, $h(h(s \oplus k_0) \oplus (k_1 + \varphi\,c))$ with $h$ the
    `lowbias32` integer hash, $\varphi$ = 0x9E3779B9 and $c$ = `spike` $\cdot$ `n_sites`
    + site: a few integer operations per number, where JAX's Threefry costs some eighty
    (and doubled the cost of the COBA benchmark network; see benchmarks/README.md)."""
    return hashed_uniforms(key_words(key), syn, n_sites, dtype, spike)


def hashed_uniforms(words, syn: Int[Array, "..."], n_sites: int, dtype, spike=0) -> Array:
    """`uniforms` from the step's key words `(k0, k1)` (`key_words`), each a scalar or one
    per synapse of `syn`."""
    k0, k1 = (jnp.broadcast_to(jnp.asarray(w, jnp.uint32), jnp.shape(syn)) for w in words)
    first = jnp.asarray(spike, jnp.uint32) * jnp.uint32(n_sites)
    site = jnp.arange(n_sites, dtype=jnp.uint32) + jnp.expand_dims(first, -1)
    site = jnp.broadcast_to(site, (*syn.shape, n_sites)) * jnp.uint32(0x9E3779B9)
    hashed = _lowbias32(syn.astype(jnp.uint32) ^ k0)[..., None]
    bits = _lowbias32(hashed ^ (site + k1[..., None]))
    # 24 random bits, centred in their bin: never exactly 0 or 1 (log u is finite)
    return ((bits >> 8).astype(dtype) + 0.5) * (1.0 / 2**24)


def _relaxed_parts(p, u, T):
    r"""The relaxed Bernoulli sample $s = \sigma(z)$, $z = (\operatorname{logit} p +
    \operatorname{logit} u)/T$, and its derivatives in $p$ and $T$, finite at $p = 0$ and
    $p = 1$ where $s = p$: there $\partial s/\partial T = 0$ and $\partial s/\partial p$
    is its limit, $a\,p^{a-1} e^{a \operatorname{logit} u}$ as $p \to 0$ (and its mirror
    as $p \to 1$) with $a = 1/T$: 0 for $T < 1$, $e^{\pm\operatorname{logit} u}$ for
    $T = 1$, infinite for $T > 1$."""
    inside = (p > 0) & (p < 1)
    q = jnp.where(inside, p, 0.5)  # the untaken branch stays finite
    logit_u = jnp.log(u) - jnp.log1p(-u)
    z = (jnp.log(q) - jnp.log1p(-q) + logit_u) / T
    s = jnp.where(inside, jax.nn.sigmoid(z), p)
    slope = jax.nn.sigmoid(z) * jax.nn.sigmoid(-z) / T  # ds / d(logit p), both tails exact
    edge = jnp.exp(jnp.where(p <= 0, logit_u, -logit_u))
    limit = jnp.where(T < 1, 0.0, jnp.where(T == 1, edge, jnp.inf))
    ds_dp = jnp.where(inside, slope / (q * (1 - q)), limit)
    ds_dT = jnp.where(inside, -slope * z, 0.0)
    return s, ds_dp, ds_dT


@jax.custom_jvp
def relaxed_bernoulli(p, u, T):
    r"""$\sigma((\operatorname{logit} p + \operatorname{logit} u)/T)$ for $p \in [0, 1]$,
    with derivatives that are finite (and equal to their limits) at $p = 0$ and $p = 1$
    for $T \le 1$ (see `_relaxed_parts`)."""
    return _relaxed_parts(p, u, T)[0]


@relaxed_bernoulli.defjvp
def _relaxed_bernoulli_jvp(primals, tangents):
    p, u, T = primals
    dp, _, dT = tangents
    s, ds_dp, ds_dT = _relaxed_parts(p, u, T)
    return s, ds_dp * dp + ds_dT * dT


class StochasticRelease(AbstractComponent):
    r"""Stochastic release: each presynaptic spike releases transmitter at each synapse
    with probability $p$, independently of other synapses and other spikes. Give it to a
    projection, `jsyn.Projection(..., release=jsyn.StochasticRelease(p=0.3))`.

    With `n_sites` $= n$ each synapse has $n$ release sites, each releasing with
    probability $p$ (binomial quantal release): a spike of weight $w$ delivers

    $$w\,\frac{k}{n}, \qquad k \sim \operatorname{Binomial}(n, p),$$

    with mean $p\,w$ and variance $p(1 - p)\,w^2/n$ ($n = 1$, the default, is one
    Bernoulli draw: $w$ or 0). Each spike draws on its own: $c$ spikes of one neuron in
    one step deliver $w\,k/n$ with $k \sim \operatorname{Binomial}(c\,n, p)$ (not $c$
    times one draw). The total drive of $n$ sites of quantal size $w$ each
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
    - `ids`: the number of each synapse in the counter of its draws, one per synapse
      (shape `conn.syn_shape`, int), or `None` (default) for its position in the
      connection. `jsyn.trials` numbers each trial's synapses as its single run does, so
      that every trial draws what its single run draws.

    **Reference:** Katz 1969, *The Release of Neural Transmitter Substances*; del Castillo
    & Katz 1954, *J Physiol* 124:560 (binomial quantal release).
    """

    p: Param | None
    temperature: Param = param(default=0.1)
    n_sites: int = eqx.field(static=True, default=1)
    mode: str = eqx.field(static=True, default="hard")
    ids: Int[Array, "*syn"] | None = None

    def __init__(self, p=0.5, *, n_sites: int = 1, mode: str = "hard", temperature=0.1, ids=None):
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
        self.ids = None if ids is None else jnp.asarray(ids, jnp.int32)

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

    def released(self, words, syn, prob, count=None) -> Array:
        r"""The released fraction per spike of each synapse `syn` (int array, its number
        in the counter) releasing with probability `prob` (broadcast to `syn`'s shape),
        drawn with the step's key words `words` (`key_words(key)`: two words, each a
        scalar or one per synapse of `syn`; see the
        class docstring for the modes): $k/n$ for one spike; for `count` $= c$ spikes of
        its presynaptic neuron in the step (broadcast to `syn`'s shape; default 1), each
        spike draws on its own, $\sum_{j<c} k_j / (n c)$, $k_j \sim
        \operatorname{Binomial}(n, p)$ independent. The first spike's draw is
        differentiated as written; the later spikes' draws (a loop as long as the largest
        count) carry the exact first derivatives of their mode."""
        prob = jnp.broadcast_to(prob, jnp.shape(syn))[..., None]
        T = resolve(self.temperature, prob)
        u = hashed_uniforms(words, syn, self.n_sites, prob.dtype)
        if self.mode == "relaxed":
            first = jnp.mean(relaxed_bernoulli(prob, u, T), axis=-1)
        else:
            first = jnp.mean((u < prob).astype(prob.dtype), axis=-1)
        if self.mode == "straight_through":
            first = first + (prob[..., 0] - jax.lax.stop_gradient(prob[..., 0]))
        if count is None:
            return first
        draws = jnp.maximum(jnp.ceil(jnp.broadcast_to(count, jnp.shape(syn))), 1)
        later, d_dp, d_dT = self._later_spikes(words, syn, prob, T, draws)
        p_now, T_now = jax.lax.stop_gradient((prob[..., 0], T))
        later = later + (prob[..., 0] - p_now) * d_dp + (T - T_now) * d_dT
        return (first + later) / draws

    def _later_spikes(self, words, syn, prob, T, draws):
        """The summed released fractions of spikes 1, 2, ... (`draws` spikes in all), with
        their derivatives in `prob` and `T` (stopped: a loop of unknown length)."""
        prob, T = jax.lax.stop_gradient((prob, T))
        zero = jnp.zeros(jnp.shape(syn), prob.dtype)
        draws = draws.astype(jnp.int32)

        def one_more(carry):
            j, total, d_dp, d_dT = carry
            u = hashed_uniforms(words, syn, self.n_sites, prob.dtype, spike=j)
            if self.mode == "relaxed":
                f, f_dp, f_dT = (jnp.mean(x, axis=-1) for x in _relaxed_parts(prob, u, T))
            else:
                f = jnp.mean((u < prob).astype(prob.dtype), axis=-1)
                f_dp = jnp.full_like(f, 1.0 if self.mode == "straight_through" else 0.0)
                f_dT = zero
            on = j < draws
            return (
                j + 1,
                total + jnp.where(on, f, 0),
                d_dp + jnp.where(on, f_dp, 0),
                d_dT + jnp.where(on, f_dT, 0),
            )

        last = jnp.max(draws, initial=1)
        carry = (jnp.asarray(1, jnp.int32), zero, zero, zero)
        _, total, d_dp, d_dT = jax.lax.while_loop(lambda c: c[0] < last, one_more, carry)
        return total, d_dp, d_dT


class ReleaseEvents(eqx.Module):
    """The per-event hook of a step's delivery (see `jsyn.AbstractConnection.deliver`):
    scales the gathered values of each synapse by its released fraction.

    `p_pre` is the release probability of each presynaptic neuron's spike (its STP
    efficacy), or `None` to use the release's own `p`. `counts`: the spikes of each
    presynaptic neuron in this step, shape `(n_pre,)`, so that each of them releases on
    its own (`None`: one spike each).

    `words`: the step's key words (`key_words`), two scalars, or with $B$ streams (the
    trials of `jsyn.trials`, whose presynaptic neuron $i B + b$ is neuron $i$ of trial
    $b$) one per stream each, shape `(B,)`: presynaptic neuron `pre` draws from stream
    `pre % B`."""

    release: StochasticRelease
    words: tuple[Array, Array]
    p_pre: Array | None = None
    counts: Array | None = None

    def __call__(self, values, syn, pre):
        """`values` (the weighted signal of synapses `syn`, presynaptic neurons `pre`, all
        broadcastable to one shape) times the released fraction of each synapse, each of
        the `counts[pre]` spikes of the step drawn on its own."""
        if self.p_pre is not None:
            prob = self.p_pre[pre]
        else:
            p = resolve(self.release.p, values)
            prob = jnp.reshape(p, -1)[syn] if jnp.ndim(p) else p
        count = None if self.counts is None else self.counts[pre]
        words = self.words
        if jnp.ndim(words[0]):  # one stream per trial
            stream = pre % words[0].shape[0]
            words = (words[0][stream], words[1][stream])
        ids = syn if self.release.ids is None else jnp.reshape(self.release.ids, -1)[syn]
        return values * self.release.released(words, ids, prob, count)
