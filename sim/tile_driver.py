"""A driver and monitor inside the Verilated model, so that the cocotb tile bench runs a job
without Python in the per-cycle loop (issue 17, items 3 and 4; measured in docs/verification.md).

:func:`wrap_tile` renames a tile's top module to ``<top>__core`` and adds a top module of the
old name around it, with ``clk``, ``rst``, ``layer``, ``busy`` and ``counters`` and the
``bench_*`` ports below. Every input of the tile except ``clk`` and ``rst`` comes from a
register of the wrapper (``layer`` through one, loaded every cycle), so no logic of the tile is
*input-combinational*: Verilator evaluates the tile's combinational logic once per clock edge
instead of on every ``eval()`` (the profile in docs/verification.md: 65 % of the bare minilm
tile's time). A pulse on ``bench_go`` starts one job:

1. read ``bench_beats`` load beats from the file named by the plusarg ``+gobo_load=PATH``
   (default ``gobo_load.bin`` in the simulator's folder; :func:`load_file_bytes`: each beat
   big-endian in ``bench_beat_bytes`` bytes, read with ``$fread``: parsing hex with ``$fscanf``
   took a fifth of the minilm tile's simulation time) and offer each on ``load`` until it
   transfers, idling before a beat with probability ``bench_gap / 2**16``;
2. raise ``start`` in the cycle after the last load transfer;
3. take output beats with ``o.ready`` low with probability ``bench_stall / 2**16``; each
   transfer increments ``bench_out_count`` and holds its payload in ``bench_out_data`` (the
   Python side wakes on that count, once per output beat);
4. raise ``bench_done`` once ``bench_outputs`` beats were taken and ``busy`` is low, or
   ``bench_timeout`` (with ``bench_done``) when ``bench_budget`` cycles after ``bench_go``
   pass first.

The random gaps and stalls come from a 32-bit xorshift seeded by ``bench_seed`` (0 counts as
1), one step per cycle. ``layer`` is registered at every edge, so it may change with
``bench_go`` (the tile first acts in the cycle after that edge). Only tiles
whose ports are exactly the whole-layer tile's are wrapped (:func:`wrappable`); the others (the
streaming tile's AXI port, the compressed tile's weight streams) keep the per-cycle Python
bench.
"""

import re

__all__ = ["wrap_tile", "wrappable", "load_file_bytes", "TILE_PORTS", "BENCH_PORTS",
           "LOAD_FILE", "PROBABILITY_ONE"]

#: The whole-layer tile's ports (hw/tile.py, hw/mac_tile.py): what the wrapper drives.
TILE_PORTS = frozenset({"clk", "rst", "start", "layer", "load__payload", "load__valid",
                        "load__ready", "o__payload", "o__valid", "o__ready", "busy", "counters"})
#: The wrapper's own ports (module docstring).
BENCH_PORTS = ("bench_beat_bytes", "bench_go", "bench_beats", "bench_outputs", "bench_gap",
               "bench_stall", "bench_seed", "bench_budget", "bench_out_count", "bench_out_data",
               "bench_done", "bench_timeout")
#: The load file's default name, relative to the simulator's working folder.
LOAD_FILE = "gobo_load.bin"
#: ``bench_gap`` / ``bench_stall`` of a probability of 1.
PROBABILITY_ONE = 1 << 16


def _port_widths(verilog, toplevel):
    """``{port: (direction, width)}`` of module ``toplevel`` (Yosys declares one per line)."""
    body = re.search(rf"^module\s+{re.escape(toplevel)}\s*\(.*?^endmodule", verilog,
                     re.MULTILINE | re.DOTALL)
    if body is None:
        raise ValueError(f"no module {toplevel!r} in the Verilog")
    ports = {}
    for direction, msb, name in re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);",
                                           body.group(0), re.MULTILINE):
        ports[name] = (direction, int(msb) + 1 if msb else 1)
    return ports


def load_file_bytes(beats, beat_bytes):
    """The load file of ``beats`` (hex strings, as in a bench job): each beat big-endian in
    ``beat_bytes`` bytes (the wrapper's ``bench_beat_bytes``)."""
    return b"".join(int(beat, 16).to_bytes(beat_bytes, "big") for beat in beats)


def wrappable(verilog, toplevel):
    """Whether ``toplevel`` has exactly the whole-layer tile's ports."""
    try:
        return set(_port_widths(verilog, toplevel)) == TILE_PORTS
    except ValueError:
        return False


def wrap_tile(verilog, toplevel):
    """``verilog`` with module ``toplevel`` renamed ``<toplevel>__core`` and a wrapper of the
    old name holding the in-model driver and monitor (module docstring), whose ports are
    ``clk``, ``rst``, ``layer``, ``busy``, ``counters`` and :data:`BENCH_PORTS`.

    Raises
    ------
    ValueError
        If ``toplevel`` is missing or its ports are not the whole-layer tile's.
    """
    widths = _port_widths(verilog, toplevel)
    if set(widths) != TILE_PORTS:
        raise ValueError(f"{toplevel}: ports {sorted(widths)} are not a whole-layer tile's")
    core = f"{toplevel}__core"
    renamed, count = re.subn(rf"^module\s+{re.escape(toplevel)}\s*\(", f"module {core}(",
                             verilog, flags=re.MULTILINE)
    assert count == 1

    def w(name):
        width = widths[name][1]
        return f"[{width - 1}:0] " if width > 1 else ""

    # A port list then declarations, as Yosys writes them (sim.runner.top_ports reads it).
    ports = ["clk", "rst", "layer", "busy", "counters", *BENCH_PORTS]
    return renamed + f"""
// In-model load driver and output monitor for the cocotb bench (sim/tile_driver.py).
module {toplevel}({", ".join(ports)});
  input clk; input rst; input {w('layer')}layer;
  output busy; output {w('counters')}counters;
  output [31:0] bench_beat_bytes; input bench_go;
  input [31:0] bench_beats; input [31:0] bench_outputs;
  input [16:0] bench_gap; input [16:0] bench_stall; input [31:0] bench_seed;
  input [31:0] bench_budget;
  output reg [31:0] bench_out_count; output reg {w('o__payload')}bench_out_data;
  output reg bench_done; output reg bench_timeout;
  localparam IDLE = 0, LOAD = 1, START = 2, RUN = 3;
  reg [1:0] phase = IDLE;
  reg [31:0] rand_state = 1, left = 0, cycles = 0;
  reg {w('layer')}layer_q;
  reg rst_q = 1;
  reg {w('load__payload')}beat;
  localparam BEAT_BYTES = {(widths["load__payload"][1] + 7) // 8};
  reg [8 * BEAT_BYTES - 1:0] raw;
  assign bench_beat_bytes = BEAT_BYTES;
  reg offer = 0, take = 0, go_start = 0;
  integer fd = 0, got;
  reg [8*1024-1:0] path;
  wire load__ready, o__valid;
  wire {w('o__payload')}o__payload;
  wire [31:0] x1 = rand_state ^ (rand_state << 13);
  wire [31:0] x2 = x1 ^ (x1 >> 17);
  wire [31:0] next_rand = x2 ^ (x2 << 5);
  wire gap = {{1'b0, next_rand[15:0]}} < bench_gap;
  wire stall = {{1'b0, next_rand[31:16]}} < bench_stall;
  {core} core(
    .clk(clk), .rst(rst_q), .layer(layer_q), .start(go_start),
    .load__payload(beat), .load__valid(offer), .load__ready(load__ready),
    .o__payload(o__payload), .o__valid(o__valid), .o__ready(take),
    .busy(busy), .counters(counters));
  always @(posedge clk) begin
    layer_q <= layer;
    rst_q <= rst;
    rand_state <= next_rand;
    go_start <= 0;
    if (bench_go) begin
      if (!$value$plusargs("gobo_load=%s", path)) path = "{LOAD_FILE}";
      if (fd != 0) $fclose(fd);
      fd = $fopen(path, "rb");
      if (fd == 0) $fatal(1, "bench: cannot open the load file %0s", path);
      rand_state <= (bench_seed == 0) ? 1 : bench_seed;
      bench_out_count <= 0;
      bench_done <= 0;
      bench_timeout <= 0;
      cycles <= 0;
      left <= bench_beats;
      offer <= 0;
      take <= 0;
      phase <= (bench_beats == 0) ? START : LOAD;
    end else if (phase == LOAD || phase == START) begin
      cycles <= cycles + 1;
      if (phase == START || (offer && load__ready && left == 1)) begin
        if (fd != 0) $fclose(fd);
        fd = 0;
        offer <= 0;
        left <= 0;
        go_start <= 1;
        phase <= RUN;
      end else if ((offer && load__ready) || !offer) begin
        // A beat transferred (or none offered yet): offer the next one unless this is a gap.
        if (offer) left <= left - 1;
        offer <= !gap;
        if (!gap) begin
          got = $fread(raw, fd);
          beat <= raw[{widths["load__payload"][1] - 1}:0];
          if (got != BEAT_BYTES) $fatal(1, "bench: the load file %0s ends before beat %0d", path,
                               bench_beats - left + (offer ? 1 : 0));
        end
      end
      if (cycles >= bench_budget) begin
        bench_timeout <= 1;
        bench_done <= 1;
        offer <= 0;
        phase <= IDLE;
      end
    end else if (phase == RUN) begin
      cycles <= cycles + 1;
      take <= !stall;
      if (take && o__valid) begin
        bench_out_count <= bench_out_count + 1;
        bench_out_data <= o__payload;
      end
      if (!go_start && !busy && bench_out_count >= bench_outputs) begin
        bench_done <= 1;
        take <= 0;
        phase <= IDLE;
      end else if (cycles >= bench_budget) begin
        bench_timeout <= 1;
        bench_done <= 1;
        take <= 0;
        phase <= IDLE;
      end
    end
  end
endmodule
"""
