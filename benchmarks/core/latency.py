"""Latency of ``.tflite`` files as the project reports it: LiteRT, 1 thread, batch 1, files timed in turns.

Timing files one after another lets the machine's state drift between them (another
process, the clock); in turns, every round sees each file under the same
conditions. :func:`interleaved_ms` runs ``calls`` invocations of each interpreter
in each round and returns, per file, the median over rounds of the round's mean.
``tflite_export.interleaved_latency(..., amx=False)`` does the same in a child process that refuses Intel AMX
(the tfmot workers' environment, which imports this module, has no ``tflite_export``).

Example:

>>> import numpy as np
>>> class Stub:
...     def invoke(self):
...         pass
>>> sorted(interleaved_ms({"a": Stub(), "b": Stub()}, rounds=2, calls=3))
['a', 'b']
"""

import time

import numpy as np

__all__ = ["interleaved_ms", "ready_interpreter"]


def ready_interpreter(path, *, xnnpack=True, threads=1, seed=1):
    """A LiteRT interpreter of the file at ``path``, its input set to random values and invoked once.

    Args:
        path: The ``.tflite`` file (a fixed input shape, as batch 1 files have).
        xnnpack: Use LiteRT's default XNNPACK delegate; ``False``: builtin kernels only.
        threads: Interpreter threads.
        seed: Seed of the random input (float in [0, 1), cast to the input's type).

    Returns:
        The interpreter; its first invocation, which prepares the delegate, is done.
    """
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.interpreter import OpResolverType

    options = {} if xnnpack else {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
    interpreter = Interpreter(model_path=path, num_threads=threads, **options)
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        example = np.random.default_rng(seed).random(detail["shape"]).astype(detail["dtype"])
        interpreter.set_tensor(detail["index"], example)
    interpreter.invoke()
    return interpreter


def interleaved_ms(interpreters, *, rounds, calls):
    """Median milliseconds per call of each interpreter, all taking turns in every round.

    Args:
        interpreters: ``{key: interpreter}``, each ready to ``invoke``.
        rounds: Rounds; in each, every interpreter runs ``calls`` times in a row.
        calls: Invocations per interpreter per round.

    Returns:
        ``{key: milliseconds}``: the median over rounds of each round's mean.
    """
    per_round = {key: [] for key in interpreters}
    for _ in range(rounds):
        for key, interpreter in interpreters.items():
            start = time.perf_counter()
            for _ in range(calls):
                interpreter.invoke()
            per_round[key].append(1000 * (time.perf_counter() - start) / calls)
    return {key: float(np.median(values)) for key, values in per_round.items()}
