"""Connectivity builders: all-to-all, one-to-one, random (fixed probability, fixed in- or
out-degree), from index pairs and from a matrix.

Random builders take an explicit `key` (a `jax.random` key or an integer seed): the same
key gives the same wiring. The wiring is drawn with NumPy on the host, once, in time and
memory proportional to the number of synapses (never `n_pre * n_post` for the sparse ones).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike

from .. import _validation as val
from .._params import AbstractParam
from .dense import Dense
from .sparse import Sparse

Weights = ArrayLike | AbstractParam | Callable[[int], ArrayLike]
"""A scalar weight, one weight per synapse, a constrained parameter, or a function of the
number of synapses that returns one weight per synapse."""


def _rng(key) -> np.random.Generator:
    if isinstance(key, int | np.integer):
        return np.random.default_rng(int(key))
    key = jnp.asarray(key) if not hasattr(key, "dtype") else key
    if val.is_key(key):
        key = jax.random.key_data(key)
    data = val.concrete(key)
    if data is None:
        raise TypeError(
            "connectivity builders need a concrete key (the wiring is drawn once, on the "
            "host); build the connection outside jit/vmap/grad."
        )
    return np.random.default_rng(np.asarray(data, dtype=np.uint32).ravel().tolist())


def _weights(w: Weights, n_syn: int):
    return w(n_syn) if callable(w) and not isinstance(w, AbstractParam) else w


def _size(name: str, n) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"{name} must be an integer >= 1 (got {n!r}).")
    return int(n)


def _sparse(pre, post, n_pre, n_post, w, tiers) -> Sparse:
    return Sparse(pre, post, n_pre, n_post, _weights(w, len(pre)), tiers=tiers)


def all_to_all(
    n_pre: int,
    n_post: int,
    w: Weights = 1.0,
    *,
    self_connections: bool = True,
    sparse: bool = False,
) -> Dense | Sparse:
    """Every presynaptic neuron to every postsynaptic neuron.

    **Arguments:**
    - `n_pre`, `n_post`: group sizes.
    - `w`: weight (dimensionless): a scalar, an `(n_pre, n_post)` matrix (dense), one per
      synapse (sparse), or a function of the number of synapses.
    - `self_connections`: `False` leaves out the pairs `i == j` (for a group projecting
      onto itself). Dense: those entries of the matrix are set to 0.
    - `sparse`: return a `Sparse` connection instead of a `Dense` one.
    """
    n_pre, n_post = _size("n_pre", n_pre), _size("n_post", n_post)
    if not sparse:
        if self_connections:
            return Dense(_weights(w, n_pre * n_post), n_pre, n_post)
        w = jnp.broadcast_to(jnp.asarray(_weights(w, n_pre * n_post)), (n_pre, n_post))
        return Dense(jnp.where(jnp.eye(n_pre, n_post, dtype=bool), 0.0, w))
    pre, post = np.divmod(np.arange(n_pre * n_post), n_post)
    if not self_connections:
        keep = pre != post
        pre, post = pre[keep], post[keep]
    return _sparse(pre, post, n_pre, n_post, w, None)


def one_to_one(n: int, w: Weights = 1.0) -> Sparse:
    """Neuron `i` of the presynaptic group to neuron `i` of the postsynaptic group (both
    of size `n`), weight `w` (a scalar or one per synapse)."""
    n = _size("n", n)
    i = np.arange(n)
    return _sparse(i, i, n, n, w, None)


def _check_p(p) -> float:
    p_ = val.concrete(p)
    if p_ is None or np.ndim(p_) != 0 or not (0.0 <= float(p_) <= 1.0):
        raise ValueError(
            f"fixed_prob needs a connection probability p in [0, 1] (got {p!r}); for k "
            "synapses per neuron use p = k / n or fixed_in_degree(k)."
        )
    return float(p_)


def fixed_prob(
    n_pre: int,
    n_post: int,
    p: float,
    *,
    key,
    w: Weights = 1.0,
    self_connections: bool = True,
    tiers=None,
) -> Sparse:
    """Each pair `(i, j)` is connected independently with probability `p`.

    Drawn by skipping ahead over the `n_pre * n_post` pairs with geometric gaps (an exact
    Bernoulli process), in time proportional to the number of synapses.

    **Arguments:**
    - `n_pre`, `n_post`: group sizes.
    - `p`: connection probability, in [0, 1].
    - `key`: a `jax.random` key or an integer seed.
    - `w`: weight: a scalar, or a function of the number of synapses returning one each.
    - `self_connections`: `False` leaves out the pairs `i == j`.
    - `tiers`: event-driven capacity tiers (see `Sparse`).
    """
    n_pre, n_post = _size("n_pre", n_pre), _size("n_post", n_post)
    p = _check_p(p)
    rng = _rng(key)
    total = n_pre * n_post
    if p == 0.0:
        flat = np.zeros(0, np.int64)
    elif p == 1.0:
        flat = np.arange(total)
    else:
        chunks, last = [], -1
        batch = max(int(p * total * 1.1) + 64, 64)
        while last < total:
            pos = last + np.cumsum(rng.geometric(p, size=batch))
            chunks.append(pos)
            last = int(pos[-1])
        flat = np.concatenate(chunks)
        del chunks  # each copy of the draws holds 9 bytes a synapse: free them early
        flat = flat[flat < total]
    pre, post = np.divmod(flat, n_post)
    del flat
    if not self_connections:
        keep = pre != post
        pre, post = pre[keep], post[keep]
    return _sparse(pre, post, n_pre, n_post, w, tiers)


def _distinct_draws(rng, n_rows: int, k: int, n_choices: int, skip_self: bool) -> np.ndarray:
    """`(n_rows, k)` indices in `[0, n_choices)`, distinct within each row (row `r`
    without `r` itself when `skip_self`), each row a uniform draw without replacement."""
    n_avail = n_choices - 1 if skip_self else n_choices
    if k > n_avail:
        raise ValueError(
            f"cannot draw {k} distinct partners from {n_avail} candidates; lower the degree "
            "or allow self connections."
        )
    rows = np.arange(n_rows)[:, None]
    if k == 0:
        return np.zeros((n_rows, 0), np.int64)
    if 4 * k > n_avail:  # dense draws: a random permutation per row, in chunks
        out = np.empty((n_rows, k), np.int64)
        chunk = max(1, 2**24 // max(n_avail, 1))
        for a in range(0, n_rows, chunk):
            keys = rng.random((min(chunk, n_rows - a), n_avail))
            out[a : a + chunk] = np.argpartition(keys, k - 1, axis=1)[:, :k]
    else:  # sparse draws: redraw the rows that repeat an index, until none does
        out = rng.integers(0, n_avail, size=(n_rows, k))
        todo = np.arange(n_rows)
        while todo.size:
            srt = np.sort(out[todo], axis=1)
            dup = np.any(srt[:, 1:] == srt[:, :-1], axis=1)
            todo = todo[dup]
            out[todo] = rng.integers(0, n_avail, size=(todo.size, k))
    if skip_self:
        out = out + (out >= rows)
    return out


def fixed_in_degree(
    n_pre: int,
    n_post: int,
    k: int,
    *,
    key,
    w: Weights = 1.0,
    self_connections: bool = True,
    tiers=None,
) -> Sparse:
    """Each postsynaptic neuron receives exactly `k` synapses, from `k` distinct
    presynaptic neurons drawn uniformly (without replacement). Arguments as `fixed_prob`;
    with `self_connections=False` neuron `j` does not draw itself (needs `k <= n_pre - 1`).
    """
    n_pre, n_post = _size("n_pre", n_pre), _size("n_post", n_post)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise ValueError(f"fixed_in_degree needs an integer k >= 0 (got {k!r}).")
    skip = not self_connections
    if skip and n_post > n_pre:
        skip_rows = np.arange(n_post) < n_pre
    else:
        skip_rows = None
    rng = _rng(key)
    if skip_rows is None:
        pre = _distinct_draws(rng, n_post, int(k), n_pre, skip)
    else:  # post neurons beyond n_pre have no self to skip
        pre = np.empty((n_post, int(k)), np.int64)
        pre[skip_rows] = _distinct_draws(rng, n_pre, int(k), n_pre, True)
        pre[~skip_rows] = _distinct_draws(rng, n_post - n_pre, int(k), n_pre, False)
    post = np.broadcast_to(np.arange(n_post)[:, None], pre.shape)
    order = np.lexsort((post.ravel(), pre.ravel()))
    return _sparse(pre.ravel()[order], post.ravel()[order], n_pre, n_post, w, tiers)


def fixed_out_degree(
    n_pre: int,
    n_post: int,
    k: int,
    *,
    key,
    w: Weights = 1.0,
    self_connections: bool = True,
    tiers=None,
) -> Sparse:
    """Each presynaptic neuron makes exactly `k` synapses, onto `k` distinct postsynaptic
    neurons drawn uniformly (without replacement). Arguments as `fixed_prob`; with
    `self_connections=False` neuron `i` does not draw itself (needs `k <= n_post - 1`)."""
    n_pre, n_post = _size("n_pre", n_pre), _size("n_post", n_post)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise ValueError(f"fixed_out_degree needs an integer k >= 0 (got {k!r}).")
    rng = _rng(key)
    if not self_connections and n_pre > n_post:
        post = np.empty((n_pre, int(k)), np.int64)
        post[:n_post] = _distinct_draws(rng, n_post, int(k), n_post, True)
        post[n_post:] = _distinct_draws(rng, n_pre - n_post, int(k), n_post, False)
    else:
        post = _distinct_draws(rng, n_pre, int(k), n_post, not self_connections)
    post = np.sort(post, axis=1)
    pre = np.broadcast_to(np.arange(n_pre)[:, None], post.shape)
    return _sparse(pre.ravel(), post.ravel(), n_pre, n_post, w, tiers)


def from_pairs(pre_idx, post_idx, n_pre: int, n_post: int, w: Weights = 1.0, *, tiers=None):
    """A `Sparse` connection from index pairs (see `Sparse`; pairs are sorted by `pre_idx`
    and a per-synapse `w` with them)."""
    pre = np.asarray(pre_idx)
    return Sparse(pre_idx, post_idx, n_pre, n_post, _weights(w, pre.size), tiers=tiers)


def from_matrix(matrix: ArrayLike, *, sparse: bool = False, tiers=None) -> Dense | Sparse:
    """A connection from an `(n_pre, n_post)` weight matrix: `Dense(matrix)`, or with
    `sparse=True` a `Sparse` connection with one synapse per nonzero entry, the entry its
    weight (the matrix must then be concrete)."""
    m = jnp.asarray(matrix)
    if m.ndim != 2:
        raise ValueError(f"from_matrix needs an (n_pre, n_post) matrix (got shape {m.shape}).")
    if not sparse:
        return Dense(m)
    mc = val.concrete(m)
    if mc is None:
        raise TypeError("from_matrix(sparse=True) needs a concrete matrix; build it outside jit.")
    pre, post = np.nonzero(mc)
    return Sparse(pre, post, m.shape[0], m.shape[1], m[pre, post], tiers=tiers)
