"""Check the NumPy BERT encoder (golden/nlp/bert.py) against PyTorch/transformers on the same
weights.

Runs inside the separate reference venv (build/refvenv: torch CPU + transformers, see `make
reference`), which does not have the project installed: the repository root is put on sys.path.
Both sides get identical token ids (from golden.nlp.tokenizer), so only the encoders are compared.
Writes build/reports/torch_reference.json and exits non-zero if the maximum absolute difference
of the mean-pooled sentence embeddings is not below the tolerance (1e-4).
"""

import argparse
import json
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

from golden.nlp.bert import BertConfig, BertEncoder  # noqa: E402
from golden.nlp.corpus import load_sentences  # noqa: E402
from golden.nlp.tokenizer import Tokenizer  # noqa: E402
from golden.nlp.weights import load_tensors, minilm_dir  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=pathlib.Path, default=None,
                        help="folder with model.safetensors, config.json, tokenizer.json "
                             "(default: the cached all-MiniLM-L6-v2)")
    parser.add_argument("--sentences", type=int, default=64)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "build" / "reports")
    args = parser.parse_args(argv)
    folder = args.model_dir or minilm_dir()
    torch.manual_seed(0)
    torch.set_num_threads(2)

    config = BertConfig.from_file(folder / "config.json")
    tensors = load_tensors(folder / "model.safetensors")
    ours = BertEncoder(config, tensors)
    hf_config = transformers.BertConfig.from_pretrained(str(folder))
    theirs = transformers.BertModel(hf_config, add_pooling_layer=False).eval()
    state = {k: torch.from_numpy(np.array(v)) for k, v in tensors.items()
             if k in theirs.state_dict()}
    missing, unexpected = theirs.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing:
        sys.exit(f"transformers model lacks weights for {missing}")

    tok = Tokenizer(folder)
    sentences = load_sentences(args.sentences)
    ids, mask, types = tok.encode(sentences)
    start = time.perf_counter()
    ref_np = ours.embed(ids, mask, types)
    t_numpy = time.perf_counter() - start
    start = time.perf_counter()
    with torch.no_grad():
        out = theirs(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                     token_type_ids=torch.from_numpy(types)).last_hidden_state
        m = torch.from_numpy(mask)[..., None].float()
        ref_torch = ((out * m).sum(1) / m.sum(1).clamp(min=1e-9)).numpy()
    t_torch = time.perf_counter() - start
    diff = float(np.max(np.abs(ref_np.astype(np.float64) - ref_torch.astype(np.float64))))
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    cos = np.einsum("ij,ij->i", unit(ref_np.astype(np.float64)), unit(ref_torch.astype(np.float64)))
    report = {
        "model": str(folder), "sentences": len(sentences), "tokens_padded": list(ids.shape),
        "max_abs_diff": diff, "max_abs_embedding": float(np.abs(ref_torch).max()),
        "min_cosine": float(cos.min()), "tolerance": args.tolerance,
        "numpy_seconds": t_numpy, "torch_seconds": t_torch,
        "torch": torch.__version__, "transformers": transformers.__version__,
        "passed": diff < args.tolerance,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "torch_reference.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"NumPy vs torch {torch.__version__} / transformers {transformers.__version__}: "
          f"{len(sentences)} sentences ({ids.shape[1]} tokens padded), max |diff| of sentence "
          f"embeddings {diff:.3g} (tolerance {args.tolerance:g}; largest element "
          f"{report['max_abs_embedding']:.3g}), min cosine {report['min_cosine']:.9f}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
