"""The host side of the board link (:mod:`hw.board.protocol`, docs/board.md) over any
pyserial port: a real board's USB-UART (``/dev/ttyUSB0``) or the simulated board
(``socket://127.0.0.1:PORT``); the code is the same.
"""

import time

from golden.hwmodel.packing import tile_output_fields, unpack
from hw.board.protocol import (
    CRC_BYTES,
    HEADER_BYTES,
    VERSION,
    Command,
    LinkSizes,
    Status,
    check_frame,
    fingerprint,
    frame,
    info_fields,
    parse_header,
    status_fields,
)

__all__ = ["LinkError", "BoardLink", "run_on_board"]


class LinkError(Exception):
    """The board did not answer, or kept answering wrongly: one line, for the user."""


class BoardLink:
    """Requests to a GOBO board over ``port`` (an open pyserial ``Serial`` or anything with its
    ``write``, ``read``, ``reset_input_buffer``, ``timeout``).

    A request whose reply is a ``BAD_CRC`` (the board saw a corrupted request) or a reply that
    fails its own CRC is sent again, up to ``retries`` times; each such event is counted in
    :attr:`stats` (``naks``, ``bad_replies``) with the bytes each way (``sent``, ``received``).

    Raises
    ------
    LinkError
        No reply within ``port.timeout`` seconds, an error status, or the retries used up.
    """

    def __init__(self, port, config, *, name="the board", retries=3):
        self.port = port
        self.config = config
        self.name = name
        self.retries = retries
        self.sizes = LinkSizes(config)
        self.stats = {"sent": 0, "received": 0, "naks": 0, "bad_replies": 0, "timeouts": 0,
                      "requests": 0}
        self._run_id = 0

    # One request ------------------------------------------------------------------------------
    def _read(self, n, what):
        data = self.port.read(n)
        self.stats["received"] += len(data)
        if len(data) != n:
            got = f"{len(data)} of {n} bytes" if data else "nothing"
            raise _Timeout(f"{self.name} sent {got} of the {what} within "
                           f"{self.port.timeout:g} s")
        return data

    def request(self, command, payload=b""):
        """Send ``command`` with ``payload``; return the reply's payload (status OK)."""
        message = frame(command, payload)
        for attempt in range(self.retries + 1):
            self.stats["requests"] += 1
            self.port.write(message)
            self.stats["sent"] += len(message)
            try:
                header = self._read(HEADER_BYTES, f"reply to {command.name}")
                status, length = parse_header(header)
                rest = self._read(length + CRC_BYTES, f"{length}-byte reply to {command.name}")
            except _Timeout as e:
                if self.stats["received"] == 0:
                    raise LinkError(f"no reply from {self.name}: {e} (is it connected and "
                                    f"programmed with `make bitstream`?)") from None
                if attempt == self.retries:
                    raise LinkError(str(e)) from None
                # A corrupted length field leaves the board waiting for bytes that never
                # come: its own timeout drops the request; then try again.
                self.stats["timeouts"] += 1
                self._resync()
                continue
            if not check_frame(header + rest):
                self.stats["bad_replies"] += 1
                self._resync()
                continue
            if status == Status.BAD_CRC:
                self.stats["naks"] += 1
                continue
            if status != Status.OK:
                name = Status(status).name if status in iter(Status) else hex(status)
                raise LinkError(f"{self.name} refused {command.name}: {name}")
            return rest[:length]
        raise LinkError(f"{command.name} failed its checksum {self.retries + 1} times: the link "
                        f"to {self.name} is unreliable (lower the baud rate or check the cable)")

    def _resync(self):
        """After a corrupted reply: wait out any rest of it, drop what arrived."""
        time.sleep(0.05)
        self.port.reset_input_buffer()

    # Commands ---------------------------------------------------------------------------------
    def info(self):
        """The board's :func:`~hw.board.protocol.info_fields`; raises :class:`LinkError` if it
        runs another protocol version or configuration."""
        info = unpack(info_fields(), int.from_bytes(self.request(Command.INFO), "little"))
        if info["version"] != VERSION:
            raise LinkError(f"{self.name} speaks link protocol {info['version']}, this host "
                            f"{VERSION}: rebuild the bitstream")
        if info["fingerprint"] != fingerprint(self.config):
            raise LinkError(f"{self.name} was built for another GOBO configuration than "
                            f"preset {self._preset_hint()}: rebuild it or pick its preset")
        return info

    def _preset_hint(self):
        return f"({self.config.pes} PEs x {self.config.lanes} lanes)"

    def load(self, beats, load_buffer, progress=None):
        """Send the tile load beats (ints), ``load_buffer`` per request."""
        for first in range(0, len(beats), load_buffer):
            chunk = beats[first:first + load_buffer]
            payload = b"".join(b.to_bytes(self.sizes.load, "little") for b in chunk)
            self.request(Command.LOAD, payload)
            if progress:
                progress(first + len(chunk), len(beats))

    def set_layer(self, word):
        self.request(Command.LAYER, word.to_bytes(self.sizes.layer, "little"))

    def start(self):
        self._run_id = (self._run_id + 1) % 256
        self.request(Command.START, bytes([self._run_id]))

    def status(self):
        return unpack(status_fields(self.config),
                      int.from_bytes(self.request(Command.STATUS), "little"))

    def read(self, first, count):
        """Output beats ``first .. first+count-1``, each a list of ``P`` signed results."""
        out = []
        fields = tile_output_fields(self.config)
        step = self.sizes.max_read
        for at in range(first, first + count, step):
            n = min(step, first + count - at)
            data = self.request(Command.READ, at.to_bytes(2, "little") + n.to_bytes(2, "little"))
            size = self.sizes.output
            out += [unpack(fields, int.from_bytes(data[k * size:(k + 1) * size], "little"))
                    ["outputs"] for k in range(n)]
        return out


class _Timeout(Exception):
    pass


def run_on_board(link, job, *, wait_s=10.0, progress=None):
    """Load ``job`` (a :func:`golden.hwmodel.tile_jobs.tile_job`) into the board, run it, read
    the outputs and the counters back; return ``(outputs, status, info)``.

    Raises
    ------
    LinkError
        On any link failure, or if the run does not end within ``wait_s`` seconds of polling.
    """
    info = link.info()
    link.load([int(b, 16) for b in job["load"]], info["load_buffer"], progress)
    link.set_layer(int(job["layer"], 16))
    link.start()
    beats = len(job["expected"])
    deadline = time.monotonic() + wait_s
    while True:
        status = link.status()
        if not status["running"] and status["outputs"] >= beats:
            break
        if not status["running"] or time.monotonic() > deadline:
            raise LinkError(f"the run ended with {status['outputs']} of {beats} output beats"
                            if not status["running"] else
                            f"the run did not end within {wait_s:g} s ({status['outputs']} of "
                            f"{beats} output beats)")
    if status["overflow"]:
        raise LinkError("the board's output buffer overflowed")
    return link.read(0, beats), status, info


