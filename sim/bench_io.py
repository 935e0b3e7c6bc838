"""What every cocotb bench of this project shares with its runner: the jobs it reads from
``$GOBO_VECTORS`` and the results it writes to ``$GOBO_RESULTS`` (see :func:`sim.runner.run_bench`).
"""

import json
import os
import time

__all__ = ["read_vectors", "BenchReport"]


def read_vectors():
    with open(os.environ["GOBO_VECTORS"]) as f:
        return json.load(f)


class BenchReport:
    """Collects per-job observations and errors; :meth:`finish` writes them and fails the test
    (with every error in the message) if there was any."""

    def __init__(self):
        self.started = time.monotonic()
        self.jobs = []
        self.errors = []

    def finish(self, cycles_simulated):
        wall = time.monotonic() - self.started
        results = {"jobs": self.jobs, "cycles_simulated": cycles_simulated, "wall_s": wall,
                   "sim_cycles_per_s": cycles_simulated / wall if wall else None,
                   "error": "; ".join(self.errors) or None}
        with open(os.environ["GOBO_RESULTS"], "w") as f:
            json.dump(results, f)
        assert not self.errors, results["error"]
