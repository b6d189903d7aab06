r"""Electrical synapses (gap junctions) and the couplings of rate and neural-mass models.

- `GapJunction` is stateless, like the output laws: `currents(V_pre, V_post)` gives the
  ohmic currents through the junctions (pA, positive **into** the cell) and
  `spikelet(pre_spikes)` the voltage kicks that presynaptic spikes send through them (mV).
- `AdditiveCoupling` and `DiffusiveCoupling` are systems (`init_state`/`step`, so
  `jsyn.simulate` runs them): per-connection transmission delays in ms, fractional and
  differentiable, through a `jsyn.Delay`.
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
from .delays import Delay, DelayState


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

    **Causal order in a step** (MODELS.md, discrete-time semantics): the currents over step
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

CouplingState = DelayState
"""The state of a delayed coupling (`AdditiveCoupling`, `DiffusiveCoupling`): the ring
buffer of its `jsyn.Delay`, a `jsyn.DelayState` holding the recent inputs `x`."""


def _conn_mat(owner: str, conn_mat) -> Param:
    conn_mat = as_param(conn_mat)
    shape = jnp.shape(resolve(conn_mat))
    if len(shape) != 2:
        raise ValueError(
            f"{owner}.conn_mat must be an (n_pre, n_post) matrix (got shape {shape}); for one "
            "node use shape (1, 1)."
        )
    return conn_mat


def _coupling_line(owner: str, shape, delay, dt, max_delay, delays) -> Delay | None:
    """The coupling's delay line, or `None` without a delay."""
    if delays is not None:
        raise TypeError(
            f"{owner}(delays=...) counted integer steps; delays are now in ms like every jsyn "
            "delay: pass delay=<ms> and dt=<the time step of the runs> (for k steps, "
            "delay=k * dt)."
        )
    if delay is None:
        return None
    if dt is None:
        raise ValueError(
            f"{owner}.delay is in ms and needs dt, the time step (ms) of the runs, to size its "
            "buffer (got a delay without dt); pass dt=0.1, say (for a delay of k steps: "
            "delay=k * dt, dt=dt)."
        )
    d_shape = jnp.shape(resolve(as_param(delay)))
    try:
        fits = np.broadcast_shapes(d_shape, shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"{owner}.delay must be a scalar or broadcastable to conn_mat's shape {shape} "
            f"(got shape {d_shape})."
        )
    return Delay(delay, dt, max_delay=max_delay, owner=owner)


class AbstractCoupling(AbstractSystem):
    r"""A linear coupling of nodes through `conn_mat`, with per-connection delays.

    `delayed_sum` is $\sum_i c_{ij}\,x_i(t_n - d_{ij})$, the drive that node $j$ receives in
    step $n$ when each connection $i \to j$ carries $x_i$ with a delay of $d_{ij}$ ms.

    The delays are a `jsyn.Delay` (the `line`): exact in whole steps (an impulse in $x_i$ at
    step $s$ reaches node $j$ in the output of step $s + d_{ij}/\Delta t$; a delay of 0
    reaches it in the same step), interpolated linearly between the two neighbouring steps
    otherwise, and differentiable w.r.t. the delays. The inputs before the first step are
    zero. The state is the ring buffer of the recent inputs (`jsyn.DelayState`, `None`
    without delays), sized by `max_delay` when the coupling is built.
    """

    conn_mat: eqx.AbstractVar[Param]
    line: eqx.AbstractVar[Delay | None]

    @property
    def shape(self) -> tuple[int, int]:
        """`(n_pre, n_post)`."""
        return tuple(jnp.shape(resolve(self.conn_mat)))

    @property
    def delay(self):
        """The delays (ms), as given (`None` without delays)."""
        return None if self.line is None else self.line.delay

    def constraints(self):
        return (val.finite(type(self).__name__, "conn_mat", resolve(self.conn_mat)),)

    def init_state(self, n: Shape | None = None, *, dtype=None) -> DelayState | None:
        """The zero history (`None` without delays). `n` may be `None` or `(n_pre,)`, the
        shape of `x`."""
        n_pre = self.shape[0]
        if n is not None and as_shape(n) != (n_pre,):
            raise ValueError(
                f"{type(self).__name__} takes x of shape ({n_pre},), one value per row of "
                f"conn_mat (got n={n}); match the inputs to conn_mat."
            )
        if self.line is None:
            return None
        # x is held as a column, (n_pre, 1), so delays of shape (n_pre, n_post) broadcast
        # with it: one delayed copy of x_i per connection i -> j.
        return self.line.init_state((n_pre, 1), dtype=dtype)

    def _check_input(self, name: str, x, n: int, like=None) -> Array:
        x = jnp.asarray(x)
        if x.shape != (n,):
            raise ValueError(
                f"{type(self).__name__}.step needs {name} of shape ({n},) for conn_mat of "
                f"shape {self.shape} (got shape {x.shape}); batch trials with jax.vmap."
            )
        if like is None:  # no history: keep a floating x as it is
            return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(float)
        return x.astype(like.dtype)

    def delayed_sum(
        self, state: DelayState | None, x, dt
    ) -> tuple[DelayState | None, Float[Array, " n_post"]]:
        r"""Push this step's `x` into the history and return
        $\sum_i c_{ij}\,x_i(t_n - d_{ij})$, shape `(n_post,)`, with the new state."""
        x = self._check_input("x", x, self.shape[0], None if state is None else state.buffer)
        c = resolve(self.conn_mat, x)
        if self.line is None:
            return state, x @ c
        state, y = self.line.step(state, x[:, None], dt)
        if y.shape[1] == 1:  # one delay per source node (or one for all)
            return state, y[:, 0] @ c
        return state, jnp.sum(c * y, axis=0)

    @abc.abstractmethod
    def step(self, state, inputs, dt):
        """One step: returns `(state, out)`, `out` of shape `(n_post,)`."""


class AdditiveCoupling(AbstractCoupling):
    r"""Additive (linear) coupling with delays, for rate and neural-mass models:

    $$\text{out}_j(t) = \sum_i c_{ij}\,x_i(t - d_{ij}).$$

    `step(state, x, dt) -> (state, out)`: `x` is the coupled variable of the source nodes
    in this step, shape `(n_pre,)` (a rate, an activity, ...); `out`, shape `(n_post,)`,
    has the units of `conn_mat` × `x`. Delays as in `AbstractCoupling` (fractional ones
    interpolated); the history before the first step is zero.

    **Arguments:**
    - `conn_mat`: coupling weights $c_{ij}$ from node $i$ to node $j$, shape
      `(n_pre, n_post)`, finite, of any sign. Differentiable.
    - `delay`: `None` (no delay), or the delays (ms), >= 0: a scalar for every connection,
      or per connection, broadcastable to `(n_pre, n_post)`. Array or `AbstractParam`;
      differentiable.
    - `dt`: the time step (ms) of the runs; needed with a delay (it sizes the buffer).
    - `max_delay`: the longest delay (ms) the buffer holds. Default: the largest `delay`.

    Earlier versions counted the delays in integer steps (`delays=`, converted with
    `jsyn.delay_steps`); `delay=k * dt, dt=dt` is the same coupling.

    **Reference:** the `Linear` coupling of The Virtual Brain (Sanz Leon et al. 2013,
    Front Neuroinform 7:10).
    """

    conn_mat: Param
    line: Delay | None

    def __init__(
        self,
        conn_mat: ArrayLike | AbstractParam,
        delay: ArrayLike | AbstractParam | None = None,
        *,
        dt: ScalarLike | None = None,
        max_delay: ScalarLike | None = None,
        delays: ArrayLike | None = None,
    ):
        self.conn_mat = _conn_mat("AdditiveCoupling", conn_mat)
        self.line = _coupling_line("AdditiveCoupling", self.shape, delay, dt, max_delay, delays)

    def step(
        self, state: DelayState | None, x, dt
    ) -> tuple[DelayState | None, Float[Array, " n_post"]]:
        return self.delayed_sum(state, x, dt)


class DiffusiveCoupling(AbstractCoupling):
    r"""Diffusive (difference) coupling with delays, for rate and neural-mass models:

    $$\text{out}_j(t) = \sum_i c_{ij}\,\bigl(x_i(t - d_{ij}) - y_j(t)\bigr)
      = \sum_i c_{ij}\,x_i(t - d_{ij}) - y_j(t) \sum_i c_{ij}.$$

    `step(state, inputs, dt) -> (state, out)`, with `inputs` either
    - a pair `(x, y)`: `x` the variable of the source nodes, shape `(n_pre,)`, and `y` that
      of the target nodes at this step (undelayed), shape `(n_post,)`; or
    - one array `x`, for nodes coupled to themselves (square `conn_mat`): then `y = x`,
      $\text{out}_j = \sum_i c_{ij}(x_i(t - d_{ij}) - x_j(t))$.

    `out`, shape `(n_post,)`, has the units of `conn_mat` × `x`. Delays as in
    `AbstractCoupling` (fractional ones interpolated); the history before the first step
    is zero.

    **Arguments:**
    - `conn_mat`: coupling weights $c_{ij}$ from node $i$ to node $j$, shape
      `(n_pre, n_post)`, finite. Differentiable.
    - `delay`, `dt`, `max_delay`: as in `AdditiveCoupling` (ms).

    **Reference:** the `Difference` coupling of The Virtual Brain (Sanz Leon et al. 2013,
    Front Neuroinform 7:10).
    """

    conn_mat: Param
    line: Delay | None

    def __init__(
        self,
        conn_mat: ArrayLike | AbstractParam,
        delay: ArrayLike | AbstractParam | None = None,
        *,
        dt: ScalarLike | None = None,
        max_delay: ScalarLike | None = None,
        delays: ArrayLike | None = None,
    ):
        self.conn_mat = _conn_mat("DiffusiveCoupling", conn_mat)
        self.line = _coupling_line("DiffusiveCoupling", self.shape, delay, dt, max_delay, delays)

    def step(
        self, state: DelayState | None, inputs, dt
    ) -> tuple[DelayState | None, Float[Array, " n_post"]]:
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
        state, total = self.delayed_sum(state, x, dt)
        y = self._check_input("y", y, n_post, total)
        return state, total - jnp.sum(resolve(self.conn_mat, total), axis=0) * y
