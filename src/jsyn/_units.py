"""Values that are probably in the wrong unit: warned about where they enter.

jsyn's units are ms, mV, nS, pA and Hz for rates (see `docs/units.md`). A value that is
possible but much more likely a unit slip (a rate in 1/ms, spike times in seconds, a
holding potential in volts) gets a `UnitWarning`, which names the value and the fix, and
which a user who meant it silences with
`warnings.filterwarnings("ignore", category=jsyn.UnitWarning)`. A value that cannot be
right is an error instead, raised by the component's own checks.
"""

import os
import sys
import warnings

import equinox as eqx


class UnitWarning(UserWarning):
    """A value that is valid but probably in the wrong unit (rates in 1/ms instead of Hz,
    spike times in s instead of ms, a potential in V instead of mV).

    Silence it where the value is meant: `warnings.filterwarnings("ignore",
    category=jsyn.UnitWarning)`, or within `warnings.catch_warnings()`."""


_INTERNAL = tuple(os.path.dirname(m.__file__) + os.sep for m in (sys.modules["jsyn"], eqx))


def warn_unit(message: str) -> None:
    """Issue a `UnitWarning` attributed to the user's line (the first caller outside jsyn
    and equinox), so that the warning shows where the value was written."""
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename.startswith(_INTERNAL):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, UnitWarning, stacklevel=level)
