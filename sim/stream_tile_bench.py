"""cocotb bench for the streaming tiles, GOBO (hw/stream_tile.py) and MAC (hw/mac_stream_tile.py;
docs/offchip.md sections 8-9): the tile bench's load, run and checks (every output element
against the golden model, every counter against the streaming cycle model), with the off-chip
memory on the bench side. The two tiles share the ports the bench touches (``load`` of
activations, ``layer``, ``base``, ``axi``, ``o``, ``counters`` of
:func:`golden.hwmodel.packing.stream_counters_fields`); a job
(:func:`golden.hwmodel.tile_jobs.stream_tile_job`) carries what differs: the packed load beats
and ``layer`` word, the off-chip bytes (GOBO or dense layout), the golden outputs and counters.

The memory is :class:`golden.hwmodel.offchip.OffchipPort`, the object the cycle model steps,
driving the AXI4 read channels (``axi__*``) one cycle at a time from the job's memory parameters
and off-chip bytes, as the Amaranth harness does (:func:`hw.testing.offchip_memory`): its cycle
0 is the run's first busy cycle, so its bandwidth, latency and stalls are the model's cycle for
cycle. (Why not ``cocotbext-axi``'s ``AxiRamRead``: docs/offchip.md section 7.)
"""

import cocotb
from cocotb.triggers import RisingEdge

from golden.config import GoboConfig
from golden.hwmodel.offchip import OffchipMemory, OffchipPort
from golden.hwmodel.packing import pack, stream_counters_fields, tile_output_fields
from golden.hwmodel.passes import CarrySchedule
from sim.bench_io import read_vectors
from sim.tile_bench import TileTestbench, run_jobs


class StreamTileTestbench(TileTestbench):
    """The tile bench plus the off-chip memory behind ``axi``."""

    def __init__(self, dut, config):
        super().__init__(dut, config)
        self.counters_fields = stream_counters_fields(config)
        self.previous = None      # the last run's output beats: a pass's carry (docs/offchip.md 10)

    async def reset(self):
        self.dut.axi__arready.value = 0
        self.dut.axi__rvalid.value = 0
        if hasattr(self.dut, "carry__valid"):
            self.dut.carry__valid.value = 0
        await super().reset()

    async def before_run(self, job):
        self.dut.base.value = job["base"]
        port = OffchipPort(OffchipMemory(**job["memory"]), bytes.fromhex(job["offchip"]),
                           base=job["base"])
        cocotb.start_soon(self._memory(port))
        if job.get("carry") is not None:
            if self.previous is None:
                raise AssertionError(f"{job['name']}: a carry with no run before it")
            fields = tile_output_fields(self.config)
            fed = [list(beat) for beat in self.previous]
            if job.get("corrupt_carry") is not None:   # mutation check: a wrong carry must fail
                beat, element, bit = job["corrupt_carry"]
                fed[beat][element] ^= 1 << bit
            beats = [pack(fields, {"outputs": beat}) for beat in fed]
            cocotb.start_soon(self._carry(beats, CarrySchedule(**job["carry"])))

    async def run(self, job, rng):
        outputs, counters, times = await super().run(job, rng)
        self.previous = [list(beat) for beat in outputs]   # before any mutation check
        return outputs, counters, times

    async def _carry(self, beats, schedule):
        """The previous pass's output beats on ``carry``, beat ``k`` offered from the run's cycle
        ``schedule`` says on (cycle 0 as :meth:`_memory`'s), held until taken."""
        dut = self.dut
        while True:
            await RisingEdge(dut.clk)
            if dut.start.value:
                break
        cycle, k = 0, 0
        while k < len(beats):
            valid = schedule.available(k, cycle)
            dut.carry__valid.value = int(valid)
            if valid:
                dut.carry__payload.value = beats[k]
            await RisingEdge(dut.clk)
            k += valid and bool(dut.carry__ready.value)
            cycle += 1
        dut.carry__valid.value = 0

    async def _memory(self, port):
        """Idle until the edge that takes ``start``, then ``port``'s cycles, one per clock, while
        ``busy``. (Values read right after an edge are those it sampled: the cycle after the
        start edge is the first busy cycle, ``port``'s cycle 0.)"""
        dut = self.dut
        while True:
            await RisingEdge(dut.clk)
            if dut.start.value:
                break
        while True:
            arready, beat = port.outputs()
            dut.axi__arready.value = int(arready)
            dut.axi__rvalid.value = int(beat is not None)
            if beat is not None:
                dut.axi__rdata.value = port.beat_data(beat[0])
                dut.axi__rlast.value = int(beat[1])
            await RisingEdge(dut.clk)
            port.clock(int(dut.axi__arvalid.value), int(dut.axi__araddr.value),
                       int(dut.axi__arlen.value), int(dut.axi__rready.value))
            if not dut.busy.value:
                break
        dut.axi__arready.value = 0
        dut.axi__rvalid.value = 0


@cocotb.test(timeout_time=1800, timeout_unit="sec")
async def stream_tile_matches_golden(dut):
    """Every output element equals the golden model's (GOBO or MAC tile); counters equal the
    streaming cycle model's (with the job's memory)."""
    vectors = read_vectors()
    await run_jobs(dut, StreamTileTestbench(dut, GoboConfig(**vectors["config"])), vectors)
