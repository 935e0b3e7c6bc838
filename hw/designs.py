"""The design registry: one entry per design kind, read by the emitter (``gobo verilog``),
synthesis (``gobo synth``), simulation (:func:`sim.simulate.run_design`) and the generic test
(``tests/test_designs.py``).

In the spirit of ``amaranth.lib.crc`` (one parameter object offering the software reference and
the hardware), a :class:`Design` is a kind plus its parameters (a
:class:`~golden.config.GoboConfig` and, for the baselines, ``weight_bits``), and its
:class:`DesignKind` knows how to

- ``create`` the hardware (an Amaranth component, memories inside or as ports);
- make a bench ``job``: the packed input streams, the golden model's outputs and the cycle
  model's counts (``example`` makes a small one from seeded data);
- ``run`` a job on the component in the Amaranth simulator (a harness of :mod:`hw.testing`) and
  name the cocotb ``bench`` that runs it on Verilator, with the ``vectors`` it reads.

A new design is one :func:`register` call with one :class:`DesignKind`; nothing else changes.
"""

import dataclasses
import hashlib
from typing import Callable

import numpy as np

from golden.config import GoboConfig, mac_flavour, preset
from golden.hwmodel import pe_jobs, tile_jobs
from golden.hwmodel.layer_image import build_layer_image, output_exponent, quantize_activations
from golden.hwmodel.mac_tile import compressed_layer_from_float, mac_layer_from_float

from . import testing
from .tile_memories import TileMemories
from .verilog import emit
from .verilog_cache import cached_text

__all__ = ["DesignKind", "Design", "KINDS", "register", "kind", "DesignError",
           "DEFAULT_BUS_BYTES", "collision_bin_inputs", "spill_beats"]


#: The AXI data width of a streaming design unless given: 16 bytes, the DDR4 and LPDDR4 memory
#: presets' port (golden.hwmodel.offchip.MEMORY_PRESETS).
DEFAULT_BUS_BYTES = 16


class DesignError(ValueError):
    """An unknown design kind or parameters it does not take."""


@dataclasses.dataclass(frozen=True)
class DesignKind:
    """How one kind of design is built, fed, checked and simulated.

    Parameters
    ----------
    name : str
        Registry key; also the prefix of default top-module names.
    summary : str
        One line for ``--help`` and reports.
    create : callable ``(design, memories) -> Component``
        The hardware; ``memories`` is ``"internal"`` or ``"ports"`` (only tiles have memories).
    example : callable ``(design, seed) -> job``
        A small bench job from seeded data: its streams, golden outputs and cycles.
    run : callable ``(component, job, design) -> observed``
        The Amaranth-simulator harness; ``observed`` has ``outputs`` and ``cycles`` or
        ``counters`` in the job's own form.
    bench : str or None
        The cocotb module that runs the job on Verilator (None: no RTL bench yet).
    vectors : callable ``(design, jobs) -> dict`` or None
        What the bench reads (``$GOBO_VECTORS``).
    weight_bits : bool
        Whether the kind takes ``weight_bits`` (the MAC baselines and the decompressor).
    tile : bool
        Whether it has on-chip memories (synthesized as ports, counted in bits).
    cost : callable ``(design) -> int``
        Rough size, to start the largest synthesis jobs first.
    memory_specs : callable ``(design) -> {name: MemorySpec}`` or None
        A tile's memories (:mod:`hw.tile_memories`), without building the tile.
    bus : bool
        Whether it reads off-chip memory over an AXI bus of ``bus_bytes`` (the streaming tiles).
    """

    name: str
    summary: str
    create: Callable
    example: Callable
    run: Callable
    bench: str = None
    vectors: Callable = None
    weight_bits: bool = False
    tile: bool = False
    cost: Callable = None
    memory_specs: Callable = None
    bus: bool = False


#: ``{name: DesignKind}``, in registration order.
KINDS = {}


def register(entry):
    """Add ``entry`` (a :class:`DesignKind`) to :data:`KINDS`; returns it.

    Raises
    ------
    TypeError
        If ``entry`` is not a DesignKind.
    ValueError
        If its name is taken.
    """
    if not isinstance(entry, DesignKind):
        raise TypeError(f"entry must be a DesignKind, not {entry!r}")
    if entry.name in KINDS:
        raise ValueError(f"design kind {entry.name!r} is already registered")
    KINDS[entry.name] = entry
    return entry


def kind(name):
    """The :class:`DesignKind` called ``name``.

    Raises
    ------
    DesignError
        Naming the known kinds.
    """
    try:
        return KINDS[name]
    except KeyError:
        raise DesignError(f"unknown design kind {name!r}; choose one of "
                          f"{', '.join(KINDS)}") from None


@dataclasses.dataclass(frozen=True)
class Design:
    """One design: a kind and its parameters.

    Parameters
    ----------
    kind : str
        A key of :data:`KINDS`.
    config : GoboConfig
    weight_bits : int or None
        For the kinds that take it (``DesignKind.weight_bits``), else None.
    name : str, optional
        The top module (default ``<kind>``).
    bus_bytes : int or None
        Bytes of an AXI R beat, for the kinds that read off-chip memory (``DesignKind.bus``;
        default :data:`DEFAULT_BUS_BYTES`), else None.

    Raises
    ------
    DesignError
        For an unknown kind, ``weight_bits`` given to a kind that takes none or missing, or
        ``bus_bytes`` given to a kind without a bus.
    TypeError
        If ``config`` is not a GoboConfig.
    """

    kind: str
    config: GoboConfig
    weight_bits: int = None
    name: str = None
    bus_bytes: int = None

    def __post_init__(self):
        entry = kind(self.kind)
        if not isinstance(self.config, GoboConfig):
            raise TypeError(f"config must be a GoboConfig, not {self.config!r}")
        if entry.weight_bits != (self.weight_bits is not None):
            raise DesignError(f"design kind {self.kind!r} "
                              f"{'needs' if entry.weight_bits else 'takes no'} weight_bits")
        if self.bus_bytes is not None and not entry.bus:
            raise DesignError(f"design kind {self.kind!r} takes no bus_bytes")
        if entry.bus and self.bus_bytes is None:
            object.__setattr__(self, "bus_bytes", DEFAULT_BUS_BYTES)
        if self.name is None:
            object.__setattr__(self, "name", self.kind)

    @property
    def entry(self):
        return KINDS[self.kind]

    @property
    def is_tile(self):
        return self.entry.tile

    @property
    def pes(self):
        return self.config.pes if self.is_tile else 1

    @property
    def ops_per_cycle(self):
        """MAC-equivalent operations per cycle, ``pes * lanes`` (a GOBO lane adds one activation
        into a bin where a MAC lane multiplies and adds)."""
        return self.pes * self.config.lanes

    def create(self, memories="internal"):
        """The Amaranth component."""
        return self.entry.create(self, memories)

    def verilog(self, memories="internal"):
        """Verilog text with top module :attr:`name` (:func:`hw.verilog.emit`), emitted once
        per design, source and tool version (:mod:`hw.verilog_cache`)."""
        key = {"kind": self.kind, "config": self.config.to_dict(),
               "weight_bits": self.weight_bits, "name": self.name, "memories": memories}
        if self.bus_bytes is not None:
            key["bus_bytes"] = self.bus_bytes
        return cached_text(key, lambda: emit(self.create(memories), self.name))

    def example(self, seed=1):
        """A small bench job from seeded data (see :class:`DesignKind`)."""
        return self.entry.example(self, seed)

    def run(self, job, component=None):
        """``job`` on the component in the Amaranth simulator; returns what it observed."""
        return self.entry.run(self.create() if component is None else component, job, self)

    def vectors(self, jobs):
        """What the cocotb bench reads for ``jobs``.

        Raises
        ------
        DesignError
            If the kind has no RTL bench.
        """
        if self.entry.bench is None:
            raise DesignError(f"design kind {self.kind!r} has no RTL bench")
        return self.entry.vectors(self, jobs)

    def memory_report(self):
        """``{memories: {name: {width, depth, bits}}, total_bits}`` of a tile's on-chip memories
        (None for a design without any)."""
        if self.entry.memory_specs is None:
            return None
        return TileMemories(self.entry.memory_specs(self), "ports").report()

    def describe(self):
        """JSON-ready parameters (reports and sidecars)."""
        return {"kind": self.kind, "config": self.config.to_dict(),
                "weight_bits": self.weight_bits, "lanes": self.config.lanes, "pes": self.pes,
                "ops_per_cycle": self.ops_per_cycle, "act_bits": self.config.act_bits,
                **({"bus_bytes": self.bus_bytes} if self.bus_bytes is not None else {}),
                **({"bin_inputs": collision_bin_inputs(self.config)}
                   if self.kind == "gobo_pe_collision" else {}),
                **({"spill_beats": spill_beats(self.config)}
                   if self.kind == "gobo_pe_spill" else {}),
                "index_bits": None if self.kind in ("mac_pe", "mac_tile", "mac_stream_tile")
                else self.config.index_bits}

    def cost(self):
        return self.entry.cost(self) if self.entry.cost else self.ops_per_cycle

    @staticmethod
    def digest(text):
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def check(job, observed):
    """Mismatches between a job's golden outputs and counts and what a run observed: a list
    of one-line messages, empty when every output element and count agrees."""
    errors = []
    got, want = observed["outputs"], job["expected"]
    if len(got) != len(want):
        errors.append(f"{job['name']}: {len(got)} outputs, golden {len(want)}")
    errors += [f"{job['name']} output {i}: hardware {g} != golden {w}"
               for i, (g, w) in enumerate(zip(got, want)) if g != w][:3]
    for key, name in (("expected_cycles", "cycles"), ("expected_counters", "counters")):
        if job.get(key) is not None and observed.get(name) != job[key]:
            errors.append(f"{job['name']}: {name} {observed.get(name)} != model {job[key]}")
    return errors


# The kinds ---------------------------------------------------------------------------------------

def _rows(seed, rows, cols):
    """Seeded Gaussian float weights with a few heavy-tailed ones (so there are outliers)."""
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((rows, cols)) * 0.05
    weights[rng.random(weights.shape) < 0.01] *= 12
    return weights


def _tile_layer(design, seed):
    """A seeded layer a little over two row blocks by three beats, two tokens, for a tile
    example: ``(float weights, integer activations, e_x, e_y)``."""
    c = design.config
    rows, cols = min(c.max_rows, 2 * c.pes + 1), min(c.max_dot_length, 3 * c.lanes + 1)
    weights = _rows(seed, rows, cols)
    acts = np.random.default_rng(seed + 1).standard_normal((min(c.max_tokens, 2), cols))
    x_int, e_x = quantize_activations(c, acts)
    return weights, x_int, e_x, output_exponent(c, acts @ weights.T)


def _pe_latency(design):
    return design.config.pe_latency if design.kind == "gobo_pe" else design.config.mac_pe_latency


def _pe_example(design, seed):
    c = design.config
    matrix = _rows(seed, 6, min(c.max_dot_length, 3 * c.lanes + 1))
    make = pe_jobs.pe_job if design.kind == "gobo_pe" else (
        lambda config, *a, **k: pe_jobs.mac_job(config, design.weight_bits, *a, **k))
    return make(c, f"{design.name}_example", matrix, rows=6, seed=seed,
                latency=_pe_latency(design))


def collision_bin_inputs(config):
    """Adder-tree inputs per bin of the ``gobo_pe_collision`` kind: half the lanes (at 16 lanes
    0.1-0.4 % of real MiniLM beats stall; docs/efficiency.md, "PE alternatives")."""
    return max(1, config.lanes // 2)


def spill_beats(config):
    """Beats per chunk of the ``gobo_pe_spill`` kind: ``recon_cycles``, the fewest at which the
    reconstruction keeps pace with the bins."""
    return config.recon_cycles


def _pe_alternative_example(design, seed):
    from golden.hwmodel.pe_alternatives import collision_cycles, spill_cycles
    c = design.config
    matrix = _rows(seed, 6, min(c.max_dot_length, 3 * c.lanes + 1))
    if design.kind == "gobo_pe_collision":
        def model(indexes):
            return collision_cycles(c, indexes, collision_bin_inputs(c))
    else:
        def model(indexes):
            return spill_cycles(c, indexes.shape[1], len(indexes), spill_beats(c))
    return pe_jobs.pe_job(c, f"{design.name}_example", matrix, rows=6, seed=seed,
                          latency=c.pe_latency, cycle_model=model)


def _collision_pe(design, memories):
    from .collision_pe import CollisionPE
    return CollisionPE(config=design.config, bin_inputs=collision_bin_inputs(design.config))


def _spill_pe(design, memories):
    from .spill_pe import SpillPE
    return SpillPE(config=design.config, spill_beats=spill_beats(design.config))


def _pe_vectors(design, jobs):
    if design.kind == "gobo_pe":
        return pe_jobs.pe_vectors(design.config, jobs)
    return pe_jobs.mac_vectors(design.config, design.weight_bits, jobs)


def _gobo_pe(design, memories):
    from .pe import GoboPE
    return GoboPE(config=design.config)


def _mac_pe(design, memories):
    from .mac_pe import MacPE
    return MacPE(config=design.config, weight_bits=design.weight_bits)


def _decompressor(design, memories):
    from .decompressor import Decompressor
    return Decompressor(config=design.config, weight_bits=design.weight_bits)


def _decompressor_example(design, seed):
    rng = np.random.default_rng(seed)
    c, w = design.config, design.weight_bits
    top = (1 << (w - 1)) - 1
    centroids = rng.integers(-top - 1, top, size=c.n_centroids, endpoint=True)
    rows = []
    for _ in range(5):
        n = int(rng.integers(1, min(c.max_dot_length, 3 * c.lanes + 2) + 1))
        cols = np.flatnonzero(rng.random(n) < 0.2)
        rows.append((rng.integers(0, c.n_centroids, size=n),
                     [(int(col), int(rng.integers(-top - 1, top + 1))) for col in cols]))
    return pe_jobs.decompressor_job(c, w, centroids, rows, name=f"{design.name}_example",
                                    seed=seed)


def _gobo_tile(design, memories):
    from .tile import GoboTile
    return GoboTile(config=design.config, memories=memories)


def _gobo_tile_example(design, seed):
    weights, x_int, e_x, e_y = _tile_layer(design, seed)
    image = build_layer_image(design.config, weights, act_exponent=e_x, out_exponent=e_y)
    return tile_jobs.tile_job(image, x_int, name=f"{design.name}_example", seed=seed)


def _stream_tile(design, memories):
    from .stream_tile import StreamTile
    return StreamTile(config=design.config, bus_bytes=design.bus_bytes, memories=memories)


def example_memory(bus_bytes, seed=1):
    """The off-chip memory of a streaming tile example: 3 bytes a cycle, 12 cycles of latency,
    two outstanding requests, a refresh of 11 of every 97 cycles and seeded stalls of 1-6
    cycles (probability 1/8): every wait the tile has, in a few hundred cycles."""
    from golden.hwmodel.offchip import OffchipMemory
    return OffchipMemory(bytes_per_cycle=3, latency=12, bus_bytes=bus_bytes, max_outstanding=2,
                         refresh_interval=97, refresh_cycles=11, stall_probability="1/8",
                         stall_max_cycles=6, seed=seed, name="example")


def _stream_tile_example(design, seed):
    """A seeded layer of a streaming tile: a GOBO image, or for a kind with ``weight_bits`` the
    dense layer (the streaming MAC tile) or the memory-compression layer (its streaming tile),
    under :func:`example_memory`."""
    weights, x_int, e_x, e_y = _tile_layer(design, seed)
    if design.weight_bits is None:
        layer = build_layer_image(design.config, weights, act_exponent=e_x, out_exponent=e_y)
    else:
        build = (compressed_layer_from_float if design.kind == "compressed_stream_tile"
                 else mac_layer_from_float)
        layer = build(design.config, design.weight_bits, weights, act_exponent=e_x,
                      out_exponent=e_y)
    bus = design.bus_bytes
    # Just below a 4 KiB boundary: the first block's head is split there.
    return tile_jobs.stream_tile_job(layer, x_int, example_memory(bus, seed),
                                     name=f"{design.name}_example", seed=seed,
                                     base=4096 - 2 * bus)


def _stream_tile_memories(design):
    from .stream_tile import stream_tile_memory_specs
    return stream_tile_memory_specs(design.config)


def _mac_stream_tile(design, memories):
    from .mac_stream_tile import MacStreamTile
    return MacStreamTile(config=design.config, weight_bits=design.weight_bits,
                         bus_bytes=design.bus_bytes, memories=memories)


def _mac_stream_tile_memories(design):
    from .mac_stream_tile import mac_stream_tile_memory_specs
    return mac_stream_tile_memory_specs(design.config, design.weight_bits)


def _compressed_stream_tile(design, memories):
    from .compressed_stream_tile import CompressedStreamTile
    return CompressedStreamTile(config=design.config, weight_bits=design.weight_bits,
                                bus_bytes=design.bus_bytes, memories=memories)


def _compressed_stream_tile_memories(design):
    from .compressed_stream_tile import compressed_stream_tile_memory_specs
    return compressed_stream_tile_memory_specs(design.config, design.weight_bits)


def _mac_tile(design, memories):
    from .compressed_mac_tile import CompressedMacTile
    from .mac_tile import MacTile
    cls = CompressedMacTile if design.kind == "compressed_tile" else MacTile
    return cls(config=design.config, weight_bits=design.weight_bits, memories=memories)


def _mac_tile_example(design, seed):
    weights, x_int, e_x, e_y = _tile_layer(design, seed)
    make = (compressed_layer_from_float if design.kind == "compressed_tile"
            else mac_layer_from_float)
    layer = make(design.config, design.weight_bits, weights, act_exponent=e_x, out_exponent=e_y)
    return tile_jobs.mac_tile_job(layer, x_int, name=f"{design.name}_example", seed=seed)


def _tile_vectors(design, jobs):
    return tile_jobs.tile_vectors(design.config, jobs)


def _gobo_tile_memories(design):
    from .tile import tile_memory_specs
    return tile_memory_specs(design.config)


def _mac_tile_memories(design):
    # The compressed tile's memories are its MAC tile's: the decompressor writes the weights.
    from .mac_tile import mac_tile_memory_specs
    return mac_tile_memory_specs(design.config, design.weight_bits)


def _cost_gobo(design):
    return design.ops_per_cycle * design.config.n_centroids * design.config.act_bits


def _cost_mac(design):
    return design.ops_per_cycle * design.weight_bits * design.config.act_bits


register(DesignKind(
    "gobo_pe", "GOBO PE: index decoder, per-centroid bins, reconstruction",
    create=_gobo_pe, example=_pe_example, run=testing.run_pe_job, bench="sim.pe_bench",
    vectors=_pe_vectors, cost=_cost_gobo))
register(DesignKind(
    "mac_pe", "MAC baseline PE: lanes signed multiply-accumulates per cycle",
    create=_mac_pe, example=_pe_example, run=testing.run_pe_job, bench="sim.pe_bench",
    vectors=_pe_vectors, weight_bits=True, cost=_cost_mac))
register(DesignKind(
    "gobo_pe_collision", "alternative GOBO PE: lanes/2 adder-tree inputs per bin, stalls on "
    "collisions",
    create=_collision_pe, example=_pe_alternative_example, run=testing.run_pe_job,
    cost=_cost_gobo))
register(DesignKind(
    "gobo_pe_spill", "alternative GOBO PE: narrow bins spilled into the reconstruction every "
    "recon_cycles beats",
    create=_spill_pe, example=_pe_alternative_example, run=testing.run_pe_job,
    cost=_cost_gobo))
register(DesignKind(
    "decompressor", "GOBO memory-compression decompressor: indexes + outliers to dense weights",
    create=_decompressor, example=_decompressor_example, run=testing.run_decompressor_job,
    weight_bits=True, cost=lambda d: d.ops_per_cycle * d.weight_bits))
register(DesignKind(
    "gobo_tile", "GOBO tile: PEs, outlier side path, controller, memories",
    create=_gobo_tile, example=_gobo_tile_example, run=testing.run_tile_job,
    bench="sim.tile_bench", vectors=_tile_vectors, tile=True, cost=_cost_gobo,
    memory_specs=_gobo_tile_memories))
register(DesignKind(
    "mac_tile", "MAC baseline tile: MAC PEs on the GOBO tile's schedule, dense weight memory",
    create=_mac_tile, example=_mac_tile_example, run=testing.run_tile_job,
    bench="sim.tile_bench", vectors=_tile_vectors, weight_bits=True, tile=True, cost=_cost_mac,
    memory_specs=_mac_tile_memories))
register(DesignKind(
    "compressed_tile", "memory-compression tile: the decompressor writing a MAC tile's weights",
    create=_mac_tile, example=_mac_tile_example, run=testing.run_tile_job,
    bench="sim.tile_bench", vectors=_tile_vectors, weight_bits=True, tile=True, cost=_cost_mac,
    memory_specs=_mac_tile_memories))

register(DesignKind(
    "gobo_stream_tile", "GOBO streaming tile: the tile's PEs fed row blocks from off-chip memory "
    "over AXI4",
    create=_stream_tile, example=_stream_tile_example, run=testing.run_stream_tile_job,
    bench="sim.stream_tile_bench", vectors=_tile_vectors, tile=True, cost=_cost_gobo,
    memory_specs=_stream_tile_memories, bus=True))
register(DesignKind(
    "mac_stream_tile", "MAC baseline streaming tile: the MAC tile's PEs fed dense row blocks from "
    "off-chip memory over AXI4",
    create=_mac_stream_tile, example=_stream_tile_example, run=testing.run_stream_tile_job,
    bench="sim.stream_tile_bench", vectors=_tile_vectors, weight_bits=True, tile=True,
    cost=_cost_mac, memory_specs=_mac_stream_tile_memories, bus=True))
register(DesignKind(
    "compressed_stream_tile", "memory-compression streaming tile: the GOBO form read over AXI4, "
    "decompressed a row block at a time into dense banks for MAC PEs",
    create=_compressed_stream_tile, example=_stream_tile_example,
    run=testing.run_stream_tile_job, bench="sim.stream_tile_bench", vectors=_tile_vectors,
    weight_bits=True, tile=True, cost=_cost_mac, memory_specs=_compressed_stream_tile_memories,
    bus=True))


#: A small example design of every kind (the ``tiny`` preset; W8A8 for the baselines).
def example_design(name):
    """A small :class:`Design` of kind ``name`` for tests and ``gobo verilog --kind``."""
    entry = kind(name)
    if entry.bus and not entry.weight_bits:
        return Design(name, preset("tiny"), name=f"{name}_tiny", bus_bytes=8)
    if not entry.weight_bits:
        return Design(name, preset("tiny"), name=f"{name}_tiny")
    config, weight_bits = mac_flavour("w8a8", base="tiny")
    return Design(name, config, weight_bits, name=f"{name}_w8a8_tiny",
                  bus_bytes=8 if entry.bus else None)
