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
