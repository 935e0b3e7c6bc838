"""The host link's frame format, shared by the RTL (:mod:`hw.board.link`) and the host
(:mod:`gobo.board_link`); docs/board.md describes it for people.

A request is ``command (1) | length (2) | payload (length) | CRC-32 (4)``, a reply ``status (1) |
length (2) | payload (length) | CRC-32 (4)``; multi-byte fields little-endian; the CRC is
CRC-32/ISO-HDLC (the one of zlib, Ethernet and PKZIP) over every byte before it. Every payload
word is a :func:`golden.hwmodel.packing.pack` word, least significant byte first.

This module imports no Amaranth: the host uses it without the hardware description.
"""

import enum
import json
import zlib

from golden.hwmodel.packing import (
    Field,
    counters_fields,
    format_bits,
    layer_fields,
    load_fields,
    tile_output_fields,
)

__all__ = ["VERSION", "Command", "Status", "HEADER_BYTES", "CRC_BYTES", "MAX_PAYLOAD",
           "nbytes", "LinkSizes", "status_fields", "info_fields", "fingerprint", "frame",
           "parse_header", "check_frame", "crc32"]

#: Protocol version, sent by ``INFO``; bump on any change of this module's formats.
VERSION = 1
HEADER_BYTES = 3
CRC_BYTES = 4
#: The length field is 16 bits.
MAX_PAYLOAD = 0xFFFF


class Command(enum.IntEnum):
    """Request codes (the first byte of a request)."""
    INFO = 0x01     #: no payload; reply: :func:`info_fields`
    LOAD = 0x02     #: payload: 1 .. ``load_buffer`` tile load beats; reply: none
    LAYER = 0x03    #: payload: the tile's ``layer`` word; reply: none
    #: payload: run id (1 byte); the last run's id again, with no LOAD or LAYER since, is
    #: acknowledged without running again (a retried START)
    START = 0x04
    STATUS = 0x05   #: no payload; reply: :func:`status_fields`
    READ = 0x06     #: payload: first beat (2), beats (2); reply: that many output beats


class Status(enum.IntEnum):
    """Reply codes (the first byte of a reply). Anything but ``OK`` carries no payload and
    leaves the board as it was, except a ``LOAD`` refused as ``BUSY`` after a good checksum."""
    OK = 0x00
    BAD_CRC = 0x01      #: the request's checksum did not match: nothing was done
    BAD_COMMAND = 0x02  #: unknown command code
    BAD_LENGTH = 0x03   #: payload length wrong for the command (or over the load buffer)
    BUSY = 0x04         #: LOAD, LAYER or a new START while the tile runs
    RANGE = 0x05        #: READ beyond the outputs written so far, or of 0 beats


def nbytes(bits):
    """Bytes of a word of ``bits`` bits on the link."""
    return (bits + 7) // 8


def status_fields(config):
    """The ``STATUS`` reply: ``running`` (the tile is busy), ``overflow`` (the last run wrote more
    output beats than the output buffer holds), ``link_error`` (a UART framing error or a lost
    byte since reset), ``outputs`` (output beats written by the last run), the tile counters."""
    return [Field("running", 1), Field("overflow", 1), Field("link_error", 1), Field("spare", 5),
            Field("outputs", 16), *counters_fields(config)]


def info_fields():
    """The ``INFO`` reply: protocol :data:`VERSION`, the configuration's :func:`fingerprint`,
    the load buffer's beats and the UART's clocks per bit."""
    return [Field("version", 8), Field("fingerprint", 32), Field("load_buffer", 16),
            Field("clocks_per_bit", 16)]


def fingerprint(config):
    """CRC-32 of the configuration's canonical JSON: the host refuses a board built from
    another configuration."""
    return zlib.crc32(json.dumps(config.to_dict(), sort_keys=True).encode())


class LinkSizes:
    """Byte counts of the link's words for ``config``: ``load`` (one load beat), ``layer``,
    ``output`` (one output beat of ``P`` results), ``status``, ``info``; ``output_depth``, the
    output buffer's beats (``blocks_max * max_tokens``), and ``max_read``, the most beats one
    ``READ`` reply carries."""

    def __init__(self, config):
        self.load = nbytes(format_bits(load_fields(config)))
        self.layer = nbytes(format_bits(layer_fields(config)))
        self.output = nbytes(format_bits(tile_output_fields(config)))
        self.status = nbytes(format_bits(status_fields(config)))
        self.info = nbytes(format_bits(info_fields()))
        self.output_depth = config.blocks_max * config.max_tokens
        self.max_read = MAX_PAYLOAD // self.output
        if self.output_depth > 0xFFFF:
            raise ValueError(f"the output buffer of {self.output_depth} beats exceeds the "
                             f"link's 16-bit beat numbers; lower max_tokens or max_rows")


def crc32(data):
    """CRC-32/ISO-HDLC of ``data`` (bytes), the link's checksum."""
    return zlib.crc32(data)


def frame(code, payload=b""):
    """One request (``code`` a :class:`Command`) or reply (a :class:`Status`) with its CRC."""
    payload = bytes(payload)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"a payload of {len(payload)} bytes exceeds the link's {MAX_PAYLOAD}")
    body = bytes([int(code)]) + len(payload).to_bytes(2, "little") + payload
    return body + crc32(body).to_bytes(CRC_BYTES, "little")


def parse_header(header):
    """``(code, payload length)`` of a frame's first :data:`HEADER_BYTES` bytes."""
    return header[0], int.from_bytes(header[1:3], "little")


def check_frame(data):
    """True if ``data`` (a whole frame) ends in the CRC of the bytes before it."""
    body, crc = data[:-CRC_BYTES], data[-CRC_BYTES:]
    return crc32(body) == int.from_bytes(crc, "little")
