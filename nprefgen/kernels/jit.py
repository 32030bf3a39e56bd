"""The one decorator every kernel uses (public, so kernels outside this folder use it too):
``njit(cache=True, error_model="numpy")``.

``error_model="numpy"`` makes scalar division by zero give inf/NaN as NumPy does instead of
raising, so a kernel and its NumPy twin agree on every input.
"""
from numba import njit

kernel = njit(cache=True, error_model="numpy", nogil=True)
