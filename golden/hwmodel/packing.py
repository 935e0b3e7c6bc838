"""The packed formats the hardware consumes, defined once for golden model, RTL and testbenches.

A format is an ordered list of :class:`Field`, least significant first, matching
``amaranth.lib.data.StructLayout`` (fields in declaration order from bit 0). A field is either a
scalar (one integer, or one record) or, when declared ``array=True``, an array of ``count``
elements (an ``ArrayLayout``, element 0 at the lowest bits), also when it has one element: a
one-lane configuration packs and unpacks exactly like a sixteen-lane one. ``hw/`` builds its
layouts from these lists (:mod:`hw.layouts`), so the two cannot drift apart; :func:`pack` and
:func:`unpack` are the one Python routine that reads and writes the same bits.
"""

import collections.abc
import enum
import math
import operator

import numpy as np

from golden.config import check_weight_bits
from golden.hwmodel.fixedpoint import check_signed

__all__ = ["Field", "pack", "unpack", "format_bits", "to_unsigned", "to_signed",
           # PE, MAC PE and decompressor streams
           "pe_input_fields", "mac_input_fields", "weight_slice_fields", "index_beat_fields",
           "weight_beat_fields", "decompressor_outlier_fields", "centroids_fields",
           "accumulator_input_fields", "bins_fields", "pe_beats", "mac_beats",
           "decompressor_streams", "weight_beats", "check_pe_inputs",
           # the tile
           "LoadTarget", "load_fields", "layer_fields", "counters_fields", "COUNTER_BITS",
           "memory_word_fields", "memory_shapes", "index_word_fields", "act_word_fields",
           "outlier_record_fields", "outlier_record_bits", "outlier_word_fields",
           "pack_outlier_word", "offset_bits", "offset_word_fields", "bias_word_fields",
           "broadcast_fields", "dots_fields", "side_command_fields", "correction_fields",
           "tile_output_fields",
           # the streaming tile's off-chip formats (docs/offchip.md)
           "offchip_header_fields", "bias_block_fields", "stream_counters_fields",
           "STREAM_ERRORS", "stream_error_message",
           # the MAC baseline tile
           "mac_acc_bits", "mac_memory_shapes", "mac_weight_word_fields", "mac_load_fields",
           "mac_layer_fields", "weight_load_addr", "weight_word_bits",
           # every format at once
           "packed_formats"]


def _is_sequence(value):
    """A list, tuple, range or NumPy array of at least one dimension (not a str or a mapping)."""
    if isinstance(value, np.ndarray):
        return value.ndim > 0
    return isinstance(value, collections.abc.Sequence) and not isinstance(value, (str, bytes))


class Field:
    """One field of a packed format.

    Parameters
    ----------
    name : str
        The key of the field's value in :func:`pack` and :func:`unpack`, and the member name of
        the ``StructLayout`` in hardware.
    width : int or list of Field
        Bits of one element; or a record: a list of fields, so that one element is itself a
        packed format (a ``StructLayout`` in hardware) whose value is a ``{name: value}`` dict.
    signed : bool
        Two's complement elements (integer elements only).
    count : int or tuple of int
        Elements of an array field (``array=True``). A tuple is a multi-dimensional array,
        outermost dimension first as a NumPy shape: element ``[i][j]`` of ``count=(I, J)`` is
        element ``i*J + j`` from the low bits (``ArrayLayout(ArrayLayout(elem, J), I)``).
        A scalar field has ``count == 1``.
    array : bool
        An array field: always an ``ArrayLayout`` in hardware, even of one element, and always a
        sequence (nested for a tuple ``count``) in :func:`pack` and :func:`unpack`. A scalar
        field (the default) is one element, never an array.

    Raises
    ------
    TypeError
        If a parameter has the wrong type.
    ValueError
        If ``width`` or ``count`` is not positive, a record is empty or signed, or a scalar
        field has a ``count`` other than 1.
    """

    __slots__ = ("_name", "_width", "_record", "_signed", "_shape", "_array")

    def __init__(self, name, width, *, signed=False, count=1, array=False):
        if not isinstance(name, str) or not name:
            raise TypeError(f"field name must be a non-empty string, not {name!r}")
        if not isinstance(signed, bool):
            raise TypeError(f"field {name!r} signed must be a bool, not {signed!r}")
        if not isinstance(array, bool):
            raise TypeError(f"field {name!r} array must be a bool, not {array!r}")
        if isinstance(width, (list, tuple)):
            record = tuple(width)
            if not record or not all(isinstance(f, Field) for f in record):
                raise ValueError(f"field {name!r} record must be a non-empty list of Field, "
                                 f"not {width!r}")
            if signed:
                raise ValueError(f"field {name!r} is a record and cannot be signed")
            _check_names(record)
            width = format_bits(record)
        else:
            record = None
            if isinstance(width, bool) or not isinstance(width, int) or width < 1:
                raise ValueError(f"field {name!r} width must be a positive integer, "
                                 f"not {width!r}")
        shape = count if isinstance(count, tuple) else (count,)
        if not shape or any(isinstance(n, bool) or not isinstance(n, int) or n < 1
                            for n in shape):
            raise ValueError(f"field {name!r} count must be a positive integer or a tuple of "
                             f"them, not {count!r}")
        if not array:
            if count != 1:
                # The old rule (count 1 means scalar) made one-lane words special: say it.
                raise ValueError(f"field {name!r} has count={count!r} but is a scalar: an array "
                                 f"field is declared with array=True")
            shape = ()
        self._name, self._width, self._record = name, width, record
        self._signed, self._shape, self._array = signed, shape, array

    @property
    def name(self):
        return self._name

    @property
    def width(self):
        """Bits of one element."""
        return self._width

    @property
    def record(self):
        """The fields of one element if the element is a record, else None."""
        return self._record

    @property
    def signed(self):
        return self._signed

    @property
    def array(self):
        return self._array

    @property
    def shape(self):
        """``()`` for a scalar field; the array's dimensions (a tuple) for an array field."""
        return self._shape

    @property
    def count(self):
        """Elements in all: 1 for a scalar field, the product of :attr:`shape` for an array."""
        return math.prod(self._shape)

    @property
    def bits(self):
        return self._width * self.count

    def _key(self):
        return (self._name, self._record or self._width, self._signed, self._shape, self._array)

    def __eq__(self, other):
        return isinstance(other, Field) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        width = list(self._record) if self._record else self._width
        extra = ", signed=True" if self._signed else ""
        if self._array:
            count = self._shape[0] if len(self._shape) == 1 else self._shape
            extra += f", count={count!r}, array=True"
        return f"Field({self._name!r}, {width!r}{extra})"


def _check_names(fields):
    seen = set()
    for field in fields:
        if field.name in seen:
            raise ValueError(f"field name {field.name!r} appears twice")
        seen.add(field.name)


def format_bits(fields):
    """Bits of a word of ``fields``: the sum of their :attr:`Field.bits`."""
    return sum(field.bits for field in fields)


def to_unsigned(value, width):
    """``value`` (signed or unsigned, fitting ``width`` bits) as its ``width``-bit pattern.

    Raises
    ------
    ValueError
        If ``value`` fits neither signed nor unsigned ``width`` bits.
    """
    value = int(value)
    if not -(1 << (width - 1)) <= value < (1 << width):
        raise ValueError(f"{value} does not fit in {width} bits")
    return value & ((1 << width) - 1)


def to_signed(value, width):
    """The low ``width`` bits of ``value`` read as two's complement."""
    value = int(value) & ((1 << width) - 1)
    return value - (1 << width) if value >> (width - 1) else value


def _shape_text(shape):
    return " x ".join(str(n) for n in shape)


def _elements(field, value):
    """The elements of ``field``'s ``value`` in bit order (element 0 first)."""
    if not field.array:
        if _is_sequence(value):
            raise ValueError(f"field {field.name!r} is a scalar: it takes one "
                             f"{'record' if field.record else 'integer'}, not a sequence of "
                             f"{len(value)}")
        return [value]
    if not _is_sequence(value):
        raise ValueError(f"field {field.name!r} is an array of {_shape_text(field.shape)}: it "
                         f"takes a sequence, also of one element, not {value!r}")
    if isinstance(value, np.ndarray) and field.record is None:
        if value.shape != field.shape:
            raise ValueError(f"field {field.name!r} needs {_shape_text(field.shape)} values, "
                             f"got {_shape_text(value.shape)}")
        return value.reshape(-1).tolist()
    flat = []

    def walk(item, dims):
        if not dims:
            flat.append(item)
            return True
        if not _is_sequence(item) or len(item) != dims[0]:
            return False
        return all(walk(x, dims[1:]) for x in item)

    if not walk(value, field.shape):
        try:
            got = _shape_text(np.shape(np.asarray(value, dtype=object)))
        except ValueError:
            got = "a ragged sequence of"
        raise ValueError(f"field {field.name!r} needs {_shape_text(field.shape)} values, got "
                         f"{got}")
    return flat


def _element_bits(field, item):
    """One element as its ``field.width``-bit pattern."""
    if field.record is not None:
        if not isinstance(item, collections.abc.Mapping):
            raise ValueError(f"field {field.name!r} is a record: each element is a dict of "
                             f"{', '.join(f.name for f in field.record)}, not {item!r}")
        try:
            return pack(field.record, item)
        except ValueError as e:
            raise ValueError(f"field {field.name!r}: {e}") from None
    if isinstance(item, np.ndarray) and item.ndim == 0:
        item = item.item()
    try:
        item = operator.index(item)
    except TypeError:
        raise ValueError(f"field {field.name!r} value {item!r} is not an integer") from None
    width = field.width
    low = -(1 << (width - 1)) if field.signed else 0
    high = (1 << (width - 1)) - 1 if field.signed else (1 << width) - 1
    if not low <= item <= high:
        raise ValueError(f"field {field.name!r} value {item} does not fit "
                         f"{'signed' if field.signed else 'unsigned'} {width} bits")
    return item & ((1 << width) - 1)


def pack(fields, values):
    """Pack ``values``, a ``{field name: value}`` dict, into one word laid out as ``fields``.

    A scalar field takes one integer (a record field one dict); an array field a sequence of
    exactly its shape (nested lists or a NumPy array; a record array: dicts), also when it has
    one element.

    Returns
    -------
    int
        The word, ``0 <= word < 2**format_bits(fields)``.

    Raises
    ------
    ValueError
        If a field is missing or unknown, a scalar field gets a sequence or an array field a
        scalar or the wrong shape, or a value is no integer or does not fit its field; the
        message names the field.
    """
    if not isinstance(values, collections.abc.Mapping):
        raise ValueError(f"values must be a dict of {', '.join(f.name for f in fields)}, "
                         f"not {values!r}")
    names = [field.name for field in fields]
    missing = [name for name in names if name not in values]
    unknown = [name for name in values if name not in names]
    if missing or unknown:
        raise ValueError("; ".join(
            [f"missing field(s) {', '.join(map(repr, missing))}"] * bool(missing) +
            [f"unknown field(s) {', '.join(map(repr, unknown))}"] * bool(unknown)))
    word, offset = 0, 0
    for field in fields:
        for item in _elements(field, values[field.name]):
            word |= _element_bits(field, item) << offset
            offset += field.width
    return word


def _nest(items, shape):
    if len(shape) == 1:
        return items
    step = len(items) // shape[0]
    return [_nest(items[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def unpack(fields, word):
    """Inverse of :func:`pack`: ``{field name: value}`` of ``word``.

    A scalar field comes back as an int (a record as a dict), an array field always as a list
    (nested for a multi-dimensional one; a record array: a list of dicts), also of one element.
    Bits of ``word`` above ``format_bits(fields)`` are ignored (a memory word in the low bits
    of a wider load beat).

    Raises
    ------
    ValueError
        If ``word`` is not a non-negative integer.
    """
    word = operator.index(word)
    if word < 0:
        raise ValueError(f"a packed word is a non-negative integer, not {word}")
    out, offset = {}, 0
    for field in fields:
        mask = (1 << field.width) - 1
        items = []
        for _ in range(field.count):
            raw = (word >> offset) & mask
            if field.record is not None:
                items.append(unpack(field.record, raw))
            else:
                items.append(to_signed(raw, field.width) if field.signed else raw)
            offset += field.width
        out[field.name] = _nest(items, field.shape) if field.array else items[0]
    return out


def _bits_for(count):
    """Unsigned bits that hold every value 0 .. count (at least 1)."""
    return max(1, int(count).bit_length())


# The PE, the MAC baseline PE and the decompressor (docs/numerics.md, docs/architecture.md) -----

def act_word_fields(config):
    """One word of ``lanes`` signed ``act_bits`` activations: a PE beat's ``acts`` and a word of
    the tile's activation memory."""
    return [Field("acts", config.act_bits, signed=True, count=config.lanes, array=True)]


def pe_input_fields(config):
    """One beat into a PE: ``lanes`` indexes, ``lanes`` activations, and ``last`` (end of a dot
    product)."""
    return [Field("indexes", config.index_bits, count=config.lanes, array=True),
            *act_word_fields(config), Field("last", 1)]


def weight_slice_fields(config, weight_bits):
    """``lanes`` signed integer weights of ``weight_bits``: one beat's weights into a MAC PE or
    out of the decompressor, and one PE's slice of a MAC tile weight word.

    Raises
    ------
    TypeError, ValueError
        If ``weight_bits`` is not an integer in 2 .. 32.
    """
    check_weight_bits(weight_bits)
    return [Field("weights", weight_bits, signed=True, count=config.lanes, array=True)]


def mac_input_fields(config, weight_bits):
    """One beat into a MAC baseline PE: :func:`weight_slice_fields`, ``lanes`` activations as in
    :func:`pe_input_fields`, and ``last``.

    Raises
    ------
    ValueError
        If ``weight_bits`` is not an integer in 2 .. 32.
    """
    return [*weight_slice_fields(config, weight_bits), *act_word_fields(config), Field("last", 1)]


def index_beat_fields(config):
    """One beat into the GOBO decompressor (memory-compression mode): ``lanes`` indexes and
    ``last``."""
    return [pe_input_fields(config)[0], Field("last", 1)]


def weight_beat_fields(config, weight_bits):
    """One beat out of the GOBO decompressor: ``lanes`` dense signed weights and ``last``."""
    return [*weight_slice_fields(config, weight_bits), Field("last", 1)]


def decompressor_outlier_fields(config, weight_bits):
    """One outlier record into the decompressor: its column in the row and its value. Each
    row's records come in column order and end with a marker record of ``col ==
    max_dot_length`` (the decompressor must know that a beat has no more outliers before it
    lets the beat go)."""
    return [Field("col", _bits_for(config.max_dot_length)),
            Field("value", weight_bits, signed=True)]


def centroids_fields(config, bits=None):
    """The dictionary: ``n_centroids`` signed centroids of ``bits`` (default ``centroid_bits``;
    the decompressor's dictionary holds integer weights of ``weight_bits``), centroid ``k`` at
    bits ``k*bits`` up. The ``centroids`` port of a PE and the first field of the tile's
    ``layer`` port."""
    bits = config.centroid_bits if bits is None else bits
    return [Field("centroids", bits, signed=True, count=config.n_centroids, array=True)]


def accumulator_input_fields(config):
    """One beat into a PE's per-centroid accumulators: for each centroid ``k`` the mask of the
    lanes whose index is ``k`` (bit ``l`` for lane ``l``), the ``lanes`` activations and
    ``last``."""
    return [Field("masks", config.lanes, count=config.n_centroids, array=True),
            *act_word_fields(config), Field("last", 1)]


def bins_fields(config):
    """The completed bins of one dot product: ``n_centroids`` signed ``bin_bits`` sums, bin
    ``k`` at bits ``k*bin_bits`` up."""
    return [Field("bins", config.bin_bits, signed=True, count=config.n_centroids, array=True)]


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

    Raises
    ------
    ValueError
        If the arrays are not 1-D of one length in 1 .. ``max_dot_length``, or a value does not
        fit its field.
    """
    return _row_beats(config, pe_input_fields(config), {"indexes": indexes, "acts": acts})


def mac_beats(config, weight_bits, weights, acts):
    """The beats of one dot product of integer ``weights`` (N,) with ``acts`` (N,) into a MAC
    baseline PE (see :func:`mac_input_fields`), padded and checked like :func:`pe_beats`."""
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

class LoadTarget(enum.IntEnum):
    """``target`` of a load beat: the on-chip memory that takes its ``data``.

    The codes are part of the load format (docs/tile.md section 3) and must never change. The
    MAC baseline tile has no index memory: its weight memory takes INDEX's code, so ``WEIGHT``
    is an alias of ``INDEX`` (``LoadTarget.WEIGHT is LoadTarget.INDEX``).
    """
    INDEX = 0
    ACTIVATION = 1
    OUTLIER = 2
    OFFSET = 3
    BIAS = 4
    WEIGHT = 0


def index_word_fields(config):
    """One word of the index memory: PE ``p``'s ``lanes`` indexes at ``indexes[p]`` (PE 0 in
    the low bits), so PE ``p``'s slice is its :func:`pe_input_fields` ``indexes``."""
    return broadcast_fields(config)[:1]


def outlier_record_fields(config):
    """One outlier record: ``valid``, ``row`` within the block, ``col`` (n), ``residual``."""
    return [
        Field("valid", 1),
        Field("row", _bits_for(config.pes - 1)),
        Field("col", _bits_for(config.max_dot_length - 1)),
        Field("residual", config.residual_bits, signed=True),
    ]


def outlier_record_bits(config):
    return format_bits(outlier_record_fields(config))


def outlier_word_fields(config):
    """One word of the outlier memory: ``outlier_lanes`` records (:func:`outlier_record_fields`,
    record 0 in the low bits); unused records have ``valid == 0``."""
    return [Field("records", outlier_record_fields(config), count=config.outlier_lanes,
                  array=True)]


def pack_outlier_word(config, records):
    """Pack up to ``outlier_lanes`` records ``(row, col, residual)`` into one outlier word;
    missing ones are invalid (all zero).

    Raises
    ------
    ValueError
        If there are more than ``outlier_lanes`` records or a value does not fit its field.
    """
    if len(records) > config.outlier_lanes:
        raise ValueError(f"an outlier word holds {config.outlier_lanes} records, "
                         f"not {len(records)}")
    empty = {"valid": 0, "row": 0, "col": 0, "residual": 0}
    slots = [{"valid": 1, "row": row, "col": col, "residual": residual}
             for row, col, residual in records]
    slots += [empty] * (config.outlier_lanes - len(records))
    return pack(outlier_word_fields(config), {"records": slots})


def offset_bits(config):
    return _bits_for(config.max_outlier_words)


def offset_word_fields(config):
    """One word of the outlier offsets memory: ``off[b]``, block ``b``'s first outlier word."""
    return [Field("offset", offset_bits(config))]


def bias_word_fields(config):
    """One word of the bias memory: a signed ``bias_bits`` bias at the accumulator's
    exponent."""
    return [Field("bias", config.bias_bits, signed=True)]


def memory_word_fields(config):
    """``{memory name: fields of one word}`` of every loadable memory, in :class:`LoadTarget`
    order."""
    return {"index": index_word_fields(config), "activation": act_word_fields(config),
            "outlier": outlier_word_fields(config), "offset": offset_word_fields(config),
            "bias": bias_word_fields(config)}


def memory_shapes(config):
    """``{memory name: (word bits, depth)}`` of every loadable memory."""
    depths = {"index": config.index_depth, "activation": config.act_depth,
              "outlier": config.max_outlier_words, "offset": config.blocks_max + 1,
              "bias": config.blocks_max * config.pes}
    return {name: (format_bits(fields), depths[name])
            for name, fields in memory_word_fields(config).items()}


def load_fields(config):
    """One beat of the tile's load stream: ``target`` (:class:`LoadTarget`), ``addr`` and
    ``data`` (the memory's word, :func:`memory_word_fields`, in the low bits)."""
    shapes = memory_shapes(config).values()
    return [
        Field("target", _bits_for(max(LoadTarget))),
        Field("addr", _bits_for(max(depth for _, depth in shapes) - 1)),
        Field("data", max(width for width, _ in shapes)),
    ]


def layer_fields(config):
    """The tile's static ``layer`` port: dictionary, sizes and shifts of the loaded layer, and
    its row count ``M`` (``blocks * pes`` minus the padding rows)."""
    return [
        *centroids_fields(config),
        Field("blocks", _bits_for(config.blocks_max)),
        Field("chunks", _bits_for(config.chunks_max)),
        Field("tokens", _bits_for(config.max_tokens)),
        Field("shift_dot", _bits_for(config.max_align_shift)),
        Field("shift_corr", _bits_for(config.max_align_shift)),
        Field("shift_bias", _bits_for(config.max_align_shift)),
        Field("out_shift", _bits_for(config.acc_bits)),
        # M: PE p's beats of block b count as busy only for real rows b*P + p < M.
        Field("rows", _bits_for(config.max_rows)),
        # Passes (max_passes > 1 only; docs/offchip.md section 10): add the carried partial sums
        # of the ``carry`` stream; emit the unrounded accumulators instead of the outputs.
        *([Field("carry_in", 1), Field("partial_out", 1)] if config.max_passes > 1 else []),
    ]


COUNTER_BITS = 32


def counters_fields(config):
    """The tile's ``counters`` port (docs/tile.md section 3): 32-bit counts, ``busy`` one per
    PE."""
    return [
        Field("cycles", COUNTER_BITS),
        Field("busy", COUNTER_BITS, count=config.pes, array=True),
        Field("stall_outlier", COUNTER_BITS),
        Field("stall_recon", COUNTER_BITS),
        Field("stall_output", COUNTER_BITS),
        Field("outliers", COUNTER_BITS),
    ]


def broadcast_fields(config, element_bits=None, *, signed=False):
    """One beat of the tile's activation broadcast: every PE's word of ``lanes`` elements
    (``indexes[p]``; GOBO: ``index_bits`` indexes, the default; the MAC tile: signed weights of
    ``element_bits``), the shared activation word and ``last``."""
    bits = config.index_bits if element_bits is None else element_bits
    return [Field("indexes", bits, signed=signed, count=(config.pes, config.lanes), array=True),
            *act_word_fields(config), Field("last", 1)]


def dots_fields(config, dot_bits=None):
    """The ``pes`` dot products of one slot, PE 0 in the low bits (``dot_bits`` defaults to
    ``out_bits``; the MAC tile's are wider)."""
    bits = config.out_bits if dot_bits is None else dot_bits
    return [Field("dots", bits, signed=True, count=config.pes, array=True)]


def side_command_fields(config):
    """One command of the outlier side path: block ``b``'s record words ``start .. stop-1``
    (``off[b]``, ``off[b+1]``) for token ``t``, whose activations start at word ``act_base =
    t*C`` of the activation memory."""
    return [Field("start", offset_bits(config)), Field("stop", offset_bits(config)),
            # An address of the activation memory (at least one bit).
            Field("act_base", _bits_for(config.act_depth - 1))]


def correction_fields(config):
    """The side path's result for one slot: ``pes`` signed ``corr_bits`` outlier corrections,
    row 0 of the block in the low bits."""
    return [Field("corr", config.corr_bits, signed=True, count=config.pes, array=True)]


def tile_output_fields(config):
    """One output beat of a tile (slot ``(b, t)``): ``outputs[p] = Y[b*P + p, t]``, signed
    ``act_bits``; with ``max_passes > 1`` signed ``acc_bits``, wide enough for a pass's
    unrounded partial sums (``Y`` sign-extended in the last pass)."""
    bits = config.acc_bits if config.max_passes > 1 else config.act_bits
    return [Field("outputs", bits, signed=True, count=config.pes, array=True)]


# The streaming tile's off-chip formats (docs/offchip.md) -----------------------------------------

def offchip_header_fields(config):
    """The first bus beat of a row block's off-chip region: ``outlier_words``, the block's
    outlier words ``W_b`` (the reader needs it to request them); the rest of the beat is 0."""
    return [Field("outlier_words", offset_bits(config))]


def bias_block_fields(config):
    """A row block's ``pes`` biases as one off-chip word, row ``b*P`` in the low bits (signed
    ``bias_bits`` each, :func:`bias_word_fields`)."""
    return [Field("bias", config.bias_bits, signed=True, count=config.pes, array=True)]


def stream_counters_fields(config):
    """The streaming tile's ``counters`` port: the tile's (:func:`counters_fields`, same bits)
    followed by ``stall_memory`` (cycles the broadcast waited for a block's weights),
    ``bytes_read`` (bytes of the R beats taken from off-chip memory), ``stall_carry`` (passes
    only) and ``error`` (the sticky cause bits of :data:`STREAM_ERRORS`; 0 on a good run)."""
    return [*counters_fields(config), Field("stall_memory", COUNTER_BITS),
            Field("bytes_read", COUNTER_BITS),
            # max_passes > 1: cycles the broadcast waited while the merge waited for a carry.
            *([Field("stall_carry", COUNTER_BITS)] if config.max_passes > 1 else []),
            Field("error", len(STREAM_ERRORS))]


#: The streaming tiles' sticky error bits (``counters.error``, bit ``i`` = cause ``i``; docs/
#: offchip.md section 3): bad input the off-chip layout (:func:`golden.hwmodel.offchip.
#: offchip_layout`) or the load format refuses but the hardware would otherwise trust. The first
#: two are fetch errors: the fetcher stops requesting, releases every block and the run ends
#: (its outputs are then meaningless); both are cleared at the next launch. ``load_target``
#: covers the loads taken since the launch before the run (it survives the launch that follows
#: them), each such beat dropped.
STREAM_ERRORS = {
    "header": "a row block header's outlier count W_b exceeds a bank (max_outlier_words // 2)",
    "base": "base is not aligned to the AXI bus width",
    "load_target": "a load beat whose target is not ACTIVATION was dropped",
}


def stream_error_message(error):
    """The one-line report of a streaming tile's ``counters.error`` bits (:data:`STREAM_ERRORS`):
    ``"hardware error 0b101: header (...); load_target (...)"``, or None when ``error`` is 0."""
    if not error:
        return None
    causes = [f"{name} ({text})" for i, (name, text) in enumerate(STREAM_ERRORS.items())
              if error >> i & 1]
    return f"hardware error {error:#b}: " + "; ".join(causes)


# The MAC baseline tile's formats (docs/tile.md section 6) ----------------------------------------

def mac_acc_bits(config, weight_bits):
    """Exact width of the MAC tile's ``(dot << shift_dot) + (bias << shift_bias)``, both shifts
    <= max_align_shift: the wider term plus one."""
    dot_bits = weight_bits + config.act_bits + config.dot_bits
    return max(dot_bits, config.bias_bits) + config.max_align_shift + 1


def mac_weight_word_fields(config, weight_bits):
    """One word of the MAC tile's weight memory: PE ``p``'s slice of ``lanes`` weights at
    ``weights[p]`` (:func:`weight_slice_fields`), as the GOBO index word."""
    check_weight_bits(weight_bits)
    return broadcast_fields(config, weight_bits, signed=True)[:1]


def mac_memory_shapes(config, weight_bits):
    """``{name: (word bits, depth)}`` of the MAC tile: dense weights (``P`` slices of ``lanes``
    weights per word, word ``b*C + j`` as the GOBO index memory), activations and biases."""
    shapes = memory_shapes(config)
    return {"weight": (format_bits(mac_weight_word_fields(config, weight_bits)),
                       config.index_depth),
            "activation": shapes["activation"], "bias": shapes["bias"]}


def weight_word_bits(config):
    """Bits of a weight word address (= ceil_log2(depth), the memory port's): the PE field of a
    weight load address starts above them."""
    return (config.index_depth - 1).bit_length()


def weight_load_addr(config, pe, word):
    """Load address of PE ``pe``'s slice of weight word ``word``: ``pe`` above the word bits, so
    the tile splits it without a division.

    Raises
    ------
    ValueError
        If ``pe`` or ``word`` is out of range.
    """
    if not 0 <= pe < config.pes or not 0 <= word < config.index_depth:
        raise ValueError(f"weight slice (PE {pe}, word {word}) is outside {config.pes} PEs x "
                         f"{config.index_depth} words")
    return (pe << weight_word_bits(config)) | word


def mac_load_fields(config, weight_bits):
    """One load beat of the MAC tile: ``target`` (:attr:`LoadTarget.WEIGHT`, ``ACTIVATION`` or
    ``BIAS``), ``addr`` (for weights :func:`weight_load_addr`) and ``data`` (one slice of
    ``lanes`` weights, an activation word or a bias).

    Raises
    ------
    ValueError
        If ``weight_bits`` is not an integer in 2 .. 32.
    """
    shapes = mac_memory_shapes(config, weight_bits)
    weight_addr_bits = _bits_for(config.pes - 1) + weight_word_bits(config)
    return [
        Field("target", _bits_for(max(LoadTarget))),
        Field("addr", max(weight_addr_bits, _bits_for(shapes["activation"][1] - 1),
                          _bits_for(shapes["bias"][1] - 1))),
        Field("data", max(format_bits(weight_slice_fields(config, weight_bits)),
                          shapes["activation"][0], shapes["bias"][0])),
    ]


def mac_layer_fields(config, weight_bits):
    """The MAC tile's static ``layer`` port: as :func:`layer_fields` without ``shift_corr``; its
    dictionary holds integer weights (used only in memory-compression mode)."""
    return [
        *centroids_fields(config, weight_bits),
        Field("blocks", _bits_for(config.blocks_max)),
        Field("chunks", _bits_for(config.chunks_max)),
        Field("tokens", _bits_for(config.max_tokens)),
        Field("shift_dot", _bits_for(config.max_align_shift)),
        Field("shift_bias", _bits_for(config.max_align_shift)),
        Field("out_shift", _bits_for(mac_acc_bits(config, weight_bits))),
        Field("rows", _bits_for(config.max_rows)),
    ]


# Every format at once ---------------------------------------------------------------------------

def packed_formats(config, weight_bits=8):
    """``{name: field list}`` of every packed format of ``config`` (the MAC ones with
    ``weight_bits``), for tests and reports that must cover them all."""
    return {
        "pe_input": pe_input_fields(config),
        "act_word": act_word_fields(config),
        "centroids": centroids_fields(config),
        "accumulator_input": accumulator_input_fields(config),
        "bins": bins_fields(config),
        "mac_input": mac_input_fields(config, weight_bits),
        "weight_slice": weight_slice_fields(config, weight_bits),
        "index_beat": index_beat_fields(config),
        "weight_beat": weight_beat_fields(config, weight_bits),
        "decompressor_outlier": decompressor_outlier_fields(config, weight_bits),
        "decompressor_centroids": centroids_fields(config, weight_bits),
        "load": load_fields(config),
        "layer": layer_fields(config),
        "counters": counters_fields(config),
        **{f"{name}_word": fields for name, fields in memory_word_fields(config).items()},
        "outlier_record": outlier_record_fields(config),
        "broadcast": broadcast_fields(config),
        "dots": dots_fields(config),
        "side_command": side_command_fields(config),
        "corrections": correction_fields(config),
        "tile_output": tile_output_fields(config),
        "offchip_header": offchip_header_fields(config),
        "bias_block": bias_block_fields(config),
        "stream_counters": stream_counters_fields(config),
        "mac_weight_word": mac_weight_word_fields(config, weight_bits),
        "mac_broadcast": broadcast_fields(config, weight_bits, signed=True),
        "mac_load": mac_load_fields(config, weight_bits),
        "mac_layer": mac_layer_fields(config, weight_bits),
    }
