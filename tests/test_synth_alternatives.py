"""`gobo synth --alternatives`'s comparison (synth/alternatives.py) from fixed figures: the
slowdown folded into area per operation, the ratios to the present PE and to the MAC PE, the
verdict that can go either way, and the CLI refusing a --preset."""

import numpy as np
import pytest

from golden.config import PRESETS
from golden.hwmodel.pe import pe_cycles
from synth.alternatives import alternatives_markdown, alternatives_report, slowdown, stall_table
from synth.designs import alternative_designs


def _result(design, area, fmax):
    return {**design.describe(), "asic_area": {"area_um2": area}, "timing": {"fmax_mhz": fmax}}


def _indexes():
    """Two small 'matrices': one whose beats all put 16 lanes on one bin (stall at K < 16),
    one uniform (no stall at K = 8)."""
    return {"all_one_bin": np.zeros((4, 32), dtype=np.int64),
            "spread": np.tile(np.arange(8), (4, 4))}


def test_alternatives_fold_the_stall_slowdown_and_give_a_verdict():
    designs = alternative_designs(act_bits=(8,))
    assert [d.kind for d in designs] == ["gobo_pe", "gobo_pe_collision", "gobo_pe_spill",
                                         "mac_pe"]
    indexes = _indexes()
    # Collision PE, K = 8: the all-one-bin beats take 2 cycles, the spread ones 1. Rows of 2
    # beats are handed over every recon_cycles = 8: the present PE takes 3 * 8 + 2 + 9 = 35
    # cycles per matrix; the all-one-bin rows' 4 cycles add 2, less the first beat's extra one.
    slow = slowdown(designs[1], indexes)
    c = designs[0].config
    assert slow == (35 + 1 + 35) / 70
    assert slowdown(designs[0], indexes) == 1.0 and slowdown(designs[2], indexes) == 1.0
    areas = {"gobo_pe": 1000.0, "gobo_pe_collision": 700.0, "gobo_pe_spill": 990.0,
             "mac_pe": 800.0}
    results = {d.name: _result(d, areas[d.kind], 100.0) for d in designs}
    comp = alternatives_report(designs, results, indexes)
    rows = {r["design"]: r for r in comp["rows"]}
    collision = rows[designs[1].name]
    assert collision["ops_per_cycle"] == pytest.approx(c.lanes / slow)
    assert collision["area_per_op_um2"] == pytest.approx(700.0 * slow / c.lanes)
    assert collision["area_per_op_um2_over_mac"] == pytest.approx(700.0 * slow / 800.0)
    verdicts = {v["design"]: v["verdict"] for v in comp["verdicts"]}
    assert verdicts[designs[2].name] == "beats the present PE"           # 0.99x, no slowdown
    assert verdicts[designs[1].name] == ("beats the present PE" if 700.0 * slow < 1000.0
                                         else "does not beat the present PE")
    # A slower clock alone turns the spill PE's verdict.
    results[designs[2].name]["timing"]["fmax_mhz"] = 98.0
    comp = alternatives_report(designs, results, indexes)
    assert {v["design"]: v["verdict"] for v in comp["verdicts"]}[designs[2].name] == \
        "does not beat the present PE"
    md = alternatives_markdown({"note": "n", "generated": "now", "wall_seconds": 1.0,
                                "comparison": comp})
    assert "does not beat the present PE" in md and "all_one_bin" in md


def test_stall_table_counts_stalled_beats():
    config = PRESETS["minilm"]
    table = stall_table(config, _indexes(), bin_inputs=(8, 16))
    one_bin_k8 = next(r for r in table if r["matrix"] == "all_one_bin" and r["bin_inputs"] == 8)
    assert (one_bin_k8["stalled_beats"], one_bin_k8["cycles_per_beat"]) == (1.0, 2.0)
    assert all(r["stalled_beats"] == 0.0 for r in table if r["bin_inputs"] == 16)
    spread_k8 = next(r for r in table if r["matrix"] == "spread" and r["bin_inputs"] == 8)
    assert spread_k8["slowdown"] == 1.0


def test_cli_alternatives_take_no_preset(capsys):
    from gobo.cli import main
    assert main(["synth", "--out", "x", "--alternatives", "--preset", "lanes4"]) == 2
    assert "--alternatives synthesizes its own designs" in capsys.readouterr().err


def test_cli_malformed_scheduler_stops_first(capsys, tmp_path):
    """A --scheduler address without a port ends in one line naming the option, before the
    liberty is fetched or any design is listed."""
    from gobo.cli import main
    assert main(["synth", "--out", str(tmp_path / "r"), "--alternatives", "--scheduler",
                 "nonsense"]) == 2
    err = capsys.readouterr().err
    assert err == ("gobo: error: --scheduler nonsense: missing port number in address "
                   "'nonsense' (give e.g. tcp://host:8786)\n"), err
    assert not (tmp_path / "synth").exists()


def test_sweep_takes_the_alternatives():
    from synth.designs import PE_ALTERNATIVES, sweep_designs
    present = sweep_designs()
    both = sweep_designs(kinds=("gobo_pe", *PE_ALTERNATIVES))
    assert len(both) == 3 * len(present)
    assert [d.name for d in both if d.kind == "gobo_pe"] == [d.name for d in present]
    assert "gobo_pe_spill_l16_i3_a8_m1" in {d.name for d in both}


def test_power_script_jobs_match_the_golden_models(load_script):
    """scripts/pe_alternatives_power.py's jobs (run on the gate netlists by the PE bench): every
    expected output equals the golden model computed another way (all rows x tokens at once),
    the cycles the cycle models, and the zero twin expects zeros."""
    from golden.hwmodel.fixedpoint import to_fixed
    from golden.hwmodel.layer_image import quantize_activations
    from golden.hwmodel.mac import mac_dot, quantize_symmetric
    from golden.hwmodel.pe import pe_dot
    from golden.quant.quantizer import quantize
    script = load_script("pe_alternatives_power")
    weights, acts = script.real_inputs(rows=3, tokens=2)
    assert acts.shape == (2, 384)
    for design in alternative_designs(act_bits=(8,)):
        c = design.config
        job, vectors, ops = script.job_of(design, weights, acts, 3, zero=False)
        x = quantize_activations(c, acts)[0]
        if design.kind == "mac_pe":
            w, _ = quantize_symmetric(weights[:3], design.weight_bits)
            want = np.stack([mac_dot(c, design.weight_bits, w, t) for t in x], axis=1)
        else:
            layer = quantize(weights, index_bits=3, outlier_log_prob=c.outlier_log_prob)
            want = pe_dot(c, np.asarray(layer.indexes[:3]), x,
                          to_fixed(layer.centroids, c.centroid_bits)[0])
        assert job["expected"] == want.ravel().tolist()
        assert (ops, len(job["beats"])) == (6 * 384, 6 * 24)
        assert vectors["jobs"] == [job]
        if design.kind != "mac_pe":
            assert job["expected_cycles"] >= pe_cycles(c, 384, 6)
        zero, _, _ = script.job_of(design, weights, acts, 3, zero=True)
        assert set(zero["expected"]) == {0}


def test_power_script_help_and_errors(load_script, capsys):
    """The script's --help ends with an example to paste as it is (one line, not wrapped), and a
    bad --rows or --tokens is named alone."""
    script = load_script("pe_alternatives_power")
    with pytest.raises(SystemExit):
        script.main(["--help"])
    out = capsys.readouterr().out
    assert ("example:\n  .venv/bin/python scripts/pe_alternatives_power.py --out build/reports "
            "--act-bits 8\n") in out, out
    for args, message in ((["--rows", "0"], "--rows must be 1-384, not 0"),
                          (["--tokens", "9"], "--tokens must be 1-7, not 9")):
        with pytest.raises(SystemExit):
            script.main(["--out", "/nonexistent", *args])
        err = capsys.readouterr().err
        assert message in err, err
