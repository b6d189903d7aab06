"""Dense connectivity: a full weight matrix."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._params import AbstractParam, Param, as_param, resolve
from .base import AbstractConnection, check_signal


class Dense(AbstractConnection):
    r"""Dense connectivity: every presynaptic neuron $i$ reaches every postsynaptic neuron
    $j$ with weight $w_{ij}$ (0 where there is no synapse).

    The drive of postsynaptic neuron $j$ is $\sum_i s_i\,w_{ij}$, a matrix-vector product
    per step: work `n_pre * n_post`, whatever the activity. Suits small or densely
    connected groups, and gradients w.r.t. every entry; `jsyn.Sparse` suits sparse wiring.
    Per-synapse arrays (states, delays) have shape `(n_pre, n_post)`.

    **Arguments:**
    - `w`: the weights (dimensionless): an `(n_pre, n_post)` matrix, or a scalar for
      all-to-all with one weight (then give `n_pre` and `n_post`). Array or
      `AbstractParam`; differentiable.
    - `n_pre`, `n_post`: the group sizes; taken from `w` when it is a matrix.
    """

    w: Param
    n_pre: int = eqx.field(static=True)
    n_post: int = eqx.field(static=True)

    def __init__(
        self,
        w: ArrayLike | AbstractParam,
        n_pre: int | None = None,
        n_post: int | None = None,
    ):
        w = as_param(w)
        shape = jnp.shape(resolve(w))
        if len(shape) == 2:
            for name, n, want in (("n_pre", n_pre, shape[0]), ("n_post", n_post, shape[1])):
                if n is not None and int(n) != want:
                    raise ValueError(
                        f"Dense.w has shape {shape}, which needs {name}={want} (got {n}); "
                        "drop the size or match it to w."
                    )
            n_pre, n_post = shape
        elif len(shape) == 0:
            if n_pre is None or n_post is None:
                raise ValueError(
                    "Dense with a scalar w (all-to-all) needs n_pre and n_post; pass them, "
                    "or give w as an (n_pre, n_post) matrix."
                )
        else:
            raise ValueError(
                f"Dense.w must be an (n_pre, n_post) matrix or a scalar (got shape {shape})."
            )
        if int(n_pre) < 1 or int(n_post) < 1:
            raise ValueError(f"Dense needs n_pre, n_post >= 1 (got {n_pre}, {n_post}).")
        self.w = w
        self.n_pre = int(n_pre)
        self.n_post = int(n_post)

    @property
    def syn_shape(self) -> tuple[int, ...]:
        return (self.n_pre, self.n_post)

    def _full(self, w) -> Array:
        return jnp.broadcast_to(w, self.syn_shape)

    def deliver(
        self, signal, into, *, weights=None, rows=None, rows_next=None, frac=None, hook=None
    ):
        s = check_signal("Dense.deliver", signal, self.n_pre).astype(into.dtype)
        w = self.weights(into) if weights is None else jnp.asarray(weights).astype(into.dtype)
        per_synapse = rows is not None and (jnp.ndim(rows) > 0 or jnp.ndim(frac) > 0)
        if not per_synapse and hook is None:
            total = jnp.sum(s) * w if w.ndim == 0 else s @ w
            total = jnp.broadcast_to(total, (self.n_post,))
            if rows is None:
                return into + total
            return into.at[rows].add((1.0 - frac) * total).at[rows_next].add(frac * total)
        v = s[:, None] * self._full(w)
        if hook is not None:  # synapse (i, j) is number i * n_post + j
            syn = jnp.arange(self.n_pre * self.n_post, dtype=jnp.int32).reshape(self.syn_shape)
            v = hook(v, syn, jnp.arange(self.n_pre, dtype=jnp.int32)[:, None])
        if rows is None:
            return into + jnp.sum(v, axis=0)
        cols = jnp.broadcast_to(jnp.arange(self.n_post), self.syn_shape)
        rows = jnp.broadcast_to(rows, self.syn_shape)
        rows_next = jnp.broadcast_to(rows_next, self.syn_shape)
        into = into.at[rows, cols].add((1.0 - frac) * v)
        return into.at[rows_next, cols].add(frac * v)

    def spread(self, signal) -> Float[Array, "n_pre n_post"]:
        s = check_signal("Dense.spread", signal, self.n_pre)
        return jnp.broadcast_to(s[:, None], self.syn_shape)

    def collect(self, values, *, weights=None) -> Float[Array, " n_post"]:
        w = self.weights(values) if weights is None else jnp.asarray(weights).astype(values.dtype)
        return jnp.sum(w * values, axis=0)

    def spread_post(self, signal) -> Float[Array, "n_pre n_post"]:
        s = check_signal("Dense.spread_post", signal, self.n_post, side="post")
        return jnp.broadcast_to(s[None, :], self.syn_shape)

    def collect_pre(self, values, *, weights=None) -> Float[Array, " n_pre"]:
        w = self.weights(values) if weights is None else jnp.asarray(weights).astype(values.dtype)
        return jnp.sum(w * values, axis=1)

    def matrix(self) -> Float[Array, "n_pre n_post"]:
        return self._full(self.weights())
