"""The packed formats the hardware consumes, defined once for golden model, RTL and testbenches.

A format is an ordered list of ``(name, width, signed, count)`` fields, least significant first,
matching ``amaranth.lib.data.StructLayout`` (fields in declaration order from bit 0) with
``ArrayLayout`` members for ``count > 1`` (element 0 at the lowest bits). ``hw/`` builds its
layouts from these lists, so the two cannot drift apart.
"""

import numpy as np

from golden.config import check_weight_bits
from golden.hwmodel.fixedpoint import check_signed

__all__ = ["Field", "pe_input_fields", "mac_input_fields", "pack", "unpack", "pe_beats",
           "mac_beats", "index_beat_fields", "weight_beat_fields", "decompressor_outlier_fields",
           "decompressor_streams", "weight_beats", "to_unsigned", "to_signed",
           "check_pe_inputs", "LOAD_TARGETS", "outlier_record_fields", "outlier_record_bits",
           "offset_bits", "memory_shapes", "load_fields", "layer_fields", "counters_fields",
           "COUNTER_BITS", "pack_outlier_word", "LOAD_WEIGHT", "mac_acc_bits",
           "mac_memory_shapes", "mac_load_fields", "mac_layer_fields", "weight_load_addr",
           "weight_word_bits"]


class Field:
    __slots__ = ("name", "width", "signed", "count")

    def __init__(self, name, width, *, signed=False, count=1):
        self.name, self.width, self.signed, self.count = name, width, signed, count

    @property
    def bits(self):
        return self.width * self.count

    def __repr__(self):
        return f"Field({self.name!r}, {self.width}, signed={self.signed}, count={self.count})"


def pe_input_fields(config):
    """One beat into a PE: ``lanes`` indexes, ``lanes`` activations, and ``last`` (end of a dot
    product)."""
    return [
        Field("indexes", config.index_bits, count=config.lanes),
        Field("acts", config.act_bits, signed=True, count=config.lanes),
        Field("last", 1),
    ]


def mac_input_fields(config, weight_bits):
    """One beat into a MAC baseline PE (or out of the GOBO decompressor): ``lanes`` signed
    integer weights of ``weight_bits``, ``lanes`` activations as in :func:`pe_input_fields`, and
    ``last``."""
    check_weight_bits(weight_bits)
    return [
        Field("weights", weight_bits, signed=True, count=config.lanes),
        Field("acts", config.act_bits, signed=True, count=config.lanes),
        Field("last", 1),
    ]


def index_beat_fields(config):
    """One beat into the GOBO decompressor (memory-compression mode): ``lanes`` indexes and
    ``last``."""
    return [Field("indexes", config.index_bits, count=config.lanes), Field("last", 1)]


def weight_beat_fields(config, weight_bits):
    """One beat out of the GOBO decompressor: ``lanes`` dense signed weights and ``last``."""
    return mac_input_fields(config, weight_bits)[:1] + [Field("last", 1)]


def decompressor_outlier_fields(config, weight_bits):
    """One outlier record into the decompressor: its column in the row and its value. Each
    row's records come in column order and end with a marker record of ``col ==
    max_dot_length`` (the decompressor must know that a beat has no more outliers before it
    lets the beat go)."""
    return [Field("col", _bits_for(config.max_dot_length)),
            Field("value", weight_bits, signed=True)]


def to_unsigned(value, width):
    value = int(value)
    if not -(1 << (width - 1)) <= value < (1 << width):
        raise ValueError(f"{value} does not fit in {width} bits")
    return value & ((1 << width) - 1)


def to_signed(value, width):
    value = int(value) & ((1 << width) - 1)
    return value - (1 << width) if value >> (width - 1) else value


def pack(fields, values):
    """Pack ``{name: int or sequence}`` into one integer; range errors name the field."""
    word, offset = 0, 0
    for field in fields:
        items = values[field.name]
        items = list(np.ravel(items))  # a scalar, or a 1-element array when lanes == 1
        if len(items) != field.count:
            raise ValueError(f"field {field.name!r} needs {field.count} values, got {len(items)}")
        for item in items:
            item = int(item)
            low = -(1 << (field.width - 1)) if field.signed else 0
            high = (1 << (field.width - 1)) - 1 if field.signed else (1 << field.width) - 1
            if not low <= item <= high:
                raise ValueError(f"field {field.name!r} value {item} does not fit "
                                 f"{'signed' if field.signed else 'unsigned'} {field.width} bits")
            word |= (item & ((1 << field.width) - 1)) << offset
            offset += field.width
    return word


def unpack(fields, word):
    """Inverse of :func:`pack`; array fields come back as lists."""
    out, offset = {}, 0
    for field in fields:
        items = []
        for _ in range(field.count):
            raw = (word >> offset) & ((1 << field.width) - 1)
            items.append(to_signed(raw, field.width) if field.signed else raw)
            offset += field.width
        out[field.name] = items if field.count > 1 else items[0]
    return out


def _row_beats(config, fields, lane_values):
    """The beats of one dot product: ``lane_values`` maps each per-lane field of ``fields`` to
    an (N,) array; N is padded up to a multiple of ``lanes`` with zeros (index 0, weight 0 and
    activation 0 add nothing) and the final beat carries ``last``."""
    arrays = {name: np.asarray(values) for name, values in lane_values.items()}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1 or next(iter(shapes)) == () or len(next(iter(shapes))) != 1:
        raise ValueError(f"{' and '.join(arrays)} must be 1-D of one length, not "
                         f"{' and '.join(str(a.shape) for a in arrays.values())}")
    n = len(next(iter(arrays.values())))
    if not 1 <= n <= config.max_dot_length:
        raise ValueError(f"dot product length {n} is outside 1..max_dot_length="
                         f"{config.max_dot_length}")
    lanes = config.lanes
    beats = -(-n // lanes)
    pad = beats * lanes - n
    padded = {name: np.concatenate([a, np.zeros(pad, dtype=a.dtype)]).reshape(beats, lanes)
              for name, a in arrays.items()}
    return [pack(fields, {**{name: a[b] for name, a in padded.items()},
                          "last": int(b == beats - 1)})
            for b in range(beats)]


def pe_beats(config, indexes, acts):
    """The beats that feed one dot product of ``indexes`` (N,) with ``acts`` (N,) into a PE.

    N is padded up to a multiple of ``lanes`` with index 0 and activation 0, which adds nothing.
    Returns a list of packed integers (see :func:`pe_input_fields`).
    """
    return _row_beats(config, pe_input_fields(config), {"indexes": indexes, "acts": acts})


def mac_beats(config, weight_bits, weights, acts):
    """The beats of one dot product of integer ``weights`` (N,) with ``acts`` (N,) into a MAC
    baseline PE (see :func:`mac_input_fields`), padded like :func:`pe_beats`."""
    return _row_beats(config, mac_input_fields(config, weight_bits),
                      {"weights": weights, "acts": acts})


def decompressor_streams(config, weight_bits, rows):
    """Packed ``(index beats, outlier records)`` of ``rows``, a list of ``(indexes (N,),
    [(col, value), ...])``: the two streams that feed :class:`hw.decompressor.Decompressor`."""
    fields = index_beat_fields(config)
    out_fields = decompressor_outlier_fields(config, weight_bits)
    beats, records = [], []
    for indexes, outliers in rows:
        beats += _row_beats(config, fields, {"indexes": indexes})
        records += [pack(out_fields, {"col": col, "value": value}) for col, value in outliers]
        records.append(pack(out_fields, {"col": config.max_dot_length, "value": 0}))
    return beats, records


def weight_beats(config, weight_bits, weights):
    """The decompressor's output beats for one row of dense ``weights`` (N,): ``lanes`` weights
    a beat, zero-padded, ``last`` on the final one."""
    return _row_beats(config, weight_beat_fields(config, weight_bits), {"weights": weights})


def check_pe_inputs(config, indexes, acts, centroids):
    """Raise ValueError if any input of a PE does not fit the configured widths."""
    indexes = np.asarray(indexes)
    if indexes.size and (indexes.min() < 0 or indexes.max() >= config.n_centroids):
        raise ValueError(f"indexes must lie in [0, {config.n_centroids}) for index_bits="
                         f"{config.index_bits}, but span [{indexes.min()}, {indexes.max()}]")
    check_signed("activations", acts, config.act_bits)
    check_signed("centroids", centroids, config.centroid_bits)
    if len(np.ravel(centroids)) != config.n_centroids:
        raise ValueError(f"the dictionary must hold {config.n_centroids} centroids for index_bits="
                         f"{config.index_bits}, not {len(np.ravel(centroids))}")


# The tile's formats (docs/tile.md, sections 2 and 3) -------------------------------------------

#: ``target`` of a load beat: which on-chip memory the word goes to.
LOAD_INDEX, LOAD_ACT, LOAD_OUTLIER, LOAD_OFFSET, LOAD_BIAS = range(5)
LOAD_TARGETS = {"index": LOAD_INDEX, "activation": LOAD_ACT, "outlier": LOAD_OUTLIER,
                "offset": LOAD_OFFSET, "bias": LOAD_BIAS}


def _bits_for(count):
    """Unsigned bits that hold every value 0 .. count (at least 1)."""
    return max(1, int(count).bit_length())


def outlier_record_fields(config):
    """One outlier record: ``valid``, ``row`` within the block, ``col`` (n), ``residual``."""
    return [
        Field("valid", 1),
        Field("row", _bits_for(config.pes - 1)),
        Field("col", _bits_for(config.max_dot_length - 1)),
        Field("residual", config.residual_bits, signed=True),
    ]


def outlier_record_bits(config):
    return sum(f.bits for f in outlier_record_fields(config))


def offset_bits(config):
    return _bits_for(config.max_outlier_words)


def memory_shapes(config):
    """``{target name: (word bits, depth)}`` of every loadable memory."""
    return {
        "index": (config.pes * config.index_word_bits, config.index_depth),
        "activation": (config.lanes * config.act_bits, config.act_depth),
        "outlier": (config.outlier_lanes * outlier_record_bits(config), config.max_outlier_words),
        "offset": (offset_bits(config), config.blocks_max + 1),
        "bias": (config.bias_bits, config.blocks_max * config.pes),
    }


def load_fields(config):
    shapes = memory_shapes(config).values()
    return [
        Field("target", 3),
        Field("addr", _bits_for(max(depth for _, depth in shapes) - 1)),
        Field("data", max(width for width, _ in shapes)),
    ]


def layer_fields(config):
    """The tile's static ``layer`` port: dictionary, sizes and shifts of the loaded layer, and
    its row count ``M`` (``blocks * pes`` minus the padding rows)."""
    return [
        Field("centroids", config.centroid_bits, signed=True, count=config.n_centroids),
        Field("blocks", _bits_for(config.blocks_max)),
        Field("chunks", _bits_for(config.chunks_max)),
        Field("tokens", _bits_for(config.max_tokens)),
        Field("shift_dot", _bits_for(config.max_align_shift)),
        Field("shift_corr", _bits_for(config.max_align_shift)),
        Field("out_shift", _bits_for(config.acc_bits)),
        # M: PE p's beats of block b count as busy only for real rows b*P + p < M.
        Field("rows", _bits_for(config.max_rows)),
    ]


COUNTER_BITS = 32


def counters_fields(config):
    return [
        Field("cycles", COUNTER_BITS),
        Field("busy", COUNTER_BITS, count=config.pes),
        Field("stall_outlier", COUNTER_BITS),
        Field("stall_recon", COUNTER_BITS),
        Field("stall_output", COUNTER_BITS),
        Field("outliers", COUNTER_BITS),
    ]


def pack_outlier_word(config, records):
    """Pack up to ``outlier_lanes`` records ``(row, col, residual)``; missing ones are invalid."""
    if len(records) > config.outlier_lanes:
        raise ValueError(f"an outlier word holds {config.outlier_lanes} records, "
                         f"not {len(records)}")
    fields = outlier_record_fields(config)
    width = outlier_record_bits(config)
    word = 0
    for slot in range(config.outlier_lanes):
        if slot < len(records):
            row, col, residual = records[slot]
            record = pack(fields, {"valid": 1, "row": row, "col": col, "residual": residual})
        else:
            record = 0
        word |= record << (slot * width)
    return word


# The MAC baseline tile's formats (docs/tile.md section 6) ----------------------------------------

#: The MAC tile's weight memory takes the index memory's load target.
LOAD_WEIGHT = LOAD_INDEX


def mac_acc_bits(config, weight_bits):
    """Exact width of the MAC tile's ``(dot << shift_dot) + bias``: the wider term plus one."""
    dot_bits = weight_bits + config.act_bits + config.dot_bits
    return max(dot_bits + config.max_align_shift, config.bias_bits) + 1


def mac_memory_shapes(config, weight_bits):
    """``{name: (word bits, depth)}`` of the MAC tile: dense weights (``P`` slices of ``lanes``
    weights per word, word ``b*C + j`` as the GOBO index memory), activations and biases."""
    shapes = memory_shapes(config)
    return {"weight": (config.pes * config.lanes * weight_bits, config.index_depth),
            "activation": shapes["activation"], "bias": shapes["bias"]}


def weight_word_bits(config):
    """Bits of a weight word address (= ceil_log2(depth), the memory port's): the PE field of a
    weight load address starts above them."""
    return (config.index_depth - 1).bit_length()


def weight_load_addr(config, pe, word):
    """Load address of PE ``pe``'s slice of weight word ``word``: ``pe`` above the word bits, so
    the tile splits it without a division."""
    if not 0 <= pe < config.pes or not 0 <= word < config.index_depth:
        raise ValueError(f"weight slice (PE {pe}, word {word}) is outside {config.pes} PEs x "
                         f"{config.index_depth} words")
    return (pe << weight_word_bits(config)) | word


def mac_load_fields(config, weight_bits):
    """One load beat of the MAC tile: ``target`` (:data:`LOAD_WEIGHT`, ``LOAD_ACT`` or
    ``LOAD_BIAS``), ``addr`` (for weights :func:`weight_load_addr`) and ``data`` (one slice of
    ``lanes`` weights, an activation word or a bias)."""
    mac_input_fields(config, weight_bits)     # validates weight_bits
    shapes = mac_memory_shapes(config, weight_bits)
    weight_addr_bits = _bits_for(config.pes - 1) + weight_word_bits(config)
    return [
        Field("target", 3),
        Field("addr", max(weight_addr_bits, _bits_for(shapes["activation"][1] - 1),
                          _bits_for(shapes["bias"][1] - 1))),
        Field("data", max(config.lanes * weight_bits, shapes["activation"][0],
                          shapes["bias"][0])),
    ]


def mac_layer_fields(config, weight_bits):
    """The MAC tile's static ``layer`` port: as :func:`layer_fields` without ``shift_corr``; its
    dictionary holds integer weights (used only in memory-compression mode)."""
    return [
        Field("centroids", weight_bits, signed=True, count=config.n_centroids),
        Field("blocks", _bits_for(config.blocks_max)),
        Field("chunks", _bits_for(config.chunks_max)),
        Field("tokens", _bits_for(config.max_tokens)),
        Field("shift_dot", _bits_for(config.max_align_shift)),
        Field("out_shift", _bits_for(mac_acc_bits(config, weight_bits))),
        Field("rows", _bits_for(config.max_rows)),
    ]
