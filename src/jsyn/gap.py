r"""The couplings of rate and neural-mass models (gap junctions between neurons are
`jsyn.GapJunction`, in `gap_junction.py`).

- `AdditiveCoupling` and `DiffusiveCoupling` are systems (`init_state`/`step`, so
  `jsyn.simulate` runs them): they keep a ring buffer of past inputs for per-connection
  transmission delays, counted in integer steps.
- `delay_steps(delays_ms, dt)` converts delays in ms to those steps, once.
"""

import abc
from collections.abc import Sequence

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from . import _validation as val
from ._component import AbstractSystem, as_shape
from ._custom_types import ScalarLike, Shape
from ._params import AbstractParam, Param, as_param, resolve


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
