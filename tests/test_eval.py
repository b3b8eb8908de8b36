"""`salcodec eval` end to end on two small images: CSV, JSON, plots and an HTML report whose images exist."""
from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from salcodec.cli import main
from salcodec.eval import baselines
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
    args = ["eval", "--models", f"{TINY}:none,{TINY}:human", "--codecs", "jpeg,webp,avif,jxl", "--data", str(data),
            "--reference", "human", "--qualities", "0", "30", "60", "100", "--anchor", "jpeg", "--out-dir", str(out)]
    assert main(args) == 0
    assert "BD-rate" in capsys.readouterr().out

    with (out / "per_image.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    ladders = sum(len(baselines.LADDERS[c]) for c in ("jpeg", "webp", "avif", "jxl"))
    assert len(rows) == 2 * (4 + 4 + ladders)  # two images × (two model entries, then the codec ladders)
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
    loaded = load_in_browser(out / "report.html")
    assert loaded == (len(sources), 0), loaded  # (images on the page, images that failed to load)
    shutil.rmtree(out)


def load_in_browser(page: Path) -> tuple[int, int]:
    """Open a page in headless Chromium; return the image counts the page's own script recorded."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("headless Chromium is not installed (scripts/test.sh installs Debian's chromium where it can)")
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                              "--disable-background-networking", "--disable-component-update", "--disable-sync",
                              f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
                             capture_output=True, text=True, timeout=120)
    body = re.search(r"<body[^>]*>", out.stdout)
    assert body, out.stderr[-2000:]
    counts = re.search(r'data-images="(\d+)" data-broken="(\d+)"', body.group(0))
    assert counts, body.group(0)
    return int(counts.group(1)), int(counts.group(2))


def test_model_specs_carry_their_own_saliency_strength():
    from salcodec.errors import SalcodecError
    from salcodec.eval.run import parse_entries
    plain, strong = parse_entries(["default-v4:human", "default-v4:human:0.8"], [], "none")
    assert (plain.label, plain.strength) == ("default-v4:human", None)
    assert (strong.label, strong.saliency, strong.strength) == ("default-v4:human:0.8", "human", 0.8)
    with pytest.raises(SalcodecError, match="not a number"):
        parse_entries(["default-v4:human:strong"], [], "none")


def test_the_anchor_is_checked_before_anything_is_coded():
    from salcodec.errors import SalcodecError
    from salcodec.eval.run import parse_entries, resolve_anchor
    entries = parse_entries(["default-v4-cb", "default-v4-cb@fast", "default-v4:none", "default-v4:human"], ["webp"], "none")
    assert resolve_anchor(entries, None) == "webp"
    assert resolve_anchor(entries, "default-v4-cb") == "default-v4-cb:none"  # the one curve of that spec
    assert resolve_anchor(entries, "default-v4-cb@fast:none") == "default-v4-cb@fast:none"
    with pytest.raises(SalcodecError, match="say which one"):
        resolve_anchor(entries, "default-v4")  # two curves
    with pytest.raises(SalcodecError, match="not one of the curves"):
        resolve_anchor(entries, "jpeg")


def test_curves_that_do_not_overlap_have_no_bd_rate():
    """An undefined BD-rate is null in the JSON and n/a in the tables, not NaN (invalid JSON)."""
    import json

    from salcodec.eval.run import METRIC_NAMES, format_summary, summarise
    rows = []
    for codec, offset in (("low", 0.0), ("high", 50.0)):  # "high" is better than "low" everywhere
        for setting, bpp in enumerate((0.2, 0.4, 0.8, 1.6)):
            quality = 20 + 3 * setting + offset
            rows.append({"image": "a.png", "codec": codec, "setting": setting, "bpp": bpp, "estimated_bpp": bpp,
                         **{m: quality for m in METRIC_NAMES}, "hf_ratio": 0.5, "grid_ratio": 1.0})
    summary = summarise(rows, "low")
    assert summary["bd_rate"]["low"]["psnr"] == 0.0 and summary["bd_rate"]["high"]["psnr"] is None
    json.loads(json.dumps(summary, allow_nan=False))
    assert "| high | n/a |" in format_summary(summary)
