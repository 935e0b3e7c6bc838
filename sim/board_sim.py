"""The simulated board: :class:`hw.board.top.BoardTop` on Verilator behind
:mod:`sim.board_bench`, reached by pyserial at a ``socket://`` URL (docs/board.md)."""

import contextlib
import pathlib
import tempfile
import threading
import time

from hw.board.top import BoardTop
from hw.verilog import emit

from .runner import BenchFailed, build_design, run_bench

__all__ = ["board_design", "simulated_board", "SIM_CLOCK_NS"]

#: The simulated clock period; with ``clocks_per_bit`` it sets the bench's baud rate.
SIM_CLOCK_NS = 10


def board_design(config, clocks_per_bit, tag):
    """``(verilog, toplevel)`` of the board top for ``config``."""
    name = f"gobo_board_{tag}_cpb{clocks_per_bit}"
    return emit(BoardTop(config=config, clocks_per_bit=clocks_per_bit), name), name


@contextlib.contextmanager
def simulated_board(config, *, tag, clocks_per_bit=4, connect_s=600):
    """Build (once, cached) and start the simulated board; yield ``(url, results)``: the
    ``socket://`` URL to open with pyserial and a dict that holds, after the block, the
    bench's results (``bytes_to_board``, ``bytes_from_board``, ``cycles_simulated``, ...).

    The bench ends when the host closes the port; leaving the block waits for it.

    Raises
    ------
    sim.runner.BenchFailed
        If the bench failed (re-raised when the block ends).
    TimeoutError
        If the simulator did not start listening within ``connect_s`` seconds.
    """
    verilog, toplevel = board_design(config, clocks_per_bit, tag)
    build_dir = build_design(verilog, toplevel)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        port_file = pathlib.Path(tmp) / "port"
        vectors = {"clocks_per_bit": clocks_per_bit, "clock_ns": SIM_CLOCK_NS,
                   "port_file": str(port_file)}

        def serve():
            try:
                results.update(run_bench(build_dir, toplevel, "sim.board_bench", vectors,
                                         name="board"))
            except BenchFailed as e:
                results["error"] = e
            except BaseException as e:        # reported in the caller's thread
                results["error"] = e

        thread = threading.Thread(target=serve, name="board-sim", daemon=True)
        thread.start()
        deadline = time.monotonic() + connect_s
        while not (port_file.exists() and port_file.read_text()):
            if not thread.is_alive() or time.monotonic() > deadline:
                thread.join(timeout=1)
                error = results.get("error")
                if isinstance(error, BaseException):
                    raise error
                raise TimeoutError(f"the simulated board did not start within {connect_s} s")
            time.sleep(0.05)
        try:
            yield f"socket://127.0.0.1:{port_file.read_text()}", results
        finally:
            thread.join()
    error = results.get("error")
    if isinstance(error, BaseException):
        raise error
