"""A whole MiniLM layer on the simulated ULX3S board: the real input of that layer on an English
sentence (the NumPy BERT), written as a .npy, then `gobo board --sim` on the board's own preset,
through the host code a real board would get. Writes build/reports/board_sim.json; exit status 1
on any mismatch (docs/board.md).

Usage: python scripts/board_sim.py [--layer encoder.layer.0.attention.self.query] [--tokens 16]
"""

import argparse
import json
import pathlib
import sys

import numpy as np

from gobo.cli import main as gobo
from golden.accel.fc_layers import fc_inputs
from golden.nlp.bert import BertConfig, BertEncoder
from golden.nlp.tokenizer import Tokenizer
from golden.nlp.weights import minilm_dir

SENTENCE = ("The quick brown fox jumps over the lazy dog while the accelerator computes one "
            "layer of the encoder.")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layer", default="encoder.layer.0.attention.self.query")
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--out", default="build/reports")
    args = parser.parse_args(argv)
    folder = minilm_dir()
    encoder = BertEncoder.from_files(folder / "model.safetensors",
                                     BertConfig.from_file(folder / "config.json"))
    acts = fc_inputs(encoder, Tokenizer(folder, max_length=args.tokens), SENTENCE)[args.layer]
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "board_sim_acts.npy", acts)
    report_path = out / "board_sim.json"
    argv = [str(folder / "model.safetensors"), "--tensor", f"{args.layer}.weight",
            "--bias", f"{args.layer}.bias", "--activations", str(out / "board_sim_acts.npy"),
            "--sim", "--json"]
    import contextlib
    import io
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = gobo(["board", *argv])
    text = buffer.getvalue().strip()
    if text:
        report = json.loads(text)
        report["sentence"] = SENTENCE
        report_path.write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps({k: report[k] for k in ("name", "shape", "tokens", "mismatches",
                                                  "outputs_checked", "counters_match_model",
                                                  "cycles", "ideal_cycles", "link",
                                                  "sim_cycles", "wall_s")}))
    return status


if __name__ == "__main__":
    sys.exit(main())
