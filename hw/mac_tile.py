"""The MAC baseline tile: the GOBO tile's schedule, controller and memories around conventional
MAC PEs with dense integer weights (docs/tile.md section 6)."""

from amaranth.hdl import Cat, Module, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In

from golden.hwmodel.mac import mac_out_bits
from golden.hwmodel.packing import (
    LoadTarget,
    mac_acc_bits,
    mac_layer_fields,
    mac_load_fields,
    mac_memory_shapes,
)

from .layouts import struct_layout
from .mac_pe import MacPE
from .params import MacParams, check_memories, check_one_pass
from .tile import bias_bank_specs, broadcast_to_pes, run_members, write_bias_banks
from .tile_controller import TileController
from .tile_memories import MemorySpec, TileMemories

__all__ = ["MacTile", "mac_tile_memory_specs", "mac_load_layout", "mac_layer_layout",
           "check_mac_acc", "mac_core", "connect_mac_core"]


def mac_load_layout(config, weight_bits):
    return struct_layout(mac_load_fields(config, weight_bits))


def mac_layer_layout(config, weight_bits):
    return struct_layout(mac_layer_fields(config, weight_bits))


def mac_tile_memory_specs(config, weight_bits):
    """Dense weights (written one PE's slice of ``lanes`` weights at a time), activations and
    one bias bank per PE."""
    shapes = mac_memory_shapes(config, weight_bits)
    return {"weight": MemorySpec(*shapes["weight"], granularity=config.lanes * weight_bits),
            "activation": MemorySpec(*shapes["activation"]),
            **bias_bank_specs(config)}


def check_mac_acc(config, weight_bits):
    """Refuse a ``weight_bits`` whose MAC accumulator (:func:`golden.hwmodel.packing.
    mac_acc_bits`) exceeds 64 bits or the controller's ``out_shift`` field (ValueError)."""
    check_one_pass(config)       # a MAC tile carries no partial sums
    acc_bits = mac_acc_bits(config, weight_bits)
    if acc_bits > 64:
        raise ValueError(f"the MAC tile accumulator would need {acc_bits} bits; the "
                         f"datapath is limited to 64 bits")
    if acc_bits.bit_length() > config.acc_bits.bit_length():
        raise ValueError(f"weight_bits={weight_bits} needs a {acc_bits}-bit accumulator, "
                         f"whose out_shift does not fit the controller's layer field "
                         f"(sized for {config.acc_bits} bits): raise centroid_bits")


def mac_core(m, config, weight_bits, *, streamed=False):
    """Add a MAC tile's controller (:class:`~hw.tile_controller.TileController` on signed
    ``weight_bits`` elements, ``streamed`` as given) and ``pes`` MAC PEs to ``m``; returns
    ``(ctrl, pes)``."""
    m.submodules.controller = ctrl = TileController(
        config=config, element=signed(weight_bits), dot_bits=mac_out_bits(config, weight_bits),
        acc_bits=mac_acc_bits(config, weight_bits), streamed=streamed)
    units = []
    for p in range(config.pes):
        m.submodules[f"pe{p}"] = unit = MacPE(config=config, weight_bits=weight_bits)
        units.append(unit)
    return ctrl, units


def connect_mac_core(m, tile, ctrl, units):
    """Wire :func:`mac_core`'s parts to each other and to ``tile``'s ``layer``, ``start``,
    ``busy`` and ``o``, the corrections a constant zero stream (no outliers)."""
    layer = tile.layer
    m.d.comb += [
        ctrl.layer.blocks.eq(layer.blocks), ctrl.layer.chunks.eq(layer.chunks),
        ctrl.layer.tokens.eq(layer.tokens), ctrl.layer.rows.eq(layer.rows),
        ctrl.layer.shift_dot.eq(layer.shift_dot), ctrl.layer.shift_bias.eq(layer.shift_bias),
        ctrl.layer.out_shift.eq(layer.out_shift),
        ctrl.start.eq(tile.start), tile.busy.eq(ctrl.busy),
        # No outliers: every slot's corrections are zero and always there.
        ctrl.side.ready.eq(1), ctrl.corr.valid.eq(1),
    ]
    wiring.connect(m, ctrl.o, wiring.flipped(tile.o))
    broadcast_to_pes(m, ctrl, units, "weights")


class MacTile(MacParams, wiring.Component):
    """``Y = X W^T + b`` over ``T`` tokens on ``pes`` MAC PEs, bit-exactly
    :func:`golden.hwmodel.mac_tile.mac_tile_outputs`.

    Everything but the PEs and the weight memory is the GOBO tile's: the same
    :class:`~hw.tile_controller.TileController` (its corrections a constant zero stream), the same
    slot order, output beats, counters and load protocol. Equal ``pes`` and ``lanes`` mean equal
    multiply-accumulates per cycle as the GOBO tile.

    As the GOBO tile, it declares :attr:`fill_drain` rather than a latency (a run's length
    depends on the layer's size).

    Parameters
    ----------
    config : :class:`~golden.config.GoboConfig`
    weight_bits : int
        Width of a dense signed weight, 2 to 32 bits.
    memories : ``"internal"`` or ``"ports"``
        As :class:`~hw.tile.GoboTile`.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`~golden.config.GoboConfig`, ``weight_bits`` not an
        integer or ``memories`` not a string.
    ValueError
        If ``weight_bits`` is outside 2 to 32, its accumulator exceeds 64 bits or the
        controller's ``out_shift`` field, or ``memories`` is not one of ``"internal"``,
        ``"ports"``.

    Members
    -------
    load : ``In(stream.Signature(mac_load_layout(config, weight_bits)))``
        Writes ``{target, addr, data}`` (:func:`golden.hwmodel.packing.mac_load_fields`); a weight
        beat's ``addr`` is :func:`golden.hwmodel.packing.weight_load_addr`. ``ready`` is low
        while busy.
    layer : ``In(mac_layer_layout(config, weight_bits))``
    start, busy, o, counters
        As :class:`~hw.tile.GoboTile`.
    """

    def __init__(self, *, config, weight_bits, memories="internal"):
        self._init_mac(config, weight_bits)
        check_memories(memories)
        check_mac_acc(config, weight_bits)
        self._memories = TileMemories(mac_tile_memory_specs(config, weight_bits), memories)
        super().__init__({
            **self._memories.members(),
            "load": In(stream.Signature(mac_load_layout(config, weight_bits))),
            "layer": In(mac_layer_layout(config, weight_bits)),
            **run_members(config),
        })

    @property
    def memories(self):
        """The :class:`~hw.tile_memories.TileMemories` built from the ``memories`` parameter
        (``memories.place``); read-only."""
        return self._memories

    @property
    def fill_drain(self):
        """Cycles of a run beyond its ``T*B*C`` beats (nothing stalls):
        :attr:`~golden.config.GoboConfig.mac_tile_fill_drain` (4)."""
        return self._config.mac_tile_fill_drain

    def elaborate(self, platform):
        m = Module()
        config, w = self._config, self._weight_bits
        pes = config.pes

        ctrl, units = mac_core(m, config, w)

        mems = self._memories
        mems.build(m, self)
        m.d.comb += self.load.ready.eq(~ctrl.busy)
        load = self.load.payload
        load_xfer = self.load.valid & self.load.ready

        # A weight beat writes PE (addr >> word bits)'s slice of word addr[:word bits].
        weight_wr = mems.write("weight")
        word_bits = len(weight_wr.addr)
        slice_bits = config.lanes * w
        pe_sel = load.addr[word_bits:]
        for p in range(pes):
            m.d.comb += weight_wr.en[p].eq(load_xfer & (load.target == LoadTarget.WEIGHT)
                                           & (pe_sel == p))
        m.d.comb += [weight_wr.addr.eq(load.addr[:word_bits]),
                     weight_wr.data.eq(Cat(*[load.data[:slice_bits]] * pes))]
        act_wr = mems.write("activation")
        m.d.comb += [act_wr.en.eq(load_xfer & (load.target == LoadTarget.ACTIVATION)),
                     act_wr.addr.eq(load.addr), act_wr.data.eq(load.data)]
        write_bias_banks(m, mems, pes, load_xfer & (load.target == LoadTarget.BIAS), load.addr,
                         load.data)

        wiring.connect(m, mems.read("weight"), ctrl.index_rd)
        wiring.connect(m, mems.read("activation"), ctrl.act_rd)
        for p in range(pes):
            wiring.connect(m, mems.read(f"bias{p}"), ctrl.bias_rd[p])

        m.d.comb += self.counters.eq(ctrl.counters)
        connect_mac_core(m, self, ctrl, units)
        return m
