"""The COBA benchmark network (Brette et al. 2007, in BrainPy's normalised form) in jsyn,
and side by side, when the `bench` extra is installed, in Brian2 (cpp_standalone, one
thread) and BrainPy. Prints import, build, compile and run times apart, the end-to-end
time, the mean firing rate, and the ratios.

    python benchmarks/coba.py [--sizes 4000,16000,64000] [--repeats 3] [--only jsyn,brian2]
    taskset -c 0 python benchmarks/coba.py      # pinned to one core
    taskset -c 0 python benchmarks/coba.py --floor /path/to/coba_floor.py

`--floor SCRIPT` runs an external pure-JAX COBA network beside them (a script written for
measurement only, not shipped here; see `_ei_network.floor_run`), so that each run shows
how far jsyn is from what plain JAX reaches on the machine.

The model and the details of each simulator are in `_ei_network.py`; results and
conditions in `README.md`.
"""

import _ei_network

if __name__ == "__main__":
    _ei_network.main(_ei_network.COBA)
