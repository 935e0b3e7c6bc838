"""A tile's mapped gate netlist (Yosys + ABC on OSU 0.18 um, memories as ports) simulated on
Verilator with the tile's own cocotb bench, its memories put back around it, and every net traced:
the switching activity of a real run for the power analysis (docs/synthesis.md, "Power").

The netlist is the ``memories="ports"`` form that ``make synth`` maps: the tile's logic alone.
:class:`GateLevelTile` has the signature of the ``memories="internal"`` tile (the one
:mod:`sim.tile_bench` drives) and builds the same memories (:class:`hw.tile_memories.TileMemories`)
around an ``Instance`` of the netlist, so the bench runs unchanged and checks every output element
and counter of the gate netlist against the golden model. The cells are Verilog models that
Yosys writes from the liberty's ``function`` and ``ff`` groups (``read_liberty`` without
``-lib``), so the simulated logic is the liberty's.
"""

import re

from amaranth.hdl import ClockSignal, Const, Instance, Module, ResetSignal, Signal, Value
from amaranth.lib import wiring

from hw.tile_memories import TileMemories
from hw.verilog import emit

from .runner import build_design, run_bench

__all__ = ["GateLevelTile", "simulation_netlist", "gate_level_verilog", "run_gate_level"]

_ESCAPED = re.compile(r"\\(\S+)(?=\s)")
_ANONYMOUS = re.compile(r"\b_(\d+)_\b")


def simulation_netlist(netlist):
    """The netlist with every internal name made traceable: Verilator leaves names that start
    with ``_`` (Yosys' ``_123_``) out of its waveforms, and an escaped name with dots
    (``\\pe0.acc[3]``) comes out of the FST split into scopes. Returns ``(text, names)``:
    ``_123_`` becomes ``gu_123`` and ``\\pe0.acc[3]`` ``gx_<k>``; ``names`` maps each new
    name back to the net's own (``_123_``, ``pe0.acc[3]``). Port names are plain identifiers
    and stay."""
    names, escaped = {}, {}

    def escape(m):
        new = escaped.setdefault(m.group(1), f"gx_{len(escaped)}")
        names[new] = m.group(1)
        return new

    def anonymous(m):
        names[f"gu_{m.group(1)}"] = m.group(0)
        return f"gu_{m.group(1)}"

    return _ANONYMOUS.sub(anonymous, _ESCAPED.sub(escape, netlist)), names


def _flat(component):
    """``{port name: (flow, value)}`` of a component's signature, named as in its Verilog."""
    return {"__".join(str(p) for p in path): (member.flow, value)
            for path, member, value in component.signature.flatten(component)}


class GateLevelTile(wiring.Component):
    """The internal-memory tile's ports around an ``Instance`` of its mapped netlist.

    Parameters
    ----------
    design : hw.designs.Design
        A tile design (``gobo_tile``, ``mac_tile``, ``compressed_tile``).
    netlist_top : str
        The netlist's module name (the ports-form Verilog's top, e.g. ``gobo_tile_p2_l16_a16``).

    Raises
    ------
    ValueError
        If ``design`` is not a tile.
    """

    def __init__(self, design, netlist_top):
        if not design.is_tile:
            raise ValueError(f"{design.name} is a {design.kind}, not a tile")
        self._design, self._top = design, netlist_top
        # Only their signatures are used: neither component is elaborated.
        self._outside, inside = design.create("ports"), design.create("internal")
        self._outside._MustUse__silence = inside._MustUse__silence = True
        super().__init__(dict(inside.signature.members))

    def elaborate(self, platform):
        m = Module()
        memories = TileMemories(self._design.entry.memory_specs(self._design), "internal")
        memories.build(m, self)
        mine = _flat(self)
        groups = {f"{name}_rd{k}": memories.read(name, k)
                  for name, spec in memories.specs.items() for k in range(len(spec.reads))}
        groups.update({f"{name}_wr": memories.write(name) for name in memories.specs})
        ports = {"i_clk": ClockSignal(), "i_rst": ResetSignal()}
        for name, (flow, _) in _flat(self._outside).items():
            group, _, field = name.partition("__")
            value = (getattr(groups[group], field) if group in groups else mine[name][1])
            value = Value.cast(value)
            if flow == wiring.Out and isinstance(value, Const):
                # An asynchronous read port's en is the constant 1: the netlist's output is unused.
                value = Signal(len(value), name=f"unused_{name}")
            ports[f"{'i' if flow == wiring.In else 'o'}_{name}"] = value
        m.submodules.netlist = Instance(self._top, **ports)
        return m


def gate_level_verilog(design, netlist, cells, netlist_top):
    """One Verilog text: the wrapper (top module ``gl_<netlist_top>``), the netlist (renamed by
    :func:`simulation_netlist`) and the cell models. Returns ``(text, toplevel, names)``."""
    toplevel = f"gl_{netlist_top}"
    wrapper = emit(GateLevelTile(design, netlist_top), toplevel)
    renamed, names = simulation_netlist(netlist)
    return "\n".join([wrapper, renamed, cells]), toplevel, names


def run_gate_level(design, netlist, cells, netlist_top, jobs, *, name="power"):
    """Build the gate-level tile with FST tracing and run ``jobs`` (the design kind's bench
    jobs) on it; returns the bench's results with ``waves`` (the FST of every net), ``names``
    (:func:`simulation_netlist`'s), the build folder and the build's seconds.

    Raises
    ------
    sim.runner.BenchFailed
        If any output element or counter of the netlist differs from the golden model.
    RuntimeError
        If the Verilator build fails.
    """
    text, toplevel, names = gate_level_verilog(design, netlist, cells, netlist_top)
    build_dir = build_design(text, toplevel, waves=True)
    results = run_bench(build_dir, toplevel, design.entry.bench, design.vectors(jobs), name=name,
                        waves=True)
    seconds = (build_dir / "build_seconds.txt")
    return {**results, "names": names, "build_dir": str(build_dir), "toplevel": toplevel,
            "build_seconds": float(seconds.read_text()) if seconds.exists() else None}
