"""golden.hwmodel.tile on its own: the no-stall formula, the minilm headline case, stall causes
and argument checks (the RTL agreement is in tests/test_hw_tile.py)."""

import pytest

from golden.config import preset
from golden.hwmodel.tile import tile_cycles

MINILM = preset("minilm")
TINY = preset("tiny")


@pytest.mark.parametrize("chunks", [8, 9, 24, 96])
@pytest.mark.parametrize("words", [0, 1, 5])
def test_no_stall_runs_take_beats_plus_fill_and_drain(chunks, words):
    blocks, tokens = 3, 4
    result = tile_cycles(MINILM, blocks=blocks, chunks=chunks, tokens=tokens,
                         words_per_block=[words] * blocks)
    ideal = blocks * chunks * tokens
    assert result["ideal_cycles"] == ideal
    assert result["cycles"] == ideal + MINILM.tile_fill_drain == ideal + MINILM.recon_cycles + 4
    assert result["stall_outlier"] == result["stall_recon"] == result["stall_output"] == 0


def test_minilm_384x384_four_tokens_is_near_ideal():
    # 24 blocks x 24 chunks x 4 tokens = 2304 beats; a few outlier words per block.
    words = [(b * 7) % 5 for b in range(24)]
    result = tile_cycles(MINILM, blocks=24, chunks=24, tokens=4, words_per_block=words,
                         rows=384, outliers_per_block=[2 * w for w in words])
    assert result["ideal_cycles"] == 2304
    assert result["cycles"] - 2304 == MINILM.recon_cycles + 4
    assert result["utilization"] > 0.99
    assert result["busy"] == [2304] * MINILM.pes
    assert result["outliers"] == 4 * 2 * sum(words)


def test_slow_side_path_stalls_on_outliers():
    result = tile_cycles(MINILM, blocks=2, chunks=8, tokens=3, words_per_block=[40, 0])
    assert result["stall_outlier"] > 0 and result["stall_recon"] == 0
    # Each slot of block 0 needs 40 word cycles: the run cannot be faster than that.
    assert result["cycles"] >= 3 * 40


def test_short_rows_stall_on_reconstruction():
    result = tile_cycles(TINY, blocks=2, chunks=1, tokens=3, words_per_block=[0, 0])
    assert result["stall_recon"] > 0 and result["stall_outlier"] == 0
    # One row per recon_cycles once the pipeline is full.
    assert result["cycles"] >= 6 * TINY.recon_cycles


def test_busy_counts_only_real_rows():
    result = tile_cycles(TINY, blocks=3, chunks=2, tokens=2, words_per_block=[0, 0, 0], rows=9)
    assert result["busy"] == [12, 8, 8, 8]


@pytest.mark.parametrize("kwargs,message", [
    (dict(blocks=0, chunks=1, tokens=1, words_per_block=[]), "blocks must be a positive"),
    (dict(blocks=2, chunks=1, tokens=1, words_per_block=[1]), "words_per_block must hold 2"),
    (dict(blocks=2, chunks=1, tokens=1, words_per_block=[0, 0], rows=4), "rows=4 does not make"),
])
def test_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tile_cycles(TINY, **kwargs)
