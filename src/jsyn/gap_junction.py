r"""Gap junctions (electrical synapses): ohmic conductances between the membranes of two
groups of neurons, or within one group, on the wiring of a jsyn connection."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from . import _validation as val
from ._component import AbstractComponent
from ._params import AbstractParam, Param, as_param, resolve
from .connectivity import AbstractConnection, Dense


def _float(x) -> Array:
    """`x` as a floating array (spike counts given as integers become JAX's default float)."""
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


def _as_connection(conn) -> AbstractConnection:
    """`conn` itself, or `jsyn.Dense` of an `(n_pre, n_post)` conductance matrix."""
    if isinstance(conn, AbstractConnection):
        return conn
    shape = jnp.shape(resolve(conn)) if isinstance(conn, AbstractParam) else np.shape(conn)
    if len(shape) == 2:
        return Dense(conn)
    raise TypeError(
        f"GapJunction takes a jsyn connection holding the conductance w (nS) of each "
        f"junction, or an (n_pre, n_post) matrix of them (got {type(conn).__name__} of shape "
        f"{shape}). Every cell to every cell: GapJunction(jsyn.all_to_all(n_pre, n_post, "
        "w=0.5), k_spikelet); listed pairs: GapJunction(jsyn.from_pairs(pre_idx, post_idx, "
        "n_pre, n_post, w), k_spikelet)."
    )


class GapJunction(AbstractComponent):
    r"""Gap junctions (electrical synapses): ohmic conductances between the membranes of a
    presynaptic group and a postsynaptic group, on the wiring of a jsyn connection.

    Each synapse of the connection is one junction; its weight is the junction's
    conductance $w_{ij}$ (nS), and it carries the current $w_{ij}(V_i - V_j)$ (pA) out of
    pre cell $i$ and into post cell $j$ (repeated pairs add up):

    $$I^\text{post}_j = \sum_i w_{ij}\,(V_i - V_j), \qquad
      I^\text{pre}_i = \sum_j w_{ij}\,(V_j - V_i).$$

    Both currents are positive **into** the cell, so the cell at the lower potential
    receives a positive (depolarising) current. Every junction takes out of one cell what
    it puts into the other: $\sum_i I^\text{pre}_i + \sum_j I^\text{post}_j = 0$ for any
    `w` (charge is conserved). Each junction's potential difference is formed first
    (`conn.spread(V_pre) - conn.spread_post(V_post)`), then summed with its conductance
    onto both sides (`collect`, `collect_pre`).

    **Spikelets** (the seed tutorial's supra-threshold coupling): a spike of pre cell $i$
    adds $k_\text{spikelet}\,w_{ij}$ (mV) to $V_j$, one way, from pre to post: the spikes
    of the post group send none back (`spikelet`, event-driven with `jsyn.Sparse`).

    **One group coupled to itself** (`pre == post`): `w` must be **symmetric**, $w_{ij} =
    w_{ji}$ the conductance of the junction between cells $i$ and $j$; the cell receives
    $I_j = \sum_i w_{ij}(V_i - V_j)$ (`recurrent_current`; the diagonal drops out), and the
    spike of cell $i$ adds $k_\text{spikelet}\,w_{ij}$ to every other cell $j$
    (`recurrent_spikelet`). Symmetry is checked (at construction where `w` is concrete, and
    once at the `jsyn.simulate` entry otherwise) by comparing $\sum_i w_{ij} x_i$ with
    $\sum_i w_{ji} x_i$ for a fixed random probe $x$, to $\sqrt{\epsilon}$ relative.

    **In a `jsyn.Network`** (`pre` and `post` name its groups): the currents over step $n$
    come from the potentials at the end of step $n - 1$, like the chemical currents, and
    enter both groups; the spikelets of the spikes of step $n$ are voltage jumps in step
    $n + 1$, like those of a voltage-jump projection (every group steps with what the
    others did up to the last step). **Alone**, with groups you step yourself:
    `I_pre, I_post = gap.currents(V_pre, V_post)` from the potentials at the end of the last
    step, then `post.step(state, I_post, dt, jump=gap.spikelet(pre_spikes))` with the pre
    spikes of the same step, if the pre group steps first.

    **Arguments:**
    - `conn`: the wiring and conductances: a `jsyn.Dense` or `jsyn.Sparse` connection whose
      weights `w` are junction conductances (nS), >= 0 (`jsyn.all_to_all(n_pre, n_post,
      w=0.5)`, `jsyn.one_to_one`, `jsyn.from_pairs`, `jsyn.fixed_prob`, ...), or an
      `(n_pre, n_post)` conductance matrix (array or `AbstractParam`), taken as
      `jsyn.Dense(w)`. Differentiable w.r.t. `w` (`SoftplusPositive` keeps it positive
      during fitting).
    - `k_spikelet`: spikelet per unit of conductance (mV/nS): each pre spike adds
      `k_spikelet * w_ij` mV to post cell `j`. A scalar or one value per post cell.
      Default 0.0 (no spikelets).
    - `pre`, `post`: inside a `Network`, the names of the two groups (the same name for a
      group coupled to itself).

    **Reference:** Sterratt et al. 2011, *Principles of Computational Modelling in
    Neuroscience*, ch. 7.7; the gap-junction section of BrainPy's synapse tutorial.
    """

    conn: AbstractConnection
    k_spikelet: Param
    pre: str | None = eqx.field(static=True)
    post: str | None = eqx.field(static=True)

    def __init__(
        self,
        conn: AbstractConnection | ArrayLike | AbstractParam,
        k_spikelet: ArrayLike | AbstractParam = 0.0,
        *,
        pre: str | None = None,
        post: str | None = None,
    ):
        self.conn = _as_connection(conn)
        self.k_spikelet = as_param(k_spikelet)
        k_shape = jnp.shape(resolve(self.k_spikelet))
        if k_shape not in ((), (self.conn.n_post,)):
            raise ValueError(
                f"GapJunction.k_spikelet must be a scalar or one value per post cell, shape "
                f"({self.conn.n_post},) (got shape {k_shape})."
            )
        self.pre = None if pre is None else str(pre)
        self.post = None if post is None else str(post)
        if self.recurrent and self.conn.n_pre != self.conn.n_post:
            raise ValueError(
                f"GapJunction couples group {self.pre!r} to itself, which needs a square "
                f"connection (got n_pre={self.conn.n_pre}, n_post={self.conn.n_post})."
            )

    @property
    def n_pre(self) -> int:
        return self.conn.n_pre

    @property
    def n_post(self) -> int:
        return self.conn.n_post

    @property
    def recurrent(self) -> bool:
        """Whether the junctions join one named group to itself (`pre == post`)."""
        return self.pre is not None and self.pre == self.post

    def constraints(self):
        checks = (
            val.nonnegative(
                "GapJunction",
                "w",
                self.conn.weights(),
                "a junction conductance (nS) cannot be negative; use jsyn.SoftplusPositive "
                "to keep it positive during fitting",
            ),
            val.finite("GapJunction", "k_spikelet", resolve(self.k_spikelet)),
        )
        return (*checks, self._symmetry()) if self.recurrent else checks

    def _symmetry(self) -> val.Check:
        """The check that `w` is symmetric, with a fixed random probe `x` > 0."""
        w = self.conn.weights()
        dtype = w.dtype if jnp.issubdtype(w.dtype, jnp.floating) else jnp.result_type(float)
        x = jnp.asarray(np.random.default_rng(0).uniform(0.5, 1.5, self.n_pre), dtype)
        into = self.conn.collect(self.conn.spread(x))  # sum_i w_ij x_i
        out = self.conn.collect_pre(self.conn.spread_post(x))  # sum_i w_ji x_i
        tol = jnp.sqrt(jnp.finfo(dtype).eps) * (jnp.abs(into) + jnp.abs(out))
        where = "" if self.pre is None else f" (group {self.pre!r})"
        return val.Check(
            ~(jnp.abs(into - out) <= tol),
            {"in": into, "out": out},
            f"GapJunction within one group{where} needs a symmetric w, w[i, j] == w[j, i] "
            "(the conductance of the junction between cells i and j); the junctions into "
            "and out of the cell at the index shown differ (in = sum_i w[i, j] x_i, out = "
            "sum_i w[j, i] x_i, for a fixed probe x)",
            "make it symmetric, e.g. jsyn.from_matrix((M + M.T) / 2), or list each pair both "
            "ways in jsyn.from_pairs",
        )

    def _vector(self, name: str, x, n: int, what: str) -> Array:
        x = _float(x)
        if x.shape != (n,):
            raise ValueError(
                f"GapJunction.{what} needs {name} of shape ({n},), one value per cell of its "
                f"connection (got shape {x.shape}); match the group to the connection, and "
                "batch trials with jax.vmap."
            )
        return x

    def _square(self, what: str) -> int:
        if self.n_pre != self.n_post:
            raise ValueError(
                f"GapJunction.{what} couples one group to itself, which needs a square "
                f"connection (got n_pre={self.n_pre}, n_post={self.n_post}); between two "
                "groups use currents and spikelet."
            )
        return self.n_pre

    # -- two groups ---------------------------------------------------------------------

    def currents(
        self, V_pre: ArrayLike, V_post: ArrayLike
    ) -> tuple[Float[Array, " n_pre"], Float[Array, " n_post"]]:
        r"""The gap-junction currents (pA, positive into the cell) at the potentials
        `V_pre`, shape `(n_pre,)`, and `V_post`, shape `(n_post,)` (mV).

        **Returns:** `(I_pre, I_post)`: $I^\text{pre}_i = \sum_j w_{ij}(V_j - V_i)$ and
        $I^\text{post}_j = \sum_i w_{ij}(V_i - V_j)$. Their totals cancel (up to rounding).
        """
        V_pre = self._vector("V_pre", V_pre, self.n_pre, "currents")
        V_post = self._vector("V_post", V_post, self.n_post, "currents")
        drop = self.conn.spread(V_pre) - self.conn.spread_post(V_post)  # V_i - V_j
        return -self.conn.collect_pre(drop), self.conn.collect(drop)

    def spikelet(self, pre_spikes: ArrayLike) -> Float[Array, " n_post"]:
        r"""The spikelets of one step's presynaptic spikes: the voltage jump (mV) of each
        post cell, $\Delta V_j = k_\text{spikelet}\sum_i w_{ij}\,s_i$.

        Hand it to the postsynaptic neuron as a jump, `LIF.step(state, I, dt, jump=...)`,
        which applies it after the membrane's own evolution (and ignores it while the cell
        is refractory).

        **Arguments:**
        - `pre_spikes`: spike counts of the pre group in one step, shape `(n_pre,)`.
        """
        s = self._vector("pre_spikes", pre_spikes, self.n_pre, "spikelet")
        kick = self.conn.deliver(s, jnp.zeros((self.n_post,), s.dtype))
        return resolve(self.k_spikelet, s) * kick

    # -- one group ----------------------------------------------------------------------

    def recurrent_current(self, V: ArrayLike) -> Float[Array, " n"]:
        r"""The gap-junction current (pA) into each cell of one group coupled to itself,
        $I_j = \sum_i w_{ij}(V_i - V_j)$, at the potentials `V`, shape `(n,)` (mV); `w`
        symmetric (see the class docstring). The currents sum to 0 (up to rounding)."""
        V = self._vector("V", V, self._square("recurrent_current"), "recurrent_current")
        val.raise_concrete((self._symmetry(),))
        return self.conn.collect(self.conn.spread(V) - self.conn.spread_post(V))

    def recurrent_spikelet(self, spikes: ArrayLike) -> Float[Array, " n"]:
        r"""The spikelets (mV) within one group coupled to itself:
        $\Delta V_j = k_\text{spikelet}\sum_{i \ne j} w_{ij}\,s_i$ (a cell sends no spikelet
        to itself), `w` symmetric as in `recurrent_current`.

        A group cannot take its own spikes of step $n$ in step $n$ (it has already been
        stepped), so pass the spikelets of step $n - 1$ as the `jump` of step $n$.
        """
        n = self._square("recurrent_spikelet")
        s = self._vector("spikes", spikes, n, "recurrent_spikelet")
        val.raise_concrete((self._symmetry(),))
        cell = jnp.arange(n, dtype=s.dtype)  # exact: a cell's index as a float
        to_self = self.conn.spread(cell) == self.conn.spread_post(cell)
        kick = self.conn.collect(jnp.where(to_self, 0.0, self.conn.spread(s)))
        return resolve(self.k_spikelet, s) * kick
