"""The one configuration object that both the golden model and the hardware generator take.

Every width in the design is derived here, so that the bit-exact model, the RTL and the testbenches
can never disagree about how wide a bin or an output is.
"""

import dataclasses
import math
import types

__all__ = ["GoboConfig", "PRESETS", "PE_PRESETS", "TILE_PRESETS", "STREAM_PRESETS", "preset",
           "MAC_FLAVOURS", "mac_flavour", "FIELD_RANGES", "WEIGHT_BITS_RANGE", "check_int",
           "COMPRESSED_FLAVOURS", "GOBO_ONLY_FIELDS", "DATAPATHS", "design_fields", "check_field",
           "check_config", "check_weight_bits", "check_choice"]


# Parameter checks, amaranth-soc style: a TypeError for a wrong type, a ValueError for a wrong
# value, each naming the parameter and what it must be. The configuration, the golden models and
# every hardware component (hw/params.py) validate with these, so the messages read the same
# everywhere.

def _int_span(low, high):
    if high is not None:
        return f"an integer between {low} and {high}"
    if low == 0:
        return "a non-negative integer"
    if low == 1:
        return "a positive integer"
    return f"an integer of at least {low}"


def check_int(name, value, low, high=None):
    """Return ``value`` if it is an ``int`` (not a ``bool``) in ``low .. high`` (``high`` None: no
    upper bound).

    Raises
    ------
    TypeError
        If ``value`` is not an integer: ``"{name} must be an integer between 2 and 8, not 3.0"``.
    ValueError
        If it is out of range: ``"{name} must be an integer between 2 and 8, not 9"``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be {_int_span(low, high)}, not {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be {_int_span(low, high)}, not {value!r}")
    return value


def check_choice(name, value, choices):
    """Return ``value`` if it is one of the strings ``choices``.

    Raises
    ------
    TypeError
        If ``value`` is not a string.
    ValueError
        If it is not one of them: ``"memories must be one of 'internal', 'ports', not 'x'"``.
    """
    message = f"{name} must be one of {', '.join(map(repr, choices))}, not {value!r}"
    if not isinstance(value, str):
        raise TypeError(message)
    if value not in choices:
        raise ValueError(message)
    return value


def check_config(config, name="config"):
    """Return ``config`` if it is a :class:`GoboConfig`.

    Raises
    ------
    TypeError
        Otherwise: ``"config must be a GoboConfig, not 3"``.
    """
    if not isinstance(config, GoboConfig):
        raise TypeError(f"{name} must be a GoboConfig, not {config!r}")
    return config


#: The range of every integer field of :class:`GoboConfig` (``recon_multipliers`` is further
#: bounded by ``n_centroids``): this project's choices, wide limits that refuse nonsense early
#: (2-8 index bits: 4 to 256 centroids); the 64-bit limits on derived widths are checked after them.
FIELD_RANGES = types.MappingProxyType({
    "lanes": (1, 256),
    "index_bits": (2, 8),
    "act_bits": (2, 32),
    "centroid_bits": (2, 32),
    "max_dot_length": (1, 1 << 24),
    "pes": (1, 1024),
    "recon_multipliers": (1, 1 << 8),
    "outlier_lanes": (1, 64),
    "residual_bits": (2, 32),
    "bias_bits": (2, 48),
    "max_align_shift": (0, 32),
    "max_rows": (1, 1 << 20),
    "max_tokens": (1, 1 << 16),
    "max_outlier_words": (1, 1 << 24),
    "max_passes": (1, 1 << 16),
})


def check_field(name, value):
    """Check ``value`` against the range of the :class:`GoboConfig` field ``name``
    (:data:`FIELD_RANGES`), for components that take a field alone (e.g. ``lanes``); returns
    ``value``. Raises as :func:`check_int`."""
    return check_int(name, value, *FIELD_RANGES[name])


# Pipeline latencies, in cycles when nothing stalls, of the hardware blocks whose latency does not
# depend on the configuration: this project's choices (the GOBO paper describes no RTL). Read them
# through the GoboConfig properties below; hw/ components return those properties as their
# ``latency`` and tests/test_hw_latency.py measures each one in the simulator.
_ACCUMULATOR_LATENCY = 1   # the completed bins into the hand-over register
_SIDE_PATH_LATENCY = 4     # outlier read, activation read, multiply, accumulate into the hand-over
_MERGE_LATENCY = 2         # operand register (bias read alongside), output register
_FETCH_LATENCY = 1         # the synchronous read of the first index and activation words
_MAC_PE_LATENCY = 1        # the completed sum into the output register
_DECOMPRESSOR_LATENCY = 1  # the dictionary look-up into the stage register


@dataclasses.dataclass(frozen=True)
class GoboConfig:
    """Parameters of a GOBO processing element (and, later, of a tile).

    Parameters
    ----------
    lanes : int
        Weights (and activations) consumed per cycle by one PE.
    index_bits : int
        Width of a weight index; the dictionary holds ``2**index_bits`` centroids.
    act_bits : int
        Width of a signed integer activation.
    centroid_bits : int
        Width of a signed fixed-point centroid.
    max_dot_length : int
        The longest dot product (input features of a layer) the hardware must compute exactly;
        it sets the width of the bins.
    recon_multipliers : int
        Multipliers in the reconstruction stage; reconstruction takes
        ``2**index_bits / recon_multipliers`` cycles.
    pes : int
        Processing elements in a tile; they compute ``pes`` consecutive output rows (a block).
    outlier_log_prob : float
        Weights whose natural-log Gaussian density lies below this are outliers (GOBO uses -4).
    outlier_lanes : int
        Outlier records the side path reads and multiplies per cycle (its multipliers).
    residual_bits : int
        Width of a signed outlier residual ``outlier - centroid[index]`` in fixed point.
    bias_bits : int
        Width of a signed bias, stored at the accumulator's exponent.
    max_align_shift : int
        Largest left shift that aligns the dot products and the outlier corrections.
    max_rows : int
        The most output rows (M) a layer image may have: sets the index and bias memory depths.
    max_tokens : int
        The most tokens (T) one run may hold in the activation memory.
    max_outlier_words : int
        Depth of the outlier memory, in words of ``outlier_lanes`` records.
    max_passes : int
        The most passes of at most ``max_dot_length`` columns a layer's dot products may be
        split into (docs/offchip.md section 10): the accumulator is sized for
        ``layer_dot_length = max_passes * max_dot_length`` columns, so partial sums carried
        between passes are exact. 1 (the default): one pass, today's widths.

    Raises
    ------
    TypeError
        If an integer field is not an ``int``; the message names the field.
    ValueError
        If a field lies outside its :data:`FIELD_RANGES` range, ``recon_multipliers`` does not
        divide ``n_centroids``, ``outlier_log_prob`` is not a finite number, or ``out_bits``
        exceeds 64.

    Notes
    -----
    Besides the widths, the configuration owns every pipeline latency of the hardware
    (``pe_latency``, ``side_path_latency``, ``merge_latency``, ``tile_fill_drain``, ...): the golden
    cycle models read them here and each hardware component returns them as its ``latency``.
    """

    lanes: int = 16
    index_bits: int = 3
    act_bits: int = 16
    centroid_bits: int = 16
    max_dot_length: int = 4096
    recon_multipliers: int = 1
    pes: int = 16
    outlier_log_prob: float = -4.0
    outlier_lanes: int = 4
    residual_bits: int = 16
    bias_bits: int = 32
    max_align_shift: int = 16
    max_rows: int = 4096
    max_tokens: int = 16
    max_outlier_words: int = 8192
    max_passes: int = 1

    def __post_init__(self):
        for name, (low, high) in FIELD_RANGES.items():
            if name == "recon_multipliers":
                high = self.n_centroids      # index_bits is checked by now
            check_int(name, getattr(self, name), low, high)
        if self.n_centroids % self.recon_multipliers:
            raise ValueError(
                f"recon_multipliers must divide the {self.n_centroids} centroids of "
                f"index_bits={self.index_bits}, not {self.recon_multipliers}")
        if not isinstance(self.outlier_log_prob, (int, float)) or not math.isfinite(
                self.outlier_log_prob):
            raise ValueError(f"outlier_log_prob must be a finite number, not "
                             f"{self.outlier_log_prob!r}")
        if self.out_bits > 64:
            raise ValueError(
                f"act_bits={self.act_bits} + centroid_bits={self.centroid_bits} + "
                f"log2(max_dot_length={self.max_dot_length}) gives {self.out_bits}-bit outputs; "
                f"the datapath is limited to 64 bits")

    def check_tile(self):
        """Raise ValueError if a tile of this configuration could not be exact in 64 bits (a
        PE-only configuration may go up to 64-bit outputs; the tile adds alignment and bias)."""
        if self.acc_bits > 64:
            raise ValueError(
                f"the tile accumulator would need {self.acc_bits} bits (out_bits={self.out_bits}, "
                f"residual_bits={self.residual_bits}, bias_bits={self.bias_bits}, "
                f"max_align_shift={self.max_align_shift}"
                + (f", {self.max_passes} passes of {self.max_dot_length} columns"
                   if self.max_passes > 1 else "")
                + "); the datapath is limited to 64 bits")
        return self

    # Derived widths -------------------------------------------------------------------------

    @property
    def n_centroids(self):
        return 1 << self.index_bits

    @property
    def dot_bits(self):
        """Bits to count up to ``max_dot_length``: ceil(log2(max_dot_length))."""
        return (self.max_dot_length - 1).bit_length()

    @property
    def layer_dot_length(self):
        """The longest dot product of a layer: ``max_passes`` passes of ``max_dot_length``."""
        return self.max_passes * self.max_dot_length

    @property
    def layer_dot_bits(self):
        """Bits to count up to ``layer_dot_length`` (``dot_bits`` when ``max_passes`` is 1)."""
        return (self.layer_dot_length - 1).bit_length()

    @property
    def bin_bits(self):
        """A bin sums at most ``max_dot_length`` activations, so it can never overflow."""
        return self.act_bits + self.dot_bits

    @property
    def product_bits(self):
        return self.bin_bits + self.centroid_bits

    @property
    def out_bits(self):
        """Exact width of ``sum_k centroid[k] * bin[k]``.

        Every activation lands in exactly one bin, so ``sum_k |bin[k]| <= L * 2**(act_bits-1)``
        and the whole sum (and every partial sum) is bounded by
        ``L * 2**(act_bits+centroid_bits-2)``: no extra ``index_bits`` of growth are needed.
        """
        return self.act_bits + self.centroid_bits + self.dot_bits

    @property
    def corr_bits(self):
        """An outlier correction sums at most ``max_dot_length`` products residual x activation."""
        return self.residual_bits + self.act_bits + self.dot_bits

    @property
    def acc_bits(self):
        """Exact width of ``(dot << sd) + (corr << sc) + (bias << sb)`` with every shift <=
        max_align_shift: the widest of the three terms plus two bits for the two additions
        (docs/numerics.md, "Bias"). The dot product and the correction are those of a whole
        layer (``layer_dot_bits``): with ``max_passes > 1`` a partial sum carried between passes
        is one of these accumulators, and the sum over every pass still fits."""
        layer_bits = self.layer_dot_bits - self.dot_bits
        return (max(self.out_bits + layer_bits, self.corr_bits + layer_bits, self.bias_bits)
                + self.max_align_shift + 2)

    @property
    def chunks_max(self):
        """Index/activation words per row: ceil(max_dot_length / lanes)."""
        return -(-self.max_dot_length // self.lanes)

    @property
    def blocks_max(self):
        return -(-self.max_rows // self.pes)

    @property
    def index_depth(self):
        return self.blocks_max * self.chunks_max

    @property
    def act_depth(self):
        return self.max_tokens * self.chunks_max

    @property
    def index_word_bits(self):
        return self.lanes * self.index_bits

    @property
    def recon_cycles(self):
        """Cycles the reconstruction takes per dot product, which is also its latency:
        ``n_centroids / recon_multipliers``."""
        return self.n_centroids // self.recon_multipliers

    # Latencies, in cycles when nothing stalls (the one place they are written) ----------------

    @property
    def accumulator_latency(self):
        """:class:`~hw.accumulators.CentroidAccumulators`: from the transfer of a ``last`` beat
        to ``o.valid`` of its bins, 1 (the hand-over register)."""
        return _ACCUMULATOR_LATENCY

    @property
    def pe_latency(self):
        """:class:`~hw.pe.GoboPE`: from the transfer of a row's ``last`` beat to ``o.valid`` of its
        result, ``accumulator_latency + recon_cycles`` (the index decoder is combinational)."""
        return self.accumulator_latency + self.recon_cycles

    @property
    def side_path_latency(self):
        """:class:`~hw.outlier_path.OutlierSidePath`: from the issue of a command's last record
        word to ``o.valid`` of its corrections, 4 (outlier read, activation read, multiply,
        accumulate into the hand-over register)."""
        return _SIDE_PATH_LATENCY

    @property
    def merge_latency(self):
        """The merge of :class:`~hw.tile_controller.TileController`: from taking a slot's dot
        products and corrections to ``o.valid`` of its outputs, 2 (operand register with the bias
        read alongside, output register)."""
        return _MERGE_LATENCY

    @property
    def fetch_latency(self):
        """The broadcast of :class:`~hw.tile_controller.TileController`: from the first cycle of
        a run (``busy`` high) to its first beat on offer, 1 (the synchronous read of the first
        index and activation words)."""
        return _FETCH_LATENCY

    @property
    def tile_fill_drain(self):
        """Cycles a :class:`~hw.tile.GoboTile` run takes beyond its ``T*B*C`` beats when nothing
        stalls: ``fetch_latency + pe_latency + merge_latency`` (``recon_cycles + 4``)."""
        return self.fetch_latency + self.pe_latency + self.merge_latency

    @property
    def mac_pe_latency(self):
        """:class:`~hw.mac_pe.MacPE` (any ``weight_bits``): from the transfer of a row's ``last``
        beat to ``o.valid`` of its result, 1 (the output register)."""
        return _MAC_PE_LATENCY

    @property
    def mac_tile_fill_drain(self):
        """Cycles a :class:`~hw.mac_tile.MacTile` run takes beyond its ``T*B*C`` beats (it never
        stalls with ``o`` ready): ``fetch_latency + mac_pe_latency + merge_latency`` (4)."""
        return self.fetch_latency + self.mac_pe_latency + self.merge_latency

    @property
    def decompressor_latency(self):
        """:class:`~hw.decompressor.Decompressor`: from the transfer of a beat without outliers
        to ``o.valid`` of its weights, 1 (the dictionary look-up into the stage register)."""
        return _DECOMPRESSOR_LATENCY

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return dataclasses.asdict(self)


_DEFAULT = GoboConfig()
_MINILM = _DEFAULT.replace(max_rows=1536, max_dot_length=1536, max_tokens=8,
                           max_outlier_words=4096)

#: Named presets, named for the layers they fit or for the one parameter they change
#: (docs/architecture.md, "Presets", says where each value comes from). From the GOBO paper
#: (Zadeh et al., MICRO 2020): 3-bit indexes (8 centroids) and the outlier threshold of -4. Every
#: other value is this project's choice: 16 lanes and 16 PEs (the tile shape the sweep in
#: docs/synthesis.md recommends), 16-bit activations and centroids (exact for the accuracy study),
#: one reconstruction multiplier, 4 outlier lanes (10x the records 0.3 % outliers need).
PRESETS = {
    # The default datapath with memories for BERT-large layers (FFN 4096 x 1024 and 1024 x 4096).
    "bert_large": _DEFAULT,
    # PE design points for synthesis: the default with one parameter changed.
    "lanes1": _DEFAULT.replace(lanes=1),
    "lanes4": _DEFAULT.replace(lanes=4),
    "lanes16_idx4": _DEFAULT.replace(lanes=16, index_bits=4),
    # Tile-sized for all-MiniLM-L6-v2 (hidden 384, FFN 1536): the default datapath, smaller
    # memories.
    "minilm": _MINILM,
    # Streaming accelerators (hw.stream_tile, docs/offchip.md section 9): the default datapath,
    # weights streamed from off-chip memory, so rows are unbounded on chip (max_rows only sizes
    # the row counters); max_dot_length is the model's widest FC input (the FFN output layer),
    # 128 tokens of activations on chip, and outlier banks (max_outlier_words // 2 words of 4
    # records) about twice the worst 16-row block of all-MiniLM-L6-v2's 36 FC layers (134 words
    # at 1536 columns, layer 5 output.dense) scaled to the model's width.
    "minilm_stream": _DEFAULT.replace(max_rows=1 << 16, max_dot_length=1536, max_tokens=128,
                                      max_outlier_words=512),
    # minilm_stream with half its activation memory (768 columns x 128 tokens): MiniLM's
    # 1536-wide FFN output layer runs as 2 passes (docs/offchip.md section 10); same acc_bits.
    "minilm_stream_2pass": _DEFAULT.replace(max_rows=1 << 16, max_dot_length=768, max_passes=2,
                                            max_tokens=128, max_outlier_words=512),
    "bert_base_stream": _DEFAULT.replace(max_rows=1 << 16, max_dot_length=3072,
                                         max_tokens=128, max_outlier_words=1024),
    "bert_large_stream": _DEFAULT.replace(max_rows=1 << 16, max_dot_length=4096,
                                          max_tokens=128, max_outlier_words=2048),
    # The ULX3S 85F board (docs/board.md): the default PE datapath, 2 PEs so that place and
    # route stays under 10 minutes (4 PEs: 53 % of the LUTs and over 20 minutes); memories for
    # MiniLM's 384 x 384 attention matrices and 16 tokens.
    "ulx3s": _DEFAULT.replace(pes=2, lanes=16, max_rows=384, max_dot_length=384, max_tokens=16,
                              max_outlier_words=1024),
    # A small tile for fast tests with gaps, backpressure and pathological outlier patterns.
    "tiny": _DEFAULT.replace(lanes=4, pes=4, max_rows=64, max_dot_length=64, max_tokens=4,
                             max_outlier_words=512),
}


#: Presets that are PE design points (emitted by `make verilog`, synthesized by `make synth`).
PE_PRESETS = ("bert_large", "lanes1", "lanes4", "lanes16_idx4")
#: Presets whose memories are small enough to emit and simulate a whole tile.
TILE_PRESETS = ("tiny", "minilm")
#: Presets of the streaming tile (``gobo_stream_tile``), smallest first.
STREAM_PRESETS = ("minilm_stream", "bert_base_stream", "bert_large_stream")


def preset(name):
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


#: The conventional multiply-accumulate baselines: ``name: (weight_bits, act_bits)``. W16A16 is
#: plain 16-bit fixed point, W8A8 as in Q8BERT, W4A4 as in MKQ-BERT.
MAC_FLAVOURS = {"w16a16": (16, 16), "w8a8": (8, 8), "w4a4": (4, 4)}

#: The memory-compression designs (the MAC tile fed by a decompressor of the GOBO form,
#: docs/tile.md section 6) and the MAC flavour each computes at: ``{name: MAC_FLAVOURS key}``.
COMPRESSED_FLAVOURS = {"compressed_w16a16": "w16a16"}

#: The :class:`GoboConfig` fields the GOBO PE, its reconstruction and its outlier side path use
#: and a dense MAC baseline does not (its weights are ``weight_bits`` integers, no dictionary,
#: no outliers); of them the memory-compression designs use the quantizer's (``index_bits``,
#: ``outlier_log_prob``) and, streamed, the decompressor's outlier banks (``outlier_lanes``
#: records a word of ``residual_bits`` residuals, ``max_outlier_words``): :func:`design_fields`.
GOBO_ONLY_FIELDS = ("index_bits", "centroid_bits", "recon_multipliers", "outlier_log_prob",
                    "outlier_lanes", "residual_bits", "max_outlier_words")
_QUANTIZER_FIELDS = ("index_bits", "outlier_log_prob")
_OUTLIER_BANK_FIELDS = ("outlier_lanes", "residual_bits", "max_outlier_words")


#: The datapaths :func:`design_fields` knows: the GOBO PE, a dense MAC baseline, the MAC tile
#: fed by a decompressor (memory-compression).
DATAPATHS = ("gobo", "mac", "compressed")


def design_fields(config, datapath="gobo", *, streamed=False):
    """``config.to_dict()`` less the fields a design of ``datapath`` (:data:`DATAPATHS`) does
    not use: ``"gobo"`` all of them, ``"mac"`` none of :data:`GOBO_ONLY_FIELDS`,
    ``"compressed"`` of them its quantizer's and, ``streamed``, its outlier banks'.

    Raises
    ------
    ValueError
        For an unknown ``datapath``.
    """
    used = {"gobo": GOBO_ONLY_FIELDS, "mac": (),
            "compressed": _QUANTIZER_FIELDS + (_OUTLIER_BANK_FIELDS if streamed else ())}
    if datapath not in used:
        raise ValueError(f"unknown datapath {datapath!r}; choose one of {', '.join(DATAPATHS)}")
    return {k: v for k, v in config.to_dict().items()
            if k not in GOBO_ONLY_FIELDS or k in used[datapath]}


#: The widths a dense MAC baseline weight may have (this project's choice: as ``act_bits``).
WEIGHT_BITS_RANGE = (2, 32)


def check_weight_bits(weight_bits):
    """Return ``weight_bits`` if it is a valid width of a dense signed weight
    (:data:`WEIGHT_BITS_RANGE`). Raises as :func:`check_int`:
    ``"weight_bits must be an integer between 2 and 32, not 40"``."""
    return check_int("weight_bits", weight_bits, *WEIGHT_BITS_RANGE)


def mac_flavour(name, *, base="bert_large", **changes):
    """``(config, weight_bits)`` of a MAC baseline: preset ``base`` with the flavour's
    ``act_bits`` (and any other ``changes``, e.g. ``lanes``), so a baseline and the GOBO PE it
    is compared with share every other parameter."""
    try:
        weight_bits, act_bits = MAC_FLAVOURS[name]
    except KeyError:
        raise ValueError(f"unknown MAC flavour {name!r}; choose one of "
                         f"{', '.join(MAC_FLAVOURS)}") from None
    return preset(base).replace(act_bits=act_bits, **changes), weight_bits
