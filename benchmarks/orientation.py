"""What coding a flipped image saves, per orientation and as `salcodec compress --try-flips` chooses.

    python benchmarks/orientation.py [--data ../shared/data/kodak] [--images 24]
                                     [--orientations id hflip vflip rot180] [--qualities 0 25 50 75 100]
                                     [--model ID] [--json OUT]

The transforms are not equivariant to flips (strided convolutions sample the image from its
top-left corner, padding sits at the bottom and right, the checkerboard starts at the first
latent), so the same photo flipped costs other bits for another error. Each image is coded at
each quality in each orientation (`--saliency none`, onnx engine), decoded, flipped back and
scored against the original. Printed: each orientation's PSNR BD-rate against the image as it is,
and the BD-rate of an encoder that, at each quality, keeps the orientation with the lowest
rate-distortion cost bpp + λ(q0) · MSE (the model's own training objective, MSE in 8-bit units;
the choice `salcodec compress --try-flips` makes, with the same functions, codec/orientation.py).
Rate is the real file size.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from salcodec import api
from salcodec.codec.orientation import ORIENTATIONS, flip, mean_squared_error
from salcodec.codec.quality import lambda_map, quality_to_q0
from salcodec.eval.metrics import bd_rate, psnr
from salcodec.models import DEFAULT_MODEL

FLIPS = dict(zip(("id", "hflip", "vflip", "rot180"), ORIENTATIONS))  # names for the header's flip flags


def bd(anchor: list[tuple[float, float]], curve: list[tuple[float, float]]) -> float:
    return bd_rate([b for b, _ in anchor], [p for _, p in anchor], [b for b, _ in curve], [p for _, p in curve])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/kodak")
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--orientations", nargs="+", default=list(FLIPS), choices=list(FLIPS))
    ap.add_argument("--qualities", type=float, nargs="+", default=[0, 25, 50, 75, 100])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--json", type=Path, help="write every point here")
    args = ap.parse_args()
    if args.orientations[0] != "id":
        args.orientations = ["id"] + [o for o in args.orientations if o != "id"]
    files = sorted(p for p in Path(args.data).iterdir() if p.suffix.lower() in (".png", ".jpg"))[: args.images]
    bd_by_orientation: dict[str, list[float]] = {o: [] for o in args.orientations}
    bd_best, picked, points = [], {o: 0 for o in args.orientations}, {}
    for path in files:
        image = np.asarray(Image.open(path).convert("RGB"))
        curves: dict[str, list[tuple[float, float, float]]] = {}
        for name in args.orientations:
            curve = []
            for quality in args.qualities:
                data = api.compress(flip(image, FLIPS[name]), quality, saliency="none", model=args.model, engine="onnx")
                decoded = flip(api.decompress(data, engine="onnx"), FLIPS[name])
                curve.append((8 * len(data) / (image.shape[0] * image.shape[1]), psnr(image, decoded),
                              mean_squared_error(decoded, image)))
            curves[name] = curve
        base = [(b, p) for b, p, _ in curves["id"]]
        for name in args.orientations:
            bd_by_orientation[name].append(bd(base, [(b, p) for b, p, _ in curves[name]]))
        best = []
        for i, quality in enumerate(args.qualities):
            lam = float(lambda_map(np.float64(quality_to_q0(quality))))
            name = min(args.orientations, key=lambda o: curves[o][i][0] + lam * curves[o][i][2])
            picked[name] += 1
            best.append(curves[name][i][:2])
        bd_best.append(bd(base, best))
        points[path.name] = curves
        print(f"{path.name}: " + ", ".join(f"{o} {bd_by_orientation[o][-1]:+.2f} %" for o in args.orientations[1:])
              + f"; best per quality {bd_best[-1]:+.2f} %", flush=True)
    print(f"\n{len(files)} images of {args.data}, model {args.model}; PSNR BD-rate against coding the image as it is")
    print("| orientation | mean BD-rate | images where it is cheaper |")
    print("|---|---|---|")
    for name in args.orientations[1:]:
        values = bd_by_orientation[name]
        print(f"| {name} | {np.mean(values):+.2f} % | {sum(v < 0 for v in values)} of {len(values)} |")
    print(f"| best of {len(args.orientations)} per quality (bpp + λ·MSE) | {np.mean(bd_best):+.2f} % | "
          f"{sum(v < 0 for v in bd_best)} of {len(bd_best)} |")
    print("orientation kept, over all images and qualities: " + ", ".join(f"{o} {n}" for o, n in picked.items()))
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "points": points,
                                         "bd_by_orientation": bd_by_orientation, "bd_best": bd_best}, indent=1))


if __name__ == "__main__":
    main()
