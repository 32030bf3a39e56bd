"""Test-set log-likelihood of a conditional density q(theta | x) (derivations/sbi.md, SBI.14).

(SBI.14) On held-out pairs (theta_i, x_i) ~ p(theta) p(x | theta),

    L_test = (1/N) sum_i log q(theta_i | x_i)  ~  E_{p(x)}[ -KL(p(theta|x) || q(theta|x)) ] + const,

so on one test set a larger value means a posterior closer to the truth in expected KL, up to
a constant (minus the conditional entropy) shared by every q: the lecture's "cumulative
likelihood of the test dataset". Only differences between estimators are meaningful.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array, check_callable, check_int


def heldout_log_likelihood(log_prob, theta, x, batch_size: int = 10000) -> dict:
    """(SBI.14) mean and standard error of log q(theta_i | x_i) over a test set.

    log_prob : callable (theta: (m, p), x: (m, dx)) -> (m,), e.g. ``posterior.log_prob_pairs``.
    theta : (N, p), x : (N, dx).
    Returns {"mean", "sem", "values": (N,)}; -inf values (outside the support) are kept.
    """
    check_callable(log_prob, "log_prob")
    batch_size = check_int(batch_size, "batch_size", low=1)
    theta = check_array(theta, "theta", ndim=2)
    x = check_array(x, "x", ndim=2)
    if x.shape[0] != theta.shape[0]:
        raise ValueError(f"x: expected {theta.shape[0]} rows to match theta, got {x.shape[0]}")
    vals = np.concatenate([np.asarray(log_prob(theta[i:i + batch_size], x[i:i + batch_size]),
                                      dtype=np.float64)
                           for i in range(0, theta.shape[0], batch_size)])
    if vals.shape != (theta.shape[0],):
        raise ValueError(f"log_prob: expected an output of shape ({theta.shape[0]},), got {vals.shape}")
    n = vals.shape[0]
    sem = float(np.std(vals, ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return {"mean": float(np.mean(vals)), "sem": sem, "values": vals}
