"""`salcodec eval` end to end on two small images: CSV, JSON, plots and an HTML report whose images exist."""
from __future__ import annotations

import csv
import json
import re
import shutil

import numpy as np
from PIL import Image

from salcodec.cli import main
from tests.conftest import DATA, TINY


def test_eval_writes_csv_json_plots_and_html(tmp_path, capsys):
    data = tmp_path / "set"
    (data / "images").mkdir(parents=True)
    (data / "maps").mkdir()
    for image_id in ("002", "003"):
        src = DATA / "saliency" / "nus_scene"
        img = Image.open(src / "images" / f"{image_id}.jpg").convert("RGB")
        img.crop((0, 0, 192, 160)).save(data / "images" / f"{image_id}.png")
        Image.open(src / "maps" / f"{image_id}.png").crop((0, 0, 192, 160)).save(data / "maps" / f"{image_id}.png")
    out = tmp_path / "out"
    args = ["eval", "--models", f"{TINY}:none,{TINY}:human", "--codecs", "jpeg,webp", "--data", str(data),
            "--reference", "human", "--qualities", "0", "30", "60", "100", "--anchor", "jpeg", "--out-dir", str(out)]
    assert main(args) == 0
    assert "BD-rate" in capsys.readouterr().out

    with (out / "per_image.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * (4 + 4 + 9 + 9)
    for row in rows:
        size_bits = float(row["bpp"]) * 192 * 160
        assert size_bits > 0 and np.isfinite(float(row["psnr"]))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["command"].startswith("salcodec eval") and summary["anchor"] == "jpeg"
    assert abs(summary["bd_rate"]["webp"]["psnr"]) < 100 and summary["bd_rate"]["jpeg"]["psnr"] == 0.0
    page = (out / "report.html").read_text()
    sources = re.findall(r"src='([^']+)'", page)
    assert len(sources) >= 5 + 2 * 10
    for src in sources:
        assert Image.open(out / src).size[0] > 0
    shutil.rmtree(out)
