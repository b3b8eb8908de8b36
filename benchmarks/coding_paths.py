"""Compress and decompress time of one image along the convolution paths salcodec has used, in
one process: with oneDNN off and the synthesis' transposed convolutions run natively (session 5),
as convolution + pixel shuffle (models/layers.SubPixelConvTranspose2d; sessions 6-7), and with
oneDNN on for every k×k convolution while the 1×1 ones run natively (models/layers
.native_kernels_when_coding; since session 9).

    python benchmarks/coding_paths.py [--image ../shared/data/kodak/kodim01.png] [--repeats 5]
                                      [--encoder default|fast] [--decoder mse|fast]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image
from timing import median_seconds

from salcodec.codec import codec
from salcodec.models.layers import SubPixelConvTranspose2d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default="../shared/data/kodak/kodim01.png")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--encoder", default="default")
    ap.add_argument("--decoder", default="mse")
    args = ap.parse_args()
    image = np.asarray(Image.open(args.image).convert("RGB"))
    shuffle_applies = SubPixelConvTranspose2d._shuffle_applies
    paths = [("oneDNN off, transposed convolutions", False, lambda self: False),
             ("oneDNN off, convolution + pixel shuffle", False, shuffle_applies),
             ("oneDNN on (1×1 convolutions native)", True, shuffle_applies)]
    print(f"{args.image}, default model, quality 50, --encoder {args.encoder}, --decoder {args.decoder}; "
          f"median of {args.repeats}, {torch.get_num_threads()} threads")
    print("| path | compress (s) | decompress (s) | file bytes | pixels differing from the first path |\n|---|---|---|---|---|")
    first = None
    try:
        for name, onednn, rule in paths:
            torch.backends.mkldnn.enabled = onednn
            SubPixelConvTranspose2d._shuffle_applies = rule
            data = codec.encode(image, 50, encoder=args.encoder).data
            pixels = codec.decode(data, decoder=args.decoder)
            first = pixels if first is None else first
            encode_s = median_seconds(lambda: codec.encode(image, 50, encoder=args.encoder), args.repeats)
            decode_s = median_seconds(lambda data=data: codec.decode(data, decoder=args.decoder), args.repeats)
            print(f"| {name} | {encode_s:.3f} | {decode_s:.3f} | {len(data)} | {int((pixels != first).any(-1).sum())} |")
    finally:
        SubPixelConvTranspose2d._shuffle_applies = shuffle_applies
        torch.backends.mkldnn.enabled = True


if __name__ == "__main__":
    main()
