"""`salcodec` command line: argument parsing and printing only; the work is in the library."""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

from .codec.quality import DEFAULT_STRENGTH
from .errors import SalcodecError
from .models import DEFAULT_MODEL, REFINE_STEPS


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    p = Path(path)
    if not p.is_file():
        raise SalcodecError(f"no such file: {path}")
    return p.read_bytes()


def _write_output(path: str, data: bytes, force: bool, inputs: list[str]) -> None:
    from .codec.image_io import atomic_write
    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    out = Path(path)
    for src in inputs:
        if src != "-" and out.exists() and Path(src).resolve() == out.resolve():
            raise SalcodecError(f"refusing to overwrite the input {src}")
    atomic_write(out, data, force)


def _outputs(inputs: list[str], output: str | None, out_dir: str | None, suffix: str, strip_suffix: bool) -> list[str]:
    """Output paths per the conventions: -o for one input, --out-dir for several."""
    if output and out_dir:
        raise SalcodecError("use either -o/--output or --out-dir, not both")
    if len(inputs) > 1 and not out_dir:
        raise SalcodecError("several inputs need --out-dir")
    if output:
        return [output]
    names = []
    for src in inputs:
        if src == "-":
            raise SalcodecError("reading from stdin needs -o/--output")
        p = Path(src)
        name = (p.stem if strip_suffix else p.name) + suffix
        names.append(str(Path(out_dir) / name) if out_dir else str(p.with_name(name)))
    return names


def _log(msg: str, to_stderr: bool) -> None:
    print(msg, file=sys.stderr if to_stderr else sys.stdout)


def _compress_one(src: str, dst: str, args: argparse.Namespace) -> list[tuple[str, bool]]:
    """Compress one input to one output; returns the lines to print (text, to stderr)."""
    from PIL import Image

    from . import api
    notes: list[str] = []
    image = src
    if src == "-":
        try:
            image = Image.open(io.BytesIO(_read_input(src)))
        except Exception as exc:  # Pillow raises many types for bad data
            raise SalcodecError(f"stdin: cannot read image ({exc})") from None
    enc = api.compress_image(image, args.quality, args.saliency, args.strength, args.bpp, args.model, notes,
                             encoder=args.encoder, engine=args.engine, try_flips=args.try_flips,
                             refine=args.refine)
    _write_output(dst, enc.data, args.force, args.inputs)
    to_stderr = dst == "-"
    return [(f"note: {src}: {note}", to_stderr) for note in notes] + [
        (f"{src} -> {dst}: {enc.width}x{enc.height}, {len(enc.data)} bytes, {enc.bpp:.4f} bpp "
         f"(estimated {enc.estimated_bpp:.4f})", to_stderr)]


def _worker_init(threads: int) -> None:
    from .runtime import set_threads
    set_threads(threads)


def cmd_compress(args: argparse.Namespace) -> None:
    import os
    import time
    outputs = _outputs(args.inputs, args.output, args.out_dir, ".sgc", strip_suffix=True)
    if args.out_dir and not Path(args.out_dir).is_dir():
        raise SalcodecError(f"output folder does not exist: {args.out_dir}")
    if args.workers < 1:
        raise SalcodecError("--workers must be at least 1")
    for dst in outputs:
        if dst != "-" and Path(dst).exists() and not args.force:
            raise SalcodecError(f"{dst} exists (use --force to overwrite)")
    start = time.perf_counter()
    workers = min(args.workers, len(args.inputs))
    if workers == 1 or "-" in args.inputs:
        for src, dst in zip(args.inputs, outputs):
            for line, to_stderr in _compress_one(src, dst, args):
                _log(line, to_stderr)
    else:
        # one process per worker, each with its share of the CPU threads; results print in input order
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        threads = max(1, (args.threads or os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_worker_init, initargs=(threads,)) as pool:
            futures = [pool.submit(_compress_one, src, dst, args) for src, dst in zip(args.inputs, outputs)]
            try:
                for future in futures:
                    for line, to_stderr in future.result():
                        _log(line, to_stderr)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    if len(args.inputs) > 1:
        elapsed = time.perf_counter() - start
        _log(f"{len(args.inputs)} images in {elapsed:.1f} s: {len(args.inputs) / elapsed:.2f} images/s "
             f"({workers} worker{'s' if workers > 1 else ''})", "-" in outputs)


def cmd_decompress(args: argparse.Namespace) -> None:
    from . import api
    from .codec.image_io import encode_png
    outputs = _outputs(args.inputs, args.output, args.out_dir, ".png", strip_suffix=False)
    if args.reference and len(args.inputs) > 1:
        raise SalcodecError("--reference needs a single input")
    to_stderr = "-" in outputs
    for src, dst in zip(args.inputs, outputs):
        if dst != "-" and Path(dst).exists() and not args.force:
            raise SalcodecError(f"{dst} exists (use --force to overwrite)")
        data = _read_input(src)
        pixels = api.decompress(data, args.decoder, args.engine)
        _write_output(dst, encode_png(pixels), args.force, args.inputs)
        h, w = pixels.shape[:2]
        msg = f"{src} -> {dst}: {w}x{h}, {8 * len(data) / (h * w):.4f} bpp, {args.decoder} decoder"
        if args.reference:
            from .codec.image_io import load_image
            from .eval.metrics import psnr
            original = load_image(args.reference)
            if original.shape != pixels.shape:
                raise SalcodecError(f"--reference is {original.shape[1]}x{original.shape[0]}, the decoded image {w}x{h}")
            msg += f", PSNR {psnr(original, pixels):.2f} dB against {args.reference}"
        _log(msg, to_stderr)


def cmd_info(args: argparse.Namespace) -> None:
    from .codec import bitstream
    data = _read_input(args.input)
    head = bitstream.unpack(data).header
    info = {
        "file": args.input, "format_version": bitstream.FORMAT_VERSION, "model": head.model_id,
        "weights_digest": head.digest.hex(), "width": head.width, "height": head.height,
        "bytes": len(data), "bpp": 8 * len(data) / (head.width * head.height),
        "q0": head.q0, "quality": round(100 * head.q0 / 255, 1),
        "saliency": bool(head.flags & bitstream.FLAG_SPATIAL_QUALITY), "tile": head.tile,
    }
    if args.json:
        print(json.dumps(info))
    else:
        for key, value in info.items():
            print(f"{key:15s} {value:.4f}" if isinstance(value, float) else f"{key:15s} {value}")


def cmd_saliency(args: argparse.Namespace) -> None:
    from . import runtime
    from .codec.image_io import atomic_write, load_image
    from .saliency.io import encode_map_png
    out_dir = Path(args.out_dir)
    if not out_dir.is_dir():
        raise SalcodecError(f"output folder does not exist: {out_dir}")
    for src in args.inputs:
        dst = out_dir / f"{Path(src).stem}.png"
        if Path(src).resolve() == dst.resolve():
            raise SalcodecError(f"refusing to overwrite the input {src}")
        image = load_image(src)
        atomic_write(dst, encode_map_png(runtime.predict_saliency(image, args.method, args.engine), image, args.format),
                     args.force)
        print(f"{src} -> {dst} ({args.method}, {args.format})")


def cmd_saliency_eval(args: argparse.Namespace) -> None:
    from .saliency import METHODS
    from .saliency.evaluate import evaluate, format_table
    methods = args.methods.split(",") if args.methods else list(METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SalcodecError(f"unknown saliency method(s): {', '.join(unknown)} (choose from {', '.join(METHODS)})")
    results = evaluate(Path(args.data), methods, args.split, Path(args.splits) if args.splits else None, args.max_side)
    print(format_table(results, f"{args.data} (split {args.split}, scored at <= {args.max_side} px)"))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def cmd_eval(args: argparse.Namespace) -> None:
    import shlex

    from .eval import realism, report
    from .eval.run import DEFAULT_QUALITIES, evaluate, format_summary, parse_entries, resolve_anchor, summarise, write_csv
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    models = [m for m in args.models.split(",") if m] if args.models else []
    codecs = [c for c in args.codecs.split(",") if c] if args.codecs else []
    entries = parse_entries(models, codecs, args.saliency)
    if not entries:
        raise SalcodecError("nothing to evaluate: give --models and/or --codecs")
    anchor = resolve_anchor(entries, args.anchor)  # before minutes of coding, not after
    weights = realism.find_weights(args.inception_weights)
    collector = realism.RealismCollector(weights) if weights else None
    rows, decoded = evaluate(Path(args.data), entries, args.reference, args.strength, args.qualities or DEFAULT_QUALITIES,
                             args.split, args.images, args.crops, collector)
    summary = summarise(rows, anchor)
    summary["realism"] = collector.summary() if collector else {"unavailable": realism.unavailable_reason()}
    command = "salcodec " + " ".join(shlex.quote(a) for a in args.argv)
    write_csv(rows, out_dir / "per_image.csv")
    (out_dir / "summary.json").write_text(json.dumps({"command": command} | summary, indent=1))
    plots = report.plot_curves(summary, out_dir)
    figures = report.crop_grid(decoded, args.crop_bpp, out_dir)
    page = report.write_html(summary, plots, figures, command, out_dir, args.crop_bpp)
    print(format_summary(summary))
    print("\n" + realism.format_realism(summary["realism"]))
    print(f"\nwrote {out_dir / 'per_image.csv'}, {out_dir / 'summary.json'}, {len(plots)} plots and {page}")


def cmd_train_saliency(args: argparse.Namespace) -> None:
    from .saliency.train import train_saliency
    train_saliency(Path(args.config), args.max_steps)


def cmd_train(args: argparse.Namespace) -> None:
    from .train.loop import train
    train(Path(args.config), Path(args.init) if args.init else None, args.max_steps)


def _add_engine(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=["auto", "onnx", "torch"], default="auto",
                   help="onnx: no torch import (transforms exported once to a cache folder); torch: the reference; "
                        "auto (default): onnx where it applies")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="salcodec", description="Saliency-aware learned image codec.")
    parser.add_argument("--threads", type=int, help="CPU threads for the neural transforms (default: one per core)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compress", help="compress images to .sgc files")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="PNG/JPEG/WebP/TIFF image(s), or - for stdin")
    p.add_argument("-o", "--output", help="output file (- for stdout); default INPUT stem + .sgc")
    p.add_argument("--out-dir", help="output folder (required for several inputs)")
    p.add_argument("--quality", type=float, default=50, help="0-100, higher is better (default 50)")
    p.add_argument("--bpp", type=float, help="target real bits per pixel instead of a quality (within ±3%%)")
    p.add_argument("--saliency", default="auto",
                   help="auto (best shipped predictor), none (uniform), a method name, or a map PNG (gray or RGBA alpha)")
    p.add_argument("--strength", type=float, default=DEFAULT_STRENGTH, help="how much quality drops where saliency is low: q = q0 - S*(1 - s) (0 = uniform)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model id (default {DEFAULT_MODEL})")
    p.add_argument("--encoder", choices=["default", "fast"], default="default",
                   help="default: the model's encoder; fast: a narrower encoder for the same decoders, "
                        "faster and slightly larger files at equal quality")
    p.add_argument("--try-flips", action="store_true",
                   help="also code the image flipped and keep the cheapest file (about 1.4%% smaller at equal quality, 4x slower)")
    p.add_argument("--refine", type=int, nargs="?", const=REFINE_STEPS, default=0, metavar="STEPS",
                   help=f"search for better latents of each image, STEPS steps (default {REFINE_STEPS}; 0.6-2.2 s each "
                        "for 768x512 on two cores): 2-4%% smaller files at equal PSNR; torch engine, images up to 1024x768")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--workers", type=int, default=1, help="compress several inputs in N processes (default 1)")
    _add_engine(p)
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("decompress", help="decode .sgc files to PNG")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help=".sgc file(s), or - for stdin")
    p.add_argument("-o", "--output", help="output PNG (- for stdout); default INPUT + .png")
    p.add_argument("--out-dir", help="output folder (required for several inputs)")
    p.add_argument("--reference", metavar="IMAGE", help="original image: also print the PSNR-RGB against it")
    p.add_argument("--decoder", choices=["mse", "gan", "fast"], default="mse",
                   help="mse: faithful (default); gan: generated texture where the rate was too low for detail; "
                        "fast: a narrower decoder, faster and slightly less faithful")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    _add_engine(p)
    p.set_defaults(func=cmd_decompress)

    p = sub.add_parser("info", help="describe a .sgc file")
    p.add_argument("input", help=".sgc file, or - for stdin")
    p.add_argument("--json", action="store_true", help="print JSON (the bpp field is the real bits per pixel)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("saliency", help="predict saliency maps and store them as PNGs")
    p.add_argument("inputs", nargs="+", metavar="IMAGE")
    p.add_argument("--out-dir", required=True, help="one <stem>.png per image goes here")
    p.add_argument("--method", default="auto", help="auto or a predictor name (see saliency-eval)")
    p.add_argument("--format", choices=["gray", "alpha"], default="gray",
                   help="gray: 8-bit map; alpha: RGBA PNG, the image with the map as alpha channel")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    _add_engine(p)
    p.set_defaults(func=cmd_saliency)

    p = sub.add_parser("saliency-eval", help="score saliency predictors against human fixations")
    p.add_argument("--data", required=True, help="folder with images/, maps/ and fixations/ (OSIE layout)")
    p.add_argument("--methods", help="comma-separated predictor names (default: all)")
    p.add_argument("--split", default="val", choices=["val", "train", "all"], help="ids from splits.json (default val)")
    p.add_argument("--splits", help="splits.json (default: DATA/../splits.json)")
    p.add_argument("--max-side", type=int, default=400, help="score maps at most this many pixels on the long side")
    p.add_argument("--json", help="also write the scores to this JSON file")
    p.set_defaults(func=cmd_saliency_eval)

    p = sub.add_parser("eval", help="rate-distortion of models and classic codecs, with plots and an HTML report")
    p.add_argument("--models", help="comma-separated curves: ID[^fast][@gan|@fast] (variable rate, swept over --qualities; ^fast: written by the fast encoder; @gan, @fast: read by that decoder), "
                                    "LABEL=ID1+ID2+... (a ladder of fixed-rate models); a :SALIENCY[:STRENGTH] suffix overrides --saliency [and --strength]")
    p.add_argument("--codecs", help="comma-separated classic codecs: jpeg,webp,avif,jxl")
    p.add_argument("--data", required=True, help="folder of images, or a saliency set (images/, maps/)")
    p.add_argument("--saliency", default="none", help="what the encoder gets: none, auto, human or a predictor")
    p.add_argument("--reference", default="auto", help="map defining ROI and weighted metrics: human or a predictor (auto)")
    p.add_argument("--strength", type=float, default=DEFAULT_STRENGTH, help="saliency strength for salcodec curves")
    p.add_argument("--qualities", type=float, nargs="+", help="salcodec quality settings (default 0 15 ... 100)")
    p.add_argument("--anchor", help="curve the BD-rates are measured against: a label, or a model spec naming one curve (default: the last one)")
    p.add_argument("--split", default="all", choices=["all", "val", "train"], help="ids from splits.json of a saliency set")
    p.add_argument("--images", type=int, help="use only the first N images")
    p.add_argument("--crops", type=int, default=3, help="images shown as crops in the HTML report")
    p.add_argument("--crop-bpp", type=float, default=0.3, help="rate at which the crops are matched")
    p.add_argument("--out-dir", required=True, help="where per_image.csv, summary.json, plots and report.html go")
    p.add_argument("--inception-weights", help="pytorch-fid's Inception weights (pt_inception-2015-12-05-6726825d.pth) for FID/KID; "
                                                "default $SALCODEC_INCEPTION_WEIGHTS or torch's hub cache; without them FID/KID are unavailable")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("train", help="train a codec from a YAML config (resumes from its out_dir)")
    p.add_argument("--config", required=True, help="configs/<name>.yaml")
    p.add_argument("--init", help="warm-start from a weights-only file (fresh optimizer)")
    p.add_argument("--max-steps", type=int, help="stop after this many more steps (the config's total still caps)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("train-saliency", help="train the learned saliency model (resumes from its out_dir)")
    p.add_argument("--config", required=True, help="configs/saliency.yaml")
    p.add_argument("--max-steps", type=int, help="stop after this many more steps")
    p.set_defaults(func=cmd_train_saliency)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:
        return 130
    args.argv = argv
    try:
        if args.threads is not None:
            if args.threads < 1:
                raise SalcodecError("--threads must be at least 1")
            from .runtime import set_threads
            set_threads(args.threads)
        args.func(args)
    except SalcodecError as exc:
        print(f"salcodec: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("salcodec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:  # internal failure: still one line, exit 1
        print(f"salcodec: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
