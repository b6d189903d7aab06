import jax
import jaxtyping
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def getkey():
    """A fresh PRNG key per call, reproducible per test."""
    keys = iter(jax.random.split(jax.random.key(5678), 1000))
    return lambda: next(keys)


@pytest.fixture
def untyped():
    """Without the tests' jaxtyping/beartype checks of annotations, as a user runs."""
    jaxtyping.config.update("jaxtyping_disable", True)
    yield
    jaxtyping.config.update("jaxtyping_disable", False)


@pytest.fixture(autouse=True, scope="module")
def _free_compiled_code():
    """Drop JAX's compiled programs after each test module. One pytest process compiles
    thousands of them; kept, their code pages pile up towards the kernel's limit on memory
    mappings (vm.max_map_count, 65530 by default: the whole suite passed it at ~1120 tests),
    and XLA then crashes while compiling. Cleared per module, the count stays near 30 000."""
    yield
    jax.clear_caches()
