"""`gobo simulate`: one real FC layer through the tile RTL on Verilator, checked bit for bit.

Quantize the matrix, build its layer image, run the tile (the whole-layer ``gobo_tile``, or with
an off-chip ``memory`` the streaming ``gobo_stream_tile``, docs/offchip.md) with seeded (or
given) activations, compare every output element with the golden tile model and every counter
with the cycle model, and measure the float error of the hardware's result against the FP32
layer.
"""

import time

import numpy as np

from golden.hwmodel.tile import saturated_outputs, tile_accumulators
from golden.hwmodel.tile_jobs import layer_job, logical_beats
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
    """
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


def simulate_layer(config, weights, *, bias=None, tokens=4, activations=None, seed=1,
                   name="layer", tag="default", backpressure_probability=0.0,
                   gap_probability=0.0, outlier_fit="gaussian", waves=None, memory=None,
                   base=0):
    """Run one layer on the tile RTL; return the report dict (see ``gobo simulate --help``).

    ``memory`` (an :class:`~golden.hwmodel.offchip.OffchipMemory`): run the streaming tile
    (``gobo_stream_tile``, AXI width ``memory.bus_bytes``) with the layer's off-chip image at byte
    ``base``, served by the bench from that memory model; the report adds ``stall_memory``,
    ``bytes_read`` and the memory's name. Without it: the whole-layer tile.

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
    image, x_int, fp32, job = layer_job(config, weights, activations, bias=bias, seed=seed,
                                        name=name, outlier_fit=outlier_fit, memory=memory,
                                        base=base, gap_probability=gap_probability,
                                        backpressure_probability=backpressure_probability)
    if memory is None:
        design = Design("gobo_tile", config, name=f"gobo_tile_{tag}")
    else:
        design = Design("gobo_stream_tile", config, name=f"gobo_stream_tile_{tag}_"
                        f"bus{memory.bus_bytes}", bus_bytes=memory.bus_bytes)
    try:
        results = run_design(design, [job], name=name, waves=waves)
        failure, wave_file = None, results.get("waves")
    except BenchFailed as e:
        results, failure = e.results or {}, str(e)
        wave_file = str(e.waves) if e.waves else None
    observed = (results.get("jobs") or [{}])[0]
    outputs = observed.get("outputs", [])
    expected = job["expected"]
    mismatches = sum(g != e for got, exp in zip(outputs, expected) for g, e in zip(got, exp))
    mismatches += abs(len(expected) - len(outputs)) * config.pes
    counters = observed.get("counters", {})
    report = {
        "name": name, "shape": list(weights.shape), "tokens": int(x_int.shape[0]),
        "design": design.kind, "config": config.to_dict(),
        "mismatches": mismatches,
        "outputs_checked": sum(len(beat) for beat in outputs),
        "cycles": counters.get("cycles"), "ideal_cycles": job["ideal_cycles"],
        "utilization": (job["ideal_cycles"] / counters["cycles"]) if counters.get("cycles")
        else None,
        "stall_cycles": {k: counters.get(f"stall_{k}") for k in ("outlier", "recon", "output")},
        "busy_per_pe": counters.get("busy"),
        "outliers": image.n_outliers, "outliers_processed": counters.get("outliers"),
        # The numeric contract's saturation counts (docs/numerics.md): outputs clamped to
        # act_bits, biases clamped to bias_bits (0 unless beyond the bias shift's reach).
        "outputs_saturated": saturated_outputs(config, tile_accumulators(image, x_int),
                                               image.out_shift),
        "bias_saturated": image.bias_saturated, "shift_bias": image.shift_bias,
        "counters_match_model": failure is None or "counter" not in failure,
        **({} if memory is None else {
            "memory": memory.name, "stall_memory": counters.get("stall_memory"),
            "bytes_read": counters.get("bytes_read"), "offchip_bytes": len(job["offchip"]) // 2,
            "row_blocks": image.blocks}),
        "expected_counters": job["expected_counters"],
        "sim_cycles_per_s": results.get("sim_cycles_per_s"),
        "wall_s": time.monotonic() - started,
        "waves": wave_file,
        "error": failure,
    }
    if outputs and len(outputs) == len(expected):
        y = logical_beats(image, outputs, x_int.shape[0])
        hw = y * 2.0 ** image.exponents["outputs"]
        report["rel_rmse_vs_fp32"] = float(np.sqrt(np.mean((hw - fp32) ** 2)) / np.std(fp32))
    return report

