"""Saliency prediction time per method on the 24 Kodak images (768×512), warm process.

    python benchmarks/saliency_speed.py [--threads 2] [--repeats 3]

Prints the median and the slowest time per image for every predictor, then the time to turn the
auto map into the encoder's quality map (codec/quality.quality_map: ranks, then q), and the
peak RSS of the process. `--saliency auto` in compress runs the predictor named in the last line.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from salcodec import saliency
from salcodec.codec.quality import DEFAULT_STRENGTH, quality_map


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kodak", default="../shared/data/kodak")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(Path(args.kodak).glob("*.png"))]
    print(f"{len(images)} Kodak images, {args.threads} torch threads, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")
    print("| method | median (ms) | slowest (ms) |\n|---|---|---|")
    for name in saliency.METHODS:
        saliency.predict(images[0], name)  # warm-up: loads weights, builds caches
        times = []
        for image in images:
            best = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                saliency.predict(image, name)
                best = min(best, time.perf_counter() - start)
            times.append(best)
        print(f"| {name} | {1000 * statistics.median(times):.1f} | {1000 * max(times):.1f} |")
    times = []
    for image in images:
        sal = saliency.predict(image, saliency.AUTO_METHOD)
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            quality_map(sal.shape, 0.5, sal, DEFAULT_STRENGTH)
            best = min(best, time.perf_counter() - start)
        times.append(best)
    print(f"| quality map from the auto map | {1000 * statistics.median(times):.1f} | {1000 * max(times):.1f} |")
    print(f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; auto = {saliency.AUTO_METHOD}")


if __name__ == "__main__":
    main()
