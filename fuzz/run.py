"""Long fuzz run of the decoder: `python fuzz/run.py --inputs 100000 [--model NAME] [--engine torch|onnx]`.

Seeds are real .sgc files made from Kodak crops by the chosen model; every input is a mutant
(fuzz/mutations.py). A result is fine when decode returns an image or raises SalcodecError with a
one-line message. Prints counts, the slowest input, hangs over 2 s and the peak RSS, and saves
any input that failed in another way to --crash-dir.
"""
from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fuzz.mutations import mutate  # noqa: E402
from salcodec import runtime  # noqa: E402
from salcodec.codec import codec  # noqa: E402
from salcodec.errors import SalcodecError  # noqa: E402
from salcodec.models.registry import DEFAULT_MODEL  # noqa: E402


def make_seeds(model: str, kodak: Path) -> list[bytes]:
    seeds = []
    # small crops keep each decode short, so a long run covers many mutants
    for name, box, quality in (("kodim23.png", (256, 160, 352, 224), 20), ("kodim01.png", (0, 0, 64, 64), 80),
                               ("kodim15.png", (300, 200, 317, 333), 50)):
        crop = np.asarray(Image.open(kodak / name).convert("RGB").crop(box))
        seeds.append(codec.encode(crop, quality, model_name=model).data)
    return seeds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inputs", type=int, default=100_000)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kodak", default="../shared/data/kodak")
    ap.add_argument("--max-pixels", type=int, default=1 << 18, help="decoder pixel limit while fuzzing (seeds are far smaller)")
    ap.add_argument("--crash-dir", default="fuzz/crashes")
    ap.add_argument("--engine", default="torch", choices=["torch", "onnx"],
                    help="decoding engine; onnx runs as auto does (torch for files the onnx engine does not vouch for)")
    args = ap.parse_args()

    seeds = make_seeds(args.model, Path(args.kodak))
    rng = random.Random(args.seed)
    counts = {"decoded": 0, "refused": 0, "crashed": 0, "hangs_over_2s": 0}
    slowest = 0.0
    start = time.time()
    for i in range(args.inputs):
        data = mutate(rng.choice(seeds), rng.choice(seeds), rng)
        t = time.perf_counter()
        try:
            runtime.decode(data, "mse", "auto" if args.engine == "onnx" else "torch", args.max_pixels)
            counts["decoded"] += 1
        except SalcodecError as exc:
            counts["refused" if "\n" not in str(exc) else "crashed"] += 1
        except Exception as exc:  # anything else is a bug
            counts["crashed"] += 1
            crash_dir = Path(args.crash_dir)
            crash_dir.mkdir(parents=True, exist_ok=True)
            (crash_dir / f"crash_{i}.sgc").write_bytes(data)
            print(f"input {i}: {type(exc).__name__}: {exc}", file=sys.stderr)
        elapsed = time.perf_counter() - t
        slowest = max(slowest, elapsed)
        counts["hangs_over_2s"] += elapsed > 2.0
        if (i + 1) % 10_000 == 0:
            print(f"{i + 1} inputs, {counts}, {time.time() - start:.0f} s", file=sys.stderr, flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"model {args.model}, engine {args.engine}: {args.inputs} inputs in {time.time() - start:.0f} s: {counts}; "
          f"slowest input {slowest:.3f} s; peak RSS {peak_mb:.0f} MB")
    return 1 if counts["crashed"] or counts["hangs_over_2s"] else 0


if __name__ == "__main__":
    sys.exit(main())
