"""The command line: conventions of ../shared/DESIGN.md, exit codes and one-line errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from salcodec.cli import main
from tests.conftest import TINY


@pytest.fixture
def photo(tmp_path, kodak_crop) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(kodak_crop).save(path)
    return path


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "salcodec", *args], input=stdin, capture_output=True,
                          env=os.environ.copy(), timeout=300)


def test_compress_decompress_info_default_names(photo, capsys):
    assert main(["compress", str(photo), "--model", TINY, "--quality", "40"]) == 0
    sgc = photo.with_suffix(".sgc")
    assert sgc.is_file()
    assert "bpp" in capsys.readouterr().out
    assert main(["decompress", str(sgc)]) == 0
    out = Path(str(sgc) + ".png")
    assert np.asarray(Image.open(out)).shape == np.asarray(Image.open(photo)).shape
    capsys.readouterr()
    assert main(["info", str(sgc), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["bpp"] == pytest.approx(8 * sgc.stat().st_size / (info["width"] * info["height"]))
    assert info["model"] == TINY


def test_never_overwrites_without_force(photo, capsys):
    sgc = photo.with_suffix(".sgc")
    sgc.write_bytes(b"keep me")
    assert main(["compress", str(photo), "--model", TINY]) == 2
    assert "exists" in capsys.readouterr().err
    assert sgc.read_bytes() == b"keep me"
    assert main(["compress", str(photo), "--model", TINY, "--force"]) == 0
    assert sgc.read_bytes()[:4] == b"\x89SGC"


def test_never_overwrites_the_input(photo, capsys):
    assert main(["compress", str(photo), "-o", str(photo), "--model", TINY, "--force"]) == 2
    assert "input" in capsys.readouterr().err
    assert Image.open(photo).format == "PNG"


def test_several_inputs_need_out_dir(photo, tmp_path, capsys):
    second = tmp_path / "second.png"
    second.write_bytes(photo.read_bytes())
    assert main(["compress", str(photo), str(second), "--model", TINY]) == 2
    assert "--out-dir" in capsys.readouterr().err
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert main(["compress", str(photo), str(second), "--out-dir", str(out_dir), "--model", TINY]) == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["photo.sgc", "second.sgc"]


def test_batch_with_workers_gives_the_same_files_and_reports_throughput(photo, tmp_path, capsys):
    inputs = []
    for i in range(3):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(np.asarray(Image.open(photo))[:, i * 16:].copy()).save(path)
        inputs.append(str(path))
    one, batch = tmp_path / "one", tmp_path / "batch"
    one.mkdir()
    batch.mkdir()
    common = ["--model", TINY, "--saliency", "none", "--quality", "60"]
    assert main(["compress", *inputs, "--out-dir", str(one), *common]) == 0
    capsys.readouterr()
    assert main(["compress", *inputs, "--out-dir", str(batch), "--workers", "2", *common]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" -> ")[0] for line in out[:3]] == inputs  # printed in input order
    assert "images/s (2 workers)" in out[-1]
    for i in range(3):  # identical bytes: the transforms do not depend on the thread count
        assert (batch / f"img{i}.sgc").read_bytes() == (one / f"img{i}.sgc").read_bytes()

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert main(["compress", inputs[0], str(broken), "--out-dir", str(tmp_path), "--workers", "2", *common]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("salcodec: error:") and "broken.png" in err and "\n" not in err
    assert not (tmp_path / "broken.sgc").exists()


def test_bad_input_gives_exit_2_and_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.sgc"
    bad.write_bytes(b"\x89SGC\x01" + b"\x00" * 50)
    assert main(["decompress", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("salcodec: error:") and "\n" not in err
    assert not Path(str(bad) + ".png").exists()


def test_subprocess_exit_codes_and_no_traceback(photo, tmp_path):
    res = run("decompress", str(tmp_path / "missing.sgc"))
    assert res.returncode == 2 and b"Traceback" not in res.stderr and b"no such file" in res.stderr
    res = run("compress", str(photo), "--quality", "abc")
    assert res.returncode == 2 and b"invalid float value" in res.stderr
    res = run("--help")
    assert res.returncode == 0 and b"compress" in res.stdout


def test_stdin_to_stdout_round_trip(photo):
    enc = run("compress", "-", "-o", "-", "--model", TINY, "--saliency", "none", stdin=photo.read_bytes())
    assert enc.returncode == 0, enc.stderr
    assert enc.stdout[:4] == b"\x89SGC" and b"bpp" in enc.stderr
    dec = run("decompress", "-", "-o", "-", stdin=enc.stdout)
    assert dec.returncode == 0, dec.stderr
    assert dec.stdout[:8] == b"\x89PNG\r\n\x1a\n"
