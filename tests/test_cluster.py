"""hw.cluster: independent jobs on a Dask LocalCluster come back complete and by name, progress
is reported as each ends, a failing job is named, an unreachable scheduler is one clear error."""

import operator

import pytest

from hw import cluster
from hw.cluster import ClusterError, run_jobs


def test_jobs_run_on_a_local_cluster_and_report_as_they_end():
    seen = []
    jobs = {f"job{i}": (i, 10) for i in range(5)}
    results = run_jobs(operator.mul, jobs, workers=2,
                       on_result=lambda name, value: seen.append((name, value)))
    assert results == {f"job{i}": 10 * i for i in range(5)}
    assert list(results) == list(jobs)
    assert sorted(seen) == sorted(results.items())


def test_a_failing_job_is_named_after_the_others_end():
    seen = []
    with pytest.raises(ClusterError, match=r"1 of 3 jobs failed: b: ZeroDivisionError"):
        run_jobs(operator.floordiv, {"a": (4, 2), "b": (1, 0), "c": (9, 3)}, workers=2,
                 on_result=lambda name, value: seen.append(name))
    assert sorted(seen) == ["a", "c"]


def test_an_unreachable_scheduler_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "1s")
    with pytest.raises(ClusterError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        run_jobs(operator.add, {"a": (1, 2), "b": (3, 4)}, scheduler="tcp://127.0.0.1:9")
