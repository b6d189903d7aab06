"""Synaptic integration on morphologies: jsyn synapses on jaxley cells.

An optional part of jsyn (`pip install 'jsyn[jaxley]'`): jaxley owns the cable, the
channels and SWC reading; jsyn owns the synapses. See `DendriticCell`.
"""

try:
    import jaxley as _jaxley  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "jsyn.dendrites needs jaxley, which jsyn installs only on request: "
        "pip install 'jsyn[jaxley]'."
    ) from err

from ._units import jaxley_numerics as jaxley_numerics
from .cell import DendriticCell as DendriticCell, DendriticState as DendriticState
from .morphology import compartment as compartment, compartments as compartments
from .placement import (
    AbstractPlacement as AbstractPlacement,
    ProjectionSites as ProjectionSites,
    PSCSites as PSCSites,
)
