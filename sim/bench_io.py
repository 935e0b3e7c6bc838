"""What every cocotb bench of this project shares with its runner: the jobs it reads from
``$GOBO_VECTORS`` and the results it writes to ``$GOBO_RESULTS`` (see :func:`sim.runner.run_bench`).
"""

import json
import os
import time

__all__ = ["read_vectors", "BenchReport", "CLOCK_NS", "sim_time_ns", "mismatch_record"]

#: The benches' clock period in ns: a waveform's time divided by it is the cycle.
CLOCK_NS = 10


def sim_time_ns():
    """The simulation time in ns (to stamp an observation, e.g. an output beat)."""
    from cocotb.simtime import get_sim_time
    return get_sim_time("ns")


def mismatch_record(where, got, expected, time_ns):
    """A job's ``first_mismatch`` in the results: which element (e.g. ``"slot 3 PE 2"``), both
    values, and when the hardware produced it (cycle since time 0, and ns) for the waveform."""
    return {"where": where, "hardware": got, "golden": expected,
            "cycle": int(time_ns // CLOCK_NS), "time_ns": time_ns}


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
