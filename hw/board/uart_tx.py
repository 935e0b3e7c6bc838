"""UART transmitter: 8 data bits, no parity, 1 stop bit (8N1), least significant bit first."""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .uart_rx import UartParams

__all__ = ["UartTx"]


class UartTx(UartParams, wiring.Component):
    """Send each byte of ``i`` on the pin ``tx`` as a start bit, 8 data bits and a stop bit,
    ``divisor`` clocks each; ``i.ready`` is high while the line is idle (the stop bit ends
    before the next byte is taken, so bytes go back to back at 10 bits each).

    ``tx`` is the low bit of a shift register that fills with ones: a flop, never a glitch.

    Parameters
    ----------
    divisor : int
        Clocks per bit (4 .. 65535).

    Members
    -------
    i : ``In(stream.Signature(8))``
        Bytes to send.
    tx : ``Out(1)``
        The serial line (idle high).
    """

    def __init__(self, *, divisor):
        self._init_divisor(divisor)
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        divisor = self._divisor
        shreg = Signal(10, init=(1 << 10) - 1)
        left = Signal(range(11))      # bits still to send, the one on the line included
        timer = Signal(range(divisor))
        m.d.comb += self.tx.eq(shreg[0])

        with m.If(left == 0):
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid):
                m.d.sync += [shreg.eq(Cat(Const(0, 1), self.i.payload, Const(1, 1))),
                             left.eq(10), timer.eq(divisor - 1)]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Else():
            m.d.sync += [shreg.eq(Cat(shreg[1:], Const(1, 1))), left.eq(left - 1),
                         timer.eq(divisor - 1)]
        return m
