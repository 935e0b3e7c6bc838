"""`gobo simulate`: one real FC layer through the tile RTL on Verilator, checked bit for bit.

Quantize the matrix, build its layer image, run the tile (the whole-layer ``gobo_tile``, or with
an off-chip ``memory`` the streaming ``gobo_stream_tile``, docs/offchip.md; with ``weight_bits``
the MAC baseline's ``mac_tile`` or ``mac_stream_tile`` on its dense layer, or the
memory-compression ``compressed_tile`` or ``compressed_stream_tile`` on its GOBO form) with
seeded (or given) activations, compare every output element with the golden tile model and
every counter with the cycle model, and measure the float error of the hardware's result
against the FP32 layer.
"""

import sys
import time

import numpy as np

from golden.config import design_fields
from golden.hwmodel.mac_error import rel_rmse
from golden.hwmodel.mac_tile import mac_tile_accumulators
from golden.hwmodel.offchip import OffchipMemory
from golden.hwmodel.passes import partial_sum_bytes, pass_columns, passes_outputs
from golden.hwmodel.tile import saturated_outputs, tile_accumulators
from golden.hwmodel.tile_jobs import layer_job, logical_beats
from golden.hwmodel.token_groups import sum_counters
from hw.designs import Design

from .runner import BenchFailed, build_design, run_bench
from .tile_driver import wrap_tile, wrappable

__all__ = ["simulate_layer", "build", "build_tile", "run_design"]


def build(design):
    """Build ``design`` (a registered :class:`hw.designs.Design`) for Verilator; returns the
    build folder (cached by the hash of its Verilog). A whole-layer tile run by the tile bench
    is built with the in-model driver and monitor around it (:mod:`sim.tile_driver`)."""
    verilog = design.verilog()
    if design.entry.bench == "sim.tile_bench" and wrappable(verilog, design.name):
        verilog = wrap_tile(verilog, design.name)
    return build_design(verilog, design.name)


def run_design(design, jobs, *, name="run", waves=None, waves_on_failure=True):
    """Run bench ``jobs`` (made by the design kind, e.g. ``design.example()``) on the RTL of
    ``design`` with its kind's cocotb bench; returns the bench's results (``waves``,
    ``waves_on_failure``: see :func:`sim.runner.run_bench`).

    Raises
    ------
    hw.designs.DesignError
        If the kind has no RTL bench.
    sim.runner.BenchFailed
        On any mismatch, cycle-count error, timeout or crash.
    ValueError
        For a streaming job whose memory is faster than the bench's AXI RAM can follow
        (:func:`sim.stream_tile_bench.check_axi_ram_latency`), before anything is built.
    """
    timed = [job for job in jobs if "memory" in job and job.get("axi_pauses") is None]
    if timed:
        from sim.stream_tile_bench import check_axi_ram_latency  # imports cocotb: only here
        for job in timed:
            check_axi_ram_latency(OffchipMemory(**job["memory"]))
    vectors = design.vectors(jobs)
    return run_bench(build(design), design.name, design.entry.bench, vectors, name=name,
                     waves=waves, waves_on_failure=waves_on_failure)


def build_tile(config, tag, *, weight_bits=None, compressed=False):
    """Build the GOBO tile (or, with ``weight_bits``, the MAC baseline tile; with ``compressed``
    its memory-compression mode) for Verilator; returns ``(build_dir, toplevel)``."""
    if weight_bits is None:
        design = Design("gobo_tile", config, name=f"gobo_tile_{tag}")
    else:
        kind = "compressed_tile" if compressed else "mac_tile"
        design = Design(kind, config, weight_bits, name=f"{kind}_{tag}")
    return build(design), design.name


#: Ideal cycles above which :func:`simulate_layer` prints what it is doing (this project's
#: choice: the models take a second or more from about here).
PROGRESS_CYCLES = 100_000


def simulate_layer(config, weights, *, bias=None, tokens=4, activations=None, seed=1,
                   name="layer", tag="default", backpressure_probability=0.0,
                   gap_probability=0.0, outlier_fit="gaussian", waves=None, memory=None,
                   base=0, weight_bits=None, compressed=False):
    """Run one layer on the tile RTL; return the report dict (see ``gobo simulate --help``).

    ``memory`` (an :class:`~golden.hwmodel.offchip.OffchipMemory`): run the streaming tile
    (``gobo_stream_tile``, AXI width ``memory.bus_bytes``) with the layer's off-chip image at byte
    ``base``, served by the bench from that memory model; the report adds ``stall_memory``,
    ``bytes_read`` and the memory's name. Without it: the whole-layer tile. ``weight_bits``: the
    MAC baseline (``config`` and ``weight_bits`` of :func:`golden.config.mac_flavour`) on the
    layer quantized to dense weights (:func:`golden.hwmodel.tile_jobs.calibrated_mac_layer`),
    the whole-layer ``mac_tile`` or with ``memory`` the streaming ``mac_stream_tile``; its
    report has no outliers (``outliers`` and ``outliers_processed`` are None). ``weight_bits``
    and ``compressed``: the memory-compression tile (``compressed_tile``, with ``memory``
    ``compressed_stream_tile``, docs/offchip.md section 8) on the layer's GOBO quantization
    (``outlier_fit``) at ``weight_bits``; ``outliers`` counts its GOBO form's outliers, which
    its decompressor writes (``outliers_processed`` None). The report's ``config`` lists the
    fields the design uses (:func:`golden.config.design_fields`). On a streaming tile
    more than ``config.max_tokens`` tokens run in token groups (docs/offchip.md section 4),
    jobs of one simulation of one build: every group's outputs and counters are checked, the
    report's counters are the groups' sums and ``token_groups`` lists each group's. A GOBO
    layer wider than ``config.max_dot_length`` (up to ``max_passes`` times) runs as passes
    (docs/offchip.md section 10), each pass a job of each group, its partial sums fed back by
    the bench and checked too; the report adds ``passes`` and ``carry_bytes`` (the partial
    sums written and read back).

    ``outlier_fit`` is the quantizer's (:func:`golden.quant.quantizer.quantize`); the index width
    and outlier threshold are ``config``'s. ``waves``: trace the run into an FST file (default:
    the ``WAVES`` environment variable); a failing run names one in ``error`` and ``waves``
    either way (:func:`sim.runner.run_bench`)."""
    weights = np.asarray(weights, dtype=np.float32)
    if weights.ndim != 2:
        raise ValueError(f"{name}: the weights must be a 2-D matrix, not shape {weights.shape}")
    if activations is None:
        activations = np.random.default_rng(seed).standard_normal((tokens, weights.shape[1]))
    activations = np.asarray(activations, dtype=np.float64)
    if activations.ndim != 2 or activations.shape[1] != weights.shape[1]:
        raise ValueError(f"{name}: activations must be (tokens, {weights.shape[1]}), "
                         f"not {activations.shape}")
    started = time.monotonic()
    # Ideal cycles: the models step about that many; only runs that take a while say so (a
    # small bad layer still ends in its one-line error alone).
    ideal_work = (len(activations) * -(-weights.shape[0] // config.pes)
                  * -(-weights.shape[1] // config.lanes))
    talk = ideal_work >= PROGRESS_CYCLES
    if talk:
        print(f"[sim] {name}: quantizing {weights.shape[0]}x{weights.shape[1]} and computing "
              f"the expected outputs and counters of {len(activations)} tokens (golden and "
              f"cycle models)", file=sys.stderr, flush=True)
    image, x_int, fp32, jobs = layer_job(config, weights, activations, bias=bias, seed=seed,
                                         name=name, outlier_fit=outlier_fit, memory=memory,
                                         base=base, gap_probability=gap_probability,
                                         backpressure_probability=backpressure_probability,
                                         weight_bits=weight_bits, compressed=compressed)
    gobo = weight_bits is None
    datapath = "gobo" if gobo else "compressed" if compressed else "mac"
    kind = f"{datapath}_{'tile' if memory is None else 'stream_tile'}"
    if memory is None:
        design = Design(kind, config, weight_bits, name=f"{kind}_{tag}")
    else:
        design = Design(kind, config, weight_bits, name=f"{kind}_{tag}_bus{memory.bus_bytes}",
                        bus_bytes=memory.bus_bytes)
    passes = len(pass_columns(image.cols, config.max_dot_length)) if gobo else 1
    if passes > 1:
        accumulators = passes_outputs(image, x_int)[1][-1]
        carry_bytes = 2 * (passes - 1) * sum(
            partial_sum_bytes(config, image.rows, job["tokens"]) for job in jobs[::passes])
        print(f"[sim] {name}: {image.cols} columns exceed max_dot_length="
              f"{config.max_dot_length}: running {passes} passes, partial sums carried at "
              f"acc_bits={config.acc_bits} ({carry_bytes:,} bytes written and read back)",
              file=sys.stderr, flush=True)
    else:
        accumulators = (tile_accumulators if gobo else mac_tile_accumulators)(image, x_int)
    n_groups = len(jobs) // passes
    groups = (f" ({n_groups} token groups of at most {config.max_tokens})" if n_groups > 1
              else "")
    if talk:
        print(f"[sim] {name}: models done in {time.monotonic() - started:.1f} s; simulating "
              f"{sum(job['ideal_cycles'] for job in jobs):,} ideal cycles{groups} on "
              f"{design.name}", file=sys.stderr, flush=True)
    try:
        results = run_design(design, jobs, name=name, waves=waves)
        failure, wave_file = None, results.get("waves")
    except BenchFailed as e:
        results, failure = e.results or {}, str(e)
        wave_file = str(e.waves) if e.waves else None
    observed = results.get("jobs") or []
    observed = observed + [{}] * (len(jobs) - len(observed))
    mismatches = checked = 0
    for job, seen in zip(jobs, observed):
        outputs, expected = seen.get("outputs", []), job["expected"]
        mismatches += sum(g != e for got, exp in zip(outputs, expected)
                          for g, e in zip(got, exp))
        mismatches += abs(len(expected) - len(outputs)) * config.pes
        checked += sum(len(beat) for beat in outputs)
    ran = all(seen.get("counters") for seen in observed)
    # A layer over more tokens than max_tokens runs in token groups; its counters are the sums.
    counters = sum_counters([seen["counters"] for seen in observed]) if ran else {}
    ideal = sum(job["ideal_cycles"] for job in jobs)
    expected_counters = (sum_counters([job["expected_counters"] for job in jobs])
                         if all(job["expected_counters"] for job in jobs) else None)
    report = {
        "name": name, "shape": list(weights.shape), "tokens": int(x_int.shape[0]),
        "design": design.kind, "weight_bits": weight_bits,
        "config": design_fields(config, datapath, streamed=memory is not None),
        "mismatches": mismatches,
        "outputs_checked": checked,
        "cycles": counters.get("cycles"), "ideal_cycles": ideal,
        "utilization": (ideal / counters["cycles"]) if counters.get("cycles") else None,
        "stall_cycles": {k: counters.get(f"stall_{k}") for k in ("outlier", "recon", "output")},
        "busy_per_pe": counters.get("busy"),
        "outliers": (image.n_outliers if gobo else
                     len(image.compressed["outliers"]) if compressed else None),
        "outliers_processed": counters.get("outliers") if gobo else None,
        # The numeric contract's saturation counts (docs/numerics.md): outputs clamped to
        # act_bits, biases clamped to bias_bits (0 unless beyond the bias shift's reach).
        "outputs_saturated": saturated_outputs(config, accumulators, image.out_shift),
        "bias_saturated": image.bias_saturated, "shift_bias": image.shift_bias,
        "counters_match_model": failure is None or "counter" not in failure,
        **({} if memory is None else {
            "memory": memory.name, "stall_memory": counters.get("stall_memory"),
            "bytes_read": counters.get("bytes_read"),
            "offchip_bytes": sum(len(job["offchip"]) // 2 for job in jobs[:passes]),
            "row_blocks": image.blocks,
            "token_groups": [_group_record(job, seen) for job, seen in zip(jobs, observed)]}),
        **({} if passes == 1 else {
            "passes": passes, "carry_bytes": carry_bytes,
            "stall_carry": counters.get("stall_carry")}),
        "expected_counters": expected_counters,
        "sim_cycles_per_s": results.get("sim_cycles_per_s"),
        "wall_s": time.monotonic() - started,
        "waves": wave_file,
        "error": failure,
    }
    if all(len(seen.get("outputs", [])) == len(job["expected"])
           for job, seen in zip(jobs, observed)):
        # The outputs are the last pass's of each group (the others are partial sums).
        y = np.concatenate([logical_beats(image, seen["outputs"], job["tokens"])
                            for job, seen in zip(jobs[passes - 1::passes],
                                                 observed[passes - 1::passes])])
        hw = y * 2.0 ** image.exponents["outputs"]
        report["rel_rmse_vs_fp32"] = rel_rmse(hw, fp32)   # None for constant outputs
    return report


def _group_record(job, seen):
    """One token group of a streaming run: its tokens, the bench's mismatch count, its cycles,
    ``stall_memory``, ``bytes_read`` and ideal cycles, and whether every counter equals the
    cycle model's (None when the job was run with backpressure: then not timed)."""
    counters = seen.get("counters") or {}
    expected = job["expected_counters"]
    return {"name": job["name"], "tokens": job["tokens"], "mismatches": seen.get("mismatches"),
            **{k: counters.get(k) for k in ("cycles", "stall_memory", "bytes_read")},
            "ideal_cycles": job["ideal_cycles"],
            "counters_match_model": None if expected is None else
            bool(counters) and all(counters[k] == v for k, v in expected.items())}
