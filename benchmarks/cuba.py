"""The CUBA benchmark network (Brette et al. 2007, as in Brian2 and BrainPy) in jsyn,
and side by side, when the `bench` extra is installed, in Brian2 (cpp_standalone, one
thread) and BrainPy. Prints import, build, compile and run times apart, the end-to-end
time, the mean firing rate, and the ratios.

    python benchmarks/cuba.py [--sizes 4000,16000,64000] [--repeats 3] [--only jsyn,brian2]
    taskset -c 0 python benchmarks/cuba.py      # pinned to one core

The model and the details of each simulator are in `_ei_network.py`; results and
conditions in `README.md`.
"""

import _ei_network

if __name__ == "__main__":
    _ei_network.main(_ei_network.CUBA)
