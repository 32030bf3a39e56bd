"""Golden cases of the models with a loss (:mod:`nprefgen.testing.golden`): the autoencoder's
reconstruction loss, SimCLR's NT-Xent, the Gaussian mixture's log-likelihood, the VAE's ELBO with
fixed eps and the NCSN's DSM loss with fixed noise. float64 only (the models compute in float64).

Every input gradient includes every path through which the input enters the loss (an
autoencoder's and a VAE's data are also the reconstruction target), as autograd computes it.
"""
from __future__ import annotations

import numpy as np

from nprefgen.kernels.dsm import dsm_loss
from nprefgen.models.autoencoder import dense_autoencoder, reconstruction_loss
from nprefgen.models.contrastive import dense_simclr, ntxent_loss
from nprefgen.models.gmm import GaussianMixture, log_gaussian_prob, precision_cholesky
from nprefgen.models.ncsn import NCSN, geometric_sigmas
from nprefgen.models.vae import dense_vae
from nprefgen.testing.bijector_checks import randomize_parameters
from nprefgen.testing.golden import Record, param_grads, register_case

F64 = ("float64",)


def _prefixed(**modules) -> tuple[dict, dict]:
    """state_dicts and gradients of several networks under ``<name>.`` prefixes."""
    params, grads = {}, {}
    for prefix, module in modules.items():
        params.update({f"{prefix}.{k}": v for k, v in module.state_dict().items()})
        grads.update({f"{prefix}.{k}": v for k, v in param_grads(module).items()})
    return params, grads


def _load_prefixed(params: dict, **modules) -> None:
    """Inverse of :func:`_prefixed`: load ``<name>.``-prefixed arrays into each network."""
    for prefix, module in modules.items():
        module.load_state_dict({k[len(prefix) + 1:]: v for k, v in params.items()
                                if k.startswith(prefix + ".")})


def _autoencoder(kind):
    @register_case(f"models.dense_autoencoder{'' if kind == 'mse' else '.bce'}", "model",
                   ["REP.9", "NN.10", "NN.11" if kind == "mse" else "NN.12"],
                   f"dense autoencoder, reconstruction loss {kind!r}", dtypes=F64, batch=4)
    def build(rng, dtype, n):
        ae = dense_autoencoder(4, 2, hidden=(5,), rng=rng, activation="tanh", loss=kind)
        X = rng.standard_normal((n, 4)) if kind == "mse" else rng.uniform(0, 1, (n, 4))
        ae.zero_grad()
        Z, c_enc = ae.encoder.forward(X)
        out, c_dec = ae.decoder.forward(Z)
        loss, d_out = reconstruction_loss(kind, out, X)               # (REP.9)
        d_X = ae.encoder.backward(c_enc, ae.decoder.backward(c_dec, d_out))
        # X is also the target: d/dX of (NN.11) is -d_out, of (NN.12) -a / (n D)
        d_X += -d_out if kind == "mse" else -out / out.size
        if not np.isclose(loss, ae.evaluate(X), rtol=1e-14):         # pragma: no cover
            raise AssertionError("models.dense_autoencoder: replayed loss differs from evaluate")
        params, grads = _prefixed(encoder=ae.encoder, decoder=ae.decoder)

        def evaluate(params, inputs):
            _load_prefixed(params, encoder=ae.encoder, decoder=ae.decoder)
            return ae.evaluate(inputs["x"])
        return Record(params=params, inputs={"x": X}, outputs={"loss": np.asarray(loss), "y": out},
                      grad_inputs={"x": d_X}, grad_params=grads,
                      objective="output.loss (output.y: the decoder output"
                                + (", logits)" if kind == "bce" else ")"),
                      constructor=f"models.dense_autoencoder(4, 2, hidden=(5,), activation='tanh', "
                                  f"loss={kind!r})",
                      variant={"loss": "mean over n D of (decoder(encoder(x)) - x)^2" if kind == "mse"
                               else "mean over n D of softplus(a) - x a, a = decoder logits",
                               "encoder": "Sequential(Linear(4,5), Tanh(), Linear(5,2))",
                               "decoder": "Sequential(Linear(2,5), Tanh(), Linear(5,4))",
                               "grad.input.x": "both paths: through the encoder and as the target"},
                      evaluate=evaluate)


_autoencoder("mse")
_autoencoder("bce")


@register_case("models.SimCLR", "model", ["REP.12", "REP.13", "REP.14", "REP.15", "REP.16"],
               "SimCLR: NT-Xent of two views through one encoder and head", dtypes=F64, batch=4,
               min_batch=2)
def _simclr(rng, dtype, n):
    model = dense_simclr(4, feature_dim=3, hidden=(5,), proj_dim=3, proj_hidden=4, rng=rng,
                         tau=0.5, activation="tanh")
    x_a, x_b = rng.standard_normal((n, 4)), rng.standard_normal((n, 4))
    model.zero_grad()
    z_a, c_a = model.forward_view(x_a)
    z_b, c_b = model.forward_view(x_b)
    loss, d_z_a, d_z_b = ntxent_loss(z_a, z_b, model.tau)          # (REP.13)-(REP.15)
    d_x_a = model.backward_view(c_a, d_z_a)                          # (REP.16)
    d_x_b = model.backward_view(c_b, d_z_b)
    params, grads = _prefixed(encoder=model.encoder, head=model.head)

    def evaluate(params, inputs):
        _load_prefixed(params, encoder=model.encoder, head=model.head)
        return ntxent_loss(model.project(inputs["x_a"]), model.project(inputs["x_b"]), model.tau)[0]
    return Record(params=params, inputs={"x_a": x_a, "x_b": x_b},
                  outputs={"loss": np.asarray(loss), "z_a": z_a, "z_b": z_b},
                  grad_inputs={"x_a": d_x_a, "x_b": d_x_b}, grad_params=grads,
                  objective="output.loss", constructor="models.dense_simclr(4, feature_dim=3, "
                  "hidden=(5,), proj_dim=3, proj_hidden=4, tau=0.5, activation='tanh')",
                  variant={"tau": 0.5, "encoder": "Sequential(Linear(4,5), Tanh(), Linear(5,3))",
                           "head": "Sequential(Linear(3,4), ReLU(), Linear(4,3))",
                           "loss": "NT-Xent of (z_a[i], z_b[i]) pairs, cosine / tau, mean over 2N"},
                  evaluate=evaluate)


@register_case("models.GaussianMixture", "model", ["GMM.1", "GMM.2", "GMM.3", "GMM.4", "GMM.18"],
               "mean negative log-likelihood of a fitted 2-component full-covariance mixture",
               dtypes=F64, batch=5)
def _gmm(rng, dtype, n):
    data = np.concatenate([rng.standard_normal((20, 2)) @ [[1.0, 0.3], [0.0, 0.5]],
                           rng.standard_normal((20, 2)) * 0.7 + [2.5, 1.0]])
    gm = GaussianMixture(2, max_iter=5, tol=0.0).fit(data, rng=rng)
    X = rng.standard_normal((n, 2)) + [1.0, 0.5]
    log_p = gm.score_samples(X)                                        # (GMM.1)
    loss = -float(np.mean(log_p))                                      # -(GMM.2)
    r = gm.predict_proba(X)                                            # (GMM.4) (n, K)
    P = gm.precisions_                                                 # (K, d, d)
    diff = X[:, None, :] - gm.means_[None]                             # (n, K, d)
    Pd = np.einsum("kab,nkb->nka", P, diff)                            # P_k (x_i - mu_k)
    # (GMM.18) gradients of L = -(1/n) sum_i log p(x_i)
    d_X = np.einsum("nk,nka->na", r, Pd) / n
    d_means = -np.einsum("nk,nka->ka", r, Pd) / n
    d_weights = -r.sum(axis=0) / gm.weights_ / n
    d_cov = -0.5 * (np.einsum("nk,nka,nkb->kab", r, Pd, Pd) - r.sum(axis=0)[:, None, None] * P) / n
    def evaluate(params, inputs):
        a = np.log(params["weights"]) + log_gaussian_prob(
            inputs["x"], params["means"], precision_cholesky(params["covariances"], "full"), "full")
        top = a.max(axis=1, keepdims=True)
        return -float(np.mean(top[:, 0] + np.log(np.exp(a - top).sum(axis=1))))
    return Record(params={"weights": gm.weights_.copy(), "means": gm.means_.copy(),
                          "covariances": gm.covariances_.copy()},
                  inputs={"x": X}, outputs={"log_prob": log_p, "loss": np.asarray(loss)},
                  grad_inputs={"x": d_X},
                  grad_params={"weights": d_weights, "means": d_means, "covariances": d_cov},
                  objective="output.loss = -mean(output.log_prob)",
                  constructor="models.GaussianMixture(2, max_iter=5, tol=0).fit(data)",
                  variant={"covariance_type": "full",
                           "log_prob": "logsumexp_k(log weights_k + log N(x; means_k, covariances_k))",
                           "grad.param.weights": "weights as free (unconstrained) variables",
                           "grad.param.covariances": "symmetric gradient (as torch.linalg.cholesky's "
                                                     "backward gives): -1/(2n) sum_i r_ik (P d d^T P - P)"},
                  evaluate=evaluate, symmetric=("covariances",))


def _vae(likelihood):
    suffix = "" if likelihood == "bernoulli" else ".gaussian"

    @register_case(f"models.VAE{suffix}", "model",
                   ["VAE.1", "VAE.2", "VAE.3", "VAE.5", "VAE.6", "VAE.11",
                    "VAE.7" if likelihood == "bernoulli" else "VAE.9"],
                   f"dense VAE, one-sample ELBO with fixed eps, {likelihood} decoder", dtypes=F64)
    def build(rng, dtype, n):
        vae = dense_vae(4, 2, hidden=(5,), rng=rng, activation="tanh", likelihood=likelihood)
        if likelihood == "gaussian":
            vae.nets.params["decoder_log_var"][...] = -0.3
        x = rng.uniform(0, 1, (n, 4)) if likelihood == "bernoulli" else rng.standard_normal((n, 4))
        eps = rng.standard_normal((n, 2))
        vae.nets.zero_grad()
        elbo, d_x = vae.elbo_and_grad(x, eps, weights=np.full(n, -1.0 / n))   # (VAE.11)

        def evaluate(params, inputs):
            vae.nets.load_state_dict(params)
            return -float(np.mean(vae.elbo_and_grad(inputs["x"], inputs["eps"])[0]))
        return Record(params=vae.nets.state_dict(), inputs={"x": x, "eps": eps},
                      outputs={"elbo": elbo, "loss": np.asarray(-elbo.mean())},
                      grad_inputs={"x": d_x}, grad_params=param_grads(vae.nets),
                      objective="output.loss = -mean(output.elbo), eps fixed (no gradient to eps)",
                      constructor=f"models.dense_vae(4, 2, hidden=(5,), activation='tanh', "
                                  f"likelihood={likelihood!r})",
                      variant={"encoder_output": "[mu (d), log_var (d)]",
                               "reparameterisation": "z = mu + exp(log_var / 2) * eps",
                               "kl": "0.5 sum(mu^2 + expm1(log_var) - log_var), beta = 1",
                               "likelihood": ("sum(x a - softplus(a)), a = decoder logits"
                                              if likelihood == "bernoulli" else
                                              "-0.5 sum(log 2pi + v + (x - m)^2 exp(-v)), "
                                              "v = param.decoder_log_var (learned scalar)"),
                               "grad.input.x": "both paths: through the encoder and as the target"},
                      evaluate=evaluate)


_vae("bernoulli")
_vae("gaussian")


@register_case("models.NCSN", "model", ["SCORE.5", "SCORE.6", "SCORE.7", "SCORE.15"],
               "NCSN with a context: DSM loss with fixed noise z and levels", dtypes=F64, batch=5)
def _ncsn(rng, dtype, n):
    sigmas = geometric_sigmas(2.0, 0.1, 4)
    model = NCSN(2, hidden=(6,), conditioning="concat", activation="softplus", sigmas=sigmas,
                 rng=rng, context_dim=2)
    randomize_parameters(model.net, rng=rng, scale=0.5)
    x, c = rng.standard_normal((n, 2)), rng.standard_normal((n, 2))
    z, levels = rng.standard_normal((n, 2)), rng.integers(0, len(sigmas), n)
    model.net.zero_grad()
    loss, d_c = model.dsm_loss_and_grad(x, z, levels, c)              # (SCORE.5)-(SCORE.7)
    grads = param_grads(model.net)
    # the same composition replayed to get d loss / d x (x enters only through x~ = x + sigma z)
    sigma = sigmas[levels]
    f, cache = model.net.forward(np.column_stack([x + sigma[:, None] * z, c, np.log(sigma)]))
    loss2, d_s = dsm_loss(f / sigma[:, None], z, sigma)
    model.net.zero_grad()
    d_in = model.net.backward(cache, d_s / sigma[:, None])
    if not (np.isclose(loss2, loss, rtol=1e-13) and np.allclose(d_in[:, 2:4], d_c, rtol=1e-12)):
        raise AssertionError("models.NCSN: replayed DSM loss differs")  # pragma: no cover
    def evaluate(params, inputs):
        model.net.load_state_dict(params)
        return model.dsm_loss(inputs["x"], inputs["z"], inputs["levels"], inputs["context"])
    return Record(params=model.net.state_dict(), buffers={"sigmas": sigmas},
                  inputs={"x": x, "context": c, "z": z, "levels": levels.astype(np.int64)},
                  outputs={"loss": np.asarray(loss)},
                  grad_inputs={"x": d_in[:, :2], "context": d_c}, grad_params=grads,
                  objective="output.loss; z and levels fixed (no gradient)",
                  constructor="models.NCSN(2, hidden=(6,), conditioning='concat', "
                              "activation='softplus', sigmas=geometric_sigmas(2.0, 0.1, 4), "
                              "context_dim=2)",
                  variant={"net_input": "[x + sigma z, context, log sigma], sigma = sigmas[levels]",
                           "score": "s = net(net_input) / sigma",
                           "loss": "mean over rows of 0.5 ||sigma s + z||^2 (lambda = sigma^2)"},
                  evaluate=evaluate)
