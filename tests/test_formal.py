"""Every formal property fails on a planted bug. ``make formal`` proves the real components
(hw/formal/runner.py); here each proof runs on a mutant (the component subclassed, one
statement added after its own logic, so the bug wins) and must end in ``FAIL``: a real
counterexample from reset, not merely an induction that could not close."""

import pytest
from amaranth.hdl import Cat, Signal

from hw.accumulators import CentroidAccumulators
from hw.decompressor import Decompressor
from hw.formal import (
    accumulators,
    index_decoder,
    outlier_path,
    pe,
    reconstruction,
    streams,
    tile_controller,
    weight_fetcher,
)
from hw.formal.runner import all_proofs, run_proof
from hw.index_decoder import IndexDecoder
from hw.mac_pe import MacPE
from hw.outlier_path import OutlierSidePath
from hw.pe import GoboPE
from hw.reconstruction import ReconstructionMultiplier
from hw.tile_controller import TileController
from hw.weight_fetcher import WeightFetcher


def mutant(base, bug):
    """``base`` with ``bug(self, m)`` added after its own logic."""
    class Mutant(base):
        def elaborate(self, platform):
            m = base.elaborate(self, platform)
            bug(self, m)
            return m
    Mutant.__name__ = f"{base.__name__}Mutant"
    return Mutant


def _drop_valid_on_stall(stream_name):
    def bug(self, m):
        o = getattr(self, stream_name)
        with m.If(o.valid & ~o.ready):
            m.d.sync += o.valid.eq(0)
    return bug


def _lane1_also_mask0(self, m):
    m.d.comb += self.masks[0][1].eq(1)


def _always_ready(self, m):
    m.d.comb += self.i.ready.eq(1)


def _lose_last_beat_bin0(self, m):
    with m.If(self.i.valid & self.i.ready & self.i.payload.last):
        m.d.sync += self.o.payload[0].eq(0)


def _payload_moves_on_stall(self, m):
    with m.If(self.o.valid & ~self.o.ready):
        m.d.sync += self.o.payload.eq(self.o.payload + 1)


def _ready_every_step(self, m):
    m.d.comb += self.i.ready.eq(self.i.valid)


def _pe_result_zero_on_stall(self, m):
    with m.If(~self.o.ready):
        m.d.comb += self.o.payload.eq(0)


def _read_port_never_holds(self, m):
    m.d.comb += self.outlier_rd.en.eq(1)


def _result_repeated(self, m):
    with m.If(self.o.valid & self.o.ready):
        m.d.sync += self.o.valid.eq(1)


def _side_base_zero_on_stall(self, m):
    with m.If(~self.side.ready):
        m.d.comb += self.side.payload.act_base.eq(0)


def _index_read_never_holds(self, m):
    m.d.comb += self.index_rd.en.eq(1)


def _run_ends_at_first_output(self, m):
    with m.If(self.o.valid & self.o.ready):
        m.d.sync += self.busy.eq(0)


def _bc_valid_all_run(self, m):
    m.d.comb += self.bc.valid.eq(self.busy)


def _input_plus_one(base, name):
    """``base`` elaborated with ``port + 1`` where it reads its input port ``name``."""
    class Mutant(base):
        def elaborate(self, platform):
            port = getattr(self, name)
            setattr(self, name, port + 1)
            try:
                return super().elaborate(platform)
            finally:
                setattr(self, name, port)
    Mutant.__name__ = f"{base.__name__}{name.title()}PlusOne"
    return Mutant


# The streamed gates let block ``loaded`` through (``b <= loaded``, not ``b < loaded``).
_GateOffByOne = _input_plus_one(TileController, "loaded")


class _ReleaseEarly(TileController):
    """``merged`` one block ahead: the bank of the block in the merge is released while its
    slots are still being merged."""

    def elaborate(self, platform):
        port = self.merged
        self.merged = Signal.like(port, name="merged_true")
        try:
            m = super().elaborate(platform)
        finally:
            inner, self.merged = self.merged, port
        m.d.comb += port.eq(inner + 1)
        return m


def _arlen_zero_on_stall(self, m):
    stalled = Signal(name="mutant_stalled")
    m.d.sync += stalled.eq(self.axi.arvalid & ~self.axi.arready)
    with m.If(stalled):
        m.d.comb += self.axi.arlen.eq(0)


def _bursts_of_two(self, m):
    m.d.comb += self.axi.arlen.eq(1)


def _arid_one(self, m):
    m.d.comb += self.axi.arid.eq(1)


def _rready_low_when_offered(self, m):
    m.d.comb += self.axi.rready.eq(~self.axi.rvalid)


# The fetcher's gate one block early (``b <= merged + 2``): block ``b + 2`` is requested, and
# written into the bank of block ``b``, before the merge has released it.
_FetcherGateOffByOne = _input_plus_one(WeightFetcher, "merged")


def _outlier_words_at_0(self, m):
    m.d.comb += self.outlier_wr.addr.eq(0)


def _loaded_at_bias(self, m):
    with m.If(self.bias_wr.en):
        m.d.sync += self.loaded.eq(self.loaded + 1)


def _first_beat_lost(self, m):
    m.d.comb += self.weight_wr.data.eq(Cat(self.axi.rdata, self.axi.rdata))


def _fetcher(proof, bug=None, dut_class=WeightFetcher, **kwargs):
    """A weight fetcher proof on a mutant fetcher (``bug`` added to ``dut_class``)."""
    dut_class = mutant(dut_class, bug) if bug else dut_class
    if proof.endswith("axi_rules"):
        kwargs.update(config=weight_fetcher.WIDE, bus_bytes=weight_fetcher.WIDE_BUS,
                      layout=False)
    if "dense" in proof:
        kwargs.update(weight_bits=weight_fetcher.DENSE_BITS)
    return proof, lambda: weight_fetcher.FetcherFormal(dut_class=dut_class, **kwargs)


def _streamed(dut_class):
    """The streamed controller's gates proof on a mutant controller class."""
    return ("tile_controller_streamed_gates",
            lambda: tile_controller.TileControllerFormal(streamed=True, dut_class=dut_class))


PROOFS = {proof.name: proof for proof in all_proofs()}

# (proof, wrapper with the mutant, what the bug does)
MUTANTS = {
    "decoder_two_masks": ("index_decoder_l3_i2", lambda: index_decoder.IndexDecoderFormal(
        lanes=3, index_bits=2, dut_class=mutant(IndexDecoder, _lane1_also_mask0))),
    "accumulators_drop_valid": ("accumulators_stream_rules", lambda: accumulators
                                .AccumulatorsFormal(data=False, dut_class=mutant(
                                    CentroidAccumulators, _drop_valid_on_stall("o")))),
    "accumulators_overwrite_handover": ("accumulators_bins", lambda: accumulators
                                        .AccumulatorsFormal(dut_class=mutant(
                                            CentroidAccumulators, _always_ready))),
    "accumulators_last_beat_lost": ("accumulators_bins", lambda: accumulators.AccumulatorsFormal(
        dut_class=mutant(CentroidAccumulators, _lose_last_beat_bin0))),
    "reconstruction_payload_moves": ("reconstruction_stream_rules", lambda: reconstruction
                                     .ResultStreamFormal(count=False, dut_class=mutant(
                                         ReconstructionMultiplier, _payload_moves_on_stall))),
    "reconstruction_early_accept": ("reconstruction_result", lambda: reconstruction
                                    .ResultStreamFormal(data=True, dut_class=mutant(
                                        ReconstructionMultiplier, _ready_every_step))),
    "pe_payload_moves": ("pe_stream_rules", lambda: pe.pe_formal(
        dut_class=mutant(GoboPE, _pe_result_zero_on_stall), count=False)),
    "pe_rows_lost": ("pe_row_count", lambda: pe.pe_formal(dut_class=mutant(GoboPE,
                                                                          _always_ready))),
    "outlier_drop_valid": ("outlier_path_stream_rules", lambda: outlier_path.OutlierPathFormal(
        count=False, dut_class=mutant(OutlierSidePath, _drop_valid_on_stall("o")))),
    "outlier_word_lost_in_hold": ("outlier_path_records", lambda: outlier_path
                                  .OutlierPathFormal(dut_class=mutant(
                                      OutlierSidePath, _read_port_never_holds))),
    "outlier_command_dropped": ("outlier_path_records", lambda: outlier_path.OutlierPathFormal(
        dut_class=mutant(OutlierSidePath, _always_ready))),
    "outlier_result_duplicated": ("outlier_path_records", lambda: outlier_path
                                  .OutlierPathFormal(dut_class=mutant(
                                      OutlierSidePath, _result_repeated))),
    "controller_bc_payload_moves": ("tile_controller_stream_rules", lambda: tile_controller
                                 .TileControllerFormal(dut_class=mutant(
                                     TileController, _index_read_never_holds))),
    "controller_side_payload_moves": ("tile_controller_stream_rules", lambda: tile_controller
                                      .TileControllerFormal(dut_class=mutant(
                                          TileController, _side_base_zero_on_stall))),
    "controller_o_drop_valid": ("tile_controller_stream_rules", lambda: tile_controller
                                .TileControllerFormal(dut_class=mutant(
                                    TileController, _drop_valid_on_stall("o")))),
    "controller_run_ends_early": ("tile_controller_slots", lambda: tile_controller
                                  .TileControllerFormal(slots=True, dut_class=mutant(
                                      TileController, _run_ends_at_first_output))),
    "controller_gate_off_by_one": _streamed(_GateOffByOne),
    "controller_bc_before_loaded": _streamed(mutant(TileController, _bc_valid_all_run)),
    "controller_releases_early": _streamed(_ReleaseEarly),
    "controller_streamed_o_drop_valid": (
        "tile_controller_streamed_stream_rules", lambda: tile_controller.TileControllerFormal(
            streamed=True, gates=False, dut_class=mutant(TileController,
                                                         _drop_valid_on_stall("o")))),
    "controller_streamed_bc_payload_moves": (
        "tile_controller_streamed_stream_rules", lambda: tile_controller.TileControllerFormal(
            streamed=True, gates=False, dut_class=mutant(TileController,
                                                         _index_read_never_holds))),
    "controller_streamed_run_ends_early": (
        "tile_controller_streamed_slots", lambda: tile_controller.TileControllerFormal(
            streamed=True, gates=False, slots=True, dut_class=mutant(
                TileController, _run_ends_at_first_output))),
    "fetcher_arlen_moves_on_stall": _fetcher("weight_fetcher_axi_rules", _arlen_zero_on_stall),
    "fetcher_rready_low": _fetcher("weight_fetcher_axi_rules", _rready_low_when_offered),
    "fetcher_dense_arid_one": _fetcher("weight_fetcher_dense_axi_rules", _arid_one),
    "fetcher_dense_bursts_of_two": _fetcher("weight_fetcher_dense_axi_rules", _bursts_of_two),
    "fetcher_gate_off_by_one": _fetcher("weight_fetcher_layout",
                                        dut_class=_FetcherGateOffByOne),
    "fetcher_outlier_words_at_0": _fetcher("weight_fetcher_layout", _outlier_words_at_0),
    "fetcher_bursts_of_two": _fetcher("weight_fetcher_layout", _bursts_of_two),
    "fetcher_dense_loaded_early": _fetcher("weight_fetcher_dense_layout", _loaded_at_bias),
    "fetcher_dense_first_beat_lost": _fetcher("weight_fetcher_dense_layout",
                                              _first_beat_lost),
    "fetcher_dense_gate_off_by_one": _fetcher("weight_fetcher_dense_layout",
                                              dut_class=_FetcherGateOffByOne),
    "mac_pe_drop_valid": ("mac_pe_stream_rules", lambda: streams.StreamRulesFormal(
        mutant(MacPE, _drop_valid_on_stall("o"))(config=streams.MAC_SMALL[0],
                                                  weight_bits=streams.MAC_SMALL[1]))),
    "decompressor_always_ready": ("decompressor_stream_rules", lambda: streams.StreamRulesFormal(
        mutant(Decompressor, _always_ready)(config=streams.MAC_SMALL[0],
                                            weight_bits=streams.MAC_SMALL[1]))),
}


def test_every_proof_has_a_mutant():
    assert {proof for proof, _ in MUTANTS.values()} >= set(PROOFS) - {"index_decoder_l4_i3"}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_fails_its_proof(name, tmp_path):
    proof_name, make = MUTANTS[name]
    passed, _, log = run_proof(PROOFS[proof_name], tmp_path, wrapper=make())
    assert not passed, f"{name}: {proof_name} still passes"
    assert "DONE (FAIL" in log, f"{name}: no counterexample from reset\n{log[-2000:]}"
