r"""What Levenberg–Marquardt needs of the residuals at one point, $r^\top r$, $J^\top r$
and $J^\top J$, from one forward pass through the simulation (`_moments`), and the same
for a batch of recordings laid out for the CPU (`_moments_many`, its `jax.vmap` rule)."""

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from ..simulate import recording_step


class Moments(NamedTuple):
    """What least squares needs of the residuals $r$ (weighted, raveled) and their
    Jacobian $J$ at one point."""

    f: jax.Array  # r.r
    g: jax.Array  # J^T r, (p,)
    A: jax.Array  # J^T J, (p, p)


def _step(rebuild, dt_static, record, dtype, columns: int):
    """One step of the model (`rebuild(model, th)`: the model's arrays `model` with the raw
    parameters `th`; the step `dt` the array part of it, `dt_static` the rest) from state
    `s`: the new floating state and the recorded output as `columns` numbers, and the
    other (e.g. integer) state aside."""

    def step(th, model, dt, s, other, x):
        dt = eqx.combine(dt, dt_static)
        s, out = recording_step(rebuild(model, th), dt, record)(eqx.combine(s, other), x)
        s, other = eqx.partition(s, eqx.is_inexact_array)
        return (s, jnp.asarray(out).astype(dtype).reshape(columns)), other

    return step


def _advance(step, theta, model, dt, basis, s, ts, other, x):
    """One step of the state `s` and its tangents `ts` (one per row of `basis`, the
    directions in the parameters `theta`): one `jax.jvp` of `step` with the tangents as a
    batch axis, the primal computed once. Returns `((s, out), (ts, t_out), other)`."""

    def tangent(t_theta, t_state):
        return jax.jvp(
            lambda th, si: step(th, model, dt, si, other, x),
            (theta, s),
            (t_theta, t_state),
            has_aux=True,
        )

    return jax.vmap(tangent, out_axes=((None, None), 0, None))(basis, ts)


def moments_fn(rebuild, dt_static, cfg):
    r"""`moments(theta, model, dt, state, inputs, target, weights) -> Moments` from one
    forward pass; `rebuild(model, theta)` puts the raw parameters `theta` into the model's
    arrays `model`, and `dt` is the array part of the step (`eqx.partition`), the rest
    `dt_static`: arrays are arguments, since the batched rule cannot close over a tracer.

    Each step advances the state and its $p$ tangents (forward mode, the tangents a batch
    axis of one `jax.jvp` of the step, the primal computed once). With
    `cfg.sums_in_scan` (`jsyn.fit_many`) each step adds its residuals and their
    derivatives to the sums, so that the $(m, p)$ Jacobian is never stored, and a batch
    (`jax.vmap`) runs `_moments_many`; otherwise the scan stores $r$ and $J$ and the sums
    are formed after it (a single fit: 0.2 ms against 1.2 ms for the sums in the scan,
    whose $p \times p$ update costs more than the step itself there)."""

    def moments(theta, model, dt, state, inputs, target, weights):
        return _moments(rebuild, dt_static, cfg, theta, model, dt, state, inputs, target, weights)

    if not cfg.sums_in_scan:
        return moments
    batched = jax.custom_batching.custom_vmap(moments)

    @batched.def_vmap
    def rule(axis_size, in_batched, *args):
        out = _moments_many(rebuild, dt_static, cfg, axis_size, in_batched, *args)
        return out, Moments(f=True, g=True, A=True)

    return batched


def _moments(rebuild, dt_static, cfg, theta, model, dt, state, inputs, target, weights):
    """One recording: see `moments_fn`."""
    dtype = theta.dtype
    p = theta.size
    basis = jnp.eye(p, dtype=dtype)
    columns = int(math.prod(target.shape[1:]))
    sqrt_w = None if weights is None else jnp.sqrt(weights)
    # Only the floating leaves of the state carry tangents (a delay's index does not).
    state, other = eqx.partition(state, eqx.is_inexact_array)
    step = _step(rebuild, dt_static, cfg.record, dtype, columns)

    def body(carry, xs):
        s, other, ts, acc = carry
        x, y, sw = xs

        (s, out), (ts, t_out), other = _advance(step, theta, model, dt, basis, s, ts, other, x)
        y = y.reshape(columns)
        if weights is not None:
            sw = sw.reshape(columns)
            out, t_out, y = out * sw, t_out * sw[None], y * sw
        if not cfg.sums_in_scan:
            return (s, other, ts, acc), (out, t_out)
        inc = _sums(out, t_out, y)
        return (s, other, ts, jax.tree.map(jnp.add, acc, inc)), None

    acc = None
    if cfg.sums_in_scan:
        zero = jnp.zeros((), dtype)
        acc = Moments(f=zero, g=jnp.zeros((p,), dtype), A=jnp.zeros((p, p), dtype))
    tangents = jax.tree.map(lambda leaf: jnp.zeros((p, *jnp.shape(leaf)), leaf.dtype), state)
    carry = (state, other, tangents, acc)
    (*_, acc), stored = jax.lax.scan(body, carry, (inputs, target, sqrt_w), length=cfg.T)
    if cfg.sums_in_scan:
        return acc
    out, t_out = stored  # (T, columns), (T, p, columns)
    y = target.reshape(cfg.T, columns)
    if weights is not None:
        y = y * sqrt_w.reshape(cfg.T, columns)
    return _sums(out, jnp.moveaxis(t_out, 1, 0), y)


def _sums(out, t_out, y) -> Moments:
    """`Moments` of the weighted prediction `out` and its tangents `t_out` (`p` rows, then
    the shape of `out`) against the weighted target `y`."""
    r = (out - y).reshape(-1)
    t_out = t_out.reshape(t_out.shape[0], -1)
    return Moments(f=jnp.sum(r * r), g=t_out @ r, A=t_out @ t_out.T)


def _moments_many(rebuild, dt_static, cfg, n, in_batched, *args):
    r"""The `jax.vmap` rule of `_moments` with the sums in the scan: the same sums for `n`
    recordings, computed with the recording axis last (contiguous) in the scan's carry.

    `vmap` of the one-recording pass puts the recording axis first, so that XLA's CPU
    loops run along the $p$ tangents and the $p \times p$ sums, which it does not
    vectorise. Here the tangents are a batch axis outside the recordings' (shape
    $(p, n, \ldots)$), and the sums are the upper triangle of the Gram matrix of
    $[r, J]$, $(p + 1)(p + 2)/2$ rows of $n$, one update per step. The same products are
    added in the same order, so the sums equal those of `_moments`, recording by
    recording, to rounding. Unbatched arguments are shared by all recordings.

    The scan reads the recordings' data time-major. `custom_vmap` hands them over with
    the recording axis first; `fit_many` vmaps over time-major copies (`in_axes=1`), so
    that the transposition back here cancels that one and nothing is copied at each
    evaluation inside the Levenberg–Marquardt loop."""
    theta, model, dt, state, inputs, target, weights = args
    theta_b, model_b, dt_b, state_b, inputs_b, target_b, weights_b = in_batched
    dtype = theta.dtype
    p = theta.shape[-1]
    columns = int(math.prod(target.shape[2 if target_b else 1 :]))

    def leading(tree, batched):  # every leaf with the recording axis first
        return jax.tree.map(
            lambda leaf, b: leaf if b else jnp.broadcast_to(leaf, (n, *jnp.shape(leaf))),
            tree,
            batched,
        )

    def time_major(leaf, b):  # the scan's time axis first, the recordings' second
        return jnp.moveaxis(leaf, 0, 1) if b else leaf

    theta = leading(theta, theta_b)
    state, other = eqx.partition(leading(state, state_b), eqx.is_inexact_array)

    def axes(batched):  # vmap's in_axes of a (partly) batched argument
        return jax.tree.map(lambda b: 0 if b else None, batched)

    # Every time series flat per step, (T, numbers), so that XLA lays out the scan's blocks
    # of two steps without a copy at every evaluation (a trailing axis of 1 made one).
    shapes = jax.tree.map(lambda leaf, b: time_major(leaf, b).shape[1:], inputs, inputs_b)
    inputs = jax.tree.map(lambda leaf, b: time_major(leaf, b).reshape(cfg.T, -1), inputs, inputs_b)
    target = time_major(target, target_b).reshape(cfg.T, -1)  # (T, n or 1 times columns)
    sqrt_w = None
    if weights is not None:
        sqrt_w = jnp.sqrt(time_major(weights, weights_b).reshape(cfg.T, -1))

    step = jax.vmap(
        _step(rebuild, dt_static, cfg.record, dtype, columns),
        in_axes=(0, axes(model_b), axes(dt_b), 0, 0, axes(inputs_b)),
        out_axes=((0, 0), 0),
    )
    basis = jnp.broadcast_to(jnp.eye(p, dtype=dtype)[:, None, :], (p, n, p))
    pairs = [(i, j) for i in range(p + 1) for j in range(i, p + 1)]
    rows, cols = (jnp.array(ix) for ix in zip(*pairs))

    def body(carry, xs):
        s, other, ts, acc = carry
        x, y, sw = xs
        x = jax.tree.map(lambda leaf, shape: leaf.reshape(shape), x, shapes)
        y, sw = (None if a is None else a.reshape(-1, columns) for a in (y, sw))

        (s, out), (ts, t_out), other = _advance(step, theta, model, dt, basis, s, ts, other, x)
        # out (n, columns), t_out (p, n, columns)
        if sw is not None:
            out, t_out, y = out * sw, t_out * sw[None], y * sw
        m = jnp.concatenate([(out - y)[None], t_out])  # [r, J] of this step, (p + 1, n, columns)
        return (s, other, ts, acc + jnp.sum(m[rows] * m[cols], axis=-1)), None

    tangents = jax.tree.map(lambda leaf: jnp.zeros((p, *jnp.shape(leaf)), leaf.dtype), state)
    acc = jnp.zeros((len(pairs), n), dtype)
    carry = (state, other, tangents, acc)
    # Two steps per iteration of XLA's loop: 18.8 ms against 21.2 for 1000 recordings of
    # 2000 samples and 3 parameters in float64 (8.9 against 11.5 in float32); four, the
    # same as two; eight, slower.
    xs = (inputs, target, sqrt_w)
    (*_, acc), _ = jax.lax.scan(body, carry, xs, length=cfg.T, unroll=2)
    gram = jnp.zeros((n, p + 1, p + 1), dtype).at[:, rows, cols].set(acc.T)
    gram = gram + jnp.swapaxes(jnp.triu(gram, 1), 1, 2)
    return Moments(f=gram[:, 0, 0], g=gram[:, 0, 1:], A=gram[:, 1:, 1:])
