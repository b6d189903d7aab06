"""`simulate(..., progress=True)`: chunked runs equal one scan, bit for bit."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from jsyn import _progress

DT = 0.1


def _assert_identical(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _spikes(n_steps, n, seed=0, dtype=jnp.float64):
    x = np.random.default_rng(seed).random((n_steps, n)) < 0.05
    return jnp.asarray(x, dtype)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"record": "state"},
        {"record": lambda s, g: {"h0": s.h[0], "g": g}, "record_every": 5},
        {"record_every": 5, "progress_chunk": 15},
    ],
)
def test_synapse_in_chunks_equals_one_scan(kw, dtype, capsys):
    # 235 steps: neither the default chunk (3 steps) nor 15 divides it.
    syn = jsyn.DualExpon(tau_rise=1.5, tau_decay=7.0)
    x = _spikes(235, 4, dtype=dtype)
    whole = jsyn.simulate(syn, x, DT, **kw)
    chunked = jsyn.simulate(syn, x, DT, progress=True, **kw)
    _assert_identical(chunked, whole)
    assert "jsyn.simulate" in capsys.readouterr().err  # the bar goes to stderr


@pytest.mark.slow  # 42 s in the default lane (2 workers, 2 cores, load 3-4)
def test_network_in_chunks_equals_one_scan(capsys):
    N, NE = 30, 24
    exc = jsyn.fixed_prob(NE, N, 0.2, key=10, w=1.0)
    inh = jsyn.fixed_prob(N - NE, N, 0.2, key=11, w=3.0)
    kw = dict(pre="cells", post="cells", dt=DT)
    net = jsyn.Network(
        {"cells": (jsyn.LIF(tau=20.0, tau_ref=2.0), N)},
        {
            "e": jsyn.Projection(
                exc, jsyn.Expon(5.0), jsyn.COBA(E=0.0), delay=0.5, pre_slice=(0, NE), **kw
            ),
            "i": jsyn.Projection(
                inh, jsyn.Expon(10.0), jsyn.COBA(E=-80.0), pre_slice=(NE, N), **kw
            ),
        },
    )
    state = net.init_state()
    V0 = jnp.asarray(np.random.default_rng(0).uniform(-60.0, -50.0, N))
    state = eqx.tree_at(lambda s: s.groups["cells"].V, state, V0)
    drive = {"cells": jnp.asarray(np.random.default_rng(1).uniform(8.0, 22.0, (301, N)))}
    for kw in ({}, {"record": ("groups.cells.V", "out.cells"), "record_every": 7}):
        if kw:
            drive = jax.tree.map(lambda x: x[:294], drive)  # 294 = 42 x 7
        whole = jsyn.simulate(net, drive, DT, state=state, **kw)
        chunked = jsyn.simulate(net, drive, DT, state=state, progress=True, progress_chunk=21, **kw)
        _assert_identical(chunked, whole)
        assert np.asarray(whole[1]["out.cells"] if kw else whole[1]["cells"]).any()  # spikes


def test_a_source_without_inputs_runs_in_chunks():
    src = jsyn.SpikeTimes([1.0, 2.5], [0, 1], n=2)
    whole = jsyn.simulate(src, None, DT, n_steps=50)
    _assert_identical(jsyn.simulate(src, None, DT, n_steps=50, progress=True), whole)


def test_one_compiled_chunk_serves_every_full_chunk():
    x = _spikes(100, 3)
    before = _progress._chunk._cache_size()
    jsyn.simulate(jsyn.Expon(tau=3.0), x, DT, progress=True, progress_chunk=10)
    assert _progress._chunk._cache_size() - before == 1


def test_default_chunk_cuts_about_twenty_chunks():
    assert _progress.chunk_length(10_000, 1, None) == 500
    assert _progress.chunk_length(10_001, 1, None) == 501
    assert _progress.chunk_length(50, 5, None) == 5
    assert _progress.chunk_length(1000, 10, None) == 50


def test_progress_is_refused_where_it_cannot_work():
    x = _spikes(20, 2)
    syn = jsyn.Expon()
    msg = "cannot show progress inside jax.jit"
    with pytest.raises(ValueError, match=msg):
        jax.jit(lambda x: jsyn.simulate(syn, x, DT, progress=True)[1])(x)
    with pytest.raises(ValueError, match=msg):
        jax.vmap(lambda t: jsyn.simulate(jsyn.Expon(tau=t), x, DT, progress=True)[1])(
            jnp.asarray([1.0, 2.0])
        )
    with pytest.raises(ValueError, match=msg):
        jax.grad(lambda t: jsyn.simulate(jsyn.Expon(tau=t), x, DT, progress=True)[1].sum())(2.0)
    with pytest.raises(ValueError, match="progress=True or checkpoint, not both"):
        jsyn.simulate(syn, x, DT, progress=True, checkpoint=2)
    with pytest.raises(ValueError, match="multiple of record_every"):
        jsyn.simulate(syn, x, DT, progress=True, record_every=5, progress_chunk=7)
    with pytest.raises(TypeError, match="progress_chunk"):
        jsyn.simulate(syn, x, DT, progress=True, progress_chunk=2.5)


def test_by_default_shows_a_bar_only_where_one_can_run(monkeypatch, capsys):
    """`progress=None` (the default) follows `by_default` (the `jsyn` command line): a bar
    outside traces, after AUTO_DELAY seconds, and the one-scan results; nothing in jit."""
    x = _spikes(40, 2)
    syn = jsyn.Expon()
    whole = jsyn.simulate(syn, x, DT)
    assert "jsyn.simulate" not in capsys.readouterr().err  # off unless asked
    monkeypatch.setattr(_progress, "AUTO_DELAY", 0.0)  # show it even for this short run
    with _progress.by_default():
        _assert_identical(jsyn.simulate(syn, x, DT), whole)
        assert "s of biological time" in capsys.readouterr().err
        traced = jax.jit(lambda syn, x: jsyn.simulate(syn, x, DT)[1])(syn, x)  # no bar, no error
        jsyn.simulate(syn, x, DT, checkpoint=2)  # a gradient tool: no bar
        jsyn.simulate(syn, x, DT, progress=False)
        assert "jsyn.simulate" not in capsys.readouterr().err
        with _progress.by_default(False):
            jsyn.simulate(syn, x, DT)
    assert "jsyn.simulate" not in capsys.readouterr().err
    np.testing.assert_array_equal(traced, whole[1])


# -- what the bar says: biological seconds per wall second, round totals, compiling --------


def test_bar_text_rounds_the_totals():
    """Issue 19: totals printed as `1.4000000000000001/2.0`."""
    assert _progress.describe(14000, 20000, 0.1, 2.5) == (
        "1.4/2 s of biological time, 2.5 s per wall s"
    )
    assert _progress.describe(0, 14000, 0.1, None) == "0/1.4 s of biological time, compiling"


def test_bar_shows_biological_seconds_per_wall_second_after_compiling(monkeypatch):
    """Issue 19: the bar showed wall seconds per biological second, and nothing during the
    first chunk's compilation. The clock is faked: built at 0 s, the first chunk (1 s of
    biological time) ends at 10 s (compiling), the second at 12 s."""
    clock = iter([0.0, 10.0, 12.0])
    monkeypatch.setattr(_progress.time, "perf_counter", lambda: next(clock))
    bar = _progress._BioBar(20000, 0.1, delay=0.0)
    assert bar.bar.desc == "jsyn.simulate: 0/2 s of biological time, compiling"
    bar.advance(jnp.zeros(()), 10000)
    assert bar.bar.desc == "jsyn.simulate: 1/2 s of biological time, 0.1 s per wall s"
    bar.advance(jnp.zeros(()), 10000)  # 1 s of biological time in 2 s: 0.5 per wall s
    assert bar.bar.desc == "jsyn.simulate: 2/2 s of biological time, 0.5 s per wall s"
    bar.bar.close()


def test_a_run_shows_the_round_total_and_the_rate(capsys):
    x = _spikes(14000, 1)
    jsyn.simulate(jsyn.Expon(), x, 0.1, progress=True, progress_chunk=7000)
    err = capsys.readouterr().err
    assert "0/1.4 s of biological time, compiling" in err
    assert "1.4/1.4 s of biological time" in err and "s per wall s" in err
    assert "1.4000000000000001" not in err
