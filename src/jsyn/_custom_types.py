"""Type aliases shared by the package (jaxtyping shape annotations)."""

import numpy as np
from jaxtyping import Array, ArrayLike, Float

ScalarLike = float | int | np.floating | Float[ArrayLike, ""]
"""A time step or other scalar: a Python number or a 0-d array."""

Shape = int | tuple[int, ...]
"""A population shape: `n` or a tuple such as `(n_pre, n_post)`."""

__all__ = ["Array", "ArrayLike", "Float", "ScalarLike", "Shape"]
