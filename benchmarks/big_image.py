"""A 12-megapixel photo: peak memory of compress and decompress, tiled vs untiled PSNR, seams.

    python benchmarks/big_image.py [--model NAME] [--quality 50] [--engine auto|onnx|torch]

The 4000x3000 test image is kodim23 upscaled (bicubic). Compress and decompress run as
separate `salcodec` processes whose peak RSS is sampled with psutil. The tiled result is
compared with untiled coding of a 1536x1536 crop (tiling switched off for it), and the PSNR on
pixels within 2 px of tile borders with the PSNR elsewhere.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

from salcodec.codec import codec
from salcodec.codec.bitstream import unpack
from salcodec.eval.metrics import psnr, region_psnr
from salcodec.models.registry import DEFAULT_MODEL


def peak_rss(cmd: list[str]) -> tuple[float, float]:
    """Run a command; return (peak RSS in MB, wall seconds)."""
    start = time.time()
    proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, proc.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.read().decode())
    return peak / 2**20, time.time() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--quality", type=float, default=50)
    ap.add_argument("--kodak", default="../shared/data/kodak")
    ap.add_argument("--engine", default="auto", choices=["auto", "onnx", "torch"], help="coding engine of both commands")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.png"
        image = np.asarray(Image.open(Path(args.kodak) / "kodim23.png").convert("RGB").resize((4000, 3000), Image.BICUBIC))
        Image.fromarray(image).save(big)
        sgc, png = Path(tmp) / "big.sgc", Path(tmp) / "big.sgc.png"
        base = [sys.executable, "-m", "salcodec"]
        enc_mb, enc_s = peak_rss(base + ["compress", str(big), "-o", str(sgc), "--quality", str(args.quality),
                                         "--saliency", "none", "--model", args.model, "--engine", args.engine])
        dec_mb, dec_s = peak_rss(base + ["decompress", str(sgc), "-o", str(png), "--engine", args.engine])
        decoded = np.asarray(Image.open(png).convert("RGB"))
        data = sgc.read_bytes()
        tile = unpack(data).header.tile

    crop_box = (slice(0, 1536), slice(0, 1536))
    crop = np.ascontiguousarray(image[crop_box])
    codec.TILE_ABOVE_PIXELS = 1 << 40  # the reference crop is coded in one piece
    untiled = codec.decode(codec.encode(crop, args.quality, None, 0.0, args.model).data)
    border = np.zeros(image.shape[:2], bool)
    if tile:
        for edge in range(tile, max(image.shape[:2]), tile):
            border[max(0, edge - 2):edge + 2, :] = True
            border[:, max(0, edge - 2):edge + 2] = True
    print(f"model {args.model}, quality {args.quality:g}, 4000x3000 (kodim23 upscaled), tile side {tile}, "
          f"{psutil.cpu_count()} CPUs, --engine {args.engine}")
    print("| step | peak RSS (MB) | wall (s) |\n|---|---|---|")
    print(f"| compress | {enc_mb:.0f} | {enc_s:.1f} |\n| decompress | {dec_mb:.0f} | {dec_s:.1f} |")
    print(f"\nreal bpp {8 * len(data) / image[..., 0].size:.4f}; PSNR whole image {psnr(image, decoded):.2f} dB")
    print(f"1536x1536 crop: tiled {psnr(crop, decoded[crop_box]):.2f} dB vs untiled {psnr(crop, untiled):.2f} dB")
    if tile:
        print(f"seams: PSNR within 2 px of tile borders {region_psnr(image, decoded, border):.2f} dB, "
              f"elsewhere {region_psnr(image, decoded, ~border):.2f} dB")


if __name__ == "__main__":
    main()
