"""Where a QuantizeWrapper's neighbouring grids are, found in the symbolic graph.

A wrapper computes what the int8 file computes only if it knows the grids
around it: the quantizer that produced its input (bias grid, integer
accumulator), the fused ReLU that quantizes its output (requantization), the
quantizers of an Add's two inputs, and a twin: a layer computing the very same
function of the very same tensor (NASNet applies ``relu`` to one tensor in
several branches), which the converter merges into one op with one scale, so
the twin must round on its first sibling's grid, not on a range of its own.

:func:`link` runs on every symbolic call of a wrapper (building the model, and
again when a ``.keras`` file is loaded) and keeps weak references, so Keras does
not track the neighbours as sublayers. A layer shared between differently
connected calls keeps no link (``False``).
"""

import weakref

import keras

from kopt.quantization import activations as activations_lib
from kopt.quantization import bias as bias_lib
from kopt.quantization import registry
from kopt.quantization import transforms
from kopt.quantization.quantize_layer import QuantizeLayer
from kopt.quantization.quantize_layer import is_quantize_wrapper

__all__ = ["carries_no_range", "concat_range", "link", "quantizer_range"]


def link(wrapper, inputs):
    """Records the grids around ``wrapper`` from the symbolic ``inputs`` of one call."""
    if isinstance(inputs, keras.KerasTensor):
        source = bias_lib.range_source(inputs)
        wrapper._input_source = _merge(wrapper._input_source, source)
        wrapper._twin = _merge(wrapper._twin, _identical_sibling(wrapper, inputs))
        _link_fused_producer(wrapper, inputs)
    elif isinstance(inputs, (list, tuple)) and inputs and all(isinstance(t, keras.KerasTensor) for t in inputs):
        # Several inputs (Add): each one's grid, for the file's integer ADD.
        sources = [bias_lib.range_source(tensor) for tensor in inputs]
        known = wrapper._input_sources
        if known is None and all(source is not None for source in sources):
            wrapper._input_sources = [weakref.ref(source) for source in sources]
        elif known is None or known is False or [ref() for ref in known] != sources:
            wrapper._input_sources = False
        if isinstance(wrapper.layer, keras.layers.Concatenate):
            _link_concatenated_producers(wrapper, inputs)


def quantizer_range(source):
    """``(quantizer, range variables)`` that put ``source``'s output on its grid, or ``None``."""
    if is_quantize_wrapper(source):
        return source.output_range()
    if isinstance(source, QuantizeLayer):
        return source.quantizer, source._ranges
    return None


def concat_range(wrapper):
    """``(quantizer, ranges)`` of a Concatenate whose grid the file puts ``wrapper``'s output on, or ``None``.

    The converter gives every input of a concatenation the concatenation's
    scale. Two cases reach ``wrapper``'s own output:

    * it quantizes its output and the concatenation is its only reader: the
      file requantizes its accumulator straight onto the concatenation's grid
      (with other readers, the concatenation reads a requantized copy and the
      output keeps its own grid);
    * its output has no range of its own in the file (a max pooling or padding,
      wrapped for this by ``quantize_apply``, or an average pooling on its
      input's grid): the converter propagates the concatenation's scale into
      it, for every reader (DenseNet's pooled tensors, read by a concatenation
      and a BatchNormalization).
    """
    sink = wrapper._concat_sink() if wrapper._concat_sink else None
    if sink is None or wrapper._twin:
        return None
    config = wrapper.quantize_config
    activations = config.get_activations_and_quantizers(wrapper.layer)
    output_quantizers = config.get_output_quantizers(wrapper.layer)
    if carries_no_range(wrapper):
        return sink.output_range()
    nodes = getattr(wrapper, "_outbound_nodes", None) or []
    if len(nodes) != 1 or nodes[0].operation is not sink:
        return None
    if not output_quantizers:
        if not (activations and wrapper._activation_ranges):
            return None  # this layer leaves its output unquantized
        activation = activations[-1][0]
        if activations_lib.quantizes_input(activation) or activations_lib.fixed_output_quantizer(activation, 8):
            return None  # an op of its own, or a fixed grid: the file requantizes for the concatenation
    return sink.output_range()


def carries_no_range(wrapper):
    """Whether the exported graph gives ``wrapper``'s output no FakeQuant of its own (see :func:`concat_range`)."""
    config = wrapper.quantize_config
    output_quantizers = config.get_output_quantizers(wrapper.layer)
    if output_quantizers:
        return config.output_shares_input_range(wrapper.layer) and wrapper._source_range() is not None
    return not config.get_activations_and_quantizers(wrapper.layer) and registry.keeps_grid_as_op(wrapper.layer)


def _merge(known, found):
    """A weak link to ``found`` on the first call; ``False`` once calls disagree (or found nothing)."""
    if known is None:
        return weakref.ref(found) if found is not None else False
    if known is not False and known() is not found:
        return False
    return known


def _identical_sibling(wrapper, tensor):
    """An earlier wrapper computing the same weightless function of ``tensor``, or ``None``."""
    if wrapper.layer.weights:
        return None
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    for node in getattr(history[0], "_outbound_nodes", None) or []:
        other = node.operation
        if other is wrapper or not is_quantize_wrapper(other) or other._twin:
            continue
        if len(node.input_tensors) == 1 and node.input_tensors[0] is tensor and _same_function(wrapper, other):
            return other
    return None


def _same_function(wrapper, other):
    if type(wrapper.layer) is not type(other.layer) or other.layer.weights:
        return False
    if _plain(wrapper.quantize_config.get_config()) != _plain(other.quantize_config.get_config()):
        return False
    config, other_config = _plain(wrapper.layer.get_config()), _plain(other.layer.get_config())
    config.pop("name", None), other_config.pop("name", None)
    return config == other_config


def _plain(config):
    """A config without the ids Keras adds while saving or loading (``shared_object_id``)."""
    if isinstance(config, dict):
        return {key: _plain(value) for key, value in config.items() if key != "shared_object_id"}
    if isinstance(config, (list, tuple)):
        return [_plain(value) for value in config]
    return config


def _link_concatenated_producers(concat, tensors):
    """Tells the wrappers that produced ``tensors`` that ``concat`` reads them.

    Whether the concatenation is their only reader is known only once the model
    is complete; :meth:`QuantizeWrapper._concat_range` checks it when it runs.
    """
    for tensor in tensors:
        producer = _producer_through_identities(tensor)
        if is_quantize_wrapper(producer) and producer is not concat:
            known = producer._concat_sink
            producer._concat_sink = weakref.ref(concat) if known is None or known() is concat else False


def _link_fused_producer(reader, tensor):
    """Tells the wrapper that produced ``tensor`` that ``reader``, a fused ReLU, quantizes its output."""
    if not transforms.is_fusable_relu(reader.layer):
        return
    producer = _producer_through_identities(tensor)
    if not is_quantize_wrapper(producer) or producer is reader or producer.output_range() is not None:
        return
    reader = reader._range_owner()  # twin ReLUs are one op in the file
    known = producer._output_sink
    if known is None:
        producer._output_sink = weakref.ref(reader)
    elif known is not False and known() is not reader:
        producer._output_sink = False


def _producer_through_identities(tensor):
    """The operation that computed ``tensor``, looking through Identity layers (folded BatchNormalization)."""
    return bias_lib.producer(tensor, through=lambda operation: isinstance(operation, keras.layers.Identity), limit=8)
