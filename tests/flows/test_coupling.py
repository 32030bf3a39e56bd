"""Affine coupling (FLOW.5-FLOW.9): the bijector battery for hypothesis-drawn masks, shapes,
contexts, bounds, parameters and inputs; the masks; bad inputs."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from nprefgen.flows.coupling import AffineCoupling, alternating_mask, checkerboard_mask, half_mask
from nprefgen.testing.bijector_checks import check_bijector, jacobian_fd, randomize_parameters
from nprefgen.testing.strategies import seeds


@st.composite
def coupling_cases(draw):
    kind = draw(st.sampled_from(["half", "half_flip", "alternating", "checkerboard", "user"]))
    if kind == "checkerboard":
        shape = (draw(st.integers(1, 2)), draw(st.integers(2, 3)), draw(st.integers(1, 3)))
        mask = checkerboard_mask(shape, parity=draw(st.integers(0, 1)))
    else:
        d = draw(st.integers(2, 6))
        if kind == "half":
            mask = half_mask(d)
        elif kind == "half_flip":
            mask = half_mask(d, flip=True)
        elif kind == "alternating":
            mask = alternating_mask(d, parity=draw(st.integers(0, 1)))
        else:
            mask = np.array(draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=d, max_size=d)))
    context_dim = draw(st.integers(0, 3))
    if mask.sum() == mask.size or (mask.sum() == 0 and context_dim == 0):
        mask = np.zeros(mask.size)
        mask[0] = 1.0
    bound = draw(st.sampled_from([None, 1.0, 3.0]))
    # an unbounded scale with large weights reaches exp(s) ~ 1e-6, where y_B = x_B exp(s) + t
    # rounds x_B away: ill-conditioned by construction, so those draws use smaller weights
    scale = draw(st.sampled_from([0.3, 1.0])) if bound else 0.3
    return dict(mask=mask, context_dim=context_dim, n=draw(st.integers(1, 5)),
                hidden=draw(st.lists(st.integers(1, 6), min_size=0, max_size=2)),
                bound=bound, activation=draw(st.sampled_from(["tanh", "softplus"])),
                scale=scale, seed=draw(seeds()))


@given(coupling_cases())
def test_coupling_passes_the_battery(case):
    """(FLOW.5)-(FLOW.9) round trip, log-det vs FD Jacobian (FLOW.7), inverse log-det (FLOW.8),
    dot-product backward for input, every parameter and the context (FLOW.9)."""
    rng = np.random.default_rng(case["seed"])
    b = AffineCoupling(case["mask"], case["hidden"], rng=rng, context_dim=case["context_dim"],
                       activation=case["activation"], bound=case["bound"])
    randomize_parameters(b, rng=rng, scale=case["scale"])
    x = 1.5 * rng.standard_normal((case["n"], b.dim))
    c = rng.standard_normal((case["n"], b.context_dim)) if b.context_dim else None
    check_bijector(b, x, c, rng=rng)


def test_coupling_jacobian_is_block_triangular(rng):
    """(FLOW.7) dy_A/dx = [I, 0] and dy_B/dx_B = diag(exp s): the determinant is prod exp(s)."""
    mask = alternating_mask(6)
    b = AffineCoupling(mask, [8], rng=rng, activation="tanh", bound=2.0)
    randomize_parameters(b, rng=rng)
    x = rng.standard_normal((3, 6))
    jac = jacobian_fd(b, x)
    a, bb = mask == 1, mask == 0
    np.testing.assert_allclose(jac[:, a][:, :, a], np.broadcast_to(np.eye(3), (3, 3, 3)), atol=1e-10)
    assert np.max(np.abs(jac[:, a][:, :, bb])) < 1e-10            # y_A does not move with x_B
    off = jac[:, bb][:, :, bb] * (1 - np.eye(3))
    assert np.max(np.abs(off)) < 1e-10                            # diagonal block
    _, log_det = b.forward(x)
    diag = np.diagonal(jac[:, bb][:, :, bb], axis1=1, axis2=2)
    np.testing.assert_allclose(log_det, np.log(diag).sum(axis=1), atol=1e-9)
    assert np.all(np.abs(np.log(diag)) < 2.0)                    # (FLOW.6) |s| < bound


def test_fresh_coupling_is_identity(rng):
    """Zero-initialised last layer: z = x and log_det = 0 before training."""
    b = AffineCoupling(half_mask(4), [5], rng=rng, context_dim=2)
    x = rng.standard_normal((3, 4))
    z, ld = b.forward(x, rng.standard_normal((3, 2)))
    assert np.array_equal(z, x) and np.all(ld == 0.0)


def test_masks():
    """Masks: half, flipped, alternating, checkerboard (complementary parities)."""
    assert half_mask(5).tolist() == [1, 1, 1, 0, 0]
    assert half_mask(4, flip=True).tolist() == [0, 0, 1, 1]
    assert alternating_mask(5, 1).tolist() == [0, 1, 0, 1, 0]
    cb = checkerboard_mask((2, 3))
    assert cb.tolist() == [1, 0, 1, 0, 1, 0]
    np.testing.assert_array_equal(checkerboard_mask((2, 2, 3), 1), np.tile(1 - cb, 2))


def test_coupling_bad_inputs(rng):
    """Bad masks, hidden sizes, bounds, inputs and contexts raise ValueError naming the argument."""
    with pytest.raises(ValueError, match="mask"):
        AffineCoupling([1.0, 1.0], [4], rng=rng)
    with pytest.raises(ValueError, match="mask"):
        AffineCoupling([0.0, 0.0], [4], rng=rng)
    with pytest.raises(ValueError, match="mask"):
        AffineCoupling([0.0, 0.5], [4], rng=rng)
    with pytest.raises(ValueError, match="bound"):
        AffineCoupling(half_mask(4), [4], rng=rng, bound=-1.0)
    with pytest.raises(ValueError, match="hidden"):
        AffineCoupling(half_mask(4), [0], rng=rng)
    with pytest.raises(ValueError, match="activation"):
        AffineCoupling(half_mask(4), [3], rng=rng, activation="swish")
    with pytest.raises(ValueError, match="shape"):
        checkerboard_mask((4,))
    b = AffineCoupling(half_mask(4), [3], rng=rng, context_dim=2)
    with pytest.raises(ValueError, match="x"):
        b.forward(np.ones((2, 3)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="x"):
        b.forward(np.array([[np.nan, 0, 0, 0]]), np.ones((1, 2)))
    with pytest.raises(ValueError, match="context"):
        b.forward(np.ones((2, 4)))
    with pytest.raises(ValueError, match="context"):
        b.forward(np.ones((2, 4)), np.ones((3, 2)))
    _, _, cache = b.forward_cached(np.ones((2, 4)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="d_log_det"):
        b.backward(cache, np.ones((2, 4)), np.ones(3))
