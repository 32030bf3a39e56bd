"""NPE with an embedding network: joint training and the posterior that embeds its observations
(derivations/fields.md, FIELD.1-FIELD.2).

:func:`train_embedded` is what ``NPE(prior, embedding=net).train(theta, x)`` runs: the flow
q_phi(theta | c) and the embedding c = h_psi(x) are one model (:class:`EmbeddedFlow`), trained on
(FIELD.1) by the one training loop; (FIELD.2) the flow's context gradient is chained into the
embedding's backward. The split, the z-scoring (theta: the flow's Standardize, SBI.11; x: the
embedding's own statistics) and the early stopping follow NPE without an embedding; the flow's
own context z-scoring is off (its context is learned).

:class:`EmbeddedPosterior` is a :class:`nprefgen.sbi.posterior.DirectPosterior` over the embedded
observation: every method takes raw observations (one of shape ``embedding.input_shape`` or a
batch) and embeds them first. It saves flow and embedding to one ``.npz``.

NRE with an embedding (derivations/sbi.md, SBI.25a) uses the helpers here too:
:func:`check_embedded_pairs` (the training pairs), :class:`EmbeddedClassifier` (classifier and
embedding as one model) and :func:`embed_observation_set` / :func:`embed_observation_sets` (raw
observations, or sets of iid observations, to the embedded vectors its MCMC runs on).
"""
from __future__ import annotations

import copy
import json
import os

import numpy as np

from nprefgen._threads import blas_threads
from nprefgen._validation import check_array, check_int, check_rng, check_scalar
from nprefgen.flows.elementwise import Standardize
from nprefgen.nn.base import Module
from nprefgen.nn.io import META_BYTES, load_npz, read_npz, save_npz
from nprefgen.nn.train import TrainingDivergedError, fit_loop, take, validation_split
from nprefgen.sbi.embeddings import check_embedding_output, embedding_from_config
from nprefgen.sbi.posterior import DirectPosterior
from nprefgen.sbi.priors import check_theta

EMBED_BATCH = 256          # rows embedded at once (a CNN's im2col grows with the batch)


def embed_in_batches(embedding, x) -> np.ndarray:
    """c = h(x) for checked x (n, *input_shape) -> (n, out_features), EMBED_BATCH rows at once."""
    return np.concatenate([embedding._forward(x[s:s + EMBED_BATCH])[0]
                           for s in range(0, x.shape[0], EMBED_BATCH)])


def saved_embedding_stats(meta: dict, embedding, where: str) -> dict:
    """The input statistics ``x_mean``, ``x_std`` of an embedding as saved in a file's metadata
    (``embedding.x_mean``, ``embedding.x_std``), checked against the embedding's own shapes
    (finite values; a positive std) before anything is assigned; ``where`` names the file in the
    error. Returns {"x_mean": ..., "x_std": ...}."""
    out = {}
    for name in ("x_mean", "x_std"):
        value = np.asarray(meta.get("embedding." + name, np.nan), dtype=np.float64)
        own = getattr(embedding, name)
        if value.shape != own.shape or not np.all(np.isfinite(value)) or (
                name == "x_std" and not np.all(value > 0)):
            raise ValueError(f"{where}: embedding.{name}: expected finite values of shape "
                             f"{own.shape}{' (positive)' if name == 'x_std' else ''}, "
                             f"got shape {value.shape}")
        out[name] = value
    return out


def check_embedded_pairs(embedding, theta, x, prior):
    """Training pairs for an estimator with an embedding: theta (n, p) finite, inside the prior,
    n >= 2; x (n, *embedding.input_shape) (or an alias, e.g. (n, h, w) maps) with matching rows.
    Returns ``(theta, x, copy)``, ``copy`` a deep copy of the embedding (the estimator's own
    embedding stays untrained, so training twice with one seed gives the same posterior)."""
    if np.size(theta) == 0:
        raise ValueError(f"theta: expected a non-empty training set, got shape {np.shape(theta)}")
    theta = check_array(theta, "theta", ndim=2, dtype=np.float64)
    embedding = copy.deepcopy(embedding)
    x = embedding.check_x(x, "x")
    if x.shape[0] != theta.shape[0]:
        raise ValueError(f"x: expected {theta.shape[0]} rows to match theta, got shape {x.shape}")
    if theta.shape[0] < 2:
        raise ValueError(f"theta: expected at least 2 training pairs, got {theta.shape[0]}")
    theta = prior.check_in_support(check_theta(theta, prior.dim), "theta")
    return theta, x, embedding


def embed_observation_set(embedding, x, name: str = "x") -> np.ndarray:
    """One raw observation (``input_shape`` or an alias) -> (1, m), or a set of iid observations
    (n_iid, *input_shape) -> (n_iid, m): the embedded rows an MCMC posterior sums over."""
    arr = check_array(x, name)
    if embedding._fits(arr.shape) or embedding._alias(arr.shape) is not None:
        arr = arr[None]
    return embed_in_batches(embedding, embedding.check_x(arr, name))


def embed_observation_sets(embedding, xs, name: str = "xs") -> np.ndarray:
    """N raw observations (N, *input_shape) -> (N, 1, m), or N sets of iid observations
    (N, n_iid, *input_shape) -> (N, n_iid, m)."""
    arr = check_array(xs, name)
    if arr.ndim >= 2 and (embedding._fits(arr.shape[1:])
                          or embedding._alias(arr.shape[1:]) is not None):
        return embed_in_batches(embedding, embedding.check_x(arr, name))[:, None, :]
    if arr.ndim < 3:
        want = tuple("*" if s is None else s for s in embedding.input_shape)
        raise ValueError(f"{name}: expected shape (N, {', '.join(map(str, want))}) or (N, n_iid, "
                         f"{', '.join(map(str, want))}) for {type(embedding).__name__}, got "
                         f"{arr.shape}")
    n_obs, n_iid = arr.shape[:2]
    flat = embedding.check_x(arr.reshape((n_obs * n_iid,) + arr.shape[2:]), name)
    return embed_in_batches(embedding, flat).reshape(n_obs, n_iid, -1)


class EmbeddedClassifier(Module):
    """NRE's classifier and its embedding as one model (SBI.25a): parameters ``classifier.*``
    then ``embedding.*``; the loss and its chain rule live in :class:`nprefgen.sbi.nre.NRE`."""

    def __init__(self, classifier, embedding) -> None:
        super().__init__()
        self.classifier = self.add_child("classifier", classifier)
        self.embedding = self.add_child("embedding", embedding)


class EmbeddedFlow(Module):
    """The flow and the embedding as one model: parameters ``flow.*`` then ``embedding.*``."""

    def __init__(self, flow, embedding) -> None:
        super().__init__()
        self.flow = self.add_child("flow", flow)
        self.embedding = self.add_child("embedding", embedding)

    def embed(self, x) -> np.ndarray:
        """c = h(x) for checked x (n, *input_shape) -> (n, m), in batches."""
        return embed_in_batches(self.embedding, x)

    def nll_and_grad(self, theta, x):
        """(FIELD.1) L = -(1/n) sum log q(theta_i | h(x_i)); adds dL/dphi and (FIELD.2) dL/dpsi
        into the grads. theta: (n, p), x: (n, *input_shape) -> (L, d_theta, d_x)."""
        c, cache = self.embedding._forward(x)
        loss, d_theta, d_c = self.flow.nll_and_grad(theta, c)       # d_c = dL/dc (FLOW.4)
        d_x = self.embedding._backward(cache, d_c)                  # (FIELD.2) chain rule
        return loss, d_theta, d_x

    def mean_nll(self, theta, x) -> float:
        """L without gradients, in batches."""
        total = sum(float(np.sum(self.flow.log_prob(theta[s:s + EMBED_BATCH],
                                                    self.embedding._forward(x[s:s + EMBED_BATCH])[0])))
                    for s in range(0, theta.shape[0], EMBED_BATCH))
        return -total / theta.shape[0]


def train_embedded(npe, theta, x, *, rng=None, batch_size: int, lr: float,
                   validation_fraction: float, patience: int, max_epochs: int,
                   clip: float | None, progress: bool) -> "EmbeddedPosterior":
    """Train ``npe``'s flow and a copy of its embedding jointly (FIELD.1) -> EmbeddedPosterior.

    Training runs with one BLAS thread (:func:`nprefgen._threads.blas_threads`): a CNN's
    im2col products are small, and on a busy 2-core machine a 2-thread BLAS made a conv backward
    pass 35 x slower (0.70 s vs 0.02 s, measured).

    theta : (n, p) inside the prior; x : (n, *npe.embedding.input_shape). Sets ``npe.flow``,
    ``npe.embedding_`` (the trained copy; ``npe.embedding`` stays untrained, so training twice
    with one seed gives the same posterior) and ``npe.history_``.
    """
    from nprefgen.sbi.npe import build_flow

    check_scalar(lr, "lr", low=0.0, low_inclusive=False)
    check_int(max_epochs, "max_epochs", low=1)
    theta, x, embedding = check_embedded_pairs(npe.embedding, theta, x, npe.prior)
    rng = check_rng(rng)
    npe.flow = npe.history_ = npe.embedding_ = None
    # the draws from rng keep NPE's order: the flow's weights, the split, the shuffles
    flow = build_flow(npe.flow_kind, theta.shape[1], embedding.out_features, npe.n_transforms,
                      npe.hidden, True if npe.z_score_theta else None, None, rng=rng,
                      activation=npe.activation)
    train, val = validation_split(theta.shape[0], validation_fraction, rng=rng)
    t_tr, x_tr = take((theta, x), train)
    if npe.z_score_theta:                                              # (SBI.11)
        z_score = next(b for b in flow.bijectors if isinstance(b, Standardize))
        fitted = Standardize.from_data(t_tr)
        z_score.load_buffer_dict({"mean": fitted.mean, "std": fitted.std})
    if npe.z_score_x:
        embedding.standardize(x_tr)
    check_embedding_output(embedding, x_tr)
    model = EmbeddedFlow(flow, embedding)
    if flow.needs_initialization():
        flow.initialize(t_tr, model.embed(x_tr))
    try:
        with blas_threads(1):         # small matrices: BLAS threads only contend (see _threads)
            history = fit_loop(model, model.nll_and_grad, (t_tr, x_tr), rng=rng,
                               val_data=take((theta, x), val) if val.size else None,
                               evaluate=model.mean_nll, epochs=max_epochs,
                               batch_size=batch_size, lr=lr, clip=clip, patience=patience,
                               progress=progress, desc="NPE (embedding)")
    except TrainingDivergedError as err:
        npe.history_ = err.history
        raise
    flow.history_ = history
    npe.flow, npe.embedding_, npe.history_ = flow, embedding, history
    return EmbeddedPosterior(flow, npe.prior, embedding)


class EmbeddedPosterior(DirectPosterior):
    """(SBI.12) q(theta | h(x)) restricted to the prior, for raw observations x.

    Parameters
    ----------
    flow : conditional flow over theta with context size ``embedding.out_features``.
    prior : the prior.
    embedding : the trained :class:`nprefgen.sbi.embeddings.Embedding`.

    ``x``: one observation (``embedding.input_shape``, or a batch of one); ``xs``: a batch
    (N, *input_shape). The acceptance rate and the methods are those of DirectPosterior.
    """

    def __init__(self, flow, prior, embedding, max_rounds: int = 100) -> None:
        super().__init__(flow, prior, max_rounds)
        if flow.context_dim != embedding.out_features:
            raise ValueError(f"embedding: expected out_features={flow.context_dim} (the flow's "
                             f"context size), got {embedding.out_features}")
        self.embedding = embedding
        self.x_shape = embedding.input_shape
        self._model = EmbeddedFlow(flow, embedding)

    def embed(self, xs, name: str = "xs") -> np.ndarray:
        """c = h(x) for a batch xs (N, *input_shape) -> (N, out_features)."""
        return self._model.embed(self.embedding.check_x(xs, name))

    def _embed_one(self, x, name: str = "x"):
        if x is None:
            return None
        return self._model.embed(self.embedding.check_one(x, name))[0]

    def set_default_x(self, x) -> "EmbeddedPosterior":
        self.default_x = self._embed_one(x)
        return self

    def sample(self, n: int, x=None, *, rng=None) -> np.ndarray:
        """n draws (n, p) for one observation x (None: the default x)."""
        c = self._embed_one(x) if x is not None else self.default_x
        if c is None:
            raise ValueError(f"x: expected an observation of shape {self.x_shape}, got None "
                             f"(pass x or call set_default_x)")
        return DirectPosterior.sample_batched(self, n, c[None], rng=rng)[0]

    def sample_batched(self, n: int, xs, *, rng=None) -> np.ndarray:
        """n draws for each of N observations xs (N, *input_shape) -> (N, n, p)."""
        return super().sample_batched(n, self.embed(xs), rng=rng)

    def estimate_acceptance(self, x=None, *, rng=None, n: int = 10000) -> float:
        return super().estimate_acceptance(self._embed_one(x), rng=rng, n=n)

    def log_prob(self, theta, x=None, log_normalizer: float = 0.0) -> np.ndarray:
        """(SBI.12) log q(theta | h(x)) - log Z, -inf outside the prior. theta: (m, p) -> (m,)."""
        return super().log_prob(theta, self._embed_one(x), log_normalizer)

    def log_prob_pairs(self, theta, xs) -> np.ndarray:
        """log q(theta_i | h(x_i)) row by row. theta: (m, p), xs: (m, *input_shape) -> (m,)."""
        return super().log_prob_pairs(theta, self.embed(xs))

    # -- files ------------------------------------------------------------------------------------
    def save(self, path) -> None:
        """Flow (weights, buffers, builder configuration) and embedding (weights, z-scoring
        statistics, configuration) to one ``.npz``, atomically."""
        flow, emb = self.flow, self.embedding
        flow.check_buffer_dict(flow.buffer_dict())
        meta = {"buffer." + k: v for k, v in flow.buffer_dict().items()}
        meta["embedding.x_mean"] = emb.x_mean
        meta["embedding.x_std"] = emb.x_std
        if flow.config is not None:
            meta["flow_config"] = np.array(json.dumps(flow.config))
        if emb.config() is not None:
            meta["embedding_config"] = np.array(json.dumps(emb.config()))
        save_npz(path, self._model, meta=meta)

    @classmethod
    def load(cls, path, prior, embedding=None) -> "EmbeddedPosterior":
        """Rebuild a posterior saved by :meth:`save`; the prior is passed again (it is code).

        ``embedding``: None rebuilds the network from the stored configuration (the built-in
        embeddings); a custom one must be passed, constructed as when it was trained. A file
        that does not fit raises ValueError naming ``path`` (or ``embedding``); nothing is
        assigned to a passed embedding unless everything fits.
        """
        from nprefgen.flows import builders

        where = f"path: {os.fspath(path)!r}"
        keys = ["__meta__.flow_config", "__meta__.embedding_config"]
        stored = read_npz(path, keys=keys)
        if keys[0] not in stored:
            raise ValueError(f"{where} holds no flow configuration: not a saved "
                             f"EmbeddedPosterior")
        try:
            flow = builders.from_config(json.loads(str(stored[keys[0]])))
        except Exception as exc:
            raise ValueError(f"{where}: flow_config does not build a flow ({exc})"[:400]) from exc
        if embedding is None:
            if keys[1] not in stored:
                raise ValueError(f"{where} holds no embedding configuration (a custom "
                                 f"embedding): pass embedding=, built as when it was trained")
            try:
                embedding = embedding_from_config(json.loads(str(stored[keys[1]])))
            except Exception as exc:
                raise ValueError(f"{where}: embedding_config does not build an embedding "
                                 f"({exc})"[:400]) from exc
        else:
            from nprefgen.sbi.embeddings import check_embedding

            check_embedding(embedding)
        if flow.context_dim != embedding.out_features:
            raise ValueError(f"embedding: expected out_features={flow.context_dim} (the saved "
                             f"flow's context size), got {embedding.out_features}")
        dim = getattr(prior, "dim", None)
        if dim is not None and flow.dim != dim:
            raise ValueError(f"{where} holds a flow over {flow.dim} parameters; the prior has "
                             f"{dim}")
        model = EmbeddedFlow(flow, embedding)
        checked = {}

        def check_meta(meta):
            checked["buffers"] = flow.check_saved_buffers(meta, where)
            checked.update(saved_embedding_stats(meta, embedding, where))

        n_values = model.num_parameters() + sum(b.size for _, b in flow.named_buffers()) \
            + 2 * embedding.x_mean.size
        load_npz(path, model, check_meta=check_meta, max_bytes=8 * n_values + META_BYTES)
        flow.load_buffer_dict(checked["buffers"])
        embedding.x_mean, embedding.x_std = checked["x_mean"], checked["x_std"]
        return cls(flow, prior, embedding)
