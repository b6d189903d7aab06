"""Choosing sweeps: `"0-9"`, `"0,2,5-7"`, or a list of indices."""

import numpy as np

from .recording import RecordingError


def parse_sweeps(spec, count: int, source) -> np.ndarray:
    """The sweep indices `spec` names, in order: `None` for all `count` sweeps, a string
    of indices and inclusive ranges (`"0-4,7"`), or a sequence of ints.

    **Raises:** `RecordingError` naming `source`, the bad entry and the sweeps there are.
    """
    if spec is None:
        return np.arange(count)
    if isinstance(spec, str):
        chosen = []
        for part in (p.strip() for p in spec.split(",")):
            first, dash, last = part.partition("-")
            try:
                lo = int(first)
                hi = int(last) if dash else lo
            except ValueError:
                raise RecordingError(
                    f"{source}: cannot read the sweeps {spec!r} (at {part!r}); give indices "
                    "and ranges such as '0-9' or '0,2,5-7'"
                ) from None
            chosen.extend(range(lo, hi + 1))
    else:
        chosen = [int(s) for s in np.atleast_1d(spec)]
    chosen = np.asarray(chosen, dtype=int)
    bad = (chosen < 0) | (chosen >= count)
    if chosen.size == 0 or bad.any():
        what = f"sweep {int(chosen[bad][0])} does not exist" if bad.any() else "no sweep chosen"
        raise RecordingError(f"{source}: {what}; the file has sweeps 0-{count - 1}")
    if np.unique(chosen).size != chosen.size:
        raise RecordingError(f"{source}: sweeps {spec!r} name a sweep twice; name each once")
    return chosen
