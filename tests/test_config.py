"""The configuration: derived widths are the exact bounds, and bad combinations are refused with
messages that name the parameter."""

import dataclasses

import pytest

from golden.config import PRESETS, GoboConfig, preset


def test_derived_widths_of_the_default():
    c = GoboConfig()
    assert (c.n_centroids, c.dot_bits, c.bin_bits, c.out_bits) == (8, 12, 28, 44)
    assert c.recon_cycles == 8 and c.index_word_bits == 48


def test_widths_hold_the_extreme_dot_product():
    """The most negative activation times the most negative centroid, over the longest dot
    product, all in one bin: the bound out_bits is derived from."""
    for c in (GoboConfig(), GoboConfig(act_bits=8, centroid_bits=8, max_dot_length=3072)):
        a, w = -(1 << (c.act_bits - 1)), -(1 << (c.centroid_bits - 1))
        extreme_bin = c.max_dot_length * a
        assert -(1 << (c.bin_bits - 1)) <= extreme_bin
        assert w * extreme_bin <= (1 << (c.out_bits - 1)) - 1
        # and one bit fewer would not do for a power-of-two length
        if c.max_dot_length & (c.max_dot_length - 1) == 0:
            assert w * extreme_bin > (1 << (c.out_bits - 2)) - 1


@pytest.mark.parametrize("change, error, message", [
    (dict(lanes=0), ValueError, "lanes must be an integer between 1 and 256, not 0"),
    (dict(index_bits=9), ValueError, "index_bits must be an integer between 2 and 8, not 9"),
    (dict(index_bits=3.0), TypeError, "index_bits must be an integer between 2 and 8, not 3.0"),
    (dict(recon_multipliers=3), ValueError, "recon_multipliers must divide the 8 centroids"),
    (dict(act_bits=32, centroid_bits=32), ValueError, "the datapath is limited to 64 bits"),
    (dict(outlier_log_prob=float("nan")), ValueError, "outlier_log_prob must be a finite"),
])
def test_bad_configurations_are_refused(change, error, message):
    with pytest.raises(error, match=message):
        GoboConfig(**change)


def test_tile_width_check_is_separate_from_the_pe():
    wide = GoboConfig(act_bits=32, centroid_bits=16, max_dot_length=1 << 16)
    assert wide.out_bits == 64
    with pytest.raises(ValueError, match="the tile accumulator would need 82 bits"):
        wide.check_tile()
    assert GoboConfig().check_tile().acc_bits == 62


def test_presets_are_frozen_replacements():
    assert preset("bert_large") == GoboConfig()
    assert preset("minilm").replace(max_rows=4096, max_dot_length=4096, max_tokens=16,
                                    max_outlier_words=8192) == GoboConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["bert_large"].lanes = 2
    with pytest.raises(ValueError, match="unknown preset 'huge'; choose one of bert_large"):
        preset("huge")


def test_design_fields_list_what_each_datapath_uses():
    """A report's config (gobo simulate --json): every field for GOBO, none of the GOBO PE's
    and side path's for a dense MAC tile, the quantizer's (and, streamed, the outlier banks')
    for the memory-compression tile; an unknown datapath is named."""
    from golden.config import GOBO_ONLY_FIELDS, design_fields
    c = preset("minilm_stream")
    every = set(c.to_dict())
    assert design_fields(c) == c.to_dict()
    mac = set(design_fields(c, "mac", streamed=True))
    assert mac == every - set(GOBO_ONLY_FIELDS) and {"lanes", "act_bits", "pes"} <= mac
    assert set(design_fields(c, "compressed")) == mac | {"index_bits", "outlier_log_prob"}
    assert set(design_fields(c, "compressed", streamed=True)) == \
        every - {"centroid_bits", "recon_multipliers"}
    with pytest.raises(ValueError, match="unknown datapath 'w8a8'; choose one of gobo, mac, "
                                         "compressed"):
        design_fields(c, "w8a8")
