"""IDX reader and MNIST loader on small IDX files written here; offline download failures."""
from __future__ import annotations

import gzip
import hashlib
import struct
import time
import urllib.error

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nprefgen.data import mnist
from nprefgen.data.mnist import (
    MNIST_FILES, MNISTDownloadError, download_file, load_mnist, parse_idx, read_idx,
)

CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
         np.float64: 0x0E}


def idx_bytes(arr: np.ndarray) -> bytes:
    """An IDX file written independently of the reader: magic, big-endian dims, big-endian data."""
    code = CODES[arr.dtype.type]
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write(path, arr, gz=False):
    blob = idx_bytes(arr)
    path.write_bytes(gzip.compress(blob, mtime=0) if gz else blob)
    return path


@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
       dtype=st.sampled_from(list(CODES)))
def test_parse_idx_round_trip(shape, dtype):
    arr = (np.arange(np.prod(shape)).reshape(shape) * 3 - 7).astype(dtype)
    out = parse_idx(idx_bytes(arr))
    assert out.shape == tuple(shape) and out.dtype == np.dtype(dtype)
    assert out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_raw_and_gzip(tmp_path, gz, rng):
    images = rng.integers(0, 256, (7, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, 7).astype(np.uint8)
    np.testing.assert_array_equal(read_idx(write(tmp_path / "im", images, gz)), images)
    np.testing.assert_array_equal(read_idx(write(tmp_path / "lb", labels, gz)), labels)
    floats = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(read_idx(write(tmp_path / "f", floats, gz)), floats)


def _broken(arr):
    good = idx_bytes(arr)
    return {
        "empty": (b"", "too short"),
        "magic": (b"\x01" + good[1:], "wrong magic number"),
        "dtype code": (good[:2] + b"\x07" + good[3:], "unknown dtype code 0x07"),
        "zero dims": (good[:3] + b"\x00", "declares 0 dimensions"),
        "header": (good[:9], "truncated in its header"),
        "data": (good[:-1], "truncated: shape \\(4, 5, 6\\) of uint8 needs 136 bytes, got 135"),
        "wrong dims": (good[:4] + struct.pack(">3I", 4, 5, 7) + good[16:], "truncated"),
        "trailing": (good + b"\x00\x00", "2 unexpected trailing bytes"),
    }


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("case", list(_broken(np.zeros((4, 5, 6), np.uint8))))
def test_broken_idx_files_name_the_file_and_the_fault(tmp_path, case, gz):
    blob, message = _broken(np.zeros((4, 5, 6), np.uint8))[case]
    path = tmp_path / f"broken-{case.replace(' ', '_')}"
    path.write_bytes(gzip.compress(blob) if gz else blob)
    with pytest.raises(ValueError, match=message) as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_corrupted_gzip_stream(tmp_path):
    gz = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8).reshape(10, 20)))
    (tmp_path / "cut.gz").write_bytes(gz[:-10])                      # truncated stream
    with pytest.raises(ValueError, match="corrupted or truncated gzip"):
        read_idx(tmp_path / "cut.gz")
    flipped = bytearray(gz)
    flipped[-6] ^= 0xFF                                               # CRC / length trailer
    (tmp_path / "crc.gz").write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="gzip"):
        read_idx(tmp_path / "crc.gz")
    with pytest.raises(ValueError, match="cannot read"):
        read_idx(tmp_path / "missing")


def test_known_digests_are_well_formed():
    sizes = {name: size for name, size, _, _ in MNIST_FILES.values()}
    assert sizes == {"train-images-idx3-ubyte.gz": 9912422, "train-labels-idx1-ubyte.gz": 28881,
                     "t10k-images-idx3-ubyte.gz": 1648877, "t10k-labels-idx1-ubyte.gz": 4542}
    for _, _, digest, _ in MNIST_FILES.values():
        assert len(digest) == 64 and int(digest, 16) >= 0


def _fake_mnist(root, rng, n=6, gz_images=False, gz_labels=True, split="test"):
    images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    im_name = MNIST_FILES[(split, "images")][0]
    lb_name = MNIST_FILES[(split, "labels")][0]
    write(root / (im_name if gz_images else im_name[:-3]), images, gz_images)
    write(root / (lb_name if gz_labels else lb_name[:-3]), labels, gz_labels)
    return images, labels


def test_load_mnist_unverified_small_files(tmp_path, rng):
    images, labels = _fake_mnist(tmp_path, rng)
    X, y = load_mnist(tmp_path, split="test", verify=False)
    assert X.shape == (6, 784) and X.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(X, images.reshape(6, -1) / 255.0)
    np.testing.assert_array_equal(y, labels)
    X32, _ = load_mnist(tmp_path, split="test", verify=False, scale="raw", flatten=False,
                        dtype=np.float32)
    assert X32.dtype == np.float32 and X32.shape == (6, 28, 28)
    np.testing.assert_array_equal(X32, images)


def test_load_mnist_verification_rejects_other_files(tmp_path, rng):
    _fake_mnist(tmp_path, rng, gz_images=True, gz_labels=True)
    # a .gz file is checked against the published size and SHA-256
    with pytest.raises(ValueError, match="bytes, expected 1648877"):
        load_mnist(tmp_path, split="test")
    for p in tmp_path.iterdir():
        p.unlink()
    _fake_mnist(tmp_path, rng, gz_images=False, gz_labels=False)
    # uncompressed files are checked for the expected structure
    with pytest.raises(ValueError, match=r"expected uint8 of shape \(10000, 28, 28\)"):
        load_mnist(tmp_path, split="test")


def test_verify_file_catches_same_size_corruption(tmp_path):
    blob = bytes(range(256))
    (tmp_path / "f").write_bytes(blob)
    mnist.verify_file(tmp_path / "f", 256, hashlib.sha256(blob).hexdigest())
    with pytest.raises(ValueError, match="SHA-256"):
        mnist.verify_file(tmp_path / "f", 256, hashlib.sha256(blob[::-1]).hexdigest())


def test_load_mnist_mismatched_pair(tmp_path, rng):
    write(tmp_path / "train-images-idx3-ubyte", np.zeros((5, 28, 28), np.uint8))
    write(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="do not pair up"):
        load_mnist(tmp_path, verify=False)


def test_missing_files_without_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_mnist(tmp_path, split="train")


def test_download_fails_cleanly_when_unreachable(tmp_path):
    """No network: a refused local port fails fast and names every mirror tried."""
    mirrors = ("http://127.0.0.1:9/mnist/", "http://127.0.0.1:9/other/")
    t0 = time.perf_counter()
    with pytest.raises(MNISTDownloadError, match="offline") as err:
        load_mnist(tmp_path, split="test", download=True, mirrors=mirrors, timeout=0.5)
    assert time.perf_counter() - t0 < 5.0
    for m in mirrors:
        assert m + "t10k-images-idx3-ubyte.gz" in str(err.value)
    assert list(tmp_path.iterdir()) == []                            # nothing half-written


def test_download_with_mocked_urlopen_never_touches_the_network(tmp_path, monkeypatch):
    calls = []

    def no_network(url, timeout):
        calls.append((url, timeout))
        raise urllib.error.URLError("mocked: no route to host")

    monkeypatch.setattr(mnist.urllib.request, "urlopen", no_network)
    with pytest.raises(MNISTDownloadError, match="no route to host"):
        load_mnist(tmp_path, split="train", download=True, timeout=1.0)
    assert [u for u, _ in calls] == [m + "train-images-idx3-ubyte.gz" for m in mnist.MNIST_MIRRORS]
    assert all(t == 1.0 for _, t in calls)


def test_download_checks_the_digest(tmp_path, rng):
    """A file:// mirror serves a file: accepted with its digest, rejected (not written) without."""
    served = tmp_path / "mirror"
    served.mkdir()
    blob = gzip.compress(idx_bytes(np.arange(10, dtype=np.uint8)), mtime=0)
    (served / "x.gz").write_bytes(blob)
    mirror = served.as_uri() + "/"
    digest = hashlib.sha256(blob).hexdigest()
    out = tmp_path / "out"
    with pytest.raises(MNISTDownloadError, match="expected"):
        download_file("x.gz", out, len(blob), "0" * 64, mirrors=[mirror])
    assert not (out / "x.gz").exists()
    path = download_file("x.gz", out, len(blob), digest, mirrors=["http://127.0.0.1:9/", mirror],
                         timeout=0.5)
    assert path.read_bytes() == blob
    np.testing.assert_array_equal(read_idx(path), np.arange(10))


def test_load_mnist_download_end_to_end(tmp_path, rng, monkeypatch):
    """download=True fetches, verifies and loads (the published digests swapped for the fakes')."""
    served = tmp_path / "mirror"
    served.mkdir()
    images, labels = _fake_mnist(served, rng, n=5, gz_images=True, gz_labels=True)
    for part, shape in (("images", (5, 28, 28)), ("labels", (5,))):
        name = MNIST_FILES[("test", part)][0]
        blob = (served / name).read_bytes()
        monkeypatch.setitem(MNIST_FILES, ("test", part),
                            (name, len(blob), hashlib.sha256(blob).hexdigest(), shape))
    root = tmp_path / "root"
    X, y = load_mnist(root, split="test", download=True, mirrors=[served.as_uri() + "/"])
    np.testing.assert_array_equal(X, images.reshape(5, -1) / 255.0)
    np.testing.assert_array_equal(y, labels)
    assert sorted(p.name for p in root.iterdir()) == ["t10k-images-idx3-ubyte.gz",
                                                      "t10k-labels-idx1-ubyte.gz"]


@pytest.mark.parametrize("kwargs,arg", [({"split": "val"}, "split"), ({"scale": "z"}, "scale"),
                                        ({"dtype": np.int32}, "dtype"),
                                        ({"flatten": 1}, "flatten")])
def test_bad_arguments(tmp_path, kwargs, arg):
    with pytest.raises(ValueError, match=f"^{arg}:"):
        load_mnist(tmp_path, **kwargs)


def test_bad_timeout(tmp_path):
    with pytest.raises(ValueError, match="^timeout:"):
        download_file("x.gz", tmp_path, 1, "0" * 64, timeout=0.0)
