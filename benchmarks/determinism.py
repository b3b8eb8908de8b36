"""Bit-exact decoding across processes and thread counts, on all Kodak images.

    python benchmarks/determinism.py [--model NAME] [--engine torch|onnx] [--qualities 10 50 90] [--images kodim05.png ...]

Encodes every image at every quality in one process with 2 threads and in another with 1
thread, then decodes each set of files in a third and fourth process with the other thread
count. Prints whether the files are byte-identical and the decoded pixels identical.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def worker(mode: str, threads: int, model: str, images: list[Path], qualities: list[float], folder: Path,
           engine: str) -> None:
    import numpy as np
    from PIL import Image

    from salcodec import runtime
    runtime.set_threads(threads)
    digests = {}
    for path in images:
        for q in qualities:
            name = f"{path.stem}_q{q:g}.sgc"
            if mode == "encode":
                data = runtime.encode(np.asarray(Image.open(path).convert("RGB")), q, None, 0.0, model, "default",
                                      engine).data
                (folder / name).write_bytes(data)
                digests[name] = hashlib.sha256(data).hexdigest()
            else:
                pixels = runtime.decode((folder / name).read_bytes(), "mse", engine)
                digests[name] = hashlib.sha256(pixels.tobytes()).hexdigest()
    print(json.dumps(digests))


def run(mode: str, threads: int, args, folder: Path) -> dict:
    cmd = [sys.executable, __file__, "--worker", mode, "--threads", str(threads), "--model", args.model, "--engine", args.engine,
           "--kodak", args.kodak, "--folder", str(folder), "--qualities", *map(str, args.qualities)]
    if args.images:
        cmd += ["--images", *args.images]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model id (default: the shipped default)")
    ap.add_argument("--kodak", default="../shared/data/kodak")
    ap.add_argument("--engine", default="torch", choices=["torch", "onnx"], help="coding engine (salcodec/runtime)")
    ap.add_argument("--qualities", type=float, nargs="+", default=[10, 50, 90])
    ap.add_argument("--images", nargs="+", help="file names inside --kodak (default: all 24)")
    ap.add_argument("--worker", choices=["encode", "decode"], help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.model is None:
        from salcodec.models.registry import DEFAULT_MODEL
        args.model = DEFAULT_MODEL
    if args.worker:
        kodak = Path(args.kodak)
        images = [kodak / name for name in args.images] if args.images else sorted(kodak.glob("*.png"))
        worker(args.worker, args.threads, args.model, images, args.qualities, Path(args.folder), args.engine)
        return
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "a", Path(tmp) / "b"
        a.mkdir()
        b.mkdir()
        files_a, files_b = run("encode", 2, args, a), run("encode", 1, args, b)
        pixels_a, pixels_b = run("decode", 1, args, a), run("decode", 2, args, b)
    n = len(files_a)
    same_files = sum(files_a[k] == files_b[k] for k in files_a)
    same_pixels = sum(pixels_a[k] == pixels_b[k] for k in pixels_a)
    print(f"model {args.model}, {args.engine} engine: {n} files ({n // len(args.qualities)} Kodak images x {len(args.qualities)} qualities)")
    print(f"encoded with 2 threads vs 1 thread, separate processes: {same_files}/{n} files byte-identical")
    print(f"decoded with 1 thread vs 2 threads, separate processes: {same_pixels}/{n} images pixel-identical")
    sys.exit(0 if same_files == n and same_pixels == n else 1)


if __name__ == "__main__":
    main()
