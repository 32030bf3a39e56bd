"""Autoencoders (derivations/representation.md, REP.7-REP.9)."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.data import load_digits
from nprefgen.models.autoencoder import (
    Autoencoder, conv_autoencoder, dense_autoencoder, linear_autoencoder,
)
from nprefgen.models.pca import PCA, principal_angles, reconstruction_error
from nprefgen.nn import Linear
from nprefgen.testing import gradcheck


def test_linear_autoencoder_spans_pca_subspace():
    """(REP.7) a linear AE trained by squared error on the centred digits; (REP.8) the decoder's
    column space is the top-k PCA subspace (all principal angles < 1e-2 rad) and the
    reconstruction error reaches PCA's, the sum of the discarded eigenvalues (REP.5)."""
    X, _ = load_digits("train")
    Xc = X - X.mean(axis=0)
    k = 3
    rng = np.random.default_rng(0)
    ae = linear_autoencoder(64, k, rng=rng, bias=False)
    ae.fit(Xc, rng=rng, epochs=400, batch_size=None, lr=1e-2, progress=False)
    pca = PCA(k).fit(Xc)
    W_d = ae.decoder.params["weight"]                      # (64, k)
    angles = principal_angles(W_d, pca.components_.T)
    assert angles.max() < 1e-2, angles
    # W_d W_e acts as the projector V_k V_k^T (REP.8) on the data's span (directions in which
    # the digits never vary, e.g. always-blank pixels, get no gradient and keep their init)
    P = W_d @ ae.encoder.params["weight"]
    Vk = pca.components_.T
    assert np.abs(P @ Vk - Vk).max() < 1e-3
    err_ae = reconstruction_error(Xc, ae.reconstruct(Xc))
    err_pca = reconstruction_error(Xc, pca.reconstruct(Xc))
    assert err_ae == pytest.approx(err_pca, rel=1e-4)
    # a random (untrained) decoder is far from the subspace: the test can fail
    fresh = linear_autoencoder(64, k, rng=np.random.default_rng(1), bias=False)
    assert principal_angles(fresh.decoder.params["weight"], Vk).max() > 0.5


def _param_gradcheck(ae: Autoencoder, X: np.ndarray, rng: np.random.Generator, name: str, p, g):
    """Dot-product test of the gradient of the loss (REP.9) with respect to one parameter."""
    original = p.copy()

    def loss(p_):
        p[...] = p_
        try:
            return ae.evaluate(X)
        finally:
            p[...] = original

    def grad(_):
        ae.zero_grad()
        ae.loss_and_grad(X)
        return g.copy()

    gradcheck(loss, grad, original, rng=rng)


@pytest.mark.parametrize("kind,loss", [("dense", "mse"), ("dense", "bce"), ("conv", "mse"), ("conv", "bce")])
def test_autoencoder_gradient_dot_product(kind, loss, rng):
    """(REP.9) the training gradient of every parameter matches central differences of the
    loss (tanh activations: smooth, so the difference stencil never straddles a kink)."""
    X = rng.uniform(0.05, 0.95, size=(5, 64))
    if kind == "dense":
        ae = dense_autoencoder(64, 3, hidden=(10,), rng=rng, activation="tanh", loss=loss)
    else:
        ae = conv_autoencoder((1, 8, 8), 3, channels=(3, 4), rng=rng, loss=loss, activation="tanh")
    for name, p, g in ae.encoder.named_parameters("encoder."):
        _param_gradcheck(ae, X, rng, name, p, g)
    for name, p, g in ae.decoder.named_parameters("decoder."):
        _param_gradcheck(ae, X, rng, name, p, g)


def test_broken_decoder_backward_is_caught(rng, monkeypatch):
    """(REP.9) the check can fail: a decoder backward that halves its input gradient."""
    ae = dense_autoencoder(64, 3, hidden=(10,), rng=rng, activation="tanh")
    X = rng.uniform(size=(4, 64))
    original_backward = ae.decoder.backward
    monkeypatch.setattr(ae.decoder, "backward", lambda c, d: 0.5 * original_backward(c, d))
    _, p, g = next(iter(ae.encoder.named_parameters()))   # the first layer's weight
    with pytest.raises(AssertionError, match="dot-product test failed"):
        _param_gradcheck(ae, X, rng, "encoder.0.weight", p, g)


def test_dense_autoencoder_trains_on_digits():
    """Training lowers the validation loss well below its starting value; the API shapes."""
    X, _ = load_digits("train")
    X_val, _ = load_digits("val")
    rng = np.random.default_rng(3)
    ae = dense_autoencoder(64, 2, hidden=(64,), rng=rng, loss="bce")
    start = ae.evaluate(X_val)
    assert ae.fit(X, rng=rng, epochs=8, batch_size=64, lr=3e-3, X_val=X_val, progress=False) is ae
    hist = ae.history_
    assert len(hist["train_loss"]) == 8 and len(hist["val_loss"]) == 8
    assert hist["val_loss"][-1] < 0.75 * start
    Z = ae.encode(X_val)
    assert Z.shape == (X_val.shape[0], 2)
    X_hat = ae.decode(Z)
    assert X_hat.shape == X_val.shape and X_hat.min() >= 0 and X_hat.max() <= 1
    np.testing.assert_array_equal(ae.reconstruct(X_val), X_hat)
    # a second fit continues from the current weights; history_ describes that call
    ae.fit(X, rng=rng, epochs=1, progress=False)
    assert len(ae.history_["train_loss"]) == 1 and ae.history_["val_loss"] == []


def test_conv_autoencoder_digits_and_mnist_shapes(rng):
    """8x8 -> 4x4 -> 2x2 and 28x28 -> 14x14 -> 7x7 and back; a few steps lower the loss."""
    ae = conv_autoencoder((1, 28, 28), 5, channels=(2, 3), rng=rng)
    X = rng.uniform(size=(3, 784))
    assert ae.encode(X).shape == (3, 5)
    assert ae.reconstruct(X).shape == (3, 784)
    X8, _ = load_digits("val")
    ae8 = conv_autoencoder((1, 8, 8), 4, channels=(8, 16), rng=rng, loss="bce")
    start = ae8.evaluate(X8)
    ae8.fit(X8, rng=rng, epochs=3, batch_size=32, lr=3e-3, progress=False)
    assert ae8.evaluate(X8) < 0.9 * start


def test_autoencoder_bad_inputs(rng):
    ae = dense_autoencoder(64, 2, hidden=(8,), rng=rng, loss="bce")
    with pytest.raises(ValueError, match="X: expected shape"):
        ae.encode(np.zeros((3, 10)))
    with pytest.raises(ValueError, match="Z: expected shape"):
        ae.decode(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="X: loss='bce' expects data in"):
        ae.fit(np.full((4, 64), 2.0), rng=rng, progress=False)
    with pytest.raises(ValueError, match="rng"):
        ae.fit(np.zeros((4, 64)), rng="0", progress=False)
    with pytest.raises(ValueError, match="epochs"):
        ae.fit(np.zeros((4, 64)), rng=rng, epochs=0, progress=False)
    with pytest.raises(ValueError, match="lr"):
        ae.fit(np.zeros((4, 64)), rng=rng, lr=-1.0, progress=False)
    with pytest.raises(ValueError, match="loss"):
        dense_autoencoder(64, 2, rng=rng, loss="l1")
    with pytest.raises(ValueError, match="latent_dim"):
        dense_autoencoder(64, 0, rng=rng)
    with pytest.raises(ValueError, match="image_shape"):
        conv_autoencoder((1, 10, 10), 2, rng=rng)
    with pytest.raises(ValueError, match="encoder"):
        Autoencoder("net", Linear(2, 4, rng=rng), in_features=4, latent_dim=2)


def test_autoencoder_tour_section_quick(tmp_path):
    from nprefgen.tour import run_tour

    path = run_tour(tmp_path, quick=True, only=["autoencoder"], progress=False, strict=True)
    text = open(path, encoding="utf-8").read()
    assert "autoencoder-" in text and "<table>" in text


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_a_diverging_autoencoder_raises_and_keeps_finite_weights(loss):
    """Issue 13 class 6: lr=1e4 explodes the reconstruction loss in the first epoch; fit restores
    the initial weights and raises TrainingDivergedError naming the lr."""
    from nprefgen.nn.train import TrainingDivergedError

    X = np.random.default_rng(0).random((100, 6))
    ae = dense_autoencoder(6, 2, (8,), rng=0, loss=loss)
    start = [p.copy() for p, _ in ae.parameters()]
    with pytest.raises(TrainingDivergedError, match=r"diverged.*lr=10000\b"):
        ae.fit(X, rng=1, lr=1e4, epochs=10)
    assert all(np.array_equal(p, s) for (p, _), s in zip(ae.parameters(), start))
    assert ae.history_ is None                             # no successful fit yet
    # the optimizer that saw the diverging steps is dropped: a second try repeats the first
    with pytest.raises(TrainingDivergedError) as again:
        ae.fit(X, rng=1, lr=1e4, epochs=10)
    fresh = dense_autoencoder(6, 2, (8,), rng=0, loss=loss)
    with pytest.raises(TrainingDivergedError) as first:
        fresh.fit(X, rng=1, lr=1e4, epochs=10)
    assert again.value.history == first.value.history


def test_fit_holds_out_a_validation_fraction_and_stops_early(rng):
    """validation_fraction and patience come from the shared loop: the held-out rows are
    monitored and the best epoch's weights are kept."""
    X = rng.random((60, 6))
    ae = dense_autoencoder(6, 2, (8,), rng=0)
    assert ae.fit(X, rng=2, epochs=6, batch_size=16, lr=1e-2, validation_fraction=0.25,
                  patience=2) is ae
    hist = ae.history_
    assert len(hist["val_loss"]) == hist["epochs"] and hist["epochs"] <= 6
    assert hist["val_loss"][hist["best_epoch"]] == min(hist["val_loss"])
    assert ae.evaluate(X[np.random.default_rng(2).permutation(60)[:15]]) == min(hist["val_loss"])
