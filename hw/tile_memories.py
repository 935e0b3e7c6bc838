"""The on-chip memories of a tile, built inside it (simulation, ``make verilog``) or left outside
it as ports (``make synth``: the tile's logic is synthesized alone and its memories are reported
in bits, since the OSU cell library has no SRAM and flip-flop memories would swamp the area)."""

import dataclasses
import types

from amaranth.hdl import unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.lib.wiring import In
from amaranth.utils import ceil_log2

from golden.config import check_choice, check_int

__all__ = ["MemorySpec", "TileMemories", "MEMORY_PLACES", "READ_DOMAINS"]

#: ``internal``: amaranth.lib.memory.Memory inside the tile; ``ports``: one top-level port group
#: per memory port, named ``<memory>_rd<k>`` and ``<memory>_wr``.
MEMORY_PLACES = ("internal", "ports")

#: The domains of a read port: ``sync`` (data the cycle after the address), ``comb`` (asynchronous).
READ_DOMAINS = ("sync", "comb")


@dataclasses.dataclass(frozen=True)
class MemorySpec:
    """One memory: ``width`` x ``depth`` bits, its read ports by domain (``"sync"``: data the
    cycle after the address, ``"comb"``: asynchronous), and its write granularity in bits (None:
    whole words).

    Raises
    ------
    TypeError
        If ``width``, ``depth`` or ``granularity`` is not an integer, or ``reads`` not a tuple of
        strings.
    ValueError
        If ``width`` or ``depth`` is not positive, ``reads`` is empty or names another domain
        than ``"sync"``, ``"comb"``, or ``granularity`` does not divide ``width``.
    """
    width: int
    depth: int
    reads: tuple = ("sync",)
    granularity: int = None

    def __post_init__(self):
        check_int("width", self.width, 1)
        check_int("depth", self.depth, 1)
        if not isinstance(self.reads, tuple):
            raise TypeError(f"reads must be a tuple of read domains, not {self.reads!r}")
        if not self.reads:
            raise ValueError("reads must name at least one read port, not ()")
        for domain in self.reads:
            check_choice("reads", domain, READ_DOMAINS)
        if self.granularity is not None:
            check_int("granularity", self.granularity, 1, self.width)
            if self.width % self.granularity:
                raise ValueError(f"granularity must divide width={self.width}, not "
                                 f"{self.granularity}")

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

    Not a component and not a pipeline: it has no latency of its own (a read port's is its
    domain, :attr:`MemorySpec.reads`).

    Parameters
    ----------
    specs : dict
        ``{name: MemorySpec}``; names are strings.
    place : ``"internal"`` or ``"ports"``
        :data:`MEMORY_PLACES`. Positional for ``synth/designs.py``, which calls
        ``TileMemories(specs, "ports")``.

    Raises
    ------
    TypeError
        If ``specs`` is not a dict of names to :class:`MemorySpec`, or ``place`` not a string.
    ValueError
        If ``place`` is not one of ``"internal"``, ``"ports"``.
    """

    def __init__(self, specs, place="internal"):
        if not isinstance(specs, dict) or not all(
                isinstance(name, str) and isinstance(spec, MemorySpec)
                for name, spec in specs.items()):
            raise TypeError(f"specs must be a dict of names to MemorySpec, not {specs!r}")
        self._place = check_choice("place", place, MEMORY_PLACES)
        self._specs = types.MappingProxyType(dict(specs))
        self._reads, self._writes = {}, {}

    @property
    def specs(self):
        """``{name: MemorySpec}`` (a read-only mapping)."""
        return self._specs

    @property
    def place(self):
        """``"internal"`` or ``"ports"`` (read-only)."""
        return self._place

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
