"""Why the onnx engine turns off ONNX Runtime's thread spinning: compress and decompress with it on
and off, in fresh processes taking turns.

    python benchmarks/onnx_spinning.py [--model default-v4-lite] [--rounds 2] [--repeats 15]

ONNX Runtime's worker threads keep spinning for a while after a run, waiting for the next one;
the numpy work between two runs (the exact hyper-synthesis, the range coder) then shares the
cores with them. Each process codes kodim01 with auto saliency, the fast encoder and the fast
decoder (the fast setting, where the numpy share is largest) and prints median milliseconds.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, sys
import numpy as np
import onnxruntime as ort
from PIL import Image

spinning, model, image_path, repeats, benchmarks = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
sys.path.insert(0, benchmarks)
from timing import median_seconds  # noqa: E402


class Options(ort.SessionOptions):
    def add_session_config_entry(self, key, value):  # the engine's own setting, overridden here
        super().add_session_config_entry(key, spinning if key == "session.intra_op.allow_spinning" else value)


ort.SessionOptions = Options
from salcodec import api  # noqa: E402

image = np.asarray(Image.open(image_path).convert("RGB"))
data = api.compress(image, 50, "auto", model=model, encoder="fast", engine="onnx")


def compress():
    api.compress(image, 50, "auto", model=model, encoder="fast", engine="onnx")


print(json.dumps({"compress": 1000 * median_seconds(compress, repeats),
                  "decompress": 1000 * median_seconds(lambda: api.decompress(data, "fast", engine="onnx"), repeats)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default-v4-lite")
    ap.add_argument("--image", default="../shared/data/kodak/kodim01.png")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    print(f"# {args.image}, {args.model}, auto saliency, fast encoder and decoder, onnx engine; "
          f"median of {args.repeats} per process (ms)")
    print("| ONNX Runtime threads | compress | decompress |\n|---|---|---|")
    for _ in range(args.rounds):
        for spinning, label in (("1", "spinning (ONNX Runtime's default)"), ("0", "not spinning (the engine's setting)")):
            out = subprocess.run([sys.executable, "-c", CHILD, spinning, args.model, args.image, str(args.repeats),
                                  str(Path(__file__).resolve().parent)],
                                 check=True, capture_output=True, text=True).stdout
            ms = json.loads(out.strip().splitlines()[-1])
            print(f"| {label} | {ms['compress']:.1f} | {ms['decompress']:.1f} |")


if __name__ == "__main__":
    main()
