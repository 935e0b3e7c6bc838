"""cocotb bench for the streaming tiles, GOBO (hw/stream_tile.py) and MAC (hw/mac_stream_tile.py;
docs/offchip.md sections 8-9): the tile bench's load, run and checks (every output element
against the golden model, every counter against the streaming cycle model), with the off-chip
memory on the bench side. The two tiles share the ports the bench touches (``load`` of
activations, ``layer``, ``base``, ``axi``, ``o``, ``counters`` of
:func:`golden.hwmodel.packing.stream_counters_fields`); a job
(:func:`golden.hwmodel.tile_jobs.stream_tile_job`) carries what differs: the packed load beats
and ``layer`` word, the off-chip bytes (GOBO or dense layout), the golden outputs and counters.

The memory is cocotbext-axi's ``AxiRamRead`` (an AXI4 read slave, its RAM holding the job's
off-chip bytes at ``base``): it accepts the tile's AR requests and serves every R beat (data,
``rlast``, ``rid``). Its timing is the golden memory model's, cycle for cycle: one
:class:`golden.hwmodel.offchip.OffchipPort` (the object the cycle model steps, cycle 0 the run's
first busy cycle) is stepped at every falling clock edge and

- pauses the RAM's R channel in every cycle in which the model offers no beat (the R source
  reads ``pause`` at the rising edge, so setting it half a cycle before is exact);
- drives ``arready``: the AR sink's own ``pause`` is sampled a cycle before the edge it applies
  to, before the tile's ``arvalid`` of the cycle that decides the model's ``arready`` is known,
  so it cannot follow the model exactly (docs/offchip.md section 7). The sink stays paused
  (driving ``arready`` 0 at the edges) and the model's ``arready`` is written half a cycle
  later; the sink samples the wire, so it accepts exactly the requests the model accepts.

Each cycle the bench checks that the RAM offered a beat exactly when the model did, with the
model's ``rlast``: a RAM too slow for the memory's latency (its AR-to-R pipeline,
:data:`AXI_RAM_LATENCY`) is refused up front with a one-line error, never run with wrong
counters. A job's ``corrupt_offchip`` ``(byte, bit)`` flips one bit of the RAM's copy (a
mutation check: the outputs must then differ from the golden model's).

A job with ``axi_pauses`` (``{"seed": int, "probability": p}``) runs the RAM on its own timing
instead: its AR and R channels paused at random (each cycle with probability ``p``, seeded), the
golden model not consulted. The outputs are still the golden model's bit for bit; only the
counters the timing cannot change are the cycle model's (the job's ``expected_counters`` name
them).
"""

import itertools
import logging
import random

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge
from cocotbext.axi import AxiRamRead, AxiReadBus

from golden.config import GoboConfig
from golden.hwmodel.offchip import OffchipMemory, OffchipPort
from golden.hwmodel.packing import pack, stream_counters_fields, tile_output_fields
from golden.hwmodel.passes import CarrySchedule
from sim.bench_io import read_vectors
from sim.tile_bench import TileTestbench, run_jobs

#: Fewest cycles from an accepted AR request (cycle ``c``) to its first R beat that cocotbext-axi
#: 0.1.28's ``AxiRamRead`` can offer: its read process queues the beat in the edge that takes the
#: request, its R source drives it from the next edge on (cycle ``c + 2``). Measured 2026-11-30:
#: with this constant lowered to 1, a latency-1 memory failed the per-cycle check at its first
#: beat; ``tests/test_cocotb_stream_tile.py::test_axi_ram_pipeline_is_two_cycles`` runs latency
#: 2 exact at a beat a cycle and the refusal of 1.
AXI_RAM_LATENCY = 2


def check_axi_ram_latency(memory):
    """Return ``memory`` (an :class:`~golden.hwmodel.offchip.OffchipMemory`) if the bench's RAM
    can follow its timing exactly.

    Raises
    ------
    ValueError
        ``"memory latency 1 is shorter than cocotbext-axi AxiRamRead's AR-to-R pipeline of 2
        cycles; the bench cannot reproduce it exactly"``.
    """
    if memory.latency < AXI_RAM_LATENCY:
        raise ValueError(f"memory latency {memory.latency} is shorter than cocotbext-axi "
                         f"AxiRamRead's AR-to-R pipeline of {AXI_RAM_LATENCY} cycles; the bench "
                         f"cannot reproduce it exactly")
    return memory


class StreamTileTestbench(TileTestbench):
    """The tile bench plus cocotbext-axi's RAM behind ``axi``, timed by the golden model."""

    def __init__(self, dut, config):
        super().__init__(dut, config)
        self.counters_fields = stream_counters_fields(config)
        self.ram = AxiRamRead(AxiReadBus.from_prefix(dut, "axi_"), dut.clk, dut.rst,
                              size=2 ** len(dut.axi__araddr))
        for log in (self.ram.log, self.ram.ar_channel.log, self.ram.r_channel.log):
            log.setLevel(logging.WARNING)     # not a line per burst
        # The sink's own arready stays 0: during a run the model's is written over it (above).
        self.ram.ar_channel.pause = True
        self.ram.r_channel.pause = True
        self.previous = None      # the last run's output beats: a pass's carry (docs/offchip.md 10)

    async def reset(self):
        if hasattr(self.dut, "carry__valid"):
            self.dut.carry__valid.value = 0
        await super().reset()

    async def before_run(self, job):
        data, base = bytes.fromhex(job["offchip"]), job["base"]
        self.dut.base.value = base
        self.ram.write(base, data)
        if job.get("corrupt_offchip") is not None:
            at, bit = job["corrupt_offchip"]
            self.ram.write(base + at, bytes([data[at] ^ (1 << bit)]))
        if job.get("axi_pauses") is None:
            memory = check_axi_ram_latency(OffchipMemory(**job["memory"]))
            cocotb.start_soon(self._memory(OffchipPort(memory, data, base=base), job["name"]))
        else:
            cocotb.start_soon(self._own_timing(**job["axi_pauses"]))
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

    async def _own_timing(self, seed, probability):
        """The RAM's own timing for one run: its AR and R channels paused at random from the
        edge that takes ``start`` until ``busy`` falls."""
        dut, channels = self.dut, (self.ram.ar_channel, self.ram.r_channel)
        rng = random.Random(seed)
        while True:
            await RisingEdge(dut.clk)
            if dut.start.value:
                break
        for channel in channels:
            channel.set_pause_generator(rng.random() < probability for _ in itertools.count())
        while True:
            await RisingEdge(dut.clk)
            if not dut.busy.value:
                break
        for channel in channels:
            channel.clear_pause_generator()
            channel.pause = True

    async def _memory(self, port, name):
        """Idle until the edge that takes ``start``, then ``port``'s cycles while ``busy``, each
        at its falling edge: check the beat the RAM drove against the model's, set ``arready``,
        clock the model with what the tile drove, pause the RAM's R channel for the next cycle.
        (The cycle after the start edge is the first busy cycle, ``port``'s cycle 0.)"""
        dut, r_channel = self.dut, self.ram.r_channel
        # Handles looked up once: this loop runs every cycle of every run.
        busy, arready_wire, arvalid, araddr, arlen = (
            dut.busy, dut.axi__arready, dut.axi__arvalid, dut.axi__araddr, dut.axi__arlen)
        rvalid, rlast, rready = dut.axi__rvalid, dut.axi__rlast, dut.axi__rready
        falling = FallingEdge(dut.clk)
        while True:
            await RisingEdge(dut.clk)
            if dut.start.value:
                break
        arready, beat = port.outputs()
        while True:
            await falling
            arready_wire.value = int(arready)
            offered = bool(rvalid.value)
            if offered != (beat is not None) or (offered and bool(rlast.value) != beat[1]):
                raise AssertionError(
                    f"{name}: cycle {port.cycle}: the AXI RAM drove rvalid={int(offered)} where "
                    f"the memory model offers {'no beat' if beat is None else 'a beat'}")
            port.clock(int(arvalid.value), int(araddr.value), int(arlen.value),
                       int(rready.value))
            running = busy.value
            arready, beat = port.outputs()
            r_channel.pause = beat is None
            if not running:
                break
        arready_wire.value = 0
        r_channel.pause = True
        if not r_channel.empty():
            raise AssertionError(f"{name}: the AXI RAM holds beats the run did not take")


@cocotb.test(timeout_time=1800, timeout_unit="sec")
async def stream_tile_matches_golden(dut):
    """Every output element equals the golden model's (GOBO or MAC tile); counters equal the
    streaming cycle model's (with the job's memory)."""
    vectors = read_vectors()
    await run_jobs(dut, StreamTileTestbench(dut, GoboConfig(**vectors["config"])), vectors)
