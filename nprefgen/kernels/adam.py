"""One Adam update of a parameter array in place (derivations/nn.md, NN.16).

    (NN.16)  g <- g + wd p   (when wd > 0)
             m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
             p <- p - (lr / c1) m / (sqrt(v / c2) + eps),   c1 = 1 - b1^t,  c2 = 1 - b2^t

``adam_update_numpy`` is the readable oracle (six whole-array passes, each with a temporary);
``adam_update`` is the numba kernel doing the same arithmetic in the same order per element in one
pass, so the two agree to the last bit. Both update ``p``, ``m`` and ``v`` in place and leave ``g``
unchanged. The scalars are cast to the arrays' dtype first, so float32 parameters are updated in
float32 arithmetic by both (as NumPy does with Python-float scalars).
"""
from __future__ import annotations

import numpy as np

from nprefgen.kernels.jit import kernel


def adam_update_numpy(p, g, m, v, lr: float, b1: float, b2: float, eps: float, c1: float,
                      c2: float, weight_decay: float = 0.0) -> None:
    """(NN.16) p, g, m, v: arrays of one shape and dtype; p, m, v updated in place."""
    if weight_decay:
        g = g + weight_decay * p
    m *= b1
    m += (1.0 - b1) * g
    v *= b2
    v += (1.0 - b2) * (g * g)
    denom = np.sqrt(v / c2)
    denom += eps
    p -= (lr / c1) * (m / denom)


@kernel
def _adam_flat(p, g, m, v, step, b1, one_b1, b2, one_b2, eps, c2, wd):
    for i in range(p.shape[0]):
        gi = g[i]
        if wd != 0:
            gi = gi + wd * p[i]
        mi = m[i] * b1
        mi = mi + one_b1 * gi
        vi = v[i] * b2
        vi = vi + one_b2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        p[i] = p[i] - step * (mi / (np.sqrt(vi / c2) + eps))


def adam_update(p, g, m, v, lr: float, b1: float, b2: float, eps: float, c1: float, c2: float,
                weight_decay: float = 0.0) -> None:
    """(NN.16) Numba kernel; same contract as ``adam_update_numpy``.

    The kernel runs over flat views of contiguous p, m, v (every nprefgen parameter and Adam
    moment is contiguous); strided ones are updated through contiguous copies written back.
    """
    s = p.dtype.type
    arrays = [p, m, v]
    flat = [a if a.flags.c_contiguous else np.ascontiguousarray(a) for a in arrays]
    _adam_flat(flat[0].reshape(-1), np.ascontiguousarray(g, dtype=p.dtype).reshape(-1),
               flat[1].reshape(-1), flat[2].reshape(-1), s(lr / c1), s(b1), s(1.0 - b1), s(b2),
               s(1.0 - b2), s(eps), s(c2), s(weight_decay))
    for a, f in zip(arrays, flat):
        if f is not a:
            a[...] = f
