"""The one configuration object that both the golden model and the hardware generator take.

Every width in the design is derived here, so that the bit-exact model, the RTL and the testbenches
can never disagree about how wide a bin or an output is.
"""

import dataclasses
import math

__all__ = ["GoboConfig", "PRESETS", "PE_PRESETS", "TILE_PRESETS", "preset", "MAC_FLAVOURS",
           "mac_flavour"]


def _check_int(name, value, low, high=None):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < low or (high is not None and value > high):
        span = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {span}, not {value}")


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

    def __post_init__(self):
        _check_int("lanes", self.lanes, 1, 256)
        _check_int("index_bits", self.index_bits, 2, 8)
        _check_int("act_bits", self.act_bits, 2, 32)
        _check_int("centroid_bits", self.centroid_bits, 2, 32)
        _check_int("max_dot_length", self.max_dot_length, 1, 1 << 24)
        _check_int("pes", self.pes, 1, 1024)
        _check_int("recon_multipliers", self.recon_multipliers, 1, self.n_centroids)
        if self.n_centroids % self.recon_multipliers:
            raise ValueError(
                f"recon_multipliers must divide the {self.n_centroids} centroids of "
                f"index_bits={self.index_bits}, not {self.recon_multipliers}")
        _check_int("outlier_lanes", self.outlier_lanes, 1, 64)
        _check_int("residual_bits", self.residual_bits, 2, 32)
        _check_int("bias_bits", self.bias_bits, 2, 48)
        _check_int("max_align_shift", self.max_align_shift, 0, 32)
        _check_int("max_rows", self.max_rows, 1, 1 << 20)
        _check_int("max_tokens", self.max_tokens, 1, 1 << 16)
        _check_int("max_outlier_words", self.max_outlier_words, 1, 1 << 24)
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
                f"max_align_shift={self.max_align_shift}); the datapath is limited to 64 bits")
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
        and the whole sum (and every partial sum) is bounded by ``L * 2**(act_bits+centroid_bits-2)``:
        no extra ``index_bits`` of growth are needed.
        """
        return self.act_bits + self.centroid_bits + self.dot_bits

    @property
    def corr_bits(self):
        """An outlier correction sums at most ``max_dot_length`` products residual x activation."""
        return self.residual_bits + self.act_bits + self.dot_bits

    @property
    def acc_bits(self):
        """Exact width of ``(dot << sd) + (corr << sc) + bias`` with shifts <= max_align_shift:
        the widest of the three terms plus two bits for the two additions."""
        return max(self.out_bits + self.max_align_shift, self.corr_bits + self.max_align_shift,
                   self.bias_bits) + 2

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
        return self.n_centroids // self.recon_multipliers

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
    # Tile-sized for all-MiniLM-L6-v2 (hidden 384, FFN 1536): the default datapath, smaller memories.
    "minilm": _MINILM,
    # A small tile for fast tests with gaps, backpressure and pathological outlier patterns.
    "tiny": _DEFAULT.replace(lanes=4, pes=4, max_rows=64, max_dot_length=64, max_tokens=4,
                             max_outlier_words=512),
}


#: Presets that are PE design points (emitted by `make verilog`, synthesized by `make synth`).
PE_PRESETS = ("bert_large", "lanes1", "lanes4", "lanes16_idx4")
#: Presets whose memories are small enough to emit and simulate a whole tile.
TILE_PRESETS = ("tiny", "minilm")


def preset(name):
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


#: The conventional multiply-accumulate baselines: ``name: (weight_bits, act_bits)``. W16A16 is
#: plain 16-bit fixed point, W8A8 as in Q8BERT, W4A4 as in MKQ-BERT.
MAC_FLAVOURS = {"w16a16": (16, 16), "w8a8": (8, 8), "w4a4": (4, 4)}


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
