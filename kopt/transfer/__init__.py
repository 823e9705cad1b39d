"""Knowledge transfer: start a new model from a trained one instead of from scratch.

* :func:`transfer_weights` copies every weight of one model that fits another
  (matched by layer name or order; the overlap of a resized weight) and returns
  a :class:`TransferReport` of what was copied, partly copied and skipped.
* :func:`widen` (Net2WiderNet) gives a Dense, convolution or recurrent layer
  more units (with every layer adding to the same residual stream or gate),
  and :func:`deepen` (Net2DeeperNet) inserts an identity layer; both return a
  model whose outputs equal the original's until it trains (Chen, Goodfellow
  and Shlens, "Net2Net: Accelerating Learning via Knowledge Transfer", 2016).

``kopt-optimize --init_from=trained.keras`` starts a run's model from a saved
model's weights through :func:`transfer_weights`.
"""

from kopt.transfer.deepen import IDENTITY_ACTIVATIONS
from kopt.transfer.deepen import deepen
from kopt.transfer.report import TransferReport
from kopt.transfer.report import WeightTransfer
from kopt.transfer.weights import MATCHES
from kopt.transfer.weights import transfer_weights
from kopt.transfer.widen import WIDENABLE_LAYERS
from kopt.transfer.widen import widen

__all__ = [
    "IDENTITY_ACTIVATIONS",
    "MATCHES",
    "TransferReport",
    "WIDENABLE_LAYERS",
    "WeightTransfer",
    "deepen",
    "transfer_weights",
    "widen",
]
