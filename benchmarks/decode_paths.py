"""Decode time of one image with the synthesis' transposed convolutions run natively and as
convolution + pixel shuffle (models/layers.SubPixelConvTranspose2d), in the same process.

    python benchmarks/decode_paths.py [--image ../shared/data/kodak/kodim01.png] [--repeats 5]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from PIL import Image

from salcodec.api import compress_image
from salcodec.codec import codec
from salcodec.models.layers import SubPixelConvTranspose2d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default="../shared/data/kodak/kodim01.png")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    image = np.asarray(Image.open(args.image).convert("RGB"))
    data = compress_image(image, 50, "none").data
    shuffle_applies = SubPixelConvTranspose2d._shuffle_applies
    print(f"{args.image}, default model, quality 50; median of {args.repeats} decodes")
    print("| path | decode (s) | pixels differing from the native path |\n|---|---|---|")
    native = None
    for name, rule in (("transposed convolution", lambda self: False), ("convolution + pixel shuffle", shuffle_applies)):
        SubPixelConvTranspose2d._shuffle_applies = rule
        pixels = codec.decode(data)  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            codec.decode(data)
            times.append(time.perf_counter() - start)
        native = pixels if native is None else native
        print(f"| {name} | {statistics.median(times):.3f} | {int((pixels != native).any(-1).sum())} |")
    SubPixelConvTranspose2d._shuffle_applies = shuffle_applies


if __name__ == "__main__":
    main()
