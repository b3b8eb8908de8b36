"""The fast encoder: a narrower analysis trained against a frozen model's entropy model and
decoder, whose files every decoder of the model reads."""
from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
import torch
import yaml

from salcodec.codec import bitstream, codec
from salcodec.errors import SalcodecError
from salcodec.models.registry import MODEL_PATH_ENV, load_model
from salcodec.models.transforms import analysis_state
from salcodec.train.fast_encoder import narrowed_analysis
from tests.conftest import DATA, TINY


def test_narrowing_to_the_full_width_keeps_the_analysis_exactly(rng):
    model, _ = load_model(TINY)
    x = torch.from_numpy(rng.uniform(0, 1, (2, 3, 64, 128)).astype(np.float32))
    q = torch.from_numpy(rng.uniform(0, 1, (2, 1, 64, 128)).astype(np.float32))
    q0 = torch.tensor([0.3, 0.9])
    with torch.no_grad():
        full = narrowed_analysis(model, (model.N,) * 3).eval()
        for mine, theirs in zip(full(x, q, q0), model.analysis(x, q, q0)):
            assert torch.equal(mine, theirs)
        narrow = narrowed_analysis(model, (4, 6, 8))
        assert narrow.g_a[1].weight.shape == (6, 4, 5, 5) and narrow.g_a[3].weight.shape == (model.M, 8, 5, 5)
        y, z = narrow(x, q, q0)
        assert y.shape == (2, model.M, 4, 8) and z.shape == (2, model.N, 1, 2)


@pytest.fixture
def fast_encoder_run(tmp_path, training_photos, monkeypatch):
    """A fast encoder for the tiny model, trained by the training command for a few steps."""
    cfg = {
        "name": "fast-encoder-test", "out_dir": str(tmp_path / "run"),
        "model": {"family": "fast-encoder", "base": TINY, "widths": [4, 6, 8]},
        "data": {"photos": [str(training_photos)], "heldout": str(DATA / "train" / "bsds500" / "test"), "max_side": 256},
        "train": {"steps": 4, "batch": 2, "crop": 64, "lr": [[0, 1e-3]], "lambda_min": 0.001, "lambda_max": 0.1,
                  "seed": 0, "log_every": 2, "monitor_every": 2, "monitor_images": 1, "monitor_side": 64,
                  "checkpoint_every": 2},
    }
    config = tmp_path / "fast-encoder.yaml"
    config.write_text(yaml.safe_dump(cfg))
    from salcodec.cli import main
    before = {k: v.clone() for k, v in load_model(TINY)[0].state_dict().items()}
    assert main(["train", "--config", str(config), "--max-steps", "2"]) == 0
    assert not (tmp_path / "run" / "fast-encoder").exists()  # exported only when the run is complete
    assert main(["train", "--config", str(config)]) == 0  # resumes from step 2
    after = load_model(TINY)[0].state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the shared model is left as it was
    monkeypatch.setenv(MODEL_PATH_ENV, f"{tmp_path / 'run'}{os.pathsep}{os.environ[MODEL_PATH_ENV]}")
    return tmp_path / "run"


def test_fast_encoder_trains_exports_and_writes_files_every_decoder_reads(fast_encoder_run, kodak_crop, tmp_path):
    with (fast_encoder_run / "monitor.csv").open() as fh:
        assert [int(r["step"]) for r in csv.DictReader(fh)] == [0, 2, 4]
    with (fast_encoder_run / "log.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [2, 4] and all(float(r["bpp"]) > 0 for r in rows)
    base_scores = json.loads((fast_encoder_run / "monitor_base.json").read_text())
    assert all(np.isfinite(v) and v > 0 for v in base_scores.values())
    blob = torch.load(fast_encoder_run / "fast-encoder" / f"{TINY}.pt", weights_only=True)
    assert blob["kind"] == "fast-encoder" and blob["base_model"] == TINY
    assert set(blob["state_dict"]) == set(analysis_state(narrowed_analysis(load_model(TINY)[0], (4, 6, 8))))
    assert blob["state_dict"]["g_a.1.weight"].dtype == torch.float16
    start = narrowed_analysis(load_model(TINY)[0], (4, 6, 8)).state_dict()
    assert not torch.equal(blob["state_dict"]["g_a.1.weight"].float(), start["g_a.1.weight"].half().float())

    default = codec.encode(kodak_crop, 40, model_name=TINY)
    fast = codec.encode(kodak_crop, 40, model_name=TINY, encoder="fast")
    # a file of the same model (the tiny random model's latents mostly round to their means, so
    # the streams may coincide), which the model's decoder reads
    assert bitstream.unpack(fast.data).header == bitstream.unpack(default.data).header
    decoded = codec.decode(fast.data)
    assert decoded.shape == kodak_crop.shape and decoded.dtype == np.uint8
    assert fast.data == codec.encode(kodak_crop, 40, model_name=TINY, encoder="fast").data
    # the rate estimate matches the file's streams
    assert abs(8 * len(fast.data) - fast.estimated_bits) < 0.2 * 8 * len(fast.data) + 200

    from salcodec.cli import main
    src = tmp_path / "a.png"
    from PIL import Image
    Image.fromarray(kodak_crop).save(src)
    out = tmp_path / "a.sgc"
    assert main(["compress", str(src), "-o", str(out), "--model", TINY, "--saliency", "none", "--quality", "40",
                 "--encoder", "fast"]) == 0
    assert out.read_bytes() == fast.data


def test_a_model_without_a_fast_encoder_says_so(kodak_crop):
    with pytest.raises(SalcodecError, match="no fast encoder is installed for model 'tiny'"):
        codec.encode(kodak_crop, 40, model_name=TINY, encoder="fast")
    with pytest.raises(SalcodecError, match="unknown encoder 'quick'"):
        codec.encode(kodak_crop, 40, model_name=TINY, encoder="quick")


def test_eval_reads_encoder_and_decoder_specs():
    from salcodec.eval.run import parse_entries
    fast_both, fast_encoder = parse_entries(["default-v4^fast@fast", "default-v4^fast"], [], "none")
    assert (fast_both.label, fast_both.encoder, fast_both.decoder) == ("default-v4^fast@fast:none", "fast", "fast")
    assert (fast_encoder.encoder, fast_encoder.decoder) == ("fast", "mse")
    with pytest.raises(SalcodecError, match="unknown encoder 'slow'"):
        parse_entries(["default-v4^slow"], [], "none")
