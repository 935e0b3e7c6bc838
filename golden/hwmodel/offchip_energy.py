"""Off-chip energy per bit read, for each memory preset of :data:`golden.hwmodel.offchip.
MEMORY_PRESETS` (docs/efficiency.md, "Off-chip energy per bit").

**Method**: the IDD method of Micron's technical note TN-40-07 "Calculating Memory Power for
DDR4 SDRAM" (the equations DRAMPower implements), applied to the IDD currents and timings of a
part's DRAMPower memspec, for a layer image streamed sequentially (every activated row read to
its end):

- read burst: ``sum over rails of V * (IDD4R - IDD3N) * tCK`` per clock, which carries
  ``data_rate * width`` bits;
- row activation and precharge: ``sum over rails of V * (IDD0 * tRC - IDD3N * tRAS - IDD2N *
  (tRC - tRAS)) * tCK`` per activation, shared by the ``columns * width`` bits of the row.

**Left out** (so the figures are a lower bound of what the memory system spends per bit): the
DQ I/O and termination energy (the DDR4 memspec has no IDDQ; the LPDDR4 memspec's VDDQ rail is
excluded for the same footing), the controller and PHY on the accelerator side, background
power (``IDD3N``/``IDD2N`` for as long as the memory is on, which depends on time, not bytes:
the latency model's cycles times a power, not a per-bit cost) and refresh.

**Parts**: the memspecs ship with DRAMPower (github.com/tukl-msd/DRAMPower, ``memspecs/``). The
closest parts there are one speed bin below the presets' (DDR4-2400 for DDR4-3200, LPDDR4-3200
for LPDDR4-4266); the per-bit burst energy is taken at the memspec's own speed (a faster bin
draws more IDD4R over a shorter tCK; how that nets out is not measured here). No source here
gives the ULX3S SDRAM's IDD currents, so that preset has no figure: :func:`offchip_pj_per_bit`
refuses it rather than guess.
"""

import dataclasses

__all__ = ["DramRail", "DramPart", "DRAM_PARTS", "PRESET_PARTS", "offchip_pj_per_bit",
           "offchip_energy_source"]


@dataclasses.dataclass(frozen=True)
class DramRail:
    """One supply rail of a DRAM part: ``volts`` and its IDD currents in mA."""

    volts: float
    idd0: float
    idd2n: float
    idd3n: float
    idd4r: float


@dataclasses.dataclass(frozen=True)
class DramPart:
    """A DRAM device as its memspec gives it: rails, clock (MHz), timings in clocks (``ras``,
    ``rc``), data width (bits), data rate (transfers per clock), columns per row; and where the
    numbers come from."""

    name: str
    rails: tuple
    clock_mhz: float
    ras: int
    rc: int
    width: int
    data_rate: int
    columns: int
    source: str

    @property
    def tck_ns(self):
        return 1000.0 / self.clock_mhz

    @property
    def burst_pj_per_bit(self):
        """Read-burst energy per bit (pJ): mA x V x ns = pJ per clock, over the clock's bits."""
        per_clock = sum(r.volts * (r.idd4r - r.idd3n) for r in self.rails) * self.tck_ns
        return per_clock / (self.data_rate * self.width)

    @property
    def activation_pj(self):
        """Energy of one activate-precharge pair (pJ), background subtracted."""
        rc, ras = self.rc, self.ras
        return sum(r.volts * (r.idd0 * rc - r.idd3n * ras - r.idd2n * (rc - ras))
                   for r in self.rails) * self.tck_ns

    @property
    def row_bits(self):
        return self.columns * self.width

    @property
    def pj_per_bit(self):
        """Burst energy plus the row's activation shared by its bits (pJ per bit read)."""
        return self.burst_pj_per_bit + self.activation_pj / self.row_bits

    def to_dict(self):
        return {"part": self.name, "pj_per_bit": self.pj_per_bit,
                "burst_pj_per_bit": self.burst_pj_per_bit,
                "activation_pj": self.activation_pj, "row_bits": self.row_bits,
                "source": self.source}


_METHOD = ("Micron TN-40-07 IDD method (read burst V*(IDD4R-IDD3N)*tCK per clock + one "
           "activate/precharge per row), device core rails only: no DQ I/O/termination, PHY, "
           "background or refresh")

#: The parts, from their DRAMPower memspecs (module docstring).
DRAM_PARTS = {
    "MICRON_4Gb_DDR4-2400_8bit_A": DramPart(
        name="MICRON_4Gb_DDR4-2400_8bit_A",
        rails=(DramRail(volts=1.2, idd0=60.75, idd2n=38.25, idd3n=44.0, idd4r=184.5),),
        clock_mhz=1200, ras=39, rc=55, width=8, data_rate=2, columns=1024,
        source="DRAMPower memspecs/MICRON_4Gb_DDR4-2400_8bit_A.json (VDD rail; its VPP rail "
               "has no IPP3N and is left out); " + _METHOD),
    "MICRON_6Gb_LPDDR4-3200_32bit_A": DramPart(
        name="MICRON_6Gb_LPDDR4-3200_32bit_A",
        rails=(DramRail(volts=1.8, idd0=3.5, idd2n=2.0, idd3n=2.25, idd4r=2.25),
               DramRail(volts=1.1, idd0=45.0, idd2n=27.0, idd3n=30.0, idd4r=275.0)),
        clock_mhz=1600, ras=68, rc=97, width=16, data_rate=2, columns=1024,
        source="DRAMPower memspecs/MICRON_6Gb_LPDDR4-3200_32bit_A.json (VDD1 and VDD2 rails, "
               "a 16-bit channel; VDDQ left out); " + _METHOD),
}

#: Which part each memory preset's energy comes from (None: no source, refused).
PRESET_PARTS = {
    "ddr4_3200_x64": "MICRON_4Gb_DDR4-2400_8bit_A",
    "lpddr4_4266_x32": "MICRON_6Gb_LPDDR4-3200_32bit_A",
    "ddr4_3200_x64_contended": "MICRON_4Gb_DDR4-2400_8bit_A",
    "ulx3s_sdram": None,
}


def offchip_pj_per_bit(preset):
    """Energy per bit read (pJ) of memory preset ``preset``.

    Raises
    ------
    ValueError
        For an unknown preset, or one without a sourced figure (the ULX3S SDRAM): ``"no
        sourced off-chip energy per bit for 'ulx3s_sdram' ..."``.
    """
    if preset not in PRESET_PARTS:
        raise ValueError(f"unknown memory preset {preset!r}; choose one of "
                         f"{', '.join(PRESET_PARTS)}")
    part = PRESET_PARTS[preset]
    if part is None:
        raise ValueError(f"no sourced off-chip energy per bit for {preset!r} (no IDD currents "
                         f"of its SDRAM in a source used here): left out of energy reports")
    return DRAM_PARTS[part].pj_per_bit


def offchip_energy_source(preset):
    """The part and source behind :func:`offchip_pj_per_bit` of ``preset`` (None if none)."""
    part = PRESET_PARTS.get(preset)
    return None if part is None else DRAM_PARTS[part].to_dict()
