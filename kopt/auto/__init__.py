"""kopt.auto: accuracy-aware compression. Give a budget, get the smallest model that keeps it.

Three steps, each a Python call (and, together, ``kopt-optimize --auto``):

* :func:`sensitivity`: each prunable layer's validation accuracy when it alone is
  pruned to several sparsities or its weights quantized to 8 and 4 bits, with no
  retraining; a :class:`SensitivityTable`, cached, drawn by :func:`plot_sensitivity`.
* :func:`allocate`: per-layer sparsities reaching a global ``target_sparsity`` (or
  ``target_gzip_kb`` for the int8 file) with the least predicted loss, never
  pruning a fragile layer past its safe level; an :class:`Allocation` whose
  ``schedules()`` go to ``kopt.pruning.prune_low_magnitude(layer_schedules=...)``.
* :func:`compress`: raises compression in steps, fine-tuning between them, keeps
  the smallest model whose int8 accuracy on validation data stays within
  ``max_accuracy_drop`` points of float, and resumes after a kill
  (:class:`CompressResult`, with every point tried under ``pareto``).

Example::

    import kopt.auto
    table = kopt.auto.sensitivity(model, (x_val, y_val))
    plan = kopt.auto.allocate(table, target_sparsity=0.8)
    result = kopt.auto.compress(model, (x_train, y_train), (x_val, y_val), max_accuracy_drop=0.5)
"""

from kopt.auto.allocate import Allocation
from kopt.auto.allocate import allocate
from kopt.auto.allocate import uniform_allocation
from kopt.auto.data import as_arrays
from kopt.auto.data import canonical_order
from kopt.auto.data import split_validation
from kopt.auto.fine_tune import prune_and_fine_tune
from kopt.auto.params import AUTO_PARAMS
from kopt.auto.params import validate_auto_params
from kopt.auto.plots import plot_pareto
from kopt.auto.plots import plot_sensitivity
from kopt.auto.result import CompressResult
from kopt.auto.search import DEFAULT_STEPS
from kopt.auto.search import compress
from kopt.auto.sensitivity import DEFAULT_BITS
from kopt.auto.sensitivity import DEFAULT_SPARSITIES
from kopt.auto.sensitivity import SensitivityTable
from kopt.auto.sensitivity import sensitivity
from kopt.auto.size import SizeModel
from kopt.auto.state import RunState

__all__ = [
    "AUTO_PARAMS",
    "DEFAULT_BITS",
    "DEFAULT_SPARSITIES",
    "DEFAULT_STEPS",
    "Allocation",
    "CompressResult",
    "RunState",
    "SensitivityTable",
    "SizeModel",
    "allocate",
    "as_arrays",
    "canonical_order",
    "compress",
    "plot_pareto",
    "plot_sensitivity",
    "prune_and_fine_tune",
    "sensitivity",
    "split_validation",
    "uniform_allocation",
    "validate_auto_params",
]
