"""Units of recorded channels, and the factors that turn them into jsyn's pA and mV.

Amplifier files name their units as text (`"pA"`, `"nA"`, `"mV"`, `"V"`; NWB stores SI
`"amperes"`/`"volts"` with a `conversion` factor). `factor_to(unit, quantity)` gives the
number that multiplies a sample in `unit` into pA (currents) or mV (voltages); a unit it
does not know, or one of the other quantity (a channel in mV where pA is expected), is
refused, never guessed.
"""

from .recording import RecordingError

CURRENT = {"fA": 1e-3, "pA": 1.0, "nA": 1e3, "uA": 1e6, "µA": 1e6, "mA": 1e9, "A": 1e12}
"""Factors from each current unit to pA."""

VOLTAGE = {"uV": 1e-3, "µV": 1e-3, "mV": 1.0, "V": 1e3}
"""Factors from each voltage unit to mV."""

_SI = {"amperes": "A", "ampere": "A", "amps": "A", "volts": "V", "volt": "V"}
_TABLES = {"current": (CURRENT, "pA"), "voltage": (VOLTAGE, "mV")}


def factor_to(unit: str, quantity: str, source) -> float:
    """The factor that turns samples in `unit` into pA (`quantity="current"`) or mV
    (`"voltage"`).

    **Raises:** `RecordingError` naming `source`, the unit and the units accepted.
    """
    name = unit.strip().strip("\x00").strip()
    name = _SI.get(name.lower(), name)
    table, target = _TABLES[quantity]
    if name in table:
        return table[name]
    other = "voltage" if quantity == "current" else "current"
    if name in _TABLES[other][0]:
        raise RecordingError(
            f"{source}: the channel is in {name!r}, a {other}, where a {quantity} "
            f"({target}) is expected; pick the {quantity} channel (--channel)"
        )
    raise RecordingError(
        f"{source}: unknown unit {unit!r} of a {quantity}; jsyn converts "
        f"{', '.join(table)} to {target}; rescale the channel to one of them"
    )
