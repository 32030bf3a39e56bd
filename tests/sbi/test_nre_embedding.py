"""NRE with an embedding network (derivations/sbi.md, SBI.25a; derivations/fields.md, FIELD.2).

The classifier sees (theta, h_psi(x)); each embedded c_i enters the joint pair i and the marginal
pair i, so dL/dc_i is the sum of two rows' input gradients, which the embedding's backward turns
into dL/dpsi. The whole parameter gradient (classifier and embedding) is checked end to end by
the dot-product test (NN.18) with tanh activations (a ReLU kink inside the stencil would be a
false alarm), for plain and balanced NRE and the three embeddings; dropping the marginal row's
share of dL/dc, or scaling the embedding's gradient, is caught by the same test.
"""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.sbi import BoxUniform
from nprefgen.sbi.embedded import EmbeddedClassifier
from nprefgen.sbi.embeddings import CNNEmbedding, DeepSetEmbedding, MLPEmbedding
from nprefgen.sbi.nre import NRE, RatioPosterior
from nprefgen.testing.bijector_checks import randomize_parameters
from nprefgen.testing.gradcheck import gradcheck

PRIOR = BoxUniform([-2.0, -2.0], [2.0, 2.0])
SMALL = dict(hidden=(6,), activation="tanh", n_chains=2, n_warmup=5)


def _case(kind, rng, n=24):
    """(embedding, theta, x): x depends on theta, so the classifier has something to learn."""
    theta = PRIOR.sample(n, rng=rng)
    if kind == "mlp":
        emb = MLPEmbedding(5, 3, (6,), activation="tanh", rng=rng)
        x = np.concatenate([theta, theta[:, :1] * theta[:, 1:]], axis=1)[:, [0, 1, 2, 0, 1]]
        x = x + 0.3 * rng.standard_normal(x.shape)
    elif kind == "cnn":
        emb = CNNEmbedding((5, 5), 3, (3,), hidden=(4,), activation="tanh", rng=rng)
        x = theta[:, :1, None] + 0.5 * rng.standard_normal((n, 5, 5))          # (n, h, w)
    else:
        emb = DeepSetEmbedding(2, 3, phi_hidden=(5,), phi_features=4, rho_hidden=(4,),
                               activation="tanh", rng=rng)
        x = theta[:, None, :] + 0.5 * rng.standard_normal((n, 6, 2))           # (n, k, d)
    return emb, theta, x


def _trained(kind, rng, balance=0.0, n=24):
    emb, theta, x = _case(kind, rng, n)
    est = NRE(PRIOR, balance=balance, embedding=emb, **SMALL)
    post = est.train(theta, x, rng=rng, max_epochs=1, batch_size=12, progress=False)
    return est, post, theta, x


def _model(est):
    return EmbeddedClassifier(est.ratio.net, est.embedding_)


def _flat(module, which="params"):
    return np.concatenate([(p if which == "params" else g).ravel()
                           for _, p, g in module.named_parameters()])


def _set_flat(module, v):
    i = 0
    for _, p, _ in module.named_parameters():
        p[...] = v[i:i + p.size].reshape(p.shape)
        i += p.size


def _check_gradient(est, theta, x, rng):
    model = _model(est)
    randomize_parameters(model, rng=rng, scale=0.5)          # non-trivial weights
    est.embedding_.x_mean = est.embedding_.x_mean + 0.1      # z-scoring inside the chain rule
    est.embedding_.x_std = est.embedding_.x_std * 1.7
    w0 = _flat(model)
    x = est.embedding_.check_x(x)

    def fun(w):
        _set_flat(model, w)
        return np.array(est.evaluate(theta, x))

    def grad(w):
        _set_flat(model, w)
        model.zero_grad()
        est.loss_and_grad(theta, x)
        return _flat(model, "grads")

    try:
        return gradcheck(fun, grad, w0, rng=rng, n_directions=3)
    finally:
        _set_flat(model, w0)


@pytest.mark.parametrize("balance", [0.0, 100.0])
@pytest.mark.parametrize("kind", ["mlp", "cnn", "deepset"])
def test_loss_gradient_flows_into_the_embedding(kind, balance, rng):
    """(SBI.25a) (FIELD.2) dL/d(classifier, embedding) of one minibatch (SBI.22-SBI.25), end to end
    through the classifier's input gradient and the embedding's backward."""
    est, _, theta, x = _trained(kind, rng, balance)
    _check_gradient(est, theta[:10], x[:10], rng)
    model = _model(est)
    model.zero_grad()
    est.loss_and_grad(theta[:10], est.embedding_.check_x(x[:10]))
    g_emb = np.concatenate([g.ravel() for _, _, g in est.embedding_.named_parameters()])
    assert np.linalg.norm(g_emb) > 1e-6                      # the embedding does get a gradient


class _DropsMarginalShare(NRE):
    """A plausible slip: c_i's gradient taken from the joint row only (SBI.25a's sum halved)."""

    def loss_and_grad(self, theta, x):
        loss, d_logits, (cache, e_cache) = self._forward_loss(theta, x)
        d_in = self.ratio.net.backward(cache, d_logits[:, None])
        n, p = theta.shape
        self.embedding_._backward(e_cache, d_in[:n, p:])
        return loss


class _ScalesEmbeddingGradient(NRE):
    """Another: the embedding's gradient scaled (e.g. by a forgotten 1/2 of a mean over 2n)."""

    def loss_and_grad(self, theta, x):
        loss, d_logits, (cache, e_cache) = self._forward_loss(theta, x)
        d_in = self.ratio.net.backward(cache, d_logits[:, None])
        n, p = theta.shape
        self.embedding_._backward(e_cache, 0.5 * (d_in[:n, p:] + d_in[n:, p:]))
        return loss


@pytest.mark.parametrize("broken", [_DropsMarginalShare, _ScalesEmbeddingGradient])
def test_a_planted_bug_in_the_embedding_gradient_is_caught(broken, rng):
    emb, theta, x = _case("deepset", rng)
    est = broken(PRIOR, embedding=emb, **SMALL)
    est.train(theta, x, rng=rng, max_epochs=1, batch_size=12, progress=False)
    with pytest.raises(AssertionError, match="dot-product"):
        _check_gradient(est, theta[:10], x[:10], rng)


def test_structured_x_shapes(rng):
    """Sets (n, k, d) and maps (n, h, w): one observation, an iid set of observations, a batch of
    observations; wrong shapes name the argument."""
    est, post, theta, x = _trained("deepset", rng)
    assert isinstance(post, RatioPosterior) and post.dim_x == 3
    assert post.sample(8, x[0], rng=0).shape == (8, 2)              # one set (k, d)
    assert post.sample(8, x[:3], rng=0).shape == (8, 2)             # 3 iid observations
    assert post.sample(8, x[0, :4], rng=0).shape == (8, 2)          # another set size
    assert post.sample_batched(8, x[:4], rng=0).shape == (4, 8, 2)
    assert post.sample_batched(8, x[:4].reshape(2, 2, 6, 2), rng=0).shape == (2, 8, 2)
    lp = post.log_prob(theta[:5], x[0])
    assert lp.shape == (5,) and np.all(np.isfinite(lp))
    # (SBI.24) an iid set's log-ratio is the sum of its members'
    np.testing.assert_allclose(post.log_prob(theta[:5], x[:2]) - PRIOR.log_prob(theta[:5]),
                               post.log_prob(theta[:5], x[0]) + post.log_prob(theta[:5], x[1])
                               - 2 * PRIOR.log_prob(theta[:5]), rtol=1e-12, atol=1e-12)
    # the deep set is permutation invariant, so is the posterior
    np.testing.assert_allclose(post.log_prob(theta[:5], x[0, ::-1]), lp, rtol=1e-12, atol=1e-12)
    post.set_default_x(x[1])
    np.testing.assert_array_equal(post.log_prob(theta[:5]), post.log_prob(theta[:5], x[1]))
    with pytest.raises(ValueError, match="x"):
        post.log_prob(theta[:5], np.zeros((6, 3)))                  # elements of the wrong size
    with pytest.raises(ValueError, match="xs"):
        post.sample_batched(4, np.zeros(4), rng=0)
    _, post_map, _, x_map = _trained("cnn", rng)
    assert x_map.shape[1:] == (5, 5)
    assert post_map.sample(8, x_map[0], rng=0).shape == (8, 2)          # (h, w)
    assert post_map.sample(8, x_map[0][None], rng=0).shape == (8, 2)    # (1, h, w)
    assert post_map.sample_batched(8, x_map[:3], rng=0).shape == (3, 8, 2)


def test_structured_x_without_an_embedding_says_what_to_do(rng):
    _, theta, x = _case("deepset", rng)
    with pytest.raises(ValueError, match=r"x: .*flatten.*DeepSetEmbedding.* to NRE"):
        NRE(PRIOR, **SMALL).train(theta, x, rng=0)


def test_embedding_output_size_and_bad_inputs_name_the_argument(rng):
    class Liar(MLPEmbedding):                 # declares 3 outputs, gives 4
        def _net_forward(self, z):
            c, cache = super()._net_forward(z)
            return np.concatenate([c, c[:, :1]], axis=1), cache

    _, theta, x = _case("mlp", rng)
    with pytest.raises(ValueError, match="embedding"):
        NRE(PRIOR, embedding=Liar(5, 3, (4,), rng=0), **SMALL).train(theta, x, rng=0)
    with pytest.raises(ValueError, match="embedding"):
        NRE(PRIOR, embedding="deepset")
    emb = MLPEmbedding(5, 3, (6,), rng=0)
    with pytest.raises(ValueError, match="x"):
        NRE(PRIOR, embedding=emb, **SMALL).train(theta, x[:, :4], rng=0)     # wrong width
    with pytest.raises(ValueError, match="x"):
        NRE(PRIOR, embedding=emb, **SMALL).train(theta, x[:-1], rng=0)       # rows
    with pytest.raises(ValueError, match="theta"):
        NRE(PRIOR, embedding=emb, **SMALL).train(theta + 5.0, x, rng=0)      # outside the prior


def test_same_seed_same_posterior_and_the_untrained_embedding_is_kept(rng):
    emb, theta, x = _case("deepset", rng)
    before = _flat(emb)
    est = NRE(PRIOR, embedding=emb, **SMALL)
    p1 = est.train(theta, x, rng=3, max_epochs=2, batch_size=12, progress=False)
    lp1 = p1.log_prob(theta[:6], x[0])
    p2 = est.train(theta, x, rng=np.random.default_rng(3), max_epochs=2, batch_size=12,
                   progress=False)
    np.testing.assert_array_equal(p2.log_prob(theta[:6], x[0]), lp1)
    np.testing.assert_array_equal(p1.sample(8, x[0], rng=1), p1.sample(8, x[0], rng=1))
    np.testing.assert_array_equal(_flat(emb), before)              # est.embedding untouched
    assert not np.array_equal(_flat(est.embedding_), before)        # its copy was trained
    p3 = est.train(theta, x, rng=4, max_epochs=2, batch_size=12, progress=False)
    assert not np.array_equal(p3.log_prob(theta[:6], x[0]), lp1)


def test_save_and_load_include_the_embedding(rng, tmp_path):
    est, post, theta, x = _trained("cnn", rng)
    path = tmp_path / "nre_cnn.npz"
    post.save(path)
    back = RatioPosterior.load(path, PRIOR)
    assert back.embedding.config() == est.embedding_.config()
    np.testing.assert_array_equal(back.log_prob(theta[:5], x[0]), post.log_prob(theta[:5], x[0]))
    np.testing.assert_array_equal(back.sample(8, x[:2], rng=1), post.sample(8, x[:2], rng=1))
    np.testing.assert_array_equal(back.embedding.x_std, est.embedding_.x_std)
    # a wrong embedding for the file, or one for a file without an embedding: named
    with pytest.raises(ValueError, match="embedding"):
        NRE.load(path, PRIOR, embedding=CNNEmbedding((5, 5), 4, (3,), hidden=(4,), rng=0))
    plain = NRE(PRIOR, **SMALL)
    plain.train(theta, np.c_[theta, theta], rng=0, max_epochs=1, progress=False)
    plain.save(tmp_path / "plain.npz")
    with pytest.raises(ValueError, match="embedding"):
        NRE.load(tmp_path / "plain.npz", PRIOR, embedding=MLPEmbedding(4, 3, rng=0))


def test_a_custom_embedding_is_passed_again_on_load(rng, tmp_path):
    class Custom(DeepSetEmbedding):
        def config(self):
            return None

    emb, theta, x = _case("deepset", rng)
    custom = Custom(2, 3, phi_hidden=(5,), phi_features=4, rho_hidden=(4,), rng=1)
    post = NRE(PRIOR, embedding=custom, **SMALL).train(theta, x, rng=0, max_epochs=1,
                                                      progress=False)
    path = tmp_path / "custom.npz"
    post.save(path)
    with pytest.raises(ValueError, match="path.*embedding="):
        NRE.load(path, PRIOR)
    fresh = Custom(2, 3, phi_hidden=(5,), phi_features=4, rho_hidden=(4,), rng=9)
    back = RatioPosterior.load(path, PRIOR, embedding=fresh)
    np.testing.assert_array_equal(back.log_prob(theta[:4], x[1]), post.log_prob(theta[:4], x[1]))
    wrong = Custom(2, 3, phi_hidden=(7,), phi_features=4, rho_hidden=(4,), rng=9)
    w_before = _flat(wrong)
    with pytest.raises(ValueError, match="path"):
        NRE.load(path, PRIOR, embedding=wrong)                  # other widths: all or nothing
    np.testing.assert_array_equal(_flat(wrong), w_before)


def test_nle_refuses_structured_x_and_says_what_to_do(rng):
    """NLE models x itself (derivations/sbi.md, section 4): sets and maps are refused with the
    ways out, before any training."""
    from nprefgen.sbi import NLE

    theta = PRIOR.sample(20, rng=rng)
    for x in (rng.standard_normal((20, 5, 2)), rng.standard_normal((20, 1, 4, 4))):
        with pytest.raises(ValueError, match=r"x: expected shape \(n, dx\).*NLE models the "
                                             r"density of x itself.*flatten.*iid.*summary"):
            NLE(PRIOR).train(theta, x, rng=0)
