"""Plots and the HTML report of `salcodec eval`: RD curves for every metric, crops at matched bpp."""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from PIL import Image

from .realism import setting_text
from .run import METRIC_NAMES, format_bd

CROP = 256


def plot_curves(summary: dict, out_dir: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    paths = []
    for metric in METRIC_NAMES:
        fig, ax = plt.subplots(figsize=(6, 4.2), dpi=110)
        for label, c in summary["curves"].items():
            ax.plot(c["bpp"], c[metric], marker="o", ms=3, label=label)
        ax.set_xlabel("real bpp (mean over images)")
        ax.set_ylabel(metric.replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"rd_{metric}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


def _crop_box(reference: np.ndarray) -> tuple[int, int, int, int]:
    """A CROP×CROP window centred on the most salient point, kept inside the image."""
    h, w = reference.shape
    cy, cx = np.unravel_index(int(np.argmax(reference)), reference.shape)
    side_h, side_w = min(CROP, h), min(CROP, w)
    y0 = int(np.clip(cy - side_h // 2, 0, h - side_h))
    x0 = int(np.clip(cx - side_w // 2, 0, w - side_w))
    return y0, x0, side_h, side_w


def crop_grid(decoded: dict, target_bpp: float, out_dir: Path) -> list[dict]:
    """For each kept image: original, the setting of each codec nearest `target_bpp`, the map, an error map."""
    images = sorted({k[0] for k in decoded})
    codecs = list(dict.fromkeys(k[1] for k in decoded if k[1] not in ("original", "reference")))
    figures = []
    for name in images:
        original = decoded[(name, "original", 0)][1]
        reference = decoded[(name, "reference", 0)][1]
        y0, x0, ch, cw = _crop_box(reference)
        cut = (slice(y0, y0 + ch), slice(x0, x0 + cw))
        stem = Path(name).stem
        tiles = [("original", "", original[cut])]
        heat = (np.clip(reference, 0, 1) * 255).astype(np.uint8)
        tiles.append(("saliency (reference)", "", np.dstack([heat, heat // 3, 255 - heat])[cut]))
        for codec in codecs:
            options = [(v[0], k[2], v[1]) for k, v in decoded.items() if k[0] == name and k[1] == codec]
            bpp, setting, pixels = min(options, key=lambda o: abs(np.log(o[0] / target_bpp)))
            tiles.append((codec, f"{bpp:.3f} bpp", pixels[cut]))
            err = np.abs(original.astype(np.int16) - pixels.astype(np.int16)).sum(axis=2)
            err = np.clip(err * 4, 0, 255).astype(np.uint8)
            tiles.append((f"{codec} error ×4", "", np.dstack([err, err, err])[cut]))
        entries = []
        for i, (title, sub, arr) in enumerate(tiles):
            fname = f"crop_{stem}_{i:02d}.png"
            Image.fromarray(arr).save(out_dir / fname)
            entries.append({"title": title, "sub": sub, "file": fname})
        figures.append({"image": name, "tiles": entries})
    return figures


def realism_html(realism: dict | None) -> list[str]:
    """The FID/KID table (eval/realism.py), or the line saying why there is none."""
    if realism is None:
        return []
    if "unavailable" in realism:
        return ["<h2>FID / KID</h2>", f"<p>{html.escape(realism['unavailable'])}</p>"]
    parts = [f"<h2>FID / KID against the originals ({realism['patches']} patches)</h2>",
             "<table><tr><th>codec</th><th>setting</th><th>bpp</th><th>FID</th><th>KID×1000</th></tr>"]
    for label, c in realism["curves"].items():
        for setting, bpp, f, k in zip(c["settings"], c["bpp"], c["fid"], c["kid"]):
            parts.append(f"<tr><td>{html.escape(label)}</td><td>{html.escape(setting_text(setting))}</td><td>{bpp:.4f}</td>"
                         f"<td>{f:.2f}</td><td>{1000 * k:.2f}</td></tr>")
    return parts + ["</table>"]


def write_html(summary: dict, plots: list[Path], figures: list[dict], command: str, out_dir: Path, target_bpp: float) -> Path:
    esc = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>salcodec eval</title>",
             "<style>body{font-family:sans-serif;margin:2em}img{margin:4px}figure{display:inline-block;margin:4px}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style>",
             "</head><body><h1>salcodec evaluation</h1>", f"<p><code>{esc(command)}</code></p>",
             f"<h2>BD-rate (%) against {esc(summary['anchor'])}</h2><table><tr><th>codec</th>"]
    parts += [f"<th>{esc(m)}</th>" for m in METRIC_NAMES] + ["</tr>"]
    for label, row in summary["bd_rate"].items():
        parts.append(f"<tr><td>{esc(label)}</td>" + "".join(f"<td>{format_bd(row[m])}</td>" for m in METRIC_NAMES) + "</tr>")
    parts.append("</table>")
    parts += realism_html(summary.get("realism"))
    parts.append("<h2>Rate-distortion</h2>")
    parts += [f"<img src='{esc(p.name)}' alt='{esc(p.stem)}'>" for p in plots]
    parts.append(f"<h2>Crops at about {target_bpp} bpp</h2>")
    for fig in figures:
        parts.append(f"<h3>{esc(fig['image'])}</h3><div>")
        for t in fig["tiles"]:
            parts.append(f"<figure><img src='{esc(t['file'])}' alt='{esc(t['title'])}'>"
                         f"<figcaption>{esc(t['title'])} {esc(t['sub'])}</figcaption></figure>")
        parts.append("</div>")
    # after loading, the page records how many of its images failed, so a headless browser can check it
    parts.append("<script>addEventListener('load', () => { const imgs = [...document.images];"
                 " document.body.dataset.images = imgs.length;"
                 " document.body.dataset.broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length; });</script>")
    parts.append("</body></html>")
    path = out_dir / "report.html"
    path.write_text("\n".join(parts))
    return path
