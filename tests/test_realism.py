"""FID/KID (eval/realism.py): the formulas, the patches, user-supplied weights, and the message without them.

No real Inception weights exist here (nothing downloads), so the network is pytorch-fid's
architecture with random weights, saved in pytorch-fid's format: that exercises loading, feature
extraction and the metrics; the numbers themselves mean nothing."""
from __future__ import annotations

import json
import socket
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image

from salcodec.cli import main
from salcodec.errors import SalcodecError
from salcodec.eval import realism
from tests.conftest import DATA, TINY


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    from pytorch_fid import inception
    from torchvision.models.inception import Inception3
    with mock.patch.object(Inception3, "load_state_dict", lambda self, *a, **k: None), \
            mock.patch.object(inception, "load_state_dict_from_url", lambda *a, **k: None):
        net = inception.fid_inception_v3()  # the architecture only
    torch.manual_seed(0)
    for module in net.modules():  # default init gives features near zero; these spread them out
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight)
    path = tmp_path_factory.mktemp("inception") / realism.WEIGHTS_FILE
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture
def no_weights_anywhere(monkeypatch, tmp_path):
    monkeypatch.delenv(realism.WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


def test_kid_is_the_unbiased_polynomial_mmd(rng):
    a, b = rng.normal(size=(7, 5)), rng.normal(0.5, 1.0, size=(7, 5))
    k = lambda u, v: (u @ v / 5 + 1) ** 3  # noqa: E731
    within = sum(k(a[i], a[j]) + k(b[i], b[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    across = sum(k(a[i], b[j]) for i in range(7) for j in range(7)) / 49
    assert realism.kid(a, b, subsets=1, subset_size=7) == pytest.approx(within - 2 * across)
    assert realism.kid(a, b) == realism.kid(a, b)  # seeded subsets
    same = realism.kid(rng.normal(size=(300, 5)), rng.normal(size=(300, 5)))
    assert realism.kid(rng.normal(size=(300, 5)), rng.normal(0.5, 1.0, size=(300, 5))) > 10 * abs(same)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # scipy about pytorch-fid's sqrtm call
def test_fid_equals_pytorch_fid_formula(rng):
    from pytorch_fid.fid_score import calculate_frechet_distance
    for n in (12, 60):  # fewer and more samples than dimensions
        a, b = rng.normal(size=(n, 20)), rng.normal(0.3, 1.5, size=(n + 3, 20))
        expected = calculate_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
        assert realism.fid(a, b) == pytest.approx(expected, rel=1e-6)


def test_patches_follow_the_grid_and_its_half_shift():
    image = np.zeros((512, 768, 3), np.uint8)
    assert realism.patches(image).shape == (6 + 2, 256, 256, 3)
    assert realism.patches(image[:100, :300]).shape == (3, 100, 100, 3)


def test_fid_and_kid_grow_with_the_damage(inception_weights, kodak_crop):
    features = realism.InceptionFeatures(inception_weights)
    original = features(realism.patches(kodak_crop, 64))
    noise = np.random.default_rng(0).normal(size=kodak_crop.shape)
    damaged = [features(realism.patches(np.clip(kodak_crop + s * noise, 0, 255).astype(np.uint8), 64)) for s in (4, 40)]
    assert abs(realism.fid(original, original)) < 1e-3
    assert realism.fid(original, damaged[0]) < realism.fid(original, damaged[1])
    assert realism.kid(original, damaged[0]) < realism.kid(original, damaged[1])


def test_eval_reports_fid_and_kid_with_local_weights_and_downloads_nothing(inception_weights, tmp_path, capsys,
                                                                           monkeypatch):
    data = tmp_path / "set"
    data.mkdir()
    for name in ("kodim01", "kodim07"):
        Image.open(DATA / "kodak" / f"{name}.png").crop((0, 0, 384, 384)).save(data / f"{name}.png")
    monkeypatch.setattr(socket.socket, "connect", mock.Mock(side_effect=AssertionError("network used")))
    out = tmp_path / "out"
    assert main(["eval", "--models", f"{TINY}@mse", "--data", str(data), "--qualities", "0", "100",
                 "--crops", "0", "--inception-weights", str(inception_weights), "--out-dir", str(out)]) == 0
    assert "FID and KID" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())["realism"]
    assert summary["patches"] == 2 * 2  # per image: one on the grid, one shifted
    curve = summary["curves"][f"{TINY}@mse:none"]
    assert curve["settings"] == [0, 100] and curve["bpp"][0] < curve["bpp"][1]
    assert all(np.isfinite(curve["fid"])) and all(np.isfinite(curve["kid"]))
    assert "FID / KID against the originals" in (out / "report.html").read_text()


def test_eval_says_fid_is_unavailable_without_weights(no_weights_anywhere, tmp_path, capsys):
    data = tmp_path / "set"
    data.mkdir()
    Image.open(DATA / "kodak" / "kodim01.png").crop((0, 0, 128, 128)).save(data / "a.png")
    out = tmp_path / "out"
    assert main(["eval", "--codecs", "jpeg", "--data", str(data), "--crops", "0", "--out-dir", str(out)]) == 0
    assert "FID/KID unavailable: no Inception weights" in capsys.readouterr().out
    assert "unavailable" in json.loads((out / "summary.json").read_text())["realism"]
    assert "FID/KID unavailable" in (out / "report.html").read_text()


def test_weights_are_found_by_environment_and_bad_ones_are_refused(inception_weights, no_weights_anywhere,
                                                                   monkeypatch, tmp_path, capsys):
    assert realism.find_weights() is None
    monkeypatch.setenv(realism.WEIGHTS_ENV, str(inception_weights))
    assert realism.find_weights() == inception_weights
    with pytest.raises(SalcodecError, match="not found"):
        realism.find_weights(tmp_path / "missing.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    foreign = tmp_path / "foreign.pth"
    torch.save({"conv.weight": torch.zeros(1)}, foreign)
    for path, message in ((garbage, "cannot read Inception weights"), (foreign, "is not pytorch-fid Inception weights")):
        with pytest.raises(SalcodecError, match=message):
            realism.InceptionFeatures(path)
    assert main(["eval", "--codecs", "jpeg", "--data", str(DATA / "kodak"), "--images", "1",
                 "--inception-weights", str(garbage), "--out-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "cannot read Inception weights" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_realism_tables_print_ladder_settings_by_model_id():
    from salcodec.eval.report import realism_html
    summary = {"patches": 4, "curves": {"ladder": {"settings": ["m-v1", 30.0], "bpp": [0.1, 0.2], "fid": [1.0, 2.0],
                                                   "kid": [0.001, 0.002]}}}
    assert "| ladder | m-v1 | 0.1000 | 1.00 | 1.00 |" in realism.format_realism(summary)
    assert "| ladder | 30 |" in realism.format_realism(summary)
    assert "<td>m-v1</td>" in "".join(realism_html(summary))
