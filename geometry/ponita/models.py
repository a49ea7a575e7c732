"""One constructor for PΘNITA and its baselines, so experiments swap models by name."""
from __future__ import annotations

from geometry.ponita.baselines import EGNN, TensorProductNet
from geometry.ponita.model import Ponita

MODELS = {"ponita": Ponita, "egnn": EGNN, "e3nn": TensorProductNet}


def make_model(name: str, **kwargs):
    """Instantiate ``ponita`` / ``egnn`` / ``e3nn`` with keyword settings (unknown keys raise)."""
    if name not in MODELS:
        raise ValueError(f"unknown model name {name!r}; valid: {', '.join(MODELS)}")
    cls = MODELS[name]
    fields = set(cls.__dataclass_fields__) - {"parent", "name"}
    unknown = set(kwargs) - fields
    if unknown:
        raise ValueError(f"{name} has no settings {sorted(unknown)}; valid: {sorted(fields)}")
    return cls(**kwargs)


