"""The designs `make synth` compares: GOBO PEs, the MAC baselines, the memory-compression
decompressor, the tiles built from them (synthesized with their memories as ports), and the
design-space sweep points. Every design is built from a :class:`~golden.config.GoboConfig`
(plus ``weight_bits`` for the baselines)."""

import dataclasses
import itertools

from golden.config import MAC_FLAVOURS, PRESETS, mac_flavour
from golden.hwmodel.mac import layer_memory_bits
from hw.designs import KINDS, Design

__all__ = ["SynthDesign", "synth_design", "gobo", "mac", "decompressor", "gobo_tile", "mac_tile",
           "compressed_tile", "compressed_stream_tile",
           "stream_tile", "default_designs", "sweep_designs", "PAIRS", "TILE_KINDS", "TILE_SHAPE",
           "mac_stream_tile", "comparison_tiles",
           "TILE_ECP5_SKIPPED", "memory_bits", "PE_ALTERNATIVES", "ALTERNATIVE_ACT_BITS",
           "alternative_designs"]

#: Kinds whose Verilog is a whole tile (``pes`` PEs, controller, memories as ports).
TILE_KINDS = tuple(name for name, entry in KINDS.items() if entry.tile)


@dataclasses.dataclass(frozen=True)
class SynthDesign:
    """A registered :class:`hw.designs.Design` as synthesis sees it: tiles are emitted with
    their memories as ports (the logic alone), and a design may skip ECP5."""
    design: Design
    #: Why this design gets OSU figures and transistors only (no synth_ecp5 / nextpnr); None:
    #: it gets ECP5 figures too.
    ecp5_skipped: str = None

    @property
    def name(self):
        return self.design.name

    @property
    def top(self):
        return self.design.name

    @property
    def kind(self):
        return self.design.kind

    @property
    def config(self):
        return self.design.config

    @property
    def weight_bits(self):
        return self.design.weight_bits

    @property
    def is_tile(self):
        return self.design.is_tile

    @property
    def lanes(self):
        return self.design.config.lanes

    @property
    def pes(self):
        return self.design.pes

    @property
    def ops_per_cycle(self):
        return self.design.ops_per_cycle

    def verilog(self):
        return self.design.verilog(memories="ports" if self.is_tile else "internal")

    def digest(self, text):
        return Design.digest(text)

    def describe(self):
        return {**self.design.describe(),
                **({"ecp5_skipped": self.ecp5_skipped} if self.ecp5_skipped else {})}

    def size(self):
        """Rough cost, to start the largest designs first."""
        return self.design.cost()


def synth_design(kind, name, config, weight_bits=None, **options):
    """A :class:`SynthDesign` of registered ``kind`` with top module ``name``."""
    return SynthDesign(Design(kind, config, weight_bits, name=name), **options)


def gobo(name, config):
    return synth_design("gobo_pe", f"gobo_pe_{name}", config)


def mac(flavour, lanes=16):
    config, weight_bits = mac_flavour(flavour, lanes=lanes)
    return synth_design("mac_pe", f"mac_pe_{flavour}_lanes{lanes}", config, weight_bits)


def decompressor(weight_bits=16, **changes):
    config = PRESETS["bert_large"].replace(**changes)
    return synth_design("decompressor", f"gobo_decomp_w{weight_bits}_lanes{config.lanes}", config,
                   weight_bits)


#: Tiles are 2 PEs x 16 lanes (32 MAC-equivalent ops per cycle) with one outlier lane: the PEs are
#: the paper's lanes-16 PE, and one record per cycle is about 10x the 0.1 records per cycle that
#: P*L = 32 lanes need at BERT's 0.3 % outliers (the minilm preset's 16 x 16 tile has 4). A larger
#: tile multiplies the synthesis time (docs/synthesis.md, "Tiles").
TILE_SHAPE = {"pes": 2, "lanes": 16, "outlier_lanes": 1}

#: Why tiles get no ECP5 figures in the default run (measured; it goes into the JSON and synth.md).
TILE_ECP5_SKIPPED = (
    "`gobo synth --tiles-ecp5` (the seven tiles alone, with ECP5) took 566 s on 2026-11-25 "
    "(the GOBO A16 tile: 70 s of synth_ecp5 and 135 s of nextpnr against 29 s for its OSU "
    "figures), which would take `make synth` past its 10-minute budget; its figures are in "
    "build/reports/tiles_ecp5 and docs/synthesis.md")


def _tile_name(kind, shape, suffix):
    return f"{kind}_p{shape['pes']}_l{shape['lanes']}_{suffix}"


def gobo_tile(act_bits, shape=None):
    """The GOBO tile (``minilm`` memories, :data:`TILE_SHAPE`) at activation width
    ``act_bits``."""
    shape = TILE_SHAPE if shape is None else shape
    config = PRESETS["minilm"].replace(act_bits=act_bits, **shape)
    return synth_design("gobo_tile", _tile_name("gobo_tile", shape, f"a{act_bits}"), config,
                   ecp5_skipped=TILE_ECP5_SKIPPED)


def stream_tile(shape=None):
    """The streaming GOBO tile (``minilm_stream`` memories, :data:`TILE_SHAPE`, 16-byte AXI
    port): the A16 tile's datapath plus the weight fetcher and the double-buffered banks."""
    shape = TILE_SHAPE if shape is None else shape
    config = PRESETS["minilm_stream"].replace(**shape)
    return SynthDesign(Design("gobo_stream_tile", config,
                              name=_tile_name("gobo_stream_tile", shape, "a16")),
                       ecp5_skipped=TILE_ECP5_SKIPPED)


def mac_stream_tile(flavour, shape=None):
    """The streaming MAC baseline tile of ``flavour`` (``minilm_stream`` memories,
    :data:`TILE_SHAPE`, 16-byte AXI port), to stand beside :func:`stream_tile`."""
    shape = TILE_SHAPE if shape is None else shape
    config, weight_bits = mac_flavour(flavour, base="minilm_stream", **shape)
    return synth_design("mac_stream_tile", _tile_name("mac_stream_tile", shape, flavour), config,
                        weight_bits, ecp5_skipped=TILE_ECP5_SKIPPED)


def compressed_stream_tile(flavour="w16a16", shape=None):
    """The streaming memory-compression tile (``minilm_stream`` memories, :data:`TILE_SHAPE`,
    16-byte AXI port): the fetcher, the GOBO banks, the block decompressor, the dense banks and
    the MAC tile's datapath of ``flavour``."""
    shape = TILE_SHAPE if shape is None else shape
    config, weight_bits = mac_flavour(flavour, base="minilm_stream", **shape)
    return SynthDesign(Design("compressed_stream_tile", config, weight_bits,
                              name=_tile_name("compressed_stream_tile", shape, flavour)),
                       ecp5_skipped=TILE_ECP5_SKIPPED)


def mac_tile(flavour, shape=None, compressed=False):
    """The MAC baseline tile of ``flavour`` or (``compressed``) its memory-compression mode."""
    shape = TILE_SHAPE if shape is None else shape
    config, weight_bits = mac_flavour(flavour, base="minilm", **shape)
    kind = "compressed_tile" if compressed else "mac_tile"
    return synth_design(kind, _tile_name(kind, shape, flavour), config, weight_bits,
                   ecp5_skipped=TILE_ECP5_SKIPPED)


def compressed_tile(flavour="w16a16", shape=None):
    return mac_tile(flavour, shape, compressed=True)


def comparison_tiles(design):
    """``(whole-layer tile, streaming tile or None)``: the names of the synthesized 2 x 16 tiles
    (:data:`TILE_SHAPE`, :func:`default_designs`) standing for ``design`` in the energy and
    latency reports: ``gobo`` (A16), ``gobo_a8``, ``gobo_a4``, a MAC flavour (``w16a16``,
    ``w8a8``, ``w4a4``) or the memory-compression mode (``compressed``: W16A16, or
    ``compressed_<flavour>``). The whole-layer tile gives the logic's area and power; the
    streaming tile, the clock of the streamed design (None: GOBO A8 and A4 have no streaming
    tile).

    Raises
    ------
    ValueError
        If ``design`` is none of these.
    """
    shape = TILE_SHAPE
    if design in ("gobo", "gobo_a8", "gobo_a4"):
        act = design.partition("_a")[2] or "16"
        return (_tile_name("gobo_tile", shape, f"a{act}"),
                _tile_name("gobo_stream_tile", shape, "a16") if act == "16" else None)
    if design in MAC_FLAVOURS:
        return (_tile_name("mac_tile", shape, design),
                _tile_name("mac_stream_tile", shape, design))
    kind, _, flavour = design.partition("_")
    if kind == "compressed" and (flavour or "w16a16") in MAC_FLAVOURS:
        flavour = flavour or "w16a16"
        return (_tile_name("compressed_tile", shape, flavour),
                _tile_name("compressed_stream_tile", shape, flavour))
    raise ValueError(f"no synthesized tile stands for {design!r}; the designs are gobo, "
                     f"gobo_a8, gobo_a4, {', '.join(MAC_FLAVOURS)}, compressed, "
                     f"compressed_<flavour>")


#: GOBO PE at each baseline's activation width: ``flavour: GOBO design name``.
PAIRS = {"w16a16": "gobo_pe_bert_large", "w8a8": "gobo_pe_bert_large_a8",
         "w4a4": "gobo_pe_bert_large_a4"}


def default_designs():
    """The default `make synth` set (under 10 minutes on 2 cores): GOBO paper/lanes4/lanes1,
    GOBO lanes 16 at activation widths 8 and 4 (to pair with W8A8 and W4A4), the three MAC
    flavours at lanes 16, the decompressor, and the 2 x 16 tiles: GOBO at activation widths 16,
    8, 4, the streaming GOBO A16 tile and the three streaming MAC baselines (their clocks are
    the latency report's), the three MAC tiles and the W16A16 memory-compression tile,
    whole-layer and streamed. ``lanes16_idx4`` went to
    the sweep: its ``synth_ecp5`` + nextpnr alone took 6 to 11 minutes."""
    large = PRESETS["bert_large"]
    return [
        gobo("bert_large", large), gobo("lanes4", PRESETS["lanes4"]),
        gobo("lanes1", PRESETS["lanes1"]),
        gobo("bert_large_a8", large.replace(act_bits=8)),
        gobo("bert_large_a4", large.replace(act_bits=4)),
        *[mac(flavour) for flavour in MAC_FLAVOURS],
        decompressor(16),
        *[gobo_tile(act_bits) for _, act_bits in MAC_FLAVOURS.values()],
        stream_tile(), *[mac_stream_tile(flavour) for flavour in MAC_FLAVOURS],
        *[mac_tile(flavour) for flavour in MAC_FLAVOURS],
        compressed_tile("w16a16"),
        compressed_stream_tile("w16a16"),
    ]


SWEEP = {"lanes": (1, 4, 8, 16), "index_bits": (3, 4), "act_bits": (8, 16)}


def sweep_designs(kinds=("gobo_pe",)):
    """GOBO PEs over lanes x index_bits x act_bits x recon_multipliers in {1, 2**index_bits},
    one point per PE kind of ``kinds`` (the present ``gobo_pe`` by default; any of
    :data:`PE_ALTERNATIVES` too)."""
    designs = []
    for lanes, idx, act in itertools.product(*SWEEP.values()):
        for mults in (1, 1 << idx):
            config = PRESETS["bert_large"].replace(lanes=lanes, index_bits=idx, act_bits=act,
                                              recon_multipliers=mults)
            point = f"l{lanes}_i{idx}_a{act}_m{mults}"
            designs += [gobo(point, config) if kind == "gobo_pe" else
                        synth_design(kind, f"{kind}_{point}", config) for kind in kinds]
    return designs


#: The alternative GOBO PEs of issue 18 item 7 (docs/efficiency.md, "PE alternatives"), measured
#: beside the present PE ``gobo_pe`` and the MAC PEs by ``gobo synth --alternatives``.
PE_ALTERNATIVES = ("gobo_pe_collision", "gobo_pe_spill")
#: Activation widths of that comparison (the MAC flavours' with equal activation width pair up).
ALTERNATIVE_ACT_BITS = (16, 8, 4)
_ALTERNATIVES_OSU_ONLY = ("PE alternatives: OSU area and Fmax only (ECP5 is not part of the "
                          "comparison)")


def alternative_designs(act_bits=ALTERNATIVE_ACT_BITS, kinds=PE_ALTERNATIVES):
    """The PE alternatives' comparison, all at the ``minilm`` preset (16 lanes, 3-bit indexes,
    one reconstruction multiplier, dot products up to 1536): for each activation width the
    present GOBO PE, each alternative of ``kinds``, and the MAC PE of equal activation width
    (W16A16, W8A8, W4A4), OSU only."""
    designs = []
    minilm = PRESETS["minilm"]
    flavours = {a: f for f, (_, a) in MAC_FLAVOURS.items()}
    for act in act_bits:
        config = minilm.replace(act_bits=act)
        for kind in ("gobo_pe", *kinds):
            designs.append(synth_design(kind, f"{kind}_minilm_a{act}", config,
                                        ecp5_skipped=_ALTERNATIVES_OSU_ONLY))
        if act in flavours:
            mac_config, weight_bits = mac_flavour(flavours[act], base="minilm")
            designs.append(synth_design("mac_pe", f"mac_pe_{flavours[act]}_minilm", mac_config,
                                        weight_bits, ecp5_skipped=_ALTERNATIVES_OSU_ONLY))
    return designs


def _holds(design, name):
    """What memory ``name`` of a tile holds, for the reports."""
    c, w = design.config, design.weight_bits
    per_word = f"{c.pes} PEs x {c.lanes} lanes a word"
    if name == "bias":      # the streaming tiles' two banks of one row block's biases
        return f"{c.bias_bits}-bit biases, {c.pes} (a row block's) a word, two banks"
    if name.startswith("bias"):
        return f"{c.bias_bits}-bit biases, one bank per PE"
    if name == "dense_bias":
        return f"{c.bias_bits}-bit biases, two row blocks, copied by the block decompressor"
    return {
        "index": f"{c.index_bits}-bit weight indexes, {per_word}",
        "activation": f"{c.act_bits}-bit activations, {c.lanes} a word, up to {c.max_tokens} "
                      f"tokens",
        "outlier": f"outlier records (row, column, residual), {c.outlier_lanes} a word",
        "offset": "first outlier word of each row block",
        "weight": f"dense {w}-bit weights, {per_word}" + (
            ", written by the decompressor" if design.kind in (
                "compressed_tile", "compressed_stream_tile") else ""),
    }[name]


def memory_bits(design, layer=None):
    """Memory figures reported beside the logic, as report keys.

    ``memory_bits_bert_base_layer``: bits to hold one BERT-base 768 x 3072 layer in the form the
    design reads: dense for the MAC PE and tile, GOBO form otherwise (the compressed tile keeps
    it off-chip only). For a tile also ``memory_bits_on_chip``: its memories, which its area
    leaves out (they are ports), ``{memories: {name: {width, depth, bits, holds}},
    total_bits}``."""
    layer = layer or {}
    if design.kind in ("mac_pe", "mac_tile", "mac_stream_tile"):
        bits = layer_memory_bits(dense_bits=(design.weight_bits,), **layer)
        bits = bits[f"w{design.weight_bits}"]
    else:
        bits = layer_memory_bits(index_bits=design.config.index_bits, **layer)["gobo"]
    if design.kind in ("compressed_tile", "compressed_stream_tile"):
        bits = {**bits, "what": bits["what"] + f"; off-chip only: the decompressor expands it "
                                               f"into the dense {design.weight_bits}-bit on-chip "
                                               f"weight memory"}
    result = {"memory_bits_bert_base_layer": bits}
    if design.is_tile:
        on_chip = design.design.memory_report()
        for name, memory in on_chip["memories"].items():
            memory["holds"] = _holds(design, name)
        result["memory_bits_on_chip"] = on_chip
    return result
