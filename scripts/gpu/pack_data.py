"""Pack the training data and the pure-Python dependencies a lent GPU machine lacks.

The GPU machine reaches nothing outside the repository copy it is sent (64 MiB in all), and
its Python has no CompressAI, pytorch-msssim or OpenCV's contrib saliency module. This writes
`.devdata/` (git-ignored, carried to the machine):

- `data/<set>/images`, `data/<set>/maps`, `data/splits.json`: BSDS500 train+val as a set of
  its own, with the classic saliency prediction the CPU loader would compute, and as many
  train-split OSIE / NUS Scene images as the size budget allows (a seeded random choice);
  the maps are stored at a quarter of the size (the loader resizes them; saliency is smooth).
  Validation ids are never packed.
- `site/compressai`, `site/pytorch_msssim`: the installed pure-Python sources. CompressAI's
  compiled `_CXX` is replaced by a module that refuses politely: training needs only the
  differentiable layers; the coder tables are built after the weights come back.

    python scripts/gpu/pack_data.py --budget-mb 44
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from salcodec.saliency.classic import spectral_residual_centre

DATA = Path("../shared/data")
NOT_COMPILED = "CompressAI's compiled extensions are not available here: code and build tables elsewhere"
CXX_STUB = f'''"""Stand-in for CompressAI's compiled helpers on a machine without them (training only)."""


def pmf_to_quantized_cdf(*args, **kwargs):
    raise RuntimeError("{NOT_COMPILED}")
'''
ANS_STUB = f'''"""Stand-in for CompressAI's compiled rANS coder: entropy models construct it, training never calls it."""


class _Refuses:
    def __getattr__(self, name):
        raise RuntimeError("{NOT_COMPILED}")


class RansEncoder(_Refuses):
    pass


class RansDecoder(_Refuses):
    pass
'''


def save_small_map(saliency: np.ndarray, path: Path) -> None:
    img = Image.fromarray(saliency)
    img.resize((max(1, img.width // 4), max(1, img.height // 4)), Image.BILINEAR).save(path)


def pack_bsds(out: Path) -> list[str]:
    (out / "images").mkdir(parents=True)
    (out / "maps").mkdir()
    ids = []
    for split in ("train", "val"):
        for path in sorted((DATA / "train/bsds500" / split).glob("*.jpg")):
            image = np.asarray(Image.open(path).convert("RGB"))
            shutil.copy(path, out / "images" / path.name)
            save_small_map((spectral_residual_centre(image) * 255).astype(np.uint8), out / "maps" / f"{path.stem}.png")
            ids.append(path.stem)
    return ids


def pack_saliency_sets(out: Path, budget: int, seed: int) -> dict[str, list[str]]:
    splits = json.loads((DATA / "saliency/splits.json").read_text())
    candidates = []
    for name in ("osie", "nus_scene"):
        for image_id in splits[name]["train"]:
            found = sorted((DATA / "saliency" / name / "images").glob(f"{image_id}.*"))
            if found:
                candidates.append((name, image_id, found[0]))
    np.random.default_rng(seed).shuffle(candidates)
    chosen: dict[str, list[str]] = {"osie": [], "nus_scene": []}
    for name, image_id, path in candidates:
        size = path.stat().st_size
        if size > budget:
            continue
        budget -= size
        (out / name / "images").mkdir(parents=True, exist_ok=True)
        (out / name / "maps").mkdir(parents=True, exist_ok=True)
        shutil.copy(path, out / name / "images" / path.name)
        saliency = np.asarray(Image.open(DATA / "saliency" / name / "maps" / f"{image_id}.png").convert("L"))
        save_small_map(saliency, out / name / "maps" / f"{image_id}.png")
        chosen[name].append(image_id)
    return chosen


def copy_pure_python(out: Path) -> None:
    import compressai
    import pytorch_msssim
    for module in (compressai, pytorch_msssim):
        source = Path(module.__file__).parent
        shutil.copytree(source, out / source.name, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    (out / "compressai" / "_CXX.py").write_text(CXX_STUB)
    (out / "compressai" / "ans.py").write_text(ANS_STUB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(".devdata"))
    parser.add_argument("--budget-mb", type=float, default=44.0, help="total size of the packed data")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    data = args.out / "data"
    bsds_ids = pack_bsds(data / "bsds500")
    used = sum(p.stat().st_size for p in data.rglob("*") if p.is_file())
    chosen = pack_saliency_sets(data, int(args.budget_mb * 1e6) - used, args.seed)
    (data / "splits.json").write_text(json.dumps({"bsds500": {"train": bsds_ids}}
                                                 | {name: {"train": ids} for name, ids in chosen.items()}))
    copy_pure_python(args.out / "site")
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"packed {len(bsds_ids)} BSDS500 + {len(chosen['osie'])} OSIE + {len(chosen['nus_scene'])} NUS Scene "
          f"training images; {total / 1e6:.1f} MB in {args.out}")


if __name__ == "__main__":
    main()
