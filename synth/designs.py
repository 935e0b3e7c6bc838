"""The designs `make synth` compares: GOBO PEs, the MAC baselines, the memory-compression
decompressor, and the design-space sweep points. Every design is built from a
:class:`~golden.config.GoboConfig` (plus ``weight_bits`` for the baselines)."""

import dataclasses
import hashlib
import itertools

from golden.config import MAC_FLAVOURS, PRESETS, mac_flavour
from golden.mac_model import layer_memory_bits

__all__ = ["Design", "gobo", "mac", "decompressor", "default_designs", "sweep_designs",
           "PAIRS", "memory_bits"]


@dataclasses.dataclass(frozen=True)
class Design:
    name: str
    kind: str             # "gobo", "mac" or "decompressor"
    config: object
    weight_bits: int = None

    @property
    def top(self):
        return self.name

    @property
    def lanes(self):
        """Multiply-accumulates per cycle (a decompressor: weights per cycle)."""
        return self.config.lanes

    def verilog(self):
        from hw.cli import emit_decompressor, emit_mac, emit_pe
        if self.kind == "gobo":
            return emit_pe(self.config, self.top)
        if self.kind == "mac":
            return emit_mac(self.config, self.weight_bits, self.top)
        return emit_decompressor(self.config, self.weight_bits, self.top)

    def digest(self, text):
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self):
        return {"kind": self.kind, "config": self.config.to_dict(),
                "weight_bits": self.weight_bits, "lanes": self.lanes,
                "act_bits": self.config.act_bits,
                "index_bits": self.config.index_bits if self.kind != "mac" else None}

    def size(self):
        """Rough cost, to start the largest designs first."""
        c = self.config
        if self.kind == "gobo":
            return c.lanes * c.n_centroids * c.act_bits
        if self.kind == "mac":
            return c.lanes * self.weight_bits * c.act_bits
        return c.lanes * self.weight_bits


def gobo(name, config):
    return Design(f"gobo_pe_{name}", "gobo", config)


def mac(flavour, lanes=16):
    config, weight_bits = mac_flavour(flavour, lanes=lanes)
    return Design(f"mac_pe_{flavour}_lanes{lanes}", "mac", config, weight_bits)


def decompressor(weight_bits=16, **changes):
    config = PRESETS["paper"].replace(**changes)
    return Design(f"gobo_decomp_w{weight_bits}_lanes{config.lanes}", "decompressor", config,
                  weight_bits)


#: GOBO PE at each baseline's activation width: ``flavour: GOBO design name``.
PAIRS = {"w16a16": "gobo_pe_paper", "w8a8": "gobo_pe_paper_a8", "w4a4": "gobo_pe_paper_a4"}


def default_designs():
    """The default `make synth` set (about 10 minutes on 2 cores): GOBO paper/lanes4/lanes1,
    GOBO lanes 16 at activation widths 8 and 4 (to pair with W8A8 and W4A4), the three MAC
    flavours at lanes 16, and the decompressor. ``lanes16_idx4`` went to the sweep: its
    ``synth_ecp5`` + nextpnr alone took 6 to 11 minutes."""
    paper = PRESETS["paper"]
    return [
        gobo("paper", paper), gobo("lanes4", PRESETS["lanes4"]), gobo("lanes1", PRESETS["lanes1"]),
        gobo("paper_a8", paper.replace(act_bits=8)), gobo("paper_a4", paper.replace(act_bits=4)),
        *[mac(flavour) for flavour in MAC_FLAVOURS],
        decompressor(16),
    ]


SWEEP = {"lanes": (1, 4, 8, 16), "index_bits": (3, 4), "act_bits": (8, 16)}


def sweep_designs():
    """GOBO PEs over lanes x index_bits x act_bits x recon_multipliers in {1, 2**index_bits}."""
    designs = []
    for lanes, idx, act in itertools.product(*SWEEP.values()):
        for mults in (1, 1 << idx):
            config = PRESETS["paper"].replace(lanes=lanes, index_bits=idx, act_bits=act,
                                              recon_multipliers=mults)
            designs.append(gobo(f"l{lanes}_i{idx}_a{act}_m{mults}", config))
    return designs


def memory_bits(design, layer=None):
    """Bits to hold one BERT-base 768 x 3072 layer in the form this design consumes."""
    layer = layer or {}
    if design.kind == "mac":
        bits = layer_memory_bits(dense_bits=(design.weight_bits,), **layer)
        return bits[f"w{design.weight_bits}"]
    return layer_memory_bits(index_bits=design.config.index_bits, **layer)["gobo"]
