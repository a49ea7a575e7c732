"""Discovery, configuration and bookkeeping for ``python -m experiments``.

``list`` prints every experiment with its one-line description; ``run NAME`` merges the preset
with ``--set key=value`` overrides, creates the run directory (``runs/NAME/<timestamp>/`` by
default) and writes ``config.json`` and ``results.json`` (config, metrics, wall time, versions,
seed). ``--resume`` reuses the newest run directory of NAME (or ``--out``) so that training
loops can continue from their orbax checkpoints (see :mod:`sparsejax.train.checkpoint`).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import importlib
import json
import pkgutil
import platform
import time
from pathlib import Path
from typing import Any, Iterable

import experiments

PRESET_NAMES = ("smoke", "full")


def available() -> dict[str, str]:
    """Return ``{name: one-line description}`` for every experiment module."""
    found = {}
    for info in pkgutil.iter_modules(experiments.__path__):
        if info.name.startswith("_") or info.name in ("runner",):
            continue
        module = importlib.import_module(f"experiments.{info.name}")
        if hasattr(module, "run") and hasattr(module, "PRESETS"):
            doc = (module.__doc__ or "").strip().splitlines()
            found[info.name] = doc[0] if doc else ""
    return dict(sorted(found.items()))


def load(name: str):
    """Import the experiment module ``name``; raise ``ValueError`` listing valid names."""
    names = available()
    if name not in names:
        raise ValueError(f"unknown experiment {name!r}; valid experiments: {', '.join(names)}")
    return importlib.import_module(f"experiments.{name}")


def _parse_value(text: str, like: Any) -> Any:
    """Parse ``text`` as JSON (falling back to the raw string), checking it against ``like``."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    if isinstance(like, bool) and not isinstance(value, bool):
        raise ValueError(f"expected true/false, got {text!r}")
    if isinstance(like, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(like, (list, tuple)) and not isinstance(value, list):
        value = [value]
    return value


def make_config(module, preset: str = "smoke", overrides: Iterable[str] = ()) -> dict:
    """Preset config of ``module`` with ``key=value`` overrides applied (values parsed as JSON)."""
    presets = module.PRESETS
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r}; valid presets: {', '.join(presets)}")
    config = json.loads(json.dumps(presets[preset]))
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        if key not in config:
            raise ValueError(f"unknown config key {key!r}; valid keys: {', '.join(sorted(config))}")
        config[key] = _parse_value(text, config[key])
    return config


@dataclasses.dataclass
class RunContext:
    """What an experiment's ``run`` gets besides its config: where to write, seed, resume flag."""

    name: str
    out_dir: Path
    seed: int
    resume: bool = False
    quiet: bool = False

    def checkpoint_dir(self, tag: str = "main") -> Path:
        """Directory for the orbax checkpoints of the training loop ``tag``."""
        return self.out_dir / "checkpoints" / tag

    def save_figure(self, fig, filename: str) -> Path:
        """Save a matplotlib figure as ``out_dir/filename`` and close it."""
        import matplotlib.pyplot as plt

        path = self.out_dir / filename
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        return path

    def progress(self, iterable=None, **kwargs):
        """A tqdm progress bar (silenced with ``quiet``)."""
        from tqdm.auto import tqdm

        return tqdm(iterable, disable=self.quiet, dynamic_ncols=True, **kwargs)

    def log(self, message: str) -> None:
        """Print a line unless ``quiet``."""
        if not self.quiet:
            print(message, flush=True)


def _versions() -> dict[str, str]:
    import flax
    import jax
    import optax

    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
    }


def _to_jsonable(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):
        return _to_jsonable(np.asarray(obj).tolist())
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return str(obj)
    return obj


def _resolve_out_dir(name: str, out: str | None, resume: bool) -> Path:
    if out is not None:
        return Path(out)
    root = Path("runs") / name
    if resume:
        previous = sorted(p for p in root.glob("*") if p.is_dir()) if root.exists() else []
        if not previous:
            raise ValueError(f"--resume: no earlier run of {name!r} under {root}")
        return previous[-1]
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return root / stamp


def run_experiment(
    name: str,
    preset: str = "smoke",
    *,
    seed: int = 0,
    out: str | Path | None = None,
    overrides: Iterable[str] = (),
    resume: bool = False,
    quiet: bool = False,
) -> dict:
    """Run experiment ``name`` and return the dict written to ``results.json``."""
    module = load(name)
    config = make_config(module, preset, overrides)
    out_dir = _resolve_out_dir(name, None if out is None else str(out), resume)
    out_dir.mkdir(parents=True, exist_ok=True)
    if resume and (out_dir / "config.json").exists():
        saved = json.loads((out_dir / "config.json").read_text())
        if saved.get("config") != config or saved.get("seed") != seed:
            raise ValueError(f"--resume: config or seed differ from the run in {out_dir}")
    meta = {"experiment": name, "preset": preset, "seed": seed, "config": config}
    (out_dir / "config.json").write_text(json.dumps(_to_jsonable(meta), indent=2))
    ctx = RunContext(name=name, out_dir=out_dir, seed=seed, resume=resume, quiet=quiet)
    start = time.perf_counter()
    metrics = module.run(config, ctx)
    wall = time.perf_counter() - start
    results = {
        **meta,
        "metrics": metrics,
        "wall_time_s": wall,
        "versions": _versions(),
        "finished": _dt.datetime.now().isoformat(timespec="seconds"),
        "out_dir": str(out_dir),
    }
    results = _to_jsonable(results)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    ctx.log(f"[{name}] done in {wall:.1f}s -> {out_dir}")
    return results


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and dispatch ``list`` / ``run``."""
    parser = argparse.ArgumentParser(prog="python -m experiments", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list every experiment with a one-line description")
    run_p = sub.add_parser("run", help="run one experiment")
    run_p.add_argument("name")
    run_p.add_argument("--preset", default="smoke")
    run_p.add_argument("--seed", type=int, default=0)
    run_p.add_argument("--out", default=None, help="run directory (default runs/NAME/<timestamp>)")
    run_p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    run_p.add_argument("--resume", action="store_true", help="continue the newest (or --out) run")
    run_p.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name, description in available().items():
            print(f"{name:32s} {description}")
        return 0
    try:
        run_experiment(
            args.name, args.preset, seed=args.seed, out=args.out,
            overrides=args.overrides, resume=args.resume, quiet=args.quiet,
        )
    except ValueError as err:
        parser.error(str(err))
    return 0
