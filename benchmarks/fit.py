"""Fitting benchmark: jsyn.fit vs scipy's curve_fit on the dual-exponential PSC.

jsyn runs in float64 and in float32 (JAX's default dtype); scipy in float64. The
recording: `jsyn.PSC(DualExpon(1.2, 7.5), COBA(g_max=1.8, E=0), V_hold=-70)` driven by
6 spikes, 2000 samples at dt = 0.1 ms, plus white noise of 5 % of the peak (the shipped
example's protocol). Both fitters start from the same guess (tau_rise 1, tau_decay 5,
g_max 1) and fit the same three parameters:

- jsyn: `jsyn.fit` (Levenberg-Marquardt on forward-mode Jacobians through the simulation,
  LogPositive time constants, SoftplusPositive g_max), timed after compilation;
- scipy: `scipy.optimize.curve_fit` (MINPACK Levenberg-Marquardt, finite-difference
  Jacobian) on the closed form, g_max (E - V_hold) sum_k A (e^{-(t-t_k)/tau_d} -
  e^{-(t-t_k)/tau_r}) with A normalising the peak to 1, which equals the simulation on
  the sample grid.

Then 1000 recordings (1000 noise draws) fitted in one `jsyn.fit_many` call vs a Python
loop of curve_fit (3 loops by default). Medians over repeats (the machine may be shared:
see the spread).

Run: `python benchmarks/fit.py [--repeats 30] [--n-many 1000] [--loop-repeats 3]`
(needs scipy: `pip install -e '.[bench]'`).
"""

import argparse
import platform
import resource
import time

import jax
import numpy as np


def closed_form(t, spikes, tau_r, tau_d, g_max, drive):
    t_peak = tau_r * tau_d / (tau_d - tau_r) * np.log(tau_d / tau_r)
    A = 1.0 / (np.exp(-t_peak / tau_d) - np.exp(-t_peak / tau_r))
    s = t[:, None] - spikes[None, :]
    on = s >= 0
    s = np.where(on, s, 0.0)
    g = np.where(on, A * (np.exp(-s / tau_d) - np.exp(-s / tau_r)), 0.0).sum(axis=1)
    return g_max * drive * g


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--many-repeats", type=int, default=5)
    parser.add_argument("--loop-repeats", type=int, default=3)
    parser.add_argument("--n-many", type=int, default=1000)
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from scipy.optimize import curve_fit

    import jsyn

    dt, T = 0.1, 2000
    spike_times = np.array([10.0, 40.0, 55.0, 90.0, 130.0, 160.0])
    truth = np.array([1.2, 7.5, 1.8])
    E, V_hold = 0.0, -70.0
    t = dt * np.arange(T)
    counts = np.zeros((T, 1))
    counts[np.round(spike_times / dt).astype(int), 0] = 1.0

    def psc(tau_r, tau_d, g_max):
        return jsyn.PSC(jsyn.DualExpon(tau_r, tau_d), jsyn.COBA(g_max=g_max, E=E), V_hold=V_hold)

    _, clean = jsyn.simulate(psc(*truth), jnp.asarray(counts), dt)
    clean = np.asarray(clean, np.float64)
    np.testing.assert_allclose(
        closed_form(t, spike_times, *truth, E - V_hold), clean[:, 0], rtol=1e-9, atol=1e-9
    )
    sigma = 0.05 * np.abs(clean).max()
    rng = np.random.default_rng(0)
    targets = clean[None] + sigma * rng.normal(size=(args.n_many, T, 1))
    guess = (1.0, 5.0, 1.0)
    init = psc(jsyn.LogPositive(guess[0]), jsyn.LogPositive(guess[1]), jsyn.SoftplusPositive(1.0))
    params = "tau_rise,tau_decay,g_max"

    def model(t, tau_r, tau_d, g_max):
        return closed_form(t, spike_times, tau_r, tau_d, g_max, E - V_hold)

    def scipy_one(y):
        return curve_fit(model, t, y[:, 0], p0=guess)[0]

    def timed(f, *a):
        t0 = time.perf_counter()
        out = f(*a)
        return time.perf_counter() - t0, out

    def stats(ts):
        ts = 1e3 * np.asarray(ts)
        return f"{np.median(ts):9.2f} {ts.min():8.2f} {ts.max():8.2f}"

    print(
        f"device: {jax.devices()[0].device_kind} ({platform.machine()}), "
        f"{len(jax.devices())} device(s); jax {jax.__version__}"
    )
    print(f"recording: {T} samples, dt {dt} ms, 6 spikes, noise sigma {sigma:.2f} pA (5 % of peak)")
    st = [timed(scipy_one, targets[i % 10])[0] for i in range(args.repeats)]
    est_s = scipy_one(targets[0])
    err_s = np.abs(est_s / truth - 1) * 100
    print(
        f"\nsingle fit, {args.repeats} repeats (ms)   median      min      max   "
        "error % tau_r, tau_d, g_max"
    )
    print(
        f"curve_fit (float64)              {stats(st)}   "
        f"{err_s[0]:.2f}, {err_s[1]:.2f}, {err_s[2]:.2f}"
    )
    single = {}
    for dtype in (jnp.float64, jnp.float32):
        spikes = jnp.asarray(counts, dtype)

        def jsyn_one(y, spikes=spikes, dtype=dtype):
            res = jsyn.fit(init, spikes, jnp.asarray(y, dtype), dt, params=params)
            res.loss.block_until_ready()
            return res

        compile_s, res = timed(jsyn_one, targets[0])
        jt = [timed(jsyn_one, targets[i % 10])[0] for i in range(args.repeats)]
        single[dtype] = jt
        est = np.array([float(res.value[n]) for n in res.names])
        err = np.abs(est / truth - 1) * 100
        name = np.dtype(dtype).name
        print(
            f"jsyn.fit ({name}, {int(res.n_steps)} steps)     {stats(jt)}   "
            f"{err[0]:.2f}, {err[1]:.2f}, {err[2]:.2f}   (compile {compile_s:.1f} s; "
            f"vs curve_fit {np.max(np.abs(est / est_s - 1)):.1e} relative)"
        )
        print(f"  ratio curve_fit / jsyn.fit (medians): {np.median(st) / np.median(jt):.2f}")

    n = args.n_many

    def loop():
        return np.array([scipy_one(y) for y in targets])

    loops = [timed(loop) for _ in range(args.loop_repeats)]
    loop_est = loops[0][1]
    loop_times = [t for t, _ in loops]
    loop_t = float(np.median(loop_times))
    print(
        f"\n{n} recordings x {T} samples (time-to-fit after compile; {args.many_repeats} repeats "
        f"of fit_many, {args.loop_repeats} of the loop)"
    )
    print(
        f"curve_fit, Python loop (float64): median {loop_t:.3f} s "
        f"(min {min(loop_times):.3f}, max {max(loop_times):.3f})"
    )
    for dtype in (jnp.float64, jnp.float32):
        spikes = jnp.asarray(counts, dtype)
        ys = jnp.asarray(targets, dtype)

        def jsyn_many(spikes=spikes, ys=ys):
            r = jsyn.fit_many(init, spikes, ys, dt, params=params, shared_inputs=True)
            r.loss.block_until_ready()
            return r

        compile_many, many = timed(jsyn_many)
        many_t = [timed(jsyn_many)[0] for _ in range(args.many_repeats)]
        est_many = np.stack([np.asarray(many.value[k]) for k in many.names], axis=1)
        agree = np.max(np.abs(est_many / loop_est - 1))
        inside = [
            np.mean((np.asarray(many.ci_low[k]) < v) & (v < np.asarray(many.ci_high[k])))
            for k, v in zip(many.names, truth)
        ]
        name = np.dtype(dtype).name
        print(
            f"jsyn.fit_many ({name}), one call: median {np.median(many_t):.3f} s "
            f"(min {min(many_t):.3f}, max {max(many_t):.3f}; first call {compile_many:.1f} s); "
            f"loop / fit_many = {loop_t / np.median(many_t):.1f}x"
        )
        print(
            f"  converged {int(np.sum(many.converged))}/{n}, steps <= {int(np.max(many.n_steps))}, "
            f"max relative difference from curve_fit {agree:.1e}, "
            f"95% interval coverage {np.round(inside, 3).tolist()}"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"\npeak resident memory of this process: {rss:.2f} GB")


if __name__ == "__main__":
    main()
