"""golden.hwmodel.packing: the explicit array flag, pack's errors, every format's round trip,
bit placements pinned to the words the formats have always had, and the load target codes."""

import random

import numpy as np
import pytest

from golden.config import GoboConfig, preset
from golden.hwmodel import packing
from golden.hwmodel.layer_image import make_image
from golden.hwmodel.packing import (
    Field,
    LoadTarget,
    counters_fields,
    format_bits,
    layer_fields,
    load_fields,
    mac_load_fields,
    memory_word_fields,
    outlier_word_fields,
    pack,
    pack_outlier_word,
    packed_formats,
    pe_beats,
    pe_input_fields,
    unpack,
)

TINY = preset("tiny")
ONE = TINY.replace(lanes=1, pes=1, outlier_lanes=1)

CONFIGS = {
    "tiny": TINY,
    "lanes1_pes1_q1": ONE,
    "lanes3_pes3_q3": TINY.replace(lanes=3, pes=3, outlier_lanes=3),
    "default": GoboConfig(),
}


def random_value(field, rng):
    """A random value of ``field`` in the shape :func:`pack` takes, extremes included."""
    def element():
        if field.record is not None:
            return {f.name: random_value(f, rng) for f in field.record}
        low = -(1 << (field.width - 1)) if field.signed else 0
        high = low + (1 << field.width) - 1
        return rng.choice([low, high, low + rng.getrandbits(field.width)])

    def nest(shape):
        return [nest(shape[1:]) for _ in range(shape[0])] if shape else element()
    return nest(field.shape)


# The explicit array flag ------------------------------------------------------------------------

def test_an_array_field_of_one_element_is_an_array():
    field = Field("acts", 8, signed=True, count=1, array=True)
    assert (field.shape, field.count, field.bits) == ((1,), 1, 8)
    assert pack([field], {"acts": [-1]}) == 0xff
    assert pack([field], {"acts": np.array([-1])}) == 0xff
    assert unpack([field], 0xff) == {"acts": [-1]}
    scalar = Field("last", 1)
    assert (scalar.shape, scalar.count, scalar.array) == ((), 1, False)
    assert unpack([scalar], 1) == {"last": 1}


def test_a_scalar_field_with_a_count_is_refused():
    with pytest.raises(ValueError, match=r"field 'busy' has count=4 but is a scalar: an array "
                                         r"field is declared with array=True"):
        Field("busy", 32, count=4)
    with pytest.raises(ValueError, match="field 'a' count must be a positive integer"):
        Field("a", 3, count=0, array=True)
    with pytest.raises(ValueError, match="field 'a' count must be a positive integer"):
        Field("a", 3, count=(2, 0), array=True)
    with pytest.raises(ValueError, match="field 'a' width must be a positive integer, not 0"):
        Field("a", 0)
    with pytest.raises(TypeError, match="field 'a' array must be a bool, not 1"):
        Field("a", 3, array=1)
    with pytest.raises(ValueError, match="field 'r' is a record and cannot be signed"):
        Field("r", [Field("a", 1)], signed=True)
    with pytest.raises(ValueError, match="field name 'a' appears twice"):
        Field("r", [Field("a", 1), Field("a", 2)])


@pytest.mark.parametrize("fields,values,message", [
    ([Field("acts", 8, signed=True, count=1, array=True)], {"acts": 5},
     r"field 'acts' is an array of 1: it takes a sequence, also of one element, not 5"),
    ([Field("acts", 8, count=4, array=True)], {"acts": np.int64(5)},
     r"field 'acts' is an array of 4: it takes a sequence"),
    ([Field("last", 1)], {"last": [1]},
     r"field 'last' is a scalar: it takes one integer, not a sequence of 1"),
    ([Field("last", 1)], {"last": np.array([1])},
     r"field 'last' is a scalar: it takes one integer, not a sequence of 1"),
    ([Field("acts", 8, count=4, array=True)], {"acts": [1, 2, 3]},
     r"field 'acts' needs 4 values, got 3"),
    ([Field("acts", 8, count=4, array=True)], {"acts": np.zeros(3, int)},
     r"field 'acts' needs 4 values, got 3"),
    ([Field("w", 4, count=(2, 3), array=True)], {"w": [[1, 2, 3], [4, 5]]},
     r"field 'w' needs 2 x 3 values, got"),
    ([Field("w", 4, count=(2, 3), array=True)], {"w": np.zeros(6, int)},
     r"field 'w' needs 2 x 3 values, got 6"),
    ([Field("a", 4)], {"a": 16}, r"field 'a' value 16 does not fit unsigned 4 bits"),
    ([Field("a", 4, signed=True)], {"a": -9}, r"field 'a' value -9 does not fit signed 4 bits"),
    ([Field("a", 4)], {"a": 1.5}, r"field 'a' value 1.5 is not an integer"),
    ([Field("a", 4), Field("b", 1)], {"a": 1}, r"missing field\(s\) 'b'"),
    ([Field("a", 4)], {"a": 1, "c": 0}, r"unknown field\(s\) 'c'"),
    ([Field("r", [Field("v", 1), Field("x", 3)], count=2, array=True)], {"r": [1, 2]},
     r"field 'r' is a record: each element is a dict of v, x, not 1"),
    ([Field("r", [Field("v", 1), Field("x", 3)], count=2, array=True)],
     {"r": [{"v": 1, "x": 9}, {"v": 0, "x": 0}]},
     r"field 'r': field 'x' value 9 does not fit unsigned 3 bits"),
])
def test_pack_names_the_field_it_refuses(fields, values, message):
    with pytest.raises(ValueError, match=message):
        pack(fields, values)


def test_one_lane_beats_pack_and_unpack_as_arrays():
    words = pe_beats(ONE, [5, 0], [-7, 3])
    assert [unpack(pe_input_fields(ONE), w) for w in words] == [
        {"indexes": [5], "acts": [-7], "last": 0}, {"indexes": [0], "acts": [3], "last": 1}]


def test_multi_dimensional_and_record_arrays():
    grid = Field("w", 4, signed=True, count=(2, 3), array=True)
    values = [[1, -2, 3], [-4, 5, -8]]
    word = pack([grid], {"w": values})
    assert word == pack([grid], {"w": np.array(values)})
    # Element [i][j] is element i*3 + j from the low bits.
    assert word == pack([Field("w", 4, signed=True, count=6, array=True)],
                        {"w": [1, -2, 3, -4, 5, -8]})
    assert unpack([grid], word) == {"w": values}
    record = [Field("v", 1), Field("x", 3, signed=True)]
    recs = [{"v": 1, "x": -1}, {"v": 0, "x": 3}]
    word = pack([Field("r", record, count=2, array=True)], {"r": recs})
    assert word == pack([Field("a", 4, count=2, array=True)],
                        {"a": [pack(record, r) for r in recs]})
    assert unpack([Field("r", record, count=2, array=True)], word) == {"r": recs}


# Every format ----------------------------------------------------------------------------------

@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_every_format_round_trips(config):
    rng = random.Random(config.lanes * 31 + config.pes)
    formats = packed_formats(config, weight_bits=6)
    for name, fields in formats.items():
        bits = format_bits(fields)
        for _ in range(10):
            values = {f.name: random_value(f, rng) for f in fields}
            word = pack(fields, values)
            assert 0 <= word < 1 << bits, name
            assert unpack(fields, word) == values, name
            assert pack(fields, unpack(fields, word)) == word, name
    # Every per-lane, per-PE, per-centroid and per-record field is an array, whatever its length.
    for name, fields in formats.items():
        for field in fields:
            if field.name in ("indexes", "acts", "weights", "masks", "busy", "centroids", "bins",
                              "corr", "dots", "outputs", "records"):
                assert field.array, f"{name}.{field.name}"


def test_every_fields_function_is_covered():
    """packed_formats names every ``*_fields`` list of the module (so the round-trip tests and
    hw's layout tests cover it)."""
    config = TINY
    covered = {tuple(fields) for fields in packed_formats(config, weight_bits=6).values()}
    for name in packing.__all__:
        if not name.endswith("_fields") or name == "memory_word_fields":   # a dict of them
            continue
        function = getattr(packing, name)
        try:
            fields = function(config)
        except TypeError:
            fields = function(config, 6)
        assert tuple(fields) in covered, name


# Bit placement: the words of the formats as they have always been -------------------------------

def test_words_keep_their_bit_placement():
    assert pack(pe_input_fields(TINY), {"indexes": [1, 2, 3, 7],
                                        "acts": [-1, 2, -32768, 32767], "last": 1}) \
        == 0x17fff80000002ffffed1
    assert pe_beats(ONE, [5, 0], [-7, 3]) == [0x7ffcd, 0x80018]
    assert pack_outlier_word(TINY, [(1, 2, -3), (3, 63, 32767)]) == 0x1fffffffffa13
    assert pack_outlier_word(ONE, [(0, 9, -2)]) == 0xfffe25
    assert pack(layer_fields(TINY), {"centroids": list(range(-4, 4)), "blocks": 3, "chunks": 4,
                                     "tokens": 2, "shift_dot": 1, "shift_corr": 2,
                                     "shift_bias": 3, "out_shift": 5, "rows": 10}) \
        == 0x28518828830003000200010000fffffffefffdfffc   # shift_bias (5 bits) above shift_corr
    assert pack(counters_fields(TINY), {"cycles": 1, "busy": [2, 3, 4, 5], "stall_outlier": 6,
                                        "stall_recon": 7, "stall_output": 8, "outliers": 9}) \
        == 0x90000000800000007000000060000000500000004000000030000000200000001
    assert pack(load_fields(TINY), {"target": LoadTarget.BIAS, "addr": 7,
                                    "data": 0xfffffffe}) == 0xfffffffe03c
    image = make_image(TINY, indexes=[[1, 2, 3, 4, 5], [6, 7, 0, 1, 2]], centroids=range(8))
    assert image.index_words() == [0x23e8d1, 0x2005]


def test_outlier_word_is_an_array_of_records():
    word = pack_outlier_word(TINY, [(1, 2, -3)])
    records = unpack(outlier_word_fields(TINY), word)["records"]
    assert records == [{"valid": 1, "row": 1, "col": 2, "residual": -3}] + \
        [{"valid": 0, "row": 0, "col": 0, "residual": 0}] * 3
    with pytest.raises(ValueError, match="an outlier word holds 1 records, not 2"):
        pack_outlier_word(ONE, [(0, 1, 1), (0, 2, 2)])


# Load targets ------------------------------------------------------------------------------------

def test_load_target_codes_are_the_documented_ones():
    assert {t.name: int(t) for t in LoadTarget} == {
        "INDEX": 0, "ACTIVATION": 1, "OUTLIER": 2, "OFFSET": 3, "BIAS": 4}
    # The MAC tile's weight memory shares the index memory's code.
    assert LoadTarget.WEIGHT is LoadTarget.INDEX and LoadTarget["WEIGHT"] == 0
    # The memories in code order, and a target field just wide enough for the codes.
    assert [LoadTarget[name.upper()] for name in memory_word_fields(TINY)] == list(LoadTarget)
    assert load_fields(TINY)[0].width == mac_load_fields(TINY, 8)[0].width == 3
