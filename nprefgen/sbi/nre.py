"""Neural ratio estimation (derivations/sbi.md, SBI.22-SBI.25).

(SBI.22) A classifier d(theta, x) = sigmoid(f_phi(theta, x)) learns to tell pairs from the joint
p(theta, x) (label 1) from pairs of the product of marginals p(theta) p(x) (label 0) by binary
cross-entropy (Hermans, Begy & Louppe 2020, "NRE-A"). The Bayes-optimal classifier is
d* = p(theta, x) / (p(theta, x) + p(theta) p(x)), so its logit is the likelihood-to-evidence ratio

    f*(theta, x) = log r(theta, x) = log p(x | theta) - log p(x) = log p(theta | x) - log p(theta).

The marginal pairs come from the joint pairs of a minibatch, each x with the theta of the next
row (the rows of a minibatch are an iid random subset, so (theta_{i+1}, x_i) is a draw of
p(theta) p(x)); every minibatch therefore holds n joint and n marginal pairs, one forward and one
backward pass through the classifier on 2n rows. (SBI.23) gives the loss gradient in the logits.

(SBI.24) The posterior of N iid observations is sampled by MCMC on
log p(theta) + sum_i f(theta, x_i) (the existing :class:`MCMCPosterior`, slice sampling by
default; HMC with the classifier's input gradient).

(SBI.25) The balanced variant (BNRE, Delaunoy et al. 2022) adds lambda * B^2 with
B = mean_joint d + mean_marginal d - 1, zero for the Bayes-optimal classifier; it pushes the
classifier towards conservative (wider, not overconfident) posteriors. ``balance=lambda``
(Delaunoy et al. use 100); 0 is plain NRE.

theta and x are z-scored with the training split's mean and standard deviation (as SBI.11).

(SBI.25a) With ``embedding=`` (an :class:`nprefgen.sbi.embeddings.Embedding`: MLP, CNN or deep
set) the classifier sees (theta, c) with c = h_psi(x), and x may be structured: iid sets
(n, k, d), maps (n, c, h, w). Classifier and embedding are trained jointly on the same loss; each
c_i enters the joint pair i and the marginal pair i, so dL/dc_i is the sum of the two rows'
input gradients, which the embedding's backward turns into dL/dpsi (FIELD.2). The embedding
z-scores x itself (its training-split statistics), c is not z-scored again. The posterior embeds
the observations once and runs its MCMC on the embedded vectors (a set of iid observations is
embedded row by row and its log-ratios summed, SBI.24).
"""
from __future__ import annotations

import copy
import json

import numpy as np

from nprefgen._threads import blas_threads
from nprefgen._validation import check_array, check_choice, check_int, check_rng, check_scalar
from nprefgen.kernels.softplus import softplus, softplus_grad
from nprefgen.nn.activations import ACTIVATIONS
from nprefgen.nn.containers import MLP
from nprefgen.nn.io import META_PREFIX, load_npz, read_npz, save_npz
from nprefgen.nn.train import TrainingDivergedError, fit_loop, take, validation_split
from nprefgen.sbi.embedded import (
    EMBED_BATCH, EmbeddedClassifier, check_embedded_pairs, embed_observation_set,
    embed_observation_sets, saved_embedding_stats,
)
from nprefgen.sbi.embeddings import (
    check_embedding, check_embedding_output, embedding_from_config, structured_x_message,
)
from nprefgen.sbi.npe import check_training_pairs
from nprefgen.sbi.nle import pair_iid_rows
from nprefgen.sbi.mcmc_posterior import MCMCPosterior


def nre_loss(logits_joint, logits_marginal, *, balance: float = 0.0):
    """(SBI.22, SBI.25) the (balanced) NRE loss and its gradient in the logits (SBI.23).

    logits_joint : (n,) classifier logits f(theta_i, x_i) on joint pairs.
    logits_marginal : (m,) logits on marginal pairs.
    balance : lambda >= 0 of the balancing penalty lambda * B^2 (0: NRE-A).

    Returns ``(loss, d_joint (n,), d_marginal (m,))`` with
    loss = mean softplus(-a_joint) + mean softplus(a_marginal) + lambda * B^2.
    """
    a_j = check_array(logits_joint, "logits_joint", ndim=1, dtype=np.float64)
    a_m = check_array(logits_marginal, "logits_marginal", ndim=1, dtype=np.float64)
    balance = check_scalar(balance, "balance", low=0.0)
    n, m = a_j.shape[0], a_m.shape[0]
    # (SBI.22) -log sigmoid(a) = softplus(-a); -log(1 - sigmoid(a)) = softplus(a)
    loss = float(np.mean(softplus(-a_j)) + np.mean(softplus(a_m)))
    s_j, s_m = softplus_grad(a_j), softplus_grad(a_m)          # sigmoid
    d_j = (s_j - 1.0) / n                                        # (SBI.23)
    d_m = s_m / m
    if balance > 0:
        b = float(np.mean(s_j) + np.mean(s_m) - 1.0)             # (SBI.25) B
        loss += balance * b * b
        d_j = d_j + 2.0 * balance * b * s_j * (1.0 - s_j) / n    # sigma' = sigma (1 - sigma)
        d_m = d_m + 2.0 * balance * b * s_m * (1.0 - s_m) / m
    return loss, d_j, d_m


class LogRatio:
    """The classifier's logit f(theta, x) ~ log r(theta, x) (SBI.22) as a likelihood for MCMC
    (SBI.24): ``__call__(theta (m, p), x_rows (m, n_iid, dx)) -> (m,)``, summed over the iid
    observations, and ``grad`` (m, p) in theta (for HMC).

    net : an :class:`nprefgen.nn.Sequential` from (p + dx) z-scored inputs to one logit.
    theta_mean, theta_std : (p,); x_mean, x_std : (dx,), the z-scoring statistics.
    """

    def __init__(self, net, theta_mean, theta_std, x_mean, x_std) -> None:
        self.net = net
        self.theta_mean, self.theta_std = np.asarray(theta_mean), np.asarray(theta_std)
        self.x_mean, self.x_std = np.asarray(x_mean), np.asarray(x_std)
        self.dim_theta, self.dim_x = self.theta_mean.shape[0], self.x_mean.shape[0]

    def features(self, theta, x) -> np.ndarray:
        """z-scored [theta, x]: (m, p), (m, dx) -> (m, p + dx)."""
        return np.concatenate([(theta - self.theta_mean) / self.theta_std,
                               (x - self.x_mean) / self.x_std], axis=1)

    def logits(self, theta, x) -> np.ndarray:
        """f(theta_i, x_i) row by row: (m, p), (m, dx) -> (m,)."""
        return self.net.forward(self.features(theta, x))[0][:, 0]

    def __call__(self, theta, x_rows) -> np.ndarray:
        """(SBI.24) sum_i f(theta, x_i): theta (m, p), x_rows (m, n_iid, dx) -> (m,)."""
        x_flat, theta_rep, m, n_iid = pair_iid_rows(theta, x_rows)
        return self.logits(theta_rep, x_flat).reshape(m, n_iid).sum(axis=1)

    def grad(self, theta, x_rows) -> np.ndarray:
        """(SBI.24) grad_theta sum_i f(theta, x_i) by back-propagating to the input. (m, p)."""
        x_flat, theta_rep, m, n_iid = pair_iid_rows(theta, x_rows)
        out, cache = self.net.forward(self.features(theta_rep, x_flat))
        d_in = self.net.backward(cache, np.ones_like(out))
        self.net.zero_grad()                     # the parameter gradients are a by-product
        d_theta = d_in[:, :self.dim_theta] / self.theta_std
        return d_theta.reshape(m, n_iid, -1).sum(axis=1)


class RatioPosterior(MCMCPosterior):
    """(SBI.24) the MCMC posterior of a trained :class:`NRE` (an :class:`MCMCPosterior` built by
    its public constructor), with ``save(path)`` / ``RatioPosterior.load(path, prior)``.

    Without an embedding, observations are as for MCMCPosterior: x (dx,) or an iid set
    (n_iid, dx); xs (N, dx) or (N, n_iid, dx). With one (SBI.25a), raw observations of the
    embedding's input shape: x (*input_shape) or an iid set (n_iid, *input_shape); xs
    (N, *input_shape) or (N, n_iid, *input_shape); they are embedded once, and the chains run on
    the embedded vectors (``dim_x`` is then the embedding's ``out_features``).
    """

    def __init__(self, estimator, **mcmc) -> None:
        ratio = estimator.ratio
        super().__init__(estimator.prior, ratio, ratio.dim_x, grad_log_likelihood=ratio.grad,
                         **mcmc)
        self.estimator = estimator
        self.embedding = estimator.embedding_

    def _x_set(self, x, name: str = "x") -> np.ndarray:
        if self.embedding is None or x is None:
            return super()._x_set(x, name)
        return embed_observation_set(self.embedding, x, name)        # (n_iid, m)

    def sample(self, n: int, x=None, *, rng=None) -> np.ndarray:
        """n draws (n, p) for one observation or an iid set x (None: the default x)."""
        return MCMCPosterior.sample_batched(self, n, self._x_set(x)[None], rng=rng)[0]

    def sample_batched(self, n: int, xs, *, rng=None) -> np.ndarray:
        """n draws for each of N observations (or iid sets) xs -> (N, n, p)."""
        if self.embedding is not None:
            xs = embed_observation_sets(self.embedding, xs, "xs")    # (N, n_iid, m)
        return super().sample_batched(n, xs, rng=rng)

    def save(self, path) -> None:
        """The classifier (weights, z-scoring, architecture) to ``.npz``, atomically."""
        self.estimator.save(path)

    @classmethod
    def load(cls, path, prior, embedding=None, **mcmc) -> "RatioPosterior":
        """Rebuild a posterior saved by :meth:`save` (the prior is passed again: it is code);
        ``embedding`` as :meth:`NRE.load`; ``mcmc`` overrides the stored sampler settings."""
        return NRE.load(path, prior, embedding=embedding).posterior(**mcmc)


class NRE:
    """Neural ratio estimation: ``NRE(prior).train(theta, x, rng=rng)`` -> RatioPosterior.

    Parameters
    ----------
    prior : the prior the training theta were drawn from.
    hidden : hidden widths of the classifier MLP on [theta, x] (default two layers of 50).
    activation : its activation ("relu", as sbi's classifiers).
    balance : lambda of the BNRE penalty (SBI.25); 0 (default) is plain NRE-A (SBI.22).
    method, n_chains, n_warmup, thin : the returned MCMC posterior's settings (as NLE).
    embedding : None, or an :class:`nprefgen.sbi.embeddings.Embedding` (MLPEmbedding,
        CNNEmbedding, DeepSetEmbedding) trained jointly with the classifier (SBI.25a); x may then
        have any shape the embedding takes ((n, k, d) sets, (n, c, h, w) or (n, h, w) maps). The
        trained copy is ``embedding_`` (``embedding`` stays untrained).
    """

    def __init__(self, prior, *, hidden=(50, 50), activation: str = "relu",
                 balance: float = 0.0, method: str = "slice", n_chains: int = 20,
                 n_warmup: int = 200, thin: int = 1, embedding=None) -> None:
        self.prior = prior
        if not isinstance(hidden, (list, tuple)) or not hidden:
            raise ValueError(f"hidden: expected a non-empty list of widths, got {hidden!r}")
        self.hidden = tuple(check_int(h, "hidden", low=1) for h in hidden)
        self.activation = check_choice(activation, "activation", ACTIVATIONS)
        self.balance = check_scalar(balance, "balance", low=0.0)
        self.method = check_choice(method, "method", ("slice", "hmc", "rwm"))
        self.mcmc = dict(n_chains=check_int(n_chains, "n_chains", low=1),
                         n_warmup=check_int(n_warmup, "n_warmup", low=0),
                         thin=check_int(thin, "thin", low=1))
        self.embedding = check_embedding(embedding)
        self.embedding_ = None                # the trained copy
        self.ratio: LogRatio | None = None
        self.history_: dict | None = None

    # -- the named loss ----------------------------------------------------------------------
    def loss_and_grad(self, theta, x) -> float:
        """(SBI.22-SBI.25) the loss of one minibatch (theta (n, p), x (n, dx), or
        (n, *input_shape) with an embedding), n >= 2; adds its gradient into the classifier's
        (and the embedding's, SBI.25a) parameter gradients. Marginal pairs: (theta_{i+1}, x_i)."""
        loss, d_logits, (cache, e_cache) = self._forward_loss(theta, x)
        d_in = self.ratio.net.backward(cache, d_logits[:, None])        # (2n, p + m)
        if e_cache is not None:
            n, p = theta.shape
            # (SBI.25a) c_i sits in joint row i and marginal row n + i: add both rows' gradients
            # (the classifier's z-scoring of c is the identity with an embedding)
            d_c = (d_in[:n, p:] + d_in[n:, p:]) / self.ratio.x_std
            self.embedding_._backward(e_cache, d_c)                     # (FIELD.2)
        return loss

    def evaluate(self, theta, x) -> float:
        """The same loss without gradients (validation); with an embedding in chunks of about
        EMBED_BATCH rows (the marginal pairs then pair rows within a chunk)."""
        if self.embedding_ is None:
            return self._forward_loss(theta, x)[0]
        n = theta.shape[0]
        cuts = list(range(0, n, EMBED_BATCH))[1:]
        if cuts and n - cuts[-1] < 2:             # no chunk of one row (its pair is itself)
            cuts.pop()
        bounds = list(zip([0] + cuts, cuts + [n]))
        return sum((b - a) * self._forward_loss(theta[a:b], x[a:b])[0] for a, b in bounds) / n

    def _forward_loss(self, theta, x):
        n = theta.shape[0]
        if self.embedding_ is not None:
            c, e_cache = self.embedding_._forward(x)                    # (SBI.25a) c = h(x)
        else:
            c, e_cache = x, None
        both = np.concatenate([theta, np.roll(theta, -1, axis=0)])      # joint, then marginal
        logits, cache = self.ratio.net.forward(self.ratio.features(both, np.concatenate([c, c])))
        loss, d_j, d_m = nre_loss(logits[:n, 0], logits[n:, 0], balance=self.balance)
        return loss, np.concatenate([d_j, d_m]), (cache, e_cache)

    # -- training ----------------------------------------------------------------------------
    def train(self, theta, x, *, rng=None, batch_size: int = 200, lr: float = 5e-4,
              validation_fraction: float = 0.1, patience: int = 20, max_epochs: int = 1000,
              clip: float | None = 5.0, progress: bool | None = None) -> RatioPosterior:
        """(SBI.22) fit the classifier on the pairs by minibatch BCE; returns the posterior.

        theta : (n, p) inside the prior; x : (n, dx) finite, or (n, *embedding.input_shape)
        with an embedding; n >= 4 (two rows per minibatch).
        rng : SPEC 7 seed or Generator (initial weights, validation split, shuffles). Training
        settings as :meth:`nprefgen.sbi.npe.NPE.train` (sbi's defaults); ``self.history_`` is the
        training loop's history. A diverging run raises TrainingDivergedError. With an
        embedding, training runs with one BLAS thread (as NPE's, nprefgen.sbi.embedded).
        """
        if self.embedding is None:
            if np.ndim(x) > 2:            # a set or an image: say how to flatten or embed it
                raise ValueError(structured_x_message(np.shape(x), estimator="NRE"))
            theta, x = check_training_pairs(theta, x, self.prior)
            embedding = None
        else:
            theta, x, embedding = check_embedded_pairs(self.embedding, theta, x, self.prior)
        if theta.shape[0] < 4:
            raise ValueError(f"theta: expected at least 4 training pairs, got {theta.shape[0]}")
        rng = check_rng(rng)
        check_scalar(lr, "lr", low=0.0, low_inclusive=False)
        check_int(max_epochs, "max_epochs", low=1)
        self.ratio = self.history_ = self.embedding_ = None
        width = x.shape[1] if embedding is None else embedding.out_features
        net = MLP(theta.shape[1] + width, list(self.hidden), 1, rng=rng,
                  activation=self.activation)
        train, val = validation_split(theta.shape[0], validation_fraction, rng=rng)
        t_tr, x_tr = take((theta, x), train)
        if embedding is None:
            model, x_mean, x_std = net, x_tr.mean(axis=0), _std(x_tr)
        else:                                  # (SBI.25a) the embedding z-scores x itself
            embedding.standardize(x_tr)
            check_embedding_output(embedding, x_tr)
            model, x_mean, x_std = EmbeddedClassifier(net, embedding), np.zeros(width), \
                np.ones(width)
        self.ratio = LogRatio(net, t_tr.mean(axis=0), _std(t_tr), x_mean, x_std)
        self.embedding_ = embedding
        val_data = take((theta, x), val) if val.size >= 2 else None
        try:
            with blas_threads(1 if embedding is not None else None):
                self.history_ = fit_loop(model, self.loss_and_grad, (t_tr, x_tr), rng=rng,
                                         evaluate=self.evaluate if val_data else None,
                                         val_data=val_data, epochs=max_epochs,
                                         batch_size=batch_size, lr=lr, clip=clip,
                                         patience=patience, min_batch_size=2,
                                         progress=progress, desc="NRE")
        except TrainingDivergedError as err:
            self.ratio, self.embedding_, self.history_ = None, None, err.history
            raise
        return self.posterior()

    def posterior(self, method: str | None = None, **mcmc) -> RatioPosterior:
        """The MCMC posterior of the trained ratio (SBI.24); ``method`` and ``mcmc`` (n_chains,
        n_warmup, thin, ...) override the defaults."""
        if self.ratio is None:
            raise ValueError("ratio: expected a trained classifier; call train() first (a "
                             "diverged training run leaves none)")
        return RatioPosterior(self, method=self.method if method is None else method,
                              **{**self.mcmc, **mcmc})

    # -- files -------------------------------------------------------------------------------
    def save(self, path) -> None:
        """The classifier's weights, z-scoring statistics and settings to ``.npz``, atomically;
        with an embedding also its weights, input statistics and configuration (SBI.25a)."""
        if self.ratio is None:
            raise ValueError("ratio: expected a trained classifier to save; call train() first")
        r = self.ratio
        meta = dict(theta_mean=r.theta_mean, theta_std=r.theta_std, x_mean=r.x_mean,
                    x_std=r.x_std, hidden=np.array(self.hidden), activation=self.activation,
                    balance=self.balance, method=self.method,
                    **{k: v for k, v in self.mcmc.items()})
        emb = self.embedding_
        if emb is None:
            save_npz(path, r.net, meta)
            return
        meta.update({"embedding.x_mean": emb.x_mean, "embedding.x_std": emb.x_std,
                     "embedding_out": emb.out_features})
        if emb.config() is not None:
            meta["embedding_config"] = np.array(json.dumps(emb.config()))
        save_npz(path, EmbeddedClassifier(r.net, emb), meta)

    @classmethod
    def load(cls, path, prior, embedding=None) -> "NRE":
        """Rebuild an estimator saved by :meth:`save`; a file that is not an NRE classifier for
        this prior raises ValueError naming ``path``.

        ``embedding``: for a file saved with an embedding, None rebuilds a built-in one from the
        stored configuration; a custom one must be passed, constructed as when it was trained
        (its weights and statistics are loaded into it only if everything fits). An embedding
        whose ``out_features`` differs from the saved classifier's, or one passed for a file
        without an embedding, raises ValueError naming ``embedding``.
        """
        keys = ("theta_mean", "theta_std", "x_mean", "x_std", "hidden", "activation", "balance",
                "method", "n_chains", "n_warmup", "thin")
        optional = ("embedding_out", "embedding_config")
        arrays = read_npz(path, keys=[META_PREFIX + k for k in keys + optional],
                          max_bytes=1 << 20)
        meta = {k: arrays.get(META_PREFIX + k) for k in keys + optional}
        missing = [k for k in keys if meta[k] is None]
        if missing:
            raise ValueError(f"path: {str(path)!r} is not an NRE file (missing {missing})")
        try:
            est = cls(prior, hidden=[int(h) for h in meta["hidden"]],
                      activation=str(meta["activation"]), balance=float(meta["balance"]),
                      method=str(meta["method"]), n_chains=int(meta["n_chains"]),
                      n_warmup=int(meta["n_warmup"]), thin=int(meta["thin"]))
            stats = [check_array(meta[k], k, ndim=1) for k in keys[:4]]
        except (ValueError, TypeError) as exc:
            raise ValueError(f"path: {str(path)!r} holds invalid NRE settings ({exc})") from exc
        p, dx = stats[0].shape[0], stats[2].shape[0]
        if p != getattr(prior, "dim", p) or stats[1].shape != (p,) or stats[3].shape != (dx,) \
                or np.any(stats[1] <= 0) or np.any(stats[3] <= 0):
            raise ValueError(f"path: {str(path)!r} holds a classifier over {p} parameters and "
                             f"{dx} data dimensions that does not fit this prior (dim "
                             f"{getattr(prior, 'dim', None)}) or has non-positive std")
        net = MLP(p + dx, list(est.hidden), 1, rng=0, activation=est.activation)
        if meta["embedding_out"] is None:
            if embedding is not None:
                raise ValueError(f"embedding: {str(path)!r} holds a classifier without an "
                                 f"embedding; pass embedding=None")
            load_npz(path, net)
        else:
            embedding = _load_embedding(path, meta, embedding, dx)
            checked: dict = {}
            load_npz(path, EmbeddedClassifier(net, embedding),
                     check_meta=lambda m: checked.update(saved_embedding_stats(
                         m, embedding, f"path: {str(path)!r}")))
            embedding.x_mean, embedding.x_std = checked["x_mean"], checked["x_std"]
            est.embedding, est.embedding_ = copy.deepcopy(embedding), embedding
        est.ratio = LogRatio(net, *stats)
        est.history_ = {}
        return est


def _load_embedding(path, meta, embedding, dx):
    """The embedding of a saved embedded NRE: rebuilt from its configuration or the one passed;
    its output size must be the classifier's dx."""
    if embedding is None:
        if meta["embedding_config"] is None:
            raise ValueError(f"path: {str(path)!r} holds no embedding configuration (a custom "
                             f"embedding): pass embedding=, built as when it was trained")
        try:
            embedding = embedding_from_config(json.loads(str(meta["embedding_config"])))
        except Exception as exc:
            raise ValueError(f"path: {str(path)!r}: embedding_config does not build an "
                             f"embedding ({exc})"[:400]) from exc
    else:
        check_embedding(embedding)
    if embedding.out_features != dx:
        raise ValueError(f"embedding: expected out_features={dx} (the saved classifier's input "
                         f"for x), got {embedding.out_features}")
    return embedding


def _std(a: np.ndarray) -> np.ndarray:
    """Per-column standard deviation, 1 where a column is constant (no division by zero)."""
    s = a.std(axis=0)
    return np.where(s > 0, s, 1.0)
