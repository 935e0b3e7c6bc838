"""The board-independent top: UART pins, the host link and the GOBO tile (docs/board.md)."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..params import ConfigParams
from ..tile import GoboTile
from .link import HostLink
from .uart_rx import UartRx
from .uart_tx import UartTx

__all__ = ["BoardTop"]


class BoardTop(ConfigParams, wiring.Component):
    """A :class:`~hw.tile.GoboTile` behind a UART host link: what goes on an FPGA board, and
    what the board bench (``sim/board_bench.py``) simulates pin for pin.

    Parameters
    ----------
    config : :class:`~golden.config.GoboConfig`
        The tile's configuration (must pass ``check_tile``).
    clocks_per_bit : int
        UART divisor: the clock frequency over the baud rate (25 MHz / 1 Mbaud = 25 on the
        ULX3S; 4 .. 8 in simulation).
    load_buffer : int
        Load beats per ``LOAD`` request (:class:`~hw.board.link.HostLink`).

    Members
    -------
    rx : ``In(1)``
        Serial line from the host (idle high).
    tx : ``Out(1)``
        Serial line to the host (idle high).
    busy : ``Out(1)``
        The tile runs (for an LED).
    """

    def __init__(self, *, config, clocks_per_bit, load_buffer=16):
        self._init_config(config)
        self._link = HostLink(config=config, clocks_per_bit=clocks_per_bit,
                              load_buffer=load_buffer)
        self._clocks_per_bit = clocks_per_bit
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1)})

    @property
    def link(self):
        """The :class:`~hw.board.link.HostLink` (its ``sizes``, ``info_word()``); read-only."""
        return self._link

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = uart_rx = UartRx(divisor=self._clocks_per_bit)
        m.submodules.uart_tx = uart_tx = UartTx(divisor=self._clocks_per_bit)
        m.submodules.link = link = self._link
        m.submodules.tile = tile = GoboTile(config=self._config)
        m.d.comb += [
            uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx),
            link.link_error.eq(uart_rx.frame_error | uart_rx.overrun),
            tile.layer.eq(link.layer), tile.start.eq(link.start),
            link.busy.eq(tile.busy), link.counters.eq(tile.counters), self.busy.eq(tile.busy),
        ]
        wiring.connect(m, uart_rx.o, link.rx)
        wiring.connect(m, link.tx, uart_tx.i)
        wiring.connect(m, link.load, tile.load)
        wiring.connect(m, tile.o, link.o)
        return m
