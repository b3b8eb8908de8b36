"""`salcodec eval`: rate-distortion of salcodec models and classic codecs on a folder of images.

Every point is a real file (a `.sgc` container or a JPEG/WebP/AVIF/JPEG XL file) and its size
is the rate. `--saliency` is what salcodec's encoder is given; `--reference` is the map that
defines the ROI and the saliency-weighted metrics. Both may be `human` only where the data
folder has fixation density maps (`maps/`).
"""
from __future__ import annotations

import csv
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..codec.image_io import IMAGE_SUFFIXES
from ..errors import SalcodecError
from . import baselines
from .metrics import (
    bd_rate,
    grid_artefact_ratio,
    high_frequency_ratio,
    mean_quality_at_rate,
    ms_ssim,
    psnr,
    region_psnr,
    roi_mask,
    weighted_psnr,
)
from .realism import RealismCollector

METRIC_NAMES = ["psnr", "ms_ssim", "weighted_psnr", "roi_psnr", "non_roi_psnr"]  # with BD-rates
# realism and artefacts: reported per setting and at equal rate, no BD-rate (neither is a fidelity)
EXTRA_METRICS = ["hf_ratio", "grid_ratio"]
DEFAULT_QUALITIES = [0, 15, 30, 45, 60, 75, 90, 100]
RATES = (0.25, 0.5, 1.0)


@dataclass
class Entry:
    """One curve: a classic codec, a variable-rate salcodec model swept over qualities, or a
    ladder of fixed-rate models (one point each); `saliency` is what the encoder gets, `encoder`
    which of the model's encoders writes the files (default or fast), `decoder` which of its
    decoders reads them (mse, gan or fast)."""
    label: str
    kind: str  # "classic" or "salcodec"
    models: tuple[str, ...] = ()
    saliency: str = "none"
    decoder: str = "mse"
    encoder: str = "default"
    strength: float | None = None  # None: the run's --strength

    @property
    def ladder(self) -> bool:
        return len(self.models) > 1


def parse_entries(models: list[str], codecs: list[str], default_saliency: str) -> list[Entry]:
    """Model specs: `ID[^ENCODER][@DECODER][:SALIENCY[:STRENGTH]]` (variable rate; ENCODER default
    or fast, DECODER mse, gan or fast) or `LABEL=ID1+ID2+...[:SALIENCY[:STRENGTH]]` (a λ ladder);
    STRENGTH overrides --strength."""
    from ..models.transforms import DECODERS, ENCODERS
    entries = []
    for spec in models:
        body, _, sal = spec.partition(":")
        sal, _, strength_text = sal.partition(":")
        sal = sal or default_saliency
        try:
            strength = float(strength_text) if strength_text else None
        except ValueError:
            raise SalcodecError(f"strength '{strength_text}' in '{spec}' is not a number") from None
        body, _, decoder = body.partition("@")
        body, _, encoder = body.partition("^")
        label, _, ids = body.partition("=")
        ladder = tuple(ids.split("+")) if ids else (label,)
        if decoder not in ("", *DECODERS):
            raise SalcodecError(f"unknown decoder '{decoder}' in '{spec}' ({', '.join(DECODERS)})")
        if encoder not in ("", *ENCODERS):
            raise SalcodecError(f"unknown encoder '{encoder}' in '{spec}' ({', '.join(ENCODERS)})")
        tag = (f"^{encoder}" if encoder else "") + (f"@{decoder}" if decoder else "")
        suffix = f":{strength_text}" if strength_text else ""
        entries.append(Entry(f"{label}{tag}:{sal}{suffix}", "salcodec", ladder, sal, decoder or "mse",
                             encoder or "default", strength))
    for name in codecs:
        if name not in baselines.CODECS:
            raise SalcodecError(f"unknown codec '{name}' (choose from {', '.join(baselines.CODECS)})")
        entries.append(Entry(name, "classic"))
    return entries


def resolve_anchor(entries: list[Entry], anchor: str | None) -> str:
    """The label of the curve BD-rates are measured against, checked before any image is coded:
    the last curve by default; a label, or a model spec without its `:SALIENCY` part when that
    names one curve alone (`default-v4-cb` for `default-v4-cb:none`)."""
    labels = [e.label for e in entries]
    if anchor is None:
        return labels[-1]
    if anchor in labels:
        return anchor
    matches = [label for label in labels if label.partition(":")[0] == anchor]
    if len(matches) == 1:
        return matches[0]
    raise SalcodecError(f"anchor '{anchor}' is not one of the curves ({', '.join(labels)})"
                        + (": say which one" if matches else ""))


def list_images(data: Path, split: str) -> list[Path]:
    folder = data / "images" if (data / "images").is_dir() else data
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if split != "all":
        splits_file = data.parent / "splits.json"
        try:
            ids = set(json.loads(splits_file.read_text())[data.name][split])
        except (OSError, KeyError, ValueError):
            raise SalcodecError(f"no '{split}' split for {data.name} in {splits_file} (use --split all)") from None
        paths = [p for p in paths if p.stem in ids]
    if not paths:
        raise SalcodecError(f"no images found in {folder}")
    return paths


def saliency_for(kind: str, data: Path, path: Path, image: np.ndarray) -> np.ndarray | None:
    """A map by its name: none, human (the data set's density map), auto or a predictor."""
    from ..saliency import predict
    from ..saliency.io import load_saliency_map
    if kind == "none":
        return None
    if kind == "human":
        map_path = data / "maps" / f"{path.stem}.png"
        if not map_path.is_file():
            raise SalcodecError(f"no human map for {path.name} (expected {map_path})")
        return load_saliency_map(map_path, image.shape[:2])
    return predict(image, kind)


def measure(original: np.ndarray, decoded: np.ndarray, reference: np.ndarray, roi: np.ndarray) -> dict[str, float]:
    return {"psnr": psnr(original, decoded), "ms_ssim": ms_ssim(original, decoded),
            "weighted_psnr": weighted_psnr(original, decoded, reference),
            "roi_psnr": region_psnr(original, decoded, roi), "non_roi_psnr": region_psnr(original, decoded, ~roi),
            "hf_ratio": high_frequency_ratio(original, decoded), "grid_ratio": grid_artefact_ratio(original, decoded)}


def evaluate(data: Path, entries: list[Entry], reference_kind: str, strength: float, qualities: list[float],
             split: str = "all", limit: int | None = None, keep_decoded: int = 0,
             realism: RealismCollector | None = None) -> tuple[list[dict], dict]:
    """Per-image rows for every entry and setting; also the decoded images of the first `keep_decoded`
    images; `realism`, when given, collects the Inception features of originals and decodes."""
    from tqdm import tqdm

    from ..codec import codec
    rows, decoded_store = [], {}
    paths = list_images(data, split)[:limit]
    for index, path in enumerate(tqdm(paths, desc=f"eval {data.name}", file=sys.stderr)):
        image = np.asarray(Image.open(path).convert("RGB"))
        reference = saliency_for(reference_kind, data, path, image)
        if reference is None:
            raise SalcodecError("--reference must name a map (human or a predictor), not none")
        roi = roi_mask(reference)
        if realism is not None:
            realism.add_original(image)
        encoder_maps: dict[str, np.ndarray | None] = {}
        encoded: dict[tuple, codec.Encoded] = {}  # one file read by every decoder
        for entry in entries:
            if entry.kind == "classic":
                settings = baselines.LADDERS[entry.label]
            else:
                settings = list(entry.models) if entry.ladder else qualities
            for setting in settings:
                if entry.kind == "salcodec":
                    if entry.saliency not in encoder_maps:
                        encoder_maps[entry.saliency] = reference if entry.saliency == reference_kind else \
                            saliency_for(entry.saliency, data, path, image)
                    model, quality = (setting, 50) if entry.ladder else (entry.models[0], setting)
                    gamma = strength if entry.strength is None else entry.strength
                    key = (model, quality, entry.saliency, gamma, entry.encoder)
                    if key not in encoded:
                        encoded[key] = codec.encode(image, quality, encoder_maps[entry.saliency], gamma, model,
                                                    entry.encoder)
                    enc = encoded[key]
                    data_bytes, decoded, est = enc.data, codec.decode(enc.data, decoder=entry.decoder), enc.estimated_bpp
                else:
                    data_bytes, decoded = baselines.run_codec(entry.label, image, int(setting))
                    est = float("nan")
                bpp = 8 * len(data_bytes) / (image.shape[0] * image.shape[1])
                rows.append({"image": path.name, "codec": entry.label, "setting": setting, "bpp": bpp,
                             "estimated_bpp": est} | measure(image, decoded, reference, roi))
                if realism is not None:
                    realism.add(entry.label, setting, bpp, decoded)
                if index < keep_decoded:
                    decoded_store[(path.name, entry.label, setting)] = (bpp, decoded)
        if index < keep_decoded:
            decoded_store[(path.name, "original", 0)] = (0.0, image)
            decoded_store[(path.name, "reference", 0)] = (0.0, reference)
    return rows, decoded_store


def summarise(rows: list[dict], anchor: str) -> dict:
    """Curves averaged over images per setting, BD-rates against the anchor, quality at fixed rates."""
    curves: dict[str, dict] = {}
    for label in dict.fromkeys(r["codec"] for r in rows):
        mine = [r for r in rows if r["codec"] == label]
        settings = list(dict.fromkeys(r["setting"] for r in mine))
        images = list(dict.fromkeys(r["image"] for r in mine))
        curve = {"settings": settings, "bpp": [], **{m: [] for m in METRIC_NAMES + EXTRA_METRICS}, "at_rate": {}}
        for s in settings:
            at = [r for r in mine if r["setting"] == s]
            curve["bpp"].append(float(np.mean([r["bpp"] for r in at])))
            for m in METRIC_NAMES + EXTRA_METRICS:
                curve[m].append(float(np.nanmean([r[m] for r in at])))
        for m in METRIC_NAMES + EXTRA_METRICS:
            per_image = [([r["bpp"] for r in mine if r["image"] == i], [r[m] for r in mine if r["image"] == i]) for i in images]
            curve["at_rate"][m] = {str(rate): mean_quality_at_rate(per_image, rate) for rate in RATES}
        curves[label] = curve
    if anchor not in curves:
        raise SalcodecError(f"anchor '{anchor}' is not among the evaluated curves ({', '.join(curves)})")
    base = curves[anchor]

    def bd(curve: dict, metric: str) -> float | None:
        if min(len(curve["bpp"]), len(base["bpp"])) < 4:  # a cubic fit per curve needs 4 points
            return None
        return _finite_or_none(bd_rate(base["bpp"], base[metric], curve["bpp"], curve[metric]))
    bd_rates = {label: {m: bd(c, m) for m in METRIC_NAMES} for label, c in curves.items()}
    return {"anchor": anchor, "curves": curves, "bd_rate": bd_rates}


def _finite_or_none(value: float) -> float | None:
    """BD-rates of curves whose quality ranges do not overlap are undefined: null in the JSON (as are
    those of curves with fewer than 4 points)."""
    return value if math.isfinite(value) else None


def format_bd(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}"


def write_csv(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def format_summary(summary: dict) -> str:
    lines = [f"BD-rate (%) against {summary['anchor']} (negative: fewer bits for the same quality)",
             "| codec | " + " | ".join(METRIC_NAMES) + " |", "|---" * (len(METRIC_NAMES) + 1) + "|"]
    for label, row in summary["bd_rate"].items():
        lines.append(f"| {label} | " + " | ".join(format_bd(row[m]) for m in METRIC_NAMES) + " |")
    lines += ["", "PSNR-RGB (dB) at equal real bpp", "| codec | " + " | ".join(f"{r} bpp" for r in RATES) + " |",
              "|---" * (len(RATES) + 1) + "|"]
    for label, c in summary["curves"].items():
        vals = [c["at_rate"]["psnr"][str(r)] for r in RATES]
        lines.append(f"| {label} | " + " | ".join("n/a" if v is None else f"{v:.2f}" for v in vals) + " |")
    for metric, title in (("hf_ratio", "High-frequency ratio (reconstruction / original; 1 = as much fine detail)"),
                          ("grid_ratio", "Grid artefact ratio (error power on the 16-px grid's harmonics / nearby; 1 = none)")):
        lines += ["", f"{title} at equal real bpp", "| codec | " + " | ".join(f"{r} bpp" for r in RATES) + " |",
                  "|---" * (len(RATES) + 1) + "|"]
        for label, c in summary["curves"].items():
            vals = [c["at_rate"][metric][str(r)] for r in RATES]
            lines.append(f"| {label} | " + " | ".join("n/a" if v is None else f"{v:.3f}" for v in vals) + " |")
    return "\n".join(lines)
