"""How much RD rounding of the latents (codec/rounding.py) saves, and which multiplier to use.

    python benchmarks/rd_rounding.py [--data ../shared/data/train/bsds500/train] [--images 6]
                                     [--multipliers 0 20 40 80] [--qualities 0 25 50 75 100]
                                     [--model ID] [--engine onnx|torch] [--json OUT]

Every image is coded at every quality with each multiplier (0 is nearest rounding) and decoded by
the model's own decoder; rate is the real file size. Printed per multiplier: the BD-rate (PSNR)
against nearest rounding per image, averaged, the mean change of bpp and PSNR at each quality,
and the median time of one compress (the rounding's cost: compare with multiplier 0).
The shipped multiplier was chosen on BSDS500 training photos (the default `--data`); run it on
`../shared/data/kodak` or `../shared/data/train/bsds500/test` to see it hold on photos it was not
chosen on.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from salcodec import api
from salcodec.codec.rounding import rd_multiplier
from salcodec.eval.metrics import bd_rate, psnr
from salcodec.models import DEFAULT_MODEL


def curve(image: np.ndarray, qualities: list[float], model: str, engine: str,
          seconds: list[float]) -> list[tuple[float, float]]:
    """(real bpp, PSNR) at each quality; each compress's wall time is appended to `seconds`."""
    points = []
    for quality in qualities:
        start = time.perf_counter()
        data = api.compress(image, quality, saliency="none", model=model, engine=engine)
        seconds.append(time.perf_counter() - start)
        points.append((8 * len(data) / (image.shape[0] * image.shape[1]), psnr(image, api.decompress(data, engine=engine))))
    return points


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/train/bsds500/train")
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--multipliers", type=float, nargs="+", default=[0, 20, 40, 80])
    ap.add_argument("--qualities", type=float, nargs="+", default=[0, 25, 50, 75, 100])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--engine", default="onnx", choices=["onnx", "torch"])
    ap.add_argument("--json", type=Path, help="write every curve here")
    args = ap.parse_args()
    files = sorted(p for p in Path(args.data).iterdir() if p.suffix.lower() in (".png", ".jpg"))[: args.images]
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    api.compress(images[0], 50, saliency="none", model=args.model, engine=args.engine)  # loading, outside the timing
    curves: dict[float, list] = {}
    seconds: dict[float, list[float]] = {}
    for m in args.multipliers:
        seconds[m] = []
        with rd_multiplier(m):
            curves[m] = [curve(image, args.qualities, args.model, args.engine, seconds[m]) for image in images]
    base = curves[0.0] if 0.0 in curves else curves[args.multipliers[0]]
    print(f"# {args.model}, {len(images)} images of {args.data}, qualities {args.qualities}, engine {args.engine}")
    print("| multiplier | BD-rate vs nearest | " + " | ".join(f"q{q:g}: Δbpp, ΔPSNR" for q in args.qualities)
          + " | compress (s, median) |")
    print("|---|---|" + "---|" * len(args.qualities) + "---|")
    for m, rd in curves.items():
        bds = [bd_rate(*zip(*b), *zip(*c)) for b, c in zip(base, rd)]
        cells = []
        for j in range(len(args.qualities)):
            dbpp = np.mean([c[j][0] / b[j][0] - 1 for b, c in zip(base, rd)]) * 100
            dpsnr = np.mean([c[j][1] - b[j][1] for b, c in zip(base, rd)])
            cells.append(f"{dbpp:+.1f} %, {dpsnr:+.2f} dB")
        print(f"| {m:g} | {np.mean(bds):+.2f} % (images {min(bds):+.2f} to {max(bds):+.2f}) | " + " | ".join(cells)
              + f" | {statistics.median(seconds[m]):.3f} |")
    if args.json:
        args.json.write_text(json.dumps({"files": [f.name for f in files], "qualities": args.qualities,
                                         "curves": {str(m): c for m, c in curves.items()}}, indent=1))


if __name__ == "__main__":
    main()
