"""Draw the tile's block diagram (docs/tile_block_diagram.png) with matplotlib.

Run: .venv/bin/python scripts/block_diagram.py [--out docs/tile_block_diagram.png]
"""

import argparse
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

BOXES = {
    # name: (x, y, w, h, label, colour)
    "load": (0.2, 8.6, 2.2, 0.9, "load stream\n(target, addr, data)", "#eeeeee"),
    "idx": (3.2, 8.4, 2.6, 1.2, "index memory\nP x L x 3 bit / word", "#cfe2f3"),
    "act": (3.2, 6.4, 2.6, 1.2, "activation memory\nL x 16 bit / word\n1 + Q read ports",
            "#cfe2f3"),
    "out": (3.2, 3.9, 2.6, 1.2, "outlier memory\nQ records / word\n+ block offsets", "#cfe2f3"),
    "bias": (3.2, 1.6, 2.6, 1.0, "bias memory\nP banks", "#cfe2f3"),
    "ctrl": (0.2, 5.4, 2.2, 1.6, "tile controller\nFSM: slots (b, t)\ncounters", "#fce5cd"),
    "pes": (6.8, 6.6, 3.4, 3.0, "P GOBO PEs\nindex decoder\nper-centroid bins (x2)\n"
                                "reconstruction\nsum_k C[k] * bin[k]", "#d9ead3"),
    "side": (6.8, 3.9, 3.4, 1.9, "outlier side path\nQ multipliers\nresidual x X[t, col]\n"
                                 "per-row corrections", "#f4cccc"),
    "merge": (11.0, 4.6, 2.6, 2.6, "merge\n(dot << sd) + (corr << sr)\n+ bias\nround, saturate",
              "#fff2cc"),
    "o": (14.2, 5.4, 1.6, 1.0, "o stream\nP x 16 bit", "#eeeeee"),
}
ARROWS = [
    ("load", "idx"), ("load", "act"), ("load", "out"), ("load", "bias"),
    ("idx", "pes", "index words"), ("act", "pes", "activation broadcast"),
    ("act", "side", "X[t, col]"), ("out", "side", "records"),
    ("pes", "merge", "P dot products"), ("side", "merge", "P corrections"),
    ("bias", "merge", "P biases"), ("merge", "o"), ("ctrl", "idx"), ("ctrl", "side"),
]
#: Arrow ends placed by hand where the automatic side would cross another box.
ENDS = {("bias", "merge"): (13.0, 4.6)}


def _anchor(box, toward):
    x, y, w, h = BOXES[box][:4]
    tx, ty, tw, th = BOXES[toward][:4]
    cx, cy, tcx, tcy = x + w / 2, y + h / 2, tx + tw / 2, ty + th / 2
    if abs(tcx - cx) > abs(tcy - cy) or tx >= x + w or tx + tw <= x:
        return (x + w if tcx > cx else x, cy)
    return (cx, y + h if tcy > cy else y)


def draw(path):
    fig, ax = plt.subplots(figsize=(12, 7))
    for x, y, w, h, label, colour in BOXES.values():
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc=colour,
                                    ec="#333333", lw=1.2))
        ax.text(x + w / 2, y + h / 2, label, ha="center", va="center", fontsize=8.5)
    for arrow in ARROWS:
        src, dst = arrow[:2]
        start, end = _anchor(src, dst), ENDS.get((src, dst)) or _anchor(dst, src)
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, lw=1.0,
                                     color="#444444"))
        if len(arrow) > 2:
            ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.12, arrow[2],
                    fontsize=7.5, ha="center", color="#444444")
    ax.set_xlim(0, 16)
    ax.set_ylim(1.5, 10)
    ax.axis("off")
    ax.set_title("GOBO tile (hw/tile.py): P PEs x L lanes, Q outlier lanes; one output beat per "
                 "slot (row block b, token t)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path,
                        default=pathlib.Path("docs/tile_block_diagram.png"))
    draw(parser.parse_args().out)
