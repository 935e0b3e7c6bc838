"""The board top (docs/board.md): the link's CRC is zlib's, the UART in the Amaranth
simulator, and the whole board top on Verilator driven by the `gobo board` host code through
pyserial's socket:// URL, on a real MiniLM layer slice with real activations, bit-exact, its
counters against the cycle model, with a corrupted byte each way on the link caught by the CRC."""

import gc
import os
import random
import zlib

import numpy as np
import pytest
from amaranth.lib.crc.catalog import CRC32_ISO_HDLC
from amaranth.sim import Simulator

from gobo.cli import main
from gobo.commands.board import count_mismatches, run_layer
from golden.accel.fc_layers import fc_inputs
from golden.config import preset
from golden.nlp.bert import BertConfig, BertEncoder
from golden.nlp.tokenizer import Tokenizer
from golden.nlp.weights import minilm_dir
from hw.board.protocol import LinkSizes, check_frame, frame
from hw.board.uart_rx import UartRx
from hw.board.uart_tx import UartTx

TINY = preset("tiny")
QUERY = "encoder.layer.0.attention.self.query"


def test_link_crc_is_zlibs_crc32_and_catches_a_flipped_bit():
    rng = random.Random(3)
    for n in (0, 1, 7, 300):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert CRC32_ISO_HDLC().compute(data) == zlib.crc32(data)   # the RTL's = the host's
    message = frame(2, bytes(range(40)))
    assert check_frame(message)
    for bit in (0, 77, 8 * len(message) - 1):
        bad = bytearray(message)
        bad[bit // 8] ^= 1 << (bit % 8)
        assert not check_frame(bytes(bad))


def test_link_sizes_of_the_board_preset():
    sizes = LinkSizes(preset("ulx3s"))
    assert sizes.output == 2 * 16 // 8 and sizes.output_depth == 192 * 16
    with pytest.raises(ValueError, match="16-bit beat numbers"):
        LinkSizes(preset("bert_large").replace(max_tokens=4096))


def _uart_sim(divisor, send, line_override=None):
    """UartTx -> UartRx in the Amaranth simulator; returns (bytes received, frame errors)."""
    tx, rx = UartTx(divisor=divisor), UartRx(divisor=divisor)
    from amaranth.hdl import Module
    m = Module()
    m.submodules.tx, m.submodules.rx = tx, rx
    m.d.comb += rx.rx.eq(tx.tx if line_override is None else line_override)
    got, errors = [], []
    sim = Simulator(m)
    sim.add_clock(1e-8)

    async def source(ctx):
        rng = random.Random(1)
        for byte in send:
            ctx.set(tx.i.payload, byte)
            ctx.set(tx.i.valid, 1)
            await ctx.tick().until(tx.i.ready)
            ctx.set(tx.i.valid, 0)
            gap = rng.choice([0, 0, 3, 17])
            if gap:
                await ctx.tick().repeat(gap)

    async def sink(ctx):
        rng = random.Random(2)
        for _ in range(len(send) * 12 * divisor + 200):
            ready = rng.random() < 0.7
            ctx.set(rx.o.ready, ready)
            await ctx.delay(1e-9)
            if ready and ctx.get(rx.o.valid):
                got.append(ctx.get(rx.o.payload))
            if ctx.get(rx.frame_error):
                errors.append(len(got))
            await ctx.tick()

    sim.add_testbench(source, background=True)
    sim.add_testbench(sink)
    sim.run()
    return got, errors


@pytest.mark.parametrize("divisor", [4, 7, 25])
def test_uart_round_trip(divisor):
    data = [random.Random(divisor).randrange(256) for _ in range(24)] + [0x00, 0xFF, 0x55]
    got, errors = _uart_sim(divisor, data)
    assert got == data and errors == []


def test_uart_receiver_drops_a_byte_without_stop_bit():
    from amaranth.hdl import Module, Signal
    rx = UartRx(divisor=4)
    m = Module()
    m.submodules.rx = rx
    line = Signal(init=1)
    m.d.comb += rx.rx.eq(line)
    seen = {"bytes": [], "errors": 0}
    sim = Simulator(m)
    sim.add_clock(1e-8)

    async def drive(ctx):
        ctx.set(rx.o.ready, 1)
        for byte, stop in ((0xA5, 1), (0x3C, 0), (0x81, 1)):
            for bit in [0] + [(byte >> k) & 1 for k in range(8)] + [stop, 1, 1]:
                ctx.set(line, bit)
                for _ in range(4):
                    await ctx.tick()
                    if ctx.get(rx.o.valid):
                        seen["bytes"].append(ctx.get(rx.o.payload))
                    seen["errors"] += ctx.get(rx.frame_error)
            ctx.set(line, 1)
            await ctx.tick().repeat(40)

    sim.add_testbench(drive)
    sim.run()
    assert seen["bytes"] == [0xA5, 0x81] and seen["errors"] == 1


def test_the_checker_counts_a_flipped_output():
    expected = [[1, -2, 3, 4], [5, 6, 7, -8]]
    assert count_mismatches([list(b) for b in expected], expected, 4) == 0
    corrupted = [list(b) for b in expected]
    corrupted[1][2] ^= 1 << 3
    assert count_mismatches(corrupted, expected, 4) == 1
    assert count_mismatches(corrupted[:1], expected, 4) == 4


class Corrupting:
    """A pyserial port that flips one bit of each byte written at a position in ``write_at`` and
    read at a position in ``read_at`` (0-based, counted over the whole session), as line noise
    would."""

    def __init__(self, port, *, write_at=(), read_at=()):
        self.port, self.write_at, self.read_at = port, set(write_at), set(read_at)
        self.written = self.read_count = 0

    @property
    def timeout(self):
        return self.port.timeout

    def write(self, data):
        data = self._flip(bytearray(data), self.written, self.write_at)
        self.written += len(data)
        return self.port.write(bytes(data))

    def read(self, n):
        data = self._flip(bytearray(self.port.read(n)), self.read_count, self.read_at)
        self.read_count += len(data)
        return bytes(data)

    def reset_input_buffer(self):
        self.port.reset_input_buffer()

    @staticmethod
    def _flip(data, offset, positions):
        for at in positions:
            if 0 <= at - offset < len(data):
                data[at - offset] ^= 0x10
        return data


@pytest.fixture(scope="module")
def real_slice():
    """Layer 0's query weights and bias, 48 x 64 slice, and the real input to that layer on a
    sentence (all-MiniLM-L6-v2, NumPy BERT): 4 tokens, the first 64 features."""
    folder = minilm_dir()
    encoder = BertEncoder.from_files(folder / "model.safetensors",
                                     BertConfig.from_file(folder / "config.json"))
    acts = fc_inputs(encoder, Tokenizer(folder, max_length=16),
                     "The accelerator runs one layer of the encoder.")[QUERY]
    w = encoder.weights
    return (np.asarray(w[f"{QUERY}.weight"])[:48, :64], np.asarray(w[f"{QUERY}.bias"])[:48],
            acts[:TINY.max_tokens, :64])


def test_simulated_board_runs_a_real_minilm_slice_bit_exact(real_slice):
    """The host code of `gobo board` on the Verilated board top: every output bit-exact, every
    counter as the cycle model says; a corrupted request byte (answered BAD_CRC) and a
    corrupted reply byte (caught by the host) are each retried and change nothing."""
    weights, bias, acts = real_slice
    # INFO (7 bytes) is sent twice, its first reply's byte 5 being corrupted; then the first
    # LOAD gets a payload byte corrupted (NAK, sent again); the second LOAD's length field is
    # corrupted, so the board waits for bytes that never come: the host times out, the board
    # drops the request after its own timeout, and the host sends it again.
    frame_bytes = 7 + 16 * LinkSizes(TINY).load
    corrupt = Corrupting(None, write_at=(2 * 7 + 3 + 5, 2 * 7 + 2 * frame_bytes + 1),
                         read_at=(5,))

    def wrap(port):
        corrupt.port = port
        return corrupt

    report = run_layer(TINY, weights, bias=bias, activations=acts, name=QUERY, sim_tag="tiny",
                       clocks_per_bit=4, timeout=4, wrap=wrap)
    assert report["tokens"] == 4 and report["shape"] == [48, 64]
    assert report["outputs_checked"] == 4 * 48 and report["mismatches"] == 0
    assert report["counters_match_model"], (report["counters"], report["expected_counters"])
    assert report["link"]["naks"] == 1            # the board refused the corrupted LOAD
    assert report["link"]["bad_replies"] == 1     # the host refused the corrupted INFO reply
    assert report["link"]["timeouts"] == 1        # the request with a corrupted length
    assert not report["link_error_flag"]
    assert report["rel_rmse_vs_fp32"] < 0.3
    assert report["link"]["sent"] > 2000 and report["sim_cycles"] > 0


def test_constant_outputs_have_no_relative_error():
    """All-zero weights give constant FP32 outputs: the relative RMSE is None (n/a), not nan."""
    report = run_layer(TINY, np.zeros((8, 16), np.float32), tokens=2, name="zeros",
                       sim_tag="tiny", clocks_per_bit=4)
    assert report["mismatches"] == 0 and report["counters_match_model"]
    assert report["rel_rmse_vs_fp32"] is None


def test_cli_without_a_board_says_so_in_one_line(capsys):
    controller, device = os.openpty()
    try:
        status = main(["board", str(minilm_dir() / "model.safetensors"), "--tensor",
                       f"{QUERY}.weight", "--port", os.ttyname(device), "--timeout", "0.3"])
    finally:
        os.close(controller)
        os.close(device)
    err = capsys.readouterr().err.strip()
    assert status == 2 and "\n" not in err
    assert err.startswith("gobo: error: no reply from /dev/pts/") and "make bitstream" in err


@pytest.mark.parametrize("args, message", [
    (["--port", "/dev/gobo-no-such-port"],
     "cannot open /dev/gobo-no-such-port: No such file or directory"),
    (["--port", "/dev/null"], "cannot open /dev/null: Inappropriate ioctl for device (is it a "
                              "serial port?)"),
    (["--port", "x", "--preset", "tiny"], "--preset needs --sim"),
    (["--sim", "--tokens", "17"], "--tokens must be 1..16 for preset ulx3s, not 17"),
    (["--sim", "--clocks-per-bit", "2"], "--clocks-per-bit must be 4..65535"),
    (["--sim", "--timeout", "0"], "--timeout must be a positive number of seconds, not 0.0"),
])
def test_cli_bad_input_is_one_line(capsys, args, message):
    status = main(["board", str(minilm_dir() / "model.safetensors"), "--tensor",
                   f"{QUERY}.weight", *args])
    err = capsys.readouterr().err.strip()
    assert status == 2 and message in err and "\n" not in err, err


def _link_replies(requests, *, busy=False):
    """Send ``requests`` (whole frames) byte by byte into a tiny-preset HostLink in the Amaranth
    simulator (the tile's side: ``busy`` held, no outputs); return the reply frames."""
    from hw.board.link import HostLink
    from hw.board.protocol import CRC_BYTES, HEADER_BYTES
    link = HostLink(config=TINY, clocks_per_bit=4, load_buffer=2, timeout_bits=20)
    replies, loads, starts = [], [], []
    sim = Simulator(link)
    sim.add_clock(1e-8)

    async def bench(ctx):
        ctx.set(link.busy, busy)
        ctx.set(link.load.ready, 1)
        ctx.set(link.tx.ready, 1)
        for request in requests:
            for byte in request:
                ctx.set(link.rx.payload, byte)
                ctx.set(link.rx.valid, 1)
                await ctx.tick().until(link.rx.ready)
                ctx.set(link.rx.valid, 0)
            reply = bytearray()
            for _ in range(2000):
                await ctx.delay(1e-9)
                if ctx.get(link.load.valid):
                    loads.append(ctx.get(link.load.payload).as_value().value)
                if ctx.get(link.start):
                    starts.append(len(replies))
                if ctx.get(link.tx.valid):
                    reply.append(ctx.get(link.tx.payload))
                    if len(reply) >= HEADER_BYTES and len(reply) == (
                            HEADER_BYTES + int.from_bytes(reply[1:3], "little") + CRC_BYTES):
                        await ctx.tick()
                        break
                await ctx.tick()
            replies.append(bytes(reply))

    sim.add_testbench(bench)
    sim.run()
    return replies, loads, starts


def test_link_answers_every_request_with_a_checked_frame():
    from hw.board.protocol import Command, LinkSizes, Status
    sizes = LinkSizes(TINY)
    beat = (1 << (8 * sizes.load - 9)) | 0x5A
    corrupted = bytearray(frame(Command.LOAD, beat.to_bytes(sizes.load, "little")))
    corrupted[4] ^= 0x01
    requests = {
        "info": frame(Command.INFO),
        "bad crc": bytes(corrupted),
        "bad command": frame(0x7E),
        "bad length": frame(Command.START, b"\x01\x02"),
        "half a beat": frame(Command.LOAD, b"\x01"),
        "over the buffer": frame(Command.LOAD, bytes(3 * sizes.load)),
        "read nothing": frame(Command.READ, bytes(4)),
        "load": frame(Command.LOAD, 2 * beat.to_bytes(sizes.load, "little")),
        "status": frame(Command.STATUS),
    }
    replies, loads, _ = _link_replies(list(requests.values()))
    assert all(check_frame(r) for r in replies), replies
    got = dict(zip(requests, (r[0] for r in replies)))
    assert got == {"info": Status.OK, "bad crc": Status.BAD_CRC, "bad command":
                   Status.BAD_COMMAND, "bad length": Status.BAD_LENGTH,
                   "half a beat": Status.BAD_LENGTH, "over the buffer": Status.BAD_LENGTH,
                   "read nothing": Status.RANGE, "load": Status.OK, "status": Status.OK}
    assert loads == [beat, beat]        # only the good LOAD reached the tile, both beats
    info = int.from_bytes(replies[0][3:-4], "little")
    from golden.hwmodel.packing import unpack
    from hw.board.protocol import VERSION, fingerprint, info_fields
    assert unpack(info_fields(), info) == {"version": VERSION, "fingerprint": fingerprint(TINY),
                                          "load_buffer": 2, "clocks_per_bit": 4}


def test_link_refuses_loads_and_starts_while_the_tile_runs():
    from hw.board.protocol import Command, LinkSizes, Status
    sizes = LinkSizes(TINY)
    replies, loads, starts = _link_replies([frame(Command.LOAD, bytes(sizes.load)),
                                            frame(Command.START, b"\x01"),
                                            frame(Command.LAYER, bytes(sizes.layer))], busy=True)
    assert [r[0] for r in replies] == [Status.BUSY] * 3 and loads == [] and starts == []


def test_link_starts_a_run_once_per_id_until_something_is_loaded():
    """A retried START (same id) does not run again; after a LAYER or LOAD the same id does."""
    from hw.board.protocol import Command, LinkSizes, Status
    sizes = LinkSizes(TINY)
    start = frame(Command.START, b"\x07")
    replies, _, starts = _link_replies([start, start, frame(Command.LAYER, bytes(sizes.layer)),
                                        start, frame(Command.LOAD, bytes(sizes.load)), start,
                                        frame(Command.START, b"\x08")])
    assert [r[0] for r in replies] == [Status.OK] * 7
    assert starts == [0, 3, 5, 6]         # the requests that pulsed start


def test_board_top_verilog_is_lint_clean(tmp_path):
    from hw.verilog import lint
    from sim.board_sim import board_design
    verilog, top = board_design(TINY, 4, "lint")
    path = tmp_path / f"{top}.v"
    path.write_text(verilog)
    lint(path, top)


def test_bitstream_plan_puts_the_link_on_the_ulx3s_pins():
    """The build plan of `make bitstream` (not run: that takes minutes), on a tiny-preset twin of
    the ULX3S entry: the FT231X pins, the 25 MHz constraint, the fixed seed and the report."""
    import dataclasses

    from hw.board.boards import BOARDS, PinTop, board
    from synth.bitstream import NAME, nextpnr_options
    spec = dataclasses.replace(board("ulx3s-85f"), preset="tiny")
    assert spec.clocks_per_bit == 25 and BOARDS["ulx3s-85f"].config == preset("ulx3s")
    plan = spec.platform().build(PinTop(spec), name=NAME, do_build=False,
                                 nextpnr_opts=nextpnr_options(7))
    lpf = plan.files[f"{NAME}.lpf"]
    lpf = lpf.decode() if isinstance(lpf, bytes) else lpf
    for pin in ('"M1"', '"L4"', '"G2"', '"B2"'):        # uart rx, uart tx, clk25, led 0
        assert f"SITE {pin}" in lpf, pin
    assert "25000000" in lpf
    script = plan.files[f"build_{NAME}.sh"]
    script = script.decode() if isinstance(script, bytes) else script
    assert "--seed 7" in script and "--report report.json" in script
    with pytest.raises(ValueError, match="unknown board 'de10'; choose one of ulx3s-85f"):
        board("de10")


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_parameters_are_checked_with_their_names():
    from hw.board.link import HostLink
    with pytest.raises(ValueError, match="divisor must be an integer between 4 and 65535, not 3"):
        UartRx(divisor=3)
    with pytest.raises(TypeError, match="divisor must be an integer"):
        UartTx(divisor=4.0)
    with pytest.raises(ValueError, match="load_buffer must be an integer between 1 and 4096"):
        HostLink(config=TINY, clocks_per_bit=4, load_buffer=0)
    with pytest.raises(ValueError, match="exceeds the 16-bit length field"):
        HostLink(config=preset("ulx3s"), clocks_per_bit=4, load_buffer=4096)
    gc.collect()    # the half-built components warn when collected: here, under the filter
