"""jsyn.save / jsyn.load: exact round trips (models, states, fit results, PRNG keys, Python
numbers, None, static fields, float32 and float64), a run continued in a fresh process equal
to the uninterrupted run bit for bit, and clear refusals of mismatched, corrupt, truncated and
pickled files (no code from a file is ever run)."""

import dataclasses
import hashlib
import io
import json
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from jsyn import _save

DT = 0.1
N_FIRST, N_REST = 150, 150
_rng = np.random.default_rng(0)
W_IN = jnp.asarray(_rng.uniform(0, 1, (20, 8)) * (_rng.uniform(size=(20, 8)) < 0.5))
W_REC = jnp.asarray(_rng.uniform(0, 0.5, (8, 8)) * (_rng.uniform(size=(8, 8)) < 0.4))


def make_network(rate=100.0, w_in=1.0):
    """Poisson inputs onto LIF cells through STP and a fractional delay (summed Expon
    kinetics), and recurrent AMPA synapses (per-synapse kinetics) with a delay."""
    # Poisson rates in Hz
    return jsyn.Network(
        {"in": jsyn.Poisson(jnp.full(20, rate)), "E": (jsyn.LIF(tau_ref=2.0), 8)},
        {
            "in": jsyn.Projection(
                jsyn.all_to_all(20, 8, w_in * W_IN),
                jsyn.Expon(tau=5.0),
                jsyn.COBA(g_max=2.0, E=0.0),
                stp=jsyn.STP(U=0.2, tau_f=50.0, tau_d=100.0),
                delay=0.75,
                dt=DT,
                pre="in",
                post="E",
            ),
            "rec": jsyn.Projection(
                jsyn.all_to_all(8, 8, W_REC),
                jsyn.AMPA(),
                jsyn.COBA(g_max=1.0, E=0.0),
                delay=1.3,
                dt=DT,
                pre="E",
                post="E",
            ),
        },
    )


def record(state, spikes):
    return {"spikes": spikes, "V": state.groups["E"].V, "g": state.projections["rec"].g}


def assert_identical(a, b):
    """Same structure, types, dtypes, weak types and bits (keys compared by their data)."""
    la, ta = jax.tree.flatten(a, is_leaf=lambda x: x is None)
    lb, tb = jax.tree.flatten(b, is_leaf=lambda x: x is None)
    assert ta == tb
    for x, y in zip(la, lb):
        assert type(x) is type(y)
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            assert x.dtype == y.dtype
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        if isinstance(x, jax.Array | np.ndarray | np.generic):
            assert x.dtype == y.dtype and x.shape == y.shape
            assert getattr(x, "weak_type", None) == getattr(y, "weak_type", None)
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y), strict=True)
        else:
            assert x is y or x == y


# -- round trips -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs():
    """The network, its whole run, and the first part of it (final states and records)."""
    net = make_network()
    key = jax.random.key(0)
    whole = jsyn.simulate(net, None, DT, n_steps=N_FIRST + N_REST, key=key, record=record)
    return net, whole, jsyn.simulate(net, None, DT, n_steps=N_FIRST, key=key, record=record)


@pytest.mark.slow  # 9 s in the default lane (2 workers, 2 cores)
def test_network_model_and_state_round_trip(tmp_path, runs):
    net, _, (state, _) = runs
    like = (make_network(rate=3.0, w_in=2.0), make_network().init_state(key=jax.random.key(9)))
    back = jsyn.load(jsyn.save(tmp_path / "run.jsyn", (net, state)), like)
    assert_identical(back, (net, state))
    # weak typing survives (a parameter given as a Python number), typed keys are rewrapped
    assert back[0].groups["E"].tau.weak_type
    assert back[1].groups["in"].key.dtype == jax.random.key(0).dtype


def test_eqx_alone_cannot_save_typed_keys(tmp_path):
    """The reason for the key handling: equinox refuses typed PRNG keys."""
    state = jsyn.Poisson(jnp.ones(3)).init_state(key=jax.random.key(0))
    with pytest.raises(RuntimeError, match="key"):
        eqx.tree_serialise_leaves(tmp_path / "x.eqx", state)
    assert_identical(jsyn.load(jsyn.save(tmp_path / "x", state), state), state)


def test_python_numbers_none_numpy_batched_and_rbg_keys(tmp_path):
    tree = {
        "float": 0.1 + 0.2,
        "int": -(2**62),
        "bool": True,
        "complex": 1.5 - 2.25j,
        "none": None,
        "numpy": np.arange(6, dtype=np.int16).reshape(2, 3),
        "np_scalar": np.float32(1 / 3),
        "keys": jax.random.split(jax.random.key(3), 4),
        "rbg": jax.random.key(7, impl="rbg"),
        "function": jax.nn.relu,  # not stored: taken from like
        "int32": jnp.arange(3, dtype=jnp.int32),
    }
    like = {
        **tree,
        "float": 0.0,
        "int": 0,
        "bool": False,
        "complex": 0j,
        "numpy": np.zeros((2, 3), np.int16),
        "np_scalar": np.float32(0),
        "keys": jax.random.split(jax.random.key(0), 4),
        "rbg": jax.random.key(0, impl="rbg"),
        "int32": jnp.zeros(3, jnp.int32),
    }
    assert_identical(jsyn.load(jsyn.save(tmp_path / "t.jsyn", tree), like), tree)


def test_leaves_that_cannot_be_stored(tmp_path):
    path = jsyn.save(tmp_path / "f.jsyn", {"f": jax.nn.relu})
    with pytest.raises(ValueError, match=r"the file has \['f'\]: jax\..*custom_jvp \(not stored"):
        jsyn.load(path, {"f": "relu"})
    with pytest.raises(TypeError, match=f"stores Python ints as int64; {2**70} does not fit"):
        jsyn.save(tmp_path / "i.jsyn", {"i": 2**70})
    like = eqx.filter_eval_shape(jsyn.Expon().init_state, 3)
    with pytest.raises(TypeError, match=r"concrete arrays \(got a jax.ShapeDtypeStruct at \.g\)"):
        jsyn.load(jsyn.save(tmp_path / "e.jsyn", jsyn.Expon().init_state(3)), like)


def test_float32_without_x64(tmp_path):
    with jax.enable_x64(False):
        model = jsyn.DualExpon(tau_rise=0.1, tau_decay=7.3)
        state, _ = jsyn.simulate(model, jnp.ones((10, 3)), DT)
        tree = (model, state, 0.1)
        like = (jsyn.DualExpon(1.0, 2.0), model.init_state(3), 0.0)
        back = jsyn.load(jsyn.save(tmp_path / "f32.jsyn", tree), like)
        assert back[1].g.dtype == jnp.float32 and back[0].tau_decay.weak_type
        assert back[2] == 0.1  # a Python float is stored as float64: exact
    assert_identical(back, tree)


def test_float64_file_into_float32_like_names_the_leaf(tmp_path):
    path = jsyn.save(tmp_path / "f64.jsyn", jsyn.Expon(tau=5.0))
    with jax.enable_x64(False):
        like = jsyn.Expon(tau=5.0)
    with pytest.raises(
        ValueError,
        match=r"the file has \.tau: jax array float64 of shape \(\), like has \.tau: jax "
        r"array float32 of shape \(\) \(the file holds float64: enable x64",
    ):
        jsyn.load(path, like)


@pytest.mark.slow  # 5 s in the default lane (2 workers, 2 cores)
def test_fit_result_round_trip(tmp_path):
    dt = 0.1
    spikes = jnp.zeros((200, 1)).at[20].set(1.0)
    psc = lambda tau, g: jsyn.PSC(jsyn.Expon(tau), jsyn.COBA(g_max=g), V_hold=-70.0)  # noqa: E731
    target = jsyn.simulate(psc(4.0, 2.0), spikes, dt)[1]
    res = jsyn.fit(
        psc(jsyn.LogPositive(2.0), jsyn.SoftplusPositive(1.0)),
        spikes,
        target,
        dt,
        params="tau,g_max",
        max_steps=20,
    )
    like = jsyn.fit(
        psc(jsyn.LogPositive(3.0), jsyn.SoftplusPositive(1.5)),
        spikes,
        target,
        dt,
        params="tau,g_max",
        max_steps=20,
    )
    assert_identical(jsyn.load(jsyn.save(tmp_path / "fit.jsyn", res), like), res)
    other = dataclasses.replace(like, names=("output.g_max", "synapse.tau"))
    with pytest.raises(
        ValueError,
        match=r"the file has \.names: static field = \('synapse.tau', 'output.g_max'\), like "
        r"has \.names: static field = \('output.g_max', 'synapse.tau'\)",
    ):
        jsyn.load(tmp_path / "fit.jsyn", other)


# -- a run continued in a fresh process ------------------------------------------------------

CONTINUE = """
import sys
import jax
jax.config.update("jax_enable_x64", True)
import jsyn
from test_save import DT, N_REST, make_network, record
like_net = make_network(rate=3.0, w_in=2.0)  # other values, the same structure
like = (like_net, like_net.init_state(key=jax.random.key(123)))
net, state = jsyn.load(sys.argv[1], like)
jsyn.save(sys.argv[2], jsyn.simulate(net, None, DT, n_steps=N_REST, state=state, record=record))
"""


@pytest.mark.slow  # 5-11 s; CI runs the slow lane too
def test_run_continued_in_a_fresh_process_equals_the_whole_run(tmp_path, runs):
    net, whole, (state, first) = runs
    jsyn.save(tmp_path / "stopped.jsyn", (net, state))
    env = dict(os.environ)
    paths = [str(Path(jsyn.__file__).parents[1]), str(Path(__file__).parent)]
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    subprocess.run(
        [sys.executable, "-c", CONTINUE, tmp_path / "stopped.jsyn", tmp_path / "rest.jsyn"],
        env=env,
        check=True,
    )
    final, rest = jsyn.load(tmp_path / "rest.jsyn", (state, first))
    assert_identical(final, whole[0])
    joined = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), first, rest)
    assert_identical(joined, whole[1])
    # the run is not trivial: inputs and cells spike in both halves
    for half in (first, rest):
        assert half["spikes"]["in"].sum() > 10 and half["spikes"]["E"].sum() > 2
        assert half["g"].max() > 0


# -- refusals --------------------------------------------------------------------------------


F64 = "jax array float64 of shape"


@pytest.mark.parametrize(
    "like, match",
    [
        (
            (jsyn.Expon(tau=jnp.ones(3)), jsyn.Expon().init_state(4)),
            rf"the file has \[0\]\.tau: {F64} \(\), like has \[0\]\.tau: {F64} \(3,\)",
        ),
        (
            (jsyn.Expon(tau=5.0), jsyn.Expon().init_state(5)),
            rf"the file has \[1\]\.g: {F64} \(4,\), like has \[1\]\.g: {F64} \(5,\)",
        ),
        (
            (jsyn.Expon(tau=5.0), jsyn.Expon().init_state(4, dtype=jnp.float32)),
            rf"the file has \[1\]\.g: {F64} \(4,\), like has \[1\]\.g: jax array float32 "
            r"of shape \(4,\)",
        ),
        ((jsyn.Expon(tau=5.0),), rf"the file has \[1\]\.g: {F64} \(4,\), like has nothing"),
        (
            (jsyn.AMPA(), jsyn.Expon().init_state(4)),
            rf"the file has \[0\]\.tau: {F64} \(\), like has \[0\]\.alpha: {F64} \(\)",
        ),
        (
            (jsyn.Expon(tau=5.0), jsyn.DualExpon().init_state(4)),
            rf"the file has \[1\]\.g: {F64} \(4,\), like has \[1\]\.h: {F64} \(4,\)",
        ),
    ],
)
def test_mismatched_like_names_the_first_differing_leaf(tmp_path, like, match):
    path = jsyn.save(tmp_path / "e.jsyn", (jsyn.Expon(tau=5.0), jsyn.Expon().init_state(4)))
    with pytest.raises(ValueError, match="like does not match .*; the first difference: " + match):
        jsyn.load(path, like)


class OtherState(eqx.Module):
    g: jax.Array


def test_same_leaves_in_another_class_is_a_structure_mismatch(tmp_path):
    path = jsyn.save(tmp_path / "s.jsyn", jsyn.Expon().init_state(2))
    like = OtherState(jnp.zeros(2))  # the same leaf .g
    with pytest.raises(ValueError, match=r"tree structure differs at .*ExponState.* in the file"):
        jsyn.load(path, like)


def test_static_field_mismatch(tmp_path):
    path = jsyn.save(tmp_path / "d.jsyn", jsyn.Delay(0.5, dt=DT, max_delay=1.0))
    with pytest.raises(ValueError, match=r"\.max_delay: static field = 1\.0, like has"):
        jsyn.load(path, jsyn.Delay(0.5, dt=DT, max_delay=2.0))


class WithFunction(eqx.Module):
    x: jax.Array
    f: object = eqx.field(static=True)


def test_static_functions_match_by_name_not_address(tmp_path):
    make = lambda: lambda v: v  # noqa: E731  (a new function object on every call)
    tree = WithFunction(jnp.ones(2), make())
    back = jsyn.load(jsyn.save(tmp_path / "f.jsyn", tree), WithFunction(jnp.zeros(2), make()))
    np.testing.assert_array_equal(back.x, 1.0)
    with pytest.raises(
        ValueError,
        match=r"static field = <function .*<lambda>>, like has .*"
        r"static field = <built-in function abs>",
    ):
        jsyn.load(tmp_path / "f.jsyn", WithFunction(jnp.zeros(2), abs))


def _saved(tmp_path):
    tree = {"a": jnp.arange(5.0), "k": jax.random.key(1)}
    return tree, jsyn.save(tmp_path / "ok.jsyn", tree)


def test_truncated_files(tmp_path):
    tree, path = _saved(tmp_path)
    data = path.read_bytes()
    for n in (1, 8, 12, 30, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:n])
        with pytest.raises(ValueError, match="is truncated"):
            jsyn.load(path, tree)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        jsyn.load(path, tree)


def test_corrupt_files(tmp_path):
    tree, path = _saved(tmp_path)
    data = path.read_bytes()
    for i in (30, len(data) - 100, len(data) - 5):  # header, payload, checksum
        path.write_bytes(data[:i] + bytes([data[i] ^ 1]) + data[i + 1 :])
        with pytest.raises(ValueError, match="is corrupt"):
            jsyn.load(path, tree)
    path.write_bytes(data + b"\0")
    with pytest.raises(ValueError, match=r"is corrupt \(extra bytes at the end\)"):
        jsyn.load(path, tree)
    path.write_bytes(data[:9] + struct.pack("<I", 7) + data[13:])
    with pytest.raises(ValueError, match="has file format version 7; this jsyn .* reads version 1"):
        jsyn.load(path, tree)
    path.write_text("t,I\n0,1\n")
    with pytest.raises(ValueError, match="is not a jsyn save file"):
        jsyn.load(path, tree)
    with pytest.raises(ValueError, match="is not a file"):
        jsyn.load(tmp_path / "missing.jsyn", tree)


def _npy(x) -> bytes:
    f = io.BytesIO()
    np.save(f, x)  # allow_pickle=True by default: object arrays are pickled
    return f.getvalue()


class Payload:
    """Unpickling this object creates the file `marker` (a stand-in for malicious code)."""

    def __init__(self, marker):
        self.marker = Path(marker)

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _object_npy(marker) -> bytes:
    return _npy(np.array([Payload(marker)], dtype=object))


def test_payloads_are_malicious(tmp_path):
    """The payloads below do run code when unpickled (so refusing them is what protects)."""
    pickle.loads(pickle.dumps(Payload(tmp_path / "m1")))
    np.load(io.BytesIO(_object_npy(tmp_path / "m2")), allow_pickle=True)
    assert (tmp_path / "m1").exists() and (tmp_path / "m2").exists()


def test_a_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "state.jsyn"
    path.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(ValueError, match="is a Python pickle, not a jsyn save file; jsyn never"):
        jsyn.load(path, {"a": jnp.zeros(3)})
    path.write_bytes(_object_npy(marker))
    with pytest.raises(ValueError, match=r"is a NumPy \.npy file.*holds pickled Python objects"):
        jsyn.load(path, {"a": jnp.zeros(3)})
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload, match",
    [
        ("pickle", "holds a pickled object array; jsyn never unpickles"),
        (_npy(np.zeros(2)), r"is corrupt \(.*has changed shape from \(1,\) .* to \(2,\)"),
        (_npy(np.zeros(1))[:-3], r"is corrupt at leaf \['a'\] \(.*"),
    ],
)
def test_a_crafted_payload_inside_a_valid_file_is_refused(tmp_path, payload, match):
    """A correct header and checksum around a payload that does not match it."""
    marker = tmp_path / "marker"
    tree, path = {"a": jnp.zeros(1)}, tmp_path / "crafted.jsyn"
    jsyn.save(path, tree)
    data = path.read_bytes()
    _, version, n = _save._PREFIX.unpack_from(data)
    header = json.loads(data[_save._PREFIX.size : _save._PREFIX.size + n])
    payload = _object_npy(marker) if payload == "pickle" else payload
    header["payload_bytes"] = len(payload)
    header = json.dumps(header).encode()
    body = _save._PREFIX.pack(_save.MAGIC, version, len(header)) + header + payload
    path.write_bytes(body + hashlib.sha256(body).digest())
    with pytest.raises(ValueError, match=match):
        jsyn.load(path, tree)
    assert not marker.exists()


def test_save_replaces_an_existing_file(tmp_path):
    path = jsyn.save(tmp_path / "x.jsyn", {"a": jnp.zeros(2)})
    jsyn.save(path, {"a": jnp.ones(2)})
    np.testing.assert_array_equal(jsyn.load(path, {"a": jnp.zeros(2)})["a"], 1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.jsyn"]


def test_info_kept_in_the_header_and_checked_by_the_checksum(tmp_path):
    info = {"step": 3, "chains": ["ab", ""], "dt": "0.1"}
    path = jsyn.save(tmp_path / "a.jsyn", jsyn.Expon(tau=2.0), info=info)
    assert _save.load_info(path) == info
    assert jsyn.load(path, jsyn.Expon()).tau == 2.0
    assert _save.load_info(jsyn.save(tmp_path / "b.jsyn", jsyn.Expon())) == {}
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"step": 3', b'"step": 4'))
    with pytest.raises(ValueError, match="SHA-256 checksum does not match"):
        _save.load_info(path)
