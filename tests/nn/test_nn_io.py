"""save_npz / load_npz: round trip by PyTorch state_dict names, metadata, and ValueErrors for
corrupt, truncated, pickled, misnamed and misshaped files."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.nn import MLP, Conv2d, ConvTranspose2d, Flatten, Linear, Sequential, Tanh, load_npz, read_npz, save_npz


def _conv_net(rng):
    return Sequential(Conv2d(1, 2, 3, padding=1, rng=rng), Tanh(), Flatten(), Linear(2 * 4 * 4, 3, rng=rng))


def test_round_trip(tmp_path, rng):
    for make in (lambda r: MLP(2, [5, 4], 1, rng=r), _conv_net,
                 lambda r: ConvTranspose2d(2, 3, 3, stride=2, output_padding=1, rng=r)):
        src, dst = make(np.random.default_rng(1)), make(np.random.default_rng(2))
        path = tmp_path / "params.npz"
        save_npz(path, src, meta={"hidden": [5, 4], "activation": "relu"})
        assert sorted(read_npz(path)) == sorted(list(src.state_dict()) + ["__meta__.activation",
                                                                          "__meta__.hidden"])
        meta = load_npz(path, dst)
        for name, p in src.state_dict().items():
            np.testing.assert_array_equal(dst.state_dict()[name], p)
        assert meta["activation"] == "relu" and list(meta["hidden"]) == [5, 4]
    names = list(read_npz(tmp_path / "params.npz"))
    assert "weight" in names and "bias" in names


def test_loaded_parameters_are_the_same_arrays(tmp_path, rng):
    """load_npz copies in place, so an optimizer built before loading still holds the parameters."""
    net = MLP(2, [3], 1, rng=rng)
    ids = [id(p) for _, p, _ in net.named_parameters()]
    save_npz(tmp_path / "a.npz", MLP(2, [3], 1, rng=np.random.default_rng(9)))
    load_npz(tmp_path / "a.npz", net)
    assert ids == [id(p) for _, p, _ in net.named_parameters()]


def test_corrupt_truncated_and_pickled_files_raise(tmp_path, rng):
    net = MLP(2, [3], 1, rng=rng)
    good = tmp_path / "good.npz"
    save_npz(good, net)
    data = good.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.npz").write_bytes(b"this is not a zip file at all")
    flipped = bytearray(data)
    for i in range(60, 68):          # inside the first member's deflate stream: a zlib.error
        flipped[i] ^= 0xFF
    (tmp_path / "flipped.npz").write_bytes(bytes(flipped))
    for name in ("trunc.npz", "junk.npz", "flipped.npz"):
        with pytest.raises(ValueError, match="path: .* is not a readable .npz"):
            load_npz(tmp_path / name, net)
    with pytest.raises(ValueError, match="path: expected an existing .npz"):
        load_npz(tmp_path / "missing.npz", net)
    # object arrays need pickle, which is never allowed
    np.savez(tmp_path / "pickled.npz", **{"0.weight": np.array([{"evil": 1}], dtype=object)})
    with pytest.raises(ValueError, match="path"):
        read_npz(tmp_path / "pickled.npz")
    with pytest.raises(ValueError, match="meta"):
        save_npz(tmp_path / "x.npz", net, meta={"obj": {"a": 1}})


def test_wrong_names_and_shapes_raise(tmp_path, rng):
    net = MLP(2, [3], 1, rng=rng)
    state = net.state_dict()
    renamed = {k.replace("2.", "4."): v for k, v in state.items()}
    np.savez(tmp_path / "renamed.npz", **renamed)
    with pytest.raises(ValueError, match=r"state: expected parameter names .*missing \['2.bias', '2.weight'\]"):
        load_npz(tmp_path / "renamed.npz", net)
    reshaped = dict(state)
    reshaped["0.weight"] = np.zeros((2, 3))
    np.savez(tmp_path / "reshaped.npz", **reshaped)
    with pytest.raises(ValueError, match=r"state\['0.weight'\]: expected shape \(3, 2\), got \(2, 3\)"):
        load_npz(tmp_path / "reshaped.npz", net)
    # a bad entry late in the file leaves the module untouched (no half-loaded network)
    nan = {k: v + 1.0 for k, v in state.items()}
    nan["2.bias"] = np.array([np.nan])
    np.savez(tmp_path / "nan.npz", **nan)
    with pytest.raises(ValueError, match=r"state\['2.bias'\]: expected finite"):
        load_npz(tmp_path / "nan.npz", net)
    for name, p in net.state_dict().items():
        np.testing.assert_array_equal(p, state[name])
