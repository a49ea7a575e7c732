"""A tiny end-to-end run of experiments/diffusion_mbir.py (P30); slow because of UNet/sampler compiles."""
import copy
import json
from types import SimpleNamespace

import pytest
from tqdm import tqdm

import experiments.diffusion_mbir as exp


@pytest.mark.slow
def test_tiny_run_reports_every_arm_and_plane(tmp_path):
    config = copy.deepcopy(exp.PRESETS["smoke"])
    config.update(shape=[8, 16, 16], n_train=2, n_test=1, n_ood=1, train_steps=3, num_steps=2, tv_outer=2, tv_cg=2,
                  views=[4], seeds=[0])
    ctx = SimpleNamespace(seed=0, progress=lambda **k: tqdm(disable=True, **k), log=lambda m: None,
                          save_figure=lambda fig, name: fig.savefig(tmp_path / name))
    res = exp.run(config, ctx)
    assert (tmp_path / "diffusion_mbir.png").stat().st_size > 0
    json.dumps(res)
    arms = res["summary"]["in_4"]
    assert set(arms) == set(exp.ARMS)
    assert {"psnr", "psnr_axial", "psnr_coronal", "psnr_sagittal"} <= set(arms["mbir"])
    assert arms["mbir"]["psnr"]["n"] == 1
    text = exp.summarize({"metrics": res, "config": config})
    assert "|" not in text and "\n" not in text
