"""A generic formal wrapper: the stream rules on every output stream of any component whose
input streams obey them and whose other inputs hold still (the MAC PE, the decompressor)."""

from amaranth.hdl import Assume, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In

from golden.config import mac_flavour

from ..decompressor import Decompressor
from ..mac_pe import MacPE
from .properties import FormalWrapper, Proof, raw, stream_rules

__all__ = ["StreamRulesFormal", "PROOFS"]


def _is_stream(member):
    return not member.is_port and isinstance(member.signature, stream.Signature)


class StreamRulesFormal(FormalWrapper):
    """Every ``In`` stream of ``dut`` is a free top-level stream assumed to obey the stream
    rules; every ``Out`` stream's ``ready`` is free and its rules are asserted; every other
    input port is free but assumed to hold still (a static dictionary)."""

    def __init__(self, dut):
        self._dut = dut
        members = {}
        for name, member in dut.signature.members.items():
            if _is_stream(member):
                if member.flow == wiring.In:
                    members[name] = In(stream.Signature(getattr(dut, name).payload.shape()))
                else:
                    members[f"{name}_ready"] = In(1)
            elif member.is_port and member.flow == wiring.In:
                members[name] = In(member.shape)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        self.no_reset(m)
        m.submodules.dut = dut = self._dut
        started = Signal(name="started")
        m.d.sync += started.eq(1)
        for name, member in dut.signature.members.items():
            theirs = getattr(dut, name)
            if _is_stream(member) and member.flow == wiring.In:
                ours = getattr(self, name)
                m.d.comb += [theirs.valid.eq(ours.valid),
                             raw(theirs.payload).eq(raw(ours.payload)),
                             ours.ready.eq(theirs.ready)]
                stream_rules(m, theirs, name=name, check=Assume)
            elif _is_stream(member):
                m.d.comb += theirs.ready.eq(getattr(self, f"{name}_ready"))
                stream_rules(m, theirs, name=name)
            elif member.is_port and member.flow == wiring.In:
                ours = raw(getattr(self, name))
                held = Signal.like(ours, name=f"{name}_held")
                m.d.sync += held.eq(ours)
                m.d.comb += raw(theirs).eq(ours)
                with m.If(started):
                    m.d.comb += Assume(ours == held)
        return m


#: Small MAC flavours: 4-bit weights and activations, two lanes.
MAC_SMALL = mac_flavour("w4a4", lanes=2, pes=2, max_dot_length=4, max_rows=4, max_tokens=2)


PROOFS = [
    Proof("mac_pe_stream_rules", lambda: StreamRulesFormal(MacPE(config=MAC_SMALL[0],
                                                                 weight_bits=MAC_SMALL[1])),
          "prove", 6),
    Proof("decompressor_stream_rules", lambda: StreamRulesFormal(
        Decompressor(config=MAC_SMALL[0], weight_bits=MAC_SMALL[1])), "prove", 6),
]
