"""The on-chip memories of a tile, built inside it (simulation, ``make verilog``) or left outside
it as ports (``make synth``: the tile's logic is synthesized alone and its memories are reported
in bits, since the OSU cell library has no SRAM and flip-flop memories would swamp the area)."""

import dataclasses

from amaranth.hdl import unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.lib.wiring import In
from amaranth.utils import ceil_log2

__all__ = ["MemorySpec", "TileMemories", "MEMORY_PLACES"]

#: ``internal``: amaranth.lib.memory.Memory inside the tile; ``ports``: one top-level port group
#: per memory port, named ``<memory>_rd<k>`` and ``<memory>_wr``.
MEMORY_PLACES = ("internal", "ports")


@dataclasses.dataclass(frozen=True)
class MemorySpec:
    """One memory: ``width`` x ``depth`` bits, its read ports by domain (``"sync"``: data the
    cycle after the address, ``"comb"``: asynchronous), and its write granularity in bits (None:
    whole words)."""
    width: int
    depth: int
    reads: tuple = ("sync",)
    granularity: int = None

    @property
    def bits(self):
        return self.width * self.depth

    def read_signature(self):
        return ReadPort.Signature(addr_width=ceil_log2(self.depth), shape=unsigned(self.width))

    def write_signature(self):
        return WritePort.Signature(addr_width=ceil_log2(self.depth), shape=unsigned(self.width),
                                   granularity=self.granularity)


class TileMemories:
    """The memories ``{name: MemorySpec}`` of a tile, placed ``internal`` or as ``ports``.

    A tile adds :meth:`members` to its signature and calls :meth:`build` in ``elaborate``; it
    then gets, either way, objects that behave like memory ports: ``read(name, k)`` is the
    ``k``-th read port (connect it with :func:`amaranth.lib.wiring.connect` or drive ``addr``
    and read ``data``), ``write(name)`` the write port (drive ``addr``, ``data``, ``en``).
    """

    def __init__(self, specs, place="internal"):
        if place not in MEMORY_PLACES:
            raise ValueError(f"memories must be one of {', '.join(MEMORY_PLACES)}, not {place!r}")
        self.specs = dict(specs)
        self.place = place
        self._reads, self._writes = {}, {}

    def members(self):
        """Signature members of the ``ports`` placement (none when internal)."""
        if self.place == "internal":
            return {}
        members = {}
        for name, spec in self.specs.items():
            for k in range(len(spec.reads)):
                members[f"{name}_rd{k}"] = In(spec.read_signature())
            members[f"{name}_wr"] = In(spec.write_signature())
        return members

    def build(self, m, component):
        """Create the memories (internal) or pick up the component's port members."""
        for name, spec in self.specs.items():
            if self.place == "internal":
                mem = Memory(shape=unsigned(spec.width), depth=spec.depth, init=[])
                m.submodules[f"{name}_mem"] = mem
                self._reads[name] = [mem.read_port(domain=d) for d in spec.reads]
                self._writes[name] = mem.write_port(granularity=spec.granularity)
            else:
                # The component's members face outwards; flipped, they face the tile's logic
                # exactly as the ports of a Memory would.
                self._reads[name] = [wiring.flipped(getattr(component, f"{name}_rd{k}"))
                                     for k in range(len(spec.reads))]
                self._writes[name] = wiring.flipped(getattr(component, f"{name}_wr"))

    def read(self, name, k=0):
        return self._reads[name][k]

    def write(self, name):
        return self._writes[name]

    def report(self):
        """``{name: {width, depth, bits}}`` and the total, for reports that leave memories out."""
        table = {name: {"width": s.width, "depth": s.depth, "bits": s.bits}
                 for name, s in self.specs.items()}
        return {"memories": table, "total_bits": sum(s.bits for s in self.specs.values())}
