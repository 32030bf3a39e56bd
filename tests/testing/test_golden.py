"""Golden files (nprefgen.testing.golden, golden_reader, `nprefgen oracle`): every case exports and
reloads bit for bit, the comparison catches planted errors, and corrupt or mismatched files give a
ValueError naming the field, never unpickling anything."""
from __future__ import annotations

import ast
import json
import pathlib
import re
import zipfile

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from nprefgen.cli import main
from nprefgen.testing.golden import (
    build_case, build_record, export_case, get_case, gradient_errors, iter_cases,
)
from nprefgen.testing.golden_reader import (
    DEFAULT_RTOL, check_golden, compare_golden, format_comparison, load_golden,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
CASES = [(c.name, dt) for c in iter_cases() for dt in c.dtypes]


def _outputs(arrays) -> dict:
    return {k: v for k, v in arrays.items() if k.startswith(("output.", "grad."))}


def _npz(path, arrays):
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="module")
def case_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("golden") / "coupling.npz"
    return path, export_case("flows.AffineCoupling", path, seed=3)


# -- the registry covers every exported name ----------------------------------------------------------
def test_registry_covers_every_exported_layer_loss_bijector_builder_and_model():
    from nprefgen import flows, nn
    names = {c.name for c in iter_cases()}
    layers = [n for n in nn.__all__ if isinstance(getattr(nn, n), type)
              and issubclass(getattr(nn, n), nn.Module) and n != "Module"]
    losses = [n for n in nn.__all__ if n.endswith("_loss")]
    bijectors = [n for n in flows.__all__ if isinstance(getattr(flows, n), type)
                 and issubclass(getattr(flows, n), flows.Bijector)
                 and n not in ("Bijector", "Flow")]
    expected = {f"nn.{n}" for n in layers + losses} | {f"flows.{n}" for n in bijectors} \
        | {f"flows.{b.__name__}" for b in flows.BUILDERS.values()} | {"flows.MADE"} \
        | {"models.dense_autoencoder", "models.SimCLR", "models.ntxent_loss",
           "models.GaussianMixture", "models.VAE", "models.NCSN"}
    assert expected - names == set()
    assert {c.kind for c in iter_cases()} == {"layer", "loss", "bijector", "flow", "model"}


def test_every_label_is_defined_in_the_derivations():
    defined = set()
    for md in (ROOT / "derivations").glob("*.md"):
        defined |= set(re.findall(r"\\tag\{([A-Z]+\.\d+[a-z]?)\}", md.read_text(encoding="utf-8")))
    for case in iter_cases():
        assert case.labels and set(case.labels) <= defined, (case.name, set(case.labels) - defined)


# -- export, reload, round trip ------------------------------------------------------------------------
@pytest.mark.parametrize("name,dtype", CASES)
def test_every_case_exports_and_reloads(name, dtype, tmp_path):
    path = tmp_path / "case.npz"
    arrays = export_case(name, path, seed=1, dtype=dtype)
    g = load_golden(path)
    assert set(g["arrays"]) | {"meta"} == set(arrays)
    for key, value in g["arrays"].items():                  # bit for bit, dtype kept
        assert value.dtype == arrays[key].dtype and np.array_equal(value, arrays[key]), key
    meta = g["meta"]
    assert (meta["name"], meta["dtype"], meta["seed"], meta["kind"]) == \
        (name, dtype, 1, get_case(name).kind)
    assert meta["batch"] == get_case(name).batch and meta["objective"] and meta["constructor"]
    assert g["outputs"] and g["grads"]["inputs"], "every case has outputs and input gradients"
    for pname, p in g["params"].items():                     # every parameter has its gradient
        assert p.dtype == np.dtype(dtype) and g["grads"]["params"][pname].shape == p.shape
    assert compare_golden(g, _outputs(arrays))["ok"]          # identical values: all errors 0
    assert json.loads(str(arrays["meta"]))["shapes"] == {k: list(v.shape) for k, v in g["arrays"].items()}


# (NN.19) a correct gradient gives errors of about 1e-10 here (round-off 1.5 eps |f| / h with
# h = 1e-4, relative to max(|fd|, |<g, u>|, 1e-3 |f|)); a wrong one gives errors of order 1.
FD_RTOL = 1e-7


@pytest.mark.parametrize("name", [c.name for c in iter_cases()])
def test_every_recorded_gradient_matches_central_differences(name):
    """Every grad.* of every case, float64, against a fourth-order central difference of the
    objective recomputed by nprefgen along a random direction (NN.18, NN.19)."""
    rec, _ = build_record(name, seed=7)
    errors = gradient_errors(rec, rng=0)
    assert set(errors) == {f"grad.input.{k}" for k in rec.grad_inputs} | \
        {f"grad.param.{k}" for k in rec.grad_params}
    assert max(errors.values()) <= FD_RTOL, {k: v for k, v in errors.items() if v > FD_RTOL}


def test_a_planted_wrong_gradient_is_caught_by_the_central_differences():
    rec, _ = build_record("flows.SplineCoupling", seed=7)
    rec.grad_params["net.0.weight"] = rec.grad_params["net.0.weight"] * (1 + 1e-4)
    rec.grad_inputs["x"] = rec.grad_inputs["x"].copy()
    rec.grad_inputs["x"][0, 1] *= -1.0
    errors = gradient_errors(rec, rng=0)
    assert errors["grad.param.net.0.weight"] > 1e-5 and errors["grad.input.x"] > 1e-3
    assert errors["grad.input.context"] <= FD_RTOL


def test_same_seed_same_bits_other_seed_other_values():
    a, b = build_case("flows.MAF", seed=5), build_case("flows.MAF", seed=5)
    c = build_case("flows.MAF", seed=6, batch=3)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.allclose(a["param.made.net.0.weight"], c["param.made.net.0.weight"])
    assert c["input.x"].shape == (3, 3) and json.loads(str(c["meta"]))["batch"] == 3


def test_float32_files_share_the_float64_inputs_up_to_rounding():
    a64, a32 = build_case("nn.MLP", seed=2), build_case("nn.MLP", seed=2, dtype="float32")
    assert a32["input.x"].dtype == np.float32
    np.testing.assert_array_equal(a32["input.x"], a64["input.x"].astype(np.float32))
    np.testing.assert_allclose(a32["output.y"], a64["output.y"], rtol=1e-5, atol=1e-6)


def test_bad_arguments_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match="name: expected a golden case name"):
        build_case("nn.Nope")
    with pytest.raises(ValueError, match="dtype: case 'models.VAE' supports"):
        build_case("models.VAE", dtype="float32")
    with pytest.raises(ValueError, match="dtype"):
        build_case("nn.Linear", dtype="float16")
    with pytest.raises(ValueError, match="seed"):
        build_case("nn.Linear", seed=-1)
    with pytest.raises(ValueError, match="batch"):
        build_case("models.SimCLR", batch=1)                  # NT-Xent needs two pairs
    target = tmp_path / "keep.npz"
    target.write_bytes(b"previous")
    with pytest.raises(ValueError):
        export_case("models.VAE", target, dtype="float32")
    assert target.read_bytes() == b"previous"                # nothing written on failure


# -- compare: the same function the CLI and the cross-checks use ---------------------------------------
def test_compare_catches_a_planted_error_and_the_cli_exits_nonzero(case_file, tmp_path, capsys):
    path, arrays = case_file
    theirs = _outputs(arrays)
    assert main(["oracle", "compare", str(path), str(_npz(tmp_path / "same.npz", theirs))]) == 0
    capsys.readouterr()
    key = "grad.param.net.0.weight"
    planted = dict(theirs, **{key: theirs[key] * (1 + 1e-8)})     # one entry-wide 1e-8 error
    result = compare_golden(path, planted)
    assert not result["ok"] and [r["quantity"] for r in result["rows"] if not r["ok"]] == [key]
    assert result["rtol"] == DEFAULT_RTOL["float64"]
    assert main(["oracle", "compare", str(path), str(_npz(tmp_path / "bad.npz", planted))]) == 1
    out = capsys.readouterr().out
    assert re.search(rf"^{re.escape(key)}\s.*1\.00e-08\s+FAIL$", out, re.M), out
    assert "1 above" in out
    # a looser tolerance accepts it; a NaN is never accepted
    assert main(["oracle", "compare", str(path), str(tmp_path / "bad.npz"), "--rtol", "1e-6"]) == 0
    nan = dict(theirs, **{"output.log_det": np.full_like(theirs["output.log_det"], np.nan)})
    assert not compare_golden(path, nan)["ok"]


def test_compare_reports_missing_quantities_and_refuses_unknown_ones(case_file):
    path, arrays = case_file
    result = compare_golden(path, {"output.z": arrays["output.z"]})
    assert result["ok"] and "grad.input.x" in result["missing"]
    assert "not given" in format_comparison(result)
    with pytest.raises(ValueError, match=r"theirs\['output.y'\]: expected a key of the golden"):
        compare_golden(path, {"output.y": arrays["output.z"]})
    with pytest.raises(ValueError, match=r"theirs\['output.z'\]: expected shape \(5, 4\)"):
        compare_golden(path, {"output.z": arrays["output.z"][:2]})
    with pytest.raises(ValueError, match="theirs: expected at least one"):
        compare_golden(path, {})
    with pytest.raises(ValueError, match="rtol"):
        compare_golden(path, {"output.z": arrays["output.z"]}, rtol=-1.0)


def test_relative_error_is_relative_to_the_largest_golden_entry(case_file):
    path, arrays = case_file
    z = arrays["output.z"]
    scale = np.max(np.abs(z))
    shifted = z.copy()
    shifted[0, 0] += 1e-6 * scale
    row = compare_golden(path, {"output.z": shifted}, rtol=1e-5)["rows"][0]
    assert row["rel_error"] == pytest.approx(1e-6, rel=1e-6) and row["ok"]


# -- corrupt or mismatched files ---------------------------------------------------------------------
def _rewrite(src, dst, change):
    """Copy the golden file's arrays, apply ``change(arrays)``, write to ``dst``."""
    with np.load(src, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    np.savez(dst, **arrays)
    return dst


def _set_meta(**fields):
    def change(arrays):
        meta = json.loads(str(arrays["meta"]))
        meta.update(fields)
        arrays["meta"] = np.array(json.dumps(meta))
    return change


@pytest.mark.parametrize("change,match", [
    (lambda a: a.pop("meta"), r"meta: expected a 'meta' entry"),
    (lambda a: a.__setitem__("meta", np.array("{not json")), r"meta: expected valid JSON"),
    (lambda a: a.__setitem__("meta", np.arange(3.0)), r"meta: expected one JSON string"),
    (_set_meta(format_version=2), r"meta\.format_version: expected 1"),
    (_set_meta(format="other"), r"meta\.format: expected 'nprefgen-golden'"),
    (_set_meta(dtype="float16"), r"meta\.dtype: expected one of"),
    (_set_meta(seed="0"), r"meta\.seed: expected a int"),
    (lambda a: _set_meta(labels=None)(a), r"meta\.labels: expected a list"),
    (lambda a: a.__setitem__("output.z", a["output.z"][:, :3]), r"output\.z: expected shape \(5, 4\)"),
    (lambda a: a.pop("param.net.0.weight"), r"param\.net\.0\.weight: listed in meta\.shapes but missing"),
    (lambda a: a.__setitem__("extra.q", np.zeros(2)), r"extra\.q: expected a key 'group\.name'"),
    (lambda a: a.__setitem__("param.net.0.bias", a["param.net.0.bias"].astype(np.float32)),
     r"param\.net\.0\.bias: expected dtype float64"),
    (lambda a: a.__setitem__("output.log_det", np.full(5, np.inf)), r"output\.log_det: expected finite"),
    (lambda a: a.__setitem__("output.z", np.array(["a"] * 20).reshape(5, 4)), r"output\.z: expected a numeric"),
])
def test_mismatched_files_name_the_field(case_file, tmp_path, change, match):
    path, _ = case_file
    with pytest.raises(ValueError, match=match):
        load_golden(_rewrite(path, tmp_path / "bad.npz", change))


def test_a_gradient_without_its_source_is_refused(case_file, tmp_path):
    path, _ = case_file

    def change(arrays):
        arrays.pop("input.context")
        meta = json.loads(str(arrays["meta"]))
        meta["shapes"].pop("input.context")
        arrays["meta"] = np.array(json.dumps(meta))
    with pytest.raises(ValueError, match=r"grad\.input\.context: expected a matching 'input\.context'"):
        load_golden(_rewrite(path, tmp_path / "bad.npz", change))


def test_corrupt_files_and_pickles_give_value_errors(case_file, tmp_path):
    path, _ = case_file
    data = path.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.npz").write_text("hello")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    for bad in ("trunc.npz", "text.npz", "plain.npy", "missing.npz"):
        with pytest.raises(ValueError, match="path: "):
            load_golden(tmp_path / bad)
    # an object array (a pickle) is refused, never loaded
    np.savez(tmp_path / "pickle.npz", meta=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"path: .*(pickle|Object arrays)"):
        load_golden(tmp_path / "pickle.npz")
    # a flipped byte inside a compressed member: the CRC check fails
    flipped = bytearray(data)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("output.z.npy")
    extra = int.from_bytes(data[info.header_offset + 28: info.header_offset + 30], "little")
    flipped[info.header_offset + 30 + len(info.filename) + extra + info.compress_size // 2] ^= 0xFF
    (tmp_path / "flip.npz").write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="path: "):
        load_golden(tmp_path / "flip.npz")
    with pytest.raises(ValueError, match="path: expected a file path"):
        load_golden(3)
    with pytest.raises(ValueError, match="meta"):
        check_golden({"output.z": np.zeros(2)})


def test_the_reader_needs_only_numpy_and_the_standard_library():
    src = (ROOT / "nprefgen" / "testing" / "golden_reader.py").read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"__future__", "json", "os", "zipfile", "numpy"}, imported


# -- the command line ----------------------------------------------------------------------------------
def test_cli_list_and_export(tmp_path, capsys):
    assert main(["oracle", "list"]) == 0
    out = capsys.readouterr().out
    assert all(c.name in out for c in iter_cases()) and "[float64 only]" in out
    path = tmp_path / "spline.npz"
    assert main(["oracle", "export", "flows.SplineCoupling", "--out", str(path), "--seed", "4",
                 "--dtype", "float32", "--batch", "3"]) == 0
    g = load_golden(path)
    assert (g["meta"]["seed"], g["meta"]["dtype"], g["meta"]["batch"]) == (4, "float32", 3)
    assert g["meta"]["variant"]["tail_bound"] == 2.5 and g["inputs"]["x"].shape == (3, 4)
    capsys.readouterr()
    assert main(["oracle", "export", "models.NCSN", "--out", str(path), "--dtype", "float32"]) == 2
    assert "dtype" in capsys.readouterr().err
    assert main(["oracle", "compare", str(path), str(tmp_path / "none.npz")]) == 2
    assert main(["oracle", "export", "nn.Linear", "--out", str(tmp_path / "no" / "dir.npz")]) == 2
    assert "nprefgen oracle export: error" in capsys.readouterr().err


# -- an independent check of the one hand-derived gradient that exists only here ----------------------
def test_gmm_gradients_match_finite_differences():
    """(GMM.18) against central differences of (GMM.1) evaluated independently by scipy (weights
    off the simplex too: the gradient treats them as free variables)."""
    g = check_golden(build_case("models.GaussianMixture", seed=0))
    p, x = g["params"], g["inputs"]["x"]

    def loss(w, m, c, xx):
        comp = [np.log(w[k]) + multivariate_normal(m[k], c[k]).logpdf(xx) for k in range(len(w))]
        return -np.mean(logsumexp(np.stack(comp, axis=1), axis=1))
    args = [p["weights"], p["means"], p["covariances"], x]
    grads = [g["grads"]["params"]["weights"], g["grads"]["params"]["means"],
             g["grads"]["params"]["covariances"], g["grads"]["inputs"]["x"]]
    assert loss(*args) == pytest.approx(float(g["outputs"]["loss"]), rel=1e-13)
    rng = np.random.default_rng(0)
    h = 1e-5
    for i, grad in enumerate(grads):
        u = rng.standard_normal(args[i].shape)
        if i == 2:
            u = u + np.swapaxes(u, 1, 2)                      # symmetric directions
        plus, minus = list(args), list(args)
        plus[i], minus[i] = args[i] + h * u, args[i] - h * u
        fd = (loss(*plus) - loss(*minus)) / (2 * h)
        assert np.sum(grad * u) == pytest.approx(fd, rel=1e-7, abs=1e-10), i
