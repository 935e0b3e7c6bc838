"""The host link's command decoder: requests from the UART receiver to the tile, replies to the
UART transmitter, every frame checked by CRC-32 (:mod:`hw.board.protocol`, docs/board.md)."""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.crc.catalog import CRC32_ISO_HDLC
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.config import check_int
from golden.hwmodel.packing import format_bits, load_fields, pack

from ..layouts import tile_output_layout
from ..params import ConfigParams
from ..tile import load_layout
from ..tile_controller import counters_layout, layer_layout
from .protocol import (
    CRC_BYTES,
    HEADER_BYTES,
    VERSION,
    Command,
    LinkSizes,
    Status,
    fingerprint,
    info_fields,
    status_fields,
)
from .uart_rx import check_divisor

__all__ = ["HostLink"]


class HostLink(ConfigParams, wiring.Component):
    """Decode host requests from ``rx``, drive a tile, answer on ``tx``.

    A request's bytes feed a CRC-32 as they arrive; its payload goes to a staging register (or,
    for ``LOAD``, beat by beat into the load buffer), and nothing reaches the tile before the
    trailing CRC has matched: a corrupted request changes nothing and is answered ``BAD_CRC``.
    ``LOAD`` then plays the buffered beats into ``load``; ``LAYER`` sets ``layer``; ``START``
    pulses ``start``. The tile's outputs go to an output buffer as they come (``o.ready`` is
    always high, so a run's cycles are those the cycle model predicts for a free output), which
    ``READ`` returns. A request that stops arriving for ``timeout_bits`` bit times is dropped, so
    a lost byte does not wedge the decoder.

    Parameters
    ----------
    config : :class:`~golden.config.GoboConfig`
        The tile's configuration.
    clocks_per_bit : int
        The UART's divisor (reported by ``INFO``; sets the timeout in clocks).
    load_buffer : int
        Load beats one ``LOAD`` request may carry (1 .. 4096).
    timeout_bits : int
        Bit times of silence inside a request after which it is dropped (at least 20).

    Raises
    ------
    TypeError, ValueError
        For a bad parameter, naming it; ``ValueError`` if a ``LOAD`` of ``load_buffer`` beats or
        a reply would not fit the 16-bit length field.

    Members
    -------
    rx : ``In(stream.Signature(8))``
        Request bytes (from :class:`~hw.board.uart_rx.UartRx`).
    tx : ``Out(stream.Signature(8))``
        Reply bytes (to :class:`~hw.board.uart_tx.UartTx`).
    link_error : ``In(1)``
        A pulse per byte the UART dropped (framing error or overrun); sticky in ``STATUS``.
    load, layer, start : to the tile's ports of the same names.
    busy, o, counters : from the tile's ports of the same names.
    """

    def __init__(self, *, config, clocks_per_bit, load_buffer=16, timeout_bits=4096):
        self._init_config(config)
        self._clocks_per_bit = check_divisor(clocks_per_bit)
        self._load_buffer = check_int("load_buffer", load_buffer, 1, 4096)
        self._timeout_bits = check_int("timeout_bits", timeout_bits, 20)
        self._sizes = sizes = LinkSizes(config)
        if load_buffer * sizes.load > 0xFFFF:
            raise ValueError(f"load_buffer of {load_buffer} beats of {sizes.load} bytes exceeds "
                             f"the 16-bit length field")
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "link_error": In(1),
            "load": Out(stream.Signature(load_layout(config))),
            "layer": Out(layer_layout(config)),
            "start": Out(1),
            "busy": In(1),
            "o": In(stream.Signature(tile_output_layout(config))),
            "counters": In(counters_layout(config)),
        })

    @property
    def sizes(self):
        """The :class:`~hw.board.protocol.LinkSizes` of the configuration (read-only)."""
        return self._sizes

    @property
    def load_buffer(self):
        return self._load_buffer

    def info_word(self):
        """The ``INFO`` reply's word (:func:`~hw.board.protocol.info_fields`)."""
        return pack(info_fields(), {"version": VERSION, "fingerprint": fingerprint(self.config),
                                     "load_buffer": self._load_buffer,
                                     "clocks_per_bit": self._clocks_per_bit})

    def elaborate(self, platform):
        m = Module()
        config, sizes = self._config, self._sizes
        load_bits = format_bits(load_fields(config))
        arg_bytes = max(sizes.load, sizes.layer, 4)
        reply_bytes = max(sizes.status, sizes.info, sizes.output)
        timeout = self._timeout_bits * self._clocks_per_bit

        m.submodules.crc_rx = crc_rx = CRC32_ISO_HDLC(data_width=8).create()
        m.submodules.crc_tx = crc_tx = CRC32_ISO_HDLC(data_width=8).create()
        m.submodules.load_buf = load_buf = Memory(shape=load_bits, depth=self._load_buffer,
                                                  init=[])
        m.submodules.out_buf = out_buf = Memory(shape=tile_output_layout(config),
                                                depth=sizes.output_depth, init=[])
        buf_wr, buf_rd = load_buf.write_port(), load_buf.read_port()
        out_wr, out_rd = out_buf.write_port(), out_buf.read_port()

        # Tile outputs into the output buffer, as they come -----------------------------------
        out_ptr = Signal(range(sizes.output_depth + 1))
        overflow = Signal()
        link_error = Signal()
        m.d.comb += [self.o.ready.eq(1), out_wr.addr.eq(out_ptr), out_wr.data.eq(self.o.payload)]
        with m.If(self.o.valid):
            with m.If(out_ptr == sizes.output_depth):
                m.d.sync += overflow.eq(1)       # a run longer than the buffer: never wrap
            with m.Else():
                m.d.comb += out_wr.en.eq(1)
                m.d.sync += out_ptr.eq(out_ptr + 1)
        with m.If(self.link_error):
            m.d.sync += link_error.eq(1)

        # Request state -------------------------------------------------------------------------
        rx = self.rx
        rx_xfer = rx.valid & rx.ready
        byte = rx.payload
        cmd = Signal(8)
        length = Signal(16)
        count = Signal(16)                      # payload bytes received
        crc_left = Signal(range(CRC_BYTES + 1))
        arg = Signal(arg_bytes * 8)             # the payload's last arg_bytes, newest on top
        error = Signal(8)                       # a Status found before the CRC is checked
        beat_byte = Signal(range(sizes.load))
        beats = Signal(range(self._load_buffer + 1))
        drained = Signal.like(beats)
        idle = Signal(range(timeout + 1))
        run_id = Signal(8)
        ran = Signal()                          # run_id is the last run's, nothing loaded since
        m.d.comb += [crc_rx.data.eq(byte), crc_rx.valid.eq(rx_xfer)]

        def top(nbytes):
            """The last ``nbytes`` payload bytes, first byte lowest."""
            return arg[(arg_bytes - nbytes) * 8:]

        # Reply state ---------------------------------------------------------------------------
        tx = self.tx
        tx_xfer = tx.valid & tx.ready
        header = Signal(HEADER_BYTES * 8)
        sent = Signal(range(HEADER_BYTES + 1))
        units = Signal(16)                      # payload words of the reply
        unit = Signal(16)
        unit_bytes = Signal(range(reply_bytes + 1))
        unit_byte = Signal(range(reply_bytes + 1))
        reply = Signal(reply_bytes * 8)
        reading = Signal()                      # the words come from the output buffer
        read_addr = Signal(16)
        crc_out = Signal(CRC_BYTES * 8)
        m.d.comb += [crc_tx.data.eq(tx.payload), crc_tx.valid.eq(tx_xfer),
                     buf_rd.addr.eq(drained), out_rd.addr.eq(read_addr)]

        outputs = Signal(16)
        m.d.comb += outputs.eq(out_ptr)
        status_word = Cat(self.busy, overflow, link_error, Const(0, 5), outputs,
                          self.counters.as_value())
        assert len(status_word) == format_bits(status_fields(config))

        def answer(status, words=0, word_bytes=0, word=None, from_buffer=False):
            """Reply ``status`` with ``words`` words of ``word_bytes`` bytes (``word``, or
            ``words`` beats of the output buffer from ``read_addr``)."""
            if isinstance(status, int):
                status = Const(status, 8)
            nbytes = words * word_bytes
            nbytes = Const(nbytes, 16) if isinstance(nbytes, int) else nbytes[:16]
            m.d.sync += [header.eq(Cat(status, nbytes)),
                         sent.eq(0), units.eq(words), unit.eq(0), unit_bytes.eq(word_bytes),
                         unit_byte.eq(0), reading.eq(from_buffer)]
            if word is not None:
                m.d.sync += reply.eq(word)
            m.next = "HEADER"

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += rx.ready.eq(1)
                m.d.sync += idle.eq(0)
                with m.If(rx_xfer):
                    m.d.comb += crc_rx.start.eq(1)
                    m.d.sync += cmd.eq(byte)
                    m.next = "LENGTH_LO"

            # Inside a request: silence for `timeout` clocks drops it.
            for state in ("LENGTH_LO", "LENGTH_HI", "PAYLOAD", "CRC"):
                with m.State(state):
                    m.d.comb += rx.ready.eq(1)
                    with m.If(rx_xfer):
                        m.d.sync += idle.eq(0)
                    with m.Elif(idle == timeout - 1):
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += idle.eq(idle + 1)
                    with m.If(rx_xfer):
                        self._receive(m, state, byte, cmd, length, count, crc_left, arg, error,
                                      beat_byte, beats, buf_wr, top)

            with m.State("CHECK"):
                m.d.sync += drained.eq(0)
                with m.If(~crc_rx.match_detected):
                    answer(Status.BAD_CRC)
                with m.Elif(error != 0):
                    answer(error)
                with m.Elif((cmd == Command.LOAD) & (beat_byte != 0)):
                    answer(Status.BAD_LENGTH)       # not a whole number of beats
                with m.Elif(cmd == Command.INFO):
                    answer(Status.OK, 1, sizes.info, Const(self.info_word(), reply_bytes * 8))
                with m.Elif(cmd == Command.STATUS):
                    answer(Status.OK, 1, sizes.status, status_word)
                with m.Elif(cmd == Command.READ):
                    first, n = top(4)[:16], top(4)[16:32]
                    with m.If((n == 0) | (n > sizes.max_read) | (first + n > out_ptr)):
                        answer(Status.RANGE)
                    with m.Else():
                        m.d.sync += read_addr.eq(first)
                        answer(Status.OK, n, sizes.output, from_buffer=True)
                with m.Elif((cmd == Command.START) & ran & (top(1) == run_id)):
                    answer(Status.OK)               # the host repeats a START it saw no reply to
                with m.Elif(self.busy):
                    answer(Status.BUSY)
                # After a LOAD or LAYER, any START is a new run (a new session's first id
                # may equal the last run's).
                with m.Elif(cmd == Command.LOAD):
                    m.d.sync += ran.eq(0)
                    m.next = "DRAIN_READ"
                with m.Elif(cmd == Command.LAYER):
                    m.d.sync += [self.layer.eq(top(sizes.layer)), ran.eq(0)]
                    answer(Status.OK)
                with m.Else():                      # START (the only code left)
                    m.d.comb += self.start.eq(1)
                    m.d.sync += [run_id.eq(top(1)), ran.eq(1), out_ptr.eq(0), overflow.eq(0)]
                    answer(Status.OK)

            # LOAD: the buffered beats into the tile (idle, so load.ready is high).
            with m.State("DRAIN_READ"):
                m.next = "DRAIN_BEAT"
            with m.State("DRAIN_BEAT"):
                m.d.comb += [self.load.valid.eq(1), self.load.payload.eq(buf_rd.data)]
                with m.If(self.load.ready):
                    m.d.sync += drained.eq(drained + 1)
                    with m.If(drained + 1 == beats):
                        answer(Status.OK)
                    with m.Else():
                        m.next = "DRAIN_READ"

            # Reply: header, words, CRC.
            with m.State("HEADER"):
                m.d.comb += [tx.valid.eq(1), tx.payload.eq(header[:8]),
                             crc_tx.start.eq(sent == 0)]
                with m.If(tx_xfer):
                    m.d.sync += [header.eq(header >> 8), sent.eq(sent + 1)]
                    with m.If(sent == HEADER_BYTES - 1):
                        with m.If(units == 0):
                            m.next = "CRC_LATCH"
                        with m.Elif(reading):
                            m.next = "FETCH"
                        with m.Else():
                            m.next = "WORD"
            with m.State("FETCH"):
                m.next = "FETCHED"
            with m.State("FETCHED"):
                m.d.sync += [reply.eq(out_rd.data.as_value()), read_addr.eq(read_addr + 1)]
                m.next = "WORD"
            with m.State("WORD"):
                m.d.comb += [tx.valid.eq(1), tx.payload.eq(reply[:8])]
                with m.If(tx_xfer):
                    m.d.sync += [reply.eq(reply >> 8), unit_byte.eq(unit_byte + 1)]
                    with m.If(unit_byte == unit_bytes - 1):
                        m.d.sync += [unit_byte.eq(0), unit.eq(unit + 1)]
                        with m.If(unit + 1 == units):
                            m.next = "CRC_LATCH"
                        with m.Else():
                            m.next = "FETCH"
            with m.State("CRC_LATCH"):
                m.d.sync += [crc_out.eq(crc_tx.crc), sent.eq(0)]
                m.next = "CRC_SEND"
            with m.State("CRC_SEND"):
                m.d.comb += [tx.valid.eq(1), tx.payload.eq(crc_out[:8])]
                with m.If(tx_xfer):
                    m.d.sync += [crc_out.eq(crc_out >> 8), sent.eq(sent + 1)]
                    with m.If(sent == CRC_BYTES - 1):
                        m.next = "IDLE"
        return m

    def _receive(self, m, state, byte, cmd, length, count, crc_left, arg, error, beat_byte,
                 beats, buf_wr, top):
        """What one request byte does in receive ``state``."""
        sizes = self._sizes
        if state == "LENGTH_LO":
            m.d.sync += length[:8].eq(byte)
            m.next = "LENGTH_HI"
        elif state == "LENGTH_HI":
            full = Cat(length[:8], byte)
            m.d.sync += [length[8:].eq(byte), count.eq(0), beats.eq(0), beat_byte.eq(0),
                         crc_left.eq(CRC_BYTES), error.eq(0)]
            fixed = {Command.INFO: 0, Command.STATUS: 0, Command.START: 1, Command.READ: 4,
                     Command.LAYER: sizes.layer}
            with m.Switch(cmd):
                for code, size in fixed.items():
                    with m.Case(code):
                        with m.If(full != size):
                            m.d.sync += error.eq(Status.BAD_LENGTH)
                with m.Case(Command.LOAD):
                    with m.If((full == 0) | (full > self._load_buffer * sizes.load)):
                        m.d.sync += error.eq(Status.BAD_LENGTH)
                with m.Default():
                    m.d.sync += error.eq(Status.BAD_COMMAND)
            m.next = "PAYLOAD"
            with m.If(full == 0):
                m.next = "CRC"
        elif state == "PAYLOAD":
            m.d.sync += [arg.eq(Cat(arg[8:], byte)), count.eq(count + 1)]
            with m.If((cmd == Command.LOAD) & (error == 0)):
                with m.If(beat_byte == sizes.load - 1):
                    m.d.comb += [buf_wr.en.eq(1), buf_wr.addr.eq(beats),
                                 buf_wr.data.eq(Cat(top(sizes.load - 1), byte))]
                    m.d.sync += [beat_byte.eq(0), beats.eq(beats + 1)]
                with m.Else():
                    m.d.sync += beat_byte.eq(beat_byte + 1)
            with m.If(count + 1 == length):
                m.next = "CRC"
        else:
            m.d.sync += crc_left.eq(crc_left - 1)
            with m.If(crc_left == 1):
                m.next = "CHECK"
