"""Encode and decode speed and peak memory on Kodak: salcodec, CompressAI's hyperprior, classic codecs.

    python benchmarks/speed.py [--images 24] [--model NAME]
    python benchmarks/speed.py --images 4 --codecs 'salcodec[torch]' 'salcodec+refine[torch]'   # some rows only

Every codec runs in its own warm process (imports and model loading done before timing) over
the images; the table gives median seconds per image and that process's peak RSS. salcodec runs
on both coding engines (salcodec/runtime: `torch`, the reference, and `onnx`). The end-to-end
rows time whole `salcodec compress` and `decompress` commands, Python start-up and imports
included, after one untimed run that fills the onnx engine's cache as a user's first run does.
CompressAI's bmshj2018_hyperprior(quality=3) uses random weights: speed does not depend on them.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# salcodec: default model, uniform map; +auto: with the shipped saliency predictor; +auto+fast: also
# written by the fast encoder (`--encoder fast`) and read by the fast decoder (`--decoder fast`),
# when both are installed for the model; [engine]: the coding engine
SALCODEC = ["salcodec", "salcodec+auto", "salcodec+auto+fast"]
CODECS = ([f"{c}[{engine}]" for engine in ("torch", "onnx") for c in SALCODEC]
          + ["compressai-hyperprior", "jpeg", "webp", "avif", "jxl"])
REFINED = "salcodec+refine[torch]"  # `compress --refine` (40 steps of latent search): only when asked for


def worker(codec: str, images: list[Path], model: str) -> dict:
    import numpy as np
    from PIL import Image
    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in images]
    enc_t, dec_t = [], []
    if codec.startswith("salcodec"):
        from salcodec.api import compress_image, decompress
        codec, engine = codec.rstrip("]").split("[")
        saliency = "auto" if "+auto" in codec else "none"
        encoder, decoder = ("fast", "fast") if codec.endswith("+fast") else ("default", "mse")
        options = {"model": model, "encoder": encoder, "engine": engine}
        if "+refine" in codec:
            from salcodec.models import REFINE_STEPS
            options["refine"] = REFINE_STEPS
        decompress(compress_image(arrays[0], 50, saliency, **options).data, decoder, engine)  # warm-up
        for a in arrays:
            t = time.perf_counter()
            data = compress_image(a, 50, saliency, **options).data
            enc_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            decompress(data, decoder, engine)
            dec_t.append(time.perf_counter() - t)
    elif codec == "compressai-hyperprior":
        import torch
        from compressai.zoo import bmshj2018_hyperprior
        net = bmshj2018_hyperprior(quality=3, pretrained=False).eval()
        net.update(force=True)
        for i, a in enumerate(arrays + arrays[:1]):
            x = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255
            h, w = x.shape[-2:]
            x = torch.nn.functional.pad(x, (0, (-w) % 64, 0, (-h) % 64), mode="replicate")
            with torch.inference_mode():
                t = time.perf_counter()
                out = net.compress(x)
                te = time.perf_counter() - t
                t = time.perf_counter()
                net.decompress(out["strings"], out["shape"])
                td = time.perf_counter() - t
            if i:  # the first pass is a warm-up
                enc_t.append(te)
                dec_t.append(td)
    else:
        import imagecodecs

        from salcodec.eval import baselines
        decoders = {"jpeg": imagecodecs.jpeg8_decode, "webp": imagecodecs.webp_decode,
                    "avif": imagecodecs.avif_decode, "jxl": imagecodecs.jpegxl_decode}
        quality = {"jpeg": 75, "webp": 75, "avif": 50, "jxl": 75}[codec]
        for a in arrays:
            t = time.perf_counter()
            data, _ = baselines.run_codec(codec, a, quality)
            enc_t.append(time.perf_counter() - t)  # includes one decode: subtract it below
            t = time.perf_counter()
            decoders[codec](data)
            dec_t.append(time.perf_counter() - t)
        enc_t = [e - d for e, d in zip(enc_t, dec_t)]
    return {"encode": statistics.median(enc_t), "decode": statistics.median(dec_t),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def end_to_end(image: Path, model: str, compress_flags: list[str], decompress_flags: list[str],
               runs: int = 3) -> tuple[float, float]:
    """Median seconds of whole `salcodec compress` and `salcodec decompress` commands."""
    times: dict[str, list[float]] = {"compress": [], "decompress": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs + 1):  # run 0 fills the engine's cache, untimed
            for command, args in (("compress", [str(image), "-o", f"{tmp}/{i}.sgc", "--model", model, *compress_flags]),
                                  ("decompress", [f"{tmp}/{i}.sgc", "-o", f"{tmp}/{i}.png", *decompress_flags])):
                t = time.perf_counter()
                subprocess.run([sys.executable, "-m", "salcodec", command, *args], check=True, capture_output=True)
                if i:
                    times[command].append(time.perf_counter() - t)
    return statistics.median(times["compress"]), statistics.median(times["decompress"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kodak", default="../shared/data/kodak")
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--model", default=None, help="model id (default: the shipped default)")
    ap.add_argument("--codecs", nargs="+", choices=CODECS + [REFINED],
                    help=f"these rows only, without the end-to-end table (default: all but {REFINED})")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.model is None:
        from salcodec.models import DEFAULT_MODEL  # torch-free: workers of classic codecs stay lean
        args.model = DEFAULT_MODEL
    images = sorted(Path(args.kodak).glob("*.png"))[: args.images]
    if args.worker:
        print(json.dumps(worker(args.worker, images, args.model)))
        return
    from salcodec.models import transform_file
    fast_installed = all(transform_file(args.model, "fast", role) for role in ("encoder", "decoder"))
    results = {}
    for codec in args.codecs or CODECS:
        if "+fast" in codec and not fast_installed:
            print(f"(no fast encoder and decoder installed for {args.model}: {codec} skipped)", file=sys.stderr)
            continue
        out = subprocess.run([sys.executable, __file__, "--worker", codec, "--kodak", args.kodak,
                              "--images", str(args.images), "--model", args.model],
                             capture_output=True, text=True, check=True)
        results[codec] = json.loads(out.stdout.strip().splitlines()[-1])
    cli = {}
    end_to_end_engines = () if args.codecs else ("torch", "onnx")  # chosen rows: the table above only
    for engine in end_to_end_engines:
        flags = ["--engine", engine]
        cli[" ".join(flags)] = end_to_end(images[0], args.model, flags, flags)
        if fast_installed:
            cli[" ".join(flags + ["--encoder/--decoder fast"])] = end_to_end(
                images[0], args.model, flags + ["--encoder", "fast"], flags + ["--decoder", "fast"])
    ref = results.get("compressai-hyperprior")
    print(f"# {len(images)} Kodak images, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch threads default; median seconds per image")
    print("| codec | compress (s) | decompress (s) | compress / CompressAI | decompress / CompressAI | peak RSS (MB) |")
    print("|---|---|---|---|---|---|")
    for codec, r in results.items():
        ratios = f"{r['encode'] / ref['encode']:.2f} | {r['decode'] / ref['decode']:.2f}" if ref else "n/a | n/a"
        print(f"| {codec} | {r['encode']:.4f} | {r['decode']:.4f} | {ratios} | {r['peak_rss_mb']:.0f} |")
    if not cli:
        return
    print()
    print(f"End to end on {images[0].name} (whole commands: start-up, imports, auto saliency; median of 3):")
    print("| flags | `salcodec compress` (s) | `salcodec decompress` (s) |")
    print("|---|---|---|")
    for flags, (enc, dec) in cli.items():
        print(f"| {flags} | {enc:.2f} | {dec:.2f} |")


if __name__ == "__main__":
    main()
