"""The hypothesis strategies of nprefgen.testing.strategies produce what they promise."""
from __future__ import annotations

import numpy as np
from hypothesis import find, given, strategies as st

from nprefgen.nn import MLP
from nprefgen.testing.strategies import (
    arrays_for, batch_shapes, image_shapes, mlp_configs, rngs, seeds, spd_matrices, strided_arrays,
)


@given(spd_matrices(max_dim=5, min_eig=0.2, max_eig=4.0))
def test_spd_really_spd(s):
    assert s.ndim == 2 and s.shape[0] == s.shape[1] and 1 <= s.shape[0] <= 5
    np.testing.assert_array_equal(s, s.T)
    eig = np.linalg.eigvalsh(s)
    assert eig.min() >= 0.2 - 1e-12 and eig.max() <= 4.0 + 1e-12
    np.linalg.cholesky(s)


@given(spd_matrices(dim=3))
def test_spd_fixed_dim(s):
    assert s.shape == (3, 3)


@given(st.tuples(st.integers(1, 4), st.integers(1, 4)), st.data())
def test_strided_arrays_shape_and_values(shape, data):
    x = data.draw(strided_arrays(shape, scale=2.0))
    assert x.shape == shape and x.dtype == np.float64 and np.all(np.isfinite(x))


def test_strided_arrays_really_non_contiguous():
    """The strategy yields genuinely strided memory (not just contiguous copies) for kernel tests."""
    x = find(strided_arrays((3, 4)), lambda a: not a.flags.c_contiguous)
    assert x.strides != (4 * 8, 8)
    y = find(strided_arrays((3, 4)), lambda a: a.flags.c_contiguous)
    assert y.shape == (3, 4)
    z = find(strided_arrays((2, 3, 4)), lambda a: not a.flags.c_contiguous and not a.flags.f_contiguous)
    assert z.base is not None and z.shape == (2, 3, 4)


@given(arrays_for((4, 5), scale=3.0, away_from_zero=0.25))
def test_arrays_away_from_zero(x):
    assert x.shape == (4, 5) and np.all(np.abs(x) >= 0.25)


@given(batch_shapes(2, 5, 3, 6), image_shapes(max_batch=2, max_channels=3, min_size=4, max_size=6))
def test_shapes_within_bounds(bs, im):
    assert 2 <= bs[0] <= 5 and 3 <= bs[1] <= 6
    assert 1 <= im[0] <= 2 and 1 <= im[1] <= 3 and all(4 <= s <= 6 for s in im[2:])


@given(mlp_configs(), seeds(), rngs())
def test_mlp_configs_build(cfg, seed, rng):
    assert 0 <= seed < 2 ** 32 and isinstance(rng, np.random.Generator)
    net = MLP(rng=rng, **cfg)
    y = net(np.zeros((2, cfg["in_features"])))
    assert y.shape == (2, cfg["out_features"])
