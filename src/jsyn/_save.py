r"""Save and load pytrees (models, states, fit results) without pickle.

`save(path, tree)` writes the arrays of `tree`; `load(path, like)` reads them back into a
tree shaped like `like` (built the same way as the saved tree: same classes, shapes, dtypes
and static settings). The values come from the file; the tree structure, the static fields
(checked to equal the file's) and any leaf that is neither an array nor a number (a
function, a string; checked to be of the same type) come from `like`.

**What a leaf becomes.** JAX and NumPy arrays keep their dtype and shape (float64 under
x64, float32 without); a JAX array keeps the weak typing of `like`'s leaf (a parameter given
as a Python number), so mixed-precision arithmetic promotes as before. Typed PRNG keys
(`jax.random.key(...)`) are stored as `jax.random.key_data` and rewrapped with their
implementation. Python `bool`/`int`/`float`/`complex` leaves come back as the same Python
type and value (a float is stored as float64, so it is exact with or without x64). `None`
is part of the structure.

**The file**, in this order: 9 magic bytes `\x89JSYN\r\n\x1a\n`; the format version
(uint32, little-endian); the header length (uint64); the header, UTF-8 JSON (the jsyn
version that wrote it, the tree's structure as `repr(treedef)`, and one
`[path, description]` entry per leaf, `None` and static field, in flattening order, plus the
payload size); the payload, the leaves as NumPy `.npy` blocks written by
`equinox.tree_serialise_leaves`; the SHA-256 of everything before it (32 bytes).

**Safety.** Loading reads JSON and `.npy` blocks with `allow_pickle=False`, so it never runs
code from the file: a pickle, or an object array inside a file, is refused with a
`ValueError`. So is a truncated or corrupt file (wrong length or checksum), and a `like`
that does not match the file (the message names the first differing leaf and both
descriptions).
"""

import dataclasses
import hashlib
import io
import itertools
import json
import os
import re
import struct
import time
from importlib.metadata import version
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

MAGIC = b"\x89JSYN\r\n\x1a\n"
VERSION = 1
_PREFIX = struct.Struct(f"<{len(MAGIC)}sIQ")  # magic, format version, header length
_DIGEST = 32  # SHA-256
_PYTHON = {bool: np.bool_, int: np.int64, float: np.float64, complex: np.complex128}
_NO_PICKLE = "jsyn never unpickles (unpickling can run any code)"


def _repr(x) -> str:
    """`repr(x)` without memory addresses (`<function f at 0x...>`), which change from one
    process to the next."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(x))


def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _describe(where: str, x) -> str:
    """One line naming what a leaf is; two trees match when every line matches."""
    if x is None:
        return "None"
    if _is_key(x):
        return f"PRNG key array ({jax.random.key_impl(x)}) of shape {x.shape}"
    if isinstance(x, jax.Array):
        return f"jax array {x.dtype} of shape {x.shape}"
    if isinstance(x, np.ndarray):
        return f"numpy array {x.dtype} of shape {x.shape}"
    if isinstance(x, np.generic):
        return f"numpy scalar {x.dtype}"
    if type(x) in _PYTHON:
        return f"Python {type(x).__name__}"
    if isinstance(x, jax.ShapeDtypeStruct):
        raise TypeError(
            f"jsyn.save and jsyn.load need concrete arrays (got a jax.ShapeDtypeStruct at "
            f"{where or '<root>'}); build the tree with the model's constructor or init_state."
        )
    return f"{type(x).__module__}.{type(x).__qualname__} (not stored; taken from like)"


def describe_leaves(tree, path: str = "") -> list[tuple[str, str]]:
    """`(path, description)` of every leaf, `None` and static field of `tree`, in
    flattening order."""
    found = []
    if isinstance(tree, eqx.Module):
        found += [
            (f"{path}.{f.name}", f"static field = {_repr(getattr(tree, f.name))}")
            for f in dataclasses.fields(tree)
            if f.metadata.get("static", False)
        ]

    def stop(x):
        return x is None or (x is not tree and isinstance(x, eqx.Module))

    for keys, x in jax.tree_util.tree_flatten_with_path(tree, is_leaf=stop)[0]:
        where = path + jax.tree_util.keystr(keys)
        if isinstance(x, eqx.Module):
            found += describe_leaves(x, where)
        else:
            found.append((where, _describe(where, x)))
    return found


def stored_array(x) -> np.ndarray | None:
    """The array saved for a leaf, or `None` for leaves that are not stored."""
    if _is_key(x):
        return np.asarray(jax.random.key_data(x))
    if isinstance(x, jax.Array | np.ndarray | np.generic):
        return np.asarray(x)
    if type(x) in _PYTHON:
        try:
            return np.asarray(_PYTHON[type(x)](x))
        except OverflowError:
            raise TypeError(
                f"jsyn.save stores Python ints as int64; {x} does not fit. Store it as a "
                "float or split it."
            ) from None
    return None


def _write_npy(f, x: np.ndarray) -> None:
    np.save(f, x, allow_pickle=False)


def _read_npy(f, like: np.ndarray) -> np.ndarray:
    return np.load(f, allow_pickle=False)


def _flatten(tree):
    return jax.tree_util.tree_flatten(tree, is_leaf=lambda x: x is None)


def save(path, tree, *, info: dict | None = None) -> Path:
    """Write the arrays of `tree` (a model, a state, a `jsyn.FitResult`, or any pytree of
    them) to `path`; read them back with `jsyn.load(path, like)`.

    The file holds a header describing the tree, the arrays as NumPy `.npy` blocks (no
    pickle) and a SHA-256 checksum. Arrays keep their dtype, typed PRNG keys are stored as
    their key data, Python numbers as float64/int64/bool/complex128; leaves that are
    neither arrays nor numbers (functions, strings) are not stored. The file is written
    next to `path` under a temporary name, flushed to the disk (`os.fsync`) and then
    renamed over `path` (`os.replace`, atomic), so a save interrupted at any moment, even
    by a power cut or `SIGKILL`, leaves any earlier file at `path` whole.

    **Arguments:** `path`, the file; `tree`, what to store; `info`, an optional dict of
    JSON values kept in the header (checked by the checksum, read back with `load_info`
    without `like`; checkpoints of `jsyn.simulate` keep what identifies their run there).

    **Returns:** the path written.
    """
    path = Path(path)
    leaves, treedef = _flatten(tree)
    payload = io.BytesIO()
    eqx.tree_serialise_leaves(
        payload, treedef.unflatten([stored_array(x) for x in leaves]), filter_spec=_write_npy
    )
    payload = payload.getvalue()
    header = json.dumps(
        {
            "format": "jsyn.save",
            "jsyn": version("jsyn"),
            "treedef": _repr(treedef),
            "entries": describe_leaves(tree),
            "payload_bytes": len(payload),
            **({} if info is None else {"info": info}),
        }
    ).encode()
    body = _PREFIX.pack(MAGIC, VERSION, len(header)) + header + payload
    _write_durably(path, body + hashlib.sha256(body).digest())
    return path


_PAUSE = "JSYN_TEST_PAUSE_IN_SAVE"
"""A test hook: `"<n>:<marker>"` makes the `n`-th save of the process stop half way
through writing its temporary file, create the file `marker` and sleep, so that a test
can kill the process in the middle of a write."""
_saves = itertools.count(1)


def _write_durably(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, fsync it, rename it over `path`
    (atomic) and fsync the directory, so that `path` holds either its old bytes or `data`
    whatever moment the process dies at."""
    tmp = path.with_name(path.name + ".tmp")
    pause = os.environ.get(_PAUSE, "").partition(":")
    half = len(data) // 2 if pause[2] and next(_saves) == int(pause[0]) else None
    try:
        with open(tmp, "wb") as f:
            f.write(data[:half])
            if half is not None:
                f.flush()
                Path(pause[2]).touch()
                time.sleep(600)
                f.write(data[half:])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (POSIX; Windows has no directory handles)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _not_jsyn(path: Path, data: bytes) -> ValueError:
    """The error for a file that does not start with jsyn's magic bytes: say what it is."""
    if not data:
        what = "is empty"
    elif data[:1] == b"\x80":
        what = f"is a Python pickle, not a jsyn save file; {_NO_PICKLE}"
    elif data[:6] == b"\x93NUMPY":
        what = "is a NumPy .npy file, not a jsyn save file"
        try:
            f = io.BytesIO(data)
            fmt = np.lib.format
            major, _ = fmt.read_magic(f)
            read = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
            if read(f)[2].hasobject:  # the header is parsed with ast.literal_eval, not run
                what += f" (it holds pickled Python objects; {_NO_PICKLE})"
        except ValueError:
            pass
    elif data[:4] == b"PK\x03\x04":
        what = "is a zip archive (such as .npz), not a jsyn save file"
    else:
        what = f"is not a jsyn save file (it starts with {data[:8]!r}, not {MAGIC!r})"
    return ValueError(f"jsyn.load: {path} {what}; write it with jsyn.save.")


def _read(path: Path) -> tuple[dict, bytes]:
    """The header and payload of a jsyn save file, checked for truncation and corruption."""
    if not path.is_file():
        raise ValueError(f"jsyn.load: {path} is not a file; check the path.")
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        if data and MAGIC.startswith(data):
            raise ValueError(f"jsyn.load: {path} is truncated ({len(data)} bytes).")
        raise _not_jsyn(path, data)
    if len(data) < _PREFIX.size:
        raise ValueError(f"jsyn.load: {path} is truncated ({len(data)} bytes).")
    _, file_version, n_header = _PREFIX.unpack_from(data)
    if file_version != VERSION:
        raise ValueError(
            f"jsyn.load: {path} has file format version {file_version}; this jsyn "
            f"{version('jsyn')} reads version {VERSION}. Load it with the jsyn that wrote it."
        )
    start = _PREFIX.size + n_header
    if len(data) < start:
        raise ValueError(
            f"jsyn.load: {path} is truncated ({len(data)} bytes, its header alone needs "
            f"{start}); save it again."
        )
    try:
        header = json.loads(data[_PREFIX.size : start])
        end = start + int(header["payload_bytes"])
        header["entries"] = [(str(where), str(what)) for where, what in header["entries"]]
        header["treedef"] = str(header["treedef"])
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"jsyn.load: {path} is corrupt (unreadable header).") from None
    if len(data) != end + _DIGEST:
        how = "truncated" if len(data) < end + _DIGEST else "corrupt (extra bytes at the end)"
        raise ValueError(
            f"jsyn.load: {path} is {how}: {len(data)} bytes, its header says "
            f"{end + _DIGEST}; save it again."
        )
    if hashlib.sha256(data[:end]).digest() != data[end:]:
        raise ValueError(
            f"jsyn.load: {path} is corrupt (its SHA-256 checksum does not match); save it again."
        )
    return header, data[start:end]


def _check_like(path: Path, header: dict, like) -> None:
    """Raise if `like` does not describe the tree saved in the file."""
    for theirs, ours in itertools.zip_longest(header["entries"], describe_leaves(like)):
        if theirs != ours:
            file_has, like_has = (
                "nothing" if e is None else f"{e[0] or '<root>'}: {e[1]}" for e in (theirs, ours)
            )
            hint = ""
            if "float64" in file_has and "float32" in like_has:
                hint = " (the file holds float64: enable x64 before building like)"
            raise ValueError(
                f"jsyn.load: like does not match {path}; the first difference: the file has "
                f"{file_has}, like has {like_has}{hint}. Build like exactly as the saved "
                "tree was built (same classes, shapes, dtypes and static settings)."
            )
    treedef = _repr(_flatten(like)[1])
    if header["treedef"] != treedef:
        pairs = enumerate(zip(header["treedef"], treedef))
        i = next((i for i, (p, q) in pairs if p != q), min(len(treedef), len(header["treedef"])))
        raise ValueError(
            f"jsyn.load: like does not match {path}; the tree structure differs at "
            f"...{header['treedef'][max(0, i - 40) : i + 40]}... in the file, "
            f"...{treedef[max(0, i - 40) : i + 40]}... in like. Build like exactly as the "
            "saved tree was built."
        )


def _restore(like, value: np.ndarray | None):
    """The loaded leaf, of the kind of `like`'s leaf, from the array read from the file."""
    if _is_key(like):
        return jax.random.wrap_key_data(jnp.asarray(value), impl=jax.random.key_impl(like))
    if isinstance(like, jax.Array):
        # `.at[].set` into `like`'s zeros keeps its weak type (a Python-number parameter).
        return jnp.zeros_like(like).at[...].set(value) if like.weak_type else jnp.asarray(value)
    if isinstance(like, np.generic):
        return value[()]
    if isinstance(like, np.ndarray):
        return value
    if type(like) in _PYTHON:
        return type(like)(value.item())
    return like


def load_info(path) -> dict:
    """The `info` dict that `save(path, tree, info=...)` kept in the file's header (empty
    when none), after checking the file whole (magic bytes, length, SHA-256 checksum).

    **Raises:** `ValueError` as `load` does for a file that is not a jsyn save file or is
    truncated or corrupt."""
    header, _ = _read(Path(path))
    info = header.get("info", {})
    if not isinstance(info, dict):
        raise ValueError(f"jsyn.load: {path} is corrupt (its header info is not a dict).")
    return info


def load(path, like):
    """Read a file written by `jsyn.save` into a tree shaped like `like`.

    **Arguments:**
    - `path`: the file.
    - `like`: a tree built exactly as the saved one was (same classes, shapes, dtypes and
      static settings), for example the model built with the same arguments and its
      `init_state(...)`; its values are replaced by the file's. Leaves that are not stored
      (neither arrays nor numbers) are taken from it.

    **Returns:** the saved tree.

    **Raises:** `ValueError` for a file that is not a jsyn save file (a pickle is refused
    without being unpickled), is truncated or corrupt, or does not match `like` (the
    message names the first differing leaf and what the file and `like` hold there).
    """
    path = Path(path)
    header, payload = _read(path)
    _check_like(path, header, like)
    leaves, treedef = _flatten(like)
    placeholders = [
        None if v is None else np.empty(v.shape, v.dtype) for v in map(stored_array, leaves)
    ]
    try:
        values = jax.tree.leaves(
            eqx.tree_deserialise_leaves(
                io.BytesIO(payload), treedef.unflatten(placeholders), filter_spec=_read_npy
            ),
            is_leaf=lambda x: x is None,
        )
    except (RuntimeError, ValueError, EOFError) as err:
        cause = err  # equinox wraps the reader's error, once per level of the tree
        while cause.__cause__ is not None:
            cause = cause.__cause__
        if "allow_pickle" in str(cause):
            raise ValueError(
                f"jsyn.load: {path} holds a pickled object array; {_NO_PICKLE}, so it is "
                "refused. Write the file with jsyn.save."
            ) from None
        at = f" at leaf {jax.tree_util.keystr(err.path)}" if hasattr(err, "path") else ""
        raise ValueError(f"jsyn.load: {path} is corrupt{at} ({cause}); save it again.") from None
    return treedef.unflatten([_restore(x, v) for x, v in zip(leaves, values)])
