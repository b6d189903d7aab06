"""A mkdocs hook: the notebooks, run at build time by mkdocs-jupyter, keep their figures.

A kernel draws figures as outputs only with Jupyter's inline backend. The kernels that
mkdocs-jupyter starts inherit the build's environment, and `MPLBACKEND=Agg` there (usual in
CI and in scripts without a display) would make every figure vanish from the site. So the
build names the inline backend for its kernels, whatever the caller's environment says.
"""

import os

INLINE = "module://matplotlib_inline.backend_inline"


def on_config(config):
    os.environ["MPLBACKEND"] = INLINE
    return config
