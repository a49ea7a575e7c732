"""Runnable experiments: one module per paper (``experiments/<slug>.py``) and benchmarks
(``experiments/bench_<slug>.py``).

Every experiment module defines

* a module docstring whose first line is the one-line description shown by ``list``;
* ``PRESETS``: a dict ``{"smoke": {...}, "full": {...}}`` of JSON-serialisable configs;
* ``run(config: dict, ctx: experiments.runner.RunContext) -> dict`` returning the metrics
  (JSON-serialisable; a ``"rows"`` list of per-run dicts is conventional);

and, for the README paper table (``python -m experiments report``, see :mod:`experiments.papers`):

* ``PAPERS = ("P4",)``: the ids of the papers it reports on;
* ``CLAIM = "..."``: the paper's claim, one line, for the "Paper's claim" column;
* ``summarize(results: dict) -> str``: one markdown cell (no ``|``, no newline) for the "Measured"
  column. ``results`` is the record ``results/NAME/PRESET.json``: the keys of ``results.json``
  (``config``, ``metrics``, ``seed``, ...) where every numeric list longer than
  ``runner.MAX_LIST`` (32) numbers is replaced by a summary (``{"len", "first", "last", "min",
  "max"}`` for a flat list, ``{"shape", "min", "max", "mean"}`` for a nested one, see
  :func:`experiments.runner.compact`). Every number in the text comes from ``results``.

Modules without the last three still list and run; the report leaves them out and says so.

The runner (``python -m experiments run NAME``) writes ``config.json``, ``results.json`` and
the plots the experiment saves through ``ctx.save_figure``; ``--record`` also writes
``results/NAME/PRESET.json``.
"""
