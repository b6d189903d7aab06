"""The connection protocol: how the spikes of a presynaptic group reach its synapses."""

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _validation as val
from .._component import AbstractComponent
from .._params import Param, resolve


class AbstractConnection(AbstractComponent):
    r"""The wiring of a projection, with its weights: which presynaptic neuron $i$ reaches
    which postsynaptic neuron $j$, through how many synapses, with weight $w_{ij}$.

    A connection is stateless. A `jsyn.Projection` uses it three ways:
    - `deliver(signal, into, ...)`: adds $\sum_i s_i\,w_{ij}$ to `into[j]` (or, with
      delays, to the rows of a ring buffer where each synapse's spike arrives), the summed
      drive of kinetics that keep one state per postsynaptic neuron;
    - `spread(signal)`: the signal of each synapse's presynaptic neuron, shape
      `syn_shape`, the drive of kinetics that keep one state per synapse;
    - `collect(values)`: $\sum_{\text{synapses onto } j} w\,\text{value}$, shape
      `(n_post,)`, the weighted sum of per-synapse conductances.

    `spread_post` and `collect_pre` are the same two with the roles of pre and post
    swapped, for signals that travel both ways (the currents of `jsyn.GapJunction`) and for
    per-postsynaptic-neuron parameters read per synapse.

    Weights are dimensionless multipliers of the drive (the conductance scale `g_max` lives
    in the output law). Every method takes an optional `weights` argument, so that a
    plastic projection can keep its weights in the network state and pass them in; by
    default the connection's own `w` is used.

    **Attributes:** `n_pre`, `n_post` (group sizes), `syn_shape` (the shape of per-synapse
    arrays: weights, delays, per-synapse states), `w` (weights: a scalar or `syn_shape`).
    """

    w: eqx.AbstractVar[Param]
    n_pre: eqx.AbstractVar[int]
    n_post: eqx.AbstractVar[int]

    @property
    @abc.abstractmethod
    def syn_shape(self) -> tuple[int, ...]:
        """The shape of per-synapse arrays."""

    def weights(self, like=None) -> Float[Array, "..."]:
        """The weights, a scalar or of shape `syn_shape`, in the dtype of `like`."""
        w = resolve(self.w)
        return w if like is None else w.astype(jnp.result_type(like))

    def constraints(self):
        return (val.finite(type(self).__name__, "w", resolve(self.w)),)

    @abc.abstractmethod
    def deliver(
        self, signal, into, *, weights=None, rows=None, rows_next=None, frac=None, hook=None
    ):
        r"""Add the weighted signal to `into`.

        - Without `rows`: `into` has shape `(n_post,)` and receives $\sum_i s_i w_{ij}$.
        - With `rows` (a ring buffer `into` of shape `(slots, n_post)`): synapse $(i, j)$
          adds $(1 - f)\,s_i w_{ij}$ to `into[rows, j]` and $f\,s_i w_{ij}$ to
          `into[rows_next, j]`; `rows`, `rows_next` (int) and `frac` are scalars or
          per-synapse arrays of shape `syn_shape`.

        `signal` has shape `(n_pre,)`: spike counts, or spikes scaled by their efficacy.

        `hook`, if given, is applied to the weighted values before they are added:
        `hook(values, syn, pre)` with `values` $= s_i w_s$ for a block of synapses, `syn`
        their synapse numbers (int; the flat index into `syn_shape`) and `pre` their
        presynaptic neurons (int), all broadcastable to one shape; it returns the values to
        add (e.g. `jsyn.StochasticRelease`'s random release, drawn per synapse number).
        Event-driven connections call it only for the synapses of neurons with a nonzero
        signal (and, under `jax.grad`, of every neuron), so it must give the same value for
        a synapse whichever block it comes in.
        """

    @abc.abstractmethod
    def spread(self, signal) -> Float[Array, "..."]:
        """The signal of each synapse's presynaptic neuron, shape `syn_shape`."""

    @abc.abstractmethod
    def collect(self, values, *, weights=None) -> Float[Array, " n_post"]:
        """The weighted sum of per-synapse `values` (shape `syn_shape`) onto each
        postsynaptic neuron, shape `(n_post,)`."""

    @abc.abstractmethod
    def spread_post(self, signal) -> Float[Array, "..."]:
        """The signal of each synapse's **postsynaptic** neuron, shape `syn_shape`, from a
        `signal` of shape `(n_post,)`."""

    @abc.abstractmethod
    def collect_pre(self, values, *, weights=None) -> Float[Array, " n_pre"]:
        r"""The weighted sum of per-synapse `values` (shape `syn_shape`) onto each
        **presynaptic** neuron, $\sum_{\text{synapses from } i} w\,\text{value}$, shape
        `(n_pre,)`. With `spread_post`, the transposed product:
        `collect_pre(spread_post(x))` is $\sum_j w_{ij}\,x_j$."""

    @abc.abstractmethod
    def matrix(self) -> Float[Array, "n_pre n_post"]:
        """The dense weight matrix, $W_{ij}$ = the summed weight of all synapses from $i$
        to $j$ (for checks and plots; memory `n_pre * n_post`)."""


def check_signal(owner: str, signal, n: int, side: str = "pre") -> Array:
    signal = jnp.asarray(signal)
    if signal.shape != (n,):
        raise ValueError(
            f"{owner} needs a {side}synaptic signal of shape ({n},), one value per "
            f"{side}synaptic neuron (got shape {signal.shape}); batch trials with jax.vmap."
        )
    return signal
