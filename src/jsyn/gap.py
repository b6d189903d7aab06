r"""Electrical synapses (gap junctions) and the couplings of rate and neural-mass models.

- `GapJunction` is stateless, like the output laws: `currents(V_pre, V_post)` gives the
  ohmic currents through the junctions (pA, positive **into** the cell) and
  `spikelet(pre_spikes)` the voltage kicks that presynaptic spikes send through them (mV).
- `AdditiveCoupling` and `DiffusiveCoupling` are systems (`init_state`/`step`, so
  `jsyn.simulate` runs them): they keep a ring buffer of past inputs for per-connection
  transmission delays, counted in integer steps.
- `delay_steps(delays_ms, dt)` converts delays in ms to those steps, once.
"""

import abc
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from . import _validation as val
from ._component import AbstractComponent, AbstractSystem, as_shape
from ._custom_types import ScalarLike, Shape
from ._params import AbstractParam, Param, as_param, resolve


def _float(x) -> Array:
    """`x` as a floating array (spike counts given as integers become JAX's default float)."""
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


def _concrete_indices(owner: str, name: str, idx) -> np.ndarray:
    arr = val.concrete(idx)
    if arr is None:
        raise TypeError(
            f"{owner}.{name} must be concrete integers (they fix the wiring); build the "
            f"{owner} outside jit/vmap/grad, or close over the indices."
        )
    arr = np.atleast_1d(arr)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(
            f"{owner}.{name} must be a 1-d array of integer neuron indices "
            f"(got shape {arr.shape}, dtype {arr.dtype})."
        )
    if arr.size and arr.min() < 0:
        raise ValueError(f"{owner}.{name} must be >= 0 (got min={arr.min()}); fix the indices.")
    return arr


class GapJunction(AbstractComponent):
    r"""Gap junctions (electrical synapses): ohmic conductances between the membranes
    of a presynaptic group and a postsynaptic group.

    The junction between pre cell $i$ and post cell $j$ has conductance $w_{ij}$ (nS) and
    carries the current $w_{ij}(V_i - V_j)$ (pA) out of $i$ and into $j$:

    $$I^\text{post}_j = \sum_i w_{ij}\,(V_i - V_j), \qquad
      I^\text{pre}_i = \sum_j w_{ij}\,(V_j - V_i).$$

    Both currents are positive **into** the cell, so the cell at the lower potential
    receives a positive (depolarising) current. Every junction takes out of one cell what
    it puts into the other: $\sum_i I^\text{pre}_i + \sum_j I^\text{post}_j = 0$ for any
    `w` (charge is conserved).

    **Spikelets** (the seed tutorial's supra-threshold coupling): a spike of pre cell $i$
    adds $k_\text{spikelet}\,w_{ij}$ (mV) to $V_j$, in the postsynaptic cell only, as the
    postsynaptic `jump` of the same step (see `spikelet`).

    **Causal order in a step** (docs/models.md, discrete-time semantics): the currents over step
    $n$ come from the potentials at the end of step $n-1$, `currents(V_pre[n-1],
    V_post[n-1])`; the spikes of step $n$ reach the postsynaptic cells as jumps in step
    $n$: `post.step(state, I_post, dt, jump=gap.spikelet(pre_spikes[n]))`.

    **One population coupled to itself** (pre group = post group): use
    `recurrent_current(V)` and `recurrent_spikelet(spikes)`, with a **symmetric** `w`
    whose entry $w_{ij} = w_{ji}$ is the conductance of the junction between $i$ and $j$
    (the diagonal is ignored).

    **Arguments:**
    - `w`: junction conductance (nS), >= 0. A scalar (every pre cell coupled to every
      post cell with the same conductance), an `(n_pre, n_post)` matrix (zero where there
      is no junction), or, with `pre_idx` and `post_idx`, one value per listed pair
      (shape `(n_pairs,)`, or a scalar for all of them). Array or `AbstractParam`
      (`SoftplusPositive` keeps it positive during fitting).
    - `k_spikelet`: spikelet per unit of conductance (mV/nS): each pre spike adds
      `k_spikelet * w_ij` mV to post cell `j`. A scalar or one value per post cell.
      Default 0.0 (no spikelets).
    - `pre_idx`, `post_idx`: optional sparse wiring, the pre and post cell of each junction
      (1-d integer arrays of equal length, concrete). Repeated pairs add up.

    **Reference:** Sterratt et al. 2011, *Principles of Computational Modelling in
    Neuroscience*, ch. 7.7; the gap-junction section of BrainPy's synapse tutorial.
    """

    w: Param
    k_spikelet: Param
    pre_idx: Int[Array, " pairs"] | None
    post_idx: Int[Array, " pairs"] | None
    min_sizes: tuple[int, int] = eqx.field(static=True)

    def __init__(
        self,
        w: ArrayLike | AbstractParam,
        k_spikelet: ArrayLike | AbstractParam = 0.0,
        *,
        pre_idx: ArrayLike | Sequence | None = None,
        post_idx: ArrayLike | Sequence | None = None,
    ):
        w = as_param(w)
        k_spikelet = as_param(k_spikelet)
        w_ndim = jnp.ndim(resolve(w))
        if (pre_idx is None) != (post_idx is None):
            raise ValueError(
                "GapJunction needs both pre_idx and post_idx for sparse wiring, or neither "
                "(dense: w a scalar or an (n_pre, n_post) matrix)."
            )
        if pre_idx is None:
            if w_ndim not in (0, 2):
                raise ValueError(
                    f"GapJunction.w must be a scalar or an (n_pre, n_post) matrix (got shape "
                    f"{jnp.shape(resolve(w))}); for one conductance per listed pair also "
                    "pass pre_idx and post_idx."
                )
            self.pre_idx = self.post_idx = None
            self.min_sizes = tuple(jnp.shape(resolve(w))) if w_ndim == 2 else (0, 0)
        else:
            pre = _concrete_indices("GapJunction", "pre_idx", pre_idx)
            post = _concrete_indices("GapJunction", "post_idx", post_idx)
            if pre.shape != post.shape:
                raise ValueError(
                    f"GapJunction needs one post index per pre index (got {pre.size} pre "
                    f"and {post.size} post indices)."
                )
            if w_ndim > 1 or (w_ndim == 1 and jnp.shape(resolve(w))[0] != pre.size):
                raise ValueError(
                    f"GapJunction.w with sparse wiring must be a scalar or hold one value "
                    f"per pair, shape ({pre.size},) (got shape {jnp.shape(resolve(w))})."
                )
            self.pre_idx = jnp.asarray(pre, dtype=jnp.int32)
            self.post_idx = jnp.asarray(post, dtype=jnp.int32)
            self.min_sizes = (
                int(pre.max()) + 1 if pre.size else 0,
                int(post.max()) + 1 if post.size else 0,
            )
        if jnp.ndim(resolve(k_spikelet)) > 1:
            raise ValueError(
                f"GapJunction.k_spikelet must be a scalar or one value per post cell "
                f"(got shape {jnp.shape(resolve(k_spikelet))})."
            )
        self.w = w
        self.k_spikelet = k_spikelet

    def constraints(self):
        return (
            val.nonnegative(
                "GapJunction",
                "w",
                resolve(self.w),
                "a junction conductance (nS) cannot be negative; use jsyn.SoftplusPositive "
                "to keep it positive during fitting",
            ),
            val.finite("GapJunction", "w", resolve(self.w)),
            val.finite("GapJunction", "k_spikelet", resolve(self.k_spikelet)),
        )

    @property
    def sparse(self) -> bool:
        """Whether the wiring is a list of pairs (`pre_idx`, `post_idx`)."""
        return self.pre_idx is not None

    # -- shapes -------------------------------------------------------------------------

    def _sizes(self, n_pre: int | None, n_post: int | None, what: str) -> tuple[int, int]:
        """Check the group sizes against `w` and the indices; fill in those `w` fixes."""
        w_shape = jnp.shape(resolve(self.w))
        if not self.sparse and len(w_shape) == 2:
            for name, n, want in (("n_pre", n_pre, w_shape[0]), ("n_post", n_post, w_shape[1])):
                if n is not None and n != want:
                    raise ValueError(
                        f"GapJunction.{what}: w has shape {w_shape}, which needs {name}="
                        f"{want} (got {n}); match the groups to w."
                    )
            return w_shape
        for name, n, low in (
            ("n_pre", n_pre, self.min_sizes[0]),
            ("n_post", n_post, self.min_sizes[1]),
        ):
            if n is None:
                raise ValueError(
                    f"GapJunction.{what} needs {name}: w has shape {w_shape} and does not fix "
                    f"the group size; pass {name}=<number of cells>."
                )
            if n < low:
                raise ValueError(
                    f"GapJunction.{what}: the indices reach cell {low - 1}, but {name}={n}; "
                    "enlarge the group or fix the indices."
                )
        return n_pre, n_post

    @staticmethod
    def _vector(name: str, x, what: str) -> Array:
        x = _float(x)
        if x.ndim != 1:
            raise ValueError(
                f"GapJunction.{what} needs {name} of shape (n,), one value per cell (got shape "
                f"{x.shape}); batch trials with jax.vmap."
            )
        return x

    # -- two groups ---------------------------------------------------------------------

    def _flow(self, V_pre: Array, V_post: Array, into_post: bool) -> Array:
        """The current into the post cells (`into_post`) or into the pre cells."""
        w = resolve(self.w, V_pre)
        n_pre, n_post = V_pre.shape[0], V_post.shape[0]
        if self.sparse:
            flow = w * (V_pre[self.pre_idx] - V_post[self.post_idx])
            if into_post:
                return jax.ops.segment_sum(flow, self.post_idx, num_segments=n_post)
            return -jax.ops.segment_sum(flow, self.pre_idx, num_segments=n_pre)
        # Measure the potentials from a common reference c, which cancels exactly: the
        # sums below then do not lose digits to the large resting potential.
        c = jax.lax.stop_gradient(jnp.mean(V_pre))
        u_pre, u_post = V_pre - c, V_post - c
        if w.ndim == 0 and into_post:
            return w * (jnp.sum(u_pre) - n_pre * u_post)
        if w.ndim == 0:
            return w * (jnp.sum(u_post) - n_post * u_pre)
        if into_post:
            return u_pre @ w - jnp.sum(w, axis=0) * u_post
        return w @ u_post - jnp.sum(w, axis=1) * u_pre

    def currents(
        self, V_pre: ArrayLike, V_post: ArrayLike
    ) -> tuple[Float[Array, " n_pre"], Float[Array, " n_post"]]:
        r"""The gap-junction currents (pA, positive into the cell) at the potentials
        `V_pre`, shape `(n_pre,)`, and `V_post`, shape `(n_post,)` (mV).

        **Returns:** `(I_pre, I_post)`: $I^\text{pre}_i = \sum_j w_{ij}(V_j - V_i)$ and
        $I^\text{post}_j = \sum_i w_{ij}(V_i - V_j)$. Their totals cancel (up to rounding).
        """
        V_pre = self._vector("V_pre", V_pre, "currents")
        V_post = self._vector("V_post", V_post, "currents")
        self._sizes(V_pre.shape[0], V_post.shape[0], "currents")
        I_pre = self._flow(V_pre, V_post, into_post=False)
        return I_pre, self._flow(V_pre, V_post, into_post=True)

    def _kick(self, s: Array, n_post: int, *, skip_self: bool) -> Array:
        w = resolve(self.w, s)
        if self.sparse:
            flow = w * s[self.pre_idx]
            if skip_self:
                flow = jnp.where(self.pre_idx == self.post_idx, 0.0, flow)
            total = jax.ops.segment_sum(flow, self.post_idx, num_segments=n_post)
        elif w.ndim == 0:
            total = w * (jnp.sum(s) - (s if skip_self else 0.0))
            total = jnp.broadcast_to(total, (n_post,))
        else:
            total = s @ w
            if skip_self:
                total = total - jnp.diagonal(w) * s
        return resolve(self.k_spikelet, s) * total

    def spikelet(self, pre_spikes: ArrayLike, n_post: int | None = None) -> Float[Array, " n_post"]:
        r"""The spikelets of one step's presynaptic spikes: the voltage jump (mV) of each
        post cell, $\Delta V_j = k_\text{spikelet}\sum_i w_{ij}\,s_i$.

        Hand it to the postsynaptic neuron in the same step,
        `LIF.step(state, I, dt, jump=gap.spikelet(pre_spikes))`, which applies it after the
        membrane's own evolution (and ignores it while the cell is refractory).

        **Arguments:**
        - `pre_spikes`: spike counts of the pre group in this step, shape `(n_pre,)`.
        - `n_post`: the number of post cells; needed only when `w` does not fix it (a
          scalar `w`, or sparse wiring).
        """
        s = self._vector("pre_spikes", pre_spikes, "spikelet")
        _, n_post = self._sizes(s.shape[0], n_post, "spikelet")
        return self._kick(s, n_post, skip_self=False)

    # -- one population -----------------------------------------------------------------

    def _check_symmetric(self, n: int) -> None:
        """Raise if `w` is known now (not traced) and not symmetric."""
        w = val.concrete(resolve(self.w))
        if w is None or (w.ndim == 0 and not self.sparse):
            return  # a scalar couples every pair both ways
        if self.sparse:
            pairs = (np.asarray(self.pre_idx), np.asarray(self.post_idx))
            dense = np.zeros((n, n), w.dtype)
            np.add.at(dense, pairs, np.broadcast_to(w, pairs[0].shape))
        else:
            dense = w
        bad = ~np.isclose(dense, dense.T, rtol=1e-12, atol=0.0)
        if bad.any():
            i, j = (int(k) for k in np.argwhere(bad)[0])
            raise ValueError(
                f"GapJunction within one population needs a symmetric w, w[i, j] == w[j, i] "
                f"(got w[{i}, {j}]={dense[i, j].item()!r} but w[{j}, {i}]={dense[j, i].item()!r}); "
                "symmetrise it, e.g. (w + w.T) / 2."
            )

    def recurrent_current(self, V: ArrayLike) -> Float[Array, " n"]:
        r"""The gap-junction current (pA, positive into the cell) within one population
        coupled to itself, at potentials `V` (mV), shape `(n,)`:

        $$I_j = \sum_i w_{ij}\,(V_i - V_j),$$

        with `w` symmetric, $w_{ij} = w_{ji}$ the conductance of the junction between $i$
        and $j$ (the diagonal drops out). Each junction appears twice in `w`, once for each
        cell it feeds, so the currents of all cells sum to 0 exactly. A scalar `w` couples
        every pair of distinct cells. A non-symmetric `w` is refused where its values are
        known (eagerly); under `jit` it is not checked.
        """
        V = self._vector("V", V, "recurrent_current")
        n = V.shape[0]
        self._sizes(n, n, "recurrent_current")
        self._check_symmetric(n)
        return self._flow(V, V, into_post=True)

    def recurrent_spikelet(self, spikes: ArrayLike) -> Float[Array, " n"]:
        r"""The spikelets within one population coupled to itself (mV):
        $\Delta V_j = k_\text{spikelet}\sum_{i \ne j} w_{ij}\,s_i$ (a cell sends no spikelet
        to itself), `w` symmetric as in `recurrent_current`.

        A group cannot take its own spikes of step $n$ in step $n$ (it has already been
        stepped), so pass the spikelets of step $n - 1$ as the `jump` of step $n$.
        """
        s = self._vector("spikes", spikes, "recurrent_spikelet")
        n = s.shape[0]
        self._sizes(n, n, "recurrent_spikelet")
        self._check_symmetric(n)
        return self._kick(s, n, skip_self=True)


# -- delayed couplings -------------------------------------------------------------------


def delay_steps(delays: ArrayLike | Sequence, dt: ScalarLike) -> np.ndarray:
    """Transmission delays in ms as integer numbers of steps of `dt` ms, for the `delays`
    argument of `AdditiveCoupling` and `DiffusiveCoupling`.

    Each delay is rounded to the nearest step, `rint(delays / dt)` (so 3 ms at
    `dt=0.1` is 30 steps, although `3 / 0.1` is 29.999999999999996 in floating point;
    ties go to the even step). The conversion happens once: a coupling built from these
    steps and run with another `dt` has other delays in ms.

    **Returns:** a NumPy `int32` array of the shape of `delays`.
    """
    d, step = val.concrete(delays), val.concrete(dt)
    if d is None or step is None:
        raise TypeError(
            "delay_steps needs concrete delays and dt (they fix the buffer size); call it "
            "outside jit/vmap/grad."
        )
    d = np.asarray(d, dtype=np.float64)
    if not (np.ndim(step) == 0 and np.isfinite(step) and step > 0):
        raise ValueError(f"delay_steps needs dt finite and > 0 ms (got {step!r}).")
    if not np.all(np.isfinite(d) & (d >= 0)):
        bad = d[~(np.isfinite(d) & (d >= 0))].flat[0].item()
        raise ValueError(f"delays must be finite and >= 0 ms (got {bad!r}); fix them.")
    return np.asarray(np.rint(d / float(step)), dtype=np.int32)


def _delay_matrix(owner: str, delays, shape: tuple[int, int]) -> np.ndarray:
    """The per-connection delays (integer steps, >= 0) as an int32 matrix of `shape`."""
    if delays is None:
        return np.zeros(shape, np.int32)
    d = val.concrete(delays)
    if d is None:
        raise TypeError(
            f"{owner}.delays must be concrete (they fix the size of the history buffer); "
            f"build the {owner} outside jit/vmap/grad."
        )
    if d.dtype == bool or not (
        np.issubdtype(d.dtype, np.integer) or np.issubdtype(d.dtype, np.floating)
    ):
        raise TypeError(f"{owner}.delays must be integer numbers of steps (got dtype {d.dtype}).")
    if np.issubdtype(d.dtype, np.floating):
        off = ~(np.isfinite(d) & (d == np.round(d)))
        if off.any():
            raise ValueError(
                f"{owner}.delays are integer numbers of steps (got {d[off].flat[0].item()!r}); "
                "for delays in ms use jsyn.delay_steps(delays_ms, dt)."
            )
    if np.any(d < 0):
        raise ValueError(
            f"{owner}.delays must be >= 0 steps (got {d[d < 0].flat[0].item()!r}); a coupling "
            "cannot take inputs from the future."
        )
    try:
        d = np.broadcast_to(d, shape)
    except ValueError:
        raise ValueError(
            f"{owner}.delays must be a scalar or broadcastable to conn_mat's shape {shape} "
            f"(got shape {d.shape})."
        ) from None
    return d.astype(np.int32)


def _conn_mat(owner: str, conn_mat) -> Param:
    conn_mat = as_param(conn_mat)
    shape = jnp.shape(resolve(conn_mat))
    if len(shape) != 2:
        raise ValueError(
            f"{owner}.conn_mat must be an (n_pre, n_post) matrix (got shape {shape}); for one "
            "node use shape (1, 1)."
        )
    return conn_mat


class CouplingState(eqx.Module):
    """State of `AdditiveCoupling` and `DiffusiveCoupling`.

    - `history`: the inputs `x` of the last `max_delay + 1` steps (a ring buffer, zero
      before the first step); row `pos - 1` (mod its length) holds the latest.
    - `pos`: the row that the next step writes.
    """

    history: Float[Array, "slots n_pre"]
    pos: Int[Array, ""]


class AbstractCoupling(AbstractSystem):
    r"""A linear coupling of nodes through `conn_mat`, with per-connection delays.

    `delayed_sum` is $\sum_i c_{ij}\,x_i(t_n - d_{ij})$, the drive that node $j$ receives in
    step $n$ when each connection $i \to j$ carries $x_i$ with a delay of $d_{ij}$ steps.

    Delays are exact in steps: an impulse in $x_i$ at step $s$ reaches node $j$ in the
    output of step $s + d_{ij}$ (a delay of 0 reaches it in the same step). The inputs
    before the first step are zero. The state is a ring buffer of the last
    `max_delay + 1` inputs; `max_delay` is fixed when the coupling is built.
    """

    conn_mat: eqx.AbstractVar[Param]
    delays: eqx.AbstractVar[Int[Array, "n_pre n_post"]]
    max_delay: eqx.AbstractVar[int]
    uniform: eqx.AbstractVar[bool]

    @property
    def shape(self) -> tuple[int, int]:
        """`(n_pre, n_post)`."""
        return tuple(jnp.shape(resolve(self.conn_mat)))

    def constraints(self):
        return (val.finite(type(self).__name__, "conn_mat", resolve(self.conn_mat)),)

    def init_state(self, n: Shape | None = None, *, dtype=None) -> CouplingState:
        """The zero history. `n` may be `None` or `(n_pre,)`, the shape of `x`."""
        n_pre = self.shape[0]
        if n is not None and as_shape(n) != (n_pre,):
            raise ValueError(
                f"{type(self).__name__} takes x of shape ({n_pre},), one value per row of "
                f"conn_mat (got n={n}); match the inputs to conn_mat."
            )
        dtype = jnp.result_type(float) if dtype is None else dtype
        return CouplingState(
            history=jnp.zeros((self.max_delay + 1, n_pre), dtype),
            pos=jnp.zeros((), jnp.int32),
        )

    def _check_input(self, name: str, x, like: Array, n: int) -> Array:
        x = jnp.asarray(x)
        if x.shape != (n,):
            raise ValueError(
                f"{type(self).__name__}.step needs {name} of shape ({n},) for conn_mat of "
                f"shape {self.shape} (got shape {x.shape}); batch trials with jax.vmap."
            )
        return x.astype(like.dtype)

    def delayed_sum(self, state: CouplingState, x) -> tuple[CouplingState, Float[Array, " n_post"]]:
        r"""Push this step's `x` into the history and return
        $\sum_i c_{ij}\,x_i(t_n - d_{ij})$, shape `(n_post,)`, with the new state."""
        x = self._check_input("x", x, state.history, self.shape[0])
        slots = self.max_delay + 1
        history = state.history.at[state.pos].set(x)
        c = resolve(self.conn_mat, history)
        if self.uniform:
            total = history[(state.pos - self.max_delay) % slots] @ c
        else:
            rows = (state.pos - self.delays) % slots
            cols = jnp.broadcast_to(jnp.arange(self.shape[0])[:, None], rows.shape)
            total = jnp.sum(c * history[rows, cols], axis=0)
        return CouplingState(history=history, pos=(state.pos + 1) % slots), total

    @abc.abstractmethod
    def step(self, state, inputs, dt):
        """One step: returns `(state, out)`, `out` of shape `(n_post,)`."""


def _coupling_fields(owner: str, conn_mat, delays):
    conn_mat = _conn_mat(owner, conn_mat)
    d = _delay_matrix(owner, delays, tuple(jnp.shape(resolve(conn_mat))))
    max_delay = int(d.max()) if d.size else 0
    return conn_mat, jnp.asarray(d), max_delay, bool(np.all(d == max_delay))


class AdditiveCoupling(AbstractCoupling):
    r"""Additive (linear) coupling with delays, for rate and neural-mass models:

    $$\text{out}_j(t) = \sum_i c_{ij}\,x_i(t - d_{ij}).$$

    `step(state, x, dt) -> (state, out)`: `x` is the coupled variable of the source nodes
    in this step, shape `(n_pre,)` (a rate, an activity, ...); `out`, shape `(n_post,)`,
    has the units of `conn_mat` × `x`. Delays are exact in steps (`AbstractCoupling`);
    the history before the first step is zero. `dt` is not used: delays are counted in
    steps (see `delay_steps`).

    **Arguments:**
    - `conn_mat`: coupling weights $c_{ij}$ from node $i$ to node $j$, shape
      `(n_pre, n_post)`, finite, of any sign. Differentiable.
    - `delays`: `None` (no delay), an integer number of steps for every connection, or
      per-connection integer steps broadcastable to `(n_pre, n_post)`; >= 0, concrete.

    **Reference:** the `Linear` coupling of The Virtual Brain (Sanz Leon et al. 2013,
    Front Neuroinform 7:10).
    """

    conn_mat: Param
    delays: Int[Array, "n_pre n_post"]
    max_delay: int = eqx.field(static=True)
    uniform: bool = eqx.field(static=True)

    def __init__(self, conn_mat: ArrayLike | AbstractParam, delays: ArrayLike | None = None):
        fields = _coupling_fields("AdditiveCoupling", conn_mat, delays)
        self.conn_mat, self.delays, self.max_delay, self.uniform = fields

    def step(self, state: CouplingState, x, dt) -> tuple[CouplingState, Float[Array, " n_post"]]:
        return self.delayed_sum(state, x)


class DiffusiveCoupling(AbstractCoupling):
    r"""Diffusive (difference) coupling with delays, for rate and neural-mass models:

    $$\text{out}_j(t) = \sum_i c_{ij}\,\bigl(x_i(t - d_{ij}) - y_j(t)\bigr)
      = \sum_i c_{ij}\,x_i(t - d_{ij}) - y_j(t) \sum_i c_{ij}.$$

    `step(state, inputs, dt) -> (state, out)`, with `inputs` either
    - a pair `(x, y)`: `x` the variable of the source nodes, shape `(n_pre,)`, and `y` that
      of the target nodes at this step (undelayed), shape `(n_post,)`; or
    - one array `x`, for nodes coupled to themselves (square `conn_mat`): then `y = x`,
      $\text{out}_j = \sum_i c_{ij}(x_i(t - d_{ij}) - x_j(t))$.

    `out`, shape `(n_post,)`, has the units of `conn_mat` × `x`. Delays are exact in steps
    (`AbstractCoupling`), the history before the first step is zero, and `dt` is not used.

    **Arguments:**
    - `conn_mat`: coupling weights $c_{ij}$ from node $i$ to node $j$, shape
      `(n_pre, n_post)`, finite. Differentiable.
    - `delays`: `None`, an integer number of steps, or per-connection integer steps
      broadcastable to `(n_pre, n_post)`; >= 0, concrete.

    **Reference:** the `Difference` coupling of The Virtual Brain (Sanz Leon et al. 2013,
    Front Neuroinform 7:10).
    """

    conn_mat: Param
    delays: Int[Array, "n_pre n_post"]
    max_delay: int = eqx.field(static=True)
    uniform: bool = eqx.field(static=True)

    def __init__(self, conn_mat: ArrayLike | AbstractParam, delays: ArrayLike | None = None):
        fields = _coupling_fields("DiffusiveCoupling", conn_mat, delays)
        self.conn_mat, self.delays, self.max_delay, self.uniform = fields

    def step(
        self, state: CouplingState, inputs, dt
    ) -> tuple[CouplingState, Float[Array, " n_post"]]:
        n_pre, n_post = self.shape
        if isinstance(inputs, tuple | list):
            if len(inputs) != 2:
                raise ValueError(
                    f"DiffusiveCoupling.step takes inputs (x, y) or one array x (got a "
                    f"sequence of {len(inputs)})."
                )
            x, y = inputs
        else:
            if n_pre != n_post:
                raise ValueError(
                    f"DiffusiveCoupling.step got one array x, which means y = x (nodes coupled "
                    f"to themselves) and needs a square conn_mat (got shape {self.shape}); "
                    "pass inputs=(x, y)."
                )
            x = y = inputs
        y = self._check_input("y", y, state.history, n_post)
        state, total = self.delayed_sum(state, x)
        c = resolve(self.conn_mat, state.history)
        return state, total - jnp.sum(c, axis=0) * y
