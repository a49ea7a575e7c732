"""Broad bad-input probe of the public API of sparsejax, geometry and generative (issue #12).

The case tables live in ``tests/probe_cases_{sparsejax,geometry,generative}.py``: one row per call,
``(entry, label, thunk, names[, heavy[, precondition]])``, where ``entry`` is the public name probed (``package.sub.name``),
``thunk`` makes one call with an input that breaks the documented contract (wrong shape or rank, NaN/inf,
out-of-range ints/floats, wrong types, out-of-range indices, bad pytree structure, bad solver settings)
and ``names`` is a regex for the argument (or leaf) a clear message must name.

Each call is classified as in ``shared/briefs/review_reliability.md``:
  (a) ValueError/TypeError raised by a line of this project's code whose message matches ``names``;
  (b) any other exception (raised inside a dependency, a bare AttributeError/IndexError, or a message
      that does not name the argument);
  (c) normal return; ``c_nan`` when the output holds NaN or inf;
  (d) more than ``TIMEOUT`` seconds on one call;
  (p) a normal return on a row marked with the documented ``precondition`` it breaks (a traced
      value under jit that is not checked; not (a), but not a silent failure either).
The (a) fraction is taken over all calls.
An exception raised by the probe's own code (a broken set-up) fails the test instead of being counted.

The default test runs one light case (no flax init / training compile) per entry point; the ``slow``
test runs every case.
Both print the table of figures and assert (a) >= 95 % and no silent NaN/inf output.
Run ``python tests/test_api_probe.py`` (``--all`` for the full probe) to print the table alone.
"""
from __future__ import annotations

import collections
import importlib.util
import os
import re
import signal
import sys
import time
import traceback
from pathlib import Path

import jax
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = str(Path(__file__).resolve().parent) + os.sep
PROJECT = tuple(str(ROOT / p) + os.sep for p in ("sparsejax", "geometry", "generative"))
PACKAGES = ("sparsejax", "geometry", "generative")
TIMEOUT = 60
GOAL = 0.95


def load_cases(package: str) -> list[tuple]:
    """The case rows of ``tests/probe_cases_<package>.py``."""
    path = Path(__file__).with_name(f"probe_cases_{package}.py")
    spec = importlib.util.spec_from_file_location(f"probe_cases_{package}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CASES


class _Timeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Timeout()


def _nonfinite(out) -> bool:
    for leaf in jax.tree_util.tree_leaves(out):
        if isinstance(leaf, (float, complex)) or (hasattr(leaf, "dtype") and hasattr(leaf, "shape")):
            arr = np.asarray(leaf)
            if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
                return True
    return False


def classify(thunk, names: str) -> tuple[str, str]:
    """``(category, detail)`` of one call; category is 'a', 'b', 'c', 'c_nan', 'd' or 'setup'."""
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(TIMEOUT)
    try:
        out = thunk()
        if hasattr(out, "block_until_ready"):
            out.block_until_ready()
    except _Timeout:
        return "d", f"over {TIMEOUT} s"
    except Exception as e:  # noqa: BLE001 - the probe classifies every exception
        frames = traceback.extract_tb(e.__traceback__)
        where = frames[-1].filename if frames else ""
        detail = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]
        if where.startswith(TESTS):
            return "setup", f"{detail} at {where}:{frames[-1].lineno}"
        ours = where.startswith(PROJECT)
        if ours and isinstance(e, (ValueError, TypeError)) and re.search(names, str(e), re.IGNORECASE):
            return "a", detail
        return "b", f"{detail} (raised in {Path(where).parent.name}/{Path(where).name})"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return ("c_nan" if _nonfinite(out) else "c"), type(out).__name__


def select_cases(full: bool) -> list[tuple]:
    """All case rows (``full``), or the default subset: the first light (no compile-heavy set-up)
    case of every entry point."""
    rows, seen = [], set()
    for package in PACKAGES:
        for case in load_cases(package):
            heavy = len(case) > 4 and case[4]
            if full or (not heavy and case[0] not in seen):
                rows.append(case)
            if not heavy:
                seen.add(case[0])
    return rows


def run_probe(full: bool) -> list[dict]:
    """Classify the selected cases (:func:`select_cases`)."""
    rows = []
    old = jax.config.jax_traceback_filtering
    jax.config.update("jax_traceback_filtering", "off")
    try:
        for case in select_cases(full):
            entry, label, thunk, names = case[:4]
            precondition = case[5] if len(case) > 5 else None
            start = time.perf_counter()
            cat, detail = classify(thunk, names)
            if precondition and cat in ("c", "c_nan"):
                cat, detail = "p", f"documented precondition: {precondition}"
            rows.append({"entry": entry, "label": label, "cat": cat, "detail": detail,
                         "seconds": time.perf_counter() - start})
    finally:
        jax.config.update("jax_traceback_filtering", old)
    return rows


def figures(rows: list[dict]) -> str:
    """Markdown table: entry points, calls and the a/b/c/d split per sub-package and in total."""
    def line(name, rs):
        n = len(rs)
        c = collections.Counter(r["cat"] for r in rs)
        entries = len({r["entry"] for r in rs})
        pct = lambda k: f"{100 * k / n:.1f} %" if n else "-"  # noqa: E731
        return (f"| {name} | {entries} | {n} | {c['a']} ({pct(c['a'])}) | {c['b']} | {c['c'] + c['c_nan']} | "
                f"{c['c_nan']} | {c['p']} | {c['d']} |")

    groups = collections.defaultdict(list)
    for r in rows:
        groups[".".join(r["entry"].split(".")[:2])].append(r)
    out = ["| sub-package | entry points | calls | (a) clear | (b) unclear | (c) silent | of which NaN/inf | "
           "documented precondition | (d) |",
           "|---|---|---|---|---|---|---|---|---|"]
    out += [line(k, groups[k]) for k in sorted(groups)]
    for p in PACKAGES:
        out.append(line(f"**{p}**", [r for r in rows if r["entry"].split(".")[0] == p]))
    out.append(line("**total**", rows))
    failures = [r for r in rows if r["cat"] != "a"]
    if failures:
        out += ["", "not (a):"] + [f"- ({r['cat']}) {r['entry']} [{r['label']}]: {r['detail']}" for r in failures]
    return "\n".join(out)


def _check(rows: list[dict]) -> None:
    print("\n" + figures(rows))
    setup = [r for r in rows if r["cat"] == "setup"]
    assert not setup, f"probe set-up errors: {setup}"
    clear = sum(r["cat"] == "a" for r in rows) / len(rows)
    nonfinite = [r for r in rows if r["cat"] == "c_nan"]
    assert not nonfinite, f"silent NaN/inf outputs: {nonfinite}"
    assert clear >= GOAL, f"only {clear:.1%} clear errors (goal {GOAL:.0%})"


def test_probe_default_subset():
    """One light case per entry point (>= 200 entry points)."""
    rows = run_probe(full=False)
    assert len({r["entry"] for r in rows}) >= 200
    _check(rows)


@pytest.mark.slow
def test_probe_all_cases():
    """Every case, the compile-heavy ones (model init, training) included (>= 230 entry points)."""
    rows = run_probe(full=True)
    assert len({r["entry"] for r in rows}) >= 230
    _check(rows)


def test_every_case_names_a_public_entry_point():
    """The probed names exist and are public (listed in their module's ``__all__``)."""
    for package in PACKAGES:
        for case in load_cases(package):
            *mod, name = case[0].split(".")
            module = importlib.import_module(".".join(mod))
            assert name in module.__all__, case[0]


if __name__ == "__main__":
    os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")  # as tests/conftest.py
    probe_rows = run_probe(full="--all" in sys.argv)
    print(figures(probe_rows))
    slowest = sorted(probe_rows, key=lambda r: -r["seconds"])[:10]
    print("\nslowest calls:", ", ".join(f"{r['entry']} [{r['label']}] {r['seconds']:.2f} s" for r in slowest))
