r"""The couplings of rate and neural-mass models (gap junctions between neurons are
`jsyn.GapJunction`, in `gap_junction.py`).

- `AdditiveCoupling` and `DiffusiveCoupling` are systems (`init_state`/`step`, so
  `jsyn.simulate` runs them): per-connection transmission delays in ms, fractional and
  differentiable, through a `jsyn.Delay`.
"""

import abc
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from . import _validation as val
from ._component import AbstractSystem, as_shape
from ._custom_types import ScalarLike, Shape
from ._params import AbstractParam, Param, as_param, resolve
from .delays import Delay, DelayState


def _conn_mat(owner: str, conn_mat) -> Param:
    conn_mat = as_param(conn_mat)
    shape = jnp.shape(resolve(conn_mat))
    if len(shape) != 2:
        raise ValueError(
            f"{owner}.conn_mat must be an (n_pre, n_post) matrix (got shape {shape}); for one "
            "node use shape (1, 1)."
        )
    return conn_mat


def _coupling_line(owner: str, shape, delay, dt, max_delay) -> Delay | None:
    """The coupling's delay line, or `None` without a delay."""
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
    sized_by_inputs: ClassVar[bool] = False  # conn_mat fixes the size

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
    ):
        self.conn_mat = _conn_mat("AdditiveCoupling", conn_mat)
        self.line = _coupling_line("AdditiveCoupling", self.shape, delay, dt, max_delay)

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
    ):
        self.conn_mat = _conn_mat("DiffusiveCoupling", conn_mat)
        self.line = _coupling_line("DiffusiveCoupling", self.shape, delay, dt, max_delay)

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
