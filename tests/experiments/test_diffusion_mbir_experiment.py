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
    assert set(arms) == set(exp.ARMS) | {"mbir_minus_slicewise"}
    assert {"psnr", "psnr_axial", "psnr_coronal", "psnr_sagittal"} <= set(arms["mbir"])
    assert arms["mbir"]["psnr"]["n"] == 1
    text = exp.summarize({"metrics": res, "config": config})
    assert "|" not in text and "\n" not in text


def test_summarize_rows_averages_volumes_per_seed_then_seeds():
    """Seed 0 has two volumes (psnr 10 and 14 -> 12), seed 1 one (16): mean 14, std 2; the paired
    mbir - slicewise difference is the per-seed difference (1 and 3 -> 2 ± 1)."""
    def row(seed, vol, base, delta):
        r = {"views": 4, "family": "in", "volume": vol, "seed": seed}
        for arm in exp.ARMS:
            r[arm] = {"psnr": base, "psnr_axial": base}
        r["mbir"] = {"psnr": base + delta, "psnr_axial": base + delta}
        return r

    s = exp.summarize_rows([row(0, 0, 10.0, 1.0), row(0, 1, 14.0, 1.0), row(1, 0, 16.0, 3.0)])["in_4"]
    assert s["slicewise"]["psnr"] == {"mean": 14.0, "std": 2.0, "n": 2}
    assert s["mbir_minus_slicewise"]["psnr_axial"] == {"mean": 2.0, "std": 1.0, "n": 2}
