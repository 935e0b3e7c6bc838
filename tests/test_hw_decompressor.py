"""Decompressor (GOBO memory-compression mode) in the Amaranth simulator against
golden.hwmodel.mac.decompress, alone and feeding the MAC baseline PE."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from golden.config import GoboConfig
from golden.hwmodel.mac import decompress, mac_dot
from golden.hwmodel.packing import (
    act_word_fields,
    centroids_fields,
    decompressor_streams,
    pack,
    unpack,
    weight_beat_fields,
)
from hw.decompressor import Decompressor
from hw.mac_pe import MacPE
from hw.testing import consume, produce
from tests.test_hw_pe import check_outputs


def random_case(config, weight_bits, rng, n_rows, max_len, outlier_prob):
    lo, hi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    centroids = rng.integers(lo, hi, size=config.n_centroids, endpoint=True)
    centroids[0], centroids[-1] = lo, hi
    rows = []
    for r in range(n_rows):
        n = int(rng.integers(1, max_len + 1))
        cols = np.flatnonzero(rng.random(n) < outlier_prob)
        if r == 0:   # a whole beat of outliers, back to back
            cols = np.arange(min(n, config.lanes))
        values = rng.integers(lo, hi, size=len(cols), endpoint=True)
        rows.append((rng.integers(0, config.n_centroids, size=n),
                     [(int(c), int(v)) for c, v in zip(cols, values)]))
    return centroids, rows


def golden_beats(config, weight_bits, centroids, rows):
    """Expected output words: the dense weights of every row, padded with 0 to whole beats."""
    fields = weight_beat_fields(config, weight_bits)
    words = []
    for indexes, outliers in rows:
        weights = decompress(config, weight_bits, indexes, centroids, outliers)
        beats = -(-len(weights) // config.lanes)
        padded = np.zeros(beats * config.lanes, dtype=np.int64)
        padded[:len(weights)] = weights
        # Padding lanes carry index 0, so they decompress to centroid 0, not 0.
        padded[len(weights):] = centroids[0]
        for b in range(beats):
            words.append(pack(fields, {"weights": padded[b * config.lanes:(b + 1) * config.lanes],
                                       "last": int(b == beats - 1)}))
    return words


def centroid_word(config, weight_bits, centroids):
    return pack(centroids_fields(config, weight_bits), {"centroids": centroids})


CASES = {
    "lanes4_idx3_w16": (GoboConfig(lanes=4, max_dot_length=64), 16),
    "lanes16_idx3_w8": (GoboConfig(lanes=16, max_dot_length=128), 8),
    "lanes1_idx4_w4": (GoboConfig(lanes=1, index_bits=4, max_dot_length=16), 4),
    "lanes3_idx3_w8": (GoboConfig(lanes=3, max_dot_length=30), 8),
}


@pytest.mark.parametrize("name", CASES)
def test_decompressor_matches_golden_with_gaps_and_backpressure(name):
    config, weight_bits = CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    centroids, rows = random_case(config, weight_bits, rng, 12,
                                  min(config.max_dot_length, 3 * config.lanes + 2), 0.15)
    beats, records = decompressor_streams(config, weight_bits, rows)
    want = golden_beats(config, weight_bits, centroids, rows)
    dut = Decompressor(config=config, weight_bits=weight_bits)
    rng = np.random.default_rng(5)
    received = []

    async def beat_producer(ctx):
        ctx.set(dut.centroids.as_value(), centroid_word(config, weight_bits, centroids))
        await produce(ctx, dut.i, beats, rng=rng, gap_prob=0.3)

    async def outlier_producer(ctx):
        await produce(ctx, dut.outliers, records, rng=rng, gap_prob=0.3)

    async def consumer(ctx):
        await consume(ctx, dut.o, len(want), rng=rng, stall_prob=0.4, received=received)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for bench in (beat_producer, outlier_producer, consumer):
        sim.add_testbench(bench)
    sim.run()
    check_outputs(want, received)


def test_memory_mode_decompressor_feeds_the_mac_pe():
    """Decompressor -> MAC PE, joined with an activation stream: the dot products equal
    mac_dot of the decompressed weights, and a beat without outliers flows at one per cycle."""
    config, weight_bits = GoboConfig(lanes=4, act_bits=8, max_dot_length=64), 8
    rng = np.random.default_rng(9)
    centroids, rows = random_case(config, weight_bits, rng, 6, 40, 0.05)
    acts = [rng.integers(-128, 128, size=len(indexes)) for indexes, _ in rows]
    want = [int(mac_dot(config, weight_bits,
                        decompress(config, weight_bits, idx, centroids, outl), a)[0])
            for (idx, outl), a in zip(rows, acts)]
    beats, records = decompressor_streams(config, weight_bits, rows)
    act_fields = act_word_fields(config)
    act_words = []
    for a in acts:
        padded = np.concatenate([a, np.zeros(-len(a) % config.lanes, dtype=np.int64)])
        act_words += [pack(act_fields, {"acts": padded[b:b + config.lanes]})
                      for b in range(0, len(padded), config.lanes)]

    m = Module()
    m.submodules.dec = dec = Decompressor(config=config, weight_bits=weight_bits)
    m.submodules.mac = mac = MacPE(config=config, weight_bits=weight_bits)
    act_valid, act_ready = Signal(), Signal()
    act_payload = Signal(sum(f.bits for f in act_fields))
    both = dec.o.valid & act_valid
    m.d.comb += [
        mac.i.valid.eq(both),
        mac.i.payload.weights.eq(dec.o.payload.weights),
        mac.i.payload.last.eq(dec.o.payload.last),
        mac.i.payload.acts.eq(act_payload),
        dec.o.ready.eq(mac.i.ready & act_valid),
        act_ready.eq(mac.i.ready & dec.o.valid),
    ]

    class ActStream:   # the shape hw.testing.produce drives
        valid, ready, payload = act_valid, act_ready, act_payload

    received = []
    rng = np.random.default_rng(10)

    async def beat_producer(ctx):
        ctx.set(dec.centroids.as_value(), centroid_word(config, weight_bits, centroids))
        await produce(ctx, dec.i, beats, rng=rng, gap_prob=0.2)

    async def outlier_producer(ctx):
        await produce(ctx, dec.outliers, records)

    async def act_producer(ctx):
        await produce(ctx, ActStream, act_words, rng=rng, gap_prob=0.2)

    async def consumer(ctx):
        await consume(ctx, mac.o, len(want), rng=rng, stall_prob=0.3, received=received)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    for bench in (beat_producer, outlier_producer, act_producer, consumer):
        sim.add_testbench(bench)
    sim.run()
    check_outputs(want, received)


def test_decompress_rejects_unordered_outliers():
    config = GoboConfig(lanes=4)
    with pytest.raises(ValueError, match="ascending"):
        decompress(config, 8, np.zeros(8, dtype=int), np.arange(8), [(3, 1), (2, 1)])
    assert unpack(weight_beat_fields(config, 8),
                  pack(weight_beat_fields(config, 8), {"weights": [1, -2, 3, -4], "last": 1})
                  ) == {"weights": [1, -2, 3, -4], "last": 1}


def test_the_registry_job_expects_what_this_test_expects():
    """hw.designs' decompressor job (golden.hwmodel.pe_jobs.decompressor_job) and this file's
    own golden beats agree word for word, padding lanes included."""
    from golden.hwmodel.pe_jobs import decompressor_job
    config, weight_bits = CASES["lanes3_idx3_w8"]
    centroids, rows = random_case(config, weight_bits, np.random.default_rng(2), 8, 9, 0.2)
    job = decompressor_job(config, weight_bits, centroids, rows, name="cross-check")
    assert [int(w, 16) for w in job["expected"]] == golden_beats(config, weight_bits, centroids,
                                                                 rows)
    assert [int(w, 16) for w in job["streams"]["i"]], "the job carries its index beats"
