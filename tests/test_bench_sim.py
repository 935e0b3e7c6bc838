"""scripts/bench_sim.py's job preparation (the benchmark itself is not a test:
docs/verification.md). A change of a job builder's return shape broke the script once; this
keeps its jobs real."""

from golden.config import preset
from golden.nlp.weights import load_tensors, minilm_safetensors

QUERY = "encoder.layer.0.attention.self.query"


def test_tile_job_for_gives_one_tile_job_of_real_weights(load_script):
    config = preset("tiny")
    tensors = load_tensors(minilm_safetensors(), names={QUERY + ".weight", QUERY + ".bias"})
    job = load_script("bench_sim").tile_job_for(config, tensors, QUERY, 3, seed=1)
    assert isinstance(job, dict) and job["name"] == QUERY
    # the slice the tiny tile holds (64 rows: 16 row blocks of 4 PEs), one output word a block
    # and token
    assert len(job["expected"]) == 3 * 64 // config.pes
    assert job["expected_counters"]["cycles"] >= job["ideal_cycles"] > 0
