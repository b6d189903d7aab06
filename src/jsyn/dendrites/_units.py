"""The one place where jsyn's units meet jaxley's.

jsyn: currents in pA, positive into the cell (depolarising); conductances in nS.
jaxley's external current `"i"` (what `jsyn.dendrites` hands its step function): nA,
positive into the cell, spread by jaxley over the compartment's membrane area.
(jaxley's own point-process synapses use µS, nA and outward-positive current; this module
does not use them.)
"""

import contextlib

import jax

PA_PER_NA = 1000.0


def to_jaxley_current(current_pA):
    """A current into the cell in pA as jaxley's external current `"i"` (nA, into the cell)."""
    return current_pA / PA_PER_NA


def jaxley_numerics():
    """A context in which jaxley's code runs as written: jaxley mixes integer and float
    arrays and ranks, which jsyn's strict settings (`jax_numpy_dtype_promotion="strict"`,
    `jax_numpy_rank_promotion="raise"`, as in jsyn's tests) would refuse."""
    stack = contextlib.ExitStack()
    stack.enter_context(jax.numpy_dtype_promotion("standard"))
    stack.enter_context(jax.numpy_rank_promotion("allow"))
    return stack
