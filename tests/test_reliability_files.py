"""Checkpoints that survive failure (issue 13, classes 1-3).

1. A save that fails midway (an entry that raises while written; a file-size limit hit in a
   subprocess) leaves the previous file byte-identical and no temporary file behind, for every
   writer: save_npz, Flow.save, DirectPosterior.save.
2. A load that fails (a bad buffer, a bad parameter late in the file, a foreign configuration)
   leaves every parameter and buffer of the object byte-identical; an invalid flow cannot be saved.
3. Corrupt, tampered or mislabelled files give a ValueError naming ``path`` (and the member or
   field), never TypeError / MemoryError / NotImplementedError / JSONDecodeError, and headers are
   checked before anything is allocated.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile

import numpy as np
import pytest

from nprefgen.flows import Flow, load_flow, maf, realnvp
from nprefgen.flows.elementwise import Standardize
from nprefgen.flows.permutation import Permutation
from nprefgen.nn import MLP, load_npz, read_npz, save_npz
from nprefgen.sbi.posterior import DirectPosterior
from nprefgen.sbi.priors import BoxUniform


def _randomize(module, rng, scale=0.3):
    for _, p, _ in module.named_parameters():
        p[...] = scale * rng.standard_normal(p.shape)


def _snapshot(flow):
    """Bytes of every parameter and buffer (byte-identical means unchanged)."""
    out = {("p", k): v.tobytes() for k, v in flow.state_dict().items()}
    if hasattr(flow, "buffer_dict"):
        out.update({("b", k): v.tobytes() for k, v in flow.buffer_dict().items()})
    return out


def _leftovers(folder, keep):
    return sorted(set(os.listdir(folder)) - set(keep))


def _flow(rng, seed=0):
    data = rng.standard_normal((30, 3)) * 2 + 1
    flow = maf(3, 3, [6], rng=np.random.default_rng(seed), permutation="random", actnorm=True,
               standardize=data)
    flow.initialize(data)
    _randomize(flow, np.random.default_rng(seed + 1))
    return flow


# -- 1. atomic saves ----------------------------------------------------------------------------
def _writers(rng):
    """(name, make_target, save) for every writer: save(target, path) writes a *new* file."""
    prior = BoxUniform(-np.ones(2), np.ones(2))

    def cond_flow(seed):
        f = realnvp(2, 2, [4], rng=np.random.default_rng(seed), context_dim=2)
        _randomize(f, np.random.default_rng(seed + 7))
        return f

    return [
        ("save_npz", lambda s: MLP(2, [5], 1, rng=np.random.default_rng(s)),
         lambda m, p: save_npz(p, m, meta={"hidden": [5]})),
        ("Flow.save", lambda s: _flow(rng, s), lambda f, p: f.save(p)),
        ("DirectPosterior.save", lambda s: DirectPosterior(cond_flow(s), prior),
         lambda post, p: post.save(p)),
    ]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_save_that_raises_midway_leaves_the_old_file(tmp_path, rng, monkeypatch, error):
    """The second array written raises (an error, or Ctrl-C): the target keeps its old bytes, no
    temporary remains."""
    import numpy.lib.format as fmt

    for name, make, save in _writers(rng):
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        path = folder / "model.npz"
        save(make(1), path)
        old = path.read_bytes()
        real = fmt.write_array
        calls = []

        def failing(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                raise error("disk went away")
            return real(*args, **kwargs)

        monkeypatch.setattr(fmt, "write_array", failing)
        with pytest.raises(error, match="disk went away"):
            save(make(2), path)
        monkeypatch.setattr(fmt, "write_array", real)
        assert len(calls) == 2, name
        assert path.read_bytes() == old, f"{name}: a failed save changed the old file"
        assert _leftovers(folder, ["model.npz"]) == [], f"{name}: a temporary file remains"
        save(make(3), path)                          # and a later save still works
        assert path.read_bytes() != old


def test_a_save_killed_by_the_file_size_limit_leaves_the_old_file(tmp_path):
    """RLIMIT_FSIZE in a subprocess (as a full disk): the write fails with EFBIG, the old file is
    byte-identical and the folder holds nothing else."""
    resource = pytest.importorskip("resource")
    path = tmp_path / "model.npz"
    save_npz(path, MLP(2, [3], 1, rng=np.random.default_rng(0)))
    old = path.read_bytes()
    script = textwrap.dedent(f"""
        import resource, signal, sys
        import numpy as np
        from nprefgen.nn import MLP, save_npz
        big = MLP(200, [200, 200], 1, rng=np.random.default_rng(1))    # ~1 MB of random weights
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)                  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        try:
            save_npz({str(path)!r}, big)
        except OSError as exc:
            print("failed:", type(exc).__name__)
            sys.exit(0)
        print("saved")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=os.getcwd(), timeout=120)
    assert out.returncode == 0, out.stderr
    assert "failed" in out.stdout, out.stdout
    assert path.read_bytes() == old
    assert _leftovers(tmp_path, ["model.npz"]) == []
    assert resource is not None


def test_a_new_file_gets_normal_permissions(tmp_path):
    """The temporary file's private 0600 mode does not leak into the saved file."""
    path = tmp_path / "m.npz"
    save_npz(path, MLP(2, [3], 1, rng=np.random.default_rng(0)))
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


# -- 2. all-or-nothing loads --------------------------------------------------------------------
def _tampered(src: dict, path, **changes):
    arrays = dict(src)
    arrays.update(changes)
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("buffer, bad", [
    ("__meta__.buffer.0.std", lambda v: np.where(np.arange(v.size) == 1, -1.0, v)),   # std <= 0
    ("__meta__.buffer.0.mean", lambda v: np.full_like(v, np.nan)),
    ("__meta__.buffer.3.perm", lambda v: np.zeros_like(v)),                             # not a permutation
    ("__meta__.buffer.1.initialized", lambda v: v + 0.5),                               # ActNorm flag
    ("__meta__.buffer.2.order", lambda v: v[::-1] * 0 + 1),                             # MADE order
])
def test_a_load_with_a_bad_buffer_changes_nothing(tmp_path, rng, buffer, bad):
    """Parameters come first in the file and buffers last: a bad buffer must still leave every
    parameter and buffer of the target flow byte-identical."""
    src = _flow(rng, 0)
    src.save(tmp_path / "good.npz")
    arrays = read_npz(tmp_path / "good.npz")
    assert buffer in arrays, sorted(arrays)
    path = _tampered(arrays, tmp_path / "bad.npz", **{buffer: bad(arrays[buffer])})
    target = _flow(rng, 5)
    before = _snapshot(target)
    with pytest.raises(ValueError, match="path"):
        target.load(path)
    assert _snapshot(target) == before
    with pytest.raises(ValueError, match="path"):
        load_flow(path)


def test_a_load_with_a_foreign_config_or_late_bad_parameter_changes_nothing(tmp_path, rng):
    src = _flow(rng, 0)
    src.save(tmp_path / "good.npz")
    arrays = read_npz(tmp_path / "good.npz")
    config = json.loads(str(arrays["__meta__.flow_config"]))
    config["activation"] = "tanh"                    # same shapes, another function
    target = _flow(rng, 5)
    before = _snapshot(target)
    for changes in ({"__meta__.flow_config": np.array(json.dumps(config))},
                    {sorted(k for k in arrays if not k.startswith("__"))[-1]:
                     np.full_like(arrays[sorted(k for k in arrays if not k.startswith("__"))[-1]],
                                  np.inf)},
                    {"0.log_scale": np.zeros(3, dtype=np.int64)} if "0.log_scale" in arrays
                    else {"1.log_scale": np.zeros(3, dtype=np.int64)}):
        with pytest.raises(ValueError, match="path"):
            target.load(_tampered(arrays, tmp_path / "bad.npz", **changes))
        assert _snapshot(target) == before


def test_an_invalid_flow_cannot_be_saved(tmp_path, rng):
    """A flow whose buffers break their invariants is refused before anything is written."""
    flow = Flow([Standardize(np.zeros(2), np.ones(2)), Permutation.reverse(2)])
    path = tmp_path / "flow.npz"
    flow.save(path)
    old = path.read_bytes()
    flow.bijectors[0].std[0] = 0.0
    with pytest.raises(ValueError, match="std"):
        flow.save(path)
    assert path.read_bytes() == old
    flow.bijectors[0].std[0] = 1.0
    flow.bijectors[1].perm[:] = 0
    with pytest.raises(ValueError, match="perm"):
        flow.save(tmp_path / "other.npz")
    assert not (tmp_path / "other.npz").exists()


def test_load_npz_with_a_bad_late_entry_changes_nothing(tmp_path, rng):
    net = MLP(2, [3], 1, rng=np.random.default_rng(0))
    state = {k: v + 1 for k, v in net.state_dict().items()}
    state["2.bias"] = np.array([3], dtype=np.int64)          # integer weights: refused
    np.savez(tmp_path / "int.npz", **state)
    before = _snapshot(net)
    with pytest.raises(ValueError, match=r"path.*2\.bias.*floating"):
        load_npz(tmp_path / "int.npz", net)
    assert _snapshot(net) == before


# -- 3. corrupt files: ValueError naming path and the member ------------------------------------
def _zip(members: dict, compression=zipfile.ZIP_DEFLATED, **info_attrs) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zi = zipfile.ZipInfo(name)
            zi.compress_type = compression
            for k, v in info_attrs.items():
                setattr(zi, k, v)
            zf.writestr(zi, data)
    return buf.getvalue()


def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _npy_header_only(shape, dtype="<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def test_mislabelled_and_tampered_files_give_a_value_error(tmp_path, rng):
    net = MLP(2, [3], 1, rng=np.random.default_rng(0))
    cases = {
        "plain.npy": _npy(np.zeros(3)),                                  # not an archive
        "terabytes.npz": _zip({"0.weight.npy": _npy_header_only((10 ** 12,)) + b"\0" * 64}),
        "negative.npz": _zip({"0.weight.npy": _npy_header_only((-5,)) + b"\0" * 64}),
        "badescr.npz": _zip({"0.weight.npy": _npy_header_only((3,), "<f999999999999")}),
        "version.npz": _zip({"0.weight.npy": _npy(np.zeros(3))}, extract_version=99),
        "lzma.npz": _zip({"0.weight.npy": _npy(np.zeros(3))}, zipfile.ZIP_LZMA),
        "notnpy.npz": _zip({"readme.txt": b"hello"}),
        "object.npz": _zip({"x.npy": _npy(np.array([1, {"a": 1}], dtype=object))}),
    }
    for name, blob in cases.items():
        path = tmp_path / name
        path.write_bytes(blob)
        for call in (lambda: read_npz(path), lambda: load_npz(path, net), lambda: load_flow(path)):
            with pytest.raises(ValueError, match="path") as info:
                call()
            assert type(info.value) is ValueError, (name, type(info.value))
    for name in ("terabytes.npz", "lzma.npz", "notnpy.npz"):
        with pytest.raises(ValueError, match="member"):
            read_npz(tmp_path / name)


def test_a_tampered_flow_config_gives_a_value_error(tmp_path, rng):
    src = _flow(rng, 0)
    src.save(tmp_path / "good.npz")
    arrays = read_npz(tmp_path / "good.npz")
    config = json.loads(str(arrays["__meta__.flow_config"]))
    for bad in ("{not json", "[1, 2]", json.dumps({**config, "n_layerz": 3}),
                json.dumps({**config, "hidden": "many"}), json.dumps({**config, "dim": None}),
                "[" * 100_000):
        path = _tampered(arrays, tmp_path / "bad.npz", **{"__meta__.flow_config": np.array(bad)})
        with pytest.raises(ValueError, match="path.*flow_config") as info:
            load_flow(path)
        assert type(info.value) is ValueError, (bad[:30], type(info.value))


def test_headers_are_checked_before_allocating(tmp_path):
    """A 200 MB array of zeros deflates to ~200 KB: loading it into a small module is refused
    from its header, and read_npz refuses it beyond max_bytes, both without allocating it."""
    n = 25_000_000
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("0.weight.npy", "w", force_zip64=True) as f:
            f.write(_npy_header_only((n,)))
            chunk = bytes(1 << 20)
            for _ in range(8 * n // len(chunk)):
                f.write(chunk)
            f.write(bytes(8 * n % len(chunk)))
    assert path.stat().st_size < 1_000_000
    net = MLP(2, [3], 1, rng=np.random.default_rng(0))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="path"):
            load_npz(path, net)
        with pytest.raises(ValueError, match="max_bytes"):
            read_npz(path, max_bytes=10 ** 7)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000, f"peak {peak / 1e6:.0f} MB allocated for a refused file"


def test_truncated_and_bit_flipped_files_give_a_value_error(tmp_path, rng):
    """Every truncation point and a sweep of bit flips of a valid flow file: ValueError or a
    successful load, nothing else."""
    src = _flow(rng, 0)
    src.save(tmp_path / "good.npz")
    blob = (tmp_path / "good.npz").read_bytes()
    path = tmp_path / "cut.npz"
    for cut in range(0, len(blob), max(1, len(blob) // 97)):
        path.write_bytes(blob[:cut])
        with pytest.raises(ValueError, match="path"):
            load_flow(path)
    for i in range(0, len(blob), max(1, len(blob) // 151)):
        flipped = bytearray(blob)
        flipped[i] ^= 0x5A
        path.write_bytes(bytes(flipped))
        target = _flow(rng, 5)
        before = _snapshot(target)
        try:
            target.load(path)
        except ValueError as exc:
            assert "path" in str(exc)
            assert _snapshot(target) == before


def test_direct_posterior_load_refuses_a_flow_that_does_not_fit_the_prior(tmp_path, rng):
    path = tmp_path / "post.npz"
    _flow(rng, 0).save(path)                         # unconditional, 3 parameters
    with pytest.raises(ValueError, match="path.*conditional flow over 2"):
        DirectPosterior.load(path, BoxUniform(-np.ones(2), np.ones(2)))


def test_a_save_through_a_symlink_replaces_the_file_it_points_to(tmp_path):
    real = tmp_path / "real.npz"
    save_npz(real, MLP(2, [3], 1, rng=np.random.default_rng(0)))
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    net = MLP(2, [3], 1, rng=np.random.default_rng(1))
    save_npz(link, net)
    assert link.is_symlink()
    np.testing.assert_array_equal(read_npz(real)["0.weight"], net.state_dict()["0.weight"])
