"""The boards the GOBO tile is built for (``make bitstream BOARD=...``) and the pin-level top
that puts :class:`~hw.board.top.BoardTop` on one (docs/board.md)."""

import dataclasses

from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io

from golden.config import preset

from .top import BoardTop

__all__ = ["Board", "BOARDS", "DEFAULT_BOARD", "board", "PinTop"]


@dataclasses.dataclass(frozen=True)
class Board:
    """One supported board: its ``amaranth-boards`` platform class (by module and name, imported
    only to build), the GOBO preset that fits it, the UART's baud rate and the clock."""
    name: str
    platform_module: str
    platform_class: str
    preset: str
    baud: int
    clock_hz: int
    why: str

    @property
    def config(self):
        return preset(self.preset)

    @property
    def clocks_per_bit(self):
        """UART divisor; the baud rate is chosen so that it is exact."""
        return self.clock_hz // self.baud

    def platform(self):
        import importlib
        return getattr(importlib.import_module(self.platform_module), self.platform_class)()


#: Boards by ``BOARD=`` name.
BOARDS = {
    "ulx3s-85f": Board(
        name="ulx3s-85f", platform_module="amaranth_boards.ulx3s",
        platform_class="ULX3S_85F_Platform", preset="ulx3s",
        # 25 MHz / 1 Mbaud = 25 clocks a bit, exact; the FT231X does 1 Mbaud (3 MHz / 3).
        baud=1_000_000, clock_hz=25_000_000,
        why="widely owned open-hardware ECP5 board; the open flow (Yosys, nextpnr-ecp5, "
            "ecppack) supports the LFE5U-85F fully; its FT231X USB-UART is the host link"),
}

DEFAULT_BOARD = "ulx3s-85f"


def board(name):
    """The :class:`Board` called ``name``.

    Raises
    ------
    ValueError
        ``"unknown board 'x'; choose one of ulx3s-85f"``.
    """
    try:
        return BOARDS[name]
    except KeyError:
        raise ValueError(f"unknown board {name!r}; choose one of {', '.join(BOARDS)}") from None


class PinTop(Elaboratable):
    """:class:`~hw.board.top.BoardTop` on a board's pins: the UART (``uart`` resource 0) and
    LED 0 (lit while the tile runs); the ``sync`` domain is the platform's default clock (the
    board's oscillator, no PLL)."""

    def __init__(self, spec, *, load_buffer=16):
        self.spec = spec
        self.top = BoardTop(config=spec.config, clocks_per_bit=spec.clocks_per_bit,
                            load_buffer=load_buffer)

    def elaborate(self, platform):
        m = Module()
        m.submodules.board = top = self.top
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buffer = rx = io.Buffer("i", uart.rx)
        m.submodules.tx_buffer = tx = io.Buffer("o", uart.tx)
        m.submodules.led_buffer = led = io.Buffer("o", platform.request("led", 0, dir="-"))
        m.d.comb += [top.rx.eq(rx.i), tx.o.eq(top.tx), led.o.eq(top.busy)]
        return m
