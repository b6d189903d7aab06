r"""Intervals from the sweep-to-sweep variability: `jsyn.sweep_intervals`.

`jsyn.fit`'s intervals assume independent noise of equal variance around a model that
holds exactly. A recording breaks that: spontaneous events (inward, each lasting
milliseconds), the error of a subtracted baseline (one offset for a whole sweep) and slow
drifts make the residuals of neighbouring samples correlated, and the white-noise
intervals come out too narrow (measured by `benchmarks/sweep_coverage.py`: on synthetic
recordings with spontaneous events the 95 % intervals of `jsyn.fit` held the truth in 28 to
65 % of 100 files for six of seven parameters, these in 90 to 100 %).

When the fitted trace is the mean of $n$ sweeps, the sweeps themselves say how large the
error of that mean is, whatever its correlation in time. Write each sweep as
$y_k = f(\theta) + e_k$, the $e_k$ independent from sweep to sweep (any correlation
within a sweep). Near the optimum the fit of the mean $\bar y$ moves by
$\hat\theta - \theta \approx A\,\bar e$, $A = (J^\top W J)^{-1} J^\top W$ ($J$ the
Jacobian of the prediction in raw space, $W$ the weights), so

$$\operatorname{Cov}\hat\theta = \tfrac{1}{n} A\,\Sigma\,A^\top,\qquad
\widehat{\operatorname{Cov}}\,\hat\theta = \frac{1}{n(n-1)}\sum_k u_k u_k^\top,\quad
u_k = A\,(y_k - \bar y),$$

with $\Sigma$ the (unknown) covariance of one sweep's noise over time: the
cluster-robust ("sandwich") covariance with the sweeps as clusters (Liang & Zeger 1986),
unbiased for a model linear near its optimum. Each variance is estimated from $n - 1$
degrees of freedom, so the interval of level $1-\alpha$ is
$\theta_\text{raw} \pm t_{n-1,\,1-\alpha/2}\,\mathrm{se}$, mapped to physical values as
`jsyn.fit` maps its own. When the columns of the target are the means of different sets
of sweeps (two holding potentials), each set contributes its own sum, and the degrees of
freedom of each parameter are Welch–Satterthwaite's.

What it needs: the sweeps independent of each other (not their samples), the model
right on average, and enough sweeps to estimate a variance (at least 2 per column;
with few sweeps the $t$ quantile widens the interval honestly: 2.26 for 10 sweeps, 4.30
for 3). It does not remove a bias: a model that is wrong on average (an unmodelled
component present in every sweep) is as wrong with any interval.

Reference: Liang & Zeger 1986, *Biometrika* 73:13; Cameron & Miller 2015, *J. Human
Resources* 50:317 (cluster-robust inference, few clusters and the $t_{G-1}$ quantile).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .._params import resolve
from ..simulate import initial_state, scan
from ._result import FitResult, rebuilt
from ._select import follow, select, where


def t_quantile(q: float, df) -> np.ndarray:
    """The `q` quantile ($q > 1/2$) of Student's $t$ with `df` degrees of freedom (an
    array; infinite `df` gives the normal's), by bisection on its distribution function
    $F(t) = 1 - \\tfrac12 I_{\\nu/(\\nu + t^2)}(\\nu/2, 1/2)$."""
    df = np.asarray(df, dtype=float)
    normal = float(jax.scipy.special.ndtri(q))
    nu = np.where(np.isfinite(df) & (df > 0), df, 1.0)
    lo, hi = np.zeros_like(nu), np.full_like(nu, 1e3)
    for _ in range(52):  # 1e3 / 2**52: to double precision
        mid = 0.5 * (lo + hi)
        tail = 0.5 * np.asarray(jax.scipy.special.betainc(nu / 2, 0.5, nu / (nu + mid**2)))
        below = 1.0 - tail < q
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    out = 0.5 * (lo + hi)
    out = np.where(np.isinf(df), normal, out)
    return np.where(np.isfinite(df) & (df > 0) | np.isinf(df), out, np.nan)


def _problem(model, paths):
    """The raw parameters at `paths`, and the model rebuilt from raw values."""
    dtype = jnp.result_type(*[jnp.asarray(x) for x in where(paths)(model)])
    leaves = [jnp.asarray(leaf, dtype) for leaf in where(paths)(model)]
    theta, unravel = ravel_pytree(leaves)
    arrays, static = eqx.partition(model, eqx.is_array)

    def rebuild(theta):
        return eqx.tree_at(where(paths), eqx.combine(arrays, static), unravel(theta))

    return theta, rebuild


@eqx.filter_jit
def _jacobian(model, paths, inputs, state, dt, record, T):
    """The Jacobian of the prediction `(time, k)` in raw space at the fitted values,
    `(time, k, p)` (forward mode: one pass with p tangents)."""
    theta, rebuild = _problem(model, paths)

    def predict(theta):
        _, pred = scan(rebuild(theta), state, inputs, dt, record, T)
        return jnp.asarray(pred).reshape(T, -1).astype(theta.dtype)

    return jax.jacfwd(predict)(theta)


def sweep_intervals(
    result: FitResult,
    inputs,
    sweeps,
    dt,
    *,
    columns=None,
    weights=None,
    level: float | None = None,
    record=None,
    state=None,
) -> FitResult:
    r"""Replace the intervals of a fit of a sweep average by intervals from the
    sweep-to-sweep variability (see the module docstring for the method).

    **Arguments:**
    - `result`: what `jsyn.fit` returned for a target that is the mean of `sweeps`
      (per column: the mean of the sweeps of that column).
    - `inputs`, `dt`, `record`, `state`: as given to `jsyn.fit`.
    - `sweeps`: the individual sweeps, shape `(n, time)`, in the target's units, sign
      and baseline (the sign does not matter: only deviations from the mean enter).
    - `columns`: the target's column each sweep belongs to, shape `(n,)` (default: all
      in column 0 of a target of one column). At least 2 sweeps per column.
    - `weights`: as given to `jsyn.fit` (`(time, 1)` or the target's shape), or `None`.
    - `level`: the confidence level (default: the result's).

    **Returns:** a `FitResult` equal to `result` except `stderr`, `ci_low`, `ci_high`,
    `covariance` (of the raw parameters), `errors` (`"between sweeps"`) and `dof` (per
    parameter, the degrees of freedom of its $t$ interval); an interval too wide to mean
    anything makes it `"unidentifiable"`, as for `jsyn.fit`.

    **Raises:** `ValueError` for a batched result (`fit_many`), sweeps of another length
    than the target, or a column with fewer than 2 sweeps.
    """
    if np.ndim(result.loss):
        raise ValueError(
            "jsyn.sweep_intervals takes the result of one fit of a sweep average, not of "
            "fit_many (one fit per sweep has no other sweeps to compare with)"
        )
    level = result.level if level is None else float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"jsyn.sweep_intervals: level must lie in (0, 1) (got {level})")
    model = result.model
    names, paths = select(model, list(result.names))
    sweeps = np.asarray(sweeps, dtype=float)
    leaves = jax.tree.leaves(inputs)
    T = int(np.shape(leaves[0])[0])
    if sweeps.ndim != 2 or sweeps.shape[1] != T:
        raise ValueError(
            f"jsyn.sweep_intervals: sweeps must have shape (n, {T}) (one row per sweep, "
            f"the inputs' {T} time steps; got {sweeps.shape})"
        )
    n = sweeps.shape[0]
    columns = np.zeros(n, int) if columns is None else np.asarray(columns, int)
    if columns.shape != (n,):
        raise ValueError(
            f"jsyn.sweep_intervals: columns must give one column per sweep ({n}; got "
            f"shape {columns.shape})"
        )
    if state is None:
        state = initial_state(model, leaves, None)
    J = np.asarray(_jacobian(model, paths, inputs, state, dt, record, T))  # (time, k, p)
    theta, rebuild = _problem(model, paths)

    def physical(theta):
        m = rebuild(theta)
        return ravel_pytree([jnp.asarray(resolve(follow(m, p)), theta.dtype) for p in paths])[0]

    k = J.shape[1]
    counts = np.bincount(columns, minlength=k)
    if columns.min() < 0 or columns.max() >= k or (counts < 2).any():
        raise ValueError(
            f"jsyn.sweep_intervals: every column of the target needs at least 2 sweeps "
            f"(columns 0..{k - 1}; got {counts.tolist()} sweeps per column); fit a single "
            "sweep with jsyn.fit's own intervals"
        )
    w = np.ones((T, 1)) if weights is None else np.asarray(weights, dtype=float)
    w = np.broadcast_to(w.reshape(T, -1) if w.ndim and w.shape[0] == T else w, (T, k))
    means = np.stack([sweeps[columns == c].mean(axis=0) for c in range(k)], axis=1)
    deviations = sweeps - means[:, columns].T  # (n, time)
    # J^T W (y_k - mean) for each sweep, only its own column: (n, p)
    g = np.einsum("tnp,tn->np", (J * w[:, :, None])[:, columns, :], deviations.T)
    s2 = np.asarray(result.noise_std) ** 2
    unit_cov = np.asarray(result.covariance) / np.where(s2 > 0, s2, np.nan)
    u = np.nan_to_num(g @ unit_cov.T) / counts[columns][:, None]  # (n, p)
    parts = np.stack(
        [counts[c] / (counts[c] - 1) * u[columns == c].T @ u[columns == c] for c in range(k)]
    )  # (k, p, p)
    cov = parts.sum(axis=0)
    cov = np.where(np.isnan(unit_cov), np.nan, cov)
    var_parts = np.diagonal(parts, axis1=1, axis2=2)  # (k, p)
    total = np.sum(var_parts, axis=0)
    spread = np.sum(var_parts**2 / (counts - 1)[:, None], axis=0)
    ok = (total > 0) & (spread > 0)
    dof = np.where(ok, total**2 / np.where(ok, spread, 1.0), float(np.min(counts) - 1))
    se_raw = np.sqrt(np.diag(cov))
    q = t_quantile(0.5 + level / 2.0, dof)
    dtype = theta.dtype
    D = np.asarray(jax.jacfwd(physical)(theta))
    stderr = np.sqrt(np.diag(D @ np.nan_to_num(cov) @ D.T))
    stderr = np.where(np.isnan(se_raw), np.nan, stderr)
    a = np.asarray(physical(theta - jnp.asarray(q * se_raw, dtype)))
    b = np.asarray(physical(theta + jnp.asarray(q * se_raw, dtype)))
    return rebuilt(
        result,
        stderr=stderr,
        ci_low=np.minimum(a, b),
        ci_high=np.maximum(a, b),
        covariance=cov,
        dof=dof,
        level=level,
        errors="between sweeps",
    )
