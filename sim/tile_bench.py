"""cocotb bench for the tiles (GOBO, MAC baseline, memory compression): loads a layer, runs it,
compares every output element and every performance counter with the golden models.

Jobs come from ``$GOBO_VECTORS`` (made by :mod:`golden.hwmodel.tile_jobs`); what the design did
goes to ``$GOBO_RESULTS``. Two drivers:

* **in the model** (every build with :mod:`sim.tile_driver`'s wrapper: the whole-layer GOBO
  and MAC tiles as :func:`sim.simulate.build` makes them): Python writes the job's load beats
  to a file, pulses ``bench_go`` and wakes only on each output beat and at the job's end; the
  driver inside the Verilated model streams the beats with random gaps and takes the outputs
  with random backpressure;
* **per cycle in Python** (a build of the bare tile, and the streaming and compressed tiles):
  ``valid``/``ready`` set and sampled by Python right after each rising edge (the bench before
  issue 17 item 3; `scripts/bench_sim.py` measures both).

Either way every output element and every counter is checked here, in Python.
"""

import random
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from golden.config import GoboConfig
from golden.hwmodel.packing import (
    counters_fields,
    stream_error_message,
    tile_output_fields,
    to_signed,
    unpack,
)
from sim.bench_io import CLOCK_NS, BenchReport, mismatch_record, read_vectors, sim_time_ns
from sim.tile_driver import LOAD_FILE, PROBABILITY_ONE, load_file_bytes


class TileTestbench:
    """Owns clock, reset, the load drivers and the output monitor of a tile design."""

    def __init__(self, dut, config):
        self.dut = dut
        self.config = config
        self.counters_fields = counters_fields(config)
        self.in_model = hasattr(dut, "bench_go")
        cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())

    @property
    def cycles_simulated(self):
        """Clock cycles since time 0 (from the simulation time: no per-cycle count)."""
        return int(sim_time_ns() // CLOCK_NS)

    async def tick(self):
        await RisingEdge(self.dut.clk)

    async def reset(self):
        dut = self.dut
        dut.rst.value = 1
        if self.in_model:
            dut.bench_go.value = 0
        else:
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

    async def run_in_model(self, job, rng):
        """Load and run ``job`` on the in-model driver; Python wakes once per output beat.
        Returns what :meth:`run` returns."""
        dut = self.dut
        with open(LOAD_FILE, "wb") as f:     # the simulator's folder is this process's
            f.write(load_file_bytes(job["load"], int(dut.bench_beat_bytes.value)))
        n_beats = len(job["expected"])
        dut.bench_beats.value = len(job["load"])
        dut.bench_outputs.value = n_beats
        dut.bench_gap.value = round(job["gap_probability"] * PROBABILITY_ONE)
        dut.bench_stall.value = round(job["backpressure_probability"] * PROBABILITY_ONE)
        dut.bench_seed.value = rng.getrandbits(32) or 1
        budget = 1000 + 20 * (job["ideal_cycles"] + len(job["load"]))
        dut.bench_budget.value = min(budget, (1 << 32) - 1)
        dut.bench_go.value = 1
        await self.tick()
        dut.bench_go.value = 0
        outputs, times = [], []
        monitor = cocotb.start_soon(self._collect(outputs, times))
        await RisingEdge(dut.bench_done)
        monitor.cancel()
        if dut.bench_timeout.value:
            raise AssertionError(f"{job['name']}: timed out after {budget} cycles with "
                                 f"{len(outputs)} of {n_beats} output beats")
        counters = unpack(self.counters_fields, int(dut.counters.value))
        return outputs, counters, times

    async def _collect(self, outputs, times):
        """Each output beat the in-model monitor took, with its time, as its count moves."""
        fields = tile_output_fields(self.config)
        count, data = self.dut.bench_out_count, self.dut.bench_out_data
        while True:
            await count.value_change
            seen = int(count.value)
            if seen == 0:           # the count's reset at bench_go
                continue
            assert seen == len(outputs) + 1, (f"monitor skipped output beats: count {seen} "
                                              f"after {len(outputs)}")
            outputs.append(unpack(fields, int(data.value))["outputs"])
            times.append(sim_time_ns())


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
        if tb.in_model:
            # Load and run are one step inside the model: the run's time counts both.
            loaded = time.monotonic()
            outputs, counters, times = await tb.run_in_model(job, rng)
        else:
            await tb.load(job, rng)
            loaded = time.monotonic()
            outputs, counters, times = await tb.run(job, rng)
        ran = time.monotonic()
        if job.get("corrupt") is not None:  # mutation check: prove that this checker can fail
            beat, element, bit = job["corrupt"]
            outputs[beat][element] = to_signed(outputs[beat][element] ^ (1 << bit),
                                               tile_output_fields(config)[0].width)
        mismatches = [(s, p, got, exp)
                      for s, (got_beat, exp_beat) in enumerate(zip(outputs, job["expected"]))
                      for p, (got, exp) in enumerate(zip(got_beat, exp_beat)) if got != exp]
        failed = len(errors)
        # A streaming tile's error bits: the cause in one line (the outputs and counters of a
        # run cut short by a fetch error mean nothing).
        hw_error = stream_error_message(counters.get("error", 0))
        if hw_error:
            errors.append(f"{job['name']}: {hw_error}")
        if len(outputs) != len(job["expected"]) and not hw_error:
            errors.append(f"{job['name']}: {len(outputs)} output beats, expected "
                          f"{len(job['expected'])}")
        for s, p, got, exp in mismatches[:3] if not hw_error else ():
            errors.append(f"{job['name']} slot {s} PE {p}: hardware {got} != golden {exp}")
        if job["expected_counters"] is not None and not hw_error:
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
                       "check_s": time.monotonic() - ran, "load_beats": len(job["load"]),
                       "driver": "model" if tb.in_model else "python"})
    bench.finish(tb.cycles_simulated)
