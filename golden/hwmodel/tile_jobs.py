"""Jobs for the tile bench: a layer (GOBO layer image or MAC tile layer), integer activations,
the golden outputs and counters."""

import numpy as np

from golden.hwmodel.compressed_stream_tile import compressed_stream_tile_cycles
from golden.hwmodel.layer_image import (
    act_beats,
    calibrate,
    calibrated_image,
    layer_word,
    load_beats,
    logical_outputs,
)
from golden.hwmodel.mac_stream_tile import mac_stream_tile_cycles
from golden.hwmodel.mac_tile import (
    MacLayer,
    compressed_image,
    compressed_layer_from_float,
    compressed_streams,
    mac_layer_from_float,
    mac_layer_word,
    mac_load_beats,
    mac_tile_cycles,
    mac_tile_outputs,
)
from golden.hwmodel.offchip import mac_offchip_layout, offchip_layout
from golden.hwmodel.packing import mac_load_fields
from golden.hwmodel.passes import (
    CarrySchedule,
    pass_columns,
    pass_images,
    pass_modes,
    passes_outputs,
)
from golden.hwmodel.stream_tile import stream_tile_cycles_of_image
from golden.hwmodel.tile import tile_cycles_of_image, tile_outputs
from golden.hwmodel.token_groups import (
    compressed_stream_tile_group_cycles,
    group_name,
    mac_stream_tile_group_cycles,
    stream_tile_group_cycles,
    token_groups,
)
from golden.quant.quantizer import quantize

__all__ = ["tile_job", "layer_job", "calibrated_mac_layer", "logical_beats", "mac_tile_job",
           "stream_tile_job",
           "stream_tile_group_jobs", "stream_tile_pass_jobs", "tile_vectors",
           "physical_outputs", "STREAM_COUNTERS"]

COUNTERS = ("cycles", "busy", "stall_outlier", "stall_recon", "stall_output", "outliers")
#: The streaming tile's counters (packing.stream_counters_fields).
STREAM_COUNTERS = COUNTERS + ("stall_memory", "bytes_read", "error")


def _job(layer, tokens, y, model, *, name, seed, layer_word, load, streams=None,
         gap_probability=0.0, backpressure_probability=0.0, corrupt=None, counters=COUNTERS):
    pes = layer.config.pes
    expected = [[int(v) for v in y[b * pes:(b + 1) * pes, t]]
                for b in range(layer.blocks) for t in range(tokens)]
    timed = backpressure_probability == 0
    return {
        "name": name, "seed": seed, "tokens": tokens,
        "layer": format(layer_word, "x"),
        "load": [format(b, "x") for b in load],
        # Streams driven at once before the load beats (the compressed tile's weights).
        "streams": {k: [format(w, "x") for w in words] for k, words in (streams or {}).items()},
        "expected": expected,
        "expected_counters": {k: model[k] for k in counters} if timed else None,
        "ideal_cycles": tokens * layer.blocks * layer.chunks,
        "gap_probability": gap_probability, "backpressure_probability": backpressure_probability,
        "corrupt": corrupt,
    }


def tile_job(image, acts, *, name, seed=1, **options):
    """One GOBO tile bench job: load ``image`` and activations ``acts`` (T, N ints), run, check."""
    acts = np.asarray(acts, dtype=np.int64)
    tokens = acts.shape[0]
    return _job(image, tokens, tile_outputs(image, acts), tile_cycles_of_image(image, tokens),
                name=name, seed=seed, layer_word=layer_word(image, tokens),
                load=load_beats(image, acts), **options)


def layer_job(config, weights, activations, *, bias=None, seed=1, name="layer",
              outlier_fit="gaussian", memory=None, base=0, weight_bits=None, compressed=False,
              **options):
    """One real FC layer as a tile job: quantize ``weights`` (M, N float) with GOBO
    (``outlier_fit`` as :func:`golden.quant.quantizer.quantize`; index width and threshold from
    ``config``), calibrate the image on float ``activations`` (T, N; one calibration for all
    tokens); return ``(image, x_int, fp32, jobs)``: the layer image, the integer activations,
    the FP32 layer's result (T, M) and the bench jobs: ``[`` the :func:`tile_job` ``]``, or with
    an off-chip ``memory`` (:class:`~golden.hwmodel.offchip.OffchipMemory`) the
    :func:`stream_tile_group_jobs` of the streaming tile (one per token group of ``max_tokens``)
    with its image at byte ``base`` (a GOBO layer wider than ``max_dot_length``: the
    :func:`stream_tile_pass_jobs`, per token group one job per pass). Raises
    :class:`~golden.hwmodel.layer_image.ImageError` (a ``ValueError``) for a layer the
    configuration cannot hold (on the whole-layer tile: more than ``max_tokens`` tokens too).

    With ``weight_bits`` (a MAC baseline's ``config`` and weight width,
    :func:`golden.config.mac_flavour`) the layer is the dense
    :class:`~golden.hwmodel.mac_tile.MacLayer` (:func:`calibrated_mac_layer`, the same
    calibration) and the jobs the MAC tile's (:func:`mac_tile_job`) or, with ``memory``, the
    streaming MAC tile's; with ``compressed`` too, the memory-compression tile's: the layer the
    GOBO quantization's (``outlier_fit``) at ``weight_bits``, decompressed by the tile (whole
    layer: :func:`mac_tile_job`; with ``memory`` its GOBO form streamed); ``compressed``
    without ``weight_bits`` raises ValueError."""
    if compressed and weight_bits is None:
        raise ValueError("compressed=True needs the weight_bits of the decompressed weights")
    gobo = None
    if weight_bits is None or compressed:
        gobo = quantize(weights, index_bits=config.index_bits,
                        outlier_log_prob=config.outlier_log_prob, outlier_fit=outlier_fit)
    if weight_bits is None:
        image, x_int, fp32 = calibrated_image(config, weights, activations, bias=bias,
                                              layer=gobo, streamed=memory is not None)
    else:
        image, x_int, fp32 = calibrated_mac_layer(config, weight_bits, weights, activations,
                                                  bias=bias, gobo=gobo)
    if memory is not None and weight_bits is None and image.cols > config.max_dot_length:
        jobs = stream_tile_pass_jobs(image, x_int, memory, name=name, seed=seed, base=base,
                                     **options)
    elif memory is not None:
        jobs = stream_tile_group_jobs(image, x_int, memory, name=name, seed=seed, base=base,
                                      **options)
    elif weight_bits is None:
        jobs = [tile_job(image, x_int, name=name, seed=seed, **options)]
    else:
        jobs = [mac_tile_job(image, x_int, name=name, seed=seed, **options)]
    return image, x_int, fp32, jobs


def calibrated_mac_layer(config, weight_bits, weights, acts, *, bias=None, gobo=None):
    """:func:`~golden.hwmodel.layer_image.calibrated_image` for a MAC baseline: ``(MacLayer,
    integer activations (T, N), FP32 result (T, M))``, calibrated alike
    (:func:`~golden.hwmodel.layer_image.calibrate`). With ``gobo`` (the
    :class:`~golden.quant.quantizer.GoboLayer` of ``weights``) the memory-compression layer of
    it (:func:`~golden.hwmodel.mac_tile.compressed_layer_from_float`), else the dense one."""
    weights, x_int, e_x, fp32, e_y = calibrate(config, weights, acts, bias=bias)
    if gobo is not None:
        layer = compressed_layer_from_float(config, weight_bits, weights, bias=bias,
                                            act_exponent=e_x, out_exponent=e_y, gobo=gobo)
    else:
        layer = mac_layer_from_float(config, weight_bits, weights, bias=bias, act_exponent=e_x,
                                     out_exponent=e_y)
    return layer, x_int, fp32


def logical_beats(image, beats, tokens):
    """Output beats (slot ``(b, t)`` -> ``P`` values, ``b`` major) back to ``Y`` (T, M) in the
    model's row order (a :class:`~golden.hwmodel.mac_tile.MacLayer` keeps the model's order)."""
    physical = physical_outputs(image.blocks, image.config.pes, beats, tokens)
    if isinstance(image, MacLayer):
        return physical[:image.rows].T
    return logical_outputs(image, physical).T


def mac_tile_job(layer, acts, *, name, seed=1, **options):
    """One MAC tile bench job (a :class:`~golden.hwmodel.mac_tile.MacLayer`); a layer with a
    compressed form is for the memory-compression tile: its weights go through the decompressor
    streams ``packed`` and ``outliers``, not the load beats."""
    acts = np.asarray(acts, dtype=np.int64)
    tokens = acts.shape[0]
    compressed = layer.compressed is not None
    streams = None
    if compressed:
        packed, records = compressed_streams(layer)
        streams = {"packed": packed, "outliers": records}
    return _job(layer, tokens, mac_tile_outputs(layer, acts), mac_tile_cycles(layer, tokens),
                name=name, seed=seed, layer_word=mac_layer_word(layer, tokens),
                load=mac_load_beats(layer, acts, weights=not compressed), streams=streams,
                **options)


def stream_tile_job(image, acts, memory, *, name, seed=1, base=0, model=None, **options):
    """One streaming tile bench job (docs/offchip.md): the activations are loaded, the layer's
    off-chip image is what the bench's memory serves, timed by ``memory`` (an
    :class:`~golden.hwmodel.offchip.OffchipMemory`). ``image`` is a GOBO
    :class:`~golden.hwmodel.layer_image.LayerImage` (the ``gobo_stream_tile``: layout
    :func:`~golden.hwmodel.offchip.offchip_layout`, counters :func:`~golden.hwmodel.
    stream_tile.stream_tile_cycles_of_image`) or a dense :class:`~golden.hwmodel.mac_tile.
    MacLayer` (the ``mac_stream_tile``: :func:`~golden.hwmodel.offchip.mac_offchip_layout`,
    :func:`~golden.hwmodel.mac_stream_tile.mac_stream_tile_cycles`) or a memory-compression
    ``MacLayer`` (the ``compressed_stream_tile``, docs/offchip.md section 8: its GOBO form in
    the GOBO layout, :func:`~golden.hwmodel.mac_tile.compressed_image`; outputs
    :func:`~golden.hwmodel.mac_tile.mac_tile_outputs`, counters
    :func:`~golden.hwmodel.compressed_stream_tile.compressed_stream_tile_cycles`), laid out
    from byte ``base`` (``model``: those counters, already computed). Adds ``memory`` (its
    parameters), ``base`` and ``offchip`` (the image's bytes, hex) to the tile job's keys.
    """
    acts = np.asarray(acts, dtype=np.int64)
    tokens = acts.shape[0]
    config = image.config
    if isinstance(image, MacLayer):
        compressed = image.compressed is not None
        layout = (offchip_layout(compressed_image(image), memory.bus_bytes, base=base)
                  if compressed else mac_offchip_layout(image, memory.bus_bytes, base=base))
        y, word = mac_tile_outputs(image, acts), mac_layer_word(image, tokens)
        load = act_beats(config, acts, mac_load_fields(config, image.weight_bits))
        if model is None:
            model = (compressed_stream_tile_cycles if compressed
                     else mac_stream_tile_cycles)(image, tokens, memory, base=base)
    else:
        layout = offchip_layout(image, memory.bus_bytes, base=base)
        y, word = tile_outputs(image, acts), layer_word(image, tokens)
        load = act_beats(config, acts)
        if model is None:
            model = stream_tile_cycles_of_image(image, tokens, memory, base=base)
    job = _job(image, tokens, y, model, name=name, seed=seed, layer_word=word, load=load,
               counters=STREAM_COUNTERS, **options)
    return _offchip(job, memory, base, layout)


def _offchip(job, memory, base, layout):
    """``job`` with what a streaming bench's memory serves: ``memory`` (its parameters),
    ``base`` and ``offchip`` (the image's bytes, hex)."""
    job.update(memory=memory.to_dict(), base=base, offchip=layout.data.hex())
    return job


def stream_tile_group_jobs(image, acts, memory, *, name, seed=1, base=0, **options):
    """The :func:`stream_tile_job` of every token group of ``acts`` (T, N ints; groups of the
    image's ``max_tokens``, :func:`golden.hwmodel.token_groups.token_groups`), in token order:
    each loads its group's activations and reads the whole off-chip image again; its
    ``expected`` outputs are its tokens' and its counters the streaming cycle model's for its
    tokens (:func:`golden.hwmodel.token_groups.stream_tile_group_cycles`, for a dense
    ``MacLayer`` :func:`~golden.hwmodel.token_groups.mac_stream_tile_group_cycles`, for a
    memory-compression one :func:`~golden.hwmodel.token_groups.
    compressed_stream_tile_group_cycles`; their sums are the layer's). A job is named
    ``name``, or ``"<name> tokens a..b"`` when there are several."""
    acts = np.asarray(acts, dtype=np.int64)
    groups = token_groups(len(acts), image.config.max_tokens)
    if not isinstance(image, MacLayer):
        cycles = stream_tile_group_cycles
    elif image.compressed is None:
        cycles = mac_stream_tile_group_cycles
    else:
        cycles = compressed_stream_tile_group_cycles
    models = cycles(image, len(acts), memory, base=base)["groups"]
    return [stream_tile_job(image, acts[g.start:g.stop], memory,
                            name=group_name(name, g, len(groups)), seed=seed, base=base,
                            model=model, **options)
            for g, model in zip(groups, models)]


def stream_tile_pass_jobs(image, acts, memory, *, name, seed=1, base=0, carry=None,
                          **options):
    """A layer longer than ``max_dot_length`` on the streaming GOBO tile, as passes
    (:mod:`golden.hwmodel.passes`, docs/offchip.md section 10): per token group (as
    :func:`stream_tile_group_jobs`), one :func:`stream_tile_job`-like job per pass, in order,
    the pass's image off chip at ``base`` and its activation columns loaded. Every pass but the
    last expects its unrounded partial sums, the last the outputs; every pass but the first has
    ``carry`` (a :class:`~golden.hwmodel.passes.CarrySchedule`, as a dict): the bench feeds the
    previous job's outputs back on the ``carry`` stream on that schedule (None: every beat from
    the start, ``CarrySchedule()``), and its counters (``stall_carry`` too) are the cycle
    model's with it. Names: ``"<group name> pass k/P"``."""
    carry = CarrySchedule() if carry is None else carry
    acts = np.asarray(acts, dtype=np.int64)
    config = image.config
    parts = pass_images(image)
    spans = pass_columns(image.cols, config.max_dot_length)
    groups = token_groups(len(acts), config.max_tokens)
    counters = STREAM_COUNTERS + ("stall_carry",)
    jobs = []
    for g in groups:
        x = acts[g.start:g.stop]
        y, partials = passes_outputs(image, x)
        for k, ((start, stop), part) in enumerate(zip(spans, parts)):
            modes = pass_modes(k, len(parts))
            schedule = carry if modes["carry_in"] else None
            model = stream_tile_cycles_of_image(part, len(g), memory, base=base, carry=schedule)
            job = _job(part, len(g), partials[k] if modes["partial_out"] else y, model,
                       name=f"{group_name(name, g, len(groups))} pass {k + 1}/{len(parts)}",
                       seed=seed, layer_word=layer_word(part, len(g), **modes),
                       load=act_beats(config, x[:, start:stop]), counters=counters, **options)
            job["carry"] = None if schedule is None else schedule.to_dict()
            jobs.append(_offchip(job, memory, base,
                                 offchip_layout(part, memory.bus_bytes, base=base)))
    return jobs


def physical_outputs(blocks, pes, beats, tokens):
    """The tile's output beats of one run (slot ``b * tokens + t`` holds the ``pes`` values of
    block ``b``, token ``t``; the order of :func:`tile_job`'s ``expected``) back to the physical
    outputs ``(blocks * pes, tokens)`` of :func:`golden.hwmodel.tile.tile_outputs`.

    Raises
    ------
    ValueError
        If ``beats`` is not ``blocks * tokens`` beats of ``pes`` values.
    """
    beats = np.asarray(beats, dtype=np.int64)
    if beats.shape != (blocks * tokens, pes):
        raise ValueError(f"{beats.shape[0] if beats.ndim else 0} output beats of shape "
                         f"{beats.shape[1:]}, expected {blocks * tokens} of ({pes},)")
    return beats.reshape(blocks, tokens, pes).transpose(0, 2, 1).reshape(blocks * pes, tokens)


def tile_vectors(config, jobs, *, seed=1):
    return {"seed": seed, "config": config.to_dict(), "jobs": jobs}
