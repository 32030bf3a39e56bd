"""Files of the fitted models (issue 8 "One API", issue 13 classes 1-3): GaussianMixture, PCA,
LinearProbe, KNNClassifier, GaussianDensity, Autoencoder and SimCLR.

- ``save(path)`` then ``Model(same arguments).load(path)`` returns that model, with bit-identical
  outputs and the same ``history_``;
- a truncated, tampered (invariant broken), mis-shaped, NaN, mistyped or foreign file raises
  ValueError naming ``path`` and the field, and leaves the model byte-identical;
- a save that fails midway leaves the old file byte-identical and no temporary; an invalid model
  is not written;
- ``history_`` follows the one convention (a dict whose ``train_loss`` is the loss minimised).
"""
from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from nprefgen.models import GaussianDensity, GaussianMixture
from nprefgen.models.autoencoder import dense_autoencoder
from nprefgen.models.contrastive import dense_simclr
from nprefgen.models.pca import PCA
from nprefgen.models.probe import KNNClassifier, LinearProbe

X = np.random.default_rng(0).standard_normal((30, 4)) * [1.0, 2.0, 0.5, 1.5] + [0.0, 1.0, -1.0, 2.0]
Y = np.arange(30) % 3


def _jitter(x, rng):
    return x + 0.1 * rng.standard_normal(x.shape)


# name -> (build, fit, output): build() gives a fresh identically constructed model
MODELS = {
    "gmm_full": (lambda: GaussianMixture(2), lambda m: m.fit(X, rng=0), lambda m: m.log_prob(X)),
    "gmm_diag": (lambda: GaussianMixture(3, covariance_type="diag"), lambda m: m.fit(X, rng=0),
                 lambda m: m.predict_proba(X)),
    "gmm_spherical": (lambda: GaussianMixture(2, covariance_type="spherical"),
                      lambda m: m.fit(X, rng=0), lambda m: m.log_prob(X)),
    "pca": (lambda: PCA(2), lambda m: m.fit(X), lambda m: m.transform(X)),
    "pca_whiten": (lambda: PCA(3, whiten=True), lambda m: m.fit(X), lambda m: m.transform(X)),
    "probe": (LinearProbe, lambda m: m.fit(X, Y, rng=0, epochs=20), lambda m: m.predict_proba(X)),
    "knn": (lambda: KNNClassifier(k=3, standardize=True), lambda m: m.fit(X, Y),
            lambda m: m.kneighbors(X)),
    "knn_cosine": (lambda: KNNClassifier(k=3, metric="cosine"), lambda m: m.fit(X, Y),
                   lambda m: m.kneighbors(X)),
    "gaussian": (GaussianDensity, lambda m: m.fit(X), lambda m: m.log_prob(X)),
    "gaussian_conditional": (GaussianDensity, lambda m: m.fit(X[:, :2], X[:, 2:]),
                             lambda m: m.log_prob(X[:, :2], X[:, 2:])),
    "autoencoder": (lambda: dense_autoencoder(4, 2, (6,), rng=0),
                    lambda m: m.fit(X, rng=0, epochs=2, progress=False), lambda m: m.reconstruct(X)),
    "simclr": (lambda: dense_simclr(4, 3, (6,), proj_dim=3, proj_hidden=4, rng=0),
               lambda m: m.fit(X, _jitter, rng=0, epochs=2, batch_size=8, progress=False),
               lambda m: m.project(X)),
}
NETWORKS = ("autoencoder", "simclr")


def _fitted(name):
    build, fit, _ = MODELS[name]
    return fit(build())


def _snapshot(model) -> dict:
    """The bytes of every array the model holds (networks: every parameter), and its other
    attributes: equal snapshots mean an unchanged model."""
    out = {}
    for key, value in sorted(vars(model).items()):
        if hasattr(value, "state_dict"):
            out.update({(key, k): v.tobytes() for k, v in value.state_dict().items()})
        elif isinstance(value, np.ndarray):
            out[key] = (value.dtype.str, value.shape, value.tobytes())
        elif key != "_opt":
            out[key] = json.dumps(value, sort_keys=True, default=repr)
    return out


def _arrays(path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _write(path, arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def _expect_bad(model, path, field):
    """load(path) raises ValueError starting with 'path' and naming ``field``; model unchanged."""
    before = _snapshot(model)
    with pytest.raises(ValueError) as info:
        model.load(path)
    msg = str(info.value)
    assert msg.startswith("path:") and os.fspath(path) in msg, msg
    assert field in msg, f"expected the field {field!r} in: {msg}"
    assert _snapshot(model) == before, "a failed load changed the model"


# -- round trips ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MODELS))
def test_round_trip_is_bit_identical(name, tmp_path):
    build, _, output = MODELS[name]
    model = _fitted(name)
    path = tmp_path / "model.npz"
    model.save(path)
    fresh = build()
    assert fresh.load(path) is fresh
    np.testing.assert_array_equal(output(fresh), output(model))
    assert fresh.history_ == model.history_
    if name.startswith("gmm"):
        for attr in ("precisions_cholesky_", "precisions_", "lower_bounds_"):
            np.testing.assert_array_equal(getattr(fresh, attr), getattr(model, attr))
        assert (fresh.n_iter_, fresh.converged_, fresh.lower_bound_) == \
            (model.n_iter_, model.converged_, model.lower_bound_)
        np.testing.assert_array_equal(fresh.sample(5, rng=1), model.sample(5, rng=1))
    loaded_into_fitted = _fitted(name).load(path)          # a fitted model is overwritten too
    np.testing.assert_array_equal(output(loaded_into_fitted), output(model))


def test_an_unfitted_network_round_trips_and_a_fit_after_load_works(tmp_path):
    """Networks save their weights before any fit (history_ None); after load a fit starts a fresh
    Adam (the optimizer state is not part of the file) and trains."""
    ae = dense_autoencoder(4, 2, (6,), rng=3)
    ae.save(tmp_path / "ae.npz")
    other = dense_autoencoder(4, 2, (6,), rng=4).fit(X, rng=0, epochs=1, progress=False)
    assert other.load(tmp_path / "ae.npz").history_ is None
    np.testing.assert_array_equal(other.encode(X), ae.encode(X))
    assert not hasattr(other, "_opt")
    other.fit(X, rng=0, epochs=2, progress=False)
    assert len(other.history_["train_loss"]) == 2


# -- bad files ------------------------------------------------------------------------------------
def _good(name, tmp_path):
    model = _fitted(name)
    path = tmp_path / "good.npz"
    model.save(path)
    return model, path


@pytest.mark.parametrize("name", list(MODELS))
def test_truncated_nan_and_misshapen_files_are_refused(name, tmp_path):
    model, path = _good(name, tmp_path)
    target = _fitted(name) if name not in NETWORKS else MODELS[name][0]()
    data = path.read_bytes()
    for cut in (0, 10, len(data) // 3, len(data) - 5):
        (tmp_path / "cut.npz").write_bytes(data[:cut])
        _expect_bad(target, tmp_path / "cut.npz", "path")
    arrays = _arrays(path)
    for key, value in arrays.items():
        if key.startswith("__meta__.") or value.dtype.kind != "f" or not value.size:
            continue
        bad = value.copy()
        bad.flat[-1] = np.nan
        _expect_bad(target, _write(tmp_path / "nan.npz", {**arrays, key: bad}), key)
        _expect_bad(target, _write(tmp_path / "shape.npz", {**arrays, key: value[..., None]}), key)
        _expect_bad(target, _write(tmp_path / "dtype.npz", {**arrays, key: value.astype(np.int64)}),
                    key)
    for key in [k for k in arrays if not k.startswith("__meta__.")][:2]:
        _expect_bad(target, _write(tmp_path / "missing.npz",
                                   {k: v for k, v in arrays.items() if k != key}), key)
    _expect_bad(target, _write(tmp_path / "extra.npz", {**arrays, "surprise": np.zeros(2)}),
                "surprise")


@pytest.mark.parametrize("name", list(MODELS))
def test_foreign_or_tampered_metadata_is_refused(name, tmp_path):
    model, path = _good(name, tmp_path)
    target = MODELS[name][0]()
    arrays = _arrays(path)
    cases = {
        "__meta__.class": [np.array("PCA" if not name.startswith("pca") else "KNNClassifier"), np.array([1.0]),
                           None],
        "__meta__.config": [np.array("{not json"), np.array("[1, 2]"), None],
        "__meta__.history": [np.array("{\"train_loss\": [1.0"), np.array("3")],
    }
    for key, values in cases.items():
        for value in values:
            tampered = {k: v for k, v in arrays.items() if k != key}
            if value is not None:
                tampered[key] = value
            _expect_bad(target, _write(tmp_path / "meta.npz", tampered), key)
    config = json.loads(str(arrays["__meta__.config"]))
    key = sorted(config)[0]
    config[key] = "something else"
    _expect_bad(target, _write(tmp_path / "config.npz",
                               {**arrays, "__meta__.config": np.array(json.dumps(config))}),
                f"config[{key!r}]")


def _tamper(arrays, key, fn):
    out = dict(arrays)
    out[key] = fn(arrays[key].copy())
    return out


def _set(index, value):
    def fn(a):
        a[index] = value
        return a
    return fn


# name -> [(field, change)] breaking an invariant that shapes and finiteness do not catch
INVARIANTS = {
    "gmm_full": [("weights_", lambda a: a * 1.01), ("weights_", lambda a: a[::-1] * [-1, 1]),
                 ("covariances_", _set((0, 0, 1), 5.0)),                     # asymmetric
                 ("covariances_", lambda a: a * [[[1.0]], [[-1.0]]]),        # negative definite
                 ("lower_bounds_", lambda a: a[:0]), ("converged_", lambda a: np.array(1.0))],
    "gmm_diag": [("covariances_", _set((0, 0), 0.0))],
    "gmm_spherical": [("covariances_", _set(0, -1.0))],
    "pca": [("components_", lambda a: a * 1.001), ("singular_values_", lambda a: a[::-1]),
            ("explained_variance_ratio_", _set(0, 1.5)), ("n_samples_", lambda a: np.array(1)),
            ("n_samples_", lambda a: np.array(30.0)), ("total_variance_", lambda a: -a)],
    "probe": [("scale_", _set(0, 0.0)), ("layer_.bias", lambda a: a[:-1])],
    "knn": [("y_", _set(0, -1)), ("y_", lambda a: a.astype(np.float64)), ("scale_", _set(1, -2.0)),
            ("F_", lambda a: a[:2])],
    "knn_cosine": [("F_", lambda a: a * 2.0)],
    "gaussian": [("cov_", _set((0, 1), 3.0)), ("cov_", lambda a: -a)],
    "gaussian_conditional": [("gain_", lambda a: a[:, :1])],
}


@pytest.mark.parametrize("name", list(INVARIANTS))
def test_a_broken_invariant_is_refused_naming_the_field(name, tmp_path):
    _, path = _good(name, tmp_path)
    target = _fitted(name)
    arrays = _arrays(path)
    for key, change in INVARIANTS[name]:
        _expect_bad(target, _write(tmp_path / "bad.npz", _tamper(arrays, key, change)), key)
    if name == "gaussian_conditional":             # half of a conditional model
        _expect_bad(target, _write(tmp_path / "half.npz",
                                   {k: v for k, v in arrays.items() if k != "mu_c_"}), "mu_c_")


def test_a_file_of_another_model_names_the_class(tmp_path):
    PCA(2).fit(X).save(tmp_path / "pca.npz")
    _expect_bad(GaussianMixture(2), tmp_path / "pca.npz", "__meta__.class")
    _expect_bad(dense_autoencoder(4, 2, (6,), rng=0), tmp_path / "pca.npz", "path")
    _expect_bad(GaussianMixture(3).fit(X, rng=0), tmp_path / "missing.npz", "path")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    _expect_bad(PCA(2), tmp_path / "plain.npy", "path")
    ae = _fitted("autoencoder")
    ae.save(tmp_path / "ae.npz")
    _expect_bad(dense_autoencoder(4, 2, (6,), rng=0, loss="bce"), tmp_path / "ae.npz",
                "config['loss']")
    _expect_bad(dense_autoencoder(4, 2, (5,), rng=0), tmp_path / "ae.npz", "encoder.0.weight")


# -- saves ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
@pytest.mark.parametrize("name", ["gmm_full", "pca", "probe", "knn", "gaussian", "autoencoder",
                                  "simclr"])
def test_a_save_that_fails_midway_leaves_the_old_file(name, error, tmp_path, monkeypatch):
    import numpy.lib.format as fmt

    path = tmp_path / "model.npz"
    PCA(1).fit(X).save(path)                           # an older, different checkpoint
    old = path.read_bytes()
    model = _fitted(name)
    real, calls = fmt.write_array, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise error("disk went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(fmt, "write_array", failing)
    with pytest.raises(error, match="disk went away"):
        model.save(path)
    monkeypatch.setattr(fmt, "write_array", real)
    assert len(calls) == 2
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["model.npz"]
    model.save(path)                                   # a later save still works
    assert path.read_bytes() != old


def test_an_invalid_or_unfitted_model_is_not_written(tmp_path):
    path = tmp_path / "model.npz"
    PCA(2).fit(X).save(path)
    old = path.read_bytes()
    gmm = _fitted("gmm_full")
    gmm.means_ = gmm.means_.copy()
    gmm.means_[0, 0] = np.nan
    pca = _fitted("pca")
    pca.components_ = pca.components_ * 2.0
    for model, match in ((gmm, "self: .*means_"), (pca, "self: .*components_"),
                         (GaussianMixture(2), "not fitted"), (PCA(2), "not fitted"),
                         (LinearProbe(), "not fitted"), (KNNClassifier(), "not fitted"),
                         (GaussianDensity(), "fit")):
        with pytest.raises(ValueError, match=match):
            model.save(path)
        assert path.read_bytes() == old
    with pytest.raises(ValueError, match="^path"):
        PCA(2).fit(X).save(42)
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]


# -- history_ ------------------------------------------------------------------------------------
def test_history_records_the_loss_each_model_minimised():
    """One convention: history_ is a dict whose train_loss lists the minimised loss per epoch or
    iteration (one entry for a closed-form fit, none where nothing is minimised)."""
    gmm = _fitted("gmm_full")
    assert gmm.history_ == {"train_loss": list(-gmm.lower_bounds_), "epochs": gmm.n_iter_,
                            "converged": gmm.converged_}
    assert np.all(np.diff(gmm.history_["train_loss"]) <= 1e-12)        # EM never increases NLL
    pca = _fitted("pca")
    residual = np.mean(np.sum((X - pca.reconstruct(X)) ** 2, axis=1))    # (REP.5) per row
    # the closed form subtracts two variance sums of size ~ total: rounding ~ d eps total
    tol = 64 * X.shape[1] * np.finfo(float).eps * pca.total_variance_
    assert abs(pca.history_["train_loss"][0] - residual) <= tol
    assert pca.history_["explained_variance_ratio"] == [pytest.approx(
        float(np.sum(pca.explained_variance_ratio_)), rel=1e-15)]
    probe = _fitted("probe")
    assert probe.history_["epochs"] == 20 and len(probe.history_["train_loss"]) == 20
    assert probe.history_["train_loss"][-1] < probe.history_["train_loss"][0]
    assert _fitted("knn").history_ == {"train_loss": [], "n_train": 30, "n_classes": 3}
    g = _fitted("gaussian")
    assert g.history_["train_loss"] == [pytest.approx(-g.log_prob(X).mean(), rel=1e-14)]
    for name in NETWORKS:
        assert len(_fitted(name).history_["train_loss"]) == 2


def test_error_messages_name_path_first():
    """The messages keep the project's form: the argument first (``path: '...'``)."""
    with pytest.raises(ValueError) as info:
        PCA(2).load("no/such/file.npz")
    assert re.match(r"path\b", str(info.value))


@pytest.mark.parametrize("name", list(MODELS))
def test_random_byte_damage_gives_value_errors_and_changes_nothing(name, tmp_path):
    """Bit flips and truncations of a valid file (40 seeded damages per model): a load succeeds
    or raises ValueError, and a failed load leaves the model byte-identical."""
    _, path = _good(name, tmp_path)
    data = path.read_bytes()
    target = _fitted(name)
    snap = _snapshot(target)
    rng = np.random.default_rng(11)
    failures = 0
    for _ in range(40):
        damaged = bytearray(data)
        for i in rng.integers(len(damaged), size=rng.integers(1, 4)):
            damaged[i] = rng.integers(256)
        if rng.random() < 0.3:
            damaged = damaged[:rng.integers(len(damaged))]
        (tmp_path / "damaged.npz").write_bytes(bytes(damaged))
        try:
            target.load(tmp_path / "damaged.npz")
        except ValueError:
            failures += 1
            assert _snapshot(target) == snap
        else:
            snap = _snapshot(target)
    assert failures > 0
