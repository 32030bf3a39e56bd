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
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array, check_choice, check_int, check_rng, check_scalar
from nprefgen.kernels.softplus import softplus, softplus_grad
from nprefgen.nn.activations import ACTIVATIONS
from nprefgen.nn.containers import MLP
from nprefgen.nn.io import META_PREFIX, load_npz, read_npz, save_npz
from nprefgen.nn.train import TrainingDivergedError, fit_loop, take, validation_split
from nprefgen.sbi.npe import check_training_pairs
from nprefgen.sbi.nle import pair_iid_rows
from nprefgen.sbi.posterior import MCMCPosterior


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
    its public constructor), with ``save(path)`` / ``RatioPosterior.load(path, prior)``."""

    def __init__(self, estimator, **mcmc) -> None:
        ratio = estimator.ratio
        super().__init__(estimator.prior, ratio, ratio.dim_x, grad_log_likelihood=ratio.grad,
                         **mcmc)
        self.estimator = estimator

    def save(self, path) -> None:
        """The classifier (weights, z-scoring, architecture) to ``.npz``, atomically."""
        self.estimator.save(path)

    @classmethod
    def load(cls, path, prior, **mcmc) -> "RatioPosterior":
        """Rebuild a posterior saved by :meth:`save` (the prior is passed again: it is code);
        ``mcmc`` overrides the stored sampler settings."""
        return NRE.load(path, prior).posterior(**mcmc)


class NRE:
    """Neural ratio estimation: ``NRE(prior).train(theta, x, rng=rng)`` -> RatioPosterior.

    Parameters
    ----------
    prior : the prior the training theta were drawn from.
    hidden : hidden widths of the classifier MLP on [theta, x] (default two layers of 50).
    activation : its activation ("relu", as sbi's classifiers).
    balance : lambda of the BNRE penalty (SBI.25); 0 (default) is plain NRE-A (SBI.22).
    method, n_chains, n_warmup, thin : the returned MCMC posterior's settings (as NLE).
    """

    def __init__(self, prior, *, hidden=(50, 50), activation: str = "relu",
                 balance: float = 0.0, method: str = "slice", n_chains: int = 20,
                 n_warmup: int = 200, thin: int = 1) -> None:
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
        self.ratio: LogRatio | None = None
        self.history_: dict | None = None

    # -- the named loss ----------------------------------------------------------------------
    def loss_and_grad(self, theta, x) -> float:
        """(SBI.22-SBI.25) the loss of one minibatch (theta (n, p), x (n, dx)), n >= 2; adds its
        gradient into the classifier's parameter gradients. Marginal pairs: (theta_{i+1}, x_i)."""
        loss, d_logits, cache = self._forward_loss(theta, x)
        self.ratio.net.backward(cache, d_logits[:, None])
        return loss

    def evaluate(self, theta, x) -> float:
        """The same loss without gradients (validation)."""
        return self._forward_loss(theta, x)[0]

    def _forward_loss(self, theta, x):
        n = theta.shape[0]
        both = np.concatenate([theta, np.roll(theta, -1, axis=0)])      # joint, then marginal
        logits, cache = self.ratio.net.forward(self.ratio.features(both, np.concatenate([x, x])))
        loss, d_j, d_m = nre_loss(logits[:n, 0], logits[n:, 0], balance=self.balance)
        return loss, np.concatenate([d_j, d_m]), cache

    # -- training ----------------------------------------------------------------------------
    def train(self, theta, x, *, rng=None, batch_size: int = 200, lr: float = 5e-4,
              validation_fraction: float = 0.1, patience: int = 20, max_epochs: int = 1000,
              clip: float | None = 5.0, progress: bool | None = None) -> RatioPosterior:
        """(SBI.22) fit the classifier on the pairs by minibatch BCE; returns the posterior.

        theta : (n, p) inside the prior; x : (n, dx) finite; n >= 4 (two rows per minibatch).
        rng : SPEC 7 seed or Generator (initial weights, validation split, shuffles). Training
        settings as :meth:`nprefgen.sbi.npe.NPE.train` (sbi's defaults); ``self.history_`` is the
        training loop's history. A diverging run raises TrainingDivergedError.
        """
        theta, x = check_training_pairs(theta, x, self.prior)
        if theta.shape[0] < 4:
            raise ValueError(f"theta: expected at least 4 training pairs, got {theta.shape[0]}")
        rng = check_rng(rng)
        check_scalar(lr, "lr", low=0.0, low_inclusive=False)
        check_int(max_epochs, "max_epochs", low=1)
        self.ratio = self.history_ = None
        net = MLP(theta.shape[1] + x.shape[1], list(self.hidden), 1, rng=rng,
                  activation=self.activation)
        train, val = validation_split(theta.shape[0], validation_fraction, rng=rng)
        t_tr, x_tr = take((theta, x), train)
        self.ratio = LogRatio(net, t_tr.mean(axis=0), _std(t_tr), x_tr.mean(axis=0), _std(x_tr))
        val_data = take((theta, x), val) if val.size >= 2 else None
        try:
            self.history_ = fit_loop(net, self.loss_and_grad, (t_tr, x_tr), rng=rng,
                                     evaluate=self.evaluate if val_data else None,
                                     val_data=val_data, epochs=max_epochs, batch_size=batch_size,
                                     lr=lr, clip=clip, patience=patience, min_batch_size=2,
                                     progress=progress, desc="NRE")
        except TrainingDivergedError as err:
            self.ratio, self.history_ = None, err.history
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
        """The classifier's weights, z-scoring statistics and settings to ``.npz``, atomically."""
        if self.ratio is None:
            raise ValueError("ratio: expected a trained classifier to save; call train() first")
        r = self.ratio
        meta = dict(theta_mean=r.theta_mean, theta_std=r.theta_std, x_mean=r.x_mean,
                    x_std=r.x_std, hidden=np.array(self.hidden), activation=self.activation,
                    balance=self.balance, method=self.method,
                    **{k: v for k, v in self.mcmc.items()})
        save_npz(path, r.net, meta)

    @classmethod
    def load(cls, path, prior) -> "NRE":
        """Rebuild an estimator saved by :meth:`save`; a file that is not an NRE classifier for
        this prior raises ValueError naming ``path``."""
        keys = ("theta_mean", "theta_std", "x_mean", "x_std", "hidden", "activation", "balance",
                "method", "n_chains", "n_warmup", "thin")
        arrays = read_npz(path, keys=[META_PREFIX + k for k in keys], max_bytes=1 << 20)
        meta = {k: arrays.get(META_PREFIX + k) for k in keys}
        missing = [k for k, v in meta.items() if v is None]
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
        load_npz(path, net)
        est.ratio = LogRatio(net, *stats)
        est.history_ = {}
        return est


def _std(a: np.ndarray) -> np.ndarray:
    """Per-column standard deviation, 1 where a column is constant (no division by zero)."""
    s = a.std(axis=0)
    return np.where(s > 0, s, 1.0)
