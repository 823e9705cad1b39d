"""Benchmark scripts that measure kopt (and its counterparts) and write BENCHMARKS.md.

Run each as a module from the repository root, e.g. ``python -m benchmarks.pruning``,
or all of them and their side-by-side summary with ``python -m benchmarks.run``.
Nothing in ``kopt`` imports this package.

Layout:

* ``core/``: what both sides share (data, training and step timing, scoring,
  statistics); NumPy only at module level, so the tfmot workers import it too;
* ``harness``, ``markdown``, ``machine``: flags, output files, sections, the machine line;
* ``suite``: the one ``run_benchmark`` template and the tfmot worker runner;
* one module per suite (``pruning``, ``quantization``, ``clustering``,
  ``distillation``, ``extras``, ``auto``, ``schedules``) declaring its ``SUITE``,
  with its settings (``*_settings``), kopt recipe (``*_kopt``, ``kopt_side``),
  tfmot recipe (``tfmot_*_worker``) and report (``*_report``, ``*_plot``);
* ``run`` (with ``run_rows``, ``run_measure``, ``run_report``): every suite and the summary.
"""

__all__ = []
