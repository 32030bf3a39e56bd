"""Neural posterior estimation (derivations/sbi.md, SBI.10-SBI.12).

(SBI.10) Train a conditional density q_phi(theta | x) on pairs from the joint by minimising

    L(phi) = -E_{p(theta, x)} log q_phi(theta | x)
           = E_{p(x)} KL( p(theta | x) || q_phi(theta | x) ) + E_{p(x)} H[p(theta | x)],

whose second term does not depend on phi: the minimiser over a flexible enough family is the
posterior q(theta | x) = p(theta | x) for every x the joint reaches. One training run therefore
serves every observation (amortisation); no simulator call happens at inference time.

(SBI.11) theta and x are z-scored with the mean and standard deviation of the *training split*
(the validation rows are drawn first and never enter the statistics, as in sbi), by a fixed
:class:`nprefgen.flows.Standardize` bijector in front of the flow (its log-det -sum log s keeps
densities those of the raw theta) and by the flow's context standardisation for x.

(SBI.12) A flow puts some mass outside a bounded prior's support; the posterior estimate is q
restricted to the support, sampled by rejection (the acceptance rate is reported).

Training defaults follow the ``sbi`` package (v0.27): 5 transforms, 50 hidden units (two
layers), tanh, batch 200, Adam lr 5e-4, 10 % validation, early stopping after 20 epochs without
improvement, gradient-norm clip 5; the flow is a neural spline flow by default (sbi's default
MAF, with random permutations, is ``flow="maf"``).

Early stopping (checked for issue 12; derivations/sbi.md, "Training defaults"): the rule is
sbi's, the validation loss of the held-out 10 % with the best epoch's weights restored. On 10-D
gaussian_linear at 10^4 simulations the validation minimum comes at epochs 3-8 and patience 50
finds no better epoch than patience 20 (same C2ST, 0.522 and 0.528 for two seeds): the flow
starts to overfit the 9,000 training pairs, so stopping is not premature. sbibm trained its NPE
with ``training_batch_size=10000`` (one full batch per epoch at 10^4); batch 1000 here reaches a
0.02 nats lower validation loss (best epoch 18) but the same C2ST within its noise (0.521 vs
0.525, mean of two seeds x 3 observations) at ~1.3x the training time. The defaults stay sbi's,
which also keeps the timing benchmarks like for like; ``batch_size=`` and ``patience=`` are the
knobs.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import (
    check_array, check_choice, check_float_dtype, check_int, check_rng, check_scalar,
)
from nprefgen.flows.elementwise import Standardize
from nprefgen.nn.activations import ACTIVATIONS
from nprefgen.nn.train import TrainingDivergedError, is_data_source, take, validation_split
from nprefgen.sbi.embeddings import check_embedding, structured_x_message
from nprefgen.sbi.posterior import DirectPosterior
from nprefgen.sbi.priors import check_in_support, check_prior, check_theta


def check_training_pairs(theta, x, prior=None):
    """theta (n, p), x (n, dx): finite, matching rows, non-empty, theta inside the prior."""
    if np.size(theta) == 0 or np.shape(theta)[:1] == (0,):
        raise ValueError(f"theta: expected a non-empty training set, got shape {np.shape(theta)}")
    theta = check_array(theta, "theta", ndim=2, dtype=np.float64)
    if np.ndim(x) > 2:                    # a set or an image: say how to flatten or embed it
        raise ValueError(structured_x_message(np.shape(x)))
    x = check_array(x, "x", ndim=2, dtype=np.float64)
    if x.shape[0] != theta.shape[0]:
        raise ValueError(f"x: expected {theta.shape[0]} rows to match theta, got shape {x.shape}"
                         f" (drop failed simulations with nprefgen.sbi.simulate, which counts them)")
    if theta.shape[0] < 2:
        raise ValueError(f"theta: expected at least 2 training pairs, got {theta.shape[0]}")
    if prior is not None:
        theta = check_in_support(prior, check_theta(theta, prior.dim), "theta")
    return theta, x


FLOWS = ("maf", "nsf", "realnvp")


def build_flow(kind: str, dim: int, context_dim: int, n_transforms: int, hidden, data, context,
               *, rng=None, activation: str = "tanh", maf_bound: float | None = 3.0):
    """A conditional MAF, neural spline flow (coupling, 8 bins on [-4, 4]) or RealNVP over
    (n, dim) data with (n, context_dim) context; (SBI.11) z-scores the data by a fixed Standardize
    bijector and the context inside the flow (``data``/``context``: the ``standardize`` and
    ``standardize_context`` arguments of the flow builders). ``rng``: None, an int seed or a
    Generator (SPEC 7), the initial weights."""
    from nprefgen.flows import maf, realnvp, spline_flow

    check_choice(kind, "flow", FLOWS)
    rng = check_rng(rng)
    if kind == "nsf":
        return spline_flow(dim, n_transforms, hidden, rng=rng, context_dim=context_dim,
                           n_bins=8, bound=4.0, activation=activation, standardize=data,
                           standardize_context=context)
    if kind == "maf":
        return maf(dim, n_transforms, hidden, rng=rng, context_dim=context_dim,
                   permutation="random", activation=activation, standardize=data,
                   standardize_context=context, bound=maf_bound)
    if dim < 2:
        raise ValueError("flow: 'realnvp' needs dim >= 2; use 'maf'")
    return realnvp(dim, n_transforms, hidden, rng=rng, context_dim=context_dim,
                   activation=activation, standardize=data, standardize_context=context)


def fit_conditional_flow(estimator, data, context, *, rng=None, z_score_data: bool,
                         z_score_context: bool, batch_size: int, lr: float,
                         validation_fraction: float, patience: int, max_epochs: int,
                         clip: float | None, progress: bool, dtype=np.float64):
    """Build and train the flow q(data | context) of an NPE (data = theta, context = x) or an NLE
    (data = x, context = theta) by maximum likelihood (SBI.10).

    ``dtype`` float32 trains in float32 arithmetic (the flow, its z-scorings and the data cast
    after the statistics are set; what torch-based libraries do by default) and casts the trained
    flow back to float64 (exact), so the posterior, saving and loading stay float64.

    The validation rows are drawn first; the z-score statistics (SBI.11) and the flow's training
    come from the remaining rows only. Stores ``estimator.flow`` and ``estimator.history_``. A
    diverging training run raises :class:`nprefgen.nn.train.TrainingDivergedError` and leaves
    ``estimator.flow`` None, so no posterior is ever built on a diverged flow.
    """
    check_scalar(lr, "lr", low=0.0, low_inclusive=False)
    check_int(max_epochs, "max_epochs", low=1)
    dtype = check_float_dtype(dtype)
    rng = check_rng(rng)
    estimator.flow = estimator.history_ = None
    # built with identity z-scorings first (the draws from rng keep their order: weights, split,
    # shuffles); the statistics are then set from the training rows only (SBI.11)
    flow = build_flow(estimator.flow_kind, data.shape[1], context.shape[1], estimator.n_transforms,
                      estimator.hidden, True if z_score_data else None,
                      True if z_score_context else None, rng=rng, activation=estimator.activation)
    train, val = validation_split(data.shape[0], validation_fraction, rng=rng)
    d_tr, c_tr = take((data, context), train)
    if z_score_data:
        z_score = next(b for b in flow.bijectors if isinstance(b, Standardize))
        fitted = Standardize.from_data(d_tr)
        z_score.load_buffer_dict({"mean": fitted.mean, "std": fitted.std})
    if z_score_context:
        flow.standardize_context(c_tr)
    val_data = take((data, context), val) if val.size else None
    if dtype != np.float64:
        flow.astype(dtype)
        d_tr, c_tr = d_tr.astype(dtype), c_tr.astype(dtype)
        val_data = None if val_data is None else tuple(a.astype(dtype) for a in val_data)
    try:
        # (SBI.10) minimise the mean of -log q(data_i | context_i) over the training pairs
        flow.fit(d_tr, context=c_tr, rng=rng, validation_fraction=0.0, validation_data=val_data,
                 epochs=max_epochs, batch_size=batch_size, lr=lr, patience=patience, clip=clip,
                 progress=progress)
    except TrainingDivergedError as err:
        estimator.history_ = err.history
        raise
    flow.astype(np.float64)               # exact: the float32-trained weights, held in float64
    estimator.flow, estimator.history_ = flow, flow.history_
    return flow


class NPE:
    """Neural posterior estimation: ``NPE(prior).train(theta, x, rng=rng)`` -> DirectPosterior.

    Parameters
    ----------
    prior : the prior the training theta were drawn from.
    flow : "nsf" (default: rational-quadratic spline couplings, the flow sbibm's NPE results
        use), "maf" (the ``sbi`` package's default) or "realnvp". On two_moons (3000
        simulations) the spline flow reached C2ST 0.57 where the MAF stayed near 0.7-0.9: its
        affine layers struggle with the narrow crescents.
    n_transforms, hidden, activation : flow size (sbi's defaults 5, 50, tanh).
    z_score_theta, z_score_x : standardise theta / x with the training statistics (SBI.11).
    embedding : None, or an :class:`nprefgen.sbi.embeddings.Embedding` (MLPEmbedding,
        CNNEmbedding, DeepSetEmbedding) trained jointly with the flow (FIELD.1); x may then have
        any shape the embedding takes ((n, k, d) sets, (n, c, h, w) or (n, h, w) maps) and
        ``train`` returns an :class:`nprefgen.sbi.embedded.EmbeddedPosterior`.
    """

    def __init__(self, prior, *, flow: str = "nsf", n_transforms: int = 5, hidden=50,
                 activation: str = "tanh", z_score_theta: bool = True,
                 z_score_x: bool = True, embedding=None) -> None:
        self.prior = check_prior(prior)
        self.flow_kind = check_choice(flow, "flow", FLOWS)
        self.n_transforms = check_int(n_transforms, "n_transforms", low=1)
        self.hidden = hidden
        self.activation = check_choice(activation, "activation", ACTIVATIONS)
        self.z_score_theta = bool(z_score_theta)
        self.z_score_x = bool(z_score_x)
        self.embedding = check_embedding(embedding)
        self.embedding_ = None                # the trained copy (see sbi.embedded)
        self.flow = None
        self.history_: dict | None = None

    def train(self, theta, x, *, rng=None, batch_size: int = 200, lr: float = 5e-4,
              validation_fraction: float = 0.1, patience: int = 20, max_epochs: int = 1000,
              clip: float | None = 5.0, progress: bool | None = None,
              dtype=np.float64) -> DirectPosterior:
        """(SBI.10) fit q(theta | x) by maximum likelihood on the pairs; returns the posterior.

        theta : (n, p) inside the prior; x : (n, dx) finite (see ``simulate``'s NaN dropping).
        rng : SPEC 7 seed or Generator (the validation split, the flow's initial weights, the
        shuffles). The flow is trained as ``flow.fit(theta, context=x)``; its history is kept as
        ``self.history_``. A diverging run raises
        :class:`nprefgen.nn.train.TrainingDivergedError` (never a posterior on a diverged flow).
        ``theta`` may instead be a :class:`nprefgen.sbi.shards.ShardedDataset` (x None): the
        minibatches are then read from disk shard by shard. ``progress``: None (default) shows a
        bar in interactive use only (:func:`nprefgen.nn.train.show_progress`). ``dtype``:
        float64 (default) or float32, the arithmetic of training (theta and x arrays without an
        embedding); the returned posterior's flow is float64 either way.
        """
        if check_float_dtype(dtype) != np.float64 and (is_data_source(theta) or
                                                       self.embedding is not None):
            raise ValueError("dtype: float32 training is supported for theta, x arrays without an "
                             "embedding; got float32 with "
                             + ("a sharded dataset" if is_data_source(theta) else "an embedding"))
        if is_data_source(theta):           # simulations on disk (nprefgen.sbi.shards)
            if self.embedding is not None:
                raise ValueError("theta: training from shards on disk is not supported with an "
                                 "embedding network; load the arrays (dataset.arrays()) and pass "
                                 "them as theta, x")
            from nprefgen.sbi.shards import train_npe_on_shards
            train_npe_on_shards(self, theta, rng=rng, batch_size=batch_size, lr=lr,
                                validation_fraction=validation_fraction, patience=patience,
                                max_epochs=max_epochs, clip=clip, progress=progress)
            return DirectPosterior(self.flow, self.prior)
        if self.embedding is not None:        # joint training with the embedding (FIELD.1)
            from nprefgen.sbi.embedded import train_embedded
            return train_embedded(self, theta, x, rng=rng, batch_size=batch_size, lr=lr,
                                  validation_fraction=validation_fraction, patience=patience,
                                  max_epochs=max_epochs, clip=clip, progress=progress)
        theta, x = check_training_pairs(theta, x, self.prior)
        rng = check_rng(rng)
        fit_conditional_flow(self, theta, x, rng=rng, z_score_data=self.z_score_theta,
                             z_score_context=self.z_score_x, batch_size=batch_size, lr=lr,
                             validation_fraction=validation_fraction, patience=patience,
                             max_epochs=max_epochs, clip=clip, progress=progress, dtype=dtype)
        return DirectPosterior(self.flow, self.prior)
