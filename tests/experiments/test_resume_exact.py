"""Exact resume: SIGKILL an experiment at a few points, resume it, and compare every non-wall-clock
metric with an uninterrupted run bit for bit (issue #12).

Each case runs ``python -m experiments run NAME`` in a subprocess (its own process group):
1. an uninterrupted reference run;
2. a run killed right after its first checkpoint is committed;
3. ``--resume``, killed once a second checkpoint directory (a second method, model or group)
   holds a checkpoint, i.e. after one method has finished (for experiments with a single
   checkpointed loop: once a later checkpoint of it is committed);
4. ``--resume`` to the end.
The results.json metrics of 4 must equal those of 1 exactly, wall-clock fields left out.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments import runner

ROOT = Path(__file__).resolve().parents[2]
WALL_CLOCK = re.compile(r"(second|time|_ms|ms_|wall|per_sec|throughput|speedup|_s$)")

CASES = {
    "random_pruning": ['models=["mlp"]', "widths=[1]", "sparsities=[0.5]", 'distributions=["uniform","erk"]',
                       "steps=60", "checkpoint_every=20", "batch_size=32"],
    "affine_digits": ["epochs=2", "batch_size=256", "num_samples=4", "channels=[4,4]", "kernel_hidden=8",
                      'models=["gl2","cnn"]', "magnitudes=[0.0,1.0]", "checkpoint_every=2"],
    "gqsa": ["d_model=32", "n_layers=1", "n_heads=2", "seq_len=16", "n_sentences=300", "train_steps=40",
             "batch_size=8", "calib_windows=16", "bqpo_steps=2", "e2e_steps=2", 'methods=["gqsa","nm24"]',
             "checkpoint_every=10"],
    "group_sparsity": ["dense_steps=60", "finetune_steps=30", "sparsities=[0.5]", "group_sizes=[8]", "hidden=[32]",
                       "checkpoint_every=10"],
    "hspace_directions": ["train_steps=40", "ckpt_every=10", "num_samples=24", "num_inverted=12", "num_examples=4",
                          "num_edit=3", "num_alphas=3", "num_pcs=2", "jacobian_images=1", "jacobian_vectors=1",
                          "jacobian_iters=2", "ddim_steps=3", "num_train=64", "channels=[4]", "time_dim=4",
                          "batch_size=16"],
    "nm_gradient_flow": ['tasks=["vit"]', 'patterns=["2:4","1:8"]', 'methods=["srste","mask_decay_linear"]', "steps=40",
                         "batch_size=16", "d_model=8", "n_layers=1", "n_heads=2", "checkpoint_every=10"],
    "ponita_nbody": ["n_train=16", "n_val=0", "n_test=16", "steps=6", "batch_size=8", "warmup=1", "ponita_hidden=8",
                     "ponita_layers=1", "num_ori=4", "basis_dim=8", "egnn_hidden=8", "egnn_layers=1",
                     "e3nn_hidden=4", "e3nn_layers=1", "checkpoint_every=2"],
    "ponita_energy_forces": ["n_train=8", "n_test=8", "n_atoms=5", "equilibrate=100", "steps=4", "batch_size=4",
                             "warmup=1", 'models=["ponita","egnn"]', "ponita_hidden=8", "ponita_layers=1",
                             "num_ori=4", "egnn_hidden=8", "egnn_layers=1", "checkpoint_every=1"],
    "ponita_rotated_digits": ["steps=4", "batch_size=8", "warmup=1", "n_test=16", "hidden=4", "layers=1",
                              "num_ori=4", "checkpoint_every=1"],
    "sparse_ift": ['models=["mlp"]', 'families=["doped","wide"]', "sparsities=[0.75]", "steps=40", "update_every=10",
                   "mlp_hidden=[16,16]", "seeds=[0]", "batch_size=16", "checkpoint_every=10"],
    "spe_substructure_counting": ["n_train=32", "n_test=16", "hidden=8", "pe_dim=4", "num_layers=1", "k_eig=7",
                                  'methods=["none","lap"]', "steps=40", "ckpt_every=10", "batch_size=8"],
    "spe_ood_stability": ["n_train=32", "n_test=16", "hidden=8", "pe_dim=4", "num_layers=1",
                          'methods=["none","spe"]', "large_n_min=9", "large_n_max=10", "perturb_fracs=[0.2]",
                          "steps=40", "ckpt_every=10", "batch_size=8"],
    "latent_spectral_pde": ['models=["fno","unet"]', 'benchmarks=["darcy"]', "steps=20", "ckpt_every=5",
                            "batch_size=4", "width=4", "fno_width=4", "fno_modes=2", "fno_depth=1",
                            "darcy_resolutions=[12]", "darcy_resolution=12", "darcy_train=8", "darcy_test=4",
                            "darcy_fno_padding=2"],
    "slicegpt": ["pretrain_steps=20", "batch_size=8", "pretrain_sentences=300", "eval_sentences=60", "sparsities=[0.25]",
                 'rotations=["pca","none"]', "rft_sparsities=[0.25]", "rft_steps=40", "calibration_windows=16"],
    "s2ft": ["pretrain_steps=20", "batch_size=8", "finetune_steps=3", "pretrain_sentences=300", "finetune_sentences=60",
             "eval_sentences=60", "lr_grid=[0.01]", "seeds=[0]", 'methods=["s2ft_random","lora"]'],
    "flora": ["pretrain_steps=20", "finetune_steps=3", "lr_grid=[0.003]", "seeds=[0]", "flora_ranks=[2]",
              'tasks=["digits_5_9"]'],
}
DEFAULT = {"random_pruning"}
# one checkpointed loop only (the rest of the run is evaluation): the second kill comes after a
# later checkpoint of that loop instead of after a second method's first one
SINGLE_LOOP = {"gqsa", "hspace_directions"}


def _committed_steps(out: Path) -> dict[str, list[int]]:
    """``{tag: [steps]}`` of the committed (renamed, not temporary) orbax step folders."""
    root = out / "checkpoints"
    if not root.is_dir():
        return {}
    found = {}
    for tag in root.iterdir():
        steps = [int(p.name) for p in tag.iterdir() if p.is_dir() and p.name.isdigit()] if tag.is_dir() else []
        if steps:
            found[tag.name] = steps
    return found


def _command(name, out, overrides, resume=False):
    cmd = [sys.executable, "-m", "experiments", "run", name, "--out", str(out), "--quiet", "--tracker", "none"]
    for item in overrides:
        cmd += ["--set", item]
    return cmd + (["--resume"] if resume else [])


_CACHE = {}


def _env():
    # a persistent compilation cache shared by the runs of a case halves their CPU time
    return {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", **_CACHE}


@pytest.fixture(autouse=True, scope="module")
def _compilation_cache(tmp_path_factory):
    _CACHE.update(JAX_COMPILATION_CACHE_DIR=str(tmp_path_factory.mktemp("jax_cache")),
                  JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    yield
    _CACHE.clear()


def _run(cmd, cwd):
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _run_and_kill(cmd, cwd, out, condition, what):
    """Start ``cmd``; SIGKILL its process group as soon as ``condition(out)`` holds."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 1800
    while not condition(out):
        if proc.poll() is not None:
            err = proc.stderr.read().decode()[-2000:]
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}; make the config larger. {err}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def _comparable(obj):
    if isinstance(obj, dict):
        return {k: _comparable(v) for k, v in obj.items() if not WALL_CLOCK.search(k)}
    if isinstance(obj, list):
        return [_comparable(v) for v in obj]
    return obj


def _metrics(out):
    return _comparable(json.loads((out / "results.json").read_text())["metrics"])


def check_exact_resume(name, tmp_path):
    overrides = CASES[name]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    _run(_command(name, reference, overrides), tmp_path)
    _run_and_kill(_command(name, killed, overrides), tmp_path, killed, lambda o: bool(_committed_steps(o)),
                  "the first checkpoint")
    assert not (killed / "results.json").exists()
    if name in SINGLE_LOOP:
        first = max(max(v) for v in _committed_steps(killed).values())
        second = (lambda o: max((max(v) for v in _committed_steps(o).values()), default=0) > first,
                  "a later checkpoint")
    else:
        second = (lambda o: len(_committed_steps(o)) >= 2, "a second method's checkpoint")
    _run_and_kill(_command(name, killed, overrides, resume=True), tmp_path, killed, *second)
    _run(_command(name, killed, overrides, resume=True), tmp_path)
    assert _metrics(killed) == _metrics(reference)
    return reference, killed


def _param(name):
    marks = [] if name in DEFAULT else [pytest.mark.slow]
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [_param(n) for n in CASES])
def test_kill_and_resume_is_bit_identical(name, tmp_path):
    reference, killed = check_exact_resume(name, tmp_path)
    if name == "random_pruning":
        # the stale-checkpoint fault of the review: a fresh run into a directory holding another
        # run's checkpoints refuses (it used to restore them silently), and so does a resume with
        # another config
        with pytest.raises(runner.UsageError, match="already holds a run"):
            runner.run_experiment(name, out=killed, overrides=CASES[name] + ["learning_rate=0.03"], quiet=True)
        with pytest.raises(runner.UsageError, match=r"config or seed differ .*\(learning_rate\)"):
            runner.run_experiment(name, out=killed, overrides=CASES[name] + ["learning_rate=0.03"], quiet=True,
                                  resume=True)


def test_every_checkpointing_experiment_has_a_resume_case():
    # an experiment checkpoints if it asks the runner for a checkpoint directory, or imports a
    # trainer from one that does (spe_ood_stability trains with spe_substructure_counting's)
    sources = {p.stem: p.read_text() for p in (ROOT / "experiments").glob("*.py") if p.stem != "runner"}
    uses_checkpoints = {name for name, text in sources.items() if "checkpoint_dir(" in text}
    grown = True
    while grown:
        more = {name for name, text in sources.items() if name not in uses_checkpoints
                and any(re.search(rf"^from experiments\.{dep} import", text, re.M) for dep in uses_checkpoints)}
        uses_checkpoints |= more
        grown = bool(more)
    assert "spe_ood_stability" in uses_checkpoints
    assert uses_checkpoints <= set(CASES), f"add a tiny resume config for {sorted(uses_checkpoints - set(CASES))}"
