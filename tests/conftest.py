"""Shared fixtures. Real BERT weights are required, never optional: if they cannot be fetched the
tests that need them fail with the reason (they are not skipped)."""

import pytest

from golden.nlp.weights import MINILM_FC_NAMES, WeightsError, load_tensors, minilm_safetensors


@pytest.fixture(scope="session")
def minilm_path():
    try:
        return minilm_safetensors()
    except WeightsError as e:
        pytest.fail(f"real all-MiniLM-L6-v2 weights are required: {e}", pytrace=False)


@pytest.fixture(scope="session")
def minilm(minilm_path):
    """``{name: float32 array}`` of every tensor of all-MiniLM-L6-v2 (memory-mapped)."""
    tensors = load_tensors(minilm_path)
    missing = [name for name in MINILM_FC_NAMES if name not in tensors]
    assert not missing, f"{minilm_path} lacks {missing}"
    return tensors


@pytest.fixture(scope="session")
def load_script():
    """``load_script("bench_sim")``: ``scripts/bench_sim.py`` imported as a module (``scripts/``
    is not a package)."""
    import importlib.util
    import pathlib

    def load(name):
        path = pathlib.Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load
