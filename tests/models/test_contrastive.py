"""Siamese SimCLR training (derivations/representation.md, REP.13-REP.16)."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.data import load_digits
from nprefgen.kernels.ntxent import ntxent_numpy
from nprefgen.models.augment import Augment
from nprefgen.models.contrastive import SimCLR, conv_simclr, dense_simclr, ntxent_loss
from nprefgen.nn import Linear
from nprefgen.testing import gradcheck


def _grads(model: SimCLR) -> list[np.ndarray]:
    return [g.copy() for _, g in model.parameters()]


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_siamese_gradient_is_sum_of_two_views(kind, rng):
    """(REP.16) one step's gradient = view a's contribution + view b's contribution (each a
    separate backward pass with its own cache into the same grads), and it matches central
    differences of the full NT-Xent loss (REP.13) for every parameter."""
    if kind == "dense":
        model = dense_simclr(12, feature_dim=4, hidden=(7,), proj_dim=3, proj_hidden=5, rng=rng,
                             tau=0.5, activation="tanh")
        x_a, x_b = rng.standard_normal((2, 5, 12))
    else:
        model = conv_simclr((1, 4, 4), feature_dim=3, channels=(2, 3), proj_dim=3, proj_hidden=4,
                            rng=rng, tau=0.5, activation="tanh")
        x_a, x_b = rng.standard_normal((2, 4, 16))
    model.zero_grad()
    model.loss_and_grad(x_a, x_b)
    both = _grads(model)
    model.zero_grad()
    model.loss_and_grad(x_a, x_b, views="a")
    only_a = _grads(model)
    model.zero_grad()
    model.loss_and_grad(x_a, x_b, views="b")
    only_b = _grads(model)
    for g, ga, gb in zip(both, only_a, only_b):
        np.testing.assert_allclose(g, ga + gb, rtol=1e-12, atol=1e-15)
    # each view alone is not the gradient: both contributions are non-trivial
    assert max(np.abs(ga).max() for ga in only_a) > 1e-4 and max(np.abs(gb).max() for gb in only_b) > 1e-4

    def full_loss():
        z_a = model.project(x_a)
        z_b = model.project(x_b)
        return ntxent_numpy(np.concatenate([z_a, z_b]), model.tau)[0]

    for (p, _), g in zip(model.parameters(), both):
        original = p.copy()

        def f(p_, p=p, original=original):
            p[...] = p_
            try:
                return full_loss()
            finally:
                p[...] = original

        gradcheck(f, lambda _, g=g: g, original, rng=rng, step=1e-4)


def test_one_view_only_gradient_is_caught(rng):
    """The check can fail: back-propagating view a alone does not match the loss."""
    model = dense_simclr(6, feature_dim=3, hidden=(5,), proj_dim=3, proj_hidden=4, rng=rng,
                         activation="tanh")
    x_a, x_b = rng.standard_normal((2, 4, 6))
    model.zero_grad()
    model.loss_and_grad(x_a, x_b, views="a")
    p, g = model.parameters()[0]
    g_a = g.copy()
    original = p.copy()

    def f(p_):
        p[...] = p_
        try:
            return ntxent_numpy(np.concatenate([model.project(x_a), model.project(x_b)]), model.tau)[0]
        finally:
            p[...] = original

    with pytest.raises(AssertionError, match="dot-product test failed"):
        gradcheck(f, lambda _: g_a, original, rng=rng)


def test_ntxent_loss_wrapper(rng):
    """(REP.13) the pair wrapper stacks [z_a; z_b] and splits the gradient; kernel == twin."""
    z_a, z_b = rng.standard_normal((2, 6, 4))
    loss, d_a, d_b = ntxent_loss(z_a, z_b, 0.3)
    ref, d_h = ntxent_numpy(np.concatenate([z_a, z_b]), 0.3)
    assert loss == pytest.approx(ref, rel=1e-12)
    np.testing.assert_allclose(np.concatenate([d_a, d_b]), d_h, rtol=1e-12, atol=1e-15)
    loss2, _, _ = ntxent_loss(z_a, z_b, 0.3, use_kernel=False)
    assert loss2 == ref


def test_simclr_training_lowers_the_loss_on_digits():
    """A few epochs on the digits lower NT-Xent measured on fixed held-out views."""
    X, _ = load_digits("val")
    rng = np.random.default_rng(2)
    model = dense_simclr(64, feature_dim=16, hidden=(64,), proj_dim=16, proj_hidden=32, rng=rng)
    aug = Augment((8, 8))
    view_rng = np.random.default_rng(9)
    x_a, x_b = aug(X[:128], view_rng), aug(X[:128], view_rng)

    def held_out():
        return ntxent_loss(model.project(x_a), model.project(x_b), model.tau)[0]

    start = held_out()
    assert model.fit(X, aug, rng=rng, epochs=6, batch_size=128, lr=3e-3, progress=False) is model
    assert len(model.history_["train_loss"]) == 6
    assert held_out() < start - 0.3
    assert model.features(X).shape == (X.shape[0], 16)
    assert model.project(X).shape == (X.shape[0], 16)


def test_simclr_bad_inputs(rng):
    model = dense_simclr(8, feature_dim=3, hidden=(4,), proj_dim=2, proj_hidden=4, rng=rng)
    x = rng.standard_normal((4, 8))
    with pytest.raises(ValueError, match="x_b: expected shape"):
        model.loss_and_grad(x, x[:3])
    with pytest.raises(ValueError, match="x_a: expected shape"):
        model.loss_and_grad(x[:, :5], x)
    with pytest.raises(ValueError, match="views"):
        model.loss_and_grad(x, x, views="c")
    with pytest.raises(ValueError, match="augment"):
        model.fit(x, "crop", rng=rng, progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(x, lambda v, r: v, rng=rng, batch_size=1, progress=False)
    with pytest.raises(ValueError, match="tau"):
        SimCLR(Linear(2, 2, rng=rng), Linear(2, 2, rng=rng), in_features=2, tau=0.0)
    with pytest.raises(ValueError, match="head"):
        SimCLR(Linear(2, 2, rng=rng), None, in_features=2)
    with pytest.raises(ValueError, match="z_b"):
        ntxent_loss(np.ones((3, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="image_shape"):
        conv_simclr((1, 6, 6), rng=rng)


def test_contrastive_tour_section_quick(tmp_path):
    from nprefgen.tour import run_tour

    path = run_tour(tmp_path, quick=True, only=["contrastive"], progress=False, strict=True)
    text = open(path, encoding="utf-8").read()
    assert "contrastive-" in text and "linear probe" in text
