"""A seeded fuzzer over the three file loaders: weights (.safetensors, .npy, .npz, .bin), the layer
image (.npz) and the packed model (.gobo).

Each case takes a valid seed file, damages it (byte flips, truncations, header edits: numbers in
the JSON or .npy header replaced by huge, negative or odd values, zip sizes changed) and loads
it. The only exception allowed to escape is the loader's own named error (WeightsError,
ImageError, ModelFormatError); each case must take under ``--max-seconds`` and the process's
peak resident memory must stay under ``--max-mb``. Exit status 1 on any violation.

    python scripts/fuzz_loaders.py --cases 5000 [--seed 0] [--loaders weights image model]
"""

import argparse
import io
import json
import pathlib
import random
import re
import resource
import sys
import tempfile
import time
import traceback
import zipfile

import numpy as np

from golden.config import preset
from golden.hwmodel.layer_image import ImageError, load_image, make_image, save_image
from golden.nlp.bert import BertConfig, BertEncoder
from golden.nlp.quantized_model import (
    HEADER_SIZE,
    ModelFormatError,
    QuantSpec,
    pack_header,
    quantize_model,
    tensor_crc32,
)
from golden.nlp.quantized_model import load as load_model
from golden.nlp.quantized_model import save as save_model
from golden.nlp.tiny_bert import TINY, tiny_tensors, write_safetensors
from golden.nlp.weights import WeightsError, load_tensors

_NUMBER = re.compile(rb"-?\d+")
_ODD_NUMBERS = [b"0", b"-1", b"1", b"255", b"65536", b"4294967296", b"18446744073709551616",
                b"9" * 40, b"1e308", b"true", b"null", b"[]", b"{}", b"\"x\"",
                b"-9223372036854775809", b"NaN", b"[" * 5000]


def _peak_mb():
    """Peak resident memory of this process in MB. Linux's VmHWM belongs to this process image;
    ``ru_maxrss`` survives fork and exec, so under a large parent (a pytest worker) it would
    report the parent's peak."""
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_seeds(folder):
    """``{loader: [(path suffix, bytes)]}``: small valid files of each kind."""
    folder = pathlib.Path(folder)
    rng = np.random.default_rng(0)
    seeds = {"weights": [], "image": [], "model": []}

    small = {"a.weight": rng.normal(size=(6, 5)).astype(np.float32),
             "a.bias": rng.normal(size=(6,)).astype(np.float32),
             "b.weight": rng.normal(size=(3, 4)).astype(np.float32)}
    write_safetensors(folder / "w.safetensors", small)
    np.save(folder / "w.npy", small["a.weight"])
    np.savez(folder / "w.npz", **small)
    np.savez_compressed(folder / "wc.npz", **small)
    for name in ("w.safetensors", "w.npy", "w.npz", "wc.npz"):
        seeds["weights"].append((pathlib.Path(name).suffix, (folder / name).read_bytes()))
    seeds["weights"].append((".bin", torch_zip_bytes(small)))

    config = preset("tiny")
    cols, rows = 13, 10
    positions = rng.choice(rows * cols, size=6, replace=False)
    image = make_image(config, indexes=rng.integers(0, config.n_centroids, (rows, cols)),
                       centroids=np.sort(rng.integers(-1000, 1000, config.n_centroids)),
                       outliers=[(p // cols, p % cols, int(rng.integers(-100, 100)))
                                 for p in positions],
                       bias=rng.integers(-5000, 5000, rows), shift_bias=1)
    save_image(image, folder / "image.npz")
    seeds["image"].append((".npz", (folder / "image.npz").read_bytes()))

    encoder = BertEncoder(BertConfig.from_dict(TINY), tiny_tensors(0))
    for spec in (QuantSpec(), QuantSpec(scheme="blockwise", bits=4, embedding_bits=None)):
        model = quantize_model(encoder, spec)
        save_model(model, folder / "m.gobo")
        seeds["model"].append((".gobo", (folder / "m.gobo").read_bytes()))
    return seeds


def torch_zip_bytes(tensors):
    """A PyTorch ``torch.save`` zip checkpoint of float32 ``tensors``, written without torch."""
    from golden.nlp.weights import torch_checkpoint_bytes
    return torch_checkpoint_bytes(tensors)


def _header_span(data, suffix):
    """The byte range of the file's header text, where edits matter most."""
    if suffix == ".safetensors" and len(data) >= 8:
        return 8, min(len(data), 8 + int.from_bytes(data[:8], "little"))
    if suffix == ".npy":
        return 0, min(len(data), 128)
    if suffix == ".gobo" and len(data) >= HEADER_SIZE:
        return HEADER_SIZE, min(len(data), HEADER_SIZE + int.from_bytes(data[12:16], "little"))
    return 0, len(data)


def _mutate_inside_zip(data, rng):
    """Damage one member of a zip and write the archive again with valid CRCs, so that the
    damage reaches the member's parser (the .npy header, the image metadata, the pickle)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    target = rng.randrange(len(members))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for i, (info, blob) in enumerate(members):
            if i == target:
                name = info.filename
                inner = ".npy" if name.endswith(".npy") else ".pkl"
                blob = mutate(blob, inner, rng, inside=True)
            archive.writestr(info, blob)
    return out.getvalue()


def _mutate_gobo_blob(data, rng):
    """Damage one tensor blob of a .gobo file and fix its CRC-32, so that the damage reaches
    the stored-layer parsers."""
    manifest_len = int.from_bytes(data[12:16], "little")
    start = HEADER_SIZE + manifest_len
    manifest = json.loads(data[HEADER_SIZE:start])
    entry = rng.choice(manifest["tensors"])
    begin = start + entry["offset"]
    blob = bytearray(data[begin:begin + entry["length"]])
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(min(len(blob), 64) if rng.random() < 0.7 else len(blob))
        blob[i] ^= 1 << rng.randrange(8)
    entry["crc32"] = tensor_crc32(entry["name"], bytes(blob))
    text = json.dumps(manifest, separators=(",", ":")).encode()
    return (pack_header(text) + text + data[start:begin] + bytes(blob)
            + data[begin + entry["length"]:])


def _mutate_image_meta(data, rng):
    """Edit one value of a layer image's JSON metadata (or one of its arrays' dtype or shape)
    and save the archive again, valid as a zip and as .npy members."""
    with np.load(io.BytesIO(data)) as archive:
        arrays = {name: archive[name] for name in archive.files}
    if rng.random() < 0.7:
        text = str(arrays["meta"]).encode()
        numbers = list(_NUMBER.finditer(text))
        m = rng.choice(numbers)
        text = text[:m.start()] + rng.choice(_ODD_NUMBERS) + text[m.end():]
        arrays["meta"] = np.array(text.decode())
    else:
        name = rng.choice([n for n in arrays if n != "meta"])
        arrays[name] = rng.choice([arrays[name].astype(np.float64), arrays[name][..., None],
                                   arrays[name][:0], arrays[name].astype(np.int8) * 100,
                                   -arrays[name], arrays[name][::-1]])
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def mutate(data, suffix, rng, *, inside=False, image=False):
    """One damaged copy of ``data``."""
    if image and rng.random() < 0.3:
        return _mutate_image_meta(data, rng)
    if not inside and suffix in (".npz", ".bin") and rng.random() < 0.4:
        return _mutate_inside_zip(data, rng)
    if not inside and suffix == ".gobo" and rng.random() < 0.4:
        return _mutate_gobo_blob(data, rng)
    data = bytearray(data)
    if not data:
        return bytes(data)
    kind = rng.choice(["flip", "flip", "truncate", "header", "header", "zipsize", "splice"])
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del data[rng.randrange(len(data)):]
    elif kind == "splice":
        i = rng.randrange(len(data))
        data[i:i + rng.randint(1, 16)] = rng.randbytes(rng.randint(0, 16))
    elif kind == "zipsize" and suffix in (".npz", ".bin"):
        # Local file headers: change a size field (compressed, uncompressed) or the CRC.
        starts = [m.start() for m in re.finditer(rb"PK\x03\x04|PK\x01\x02", bytes(data))]
        if starts:
            at = rng.choice(starts) + rng.choice([14, 18, 22, 20, 24])
            value = rng.choice([0, 1, 0xFFFFFFFF, rng.randrange(1 << 32), 1 << 30])
            data[at:at + 4] = value.to_bytes(4, "little")
    else:
        begin, end = _header_span(bytes(data), suffix)
        region = bytes(data[begin:end])
        numbers = list(_NUMBER.finditer(region))
        if suffix == ".npy" and rng.random() < 0.3:
            # The shape, rewritten whole: huge, negative, many dimensions.
            shape = rng.choice(["(1099511627776, 7)", "(-3, 5)", "(" + "2," * 40 + ")",
                                "(0,)", "()", "(6, 5, 0)", "(3, 'a')"])
            region = re.sub(rb"\(.*?\)", shape.encode(), region, count=1)
        elif numbers:
            m = rng.choice(numbers)
            region = region[:m.start()] + rng.choice(_ODD_NUMBERS) + region[m.end():]
        else:
            region = region[:-1]
        data[begin:end] = region
        if suffix == ".safetensors" and rng.random() < 0.5:
            data[:8] = (end - 8 + len(region) - (end - begin)).to_bytes(8, "little")
        if suffix == ".gobo" and begin == HEADER_SIZE and rng.random() < 0.7:
            # The manifest's length and CRC made anew, so that the edit reaches its checks.
            data[:HEADER_SIZE] = pack_header(region)
    return bytes(data)


def loaders():
    return {"weights": (load_tensors, WeightsError),
            "image": (load_image, ImageError),
            "model": (load_model, ModelFormatError)}


def fuzz(cases, seed=0, names=None, *, max_seconds=1.0, verbose=False, folder=None):
    """Run ``cases`` damaged files through each loader; return ``{loader: stats}``."""
    with tempfile.TemporaryDirectory(prefix="gobo-fuzz.", dir=folder) as tmp:
        tmp = pathlib.Path(tmp)
        seeds = make_seeds(tmp)
        results = {}
        for name, (load, error) in loaders().items():
            if names and name not in names:
                continue
            rng = random.Random(f"{seed}:{name}")
            stats = {"cases": 0, "rejected": 0, "accepted": 0, "unexpected": 0, "slow": 0,
                     "slowest_s": 0.0, "examples": []}
            for case in range(cases):
                suffix, original = rng.choice(seeds[name])
                damaged = mutate(original, suffix, rng, image=name == "image")
                path = tmp / f"case{suffix}"
                path.write_bytes(damaged)
                start = time.perf_counter()
                try:
                    result = load(path)
                    if name == "weights":   # touch every tensor: a lazy reader must fail here
                        with np.errstate(all="ignore"):
                            for array in result.values():
                                np.asarray(array).sum()
                    stats["accepted"] += 1
                except error as e:
                    stats["rejected"] += 1
                    if "\n" in str(e):
                        stats["unexpected"] += 1
                        stats["examples"].append(f"case {case}: multi-line message {str(e)!r}")
                except BaseException as e:  # noqa: BLE001 - counting what escapes is the point
                    if isinstance(e, KeyboardInterrupt):
                        raise
                    stats["unexpected"] += 1
                    if len(stats["examples"]) < 10:
                        where = traceback.extract_tb(e.__traceback__)[-1]
                        stats["examples"].append(
                            f"case {case} ({suffix}): {type(e).__name__}: {str(e)[:160]} "
                            f"at {where.filename}:{where.lineno}")
                        if verbose:
                            traceback.print_exc()
                elapsed = time.perf_counter() - start
                stats["cases"] += 1
                stats["slowest_s"] = max(stats["slowest_s"], elapsed)
                if elapsed > max_seconds:
                    stats["slow"] += 1
            stats["peak_mb"] = round(_peak_mb(), 1)
            stats["slowest_s"] = round(stats["slowest_s"], 4)
            results[name] = stats
    return results


def _cap_address_space(max_mb):
    """Make an allocation far past the memory budget fail at once (a MemoryError, which counts
    as unexpected) instead of swapping: the address space may grow by twice the budget plus
    512 MB over what the interpreter, NumPy and its thread pools have already reserved."""
    try:
        pages = int(pathlib.Path("/proc/self/statm").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return      # not Linux: the peak resident memory is still measured and checked
    current = pages * resource.getpagesize()
    limit = current + int(2 * max_mb * 2 ** 20) + (512 << 20)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or limit <= hard:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000, help="cases per loader")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--loaders", nargs="+", choices=sorted(loaders()), default=None)
    parser.add_argument("--max-seconds", type=float, default=1.0)
    parser.add_argument("--max-mb", type=float, default=512.0)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--verbose", action="store_true", help="print each unexpected traceback")
    args = parser.parse_args(argv)
    _cap_address_space(args.max_mb)
    started = time.perf_counter()
    results = fuzz(args.cases, args.seed, args.loaders, max_seconds=args.max_seconds,
                   verbose=args.verbose)
    bad = False
    for name, s in results.items():
        over = s["peak_mb"] > args.max_mb
        bad |= bool(s["unexpected"] or s["slow"] or over)
        if not args.json:
            print(f"{name:8s} {s['cases']} cases: {s['rejected']} rejected, {s['accepted']} "
                  f"accepted, {s['unexpected']} unexpected exceptions, slowest "
                  f"{s['slowest_s'] * 1000:.1f} ms ({s['slow']} over {args.max_seconds} s), "
                  f"peak memory {s['peak_mb']:.0f} MB")
            for line in s["examples"]:
                print(f"    {line}")
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print(f"{time.perf_counter() - started:.1f} s in all; "
              + ("FAILED" if bad else "only the loaders' own errors escaped"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
