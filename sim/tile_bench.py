"""cocotb bench for the tiles (GOBO, MAC baseline, memory compression): loads a layer, runs it,
compares every output element and every performance counter with the golden models.

Jobs come from ``$GOBO_VECTORS`` (made by :mod:`golden.hwmodel.tile_jobs`); what the design did
goes to ``$GOBO_RESULTS``. ``valid``/``ready`` are sampled right after each rising edge.
"""

import random
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from golden.config import GoboConfig
from golden.hwmodel.packing import counters_fields, tile_output_fields, to_signed, unpack
from sim.bench_io import CLOCK_NS, BenchReport, mismatch_record, read_vectors, sim_time_ns


class TileTestbench:
    """Owns clock, reset, the load drivers and the output monitor of a tile design."""

    def __init__(self, dut, config):
        self.dut = dut
        self.config = config
        self.counters_fields = counters_fields(config)
        self.cycles_simulated = 0
        cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
        cocotb.start_soon(self._count())

    async def _count(self):
        while True:
            await RisingEdge(self.dut.clk)
            self.cycles_simulated += 1

    async def tick(self):
        await RisingEdge(self.dut.clk)

    async def reset(self):
        dut = self.dut
        dut.rst.value = 1
        dut.load__valid.value = 0
        for name in ("packed", "outliers"):       # the memory-compression tile's streams
            if hasattr(dut, f"{name}__valid"):
                getattr(dut, f"{name}__valid").value = 0
        dut.start.value = 0
        dut.o__ready.value = 0
        for _ in range(2):
            await self.tick()
        dut.rst.value = 0
        await self.tick()

    async def drive(self, name, beats, rng, gap):
        """Stream ``beats`` on stream ``name`` with random idle cycles; a beat holds until it
        transfers."""
        valid = getattr(self.dut, f"{name}__valid")
        payload = getattr(self.dut, f"{name}__payload")
        ready = getattr(self.dut, f"{name}__ready")
        for beat in beats:
            while rng.random() < gap:
                valid.value = 0
                await self.tick()
            valid.value = 1
            payload.value = beat
            await self.tick()
            while not ready.value:
                await self.tick()
        valid.value = 0

    async def load(self, job, rng):
        """The job's streams all at once (each with its own random gaps), then its load beats."""
        gap = job["gap_probability"]
        drivers = [cocotb.start_soon(self.drive(name, [int(w, 16) for w in words],
                                                random.Random(rng.random()), gap))
                   for name, words in job.get("streams", {}).items()]
        for driver in drivers:
            await driver
        await self.drive("load", [int(b, 16) for b in job["load"]], rng, gap)

    async def before_run(self, job):
        """Called after the load, before ``start`` (the streaming tile's memory starts here)."""

    async def run(self, job, rng):
        """Pulse ``start`` and collect the output beats; return (beats, counters, times): the
        simulation time (ns) of each beat's transfer."""
        dut, config = self.dut, self.config
        await self.before_run(job)
        out_fields = tile_output_fields(config)
        n_beats = len(job["expected"])
        dut.start.value = 1
        await self.tick()
        dut.start.value = 0
        outputs, times, cycles = [], [], 0
        budget = 1000 + 20 * job["ideal_cycles"]
        stall = job["backpressure_probability"]
        while len(outputs) < n_beats or dut.busy.value:
            ready = rng.random() >= stall
            dut.o__ready.value = int(ready)
            await self.tick()
            cycles += 1
            if ready and dut.o__valid.value:
                outputs.append(unpack(out_fields, int(dut.o__payload.value))["outputs"])
                times.append(sim_time_ns())
            if cycles > budget:
                raise AssertionError(f"{job['name']}: timed out after {cycles} cycles with "
                                     f"{len(outputs)} of {n_beats} output beats")
        dut.o__ready.value = 0
        await self.tick()
        counters = unpack(self.counters_fields, int(dut.counters.value))
        return outputs, counters, times


@cocotb.test(timeout_time=600, timeout_unit="sec")
async def tile_matches_golden(dut):
    """Every output element equals the golden tile model's; counters equal the cycle model's."""
    vectors = read_vectors()
    await run_jobs(dut, TileTestbench(dut, GoboConfig(**vectors["config"])), vectors)


async def run_jobs(dut, tb, vectors):
    """Reset, then every job of ``vectors``: load, run, compare, report (:class:`BenchReport`)."""
    config = tb.config
    await tb.reset()
    bench = BenchReport()
    report, errors = bench.jobs, bench.errors
    for job in vectors["jobs"]:
        rng = random.Random(job["seed"])
        started = time.monotonic()
        dut.layer.value = int(job["layer"], 16)
        await tb.load(job, rng)
        loaded = time.monotonic()
        outputs, counters, times = await tb.run(job, rng)
        ran = time.monotonic()
        if job.get("corrupt") is not None:  # mutation check: prove that this checker can fail
            beat, element, bit = job["corrupt"]
            outputs[beat][element] = to_signed(outputs[beat][element] ^ (1 << bit),
                                               config.act_bits)
        mismatches = [(s, p, got, exp)
                      for s, (got_beat, exp_beat) in enumerate(zip(outputs, job["expected"]))
                      for p, (got, exp) in enumerate(zip(got_beat, exp_beat)) if got != exp]
        failed = len(errors)
        if len(outputs) != len(job["expected"]):
            errors.append(f"{job['name']}: {len(outputs)} output beats, expected "
                          f"{len(job['expected'])}")
        for s, p, got, exp in mismatches[:3]:
            errors.append(f"{job['name']} slot {s} PE {p}: hardware {got} != golden {exp}")
        if job["expected_counters"] is not None:
            for name, value in job["expected_counters"].items():
                if counters[name] != value:
                    errors.append(f"{job['name']}: counter {name} = {counters[name]}, cycle "
                                  f"model {value}")
        first = None
        if mismatches:
            s, p, got, exp = mismatches[0]
            first = mismatch_record(f"{job['name']} slot {s} PE {p}", got, exp, times[s])
        report.append({"name": job["name"], "outputs": outputs, "counters": counters,
                       "mismatches": len(mismatches),
                       "elements": sum(len(beat) for beat in outputs),
                       "failed": len(errors) > failed, "first_mismatch": first,
                       # Wall seconds (scripts/bench_sim.py): load beats, run, compare.
                       "load_s": loaded - started, "run_s": ran - loaded,
                       "check_s": time.monotonic() - ran, "load_beats": len(job["load"])})
    bench.finish(tb.cycles_simulated)
