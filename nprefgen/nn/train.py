"""One training loop for every model: minibatches, validation split, early stopping with the best
parameters restored, gradient clipping (NN.17), a per-epoch hook, a progress bar and divergence
detection (derivations/nn.md, NN.15-NN.17).

A model hands the loop three things:

* ``model``: anything with ``parameters()`` (``(param, grad)`` array pairs, the optimizers'
  form) and ``zero_grad()``; the loop copies the parameter arrays to remember the best state.
* ``loss_and_grad(*batch) -> float``: the model's *named* loss on one minibatch, e.g.
  :meth:`nprefgen.flows.Flow.nll_and_grad`; it returns the mean loss over the batch and *adds*
  the gradient of that mean into the parameters' grads (the loop zeroes them first); a tuple
  whose first entry is the loss is accepted too.
* ``evaluate(*arrays) -> float``: the same mean loss without gradients, for the validation set.

The data are tuples of arrays sharing their first axis, e.g. ``(x,)``, ``(x, context)`` or
``(x_1, x_2)``; a minibatch takes the same rows of each. :func:`validation_split` draws the held-out
rows first, so that a model can fit data-dependent statistics (z-scores, ActNorm) on the training
rows only before it calls :func:`fit_loop`::

    train_idx, val_idx = validation_split(n, 0.1, rng=rng)
    history = fit_loop(model, model.loss_and_grad, (x[train_idx],), val_data=(x[val_idx],),
                       evaluate=model.evaluate, rng=rng, epochs=100, lr=1e-3)

Divergence. Training stops, the best parameters are restored and :class:`TrainingDivergedError`
is raised (or a warning given, ``on_divergence="warn"``) when

1. a minibatch loss or the global gradient norm is not finite (checked before the update, so a
   NaN never reaches the parameters; at the very first step, before any update, this is the
   data's or the initialisation's fault, not the learning rate's, and raises ``ValueError``), or the loss raises a ``ValueError`` *after* the first
   update (the data were valid at step 0, so the parameters made it fail: e.g. an overflow that a
   later bijector's input check refuses); or
2. the epoch's mean training loss L explodes above the best training loss seen so far, which
   starts at the loss of the first minibatch at the initial parameters,

       L - L_best > divergence_tol * (1 + |L_best|),

   in ``divergence_epochs`` consecutive epochs (default 3), or in the last epoch training runs.
   One exploded epoch that the next epochs recover from is a *spike*, not a divergence: Adam on
   a peaked density (the 8-Gaussians toy at lr 1e-3) jumps from 3 to 35 nats for one epoch and
   is back below 3.2 two epochs later. Spikes are listed in ``history["spikes"]``; the best
   parameters are what the loop returns either way.

   The margin is relative to the loss's own scale (nats per sample for a likelihood, squared error
   for a reconstruction) with a floor of ``divergence_tol`` loss units; the default 3 flags a NLL
   that rises from 2 to 11 nats per sample or from -100 to +203, rises that training at a sane
   learning rate does not produce (the training loss, unlike the validation loss, does not rise
   when a model overfits).

The parameters restored on divergence are those of the best epoch (lowest monitored loss), checked
once more, since an epoch can end on the bad step whose loss only the next epoch sees: if their
loss (on the validation data, else on one minibatch) is not finite or lies beyond the same margin
above the reference loss (the initial validation loss, else the first minibatch's loss), the
initial parameters are restored instead.
"""
from __future__ import annotations

import math
import os
import sys
import warnings
from functools import partial

import numpy as np

from nprefgen._validation import check_array, check_choice, check_int, check_rng, check_scalar
from nprefgen.kernels.grads import sum_squares_all_numpy
from nprefgen.kernels.heap import keep_freed_heap
from nprefgen.nn.optim import SGD, Adam, Optimizer, clip_grad_norm

OPTIMIZERS = {"adam": Adam, "sgd": SGD}


class TrainingDivergedError(RuntimeError):
    """Training diverged (a non-finite or exploding loss, or non-finite gradients); the model's
    best parameters were restored. ``history`` holds the losses up to the divergence, ``lr`` the
    learning rate and ``epoch`` the epoch (from 0) in which it happened."""

    def __init__(self, message: str, *, history: dict, lr: float, epoch: int) -> None:
        super().__init__(message)
        self.history = history
        self.lr = lr
        self.epoch = epoch


def validation_split(n: int, validation_fraction: float, *, rng=None):
    """Rows held out for validation: ``max(1, int(validation_fraction * n))`` of a permutation of
    ``range(n)`` drawn from ``rng``; 0 holds out nothing (and draws nothing).

    -> ``(train_idx, val_idx)``, disjoint int arrays covering ``range(n)``.
    """
    n = check_int(n, "n", low=1)
    validation_fraction = check_scalar(validation_fraction, "validation_fraction", low=0.0,
                                       high=1.0, high_inclusive=False)
    if validation_fraction == 0:
        return np.arange(n), np.arange(0)
    order = check_rng(rng).permutation(n)
    n_val = max(1, int(validation_fraction * n))
    if n - n_val < 1:
        raise ValueError(f"x: expected at least 2 samples for a validation split, got {n}")
    return order[n_val:], order[:n_val]


def take(data: tuple, idx) -> tuple:
    """The rows ``idx`` of every array of ``data`` (None entries stay None)."""
    return tuple(None if a is None else a[idx] for a in data)


def grad_norm(params) -> float:
    """The global 2-norm of the gradients, sqrt(sum_k |g_k|^2) (the norm NN.17 clips)."""
    return float(np.sqrt(sum_squares_all_numpy([g for _, g in params])))


def _covers(opt: Optimizer, params) -> bool:
    """Does ``opt`` hold exactly the gradient arrays of ``params``, in order? Then the loop may
    zero them and take their norm through the optimizer (one kernel call each for Adam)."""
    return len(opt.params) == len(params) and all(
        a is b for (_, a), (_, b) in zip(opt.params, params))


def _check_data(data, name: str) -> tuple:
    """A tuple of arrays (or None entries) sharing their first axis; a lone array is wrapped."""
    if isinstance(data, np.ndarray):
        data = (data,)
    if not isinstance(data, (tuple, list)) or not data:
        raise ValueError(f"{name}: expected a tuple of arrays sharing their first axis, got "
                         f"{type(data).__name__}")
    data = tuple(None if a is None else check_array(a, f"{name}[{i}]", ndim=(1, 2, 3, 4, 5))
                 for i, a in enumerate(data))
    rows = {a.shape[0] for a in data if a is not None}
    if len(rows) != 1:
        raise ValueError(f"{name}: expected arrays with the same number of rows, got "
                         f"{[None if a is None else a.shape for a in data]}")
    return data


def is_data_source(data) -> bool:
    """A data source streams its own minibatches: ``data.minibatches(batch_size, rng=rng)`` ->
    an iterator of tuples of arrays (one pass, shuffled by ``rng``) and ``data.head(m)`` -> a
    tuple of the first m rows (e.g. :class:`nprefgen.sbi.shards.ShardedDataset`)."""
    return callable(getattr(data, "minibatches", None)) and callable(getattr(data, "head", None))


PROGRESS_ENV = "NPREFGEN_PROGRESS"


def _interactive() -> bool:
    """A terminal on stderr, or a Jupyter kernel (an IPython shell with a kernel attached);
    never inside pytest (whose captured streams are not terminals anyway)."""
    if "PYTEST_CURRENT_TEST" in os.environ:
        return False
    try:
        if sys.stderr is not None and sys.stderr.isatty():
            return True
    except (AttributeError, ValueError):          # a closed or replaced stream
        pass
    shell = sys.modules.get("IPython")
    try:
        ip = shell.get_ipython() if shell is not None else None
    except Exception:                             # noqa: BLE001 (any IPython trouble: no bar)
        return False
    return ip is not None and getattr(ip, "kernel", None) is not None


def show_progress(progress=None) -> bool:
    """Whether a training loop shows a progress bar.

    ``progress`` False: never. True or None (auto): the environment variable NPREFGEN_PROGRESS
    decides when set ("1"/"true"/"yes"/"on": always, "0"/"false"/"no"/"off": never), else a bar
    appears in interactive use (stderr is a terminal, or a Jupyter notebook) and not in scripts
    whose stderr goes to a file, nor under pytest."""
    if progress is False:
        return False
    env = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if env in ("1", "true", "yes", "on"):
        return True
    if env in ("0", "false", "no", "off"):
        return False
    if env:
        raise ValueError(f"{PROGRESS_ENV}: expected 0 or 1 (or true/false), got {env!r}")
    return _interactive()


def _make_optimizer(optimizer, params, lr, weight_decay) -> Optimizer:
    if isinstance(optimizer, Optimizer):
        return optimizer
    kind = check_choice(optimizer, "optimizer", tuple(OPTIMIZERS))
    return OPTIMIZERS[kind](params, lr=lr, weight_decay=weight_decay)


def fit_loop_keeping_adam(model, loss_and_grad, train_data, *, lr: float = 1e-3,
                          weight_decay: float = 0.0, **fit_kwargs) -> dict:
    """:func:`fit_loop` with an Adam kept on ``model`` (as ``model._opt``) across calls, so that a
    second ``fit`` with the same ``lr`` and ``weight_decay`` continues with the same moment
    estimates (a different lr or weight_decay starts a new Adam). After a divergence, raised or
    warned, the optimizer is forgotten: its moments saw the diverging steps. ``fit_kwargs`` go
    to :func:`fit_loop` (rng, epochs, batch_size, ...); returns its history."""
    opt = getattr(model, "_opt", None)
    if not isinstance(opt, Adam) or opt.lr != lr or opt.weight_decay != weight_decay:
        opt = model._opt = Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    try:
        history = fit_loop(model, loss_and_grad, train_data, optimizer=opt, **fit_kwargs)
    except TrainingDivergedError:
        forget_adam(model)
        raise
    if history["stopped"] == "diverged":
        forget_adam(model)
    return history


def forget_adam(model) -> None:
    """Drop the Adam :func:`fit_loop_keeping_adam` keeps on ``model`` (after a divergence, or when
    new weights are loaded: its moments belong to other parameters); the next fit starts fresh."""
    model.__dict__.pop("_opt", None)


def fit_loop(model, loss_and_grad, train_data, *, rng=None, evaluate=None, val_data=None,
             epochs: int = 100, batch_size: int | None = 256, lr: float = 1e-3,
             weight_decay: float = 0.0, optimizer="adam", clip: float | None = None,
             patience: int | None = None, hook=None, min_batch_size: int = 1,
             on_divergence: str = "raise", divergence_tol: float = 3.0,
             divergence_epochs: int = 3, progress: bool | None = True, desc: str = "train") -> dict:
    """Minimise ``loss_and_grad`` over minibatches of ``train_data``; see the module docstring.

    Parameters
    ----------
    model : has ``parameters()`` and ``zero_grad()``
    loss_and_grad : callable ``(*batch) -> mean loss``, adding its gradient into the grads; it
        may return a tuple whose first entry is the loss (e.g. ``(loss, d_x, d_context)``)
    train_data : tuple of arrays with n rows each (a lone array is taken as ``(array,)``), or a
        data source (:func:`is_data_source`, e.g. a ShardedDataset) that streams its own
        shuffled minibatches from disk (no ``hook`` then)
    rng : SPEC 7 seed or Generator: one permutation per epoch, then whatever ``hook`` and
        ``loss_and_grad`` draw from the same Generator
    evaluate : callable ``(*val_data) -> mean loss`` (needed with ``val_data``)
    val_data : tuple of arrays or None; None monitors the training loss
    epochs : maximum number of passes over the training data
    batch_size : rows per minibatch (None: the whole training set); a last batch of fewer than
        ``min_batch_size`` rows is skipped (NT-Xent needs two)
    lr, weight_decay, optimizer : "adam" (default) or "sgd" built on ``model.parameters()``, or
        an :class:`nprefgen.nn.Optimizer` instance to continue with (lr/weight_decay then unused)
    clip : global gradient-norm clip (NN.17) or None
    patience : stop after this many epochs without a better monitored loss (None: never)
    hook : callable ``(epoch, rng)``, called at the start of every epoch (epoch 0 included)
        before the shuffle; it may return new training arrays shaped like ``train_data`` (e.g.
        fresh dequantization noise or augmentations), or None to keep the current ones
    on_divergence : "raise" (:class:`TrainingDivergedError`) or "warn" (a RuntimeWarning; the
        best parameters are restored and the history returned)
    divergence_tol : the explosion margin of rule 2 in the module docstring
    divergence_epochs : how many consecutive exploded epochs rule 2 needs (1: any spike)
    progress : None or True: a tqdm bar in interactive use (a terminal or a notebook; the
        NPREFGEN_PROGRESS environment variable overrides, see :func:`show_progress`); False:
        never
    desc : the bar's label and the name used in messages

    Returns
    -------
    history : dict with ``train_loss`` and ``val_loss`` (one mean loss per epoch; ``val_loss``
        empty without validation data), ``best_epoch`` (from 0; the epoch whose parameters are
        restored; -1: the initial ones, see the divergence rules), ``epochs`` (epochs run), ``stopped`` ("max_epochs", "early_stopping" or
        "diverged") and ``message`` (why training diverged, else "").
    """
    rng = check_rng(rng)
    epochs = check_int(epochs, "epochs", low=1)
    if batch_size is not None:
        batch_size = check_int(batch_size, "batch_size", low=1)
    min_batch_size = check_int(min_batch_size, "min_batch_size", low=1)
    if patience is not None:
        patience = check_int(patience, "patience", low=1)
    if clip is not None:
        clip = check_scalar(clip, "clip", low=0.0, low_inclusive=False)
    on_divergence = check_choice(on_divergence, "on_divergence", ("raise", "warn"))
    divergence_tol = check_scalar(divergence_tol, "divergence_tol", low=0.0, low_inclusive=False)
    divergence_epochs = check_int(divergence_epochs, "divergence_epochs", low=1)
    if not callable(loss_and_grad):
        raise ValueError(f"loss_and_grad: expected a callable (*batch) -> loss, got "
                         f"{type(loss_and_grad).__name__}")
    if hook is not None and not callable(hook):
        raise ValueError(f"hook: expected a callable (epoch, rng) or None, got {type(hook).__name__}")
    source = train_data if is_data_source(train_data) else None
    if source is not None:
        if hook is not None:
            raise ValueError("hook: expected None with a data source as train_data (the source "
                             "streams its own batches)")
        train_data = _check_data(source.head(batch_size or 256), "train_data.head()")
    else:
        train_data = _check_data(train_data, "train_data")
    if val_data is not None:
        val_data = _check_data(val_data, "val_data")
        if not callable(evaluate):
            raise ValueError("evaluate: expected a callable (*val_data) -> loss with val_data")
    params = model.parameters()
    if not params:
        raise ValueError("model: expected at least one trainable parameter to fit, got none")
    if isinstance(optimizer, Optimizer):
        lr = getattr(optimizer, "lr", lr)
    else:
        lr = check_scalar(lr, "lr", low=0.0, low_inclusive=False)
        weight_decay = check_scalar(weight_decay, "weight_decay", low=0.0)
    opt = _make_optimizer(optimizer, params, lr, weight_decay)
    keep_freed_heap()                          # steps reuse freed heap (kernels/heap.py): 1.4x
    if _covers(opt, params):                   # the same arrays: one kernel call each (Adam)
        zero_grad, norm_of_grads, clip_grads = opt.zero_grad, opt.grad_norm, opt._clip_grad_norm
    else:
        zero_grad, norm_of_grads = model.zero_grad, lambda: grad_norm(params)
        clip_grads = partial(clip_grad_norm, params)

    n = next(a.shape[0] for a in train_data if a is not None)
    history = {"train_loss": [], "val_loss": [], "best_epoch": -1, "epochs": 0,
               "stopped": "max_epochs", "message": "", "spikes": []}
    exploded = 0                               # consecutive epochs above the rule-2 margin
    initial = [p.copy() for p, _ in params]
    best_state = initial                               # the initial parameters until an epoch wins
    best, best_train, since_best, steps = np.inf, np.inf, 0, 0
    reference = np.inf                                 # the loss a sane model stays near:
    if val_data is not None:                           # the initial validation loss, else the
        reference = float(evaluate(*val_data))         # first minibatch's (set below)

    def sane(loss) -> bool:
        """Rule 2: finite and not far above the reference loss."""
        return bool(np.isfinite(loss)) and not (
            np.isfinite(reference) and loss - reference > divergence_tol * (1.0 + abs(reference)))

    def check_restored() -> bool:
        """Is the restored best state sane? (An epoch can end on a bad step whose loss is only
        seen in the next epoch.) Evaluated on the validation data, else on one batch."""
        try:
            if val_data is not None:
                return sane(float(evaluate(*val_data)))
            rows = np.arange(min(n, batch_size or n))
            loss = loss_and_grad(*take(train_data, rows))
            return sane(float(loss[0] if isinstance(loss, tuple) else loss))
        except (ValueError, FloatingPointError):
            return False
        finally:
            model.zero_grad()

    def diverged(epoch: int, what: str, cause: Exception | None = None) -> dict:
        for (p, _), s in zip(params, best_state):
            p[...] = s
        if best_state is not initial and not check_restored():
            for (p, _), s in zip(params, initial):
                p[...] = s
            history["best_epoch"] = -1
        model.zero_grad()
        kept = (f"the parameters of epoch {history['best_epoch']} (the best so far)"
                if history["best_epoch"] >= 0 else "the initial parameters")
        message = (f"{desc}: training diverged in epoch {epoch} ({what}) with lr={lr:g}; "
                   f"{kept} were restored. Try a smaller learning rate (e.g. lr={lr / 10:g})"
                   + (" or a gradient clip (e.g. clip=5.0)." if clip is None else
                      f" or a tighter gradient clip than clip={clip:g}."))
        history["stopped"], history["message"] = "diverged", message
        if on_divergence == "raise":
            raise TrainingDivergedError(message, history=history, lr=lr, epoch=epoch) from cause
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        return history

    bar = None
    if show_progress(progress):
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc=desc, unit="epoch", leave=False)
    try:
        for epoch in range(epochs):
            if hook is not None:
                new = hook(epoch, rng)
                if new is not None:
                    train_data = _check_data(new, "hook")
            n = next(a.shape[0] for a in train_data if a is not None)
            if source is None:
                if n < min_batch_size:
                    raise ValueError(f"train_data: expected at least {min_batch_size} rows, got {n}")
                perm = rng.permutation(n)
                step = n if batch_size is None else batch_size
                batches = (take(train_data, perm[s:s + step]) for s in range(0, n, step))
            else:
                batches = source.minibatches(batch_size or 256, rng=rng)
            total, count = 0.0, 0
            for batch in batches:
                rows = next(a.shape[0] for a in batch if a is not None)
                if rows < min_batch_size:
                    continue
                zero_grad()
                try:
                    loss = loss_and_grad(*batch)
                    loss = float(loss[0] if isinstance(loss, tuple) else loss)
                except (ValueError, FloatingPointError) as err:
                    if steps == 0:
                        raise
                    # the batch was valid at step 0, so the updated parameters made the model
                    # overflow inside (the error is chained as the cause)
                    return diverged(epoch, "the model overflowed to non-finite values inside", err)
                if steps == 0 and np.isfinite(loss):
                    best_train = loss          # the loss at the initial parameters (rule 2)
                    if val_data is None:
                        reference = loss
                norm = norm_of_grads()
                if steps == 0 and not (np.isfinite(loss) and np.isfinite(norm)):
                    # nothing has been updated yet: the learning rate cannot be the cause
                    scale = max((float(np.max(np.abs(a))) for a in
                                 (train_data if source is None else batch)
                                 if a is not None and a.size), default=0.0)
                    raise ValueError(
                        f"train_data: the loss ({loss:.4g}) or its gradient norm ({norm:.4g}) is "
                        f"not finite at the initial parameters, before any update; the data's "
                        f"scale (max |entry| {scale:.3g}) or the model's initialisation is the "
                        f"problem, not the learning rate")
                if not math.isfinite(loss):          # Python floats: math, not a ufunc call
                    return diverged(epoch, f"minibatch loss {loss}")
                if not math.isfinite(norm):
                    return diverged(epoch, f"gradient norm {norm}")
                if clip is not None:
                    clip_grads(clip, norm)                           # (NN.17)
                opt.step()
                steps += 1
                total += loss * rows
                count += rows
            train_loss = total / count
            history["train_loss"].append(train_loss)
            history["epochs"] = epoch + 1
            if train_loss - best_train > divergence_tol * (1.0 + abs(best_train)):   # rule 2
                exploded += 1
                history["spikes"].append(epoch)
                if exploded >= divergence_epochs or epoch == epochs - 1:
                    return diverged(epoch, f"mean training loss {train_loss:.4g} in "
                                           f"{exploded} consecutive epoch(s), best {best_train:.4g}")
            else:
                exploded = 0
                best_train = min(best_train, train_loss)
            if val_data is not None:
                try:
                    val_loss = float(evaluate(*val_data))
                except (ValueError, FloatingPointError) as err:
                    if steps == 0:
                        raise
                    return diverged(epoch, "the validation loss overflowed inside the model", err)
                if not np.isfinite(val_loss):
                    return diverged(epoch, f"validation loss {val_loss}")
                history["val_loss"].append(val_loss)
            monitored = history["val_loss"][-1] if val_data is not None else train_loss
            if monitored < best:
                best, since_best = monitored, 0
                best_state = [p.copy() for p, _ in params]
                history["best_epoch"] = epoch
            else:
                since_best += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(train=f"{train_loss:.4g}",
                                val=f"{history['val_loss'][-1]:.4g}" if val_data is not None else "-")
            if patience is not None and since_best >= patience:
                if exploded:                   # training ends while exploded (rule 2)
                    return diverged(epoch, f"mean training loss {train_loss:.4g} when early "
                                           f"stopping ended training, best {best_train:.4g}")
                history["stopped"] = "early_stopping"
                break
    finally:
        if bar is not None:
            bar.close()
    for (p, _), s in zip(params, best_state):
        p[...] = s
    model.zero_grad()
    return history
