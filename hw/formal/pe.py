"""Formal wrapper of :class:`hw.pe.GoboPE` (the one of the reconstruction, counting rows)."""

from golden.config import GoboConfig

from ..pe import GoboPE
from .properties import Proof
from .reconstruction import ResultStreamFormal

__all__ = ["PROOFS", "SMALL"]

#: Two lanes, four centroids, two reconstruction steps.
SMALL = GoboConfig(lanes=2, index_bits=2, act_bits=2, centroid_bits=2, max_dot_length=4,
                   recon_multipliers=2)


def pe_formal(dut_class=GoboPE, count=True):
    """At most two rows in flight: one in the hand-over bins, one in the output register."""
    return ResultStreamFormal(dut_class=dut_class, config=SMALL, rows=True, count=count,
                              max_outstanding=2)


PROOFS = [
    Proof("pe_stream_rules", lambda: pe_formal(count=False), "prove", 6),
    Proof("pe_row_count", pe_formal, "bmc", 12),
]
