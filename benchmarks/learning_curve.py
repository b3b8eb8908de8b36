"""PSNR at 0.5 bpp on Kodak against training steps, from the weights snapshots of a run.

    python benchmarks/learning_curve.py runs/default/snapshots --out docs/learning_curve.png
    python benchmarks/learning_curve.py runs/default-v3/snapshots --step-offset 17791 \
        --previous docs/learning_curve.csv --images 8     # a later stage, added to the curve so far
    python benchmarks/learning_curve.py runs/default-v4/snapshots --previous docs/learning_curve.csv --images 8 \
        --xlabel "training steps (8 x 128² on the CPU up to 24,791, then 16 x 256² on a GPU)"

Each snapshot is coded at several qualities (uniform quality map) on the first --images Kodak
images; the PSNR at the target rate is interpolated per image in log-bpp, then averaged. Writes a
CSV beside the plot.
"""
from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("snapshots", help="folder of stepNNNNNNN.pt files (or of <id>.pt files named stepNNNNNNN.pt)")
    ap.add_argument("--logs", nargs="*", default=[],
                    help="training log.csv files, in order (later stages continue the step count): plotted beside")
    ap.add_argument("--kodak", default="../shared/data/kodak")
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--qualities", type=float, nargs="+", default=[10, 25, 40, 55, 70, 85])
    ap.add_argument("--rate", type=float, default=0.5)
    ap.add_argument("--out", default="docs/learning_curve.png")
    ap.add_argument("--step-offset", type=int, default=0, help="steps trained before this run (earlier stages)")
    ap.add_argument("--previous", help="CSV written by an earlier run of this script: its rows come first, "
                                       "and snapshots at steps it already holds are not measured again")
    ap.add_argument("--xlabel", default="training steps (batch 8 x 128²)")
    args = ap.parse_args()
    os.environ["SALCODEC_MODEL_PATH"] = args.snapshots
    from salcodec.codec import codec
    from salcodec.eval.metrics import mean_quality_at_rate, psnr

    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(Path(args.kodak).glob("*.png"))[: args.images]]
    rows = []
    if args.previous:
        with open(args.previous) as fh:
            rows = [{k: (float(v) if v else None) if k.startswith("psnr") else (int(v) if k == "step" else v)
                     for k, v in r.items()} for r in csv.DictReader(fh)]
    for snap in sorted(Path(args.snapshots).glob("step*.pt")):
        step = args.step_offset + int(snap.stem[4:])
        if any(r["step"] == step for r in rows):
            continue
        curves = []
        for img in images:
            bpp, quality = [], []
            for q in args.qualities:
                enc = codec.encode(img, q, None, 0.0, snap.stem)
                bpp.append(enc.bpp)
                quality.append(psnr(img, codec.decode(enc.data)))
            curves.append((bpp, quality))
        at = mean_quality_at_rate(curves, args.rate)
        mean_bpp = [float(np.mean([c[0][i] for c in curves])) for i in range(len(args.qualities))]
        rows.append({"step": step, f"psnr_at_{args.rate}": at, "bpp_range": f"{min(mean_bpp):.3f}-{max(mean_bpp):.3f}"})
        print(rows[-1], flush=True)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.with_suffix(".csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2 if args.logs else 1, figsize=(11 if args.logs else 6, 4), dpi=110, squeeze=False)
    ax = axes[0, 0]
    measured = [r for r in rows if r[f"psnr_at_{args.rate}"] is not None]  # early models may not reach the rate
    ax.plot([r["step"] for r in measured], [r[f"psnr_at_{args.rate}"] for r in measured], marker="o")
    ax.set_xlabel(args.xlabel)
    ax.set_ylabel(f"Kodak PSNR-RGB at {args.rate} bpp (dB)")
    ax.grid(alpha=0.3)
    if args.logs:
        offset, ax2 = 0, axes[0, 1]
        for log in args.logs:
            with open(log) as fh:
                entries = list(csv.DictReader(fh))
            steps = [offset + int(e["step"]) for e in entries]
            ax2.plot(steps, [float(e["psnr"]) for e in entries], lw=0.8, label=f"{Path(log).parent.name}: PSNR")
            offset = steps[-1] if steps else offset
        ax2.set_xlabel("training steps, all stages")
        ax2.set_ylabel("training-crop PSNR (dB, random quality maps)")
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out} and {out.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
