"""How `--refine`'s learning rate and step count move what it saves, on photos no model trained on.

    python benchmarks/refine_settings.py [--settings 0.015x40 0.01x40 0.01x80] [--images 4]
                                         [--qualities 10 50 90] [--json OUT]

Each setting is Adam's learning rate × the number of steps (models/refinement.py). The photos are
the first OSIE `val` ids of `saliency/splits.json`, centre crops of 512×384 (the ids no model
trains on, and none of the test sets, so the choice is not tuned on what the README reports).
Each crop is coded at each quality with a uniform map, plain and refined (torch engine, as
`salcodec compress --refine`), and scored by what the search minimises, on the real files: bpp +
mean(λ(q) · squared error), 8-bit units. Printed: the change of that cost against the plain file,
per photo and quality and on average, and the seconds per refined encode.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from salcodec.codec import codec
from salcodec.codec.quality import quality_to_q0
from salcodec.models import refinement

OSIE = Path("../shared/data/saliency/osie")
CROP = (384, 512)


def val_crops(count: int) -> dict[str, np.ndarray]:
    ids = json.loads((OSIE.parent / "splits.json").read_text())["osie"]["val"][:count]
    crops = {}
    for photo_id in ids:
        image = np.asarray(Image.open(OSIE / "images" / f"{photo_id}.jpg").convert("RGB"))
        top, left = (image.shape[0] - CROP[0]) // 2, (image.shape[1] - CROP[1]) // 2
        crops[photo_id] = np.ascontiguousarray(image[top:top + CROP[0], left:left + CROP[1]])
    return crops


def coding_cost(image: np.ndarray, quality: float, refine_steps: int) -> float:
    uniform_map = np.full(image.shape[:2], quality_to_q0(quality), np.float32)
    return codec.file_cost(codec.encode(image, quality, refine_steps=refine_steps), image, uniform_map)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--settings", nargs="+", default=["0.015x40", "0.01x40", "0.01x80"], metavar="LRxSTEPS")
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--qualities", type=float, nargs="+", default=[10, 50, 90])
    ap.add_argument("--json", type=Path, help="write the per-point changes here")
    args = ap.parse_args()
    torch.set_num_threads(2)
    crops = val_crops(args.images)
    plain = {(i, q): coding_cost(image, q, 0) for i, image in crops.items() for q in args.qualities}
    results = {}
    for setting in args.settings:
        learning_rate, steps = float(setting.split("x")[0]), int(setting.split("x")[1])
        refinement.LEARNING_RATE = learning_rate
        start, changes = time.perf_counter(), {}
        for i, image in crops.items():
            for q in args.qualities:
                changes[f"{i}@{q:g}"] = 100 * (coding_cost(image, q, steps) / plain[(i, q)] - 1)
                print(f"{setting:>9}  {i} quality {q:g}: cost {changes[f'{i}@{q:g}']:+.2f} %", flush=True)
        seconds = (time.perf_counter() - start) / len(changes)
        results[setting] = {"mean_change_percent": float(np.mean(list(changes.values()))),
                            "seconds_per_encode": seconds, "changes_percent": changes}
    print(f"\n{'setting':>9} | mean cost change | s per refined encode (with the plain one and two decodes)")
    for setting, r in results.items():
        print(f"{setting:>9} | {r['mean_change_percent']:+.2f} % | {r['seconds_per_encode']:.1f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
