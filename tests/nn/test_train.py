"""The shared training loop (nprefgen/nn/train.py): split, shuffles, early stopping with the best
parameters restored, clipping (NN.17), the per-epoch hook, determinism and divergence."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from nprefgen.nn import Linear, mse_loss
from nprefgen.nn.train import TrainingDivergedError, fit_loop, grad_norm, validation_split


class LinearRegression:
    """y = w x (no bias), the smallest model with the loop's protocol and a named loss."""

    def __init__(self, w0: float = 0.0) -> None:
        self.net = Linear(1, 1, rng=0, bias=False)
        self.net.params["weight"][...] = w0

    def parameters(self):
        return self.net.parameters()

    def zero_grad(self):
        self.net.zero_grad()

    @property
    def w(self) -> float:
        return float(self.net.params["weight"][0, 0])

    def mse_and_grad(self, x, y):
        out, cache = self.net.forward(x)
        loss, d_out = mse_loss(out, y)
        self.net.backward(cache, d_out)
        return loss

    def mse(self, x, y):
        return mse_loss(self.net(x), y)[0]


def _line(slope, n=40, seed=0):
    x = np.random.default_rng(seed).uniform(-1, 1, (n, 1))
    return x, slope * x


def test_validation_split_is_disjoint_deterministic_and_sized():
    train, val = validation_split(50, 0.2, rng=3)
    assert val.size == 10 and train.size == 40
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(50))
    again = validation_split(50, 0.2, rng=np.random.default_rng(3))
    assert np.array_equal(train, again[0]) and np.array_equal(val, again[1])
    assert validation_split(5, 0.01, rng=0)[1].size == 1           # at least one held out
    gen = np.random.default_rng(1)
    state = gen.bit_generator.state
    train, val = validation_split(7, 0.0, rng=gen)                  # nothing held out ...
    assert np.array_equal(train, np.arange(7)) and val.size == 0
    assert gen.bit_generator.state == state                         # ... and nothing drawn
    with pytest.raises(ValueError, match="validation_fraction"):
        validation_split(5, 1.0, rng=0)
    with pytest.raises(ValueError, match="at least 2"):
        validation_split(1, 0.5, rng=0)


def test_early_stopping_restores_the_best_parameters_exactly():
    """Training pulls w from 0 towards 2 while the validation targets have slope 0.5: the
    validation loss falls until w passes 0.5, then rises; training stops `patience` epochs after
    the best epoch and the parameters are bit-for-bit those at the end of the best epoch."""
    model = LinearRegression(0.0)
    snapshots = []
    hist = fit_loop(model, model.mse_and_grad, _line(2.0), val_data=_line(0.5, seed=1),
                    evaluate=model.mse, rng=0, epochs=200, batch_size=10, lr=0.05,
                    patience=3, hook=lambda epoch, rng: snapshots.append(model.w))
    snapshots.append(None)                       # parameters after epoch e = snapshots[e + 1]
    assert hist["stopped"] == "early_stopping" and hist["epochs"] < 200
    assert hist["epochs"] - 1 - hist["best_epoch"] == 3
    assert hist["best_epoch"] == int(np.argmin(hist["val_loss"]))
    assert model.w == snapshots[hist["best_epoch"] + 1]
    assert model.w != snapshots[hist["epochs"]]            # the last epoch's w was not kept
    assert all(np.all(g == 0) for _, g in model.parameters())
    assert model.mse(*_line(0.5, seed=1)) == min(hist["val_loss"])


def test_same_seed_gives_bit_identical_history_and_weights():
    def run(seed):
        model = LinearRegression(0.3)
        hist = fit_loop(model, model.mse_and_grad, _line(-1.0, n=37), rng=seed, epochs=5,
                        batch_size=8, lr=0.01)
        return hist, model.w

    (h1, w1), (h2, w2), (h3, w3) = run(4), run(np.random.default_rng(4)), run(5)
    assert h1 == h2 and w1 == w2
    assert h1["train_loss"] != h3["train_loss"]        # another seed shuffles differently
    assert len(h1["train_loss"]) == 5 and h1["val_loss"] == [] and h1["stopped"] == "max_epochs"


def test_hook_is_called_every_epoch_and_its_arrays_are_used():
    """hook(epoch, rng) runs before every epoch with the loop's Generator; the arrays it returns
    are the next epoch's training data (here: targets scaled by the epoch number)."""
    model = LinearRegression(0.0)
    x, y = _line(1.0, n=12)
    calls, seen = [], []
    gen = np.random.default_rng(9)

    def hook(epoch, rng):
        calls.append((epoch, rng))
        return x, (epoch + 1.0) * y

    def loss(xb, yb):
        seen.append(float(np.sum(yb / xb)))          # n times the slope of this batch's data
        return model.mse_and_grad(xb, yb)

    fit_loop(model, loss, (x, y), rng=gen, epochs=3, batch_size=None, lr=1e-3, hook=hook)
    assert [e for e, _ in calls] == [0, 1, 2] and all(r is gen for _, r in calls)
    np.testing.assert_allclose(seen, [12.0, 24.0, 36.0], rtol=1e-12)


def test_gradient_clipping_bounds_the_update():
    """(NN.17) with SGD (lr 1) the update is the clipped gradient: its norm is
    clip * |g| / (|g| + 1e-6) however large |g| is."""
    model = LinearRegression(0.0)
    x, y = np.array([[1.0]]), np.array([[1e6]])
    g = abs(2.0 * (0.0 - 1e6))                                      # d/dw (w x - y)^2 at w = 0
    fit_loop(model, model.mse_and_grad, (x, y), rng=0, epochs=1, lr=1.0, optimizer="sgd",
             clip=0.5, patience=None)
    assert abs(model.w) == pytest.approx(0.5 * g / (g + 1e-6), rel=1e-15)
    unclipped = LinearRegression(0.0)
    fit_loop(unclipped, unclipped.mse_and_grad, (x, y), rng=0, epochs=1, lr=1.0, optimizer="sgd",
             divergence_tol=1e30)
    assert abs(unclipped.w) == g


def test_min_batch_size_skips_small_last_batches():
    model = LinearRegression(0.0)
    sizes = []

    def loss(xb, yb):
        sizes.append(xb.shape[0])
        return model.mse_and_grad(xb, yb)

    fit_loop(model, loss, _line(1.0, n=9), rng=0, epochs=1, batch_size=4, lr=1e-3,
             min_batch_size=2)
    assert sizes == [4, 4]


def test_no_progress_bar_without_a_terminal(capsys):
    model = LinearRegression(0.0)
    fit_loop(model, model.mse_and_grad, _line(1.0), rng=0, epochs=2, lr=1e-3, progress=True)
    assert capsys.readouterr().err == ""


# -- divergence ---------------------------------------------------------------------------------

def _check_diverged(err, lr):
    message = str(err.value)
    assert "diverged" in message and f"lr={lr:g}" in message and "smaller" in message
    assert "expected finite" not in message            # never blames the user's data
    assert err.value.history["stopped"] == "diverged" and err.value.lr == lr


def test_a_non_finite_loss_restores_the_best_parameters_and_raises():
    model = LinearRegression(0.25)
    calls = []

    def loss(xb, yb):                   # the true loss, except NaN at the third call
        calls.append(1)
        value = model.mse_and_grad(xb, yb)
        return np.nan if len(calls) == 3 else value

    with pytest.raises(TrainingDivergedError, match="minibatch loss nan") as err:
        fit_loop(model, loss, _line(1.0, n=4), rng=0, epochs=5, batch_size=None, lr=0.1)
    _check_diverged(err, 0.1)
    assert err.value.epoch == 2 and err.value.history["best_epoch"] == 1
    assert isinstance(err.value, RuntimeError)
    assert np.isfinite(model.w) and model.w != 0.25          # epoch 1's parameters, not initial


def test_non_finite_gradients_never_reach_the_parameters():
    model = LinearRegression(0.25)

    calls = []

    def loss(xb, yb):                # finite at step 0, an infinite gradient from step 1 on
        calls.append(1)
        if len(calls) > 1:
            model.net.grads["weight"][...] = np.inf
        return 1.0

    with pytest.raises(TrainingDivergedError, match="gradient norm inf") as err:
        fit_loop(model, loss, _line(1.0), rng=0, epochs=2, lr=0.1, batch_size=None, clip=1.0)
    _check_diverged(err, 0.1)
    w_after_one_step = model.w
    assert np.isfinite(w_after_one_step)


def test_non_finite_at_the_first_step_blames_the_data_not_the_learning_rate():
    """Before any update the learning rate cannot be the cause: a ValueError about the data's
    scale, and the parameters are untouched."""
    model = LinearRegression(0.25)

    def loss(xb, yb):
        model.net.grads["weight"][...] = np.inf
        return 1.0

    with pytest.raises(ValueError, match="^train_data: .*before any update.*not the learning rate"):
        fit_loop(model, loss, _line(1.0), rng=0, epochs=2, lr=0.1, clip=1.0)
    assert model.w == 0.25


def test_an_exploding_loss_is_divergence_and_warn_returns():
    """Rule 2: an epoch loss above best + tol (1 + |best|) diverges; with on_divergence='warn'
    the best parameters are restored and the history returned."""
    def scripted(model, values):
        calls = []

        def loss(xb, yb):            # one batch per epoch: the scripted values, then the truth
            calls.append(1)
            true = model.mse_and_grad(xb, yb)
            return values[len(calls) - 1] if len(calls) <= len(values) else true
        return loss

    model = LinearRegression(0.0)
    with pytest.warns(RuntimeWarning, match="diverged in epoch 2"):
        hist = fit_loop(model, scripted(model, [2.0, 1.0, 1.0 + 3.0 * 2.0 + 1e-9]), _line(1.0, n=4),
                        rng=0, epochs=5, batch_size=None, lr=0.1, on_divergence="warn",
                        divergence_epochs=1)
    assert hist["stopped"] == "diverged" and hist["train_loss"] == [2.0, 1.0, 7.000000001]
    assert hist["best_epoch"] == 1
    model = LinearRegression(0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                            # 7.0 is on the margin
        hist = fit_loop(model, scripted(model, [2.0, 1.0, 7.0, 0.9]), _line(1.0, n=4), rng=0,
                        epochs=4, batch_size=None, lr=0.1)
    assert hist["stopped"] == "max_epochs"


def test_a_spike_that_recovers_is_not_divergence_but_a_persistent_one_is():
    """Rule 2 needs ``divergence_epochs`` consecutive exploded epochs (default 3), or an explosion
    in the last epoch: a one-epoch spike that training recovers from is recorded, not raised."""
    def scripted(model, values):
        calls = []

        def loss(xb, yb):
            calls.append(1)
            true = model.mse_and_grad(xb, yb)
            return values[len(calls) - 1] if len(calls) <= len(values) else true
        return loss

    spike = 1.0 + 3.0 * 2.0 + 1.0                              # above best + 3 (1 + |best|)
    model = LinearRegression(0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hist = fit_loop(model, scripted(model, [2.0, 1.0, spike, spike, 0.9, 0.8]),
                        _line(1.0, n=4), rng=0, epochs=6, batch_size=None, lr=0.1)
    assert hist["stopped"] == "max_epochs" and hist["spikes"] == [2, 3]
    model = LinearRegression(0.0)
    with pytest.raises(TrainingDivergedError, match="3 consecutive epoch"):
        fit_loop(model, scripted(model, [2.0, 1.0, spike, spike, spike, 0.5]), _line(1.0, n=4),
                 rng=0, epochs=6, batch_size=None, lr=0.1)
    model = LinearRegression(0.0)
    with pytest.raises(TrainingDivergedError, match="1 consecutive epoch"):
        fit_loop(model, scripted(model, [2.0, 1.0, 0.9, spike]), _line(1.0, n=4), rng=0,
                 epochs=4, batch_size=None, lr=0.1)                   # exploded at the end


def test_a_bad_best_state_is_not_restored():
    """An epoch can end on a bad step whose loss shows only in the next epoch: with one batch
    per epoch the loss of epoch 0 is measured *before* its step. If the best state gives an
    exploded loss when checked at divergence, the initial parameters are restored instead."""
    model = LinearRegression(0.0)
    x, y = _line(1.0, n=4)
    with pytest.raises(TrainingDivergedError, match="initial parameters") as err:
        fit_loop(model, model.mse_and_grad, (x, 1e3 * y), rng=0, epochs=3, batch_size=None,
                 lr=50.0, optimizer="sgd", divergence_epochs=1)
    assert model.w == 0.0 and err.value.history["best_epoch"] == -1
    assert len(err.value.history["train_loss"]) == 2       # epoch 0 looked fine, epoch 1 did not


def test_value_error_before_the_first_update_is_the_callers_error():
    model = LinearRegression(0.0)
    calls = []

    def loss(xb, yb):
        calls.append(1)
        if len(calls) >= 2:
            raise ValueError("x: expected finite values, got 3 NaN/inf entries")
        return model.mse_and_grad(xb, yb)

    with pytest.raises(TrainingDivergedError) as err:          # after an update: divergence
        fit_loop(model, loss, _line(1.0, n=4), rng=0, epochs=2, batch_size=2, lr=0.1)
    _check_diverged(err, 0.1)
    assert isinstance(err.value.__cause__, ValueError)
    calls[:] = [1]
    with pytest.raises(ValueError, match="expected finite"):  # at step 0: the caller's error
        fit_loop(LinearRegression(0.0), loss, _line(1.0, n=4), rng=0, epochs=2, lr=0.1)


def test_bad_loop_arguments():
    model = LinearRegression(0.0)
    data = _line(1.0)
    for kwargs, name in (({"epochs": 0}, "epochs"), ({"lr": 0.0}, "lr"),
                         ({"on_divergence": "ignore"}, "on_divergence"),
                         ({"optimizer": "adagrad"}, "optimizer"), ({"clip": -1.0}, "clip"),
                         ({"val_data": data}, "evaluate"), ({"hook": 3}, "hook"),
                         ({"rng": "0"}, "rng")):
        with pytest.raises(ValueError, match=name):
            fit_loop(model, model.mse_and_grad, data, **({"rng": 0} | kwargs))
    with pytest.raises(ValueError, match="same number of rows"):
        fit_loop(model, model.mse_and_grad, (data[0], data[1][:3]), rng=0)
    assert grad_norm([(np.zeros(2), np.array([3.0, 4.0]))]) == 5.0
