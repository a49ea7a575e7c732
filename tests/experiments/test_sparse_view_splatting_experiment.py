"""sparse_view_splatting experiment: tiny runs give every arm, finite metrics, the gains and the figure."""
import math

import pytest

from experiments import sparse_view_splatting as svs
from experiments.runner import RunContext

_TINY = {**svs.PRESETS["smoke"], "size": 8, "n_views": 2, "n_test": 2, "n_init": 20, "steps": 2, "steps2": 1,
         "rounds": 1, "n_virtual": 2, "repair_steps": 2, "ddpm_steps": 2, "ddpm_channels": [4, 8], "pr_per_pair": 2,
         "seeds": [0]}


def _check(out, arms, tmp_path):
    assert set(out["variants"]) == set(arms)
    for arm in arms:
        r = out["variants"][arm]
        assert all(math.isfinite(r[k][0]) for k in ("psnr", "ssim", "depth_mae", "final_loss"))
        assert 0 < r["n_gaussians"][0] <= 20
    assert all(math.isfinite(v) for v in out["baseline"]["psnr"])
    assert (tmp_path / "sparse_view_splatting.png").exists() or any(tmp_path.rglob("sparse_view_splatting.png"))
    assert "mean-colour baseline" in svs.summarize({"metrics": out})


def test_sparse_view_splatting_tiny_run_lpr(tmp_path):
    """Default sibling of the slow all-arms run: one arm (L_pr path, no DDPM), through run()."""
    out = svs.run({**_TINY, "arms": ["+L_pr"]}, RunContext("sparse_view_splatting", tmp_path, 0, quiet=True))
    _check(out, ["+L_pr"], tmp_path)
    assert out["gains"] == {} and out["ddpm_final_loss"] == []


@pytest.mark.slow
def test_sparse_view_splatting_tiny_run_all_arms(tmp_path):
    out = svs.run(dict(_TINY), RunContext("sparse_view_splatting", tmp_path, 0, quiet=True))
    _check(out, svs.ARMS, tmp_path)
    assert set(out["gains"]) == {"+depth", "+normal", "+L_pr", "+refine", "dn+dist"}
    assert set(out["claims"]) == {"each_prior_helps", "dn_dist_help"}


def test_bad_arm_rejected(tmp_path):
    with pytest.raises(ValueError, match="arms"):
        svs.run({**_TINY, "arms": ["nope"]}, RunContext("sparse_view_splatting", tmp_path, 0, quiet=True))
