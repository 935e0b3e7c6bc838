"""The tile RTL as the host's FC layer: the ``tile(name, image, acts)`` hook of
:class:`golden.accel.encoder.AcceleratedEncoder` run on the Verilated tile (docs/model.md,
"A sentence through the RTL").

Each call is one FC layer of one batch: its layer image and the exact integer activations
``(T, N)`` of every real token. The tile holds at most ``max_tokens`` tokens per run, so the
tokens go in runs of ``max_tokens`` (the last one shorter; token groups,
:func:`golden.hwmodel.token_groups.token_groups`), all of them jobs of one cocotb
simulation of the cached Verilator build (:func:`sim.simulate.build_tile`), which reloads the
layer for each run. The bench checks every output element against the golden tile model and
every counter against the cycle model; the outputs it read go back to the host unchanged, so the
encoder's own element-by-element check sees exactly what the RTL computed. A failing bench is
recorded (its message names the job, element and, rerun with waves, the waveform) and its
outputs still returned; a run that returned no outputs at all (timeout, crash) raises.
"""

import sys
import time

import numpy as np

from golden.hwmodel.tile_jobs import physical_outputs, tile_job, tile_vectors
from golden.hwmodel.token_groups import token_groups

from .runner import BenchFailed, run_bench
from .simulate import build_tile

__all__ = ["RtlTile", "RtlError"]


class RtlError(RuntimeError):
    """The RTL run of a layer gave no usable outputs (timeout, crash, missing beats)."""


class RtlTile:
    """``tile(name, image, acts) -> (blocks * pes, T)`` on the tile RTL of ``config``.

    Parameters
    ----------
    config : GoboConfig
        The tile (a preset with ``max_tokens``; its ``act_bits`` is the build's).
    tag : str
        Names the Verilator build (``gobo_tile_<tag>``; the preset's name shares the build with
        ``gobo simulate`` and ``scripts/simulate_all.py``).
    progress : callable, optional
        ``progress(record)`` after each layer (the record below).
    corrupt : tuple, optional
        ``(layer name, physical row, token)``: the bench flips the lowest bit of that output as
        it reads it from the RTL (its mutation check, ``job["corrupt"]``), so the bench fails,
        names the element and the waveform, and the host gets the flipped value: proves that
        every check on the way can fail.

    Attributes
    ----------
    build_seconds : float
        Emitting and building the design in this process (near 0 when both were cached).
    layers : list of dict
        One record per call: ``name``, ``shape`` (rows, columns), ``tokens``, ``runs``,
        ``cycles`` and ``ideal_cycles`` (summed over the runs, from the tile's counters and the
        cycle model), ``elements`` (output elements read), ``bench_mismatches``, ``seconds``,
        ``error`` and ``waves`` (None when the bench passed).
    """

    def __init__(self, config, *, tag, progress=None, corrupt=None):
        self.config = config
        started = time.monotonic()
        self.build_dir, self.toplevel = build_tile(config, tag)
        self.build_seconds = time.monotonic() - started
        self.progress = progress
        self.corrupt = corrupt
        self.layers = []

    def __call__(self, name, image, acts):
        acts = np.asarray(acts, dtype=np.int64)
        tokens, step, pes = len(acts), self.config.max_tokens, self.config.pes
        groups = token_groups(tokens, step)
        jobs = [tile_job(image, acts[g.start:g.stop], name=f"{name} tokens {g.start}..{g.stop - 1}")
                for g in groups]
        if self.corrupt is not None and self.corrupt[0] == name:
            _, row, token = self.corrupt
            job = jobs[token // step]
            # output slot (block, token) holds the block's pes values (tile_job's order)
            job["corrupt"] = ((row // pes) * job["tokens"] + token % step, row % pes, 0)
        started = time.monotonic()
        try:
            results = run_bench(self.build_dir, self.toplevel, "sim.tile_bench",
                                tile_vectors(self.config, jobs), name=name.replace(".", "_"))
            error = waves = None
        except BenchFailed as e:
            results, error = e.results or {}, str(e)
            waves = str(e.waves) if e.waves else None
            print(f"[rtl] {name}: the bench failed: {error}", file=sys.stderr, flush=True)
        observed = results.get("jobs") or []
        if len(observed) != len(jobs):
            raise RtlError(f"{name}: the RTL finished {len(observed)} of {len(jobs)} runs: "
                           f"{error or 'no results'}")
        outputs = np.empty((image.blocks * pes, tokens), dtype=np.int64)
        for g, job, seen in zip(groups, jobs, observed):
            try:
                outputs[:, g.start:g.stop] = physical_outputs(
                    image.blocks, pes, seen["outputs"], job["tokens"])
            except ValueError as e:
                raise RtlError(f"{job['name']}: {e}; {error or ''}".rstrip("; ")) from None
        record = {
            "name": name, "shape": [image.rows, image.cols], "tokens": tokens,
            "runs": len(jobs),
            "cycles": sum(seen["counters"]["cycles"] for seen in observed),
            "ideal_cycles": sum(job["ideal_cycles"] for job in jobs),
            "elements": int(outputs.size),
            "bench_mismatches": sum(seen["mismatches"] for seen in observed),
            "seconds": time.monotonic() - started, "error": error, "waves": waves}
        self.layers.append(record)
        if self.progress is not None:
            self.progress(record)
        return outputs
