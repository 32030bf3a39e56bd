"""Adam over every parameter in one kernel call (NN.16): ``adam_update_all`` == its NumPy twin ==
one ``adam_update`` per array, bit for bit; Adam.step takes the one-call path for one dtype of
contiguous arrays and the per-array path otherwise, with the same results; a NaN gradient moves
nothing and is named; an array replaced after the first step is picked up."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.kernels.adam import adam_update, adam_update_all, adam_update_all_numpy, flat_views
from nprefgen.nn.optim import Adam

pytestmark = pytest.mark.kernels

SHAPES = [(5, 3), (3,), (1, 1), (4, 2), (7,)]


def _state(rng, dtype=np.float64):
    ps = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    gs = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    ms = [0.1 * rng.standard_normal(s).astype(dtype) for s in SHAPES]
    vs = [np.abs(0.1 * rng.standard_normal(s)).astype(dtype) for s in SHAPES]
    return ps, gs, ms, vs


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_all_in_one_call_is_bit_identical(rng, dtype, weight_decay):
    args = (1e-2, 0.9, 0.999, 1e-8, 1.0 - 0.9 ** 3, 1.0 - 0.999 ** 3, weight_decay)
    ref, twin, got = _state(rng, dtype), None, None
    twin = [[a.copy() for a in group] for group in ref]
    got = [[a.copy() for a in group] for group in ref]
    for p, g, m, v in zip(*ref):
        adam_update(p, g, m, v, *args)
    assert adam_update_all_numpy(*twin, *args) == -1
    assert adam_update_all(*(flat_views(group) for group in got), *args) == -1
    for r, t, k in zip(ref, twin, got):
        for a, b, c in zip(r, t, k):
            assert c.dtype == dtype
            np.testing.assert_array_equal(c, a)
            np.testing.assert_allclose(b, a, rtol=1e-12 if dtype == np.float64 else 1e-6)


def test_nan_gradient_moves_nothing(rng):
    ps, gs, ms, vs = _state(rng)
    gs[3][1, 0] = np.nan
    before = [a.copy() for a in ps + ms + vs]
    assert adam_update_all(*(flat_views(x) for x in (ps, gs, ms, vs)), 1e-2, 0.9, 0.999, 1e-8,
                           0.1, 0.001) == 3
    assert adam_update_all_numpy(ps, gs, ms, vs, 1e-2, 0.9, 0.999, 1e-8, 0.1, 0.001) == 3
    for a, b in zip(ps + ms + vs, before):
        np.testing.assert_array_equal(a, b)
    opt = Adam(list(zip(ps, gs)))
    with pytest.raises(ValueError, match=r"params\[3\]"):
        opt.step()
    assert opt.t == 0
    for a, b in zip(ps, before):
        np.testing.assert_array_equal(a, b)


def _steps(pairs, n=4, **kwargs):
    opt = Adam(pairs, lr=1e-2, **kwargs)
    for k in range(n):
        for _, g in pairs:
            g[...] = np.sin(np.arange(g.size) + k).reshape(g.shape)
        opt.step()
    return opt


def test_step_paths_agree(rng):
    """The one-call path (contiguous, one dtype) and the per-array path (a strided parameter
    forces it) give the same parameters, bit for bit."""
    ps = [rng.standard_normal(s) for s in SHAPES]
    fast = [(p.copy(), np.zeros_like(p)) for p in ps]
    big = np.zeros((5, 6))
    strided = big[:, ::2]
    strided[...] = ps[0]
    slow = [(strided, np.zeros((5, 3)))] + [(p.copy(), np.zeros_like(p)) for p in ps[1:]]
    assert _steps(fast)._flat_views() is not None
    assert _steps(slow, weight_decay=0.0)._flat_views() is None
    for (a, _), (b, _) in zip(fast, slow):
        np.testing.assert_array_equal(a, b)


def test_replaced_moment_is_picked_up(rng):
    """A moment array replaced between steps (state restored from elsewhere) is the one updated:
    the flat views are remade, not stale."""
    pairs = [(rng.standard_normal(s), np.ones(s)) for s in SHAPES]
    opt = Adam(pairs, lr=1e-2)
    opt.step()
    fresh = np.zeros(SHAPES[0])
    opt.m[0] = fresh
    opt.step()
    assert np.all(fresh != 0)


def test_copied_optimizer_updates_its_own_arrays(rng):
    """deepcopy and pickle work after a step (the numba Lists are left out and remade), and the
    copy's step moves the copy's parameters, not the original's."""
    import copy
    import pickle

    pairs = [(rng.standard_normal(s), np.ones(s)) for s in SHAPES]
    opt = Adam(pairs, lr=1e-2)
    opt.step()
    before = [p.copy() for p, _ in pairs]
    twin = copy.deepcopy(opt)
    pickle.loads(pickle.dumps(opt))
    twin.step()
    for (p, _), b in zip(pairs, before):
        np.testing.assert_array_equal(p, b)
    assert any(not np.array_equal(p, b) for (p, _), b in zip(twin.params, before))
