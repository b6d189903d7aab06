"""`_validation.guard`: the run-time checks of `jsyn.simulate` under jit/vmap/grad."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jsyn import _validation as val


def test_guard_passes_prng_keys_through_and_still_raises_under_jit():
    # The state of a stochastic system carries a typed PRNG key, which eqx.error_if
    # cannot take (it raised TypeError "Cannot interpret 'key<fry>' as a data type").
    key = jax.random.key(3)
    state = {"key": key, "g": jnp.ones(2)}

    @jax.jit
    def run(x):
        check = val.Check(x < 0, x, "x must be >= 0", "pass x >= 0")
        return val.guard(state, [check])

    out = run(1.0)
    np.testing.assert_array_equal(jax.random.key_data(out["key"]), jax.random.key_data(key))
    np.testing.assert_array_equal(out["g"], state["g"])
    with pytest.raises(Exception, match="x must be >= 0"):
        jax.block_until_ready(run(-1.0))
