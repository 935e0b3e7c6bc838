"""A design kind that exists only in this file, registered once, is picked up by the emitter
(``gobo verilog``), synthesis (``synth.run.run_all``), RTL simulation
(``sim.simulate.run_design``) and the generic test (``tests.test_designs.check_kind``) with no
other edit: the registry is the one place a design is described."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden.config import preset
from golden.hwmodel.mac import mac_cycles
from golden.hwmodel.packing import pe_beats
from golden.hwmodel.pe_jobs import pe_vectors, seeded_activations
from hw import testing
from hw.designs import KINDS, Design, DesignKind, register
from hw.layouts import pe_input_layout
from tests.test_designs import check_kind


class ActivationSum(wiring.Component):
    """Test-only design: the sum of each dot product's activations (indexes ignored), one
    cycle after its ``last`` beat."""

    def __init__(self, *, config):
        self.config = config
        super().__init__({"i": In(stream.Signature(pe_input_layout(config))),
                          "o": Out(stream.Signature(signed(config.bin_bits)))})

    def elaborate(self, platform):
        m = Module()
        acc = Signal(signed(self.config.bin_bits))
        total = sum(self.i.payload.acts[lane] for lane in range(self.config.lanes))
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            with m.If(self.i.payload.last):
                m.d.sync += [self.o.payload.eq(acc + total), self.o.valid.eq(1), acc.eq(0)]
            with m.Else():
                m.d.sync += acc.eq(acc + total)
        return m


def _example(design, seed):
    config, rows, n = design.config, 5, 3 * design.config.lanes + 1
    rng = np.random.default_rng(seed)
    acts = [seeded_activations(config, n, seed + r) for r in range(rows)]
    beats = [b for a in acts for b in pe_beats(config, rng.integers(0, 8, size=n), a)]
    return {"name": "activation_sum", "seed": seed, "rows": rows, "centroids": None,
            "beats": [format(b, "x") for b in beats],
            "expected": [int(a.sum()) for a in acts],
            "expected_cycles": mac_cycles(config, n, rows, 1),
            "gap_probability": 0.0, "backpressure_probability": 0.0, "corrupt": None}


@pytest.fixture(scope="module")
def activation_sum():
    entry = DesignKind(
        "activation_sum", "test only: sum of the activations of each dot product",
        create=lambda design, memories: ActivationSum(config=design.config),
        example=_example, run=testing.run_pe_job, bench="sim.pe_bench",
        vectors=lambda design, jobs: pe_vectors(design.config, jobs,
                                                out_bits=design.config.bin_bits))
    register(entry)
    yield Design("activation_sum", preset("tiny"), name="activation_sum_tiny")
    del KINDS["activation_sum"]


def test_the_generic_test_takes_a_new_kind(activation_sum):
    check_kind(activation_sum)


def test_the_emitter_takes_a_new_kind(activation_sum, tmp_path, capsys):
    from gobo.cli import main
    assert main(["verilog", "--out", str(tmp_path), "--kind", "activation_sum", "--preset",
                 "tiny", "--lint"]) == 0
    assert "activation_sum_tiny.v: activation_sum" in capsys.readouterr().out
    assert "module activation_sum_tiny(" in (tmp_path / "activation_sum_tiny.v").read_text()


def test_synthesis_takes_a_new_kind(activation_sum, tmp_path):
    from synth.designs import synth_design
    from synth.run import run_all
    design = synth_design("activation_sum", "activation_sum_tiny", activation_sum.config)
    result = run_all([design], tmp_path, None, 1, seeds=(), cache=False)["activation_sum_tiny"]
    assert result["kind"] == "activation_sum" and result["transistors"]["count"] > 0


def test_rtl_simulation_takes_a_new_kind(activation_sum):
    from sim.simulate import run_design
    job = activation_sum.example(seed=7)
    results = run_design(activation_sum, [job], name="extension")
    assert results["jobs"][0]["outputs"] == job["expected"]
    assert results["jobs"][0]["cycles"] == job["expected_cycles"]
