"""Synthesis flow: Yosys + OSU 0.18 um area, OpenSTA timing, nextpnr-ecp5 Fmax."""
