"""cocotb bench for one PE-shaped design (a GOBO PE, a MAC baseline PE, or anything with an
``i`` stream of packed beats ending a dot product on ``last`` and an ``o`` stream of one signed
result per dot product): streams dot products in, compares every output bit for bit.

A job that carries ``centroids`` loads them onto the design's static ``centroids`` port first;
a MAC PE has no such port and its jobs none. It reads its jobs from the JSON file named by
``$GOBO_VECTORS`` (made by :mod:`golden.hwmodel.pe_jobs`) and writes what it observed to
``$GOBO_RESULTS``. One coroutine drives and monitors, sampling ``valid``/``ready`` right after
each rising edge, so the cycle count is exact.
"""

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from golden.config import GoboConfig
from golden.hwmodel.packing import centroids_fields, pack, to_signed
from sim.bench_io import CLOCK_NS, BenchReport, mismatch_record, read_vectors, sim_time_ns


class PETestbench:
    """Owns the clock, reset and the per-cycle driver/monitor loop of a PE-shaped design."""

    def __init__(self, dut, vectors):
        self.dut = dut
        self.vectors = vectors
        self.out_bits = vectors["out_bits"]
        self.config = GoboConfig(**vectors["config"])
        self.cycles_simulated = 0
        cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())

    async def reset(self):
        self.dut.rst.value = 1
        self.dut.i__valid.value = 0
        self.dut.o__ready.value = 0
        for _ in range(2):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    def load_centroids(self, centroids):
        self.dut.centroids.value = pack(centroids_fields(self.config), {"centroids": centroids})

    async def run_job(self, job):
        """Stream one job's beats in and collect its outputs; return (outputs, cycles, times):
        the simulation time (ns) of each output's transfer."""
        dut = self.dut
        rng = random.Random(job["seed"])
        gap, stall = job["gap_probability"], job["backpressure_probability"]
        beats = [int(b, 16) for b in job["beats"]]
        n_out = len(job["expected"])
        if job.get("centroids") is not None:
            self.load_centroids(job["centroids"])
        outputs, times, next_beat = [], [], 0
        first_in = last_out = None
        cycle, budget = 0, 64 + 8 * (len(beats) + n_out * (job.get("recon_cycles", 1) + 16))
        valid = ready = False
        while len(outputs) < n_out:
            # Drive this cycle's inputs (a valid beat holds until it transfers).
            if not valid and next_beat < len(beats) and rng.random() >= gap:
                valid = True
                dut.i__payload.value = beats[next_beat]
            dut.i__valid.value = int(valid)
            ready = rng.random() >= stall
            dut.o__ready.value = int(ready)
            await RisingEdge(dut.clk)
            cycle += 1
            # What the design saw at this edge: a transfer is valid & ready before the edge.
            if valid and dut.i__ready.value:
                first_in = cycle if first_in is None else first_in
                next_beat += 1
                valid = False
            if ready and dut.o__valid.value:
                outputs.append(to_signed(int(dut.o__payload.value), self.out_bits))
                times.append(sim_time_ns())
                last_out = cycle
            if cycle > budget:
                raise AssertionError(f"job {job['name']}: timed out after {cycle} cycles with "
                                     f"{len(outputs)} of {n_out} outputs")
        dut.i__valid.value = 0
        self.cycles_simulated += cycle
        return outputs, last_out - first_in + 1, times


@cocotb.test(timeout_time=30, timeout_unit="sec")
async def pe_matches_golden(dut):
    """Every output of every job equals the golden model's, and cycles equal the cycle model's."""
    vectors = read_vectors()
    tb = PETestbench(dut, vectors)
    await tb.reset()
    bench = BenchReport()
    report, errors = bench.jobs, bench.errors
    for job in vectors["jobs"]:
        outputs, cycles, times = await tb.run_job(job)
        corrupt = job.get("corrupt")
        if corrupt is not None:  # mutation check: prove that this checker can fail
            row, bit = corrupt
            outputs[row] = to_signed(outputs[row] ^ (1 << bit), tb.out_bits)
        mismatches = [(r, got, exp) for r, (got, exp) in enumerate(zip(outputs, job["expected"]))
                      if got != exp]
        failed = len(errors)
        for r, got, exp in mismatches[:3]:
            errors.append(f"{job['name']} row {r}: hardware {got} != golden {exp}")
        if job["expected_cycles"] is not None and cycles != job["expected_cycles"]:
            errors.append(f"{job['name']}: {cycles} cycles != cycle model "
                          f"{job['expected_cycles']}")
        first = None
        if mismatches:
            r, got, exp = mismatches[0]
            first = mismatch_record(f"{job['name']} row {r}", got, exp, times[r])
        report.append({"name": job["name"], "rows": len(outputs), "mismatches": len(mismatches),
                       "cycles": cycles, "expected_cycles": job["expected_cycles"],
                       "outputs": outputs, "failed": len(errors) > failed,
                       "first_mismatch": first})
    bench.finish(tb.cycles_simulated)
