"""The generic test of the design registry (hw.designs): every registered kind, built from its
example parameters, runs its example job in the Amaranth simulator and agrees with its golden
model on every output element and with its cycle model on every count; its checker fails on a
corrupted output."""

import copy

import pytest

from hw.designs import KINDS, Design, DesignError, check, example_design, kind


def check_kind(design, seed=3):
    """Run ``design``'s example job and return ``(job, observed)``; fails on any mismatch, and
    shows that the checker catches one corrupted output value."""
    job = design.example(seed)
    assert job["expected"], f"{design.kind}: the example job has no outputs"
    observed = design.run(job)
    assert check(job, observed) == []
    corrupted = copy.deepcopy(observed)
    first = corrupted["outputs"][0]
    if isinstance(first, list):
        first[0] ^= 1
    elif isinstance(first, str):
        corrupted["outputs"][0] = format(int(first, 16) ^ 1, "x")
    else:
        corrupted["outputs"][0] = first ^ 1
    assert len(check(job, corrupted)) == 1
    return job, observed


@pytest.mark.parametrize("name", list(KINDS))
def test_every_kind_matches_its_golden_and_cycle_models(name):
    job, observed = check_kind(example_design(name))
    counts = job.get("expected_cycles") or job.get("expected_counters")
    if KINDS[name].bench is not None:     # timed kinds carry their cycle model's counts
        assert counts, f"{name}: no cycle model counts to compare"


def test_registry_errors_name_the_problem():
    with pytest.raises(DesignError, match="unknown design kind 'gpu'; choose one of gobo_pe"):
        kind("gpu")
    tiny = example_design("gobo_pe").config
    with pytest.raises(DesignError, match="'mac_pe' needs weight_bits"):
        Design("mac_pe", tiny)
    with pytest.raises(DesignError, match="'gobo_pe' takes no weight_bits"):
        Design("gobo_pe", tiny, 8)
    with pytest.raises(TypeError, match="config must be a GoboConfig, not 3"):
        Design("gobo_pe", 3)
