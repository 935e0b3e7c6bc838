"""UART receiver: 8 data bits, no parity, 1 stop bit (8N1), least significant bit first."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from golden.config import check_int

__all__ = ["UartRx", "UartParams", "check_divisor"]


def check_divisor(divisor):
    """Return ``divisor`` (clocks per bit) if it is an integer from 4 to 65535: the receiver
    samples each bit in its middle, ``divisor // 2`` clocks after the start bit's edge, which
    needs a few clocks per bit to absorb the synchronizer's two and the edge's one."""
    return check_int("divisor", divisor, 4, 0xFFFF)


class UartParams:
    """Mixin of the UART components: call ``_init_divisor(divisor)`` first in the
    constructor."""

    def _init_divisor(self, divisor):
        self._divisor = check_divisor(divisor)

    @property
    def divisor(self):
        """Clocks per bit (read-only)."""
        return self._divisor


class UartRx(UartParams, wiring.Component):
    """Receive 8N1 bytes from the pin ``rx``.

    The pin goes through a two-flop synchronizer; a falling edge starts a byte, the start bit
    is checked ``divisor // 2`` clocks later (a shorter low pulse is a glitch and ignored), then
    each bit is sampled ``divisor`` clocks after the previous one. A byte whose stop bit is low
    is dropped with a ``frame_error`` pulse; a byte that arrives while the previous one is still
    on offer on ``o`` is dropped with an ``overrun`` pulse (``o`` holds its beat until it
    transfers, as the stream rules want).

    Parameters
    ----------
    divisor : int
        Clocks per bit (4 .. 65535), the clock frequency over the baud rate.

    Members
    -------
    rx : ``In(1)``
        The serial line (idle high).
    o : ``Out(stream.Signature(8))``
        Received bytes.
    frame_error, overrun : ``Out(1)``
        One-cycle pulses when a byte is dropped.
    """

    def __init__(self, *, divisor):
        self._init_divisor(divisor)
        super().__init__({"rx": In(1, init=1), "o": Out(stream.Signature(8)),
                          "frame_error": Out(1), "overrun": Out(1)})

    def elaborate(self, platform):
        m = Module()
        divisor = self._divisor
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)
        timer = Signal(range(divisor))
        shreg = Signal(8)
        bit = Signal(range(8))

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        m.d.sync += [self.frame_error.eq(0), self.overrun.eq(0)]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [timer.eq(divisor - 1), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shreg.eq(Cat(shreg[1:], line)), bit.eq(bit + 1),
                                 timer.eq(divisor - 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    with m.If(~line):
                        m.d.sync += self.frame_error.eq(1)
                    with m.Elif(self.o.valid & ~self.o.ready):
                        m.d.sync += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.o.payload.eq(shreg), self.o.valid.eq(1)]
                    m.next = "IDLE"
        return m
