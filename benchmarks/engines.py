"""The two coding engines on Kodak: do they write and read the same files?

    python benchmarks/engines.py [--images 24] [--qualities 10 50 90] [--saliency none|auto] [--model ID]
                                 [--encoder default|fast] [--decoder mse|fast|gan]

For every image and quality, each engine (salcodec/runtime: torch, the reference, and onnx)
compresses the image and each decodes both files. Prints how many files are byte-identical,
the largest size difference, how many decoded pixels differ between engines and by how much,
and the mean PSNR of each (file, decoder) pair: the rate-distortion cost of choosing an engine.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from salcodec import api
from salcodec.eval.metrics import psnr
from salcodec.models import DEFAULT_MODEL


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kodak", default="../shared/data/kodak")
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--qualities", type=float, nargs="+", default=[10, 50, 90])
    ap.add_argument("--saliency", default="none", help="none, or auto (each engine predicts its own map)")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--encoder", default="default", choices=["default", "fast"])
    ap.add_argument("--decoder", default="mse", choices=["mse", "fast", "gan"])
    args = ap.parse_args()
    engines = ("torch", "onnx")
    same_bytes = total = 0
    size_diff, differing, max_diff = [], [], 0
    psnrs: dict[tuple[str, str], list[float]] = {(f, d): [] for f in engines for d in engines}
    bpps: dict[str, list[float]] = {e: [] for e in engines}
    for path in sorted(Path(args.kodak).glob("*.png"))[: args.images]:
        image = np.asarray(Image.open(path).convert("RGB"))
        for quality in args.qualities:
            files = {e: api.compress(image, quality, args.saliency, model=args.model, encoder=args.encoder, engine=e)
                     for e in engines}
            total += 1
            same_bytes += files["torch"] == files["onnx"]
            size_diff.append(abs(len(files["torch"]) - len(files["onnx"])) / len(files["torch"]))
            for made_by, data in files.items():
                bpps[made_by].append(8 * len(data) / (image.shape[0] * image.shape[1]))
                decoded = {d: api.decompress(data, args.decoder, engine=d) for d in engines}
                for d, pixels in decoded.items():
                    psnrs[(made_by, d)].append(psnr(image, pixels))
                diff = np.abs(decoded["torch"].astype(int) - decoded["onnx"].astype(int))
                differing.append(float((diff > 0).mean()))
                max_diff = max(max_diff, int(diff.max()))
    print(f"# {args.model}, {args.encoder} encoder, {args.decoder} decoder, {args.images} Kodak images x qualities "
          f"{args.qualities}, saliency {args.saliency}: {total} files per engine")
    print(f"byte-identical files: {same_bytes}/{total}; largest size difference {100 * max(size_diff):.3f} %")
    print(f"decoded pixels that differ between engines: {100 * np.mean(differing):.4f} % on average, "
          f"{100 * max(differing):.4f} % at most, by at most {max_diff} level(s)")
    print("| file written by | mean bpp | PSNR, torch decoder | PSNR, onnx decoder |")
    print("|---|---|---|---|")
    for made_by in engines:
        print(f"| {made_by} | {np.mean(bpps[made_by]):.4f} | {np.mean(psnrs[(made_by, 'torch')]):.4f} | "
              f"{np.mean(psnrs[(made_by, 'onnx')]):.4f} |")


if __name__ == "__main__":
    main()
