"""cocotb bench of the whole board top (:class:`hw.board.top.BoardTop`): the board's UART pins
driven by cocotbext-uart's models, bridged to a TCP socket, so that the host program reaches the
simulated board through pyserial's ``socket://`` URL exactly as it reaches a real one through
``/dev/ttyUSB0`` (docs/board.md).

``$GOBO_VECTORS`` gives ``clocks_per_bit``, ``clock_ns`` and ``port_file`` (where the bench
writes the TCP port it listens on); the bench ends when the host closes the connection and
writes the bytes each way and the cycles simulated to ``$GOBO_RESULTS``.
"""

import logging
import pathlib
import select
import socket

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Timer
from cocotbext.uart import UartSink, UartSource

from sim.bench_io import BenchReport, read_vectors

#: Seconds the bench waits for the host to connect, and for any byte from an idle host.
CONNECT_S = 120
IDLE_S = 300


@cocotb.test(timeout_time=3600, timeout_unit="sec")   # simulated time: a guard only
async def board_serves_host(dut):
    """Bridge the host's TCP connection to the board's UART until the host hangs up."""
    vectors = read_vectors()
    cpb, clock_ns = vectors["clocks_per_bit"], vectors["clock_ns"]
    baud = 1e9 / (cpb * clock_ns)
    cocotb.start_soon(Clock(dut.clk, clock_ns, unit="ns").start())
    # cocotbext-uart logs every byte at INFO: thousands of lines a layer.
    for name in (dut.rx._path, dut.tx._path):
        logging.getLogger(f"cocotb.{name}").setLevel(logging.WARNING)
    dut.rx.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    source, sink = UartSource(dut.rx, baud=baud), UartSink(dut.tx, baud=baud)

    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(CONNECT_S)
    pathlib.Path(vectors["port_file"]).write_text(str(server.getsockname()[1]))
    bench = BenchReport()
    try:
        conn, _ = server.accept()
    except TimeoutError:
        bench.errors.append(f"no host connected within {CONNECT_S} s")
        bench.finish(0)
        return
    conn.setblocking(False)
    sent = received = cycles = idle_polls = 0
    byte_cycles = 10 * cpb
    while True:
        busy = not source.idle() or not sink.idle() or sink.count()
        # Idle: block briefly for the host rather than spin; the board's request timeout
        # still runs because the simulation advances between polls.
        ready, _, _ = select.select([conn], [], [], 0 if busy else 0.002)
        if ready:
            try:
                data = conn.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                break
            source.write_nowait(data)
            sent += len(data)
            idle_polls = 0
        elif not busy:
            idle_polls += 1
            if idle_polls * 0.002 > IDLE_S:
                bench.errors.append(f"the host sent nothing for {IDLE_S} s")
                break
        step = byte_cycles if busy or ready else 64 * byte_cycles
        await Timer(step * clock_ns, unit="ns")
        cycles += step
        if sink.count():
            out = sink.read_nowait()
            received += len(out)
            conn.setblocking(True)
            conn.sendall(bytes(out))
            conn.setblocking(False)
    conn.close()
    server.close()
    bench.jobs.append({"bytes_to_board": sent, "bytes_from_board": received,
                       "uart_baud": baud})
    bench.finish(cycles)
