"""Embedding networks trained jointly with NPE (derivations/fields.md, FIELD.1-FIELD.3).

The gradient of the NPE loss (FIELD.1) with respect to the embedding's parameters and to the raw
x passes through the flow's context gradient (FLOW.4) and the embedding's backward (FIELD.2):
both are checked end to end by the dot-product test (NN.18) against fourth-order central
differences, with tanh activations (a ReLU kink inside the stencil would be a false alarm); a
planted bug in the deep set's pooling gradient (FIELD.3) is caught.
"""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.sbi import NPE, BoxUniform, DirectPosterior
from nprefgen.sbi.embedded import EmbeddedFlow, EmbeddedPosterior
from nprefgen.sbi.embeddings import (
    CNNEmbedding, DeepSetEmbedding, Embedding, MLPEmbedding, embedding_from_config,
)
from nprefgen.sbi.npe import build_flow
from nprefgen.testing.bijector_checks import randomize_parameters
from nprefgen.testing.gradcheck import check_vjp, gradcheck

PRIOR = BoxUniform([-2.0, -2.0], [2.0, 2.0])
SMALL = dict(n_transforms=2, hidden=8)


def _embeddings(rng):
    """(embedding, x) for each network, tanh so the loss is smooth."""
    return [
        (MLPEmbedding(5, 3, (6,), activation="tanh", rng=rng), rng.standard_normal((7, 5))),
        (CNNEmbedding((2, 6, 6), 3, (3, 4), hidden=(5,), activation="tanh", rng=rng),
         rng.standard_normal((4, 2, 6, 6))),
        (CNNEmbedding((5, 5), 3, (3,), hidden=(4,), activation="tanh", rng=rng),
         rng.standard_normal((3, 5, 5))),
        (DeepSetEmbedding(2, 3, phi_hidden=(5,), phi_features=4, rho_hidden=(4,),
                          activation="tanh", rng=rng), rng.standard_normal((5, 6, 2))),
    ]


def _model(embedding, rng, kind="nsf"):
    flow = build_flow(kind, 2, embedding.out_features, 2, 8, None, None, rng=rng)
    randomize_parameters(flow, rng=rng, scale=0.3)      # non-trivial conditioners
    embedding.x_mean = embedding.x_mean + 0.1            # z-scoring inside the chain rule
    embedding.x_std = embedding.x_std * 1.7
    return EmbeddedFlow(flow, embedding)


def _flat(model):
    return np.concatenate([p.ravel() for _, p, _ in model.embedding.named_parameters()])


def _set_flat(model, v):
    i = 0
    for _, p, _ in model.embedding.named_parameters():
        p[...] = v[i:i + p.size].reshape(p.shape)
        i += p.size


def _loss_and_grads(model, theta, x):
    model.zero_grad()
    loss, _, d_x = model.nll_and_grad(theta, x)
    d_psi = np.concatenate([g.ravel() for _, _, g in model.embedding.named_parameters()])
    return loss, d_psi, d_x


@pytest.mark.parametrize("i", range(4))
def test_loss_gradient_through_the_context_into_the_embedding(i, rng):
    """(FIELD.1) (FIELD.2) (NN.18) dL/dpsi and dL/dx of the NPE loss, end to end."""
    embedding, x = _embeddings(rng)[i]
    x = embedding.check_x(x)                  # (n, h, w) maps become (n, 1, h, w)
    model = _model(embedding, rng)
    theta = rng.uniform(-1.5, 1.5, (x.shape[0], 2))
    psi0 = _flat(model)

    def loss_of_psi(v):
        _set_flat(model, v)
        return model.nll_and_grad(theta, x)[0]

    _, d_psi, d_x = _loss_and_grads(model, theta, x)
    gradcheck(loss_of_psi, lambda v: d_psi, psi0, rng=rng, n_directions=3)
    _set_flat(model, psi0)
    gradcheck(lambda xx: model.nll_and_grad(theta, xx)[0], lambda xx: d_x, x, rng=rng,
              n_directions=3)


def test_embedding_layer_vjp_on_its_own(rng):
    """(FIELD.2) the embedding's backward alone: J^T v for random v (not only the flow's d_c)."""
    for embedding, x in _embeddings(rng):
        y, cache = embedding.forward(x)
        check_vjp(lambda xx: embedding.forward(xx)[0],
                  lambda v: embedding.backward(cache, v), x, rng=rng)


def test_a_planted_bug_in_the_pooling_gradient_is_caught(rng, monkeypatch):
    """(FIELD.3) without the 1/k of the mean's gradient the dot-product test fails."""
    embedding, x = _embeddings(rng)[3]
    model = _model(embedding, rng)
    theta = rng.uniform(-1.5, 1.5, (x.shape[0], 2))

    def wrong(self, cache, d_c):
        (n, k, d), c_phi, c_rho = cache
        d_e = np.repeat(self.rho._backward(c_rho, d_c), k, axis=0)      # forgot / k
        return self.phi._backward(c_phi, d_e).reshape(n, k, d)

    monkeypatch.setattr(DeepSetEmbedding, "_net_backward", wrong)
    _, _, d_x = _loss_and_grads(model, theta, x)
    with pytest.raises(AssertionError, match="dot-product test failed"):
        gradcheck(lambda xx: model.nll_and_grad(theta, xx)[0], lambda xx: d_x, x, rng=rng)


def test_deep_set_is_permutation_invariant_and_takes_any_set_size(rng):
    """(FIELD.3) permuting the elements leaves the output unchanged; k may vary."""
    net = DeepSetEmbedding(3, 4, rng=rng)
    x = rng.standard_normal((6, 9, 3))
    perm = x[:, rng.permutation(9)]
    np.testing.assert_allclose(net(x), net(perm), rtol=0, atol=1e-12)
    assert net(x[:, :4]).shape == (6, 4)


def test_bad_inputs_name_the_argument(rng):
    theta = PRIOR.sample(20, rng=rng)
    with pytest.raises(ValueError, match=r"x: expected shape \(n, dx\).*flatten.*DeepSetEmbedding"):
        NPE(PRIOR).train(theta, rng.standard_normal((20, 5, 2)))
    with pytest.raises(ValueError, match=r"x: .*flatten.*CNNEmbedding"):
        NPE(PRIOR).train(theta, rng.standard_normal((20, 1, 4, 4)))
    with pytest.raises(ValueError, match="embedding: expected None or an"):
        NPE(PRIOR, embedding="cnn")
    with pytest.raises(ValueError, match=r"x: expected shape \(n, \*, 2\) for DeepSetEmbedding"):
        NPE(PRIOR, embedding=DeepSetEmbedding(2, 3, rng=0)).train(theta, rng.standard_normal((20, 3)))
    with pytest.raises(ValueError, match="x: expected 20 rows"):
        NPE(PRIOR, embedding=MLPEmbedding(3, 2, rng=0)).train(theta, rng.standard_normal((19, 3)))

    class Liar(MLPEmbedding):
        """Declares 4 outputs, produces 2."""

        def __init__(self):
            super().__init__(3, 2, (4,), rng=0)
            self.out_features = 4

    with pytest.raises(ValueError, match="embedding: Liar declares out_features=4"):
        NPE(PRIOR, embedding=Liar(), **SMALL).train(theta, rng.standard_normal((20, 3)),
                                                     max_epochs=1)
    with pytest.raises(ValueError, match="image_shape"):
        CNNEmbedding((16,), 2)
    with pytest.raises(ValueError, match="channels"):
        CNNEmbedding((4, 4), 2, channels=())


def test_constructor_arguments():
    """Hyper-parameters are checked by name."""
    for make, arg in [(lambda: MLPEmbedding(0, 2), "in_features"),
                      (lambda: MLPEmbedding(3, 0), "out_features"),
                      (lambda: MLPEmbedding(3, 2, hidden=5), "hidden"),
                      (lambda: MLPEmbedding(3, 2, activation="gelu"), "activation"),
                      (lambda: MLPEmbedding(3, 2, rng="0"), "rng"),
                      (lambda: CNNEmbedding((0, 4), 2), "input_shape"),
                      (lambda: CNNEmbedding((4, 4), 2, kernel_size=0), "kernel_size"),
                      (lambda: CNNEmbedding((4, 4), 2, channels=(4, -1)), "channels"),
                      (lambda: DeepSetEmbedding(0, 2), "element_dim"),
                      (lambda: DeepSetEmbedding(2, 2, phi_features=0), "phi_features"),
                      (lambda: DeepSetEmbedding(2, 2, rho_hidden=None), "rho_hidden")]:
        with pytest.raises(ValueError, match=rf"^{arg}\b"):
            make()
    with pytest.raises(ValueError, match="^config"):
        embedding_from_config({"kind": "rnn"})
    net = MLPEmbedding(3, 2, rng=0)
    with pytest.raises(ValueError, match="^x: expected finite"):
        net.standardize(np.full((4, 3), np.nan))
    with pytest.raises(ValueError, match=r"^x: expected one observation"):
        net.check_one(np.zeros((2, 3)))


def test_maps_with_and_without_channel_axis_train_and_sample(rng):
    """(n, h, w) maps are (n, 1, h, w); one observation may come as (h, w) or (1, h, w)."""
    theta = PRIOR.sample(60, rng=rng)
    x = theta[:, :1, None] + 0.3 * rng.standard_normal((60, 6, 6))
    npe = NPE(PRIOR, embedding=CNNEmbedding((6, 6), 3, (2, 2), rng=0), **SMALL)
    post = npe.train(theta, x, rng=1, max_epochs=2)
    assert isinstance(post, EmbeddedPosterior) and npe.embedding_ is not npe.embedding
    a = post.sample(5, x[0], rng=3)
    np.testing.assert_array_equal(a, post.sample(5, x[:1], rng=3))
    np.testing.assert_array_equal(a, post.sample(5, x[0][None, None], rng=3))
    assert post.sample_batched(4, x[:3], rng=0).shape == (3, 4, 2)
    lp = post.log_prob_pairs(theta[:3], x[:3])
    np.testing.assert_allclose(lp, [post.log_prob(theta[i:i + 1], x[i])[0] for i in range(3)],
                               rtol=1e-12)
    post.set_default_x(x[1])
    np.testing.assert_array_equal(post.sample(3, rng=4), post.sample(3, x[1], rng=4))
    with pytest.raises(ValueError, match="x: expected one observation"):
        post.sample(2, x[:2], rng=0)


def test_same_seed_same_posterior_and_the_untrained_embedding_is_kept(rng):
    theta = PRIOR.sample(50, rng=rng)
    x = theta[:, None, :] + rng.standard_normal((50, 4, 2))
    npe = NPE(PRIOR, embedding=DeepSetEmbedding(2, 2, rng=0), **SMALL)
    before = npe.embedding.state_dict()
    a = npe.train(theta, x, rng=5, max_epochs=2).log_prob(theta[:4], x[0])
    b = npe.train(theta, x, rng=5, max_epochs=2).log_prob(theta[:4], x[0])
    np.testing.assert_array_equal(a, b)
    for k, v in npe.embedding.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    assert set(npe.history_) >= {"train_loss", "val_loss", "best_epoch"}


def test_save_and_load_include_the_embedding(rng, tmp_path):
    theta = PRIOR.sample(60, rng=rng)
    x = theta[:, :, None, None] + 0.3 * rng.standard_normal((60, 2, 5, 5))
    post = NPE(PRIOR, embedding=CNNEmbedding((2, 5, 5), 3, (2,), rng=0), **SMALL).train(
        theta, x, rng=1, max_epochs=2)
    path = tmp_path / "post.npz"
    post.save(path)
    again = EmbeddedPosterior.load(path, PRIOR)
    np.testing.assert_array_equal(again.log_prob(theta[:6], x[2]), post.log_prob(theta[:6], x[2]))
    np.testing.assert_array_equal(again.embedding.x_std, post.embedding.x_std)
    assert not np.allclose(post.embedding.x_std, 1.0)        # the statistics were saved
    # a custom embedding passed in, constructed the same way
    mine = CNNEmbedding((2, 5, 5), 3, (2,), rng=99)
    again = EmbeddedPosterior.load(path, PRIOR, embedding=mine)
    np.testing.assert_array_equal(again.log_prob(theta[:6], x[2]), post.log_prob(theta[:6], x[2]))
    with pytest.raises(ValueError, match="embedding: expected out_features=3"):
        EmbeddedPosterior.load(path, PRIOR, embedding=CNNEmbedding((2, 5, 5), 4, (2,), rng=0))
    with pytest.raises(ValueError, match="path: .* does not fit"):
        EmbeddedPosterior.load(path, PRIOR, embedding=CNNEmbedding((2, 5, 5), 3, (3,), rng=0))
    with pytest.raises(ValueError, match="path"):
        DirectPosterior.load(path, PRIOR)                   # not a plain flow file
    with pytest.raises(ValueError, match="prior has 3"):
        EmbeddedPosterior.load(path, BoxUniform([0, 0, 0], [1, 1, 1]))


def test_config_round_trip():
    for net in (MLPEmbedding(4, 2, rng=0), CNNEmbedding((3, 8, 8), 5, rng=0),
                CNNEmbedding((8, 8), 5, rng=0), DeepSetEmbedding(3, 2, rng=0)):
        again = embedding_from_config(net.config())
        assert again.config() == net.config() and type(again) is type(net)
        assert again.input_shape == net.input_shape
    assert Embedding((2,), 1).config() is None


@pytest.mark.slow
def test_deep_set_npe_recovers_the_gaussian_mean_posterior():
    """(FIELD.1) (FIELD.3) k = 10 iid draws of N(mu, 1), mu ~ U(-2, 2)^2: the posterior is
    N(xbar, 1/k) (the box barely truncates it). Mean error allowed: 4 sd / sqrt(draws) plus 0.25
    posterior sd for the flow's and the embedding's estimation error at 3000 simulations; sd
    ratio within 25 % (a network ignoring x gives the prior's sd 1.15, 3.6 times too wide)."""
    rng = np.random.default_rng(7)
    k = 10
    theta = PRIOR.sample(3000, rng=rng)
    x = theta[:, None, :] + rng.standard_normal((3000, k, 2))
    post = NPE(PRIOR, embedding=DeepSetEmbedding(2, 4, rng=1), n_transforms=3, hidden=32).train(
        theta, x, rng=2, max_epochs=60, patience=10)
    sd = 1.0 / np.sqrt(k)
    for mu in ([0.3, -0.5], [-1.0, 0.8]):
        obs = np.array(mu) + rng.standard_normal((k, 2))
        d = post.sample(2000, obs, rng=rng)
        assert np.all(np.abs(d.mean(0) - obs.mean(0)) < 4 * sd / np.sqrt(2000) + 0.25 * sd)
        assert np.all(np.abs(d.std(0) / sd - 1) < 0.25), d.std(0)
