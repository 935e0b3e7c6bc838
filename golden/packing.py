"""The packed formats the hardware consumes, defined once for golden model, RTL and testbenches.

A format is an ordered list of ``(name, width, signed, count)`` fields, least significant first,
matching ``amaranth.lib.data.StructLayout`` (fields in declaration order from bit 0) with
``ArrayLayout`` members for ``count > 1`` (element 0 at the lowest bits). ``hw/`` builds its
layouts from these lists, so the two cannot drift apart.
"""

import numpy as np

from .fixedpoint import check_signed

__all__ = ["Field", "pe_input_fields", "pack", "unpack", "pe_beats", "to_unsigned", "to_signed"]


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


def pe_beats(config, indexes, acts):
    """The beats that feed one dot product of ``indexes`` (N,) with ``acts`` (N,) into a PE.

    N is padded up to a multiple of ``lanes`` with index 0 and activation 0, which adds nothing.
    Returns a list of packed integers (see :func:`pe_input_fields`).
    """
    indexes = np.asarray(indexes)
    acts = np.asarray(acts)
    if indexes.ndim != 1 or indexes.shape != acts.shape:
        raise ValueError(f"indexes and activations must be 1-D of one length, "
                         f"not {indexes.shape} and {acts.shape}")
    n = len(indexes)
    if not 1 <= n <= config.max_dot_length:
        raise ValueError(f"dot product length {n} is outside 1..max_dot_length="
                         f"{config.max_dot_length}")
    lanes = config.lanes
    beats = -(-n // lanes)
    pad = beats * lanes - n
    idx = np.concatenate([indexes, np.zeros(pad, dtype=indexes.dtype)]).reshape(beats, lanes)
    act = np.concatenate([acts, np.zeros(pad, dtype=acts.dtype)]).reshape(beats, lanes)
    fields = pe_input_fields(config)
    return [pack(fields, {"indexes": idx[b], "acts": act[b], "last": int(b == beats - 1)})
            for b in range(beats)]


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
