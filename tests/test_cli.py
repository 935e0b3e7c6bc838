"""The ``gobo`` command line, run in-process and once as a subprocess."""

import json
import struct
import subprocess
import sys

import numpy as np
import pytest

from gobo.cli import main
from golden.nlp.weights import MINILM_FC_NAMES
from golden.quant.quantizer import quantize


@pytest.fixture
def npz(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "w.npz"
    np.savez(path, fc1=rng.normal(0, 0.05, (32, 48)).astype(np.float32),
             fc2=rng.normal(0, 0.02, (16, 32)).astype(np.float32),
             bias=np.zeros(32, np.float32), ids=np.arange(6).reshape(2, 3))
    return path


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_table_lists_every_float_matrix(npz, capsys):
    code, out, err = _run(["quantize", npz], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "shape", "outlier%", "compress", "rel", "RMSE", "L1",
                                "iters"]
    assert [line.split()[0] for line in lines[1:3]] == ["fc1", "fc2"]  # not bias, not ids
    assert lines[1].split()[1] == "32x48"
    assert lines[3].startswith("all (2 matrices)")
    assert "[1/2] fc1" in err and "[2/2] fc2" in err


def test_json_schema_and_values(npz, capsys):
    code, out, err = _run(["quantize", npz, "--json", "--tensor", "fc2", "--bits", "4",
                           "--method", "kmeans", "--threshold", "-3", "--quiet"], capsys)
    assert code == 0 and err == ""
    report = json.loads(out)
    assert set(report) == {"tensors", "aggregate"}
    (entry,) = report["tensors"]
    assert set(entry) == {"name", "shape", "outlier_fraction", "compression_ratio", "rel_rmse",
                          "l1", "iterations", "warnings", "file_dtype", "compression_vs_file"}
    assert entry["file_dtype"] == "F32"
    assert entry["compression_vs_file"] == entry["compression_ratio"]
    assert set(report["aggregate"]) == {"outlier_fraction", "compression_ratio",
                                        "compression_vs_file", "rel_rmse"}
    stats = quantize(np.load(npz)["fc2"], index_bits=4, method="kmeans",
                     outlier_log_prob=-3).stats
    assert entry["name"] == "fc2" and entry["shape"] == [16, 32]
    assert entry["outlier_fraction"] == stats.outlier_fraction
    assert entry["l1"] == stats.l1 and entry["iterations"] == stats.iterations
    assert entry["warnings"] == [] == list(stats.warnings)
    assert report["aggregate"]["compression_ratio"] == stats.compression_ratio


def test_help(capsys):
    code, out, _ = _run(["--help"], capsys)
    assert code == 0 and "quantize" in out
    code, out, _ = _run(["quantize", "--help"], capsys)
    assert code == 0 and "--threshold" in out and "--json" in out


def _bad_files(tmp_path):
    nan = tmp_path / "nan.npy"
    w = np.zeros((4, 4), np.float32)
    w[2, 3] = np.nan
    np.save(nan, w)
    garbled = tmp_path / "garbled.safetensors"
    garbled.write_bytes(struct.pack("<Q", 5) + b"{nope")
    (tmp_path / "junk.npy").write_bytes(b"not numpy at all")
    (tmp_path / "w.txt").write_text("1 2 3")
    np.save(tmp_path / "vector.npy", np.zeros(5, np.float32))
    return tmp_path


@pytest.mark.parametrize("argv, message", [
    (["quantize", "{d}/missing.npz"], "missing.npz: no such file"),
    (["quantize", "{npz}", "--tensor", "fc_1"], "no tensor 'fc_1'; did you mean 'fc1'?"),
    (["quantize", "{npz}", "--tensor", "bias"], "tensor 'bias' has shape (32,); only 2-D"),
    (["quantize", "{npz}", "--tensor", "ids"], "tensor 'ids' is int64, not floating point"),
    (["quantize", "{d}/nan.npy"], "tensor 'nan': weights contain 1 NaN and 0 Inf values"),
    (["quantize", "{npz}", "--bits", "9"], "--bits must be between 2 and 8, not 9"),
    (["quantize", "{npz}", "--bits", "1"], "--bits must be between 2 and 8, not 1"),
    (["quantize", "{npz}", "--bits", "three"], "argument --bits: invalid int value: 'three'"),
    (["quantize", "{npz}", "--threshold", "nan"], "--threshold must be a finite number, not nan"),
    (["quantize", "{npz}", "--method", "lloyd"], "argument --method: invalid choice: 'lloyd'"),
    (["quantize", "{d}/garbled.safetensors"], "header is not valid JSON"),
    (["quantize", "{d}/junk.npy"], "junk.npy: the file is not a .npy array"),
    (["quantize", "{d}"], "is a folder without a checkpoint"),
    (["quantize", "{d}/w.txt"], "unknown weight format '.txt'"),
    (["quantize", "{d}/vector.npy"], "no 2-D floating-point tensors to quantize"),
    ([], "the following arguments are required: COMMAND"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_input_gives_one_line_error(argv, message, npz, tmp_path, capsys):
    d = _bad_files(tmp_path)
    code, out, err = _run([a.format(d=d, npz=npz) for a in argv], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("gobo: error: "), err
    assert message in err


def test_subprocess_json_and_error(npz, tmp_path):
    cmd = [sys.executable, "-m", "gobo", "quantize"]
    run = subprocess.run(cmd + [str(npz), "--json"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert [t["name"] for t in json.loads(run.stdout)["tensors"]] == ["fc1", "fc2"]
    run = subprocess.run(cmd + [str(tmp_path / "nope.npy")], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr == f"gobo: error: {tmp_path / 'nope.npy'}: no such file\n"


def test_minilm_json(minilm_path, minilm, capsys):
    names = [MINILM_FC_NAMES[0], MINILM_FC_NAMES[5]]
    argv = ["quantize", minilm_path, "--json", "--quiet"]
    for name in names:
        argv += ["--tensor", name]
    code, out, _ = _run(argv, capsys)
    assert code == 0
    report = json.loads(out)
    for entry, name in zip(report["tensors"], names):
        assert entry["name"] == name
        assert entry["outlier_fraction"] == quantize(minilm[name]).stats.outlier_fraction
    assert report["aggregate"]["compression_ratio"] > 9.5


def test_version_and_every_subcommand_help_has_a_pasteable_example(capsys):
    from gobo import __version__
    from gobo.cli import COMMANDS
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"gobo {__version__}"
    assert __version__ != "unknown"
    for command in COMMANDS:
        assert main([command, "--help"]) == 0
        text = capsys.readouterr().out
        assert "example:\n" in text, command
        examples = text.split("example:\n", 1)[1].splitlines()
        assert examples[0].strip().startswith(f"gobo {command} "), (command, examples[0])


def test_unknown_subcommand_is_one_line():
    result = subprocess.run([sys.executable, "-m", "gobo", "frobnicate"], capture_output=True,
                            text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("gobo: error: argument COMMAND: invalid choice: 'frobnicate'")
    assert len(result.stderr.strip().splitlines()) == 1


# A command line that never leaves a user guessing (issue 11) ---------------------------------

def _bf16_checkpoint(path, tensors, bf16=()):
    header, data = {}, b""
    for name, array in tensors.items():
        array = np.asarray(array, np.float32)
        if name in bf16:
            blob, dtype = (array.view(np.uint32) >> 16).astype("<u2").tobytes(), "BF16"
        else:
            blob, dtype = array.astype("<f4").tobytes(), "F32"
        header[name] = {"dtype": dtype, "shape": list(array.shape),
                        "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def test_tensor_takes_several_names_and_repeats(npz, capsys):
    for argv in (["--tensor", "fc1", "fc2"], ["--tensor", "fc1", "--tensor", "fc2"]):
        code, out, _ = _run(["quantize", npz, "--quiet", "--json", *argv], capsys)
        assert code == 0
        assert [t["name"] for t in json.loads(out)["tensors"]] == ["fc1", "fc2"]


def test_json_never_prints_nan(tmp_path, capsys):
    np.savez(tmp_path / "zero.npz", z=np.zeros((8, 8), np.float32))
    code, out, _ = _run(["quantize", tmp_path / "zero.npz", "--quiet", "--json"], capsys)
    assert code == 0 and "NaN" not in out
    json.loads(out, parse_constant=lambda c: pytest.fail(f"bare {c} in --json output"))


def test_bf16_bias_does_not_break_a_float32_selection(tmp_path, capsys):
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.05, (16, 24)).astype(np.float32)
    path = _bf16_checkpoint(tmp_path / "m.safetensors",
                            {"fc.weight": w, "fc.bias": w[:, 0], "up.weight": w.T},
                            bf16={"fc.bias", "up.weight"})
    code, out, _ = _run(["quantize", path, "--tensor", "fc.weight", "--quiet", "--json"], capsys)
    assert code == 0 and json.loads(out)["tensors"][0]["file_dtype"] == "F32"
    code, out, _ = _run(["quantize", path, "--quiet", "--json"], capsys)
    entries = {t["name"]: t for t in json.loads(out)["tensors"]}
    assert entries["up.weight"]["file_dtype"] == "BF16"
    assert entries["up.weight"]["compression_vs_file"] == \
        pytest.approx(entries["up.weight"]["compression_ratio"] / 2)
    assert json.loads(out)["aggregate"]["compression_vs_file"] < \
        json.loads(out)["aggregate"]["compression_ratio"]
    code, out, _ = _run(["quantize", path, "--quiet"], capsys)
    assert "vs file" in out.splitlines()[0] and "(BF16)" in out


def test_empty_tensor_is_skipped_with_a_note(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "e.npz", w=rng.normal(size=(8, 8)).astype(np.float32),
             empty=np.zeros((0, 8), np.float32))
    code, out, err = _run(["quantize", tmp_path / "e.npz", "--quiet"], capsys)
    assert code == 0 and "gobo: note: empty: empty tensor (0, 8), skipped" in err
    code, _, err = _run(["quantize", tmp_path / "e.npz", "--tensor", "empty"], capsys)
    assert code == 2 and "tensor 'empty' is empty (0, 8)" in err


def test_distilbert_config_names_the_model_type(tmp_path, capsys):
    from golden.nlp.tiny_bert import tiny_tensors, write_safetensors
    write_safetensors(tmp_path / "model.safetensors", tiny_tensors(0))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "distilbert", "dim": 32}))
    code, _, err = _run(["quantize", tmp_path / "model.safetensors", "--all", "--quiet"], capsys)
    assert code == 2 and "model_type 'distilbert' is not supported" in err
    assert err.count("\n") == 1


def test_ctrl_c_and_os_errors_are_one_line(npz, monkeypatch, capsys):
    import gobo.commands.quantize as command

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "load_tensors", interrupted)
    code, _, err = _run(["quantize", npz], capsys)
    assert code == 130 and err == "gobo: interrupted\n"

    def failing(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(npz))

    monkeypatch.setattr(command, "load_tensors", failing)
    code, _, err = _run(["quantize", npz], capsys)
    assert code == 2 and err == f"gobo: error: {npz}: Permission denied\n"


def test_failed_download_is_one_line(tmp_path, monkeypatch):
    import subprocess as sp

    from golden.nlp import weights
    monkeypatch.setenv("GOBO_CACHE", str(tmp_path))
    monkeypatch.setattr(weights.subprocess, "run", lambda *a, **k: sp.CompletedProcess(
        a, 1, "", "ERROR: Could not find a version\nERROR: No matching distribution\n"))
    with pytest.raises(weights.WeightsError) as info:
        weights.minilm_dir()
    assert "\n" not in str(info.value) and "No matching distribution" in str(info.value)


def test_ctrl_c_while_numpy_loads_is_one_line():
    """Nothing heavy is imported before main's handler is in place."""
    code = "import sys, gobo.cli; print(sorted(m for m in sys.modules if m.startswith(" \
           "('numpy', 'golden'))))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "[]", run.stdout + run.stderr


@pytest.mark.parametrize("argv, message", [
    (["quantize", "{w}", "--all", "-o", "{tmp}/no/such/m.gobo"], "cannot write it (no folder"),
    (["quantize", "{w}", "--all", "-o", "{tmp}"], "is a folder; give a file name"),
    (["run", "{w}", "--out", "{tmp}/file/x"], "cannot make the output folder"),
    (["run", "{w}", "--out", "{tmp}/file"], "is a file, not a folder"),
    (["latency", "--fmax-mhz", "100", "--out", "{tmp}/file"], "is a file, not a folder"),
    (["run", "{tmp}/nope.safetensors"], "nope.safetensors: no such file or folder"),
    (["model", "{tmp}/nope.safetensors"], "nope.safetensors: no such file or folder"),
])
def test_bad_output_paths_and_missing_weights_fail_before_any_work(tmp_path, capsys, argv,
                                                                    message):
    """A bad output path or a missing weights file is one line at once, not after minutes."""
    (tmp_path / "file").write_text("")
    w = tmp_path / "w.safetensors"
    w.write_bytes(b"not read: the path checks come first")
    argv = [a.format(w=w, tmp=tmp_path) for a in argv]
    code, _, err = _run(argv, capsys)
    assert code == 2 and message in err and err.count("\n") == 1, err
