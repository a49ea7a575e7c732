"""Discovery, configuration and bookkeeping for ``python -m experiments``.

``list`` prints every experiment with its one-line description; ``run NAME`` merges the preset
with ``--set key=value`` overrides, creates the run directory (``runs/NAME/<timestamp>/`` by
default) and writes ``config.json`` and ``results.json`` (config, metrics, wall time, versions,
seed, git commit, machine); ``--record`` also writes the small committed summary
``results/NAME/PRESET.json`` and ``report`` regenerates the README paper table from those records
(:mod:`experiments.papers`). ``--resume`` reuses the newest run directory of NAME (or ``--out``) so that training
loops can continue from their orbax checkpoints (see :mod:`sparsejax.train.checkpoint`).

Several hosts (docs/multihost.md): ``run`` first calls
:func:`sparsejax.train.distributed.initialize_from_env`, which starts JAX's distributed runtime
when ``JAX_COORDINATOR_ADDRESS``/``JAX_NUM_PROCESSES``/``JAX_PROCESS_ID`` (or
``SPARSEJAX_DISTRIBUTED=auto``) are set and does nothing otherwise. Then process 0 alone resolves
the run directory, checks it (fresh or ``--resume``), takes the lock and tells the others the
outcome, so they never race on these checks; every process runs the experiment and takes part in
its orbax checkpoints; only process 0 writes ``config.json``, ``results.json``, the record, the
figures and the TensorBoard events, and prints.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import hashlib
import importlib
import json
import math
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


def _module_names() -> list[str]:
    """Names of the candidate experiment modules, without importing them."""
    return sorted(info.name for info in pkgutil.iter_modules(experiments.__path__)
                  if not info.name.startswith("_") and info.name not in ("runner", "papers"))


def _is_experiment(module) -> bool:
    return hasattr(module, "run") and hasattr(module, "PRESETS")


def available() -> dict[str, str]:
    """Return ``{name: one-line description}`` for every experiment module (imports them all)."""
    found = {}
    for name in _module_names():
        module = importlib.import_module(f"experiments.{name}")
        if _is_experiment(module):
            doc = (module.__doc__ or "").strip().splitlines()
            found[name] = doc[0] if doc else ""
    return found


class UsageError(ValueError):
    """A bad command line or config, found before anything runs (exit code 2, one-line message)."""


def load(name: str):
    """Import the experiment module ``name`` (only that one); raise :class:`UsageError` listing valid names."""
    if name in _module_names():
        module = importlib.import_module(f"experiments.{name}")
        if _is_experiment(module):
            return module
    raise UsageError(f"unknown experiment {name!r}; valid experiments: {', '.join(available())}")


def _kind(value: Any) -> str:
    if value is None:
        return "any"
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("str", str), ("list", (list, tuple)),
                        ("dict", dict)):
        if isinstance(value, types):
            return kind
    return "any"


def _merge_kinds(values: list) -> str:
    kinds = {_kind(v) for v in values} - {"any"}
    if kinds == {"int", "float"}:
        return "float"
    return kinds.pop() if len(kinds) == 1 else "any"


_EXPECTED = {"bool": "true or false", "int": "an int", "float": "a finite number", "str": "a string",
             "list": "a list", "dict": "a JSON object"}


def _numbers(values: list) -> list:
    out = []
    for v in values:
        if isinstance(v, (list, tuple)):
            out += _numbers(list(v))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(v)
    return out


def _check_value(key: str, value: Any, likes: list, text: str, ranges: dict) -> Any:
    """``value`` (parsed) checked against the preset values ``likes`` of ``key`` (one per preset)."""
    kind = _merge_kinds(likes)
    shown = text if len(text) <= 60 else text[:57] + "..."

    def bad(expected: str, why: str = "") -> UsageError:
        return UsageError(f"--set {key}: expected {expected}, got {shown!r}{why}")

    if kind == "any":
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind == "int" and not isinstance(value, int)):
            raise bad(_EXPECTED[kind])
        if not math.isfinite(value):
            raise bad(_EXPECTED[kind], " (not finite)")
        value = float(value) if kind == "float" else value
        lo, hi = ranges.get(key, (None, None)) if key in ranges else _inferred_range(kind, likes)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            span = f">= {lo}" if hi is None else (f"<= {hi}" if lo is None else f"in [{lo}, {hi}]")
            raise bad(f"{_EXPECTED[kind]} {span}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if kind == "list":
        if not isinstance(value, list):
            value = [value]  # a scalar for a list key means a one-element list
        if not value and all(len(v) for v in likes):
            raise bad("a non-empty list")
        elements = [e for v in likes for e in v]
        if not elements:
            return value
        inner = f"{key} (each element)"
        if key in ranges:
            ranges = {**ranges, inner: ranges[key]}  # a list key's range applies to its elements
        return [_check_value(inner, e, elements, json.dumps(e), ranges) for e in value]
    if kind == "dict":
        if not isinstance(value, dict):
            raise bad("a JSON object")
        return {k: _check_value(f"{key}.{k}", v, [like[k] for like in likes if k in like], json.dumps(v), ranges)
                if any(k in like for like in likes) else _unknown_key(f"{key}.{k}", likes[0])
                for k, v in value.items()}
    return value


def _unknown_key(key: str, config: dict):
    raise UsageError(f"unknown config key {key!r}; valid keys: {', '.join(sorted(config))}")


def _inferred_range(kind: str, likes: list) -> tuple:
    """Bounds inferred from the presets: a number that is >= 0 in every preset must stay >= 0 (a
    negative step count, batch size, rate or width is never meant). Nothing else is inferred, since
    0 or values above the presets' are often legitimate (``n_val=0``, ``weight_decay=0``); modules
    declare ``CONFIG_RANGES = {key: (lo, hi)}`` or a ``check_config(config)`` for the rest."""
    nums = _numbers(likes)
    if nums and min(nums) >= 0:
        return 0, None
    return None, None


def _parse_text(text: str, kind: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    if kind == "str" and not isinstance(value, str):
        return text  # a string key takes the text as it is (e.g. --set name=123)
    return value


def make_config(module, preset: str = "smoke", overrides: Iterable[str] = ()) -> dict:
    """Preset config of ``module`` with ``key=value`` overrides applied and checked.

    Values are parsed as JSON (a bare word is a string) and checked against the type the key has in
    the presets: int keys take only integers (not ``1.5``, ``true`` or ``abc``), float keys any
    finite number, bool keys ``true``/``false``, list keys a list (or one element) whose elements
    have the presets' element type, nested keys are dotted (``--set model.width=64``). Ranges: see
    :func:`_inferred_range` and the module's optional ``CONFIG_RANGES``. Finally the module's
    optional ``check_config(config)`` runs. Every problem raises :class:`UsageError` naming the key.
    """
    presets = module.PRESETS
    if preset not in presets:
        raise UsageError(f"unknown preset {preset!r}; valid presets: {', '.join(presets)}")
    config = json.loads(json.dumps(presets[preset]))
    ranges = dict(getattr(module, "CONFIG_RANGES", {}))
    for item in overrides:
        if "=" not in item:
            raise UsageError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        parts = key.split(".")
        node, likes = config, list(presets.values())
        for depth, part in enumerate(parts):
            if not isinstance(node, dict):
                raise UsageError(f"unknown config key {key!r}: {'.'.join(parts[:depth])} is not a nested config")
            if part not in node:
                where = ".".join(parts[:depth])
                valid = sorted(node) if isinstance(node, dict) else []
                raise UsageError(f"unknown config key {key!r}" + (f" ({where} has no {part!r})" if where else "")
                                 + f"; valid keys: {', '.join((where + '.' if where else '') + k for k in valid)}")
            likes = [like[part] for like in likes if isinstance(like, dict) and part in like]
            if depth < len(parts) - 1:
                node = node[part]
        value = _parse_text(text, _merge_kinds(likes))
        checked = _check_value(key, value, likes, text, ranges)
        if isinstance(checked, dict) and isinstance(node[parts[-1]], dict):
            checked = {**node[parts[-1]], **checked}  # a JSON object updates the nested config
        node[parts[-1]] = checked
    check = getattr(module, "check_config", None)
    if check is not None:
        try:
            check(config)
        except (ValueError, TypeError) as err:
            raise UsageError(f"invalid config: {err}") from err
    return config


@dataclasses.dataclass
class RunContext:
    """What an experiment's ``run`` gets besides its config: where to write, seed, resume flag."""

    name: str
    out_dir: Path
    seed: int
    resume: bool = False
    quiet: bool = False
    primary: bool = True  # process 0 of a multi-process run (or the only one): the one that writes files

    def checkpoint_dir(self, tag: str = "main") -> Path:
        """Directory for the orbax checkpoints of the training loop ``tag``."""
        return self.out_dir / "checkpoints" / tag

    def save_figure(self, fig, filename: str) -> Path:
        """Save a matplotlib figure as ``out_dir/filename`` and close it (other processes only close it)."""
        import matplotlib.pyplot as plt

        path = self.out_dir / filename
        if self.primary:
            fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        return path

    def barrier(self, tag: str) -> None:
        """Wait until every process of a multi-process run gets here (a no-op with one process)."""
        import jax

        if jax.process_count() > 1:
            from jax.experimental.multihost_utils import sync_global_devices

            sync_global_devices(tag)

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


def machine_info(hosts: int | None = None) -> dict[str, Any]:
    """CPU count, platform, JAX backend and devices of this machine, and the processes of the run.

    ``devices``/``device_count`` are global (every process's devices); ``hosts`` is the number of
    distinct host names among the processes (the runner gathers them; default 1 process = 1 host).
    """
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
        "process_count": jax.process_count(),
        "host_count": hosts if hosts is not None else jax.process_count(),
        "local_device_count": jax.local_device_count(),
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
        os.chmod(tmp, 0o644)
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
    keep = ("experiment", "preset", "seed", "config", "metrics", "wall_time_s", "date", "git", "versions", "machine",
            "allow_nonfinite")
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


class NonFiniteMetrics(FloatingPointError):
    """A run returned NaN/inf metrics; they are not written as results (``--allow-nonfinite`` keeps them)."""


def nonfinite_paths(obj: Any, path: str = "metrics") -> list[str]:
    """Paths (``metrics.rows[0].loss``) of the NaN/inf numbers (or ``"nan"``/``"inf"`` strings) in ``obj``."""
    import numpy as np

    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in nonfinite_paths(v, f"{path}.{k}")]
    if isinstance(obj, (list, tuple)):
        return [p for i, v in enumerate(obj) for p in nonfinite_paths(v, f"{path}[{i}]")]
    if hasattr(obj, "dtype") and hasattr(obj, "shape"):
        arr = np.asarray(obj)
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            return [path]
        return []
    if isinstance(obj, float) and not math.isfinite(obj):
        return [path]
    if isinstance(obj, str) and obj.strip().lower() in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity"):
        return [path]
    return []


def _resolve_out_dir(name: str, out: str | None, resume: bool) -> Path:
    if out is not None:
        return Path(out)
    root = Path("runs") / name
    if resume:
        previous = sorted(p for p in root.glob("*") if p.is_dir()) if root.exists() else []
        if not previous:
            raise UsageError(f"--resume: no earlier run of {name!r} under {root}")
        return previous[-1]
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return root / stamp


def _prepare_out_dir(out_dir: Path, resume: bool) -> None:
    """Create ``out_dir`` (or check the earlier run in it) before anything runs; one-line errors."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir}: exists and is not a directory")
    if resume:
        if not (out_dir / "config.json").exists():
            raise UsageError(f"--resume: no earlier run in {out_dir} (no config.json)")
    else:
        ckpts = out_dir / "checkpoints"
        if (out_dir / "config.json").exists() or (ckpts.is_dir() and any(ckpts.iterdir())):
            raise UsageError(f"--out {out_dir} already holds a run (config.json or checkpoints/); a fresh run never "
                             f"reuses it: pass --resume to continue that run, or choose an empty directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except (NotADirectoryError, FileExistsError):
        raise UsageError(f"--out {out_dir}: a parent path is a file, not a directory") from None
    except OSError as err:
        raise UsageError(f"--out {out_dir} cannot be created: {err.strerror or err}") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out_dir} is not writable")


class RunLock:
    """``out_dir/.lock`` holding ``host:pid``: a second run into the same directory refuses.

    A lock left by a killed run is stale (its pid is gone, same host) and is taken over.
    """

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / ".lock"
        self._held = False

    @staticmethod
    def _alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def acquire(self) -> "RunLock":
        me = f"{platform.node()}:{os.getpid()}"
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    host, _, pid = self.path.read_text().strip().rpartition(":")
                    pid = int(pid)
                except (OSError, ValueError):
                    host, pid = platform.node(), -1  # unreadable or half-written: treat as stale
                if host == platform.node() and pid != os.getpid() and (pid < 0 or not self._alive(pid)):
                    self.path.unlink(missing_ok=True)  # stale: the run that held it is gone
                    continue
                raise UsageError(f"{self.path.parent} is in use by another run ({host} pid {pid}); "
                                 f"wait for it or delete {self.path} if that run is gone")
            with os.fdopen(fd, "w") as fh:
                fh.write(me)
            self._held = True
            return self
        raise UsageError(f"could not take the lock {self.path}")

    def release(self) -> None:
        if self._held:
            self.path.unlink(missing_ok=True)
            self._held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


CODE_PACKAGES = ("sparsejax", "geometry", "generative", "experiments")


def source_hash(root: Path = REPO_ROOT) -> str:
    """SHA-256 (16 hex digits) of every ``.py`` file of the code packages, paths included.

    Unlike the git commit it changes with uncommitted edits and not with README or test commits.
    """
    digest = hashlib.sha256()
    for package in CODE_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def code_version() -> dict[str, Any]:
    """The code a run used, as fingerprinted: a hash of the package sources and the sparsejax version."""
    from importlib import metadata

    try:
        version = metadata.version("sparsejax")
    except metadata.PackageNotFoundError:
        version = None
    return {"source": source_hash(), "sparsejax": version}


def run_fingerprint(name: str, config: dict, seed: int, code: dict | None = None) -> dict:
    """What a run's checkpoints are stamped with: experiment, config, seed and code version."""
    return _to_jsonable({"experiment": name, "config": config, "seed": seed,
                         "code": code if code is not None else code_version()})


def start_distributed() -> bool:
    """Start JAX's distributed runtime from the environment, once; True when several processes run.

    :func:`sparsejax.train.distributed.initialize_from_env` (a no-op without its variables, so a
    single-host run is unchanged); an incomplete set of variables is a :class:`UsageError`.
    """
    import jax

    from sparsejax.train.distributed import initialize_from_env

    if not jax.distributed.is_initialized():
        try:
            initialize_from_env()
        except ValueError as err:
            raise UsageError(str(err)) from None
    return jax.process_count() > 1


def _check_resume(out_dir: Path, config: dict, seed: int, fingerprint: dict) -> None:
    """``--resume`` needs the config, seed and code version of the run in ``out_dir``."""
    saved = json.loads((out_dir / "config.json").read_text())
    if saved.get("config") != _to_jsonable(config) or saved.get("seed") != seed:
        differ = sorted(k for k in set(config) | set(saved.get("config", {}))
                        if saved.get("config", {}).get(k) != _to_jsonable(config).get(k))
        what = ", ".join(differ) + (" and seed" if saved.get("seed") != seed else "") if differ else "seed"
        raise UsageError(f"--resume: config or seed differ from the run in {out_dir} ({what})")
    if "fingerprint" in saved and saved["fingerprint"].get("code") != fingerprint["code"]:
        raise UsageError(f"--resume: the run in {out_dir} was written by other code (source hash "
                         f"{saved['fingerprint']['code'].get('source')} vs {fingerprint['code']['source']}); "
                         f"start a fresh run")


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
    tracker: str = "tensorboard",
    allow_nonfinite: bool = False,
) -> dict:
    """Run experiment ``name`` and return the dict written to ``results.json``.

    Everything that can be checked before the run is checked first and raises :class:`UsageError`:
    the name, preset and ``--set`` values, the seed, the output directory (a fresh run refuses a
    directory that already holds a run; ``resume`` needs one whose config, seed and code version
    match), the lock and the tracker. The run is wrapped in the checkpoint fingerprint
    (:func:`sparsejax.train.checkpoint.use_fingerprint`), the tracker's writer
    (:func:`sparsejax.train.tracking.use_writer`; TensorBoard event files in the run directory) and,
    with ``allow_nonfinite``, :func:`sparsejax.train.divergence.allow_nonfinite`. NaN/inf metrics
    raise :class:`NonFiniteMetrics` (naming their paths) unless ``allow_nonfinite``. With
    ``record``, also write ``results/NAME/PRESET.json`` (see :func:`write_record`).

    Several processes (:func:`start_distributed`; module doc): all must run the same code (their
    source hashes are compared); process 0 makes the directory checks, holds the lock and writes
    every file, and shares its run directory (or its usage error) with the others, which run the
    experiment quietly and write nothing but their part of the orbax checkpoints. Every process
    returns the results.
    """
    import jax

    from sparsejax.train.checkpoint import use_fingerprint
    from sparsejax.train.distributed import process_strings
    from sparsejax.train.divergence import allow_nonfinite as _allow
    from sparsejax.train.tracking import TRACKERS, TrackerUnavailable, make_writer, use_writer

    start_distributed()
    module = load(name)
    config = make_config(module, preset, overrides)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"--seed: expected an int >= 0, got {seed!r}")
    if tracker not in TRACKERS:
        raise UsageError(f"--tracker: expected one of {', '.join(TRACKERS)}, got {tracker!r}")
    primary = jax.process_index() == 0
    code, git = code_version(), git_info()
    fingerprint = run_fingerprint(name, config, seed, code)
    hosts = len(set(process_strings(platform.node())))
    sources = process_strings(code["source"])
    if len(set(sources)) > 1:
        raise UsageError(f"the {len(sources)} processes run different code (source hashes {', '.join(sources)}); "
                         f"check out the same code on every host")
    lock, writer = None, None
    meta = {"experiment": name, "preset": preset, "seed": seed, "config": config}
    # Process 0 alone checks and claims the run directory; the others take its outcome.
    outcome = f"ok:{'' if out is None else out}"
    if primary:
        out_dir = None
        try:
            out_dir = _resolve_out_dir(name, None if out is None else str(out), resume)
            _prepare_out_dir(out_dir, resume)
            lock = RunLock(out_dir).acquire()
            if resume:
                _check_resume(out_dir, config, seed, fingerprint)
            writer = make_writer(tracker, out_dir, name=f"{name}/{out_dir.name}", config=_to_jsonable(meta))
            write_json_atomic(out_dir / "config.json", _to_jsonable({**meta, "fingerprint": fingerprint}))
            outcome = f"ok:{out_dir}"
        except (UsageError, TrackerUnavailable) as err:
            if lock is not None:
                lock.release()
            outcome = f"error:{err}"
        except BaseException as err:  # e.g. config.json not writable: the others must not wait for ever
            if lock is not None:
                lock.release()
            if jax.process_count() > 1:
                process_strings(f"failed:{type(err).__name__}: {err}")
            raise
    outcome = process_strings(outcome)[0]
    if outcome.startswith("error:"):
        raise UsageError(outcome[len("error:"):])
    if outcome.startswith("failed:"):
        raise RuntimeError(f"process 0 failed before the run: {outcome[len('failed:'):]}")
    out_dir = Path(outcome[len("ok:"):])
    try:
        ctx = RunContext(name=name, out_dir=out_dir, seed=seed, resume=resume, quiet=quiet or not primary,
                         primary=primary)
        if jax.process_count() > 1:
            ctx.log(f"[{name}] {jax.process_count()} processes on {hosts} host(s), {jax.device_count()} devices "
                    f"({jax.local_device_count()} on this one); process 0 writes {out_dir}")
        start = time.perf_counter()
        try:
            with use_fingerprint(fingerprint), use_writer(writer), _allow(allow_nonfinite):
                metrics = module.run(config, ctx)
        finally:
            if writer is not None:
                writer.close()
        wall = time.perf_counter() - start
        bad = nonfinite_paths(metrics)
        if bad and not allow_nonfinite:
            shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise NonFiniteMetrics(f"{name} returned non-finite metrics ({shown}); not written as results. "
                                   f"Pass --allow-nonfinite to keep them (studies of divergence)")
        results = {
            **meta,
            "metrics": metrics,
            "wall_time_s": wall,
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "git": git,
            "versions": _versions(),
            "machine": machine_info(hosts),
            "out_dir": str(out_dir),
        }
        if allow_nonfinite:
            results["allow_nonfinite"] = True
        results = _to_jsonable(results)
        if primary:
            write_json_atomic(out_dir / "results.json", results)
            ctx.log(f"[{name}] done in {wall:.1f}s -> {out_dir}")
            if record:
                path = write_record(module, results, results_dir)
                ctx.log(f"[{name}] recorded -> {path}")
    finally:
        if lock is not None:
            lock.release()
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


def show(name: str, preset: str = "smoke", overrides: Iterable[str] = ()) -> str:
    """The resolved config of ``name`` (preset plus checked overrides) as indented JSON."""
    return json.dumps(make_config(load(name), preset, overrides), indent=2)


def build_parser(prog: str = "python -m experiments") -> argparse.ArgumentParser:
    """The argument parser of ``python -m experiments`` and the ``sparsejax`` script."""
    from sparsejax.train.tracking import TRACKERS

    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list every experiment with a one-line description")
    show_p = sub.add_parser("show", help="print the resolved config of an experiment")
    show_p.add_argument("name")
    show_p.add_argument("--preset", default="smoke")
    show_p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    run_p = sub.add_parser("run", help="run one experiment")
    run_p.add_argument("name")
    run_p.add_argument("--preset", default="smoke")
    run_p.add_argument("--seed", type=int, default=0)
    run_p.add_argument("--out", default=None, help="run directory (default runs/NAME/<timestamp>)")
    run_p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key (nested: model.width=64); checked against the preset")
    run_p.add_argument("--resume", action="store_true", help="continue the newest (or --out) run")
    run_p.add_argument("--quiet", action="store_true")
    run_p.add_argument("--record", action="store_true", help="also write results/NAME/PRESET.json (committed)")
    run_p.add_argument("--results-dir", default=None, help="where --record writes (default <repo>/results)")
    run_p.add_argument("--tracker", default="tensorboard", choices=TRACKERS,
                       help="scalar logging: TensorBoard event files in the run directory (default), "
                            "plus W&B offline (wandb), or none")
    run_p.add_argument("--allow-nonfinite", action="store_true",
                       help="let NaN/inf losses and metrics through (only for studies of divergence)")
    run_p.add_argument("--traceback", action="store_true", help="show the full traceback of a failed run")
    rep_p = sub.add_parser("report", help="regenerate the README paper table from results/ and the modules")
    rep_p.add_argument("--check", action="store_true", help="exit 1 if the README table is out of date")
    rep_p.add_argument("--readme", default=None, help="README to update (default <repo>/README.md)")
    rep_p.add_argument("--results-dir", default=None, help="records to read (default <repo>/results)")
    return parser


def main(argv: list[str] | None = None, prog: str = "python -m experiments") -> int:
    """Parse the command line and dispatch ``list`` / ``show`` / ``run`` / ``report``; return the exit code.

    Exit codes: 0 done; 2 a usage error found before anything ran (one line on stderr); 1 the run
    itself failed (one line, or the traceback with ``--traceback``); 130 interrupted.
    """
    args = build_parser(prog).parse_args(argv)

    def fail(code: int, message: str) -> int:
        print(f"{prog}: error: {message}", file=sys.stderr)
        return code

    try:
        if args.command == "list":
            for name, description in available().items():
                print(f"{name:32s} {description}")
            return 0
        if args.command == "show":
            print(show(args.name, args.preset, args.overrides))
            return 0
        if args.command == "report":
            return report(args.readme, args.results_dir, check=args.check)
        run_experiment(
            args.name, args.preset, seed=args.seed, out=args.out,
            overrides=args.overrides, resume=args.resume, quiet=args.quiet,
            record=args.record, results_dir=args.results_dir, tracker=args.tracker,
            allow_nonfinite=args.allow_nonfinite,
        )
    except UsageError as err:
        return fail(2, str(err))
    except KeyboardInterrupt:
        return fail(130, "interrupted")
    except Exception as err:  # a failure inside the run: short, and not a usage error
        if getattr(args, "traceback", False):
            raise
        hint = "" if args.command != "run" else " (--traceback shows where)"
        return fail(1, f"{type(err).__name__}: {err}{hint}")
    return 0


def cli() -> int:
    """Entry point of the ``sparsejax`` console script."""
    return main(prog="sparsejax")
