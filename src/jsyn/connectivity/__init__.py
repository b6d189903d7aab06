"""Connectivity: dense and sparse (event-driven) connections, and their builders."""

from .base import AbstractConnection as AbstractConnection
from .builders import (
    all_to_all as all_to_all,
    fixed_in_degree as fixed_in_degree,
    fixed_out_degree as fixed_out_degree,
    fixed_prob as fixed_prob,
    from_matrix as from_matrix,
    from_pairs as from_pairs,
    one_to_one as one_to_one,
)
from .dense import Dense as Dense
from .sparse import ALL as ALL, Sparse as Sparse, default_tiers as default_tiers, select as select
