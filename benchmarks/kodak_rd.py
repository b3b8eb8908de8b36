"""Rate-distortion of a salcodec model on Kodak (or any folder), against classic codecs.

    python benchmarks/kodak_rd.py --bd-anchor jpeg --bd-anchor webp
    python benchmarks/kodak_rd.py --from-json docs/results/kodak-rd-default-v4-cb.json   # reprint a saved run
    python benchmarks/kodak_rd.py --try-flips --bd-anchor webp   # the encoder's flip search (onnx engine)
    python benchmarks/kodak_rd.py --refine 40 --bd-anchor webp   # latents refined per image (torch engine)
    python benchmarks/kodak_rd.py --refine 40 --json-out R.json --resume   # go on with R.json's run after a stop
    python benchmarks/kodak_rd.py --from-json B.json --versus A.json   # run B's curves against run A's, per image
    python benchmarks/kodak_rd.py --from-json R.json --anchors-from A.json   # a stopped run against A's anchors
    python benchmarks/kodak_rd.py --from-json A.json --images 18   # a saved run's tables on its first 18 images

Every salcodec point is a real .sgc file (uniform quality map: --saliency none). Prints the
mean real bpp and PSNR-RGB per setting, PSNR interpolated at 0.25/0.5/1.0 bpp (per image, in
log-bpp, then averaged) and the BD-rate against each anchor encoded in the same run. A rate that
some image's curve does not reach is n/a in that table; a second table compares every codec at
each rate on the images whose curves all reach it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image
from tqdm import tqdm

from salcodec import runtime
from salcodec.codec import codec
from salcodec.codec.bitstream import unpack
from salcodec.eval import baselines
from salcodec.eval.metrics import bd_rate, mean_quality_at_rate, psnr, quality_at_rate
from salcodec.models.registry import DEFAULT_MODEL

RATES = (0.25, 0.5, 1.0)
DEFAULT_QUALITIES = [0, 15, 30, 45, 60, 75, 90, 100]


def load_images(folder: Path, limit: int | None) -> list[tuple[str, np.ndarray]]:
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})[:limit]
    return [(p.name, np.asarray(Image.open(p).convert("RGB"))) for p in paths]


def salcodec_curves(images, model: str, qualities: list[float], try_flips: bool = False, refine: int = 0,
                    earlier: dict | None = None, save: Callable[[dict], None] | None = None) -> dict:
    """The model's curve per image (torch engine; with `try_flips`, the onnx engine and the
    encoder's flip search, four encodes and decodes per point; with `refine`, that many steps of
    latent refinement per encode, torch engine). `earlier`: curves of a stopped run of the same
    settings, whose images are not coded again; `save` gets the curves after every image, so a
    run of hours can stop and go on."""
    curves = {"settings": qualities, "per_image": {}, "stream_vs_estimate": {"max": -np.inf, "min": np.inf}}
    if earlier:
        curves["per_image"].update(earlier["per_image"])
        curves["stream_vs_estimate"].update(earlier["stream_vs_estimate"])
    todo = [(name, img) for name, img in images if name not in curves["per_image"]]
    for name, img in tqdm(todo, desc=f"salcodec {model}", file=sys.stderr):
        curve = {"bpp": [], "est_bpp": [], "psnr": []}
        gaps = []  # (coded stream bits − estimate) / estimate, per setting
        for q in qualities:
            if try_flips or refine:
                enc = runtime.encode(img, q, None, 0.0, model, "default", "torch" if refine else "onnx",
                                     try_flips=try_flips, refine_steps=refine)
                rec = runtime.decode(enc.data, engine="onnx")
            else:
                enc = codec.encode(img, q, None, 0.0, model)
                rec = codec.decode(enc.data)
            curve["bpp"].append(enc.bpp)
            curve["est_bpp"].append(enc.estimated_bpp)
            curve["psnr"].append(psnr(img, rec))
            header_bits = 8 * (len(enc.data) - sum(len(s) for s in unpack(enc.data).streams))
            stream_bits = 8 * len(enc.data) - header_bits
            gaps.append((stream_bits - enc.estimated_bits) / enc.estimated_bits)
        curves["per_image"][name] = curve
        gap = curves["stream_vs_estimate"]
        gap["max"], gap["min"] = max(gap["max"], *gaps), min(gap["min"], *gaps)
        if save:
            save(curves)
    names = [name for name, _ in images]  # this run's images, in order, even if `earlier` had more
    curves["per_image"] = {name: curves["per_image"][name] for name in names}
    return curves


def anchor_curves(images, name: str) -> dict:
    ladder = baselines.LADDERS[name]
    per_image = {n: {"bpp": [], "psnr": []} for n, _ in images}
    for n, img in tqdm(images, desc=name, file=sys.stderr):
        for q in ladder:
            data, rec = baselines.run_codec(name, img, q)
            per_image[n]["bpp"].append(8 * len(data) / (img.shape[0] * img.shape[1]))
            per_image[n]["psnr"].append(psnr(img, rec))
    return {"settings": ladder, "per_image": per_image}


def summarise(curves: dict) -> dict:
    per = list(curves["per_image"].values())
    mean_bpp = np.mean([c["bpp"] for c in per], axis=0).tolist()
    mean_psnr = np.mean([c["psnr"] for c in per], axis=0).tolist()
    at = {r: mean_quality_at_rate([(c["bpp"], c["psnr"]) for c in per], r) for r in RATES}
    out = {"mean_bpp": mean_bpp, "mean_psnr": mean_psnr, "psnr_at": at}
    if "est_bpp" in per[0]:
        out["mean_est_bpp"] = np.mean([c["est_bpp"] for c in per], axis=0).tolist()
    return out


def images_reaching(results: dict, rate: float) -> list[str]:
    """The images whose curve reaches `rate` for every codec in `results`."""
    names = results["salcodec"]["per_image"]
    return [n for n in names if all(quality_at_rate(c["per_image"][n]["bpp"], c["per_image"][n]["psnr"], rate) is not None
                                    for c in results.values())]


def fmt(v: float | None) -> str:
    return "  n/a" if v is None else f"{v:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/kodak", help="folder of test images")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--model-path", help="extra folder of <model>.pt files (e.g. training snapshots)")
    ap.add_argument("--qualities", type=float, nargs="+", default=DEFAULT_QUALITIES)
    ap.add_argument("--bd-anchor", action="append", choices=sorted(baselines.CODECS), default=None,
                    help="anchor codec(s) for BD-rate, encoded in this run (repeatable; default jpeg)")
    ap.add_argument("--images", type=int, help="use only the first N images (quick checks; with --from-json, of the saved run)")
    ap.add_argument("--try-flips", action="store_true", help="code with `salcodec compress --try-flips` (onnx engine)")
    ap.add_argument("--refine", type=int, default=0, metavar="STEPS",
                    help="code with `salcodec compress --refine STEPS` (torch engine)")
    ap.add_argument("--json-out", help="write all per-image numbers here (and salcodec's after every image)")
    ap.add_argument("--resume", action="store_true", help="keep the images --json-out already holds from a stopped "
                    "or smaller run of the same model, data, qualities and encoder options, and code only the others")
    ap.add_argument("--from-json", help="print the tables of an earlier run's --json-out file instead of coding anything")
    ap.add_argument("--anchors-from", metavar="JSON", help="with --from-json: take the anchors' curves for the "
                    "same images from this run (for a stopped run, which has none yet)")
    ap.add_argument("--versus", metavar="JSON", help="also compare salcodec's curves with those of an earlier "
                    "--json-out run of the same qualities on these images or more (another model or encoder option)")
    args = ap.parse_args()
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        run = saved["args"]
        results = saved["results"]
        if args.anchors_from:  # a stopped run has no anchors yet: those of a whole run of the same images
            results.update((k, v) for k, v in json.loads(Path(args.anchors_from).read_text())["results"].items()
                           if k != "salcodec")
        names = list(results["salcodec"]["per_image"])[:args.images]
        for curves in results.values():
            curves["per_image"] = {n: curves["per_image"][n] for n in names}
        anchors = [k for k in results if k != "salcodec"]
        print(f"# {len(names)} images from {run['data']}; model {run['model']}; "
              f"saliency none; tables of {args.from_json}" + (f", anchors of {args.anchors_from}" if args.anchors_from else ""))
        report(results, run["qualities"], anchors)
        if args.versus:
            versus(results["salcodec"], args.versus)
        return
    if args.model_path:
        os.environ["SALCODEC_MODEL_PATH"] = args.model_path
    anchors = args.bd_anchor or ["jpeg"]
    images = load_images(Path(args.data), args.images)

    earlier, save = None, None
    if args.json_out:
        out = Path(args.json_out)
        saved = json.loads(out.read_text()) if out.exists() else {}
        if args.resume and saved:
            earlier = resumable_curves(saved, args)
        elif saved.get("partial"):
            raise SystemExit(f"{out} holds a stopped run: add --resume to go on with it, or choose another --json-out")

        def save(curves: dict) -> None:
            write_json(out, {"args": vars(args), "partial": True, "results": {"salcodec": curves}})
    elif args.resume:
        raise SystemExit("--resume needs --json-out")

    start = time.time()
    results = {"salcodec": salcodec_curves(images, args.model, args.qualities, args.try_flips, args.refine, earlier, save)}
    for name in anchors:
        results[name] = anchor_curves(images, name)
    options = (" with --try-flips" if args.try_flips else "") + (f" with --refine {args.refine}" if args.refine else "")
    kept = sum(name in earlier["per_image"] for name, _ in images) if earlier else 0
    resumed = f"; {kept} images' curves from the stopped run, not timed here" if kept else ""
    print(f"# {len(images)} images from {args.data}; model {args.model}{options}; saliency none; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {time.time() - start:.0f} s{resumed}")
    summary = report(results, args.qualities, anchors)
    if args.json_out:
        write_json(Path(args.json_out), {"args": vars(args), "results": results, "summary": summary})
    if args.versus:
        versus(results["salcodec"], args.versus)


def write_json(path: Path, content: dict) -> None:
    """Written whole, then renamed: a run stopped while saving leaves the previous file."""
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps(content, indent=1))
    partial.replace(path)


RUN_SETTINGS = ("data", "model", "model_path", "qualities", "try_flips", "refine")


def resumable_curves(saved: dict, args: argparse.Namespace) -> dict:
    """The salcodec curves of an earlier run to go on with: it must have this run's settings."""
    differing = [k for k in RUN_SETTINGS if saved["args"].get(k) != getattr(args, k)]
    if differing:
        raise SystemExit(f"{args.json_out} was run with other {', '.join(differing)}: it cannot be resumed with these")
    return saved["results"]["salcodec"]


def versus(curves: dict, earlier_json: str) -> None:
    """Print this run's salcodec curves against those of an earlier run on the same images (or
    more): BD-rate per image (then its mean and range) and, per quality setting, the mean change of
    real bpp and PSNR."""
    earlier = json.loads(Path(earlier_json).read_text())["results"]["salcodec"]
    if earlier["settings"] != curves["settings"] or not set(curves["per_image"]) <= set(earlier["per_image"]):
        raise SystemExit(f"{earlier_json}: not this run's quality settings, or lacks some of its images")
    now, then = curves["per_image"], earlier["per_image"]
    names = sorted(now)
    per_image = [bd_rate(then[n]["bpp"], then[n]["psnr"], now[n]["bpp"], now[n]["psnr"]) for n in names]
    print(f"\n## salcodec against {earlier_json} ({len(names)} images)")
    print(f"BD-rate per image: mean {np.mean(per_image):+.2f} %, from {min(per_image):+.2f} to {max(per_image):+.2f} %; "
          f"lower on {sum(b < 0 for b in per_image)} of {len(names)} images")
    print("| quality | Δ real bpp | Δ PSNR-RGB (dB) |\n|---|---|---|")
    for i, q in enumerate(curves["settings"]):
        d_bpp = np.mean([now[n]["bpp"][i] / then[n]["bpp"][i] - 1 for n in names])
        d_psnr = np.mean([now[n]["psnr"][i] - then[n]["psnr"][i] for n in names])
        print(f"| {q:g} | {100 * d_bpp:+.1f} % | {d_psnr:+.2f} |")


def report(results: dict, qualities: list[float], anchors: list[str]) -> dict:
    """Print the tables of a run; returns the summary of each codec's curves."""
    summary = {k: summarise(v) for k, v in results.items()}
    print("\n## salcodec per quality setting")
    print("| quality | real bpp | estimated bpp | PSNR-RGB (dB) |\n|---|---|---|---|")
    s = summary["salcodec"]
    for q, b, e, p in zip(qualities, s["mean_bpp"], s["mean_est_bpp"], s["mean_psnr"]):
        print(f"| {q:g} | {b:.4f} | {e:.4f} | {p:.2f} |")
    gap = results["salcodec"]["stream_vs_estimate"]
    print(f"\ncoded stream bits against the likelihood estimate, over every image and setting: "
          f"at most {100 * gap['max']:+.2f} % above, at most {100 * gap['min']:+.2f} % below")
    print("\n## PSNR-RGB (dB) at equal real bpp (per image, log-bpp interpolation, then mean)")
    print("| codec | " + " | ".join(f"{r} bpp" for r in RATES) + " | BD-rate vs " + " | BD-rate vs ".join(anchors) + " |")
    print("|---" * (1 + len(RATES) + len(anchors)) + "|")
    for name in ["salcodec"] + anchors:
        row = [fmt(summary[name]["psnr_at"][r]) for r in RATES]
        bds = []
        for anchor in anchors:
            a, b = summary[anchor], summary[name]
            bds.append(f"{bd_rate(a['mean_bpp'], a['mean_psnr'], b['mean_bpp'], b['mean_psnr']):+.1f} %")
        print(f"| {name} | " + " | ".join(row) + " | " + " | ".join(bds) + " |")
    reaching = {r: images_reaching(results, r) for r in RATES}
    print("\n## PSNR-RGB (dB) on the images every codec's curve reaches")
    print("| codec | " + " | ".join(f"{r} bpp ({len(reaching[r])} images)" for r in RATES) + " |")
    print("|---" * (1 + len(RATES)) + "|")
    for name in ["salcodec"] + anchors:
        per = results[name]["per_image"]
        row = [fmt(mean_quality_at_rate([(per[n]["bpp"], per[n]["psnr"]) for n in reaching[r]], r)) if reaching[r] else fmt(None)
               for r in RATES]
        print(f"| {name} | " + " | ".join(row) + " |")
    return summary


if __name__ == "__main__":
    main()
