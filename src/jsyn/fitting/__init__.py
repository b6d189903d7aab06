"""Fitting: synapse parameters from recordings (`fit`, `fit_many`), the PSC model of a
recorded current, and the fitted result with its intervals."""

from .fitter import (
    STATUSES as STATUSES,
    FitResult as FitResult,
    fit as fit,
    fit_many as fit_many,
    select as select,
)
from .psc import PSC as PSC, PSCState as PSCState
from .sweeps import sweep_intervals as sweep_intervals
