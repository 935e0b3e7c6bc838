"""On-chip SRAM in 0.18 um: area and energy per access of a ``width x depth`` memory, built
from published SRAM macros (docs/efficiency.md, "The SRAM model").

**Source.** The GlobalFoundries GF180MCU SRAM macros of Google's open GF180MCU PDK
(repository ``google/globalfoundries-pdk-ip-gf180mcu_fd_ip_sram``, Apache-2.0, macro release 1.0
of 2014-06-20; datasheets ``cells/<macro>/<macro>.rst`` with ``specs/*.csv``, liberty files
``<macro>__tt_025C_1v80.lib``): synchronous single-port macros of 64, 128, 256 and 512 words x
8 bits (column mux 8, bit write mask), "180nm 5V Green" process, 13.5 um^2 6T bitcell, periphery
in 5 V transistors. The figures used are the datasheets' at the typical corner, 1.8 V, 25 C (the
corner of the OSU 0.18 um library the logic is mapped to, typical, 1.8 V):

- area: section 6.0 "Physical Dimensions" (equal to the liberty's ``area`` and the LEF ``SIZE``);
- energy per access: section 4.3 "1.8V Power", "AC Read" and "AC Write" in uW at 1 MHz, i.e. pJ
  per access (equal to the liberty's CLK ``internal_power`` for ``!CEN & GWEN`` and
  ``!CEN & !GWEN``); the datasheet's read condition is "all address input and data output pins
  switch", its write condition "all data input pins switch": worst-case data, not average;
- leakage: the liberty's ``cell_leakage_power`` (mW) at tt_025C_1v80.

No scaling: same node, same voltage and corner as the logic. It is a different foundry's 0.18 um
process from the OSU library's (a 5 V-capable "MCU" process with a large bitcell), so its area
per bit is several times a dense 0.18 um logic-process compiler's; :data:`BITCELL_UM2` gives the
floor (bitcells alone, no periphery) for a bound.

**Method** (:func:`sram`). A memory is a grid of one macro type, as a designer on that PDK would
tile it: ``ceil(width / 8)`` macros side by side for the word, and for the depth the smallest
published macro that holds it, or, deeper than 512 words, ``ceil(depth / 512)`` rows of the
512-word macro. An access enables one row of macros (the others have ``CEN`` high: their clock
energy, 8e-5 pJ in the liberty, is left out), so its energy is ``ceil(width / 8)`` times the
macro's; the area is the sum of the macros'. Not counted: the address decoder and output
multiplexer between macro rows and the wires to them (the grid's glue logic, which a compiler's
single macro or CACTI would include): for deep memories the energy is a lower bound.
"""

import dataclasses
import math

from golden.config import check_int

__all__ = ["SramMacro", "SramEstimate", "GF180_SRAM_MACROS", "GF180_SRAM_SOURCE", "BITCELL_UM2",
           "sram", "bitcell_floor_um2"]

GF180_SRAM_SOURCE = (
    "GF180MCU SRAM macro datasheets, google/globalfoundries-pdk-ip-gf180mcu_fd_ip_sram (release "
    "1.0, 2014-06-20), typical corner 1.8 V 25 C: section 6.0 area, section 4.3 AC Read/Write "
    "power at 1 MHz (uW = pJ per access), liberty tt_025C_1v80 leakage")

#: The datasheet's bitcell: "180nm 5V Green CMOS 13.5um2 6 transistors bitcell".
BITCELL_UM2 = 13.5


@dataclasses.dataclass(frozen=True)
class SramMacro:
    """One published macro: ``words x width`` bits, its area (um^2), energy per read and per
    write access (pJ) and leakage (nW)."""

    name: str
    words: int
    width: int
    area_um2: float
    read_pj: float
    write_pj: float
    leakage_nw: float

    @property
    def bits(self):
        return self.words * self.width


#: The four GF180MCU macros at TT 1.8 V 25 C (module docstring), smallest first.
GF180_SRAM_MACROS = (
    SramMacro("gf180mcu_fd_ip_sram__sram64x8m8wm1", 64, 8, 100571.5568, 84.3399, 92.043,
              16.99488),
    SramMacro("gf180mcu_fd_ip_sram__sram128x8m8wm1", 128, 8, 116118.5168, 88.7733, 96.498,
              26.0946),
    SramMacro("gf180mcu_fd_ip_sram__sram256x8m8wm1", 256, 8, 147212.4368, 93.51, 102.006,
              44.2944),
    SramMacro("gf180mcu_fd_ip_sram__sram512x8m8wm1", 512, 8, 209400.2768, 103.176, 112.563,
              80.6994),
)


@dataclasses.dataclass(frozen=True)
class SramEstimate:
    """A ``width x depth`` memory as a grid of ``columns x rows`` copies of ``macro``: its area
    (um^2), energy of one full-width read and write (pJ) and leakage (nW)."""

    width: int
    depth: int
    macro: SramMacro
    columns: int
    rows: int

    @property
    def bits(self):
        return self.width * self.depth

    @property
    def macros(self):
        return self.columns * self.rows

    @property
    def area_um2(self):
        return self.macros * self.macro.area_um2

    @property
    def read_pj(self):
        return self.columns * self.macro.read_pj

    @property
    def write_pj(self):
        return self.columns * self.macro.write_pj

    @property
    def leakage_nw(self):
        return self.macros * self.macro.leakage_nw

    @property
    def area_per_bit_um2(self):
        return self.area_um2 / self.bits

    def to_dict(self):
        """JSON-ready figures (um^2, pJ, nW) and the grid."""
        return {"width": self.width, "depth": self.depth, "bits": self.bits,
                "macro": self.macro.name, "grid": f"{self.columns} x {self.rows}",
                "macros": self.macros, "area_um2": self.area_um2,
                "area_per_bit_um2": self.area_per_bit_um2, "read_pj": self.read_pj,
                "write_pj": self.write_pj, "leakage_nw": self.leakage_nw,
                "bitcell_floor_um2": bitcell_floor_um2(self.bits)}


def sram(width, depth, macros=GF180_SRAM_MACROS):
    """The :class:`SramEstimate` of a ``width``-bit, ``depth``-word single-port memory tiled
    from ``macros`` (all of one width, smallest first; the module docstring gives the method).

    Raises
    ------
    TypeError, ValueError
        ``"width must be a positive integer, not 0"`` (likewise ``depth``).
    """
    check_int("width", width, 1)
    check_int("depth", depth, 1)
    fits = [m for m in macros if m.words >= depth]
    macro = fits[0] if fits else macros[-1]
    return SramEstimate(width=width, depth=depth, macro=macro,
                        columns=math.ceil(width / macro.width),
                        rows=math.ceil(depth / macro.words))


def bitcell_floor_um2(bits):
    """``bits`` x :data:`BITCELL_UM2`: the bitcells alone, a floor no SRAM of that cell beats."""
    return bits * BITCELL_UM2
