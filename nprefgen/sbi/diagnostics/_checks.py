"""Shared input checks for the diagnostics: posterior draws (N, L, p) and true values (N, p)."""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array


def check_draws(samples, theta_true):
    """samples: (N, L, p) posterior draws for N observations; theta_true: (N, p) -> both float64.

    2-D inputs are read as p = 1: samples (N, L), theta_true (N,).
    """
    s = check_array(samples, "samples", ndim=(2, 3), dtype=np.float64)
    t = check_array(theta_true, "theta_true", ndim=(1, 2), dtype=np.float64)
    if s.ndim == 2:
        s = s[:, :, None]
    if t.ndim == 1:
        t = t[:, None] if s.shape[2] == 1 and t.shape[0] == s.shape[0] else t[None, :]
    if t.shape != (s.shape[0], s.shape[2]):
        raise ValueError(f"theta_true: expected shape ({s.shape[0]}, {s.shape[2]}) to match "
                         f"samples {s.shape}, got {t.shape}")
    return s, t
