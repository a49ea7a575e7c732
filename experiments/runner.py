"""Discovery, configuration and bookkeeping for ``python -m experiments``.

``list`` prints every experiment with its one-line description; ``run NAME`` merges the preset
with ``--set key=value`` overrides, creates the run directory (``runs/NAME/<timestamp>/`` by
default) and writes ``config.json`` and ``results.json`` (config, metrics, wall time, versions,
seed, git commit, machine); ``--record`` also writes the small committed summary
``results/NAME/PRESET.json`` and ``report`` regenerates the README paper table from those records
(:mod:`experiments.papers`). ``--resume`` reuses the newest run directory of NAME (or ``--out``) so that training
loops can continue from their orbax checkpoints (see :mod:`sparsejax.train.checkpoint`).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import importlib
import json
import os
import pkgutil
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

import experiments

PRESET_NAMES = ("smoke", "full")


def available() -> dict[str, str]:
    """Return ``{name: one-line description}`` for every experiment module."""
    found = {}
    for info in pkgutil.iter_modules(experiments.__path__):
        if info.name.startswith("_") or info.name in ("runner", "papers"):
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


_PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "chex", "ott-jax", "e3nn-jax", "numpy",
             "scipy", "scikit-learn", "networkx", "matplotlib", "sparsejax")


def _versions() -> dict[str, Any]:
    """Python and package versions, plus the JAX backend and devices (kept for older readers)."""
    from importlib import metadata

    import jax

    versions: dict[str, Any] = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    versions["backend"] = jax.default_backend()
    versions["devices"] = [str(d) for d in jax.devices()]
    return versions


def machine_info() -> dict[str, Any]:
    """CPU count, platform, JAX backend and devices of this machine."""
    import jax

    devices = jax.devices()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind if devices else None,
        "device_count": len(devices),
        "devices": [str(d) for d in devices],
    }


REPO_ROOT = Path(__file__).resolve().parent.parent


def git_info(root: Path = REPO_ROOT) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the repository holding the code that ran.

    ``dirty`` is true when tracked files differ from the commit (untracked files do not count).
    """
    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": None, "dirty": None}
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def write_json_atomic(path: str | Path, obj: Any, *, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically: a temporary file in the same folder, then rename.

    A reader never sees a half-written file, and a crash leaves either the old or the new file.
    """
    path = Path(path)
    text = json.dumps(obj, indent=indent, allow_nan=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


MAX_LIST = 32


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _numeric_leaves(v: Any) -> list | None:
    """The numbers of a (nested) list of numbers, or ``None`` if anything else is inside."""
    if _is_number(v):
        return [v]
    if isinstance(v, list):
        out = []
        for item in v:
            leaves = _numeric_leaves(item)
            if leaves is None:
                return None
            out.extend(leaves)
        return out
    return None


def _shape(v: Any) -> list[int]:
    shape = []
    while isinstance(v, list):
        shape.append(len(v))
        v = v[0] if v else None
    return shape


def compact(obj: Any, max_list: int = MAX_LIST) -> Any:
    """Shrink a JSON-able results dict for ``results/``: long numeric lists become summaries.

    A flat list of more than ``max_list`` numbers (a curve) becomes ``{"len", "first", "last",
    "min", "max"}``; a nested numeric list (an array) of more than ``max_list`` numbers becomes
    ``{"shape", "min", "max", "mean"}``. Everything else (dicts, rows of dicts, strings, short lists)
    is kept, compacted recursively.
    """
    if isinstance(obj, dict):
        return {k: compact(v, max_list) for k, v in obj.items()}
    if isinstance(obj, list):
        leaves = _numeric_leaves(obj)
        if leaves is not None and len(leaves) > max_list:
            if all(_is_number(v) for v in obj):
                return {"len": len(obj), "first": obj[0], "last": obj[-1], "min": min(obj), "max": max(obj)}
            return {"shape": _shape(obj), "min": min(leaves), "max": max(leaves),
                    "mean": sum(leaves) / len(leaves)}
        return [compact(v, max_list) for v in obj]
    return obj


def default_results_dir() -> Path:
    """Where ``--record`` writes: ``$SPARSEJAX_RESULTS_DIR`` or ``<repo>/results``."""
    return Path(os.environ.get("SPARSEJAX_RESULTS_DIR", REPO_ROOT / "results"))


def record_path(name: str, preset: str, results_dir: str | Path | None = None) -> Path:
    """``results/NAME/PRESET.json``."""
    return Path(results_dir if results_dir is not None else default_results_dir()) / name / f"{preset}.json"


def make_record(results: dict) -> dict:
    """The small committed summary of a finished run (see :func:`compact`)."""
    keep = ("experiment", "preset", "seed", "config", "metrics", "wall_time_s", "date", "git", "versions", "machine")
    return compact({k: results[k] for k in keep if k in results})


def write_record(module, results: dict, results_dir: str | Path | None = None) -> Path:
    """Write ``results/NAME/PRESET.json`` atomically and check the module's ``summarize`` accepts it."""
    record = make_record(results)
    path = record_path(results["experiment"], results["preset"], results_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, record, indent=1)
    from experiments.papers import summary_cell

    try:
        summary_cell(module, record)
    except ValueError as err:  # the record is kept: the compute is not lost, summarize can be fixed
        print(f"warning: {err}", file=sys.stderr)
    return path


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
    record: bool = False,
    results_dir: str | Path | None = None,
) -> dict:
    """Run experiment ``name`` and return the dict written to ``results.json``.

    With ``record``, also write the small summary ``results/NAME/PRESET.json`` (see
    :func:`write_record`; ``results_dir`` overrides ``results/``).
    """
    module = load(name)
    config = make_config(module, preset, overrides)
    out_dir = _resolve_out_dir(name, None if out is None else str(out), resume)
    out_dir.mkdir(parents=True, exist_ok=True)
    if resume and (out_dir / "config.json").exists():
        saved = json.loads((out_dir / "config.json").read_text())
        if saved.get("config") != config or saved.get("seed") != seed:
            raise ValueError(f"--resume: config or seed differ from the run in {out_dir}")
    meta = {"experiment": name, "preset": preset, "seed": seed, "config": config}
    write_json_atomic(out_dir / "config.json", _to_jsonable(meta))
    ctx = RunContext(name=name, out_dir=out_dir, seed=seed, resume=resume, quiet=quiet)
    git = git_info()
    start = time.perf_counter()
    metrics = module.run(config, ctx)
    wall = time.perf_counter() - start
    results = {
        **meta,
        "metrics": metrics,
        "wall_time_s": wall,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git": git,
        "versions": _versions(),
        "machine": machine_info(),
        "out_dir": str(out_dir),
    }
    results = _to_jsonable(results)
    write_json_atomic(out_dir / "results.json", results)
    ctx.log(f"[{name}] done in {wall:.1f}s -> {out_dir}")
    if record:
        path = write_record(module, results, results_dir)
        ctx.log(f"[{name}] recorded -> {path}")
    return results


def report(readme: str | Path | None = None, results_dir: str | Path | None = None, *, check: bool = False,
           modules: dict | None = None) -> int:
    """Regenerate the README paper table; with ``check`` only compare and return 1 if it is stale.

    ``modules`` (``{name: module}``, default: every experiment) is for tests.
    """
    from experiments import papers

    readme = Path(readme) if readme is not None else REPO_ROOT / "README.md"
    results_dir = Path(results_dir) if results_dir is not None else default_results_dir()
    if modules is None:
        modules = {name: load(name) for name in available()}
    missing = sorted(n for n, m in modules.items() if not papers.follows_contract(m))
    if missing:
        print(f"note: without PAPERS/CLAIM/summarize (left out of the table): {', '.join(missing)}", file=sys.stderr)
    orphans = sorted(p.name for p in results_dir.glob("*") if p.is_dir() and p.name not in modules)
    if orphans:
        print(f"note: records for unknown experiments ignored: {', '.join(orphans)}", file=sys.stderr)
    old = readme.read_text()
    new = papers.update_readme(old, papers.render_table(modules, results_dir))
    if check:
        if new == old:
            print(f"{readme}: paper table is up to date")
            return 0
        import difflib

        diff = difflib.unified_diff(old.splitlines(), new.splitlines(), f"{readme} (committed)",
                                    f"{readme} (generated)", lineterm="", n=0)
        print("\n".join(list(diff)[:60]))
        print(f"{readme}: paper table is out of date; run `python -m experiments report`", file=sys.stderr)
        return 1
    if new != old:
        tmp = readme.with_name(f".{readme.name}.tmp")
        tmp.write_text(new)
        os.replace(tmp, readme)
        print(f"{readme}: paper table regenerated")
    else:
        print(f"{readme}: paper table already up to date")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and dispatch ``list`` / ``run`` / ``report``."""
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
    run_p.add_argument("--record", action="store_true", help="also write results/NAME/PRESET.json (committed)")
    run_p.add_argument("--results-dir", default=None, help="where --record writes (default <repo>/results)")
    rep_p = sub.add_parser("report", help="regenerate the README paper table from results/ and the modules")
    rep_p.add_argument("--check", action="store_true", help="exit 1 if the README table is out of date")
    rep_p.add_argument("--readme", default=None, help="README to update (default <repo>/README.md)")
    rep_p.add_argument("--results-dir", default=None, help="records to read (default <repo>/results)")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name, description in available().items():
            print(f"{name:32s} {description}")
        return 0
    if args.command == "report":
        try:
            return report(args.readme, args.results_dir, check=args.check)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    try:
        run_experiment(
            args.name, args.preset, seed=args.seed, out=args.out,
            overrides=args.overrides, resume=args.resume, quiet=args.quiet,
            record=args.record, results_dir=args.results_dir,
        )
    except ValueError as err:
        parser.error(str(err))
    return 0
