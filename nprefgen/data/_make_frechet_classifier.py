"""Train the digits classifier whose features the Frechet distance uses and save its weights to
``nprefgen/data/frechet_digits_mlp.npz`` (run once, by hand; nprefgen.metrics.frechet loads the
result, and a test re-runs :func:`train_weights` and compares every array bit for bit)::

    python -m nprefgen.data._make_frechet_classifier

The network is an nprefgen MLP 64 -> 128 -> 64 -> 10 with tanh hidden units (``ARCH`` in
nprefgen/metrics/frechet.py), trained
on the digits' train split (scale "unit", pixels in [0, 1]) with softmax cross-entropy (NN.14)
and Adam (NN.16), lr 1e-3, minibatches of 64, ``EPOCHS`` epochs, everything seeded by ``SEED``
(initial weights and minibatch order): no other randomness, so the same NumPy, numba and BLAS
give the same weights. Its 64 tanh features of the second hidden layer are the feature space of
:func:`nprefgen.metrics.frechet.frechet_distance`. The budget was fixed before training, not
tuned; the validation and test accuracies (0.964, 0.961) are written into the file's metadata.
"""
from __future__ import annotations


import numpy as np

from nprefgen.metrics.frechet import ARCH, WEIGHTS_PATH as OUT, build_classifier  # noqa: F401

SEED = 20_260_930
EPOCHS = 60
BATCH = 64
LR = 1e-3


def train_weights():
    """Train from scratch, deterministically. Returns (net, {"floor", "val_accuracy",
    "test_accuracy"}), the floor being the Frechet distance (GAN.13) of the test split to the
    train split in the new network's features."""
    from nprefgen.data.digits import load_digits
    from nprefgen.nn import Adam
    from nprefgen.nn.losses import softmax_cross_entropy_loss

    rng = np.random.default_rng(SEED)
    net = build_classifier(rng=rng)
    x, y = load_digits("train")
    opt = Adam(net.parameters(), lr=LR)
    for _ in range(EPOCHS):
        order = rng.permutation(x.shape[0])
        for start in range(0, x.shape[0], BATCH):
            idx = order[start:start + BATCH]
            logits, cache = net.forward(x[idx])
            _, d_logits = softmax_cross_entropy_loss(logits, y[idx])      # (NN.14)
            net.zero_grad()
            net.backward(cache, d_logits)
            opt.step()
    net.zero_grad()
    from nprefgen.metrics.frechet import feature_moments, frechet_from_moments

    acc = {"floor": frechet_from_moments(*feature_moments(load_digits("test")[0], classifier=net),
                                         *feature_moments(x, classifier=net))}
    for split in ("val", "test"):
        xs, ys = load_digits(split)
        acc[f"{split}_accuracy"] = float(np.mean(np.argmax(net.forward(xs)[0], axis=1) == ys))
    return net, acc


def main() -> None:
    from nprefgen.nn import save_npz

    net, acc = train_weights()
    save_npz(OUT, net, meta={"seed": np.array(SEED), "epochs": np.array(EPOCHS),
                             **{k: np.array(v) for k, v in acc.items()}})
    print(f"wrote {OUT}: val accuracy {acc['val_accuracy']:.4f}, "
          f"test accuracy {acc['test_accuracy']:.4f}, floor {acc['floor']:.6f}")


if __name__ == "__main__":
    main()
