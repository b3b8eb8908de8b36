"""benchmarks/kodak_rd.py keeps a long run's work: it saves after every image and `--resume` goes on
with a stopped run of the same settings, and refuses one of other settings."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "kodak_rd.py"
KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"


def kodak_rd(data: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--data", str(data), "--qualities", "0", "30", "60", "100", *args],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(not KODAK.is_dir(), reason="needs ../shared/data/kodak")
def test_a_stopped_run_is_resumed_and_not_coded_again(tmp_path):
    data = tmp_path / "crops"  # two small Kodak crops: the logic, not the rates, is tested
    data.mkdir()
    for name in ("kodim01.png", "kodim02.png"):
        Image.open(KODAK / name).crop((0, 0, 256, 128)).save(data / name)
    out = tmp_path / "run.json"
    first = kodak_rd(data, "--images", "1", "--json-out", str(out))
    assert first.returncode == 0, first.stderr
    saved = json.loads(out.read_text())
    # as if the run had been stopped after its first image, with a mark no coding would write
    saved["partial"] = True
    saved["results"] = {"salcodec": saved["results"]["salcodec"]}
    saved["results"]["salcodec"]["per_image"]["kodim01.png"]["psnr"] = [11.0, 12.0, 13.0, 14.0]
    out.write_text(json.dumps(saved))

    refused = kodak_rd(data, "--images", "2", "--json-out", str(out))
    assert refused.returncode != 0 and "add --resume" in refused.stderr
    other = kodak_rd(data, "--images", "2", "--json-out", str(out), "--resume", "--try-flips")
    assert other.returncode != 0 and "other try_flips" in other.stderr

    resumed = kodak_rd(data, "--images", "2", "--json-out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "1 images' curves from the stopped run" in resumed.stdout
    done = json.loads(out.read_text())
    assert "partial" not in done and "summary" in done
    curves = done["results"]["salcodec"]["per_image"]
    assert list(curves) == ["kodim01.png", "kodim02.png"]
    assert curves["kodim01.png"]["psnr"] == [11.0, 12.0, 13.0, 14.0]  # kept, not coded again
    assert curves["kodim02.png"]["psnr"][0] > 20
