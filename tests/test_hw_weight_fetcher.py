"""The weight fetcher (hw/weight_fetcher.py) alone in the Amaranth simulator, on what its formal
proof (``weight_fetcher_axi_rules``, hw/formal/weight_fetcher.py) found: a corrupt block header
whose ``W_b * beats`` overflows the request counter used to become a 256-beat burst (``arlen``
= -1) across a 4 KB boundary; since then such a header (and an unaligned ``base``) sets a sticky
``error`` bit and releases every block instead of hanging. The tiles' other tests cover the
fetcher on legal images."""

from amaranth.sim import Simulator

from golden.hwmodel.offchip import AXI_BOUNDARY, burst_lengths, word_beats
from hw.formal.weight_fetcher import SMALL
from hw.weight_fetcher import WeightFetcher

BUS = 1
BASE = AXI_BOUNDARY - 4    # the outlier part starts 1 beat below a 4 KB boundary


def requests(header_words, cycles=40, *, base=BASE, bus_bytes=BUS, outcome=None):
    """Run a one-block, one-chunk layer whose header says ``header_words`` outlier words on a
    slave that takes every request at once and answers a beat a cycle. Returns the bursts
    ``[(address, beats)]`` and the final ``loaded``; ``outcome`` (a dict), if given, gets the
    final ``error`` and ``writes``, the words written to the outlier buffer."""
    dut = WeightFetcher(config=SMALL, bus_bytes=bus_bytes)
    bursts = []
    loaded = []
    outcome = {} if outcome is None else outcome
    outcome["writes"] = 0

    async def bench(ctx):
        ctx.set(dut.base, base)
        ctx.set(dut.blocks, 1)
        ctx.set(dut.chunks, 1)
        ctx.set(dut.axi.arready, 1)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        owed = sent = 0
        for _ in range(cycles):
            ctx.set(dut.axi.rvalid, owed > 0)
            ctx.set(dut.axi.rdata, header_words if sent == 0 else 0)
            if ctx.get(dut.axi.arvalid):
                bursts.append((ctx.get(dut.axi.araddr), ctx.get(dut.axi.arlen) + 1))
                owed += bursts[-1][1]
            if owed > 0 and ctx.get(dut.axi.rvalid):
                owed, sent = owed - 1, sent + 1
            outcome["writes"] += ctx.get(dut.outlier_wr.en)
            await ctx.tick()
        loaded.append(ctx.get(dut.loaded))
        outcome["error"] = ctx.get(dut.error)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return bursts, loaded[0]


def _legal(bursts):
    return all(address % AXI_BOUNDARY + beats * BUS <= AXI_BOUNDARY for address, beats in bursts)


def test_a_legal_header_reads_its_block():
    beats = word_beats(SMALL, BUS)
    bank = SMALL.max_outlier_words // 2
    outcome = {}
    bursts, loaded = requests(bank, outcome=outcome)
    assert outcome == {"writes": bank, "error": 0}
    head = beats["header"] + beats["bias"] + beats["index"]
    assert bursts == (burst_lengths(BASE, head, BUS)
                      + burst_lengths(BASE + head * BUS, bank * beats["outlier"], BUS))
    assert len(bursts) == 3 and _legal(bursts) and loaded == 1


def test_a_corrupt_header_never_makes_an_illegal_burst():
    # W_b = 4 > a bank (2): 4 * 2 beats = 8 wraps the 3-bit request counter to 0.
    beats = word_beats(SMALL, BUS)
    bursts, loaded = requests(4)
    assert _legal(bursts), f"a burst crosses a 4 KB boundary: {bursts}"
    assert max(n for _, n in bursts) <= beats["header"] + beats["bias"] + beats["index"]
    # The fetcher requests nothing more, writes no outlier word, flags the header and releases
    # the block (loaded = blocks) so that the tile's run ends.
    outcome = {}
    assert requests(4, outcome=outcome)[1] == 1 and outcome == {"writes": 0, "error": 0b01}
    # W_b = 3: one above a bank; its 6 beats fit the counter (the old RTL read them into the
    # other bank).
    outcome = {}
    bursts, loaded = requests(3, outcome=outcome)
    assert loaded == 1 and outcome == {"writes": 0, "error": 0b01}
    assert max(n for _, n in bursts) <= beats["header"] + beats["bias"] + beats["index"]


def test_an_unaligned_base_requests_nothing_and_ends():
    outcome = {}
    bursts, loaded = requests(1, base=BASE + 1, bus_bytes=2, outcome=outcome)
    assert bursts == [] and loaded == 1 and outcome["error"] == 0b10
    outcome = {}
    bursts, loaded = requests(1, base=BASE, bus_bytes=2, outcome=outcome)    # aligned: good
    assert bursts and loaded == 1 and outcome["error"] == 0
