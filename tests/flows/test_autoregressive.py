"""MADE (FLOW.10-FLOW.11), MAF (FLOW.12, FLOW.13, FLOW.14) and IAF (FLOW.15, FLOW.16): the bijector
battery for hypothesis-drawn sizes, orders, contexts and parameters; triangular Jacobians in the
autoregressive order; a broken mask is caught."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from nprefgen.flows.autoregressive import IAF, MAF
from nprefgen.flows.made import MADE, made_degrees, made_masks
from nprefgen.testing.bijector_checks import (
    bijector_report, check_bijector, jacobian_fd, randomize_parameters,
)
from nprefgen.testing.strategies import seeds


@st.composite
def made_cases(draw):
    d = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(seeds()))
    return dict(dim=d, hidden=draw(st.lists(st.integers(1, 6), min_size=0, max_size=2)),
                context_dim=draw(st.integers(0, 2)), n=draw(st.integers(1, 4)),
                order=(rng.permutation(d) + 1) if draw(st.booleans()) else None,
                bound=draw(st.sampled_from([None, 2.0])), seed=draw(seeds()))


def _build(cls, case, rng, scale=0.5):
    b = cls(case["dim"], case["hidden"], rng=rng, context_dim=case["context_dim"],
            order=case["order"], activation="tanh", bound=case["bound"])
    randomize_parameters(b, rng=rng, scale=scale)
    x = rng.standard_normal((case["n"], case["dim"]))
    c = rng.standard_normal((case["n"], case["context_dim"])) if case["context_dim"] else None
    return b, x, c


def _later_or_equal(order):
    """Pairs (a, j), a != j, with m(j) >= m(a): where dz_a/dx_j must vanish."""
    m = np.asarray(order)
    return (m[None, :] >= m[:, None]) & ~np.eye(m.size, dtype=bool)


@given(made_cases())
def test_maf_passes_the_battery(case):
    """(FLOW.12) one-pass density direction, (FLOW.13) sequential inverse, (FLOW.14) backward for
    input, parameters and context."""
    rng = np.random.default_rng(case["seed"])
    check_bijector(*_build(MAF, case, rng), rng=rng)


@given(made_cases())
def test_iaf_passes_the_battery(case):
    """(FLOW.15) sequential forward, one-pass inverse; (FLOW.16) backward by the triangular solve.

    IAF's sequential forward compounds exp(-alpha) over the D steps (z_i feeds mu_{i+1}, ...), so
    large random weights produce z ~ 1e26 where no finite difference is meaningful; smaller ones."""
    rng = np.random.default_rng(case["seed"])
    check_bijector(*_build(IAF, case, rng, scale=0.3), rng=rng)


@given(made_cases())
def test_jacobians_are_triangular_in_the_order(case):
    """(FLOW.11) MADE outputs for coordinate a depend only on x_j with m(j) < m(a), so the MAF and
    IAF Jacobians vanish wherever m(j) >= m(a), j != a; and every allowed entry is used."""
    rng = np.random.default_rng(case["seed"])
    for cls in (MAF, IAF):
        b, x, c = _build(cls, case, rng)
        jac = jacobian_fd(b, x, c)
        zero = _later_or_equal(b.made.order)
        assert np.max(np.abs(jac[:, zero]), initial=0.0) < 1e-10
    # the MADE itself, output block by output block (mu, raw_alpha)
    made = b.made
    jac_made = np.empty((x.shape[0], 2 * case["dim"], case["dim"]))
    for j in range(case["dim"]):
        e = np.zeros_like(x)
        e[:, j] = 1e-3
        jac_made[:, :, j] = (made.forward(x + e, c)[0] - made.forward(x - e, c)[0]) / 2e-3
    for block in (jac_made[:, : case["dim"]], jac_made[:, case["dim"]:]):
        assert np.max(np.abs(block[:, zero | np.eye(case["dim"], dtype=bool)]), initial=0.0) < 1e-10
        if case["hidden"] and min(case["hidden"]) >= case["dim"] - 1:
            # with >= D-1 units per layer every allowed connection exists (FLOW.10)
            assert np.all(np.abs(block[:, ~zero & ~np.eye(case["dim"], dtype=bool)]) > 0)


def test_made_masks_by_hand():
    """(FLOW.10)-(FLOW.11) D = 3, one hidden layer of 4 units: degrees 1,2,1,2."""
    degrees = made_degrees(3, [4])
    assert degrees[1].tolist() == [1, 2, 1, 2]
    m_hidden, m_out = made_masks(degrees, context_dim=1)
    np.testing.assert_array_equal(m_hidden, [[1, 0, 0, 1], [1, 1, 0, 1], [1, 0, 0, 1], [1, 1, 0, 1]])
    per_dim = np.array([[0, 0, 0, 0], [1, 0, 1, 0], [1, 1, 1, 1]])
    np.testing.assert_array_equal(m_out, np.vstack([per_dim, per_dim]))


def test_made_input_vjp_leaves_gradients_alone(rng):
    """input_vjp == backward's input gradient, and no parameter gradient is touched."""
    made = MADE(4, [6], rng=rng, context_dim=2, activation="tanh", zero_init=False)
    x, c = rng.standard_normal((3, 4)), rng.standard_normal((3, 2))
    out, cache = made.forward(x, c)
    d_out = rng.standard_normal(out.shape)
    d_x1, d_c1 = made.input_vjp(cache, d_out)
    assert all(np.all(g == 0) for _, g in made.parameters())
    d_x2, d_c2 = made.backward(cache, d_out)
    np.testing.assert_allclose(d_x1, d_x2, rtol=1e-14)
    np.testing.assert_allclose(d_c1, d_c2, rtol=1e-14)


def test_broken_mask_is_caught(rng):
    """Opening one forbidden connection (x_3 -> hidden unit of degree 1) breaks the triangular
    structure, so -sum alpha is no longer log|det J| (FLOW.12): the battery fails."""
    b = MAF(3, [5], rng=rng, activation="tanh")
    randomize_parameters(b, rng=rng, scale=1.0)
    x = rng.standard_normal((4, 3))
    check_bijector(b, x, rng=rng)
    b.made.masked_layers()[0].mask[0, 2] = 1.0
    report = bijector_report(b, x, rng=rng)
    assert not report.ok
    assert any("log-det" in f for f in report.failures)
    assert any("round trip" in f for f in report.failures)


def test_fresh_maf_is_identity(rng):
    """Zero-initialised output layer: z = x, log_det = 0, and the inverse too."""
    b = MAF(3, [4], rng=rng, context_dim=1)
    x, c = rng.standard_normal((2, 3)), rng.standard_normal((2, 1))
    z, ld = b.forward(x, c)
    assert np.array_equal(z, x) and np.all(ld == 0.0)


def test_autoregressive_bad_inputs(rng):
    """Bad orders, sizes, bounds and inputs raise ValueError naming the argument."""
    with pytest.raises(ValueError, match="order"):
        MAF(3, [4], rng=rng, order=[1, 1, 2])
    with pytest.raises(ValueError, match="order"):
        IAF(3, [4], rng=rng, order=[0, 1, 2])
    with pytest.raises(ValueError, match="dim"):
        MAF(0, [4], rng=rng)
    with pytest.raises(ValueError, match="hidden"):
        MAF(2, [-1], rng=rng)
    with pytest.raises(ValueError, match="bound"):
        IAF(2, [3], rng=rng, bound=0.0)
    with pytest.raises(ValueError, match="rng"):
        MAF(2, [3], rng="0")
    b = MAF(2, [3], rng=rng, context_dim=1)
    with pytest.raises(ValueError, match="context"):
        b.forward(np.ones((2, 2)))
    with pytest.raises(ValueError, match="z"):
        b.inverse(np.ones((2, 3)), np.ones((2, 1)))
