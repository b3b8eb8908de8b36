"""MSE and GAN decoders side by side on the same files (the GAN decoder issue's table).

    python benchmarks/generative.py [--model default-v4] [--quality 0] [--data ../shared/data/kodak]
                                    [--out-dir runs/generative]
    python benchmarks/generative.py --models gan-extreme-v1-mse gan-extreme-v1   # two whole codecs
    python benchmarks/generative.py --blend 0.6 0.8   # also a decode-time blend of the two decoders
    python benchmarks/generative.py --quality 25 --strength 0.35   # files coded with the predicted saliency
    python benchmarks/generative.py --unsharp 2 3 4   # also the MSE decode sharpened: a baseline without a GAN

Each image is compressed once (`--saliency none`, or with the shipped predictor's map at
`--strength` γ) and decoded by both decoders; with `--models`
each of the two models (an MSE-trained one first, a GAN-trained one second; fixed-rate models
ignore `--quality`) compresses and decompresses it. The ROI is the
top 20 % of the shipped saliency predictor's map (`auto`; Kodak has no human fixations), so
ROI-PSNR here is "where the predictor says people look". Realism is the high-frequency ratio:
power in the upper half of spatial frequencies of the reconstruction over the original's; the same
band's energy is also compared inside the ROI and outside it (where the texture went). The
grid artefact ratio measures periodic patterns on the decoder's 16-px grid (1 = none). FID and
KID against the originals' patches are added when Inception weights are at hand (--inception-weights,
see salcodec/eval/realism.py); without them the output says they are unavailable.
Writes per-image rows to OUT/generative.csv and a crop grid (original / MSE / GAN / saliency)
to OUT/crops.png. `--blend LO HI` adds a row for an experiment that is not a product path: the
MSE decode where the predictor, run on that decode (all a decoder could know), ranks a pixel above
the HI quantile of its map, the GAN decode below LO, a linear ramp between.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from salcodec import saliency
from salcodec.codec import codec
from salcodec.eval import realism
from salcodec.eval.metrics import (
    grid_artefact_ratio,
    high_frequency_ratio,
    ms_ssim,
    psnr,
    region_high_frequency_ratio,
    region_psnr,
    roi_mask,
)
from salcodec.models.registry import DEFAULT_MODEL

CROP = 192


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--models", nargs=2, metavar=("MSE_MODEL", "GAN_MODEL"),
                    help="compare two codecs, each with its own files, instead of two decoders of one")
    ap.add_argument("--quality", type=float, default=0)
    ap.add_argument("--strength", type=float, default=0.0,
                    help="code with the predicted saliency map at this strength γ (default 0: --saliency none)")
    ap.add_argument("--data", default="../shared/data/kodak")
    ap.add_argument("--images", type=int, help="only the first N images")
    ap.add_argument("--out-dir", default="runs/generative")
    ap.add_argument("--blend", type=float, nargs=2, metavar=("LO", "HI"),
                    help="also blend the two decodes by the saliency quantiles of the MSE decode")
    ap.add_argument("--unsharp", type=float, nargs="+", metavar="AMOUNT", default=[],
                    help="also the MSE decode sharpened by unsharp masking (decode + AMOUNT · (decode − its Gaussian blur, σ = 1 px)): "
                         "the texture any decoder gets from sharpening alone")
    ap.add_argument("--inception-weights", help="pytorch-fid's Inception weights for FID/KID (salcodec.eval.realism)")
    args = ap.parse_args()
    weights = realism.find_weights(args.inception_weights)
    collector = realism.RealismCollector(weights) if weights else None
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = sorted(Path(args.data).glob("*.png"))[: args.images]
    rows, grid = [], []
    for i, path in enumerate(paths):
        image = np.asarray(Image.open(path).convert("RGB"))
        sal = saliency.predict(image, "auto")
        roi = roi_mask(sal)
        coding_map = sal if args.strength else None
        decoded, bpp = {}, {}
        if args.models:
            for name, model in zip(("mse", "gan"), args.models):
                enc = codec.encode(image, args.quality, coding_map, args.strength, model)
                decoded[name], bpp[name] = codec.decode(enc.data), enc.bpp
        else:
            enc = codec.encode(image, args.quality, coding_map, args.strength, args.model)
            for name in ("mse", "gan"):
                decoded[name], bpp[name] = codec.decode(enc.data, decoder=name), enc.bpp
        if args.blend:
            own = saliency.predict(decoded["mse"], "auto")
            lo, hi = np.quantile(own, args.blend)
            w = np.clip((own - lo) / max(hi - lo, 1e-6), 0, 1)[..., None]
            decoded["blend"] = np.round(w * decoded["mse"] + (1 - w) * decoded["gan"]).astype(np.uint8)
            bpp["blend"] = bpp["gan"]
        for amount in args.unsharp:
            mse = decoded["mse"].astype(np.float32)
            detail = mse - cv2.GaussianBlur(mse, (0, 0), sigmaX=1.0)
            decoded[f"unsharp {amount:g}"] = np.clip(np.round(mse + amount * detail), 0, 255).astype(np.uint8)
            bpp[f"unsharp {amount:g}"] = bpp["mse"]
        if collector:
            collector.add_original(image)
        for name, pixels in decoded.items():
            if collector:
                collector.add(name, args.quality, bpp[name], pixels)
            rows.append({"image": path.name, "decoder": name, "bpp": bpp[name], "psnr": psnr(image, pixels),
                         "ms_ssim": ms_ssim(image, pixels), "roi_psnr": region_psnr(image, pixels, roi),
                         "hf_ratio": high_frequency_ratio(image, pixels),
                         "hf_ratio_roi": region_high_frequency_ratio(image, pixels, roi),
                         "hf_ratio_background": region_high_frequency_ratio(image, pixels, ~roi),
                         "grid_ratio": grid_artefact_ratio(image, pixels)})
        if i < 4:  # a crop around the most salient point
            cy, cx = np.unravel_index(int(np.argmax(sal)), sal.shape)
            y0 = int(np.clip(cy - CROP // 2, 0, image.shape[0] - CROP))
            x0 = int(np.clip(cx - CROP // 2, 0, image.shape[1] - CROP))
            cut = (slice(y0, y0 + CROP), slice(x0, x0 + CROP))
            heat = (np.clip(sal, 0, 1) * 255).astype(np.uint8)
            grid.append(np.concatenate([image[cut], decoded["mse"][cut], decoded["gan"][cut],
                                        np.dstack([heat, heat // 3, 255 - heat])[cut]], axis=1))
    with (out / "generative.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    Image.fromarray(np.concatenate(grid, axis=0)).save(out / "crops.png")
    what = f"models {' (mse) vs '.join(args.models)} (gan)" if args.models else f"model {args.model}"
    coding = f"--saliency auto --strength {args.strength:g}" if args.strength else "--saliency none"
    print(f"{what}, quality {args.quality:g}, {len(paths)} images of {args.data}, {coding}; "
          f"ROI = top 20 % of the shipped predictor's map (auto)")
    print("| decoder | bpp | PSNR (dB) | MS-SSIM | ROI-PSNR (dB) | high-frequency ratio | in the ROI | outside | "
          "grid artefact ratio |\n|---|---|---|---|---|---|---|---|---|")
    for name in dict.fromkeys(r["decoder"] for r in rows):
        mine = [r for r in rows if r["decoder"] == name]
        mean = {k: float(np.mean([r[k] for r in mine])) for k in ("bpp", "psnr", "ms_ssim", "roi_psnr", "hf_ratio",
                                                                   "hf_ratio_roi", "hf_ratio_background", "grid_ratio")}
        print(f"| {name} | {mean['bpp']:.4f} | {mean['psnr']:.2f} | {mean['ms_ssim']:.4f} | {mean['roi_psnr']:.2f} | "
              f"{mean['hf_ratio']:.3f} | {mean['hf_ratio_roi']:.3f} | {mean['hf_ratio_background']:.3f} | "
              f"{mean['grid_ratio']:.2f} |")
    print("\n" + realism.format_realism(collector.summary() if collector else {"unavailable": realism.unavailable_reason()}))
    print(f"crop grid (original / MSE / GAN / saliency): {out / 'crops.png'}")


if __name__ == "__main__":
    main()
