"""Runnable experiments: one module per paper (``experiments/<slug>.py``) and benchmarks
(``experiments/bench_<slug>.py``).

Every experiment module defines

* a module docstring whose first line is the one-line description shown by ``list``;
* ``PRESETS``: a dict ``{"smoke": {...}, "full": {...}}`` of JSON-serialisable configs;
* ``run(config: dict, ctx: experiments.runner.RunContext) -> dict`` returning the metrics
  (JSON-serialisable; a ``"rows"`` list of per-run dicts is conventional).

The runner (``python -m experiments run NAME``) writes ``config.json``, ``results.json`` and
the plots the experiment saves through ``ctx.save_figure``.
"""
