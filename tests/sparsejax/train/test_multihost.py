"""Multi-host training on one machine: 2 CPU processes over loopback (gloo collectives) train the same
data-parallel model as one process, each loading only its rows; a checkpoint saved by one 2-process run
is restored by another, which continues to the single-process result."""
import pytest

from sparsejax.train.distributed import initialize_from_env
from sparsejax.train.multihost_check import run_processes, train


def _close(a, b):
    return all(abs(x - y) < 1e-6 for k in ("w", "b") for x, y in zip(a[k], b[k]))


@pytest.mark.slow
def test_two_processes_match_one_and_checkpoint_round_trips(tmp_path):
    saved = run_processes(2, 6, str(tmp_path / "ckpt"), "save")
    assert saved["processes"] == 2 and saved["devices"] == 4
    assert _close(saved, train(6))
    resumed = run_processes(2, 10, str(tmp_path / "ckpt"), "restore")
    assert resumed["start"] == 6  # restored from the other run's step-6 checkpoint
    assert _close(resumed, train(10))


def test_initialize_from_env_is_a_no_op_without_the_variables_and_loud_when_partial():
    assert initialize_from_env({}) is False
    with pytest.raises(ValueError, match=r"missing \['JAX_NUM_PROCESSES', 'JAX_PROCESS_ID'\]"):
        initialize_from_env({"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1234"})


@pytest.mark.slow
def test_fssdp_step_across_two_processes_matches_one_device(tmp_path):
    out = run_processes(2, 20, str(tmp_path), "fssdp", devices_per_process=4)
    assert out["processes"] == 2 and out["devices"] == 8
    assert out["expert_max_diff"] < 1e-5 and out["rest_max_diff"] < 1e-5 and out["loss_max_diff"] < 1e-5
