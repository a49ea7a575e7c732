"""Pure jitted train/eval steps, data parallelism over local devices, resumable loops."""
from sparsejax.train.checkpoint import LoopCheckpointer
from sparsejax.train.loop import fit
from sparsejax.train.steps import (
    BNTrainState,
    TrainState,
    accuracy,
    cross_entropy_loss,
    data_mesh,
    evaluate,
    make_bn_eval_step,
    make_bn_train_step,
    make_eval_step,
    make_train_step,
    replicate_on_mesh,
    shard_batch,
)

__all__ = [
    "TrainState", "make_train_step", "make_eval_step", "evaluate", "cross_entropy_loss", "accuracy",
    "data_mesh", "shard_batch", "replicate_on_mesh", "LoopCheckpointer", "fit",
    "BNTrainState", "make_bn_train_step", "make_bn_eval_step",
]
