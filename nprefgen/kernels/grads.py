"""The global gradient norm and the zeroing of gradients over a whole parameter list, one call each
(derivations/nn.md, NN.17).

    (NN.17)  ||g|| = sqrt( sum_k sum_i g_k[i]^2 )      over every gradient array g_k

The training loop needs ||g|| once per step (to clip it and to see a diverging step before the
update), scales every gradient by the clipping coefficient when it is below 1, and zeroes every
gradient before the next backward pass. Written as a Python loop over the
40 arrays of a five-transform MAF this costs ~85 us (norm) and ~33 us (zeroing) per step, more than
the arithmetic on the 1.6e4 numbers; here each is one numba call over the typed List of flat views
that :func:`nprefgen.kernels.adam.flat_views` makes (~9 us and ~3.5 us).

Bit-identical to the NumPy twin ``sum_squares_all_numpy`` = ``sum(float(np.sum(g * g)) for g in
gs)``: each array's squares are summed in the array's dtype by NumPy's own pairwise rule (blocks of
at most 128 added with eight accumulators, halves split at multiples of 8: numpy's
``pairwise_sum``, which ``np.sum`` of a contiguous array applies to the whole array), and the
per-array sums are added in float64 in list order. The tests compare the two bit for bit over
sizes 1-300,000 in float64 and float32, so a training run clipped by this norm is the same, to the
last bit, as one clipped by the NumPy expression.
"""
from __future__ import annotations

import numpy as np

from nprefgen.kernels.jit import kernel


def sum_squares_all_numpy(gs) -> float:
    """sum_k sum_i g_k[i]^2 over a list of arrays, as a Python float (the readable twin)."""
    return sum(float(np.sum(g * g)) for g in gs)


def zero_all_numpy(gs) -> None:
    """Set every array of the list to zero in place."""
    for g in gs:
        g[...] = 0.0


@kernel
def _block_squares(a, lo, n):
    """sum_{i < n} a[lo + i]^2 for 1 <= n <= 128, as numpy's pairwise_sum sums one block. The
    block is read through a slice with unsigned offsets (no negative-index wraparound in the
    loop, which lets LLVM keep the eight accumulators in one vector register: 14.5 -> 9 us for
    a MAF's 2.8e4 gradients, the same sums)."""
    if n < 8:
        res = a[lo] * a[lo]                      # = 0 + a[lo]^2 exactly (squares are never -0)
        for i in range(1, n):
            res += a[lo + i] * a[lo + i]
        return res
    b = a[lo:lo + n]
    r0 = b[0] * b[0]
    r1 = b[1] * b[1]
    r2 = b[2] * b[2]
    r3 = b[3] * b[3]
    r4 = b[4] * b[4]
    r5 = b[5] * b[5]
    r6 = b[6] * b[6]
    r7 = b[7] * b[7]
    m = n - n % 8
    u1, u2, u3, u4 = np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4)
    u5, u6, u7, u8 = np.uint64(5), np.uint64(6), np.uint64(7), np.uint64(8)
    for j in range(u8, np.uint64(m), u8):
        r0 += b[j] * b[j]
        r1 += b[j + u1] * b[j + u1]
        r2 += b[j + u2] * b[j + u2]
        r3 += b[j + u3] * b[j + u3]
        r4 += b[j + u4] * b[j + u4]
        r5 += b[j + u5] * b[j + u5]
        r6 += b[j + u6] * b[j + u6]
        r7 += b[j + u7] * b[j + u7]
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(m, n):
        res += b[i] * b[i]
    return res


@kernel
def _pairwise_squares(a, los, ns, left, stage):
    """sum_i a[i]^2 in a's dtype, in NumPy's pairwise order (see the module doc): a block of at
    most 128 is summed by ``_block_squares``; a longer range splits at n2 = n // 2 rounded down to
    a multiple of 8 and returns left + right. The recursion is written as a loop over an explicit
    stack (numba's on-disk cache does not hold recursive functions safely): ``los``, ``ns``,
    ``stage`` int64 and ``left`` (a's dtype) arrays of 64 frames (depth <= log2(2^63 / 64)),
    allocated once by the caller."""
    top = 0
    los[0], ns[0], stage[0] = 0, a.shape[0], 0
    left[0] = 0
    ret = left[0]                                # typed as a's dtype (a[0] * 0 would be float64)
    while top >= 0:
        lo, n = los[top], ns[top]
        n2 = n // 2
        n2 -= n2 % 8
        if stage[top] == 0:
            if n <= 128:
                ret = _block_squares(a, lo, n)
                top -= 1
                continue
            stage[top] = 1
            top += 1
            los[top], ns[top], stage[top] = lo, n2, 0
        elif stage[top] == 1:                    # the left half just returned in ret
            left[top] = ret
            stage[top] = 2
            top += 1
            los[top], ns[top], stage[top] = lo + n2, n - n2, 0
        else:                                    # the right half just returned in ret
            ret = left[top] + ret
            top -= 1
    return ret


@kernel
def _sum_squares_all(gs):
    total = 0.0
    los, ns = np.empty(64, np.int64), np.empty(64, np.int64)   # the stack, once per call
    stage = np.zeros(64, np.int64)
    left = np.empty(64, gs[0].dtype)             # flat_views never makes an empty List
    for k in range(len(gs)):
        g = gs[k]
        if g.shape[0] > 0:
            total += np.float64(_pairwise_squares(g, los, ns, left, stage))
    return total


@kernel
def _zero_all(gs):
    for k in range(len(gs)):
        g = gs[k]
        for i in range(g.shape[0]):
            g[i] = 0


@kernel
def _scale_all(gs, coef):
    for k in range(len(gs)):
        g = gs[k]
        for i in range(g.shape[0]):
            g[i] *= coef


def scale_all_numpy(gs, coef) -> None:
    """g *= coef for every array of the list (the clipping of NN.17), in the arrays' dtype."""
    for g in gs:
        g *= coef


def sum_squares_all(gs) -> float:
    """(NN.17) sum_k sum_i g_k[i]^2 for a typed List of flat views (one dtype, from
    :func:`nprefgen.kernels.adam.flat_views`); bit-identical to ``sum_squares_all_numpy``."""
    return float(_sum_squares_all(gs))


def zero_all(gs) -> None:
    """Set every flat view of the typed List to zero in place (writes go through to the arrays)."""
    _zero_all(gs)


def scale_all(gs, coef) -> None:
    """g *= coef for every flat view of the typed List; ``coef`` must already have the arrays'
    dtype (NumPy multiplies float32 arrays by the float32-rounded Python float): bit-identical to
    ``scale_all_numpy`` with the same coef."""
    _scale_all(gs, coef)
