"""Compatible representations (P42): the d-simplex fixed classifier, the HOC loss, compatibility metrics
and class-incremental training with model replacement."""
from geometry.compat.hoc import LAMBDA, MU, hoc_loss, hoc_objective
from geometry.compat.metrics import (
    average_compatibility, average_multimodel_accuracy, compatibility_matrix, empirical_compatibility,
    identification_accuracy, pairwise_compatibility,
)
from geometry.compat.simplex import dsimplex, simplex_logits, vertex_labels
from geometry.compat.training import CompatNet, make_compat_step, rehearsal_memory, train_task

__all__ = [
    "LAMBDA", "MU", "hoc_loss", "hoc_objective",
    "average_compatibility", "average_multimodel_accuracy", "compatibility_matrix", "empirical_compatibility",
    "identification_accuracy", "pairwise_compatibility",
    "dsimplex", "simplex_logits", "vertex_labels",
    "CompatNet", "make_compat_step", "rehearsal_memory", "train_task",
]
