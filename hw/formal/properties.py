"""Property helpers shared by the formal wrappers: the stream rules as assertions (on a
component's outputs) or assumptions (on what its environment offers it)."""

import dataclasses

from amaranth.hdl import Assert, Assume, Module, ResetSignal, Signal
from amaranth.lib import wiring

__all__ = ["Proof", "ENGINE", "FormalWrapper", "stream_rules", "raw"]

ENGINE = "smtbmc yices"


@dataclasses.dataclass(frozen=True)
class Proof:
    """One property set of one wrapper: ``make()`` returns the wrapper; ``mode`` is ``"prove"``
    (k-induction, ``depth`` the induction length, unbounded) or ``"bmc"`` (bounded: holds for
    the first ``depth`` cycles after reset)."""
    name: str
    make: object
    mode: str
    depth: int

    def describe(self):
        kind = "k-induction" if self.mode == "prove" else "bounded"
        return f"{ENGINE}, {self.mode} ({kind}), depth {self.depth}"


def raw(value):
    """The bits of a payload (a view or a value)."""
    return value.as_value() if hasattr(value, "as_value") else value


def stream_rules(m, stream, *, name, check=Assert):
    """Once ``valid`` is high without ``ready``, ``valid`` and the payload hold in the next
    cycle: no valid dropped, no payload changed before its transfer. ``check`` is
    :class:`~amaranth.hdl.Assert` for a stream the component drives, ``Assume`` for one its
    environment drives."""
    stalled = Signal(name=f"{name}_stalled")
    held = Signal.like(raw(stream.payload), name=f"{name}_held")
    m.d.sync += [stalled.eq(stream.valid & ~stream.ready), held.eq(raw(stream.payload))]
    with m.If(stalled):
        m.d.comb += [check(stream.valid, f"{name}: valid dropped before ready"),
                     check(raw(stream.payload) == held, f"{name}: payload changed while stalled")]


class FormalWrapper(wiring.Component):
    """A formal top: ``signature`` holds the free inputs (sby leaves top-level inputs
    unconstrained every cycle); subclasses build the component in :meth:`elaborate` and call
    :meth:`no_reset` (the properties are about the running design, from the reset state that
    the flip-flops' initial values give)."""

    def stream_dut(self):
        """``(m, dut)``: a new module without reset holding ``self._dut`` (a component with an
        input stream ``i`` and an output stream ``o``) as ``dut``, its ``i`` driven from this
        wrapper's free ``i`` and its ``o.ready`` from the free ``o_ready``; the stream rules
        assumed on ``i`` (the environment's side) and asserted on ``o``."""
        m = Module()
        self.no_reset(m)
        m.submodules.dut = dut = self._dut
        m.d.comb += [dut.i.valid.eq(self.i.valid), raw(dut.i.payload).eq(raw(self.i.payload)),
                     self.i.ready.eq(dut.i.ready), dut.o.ready.eq(self.o_ready)]
        stream_rules(m, dut.i, name="i", check=Assume)
        stream_rules(m, dut.o, name="o")
        return m, dut

    @staticmethod
    def no_reset(m):
        m.d.comb += Assume(~ResetSignal())
