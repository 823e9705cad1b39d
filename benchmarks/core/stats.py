"""Statistics over seeds, as the benchmarks' reports state them."""

import statistics

__all__ = ["spread"]


def spread(values, *, sample_std=False):
    """``{"mean", "std", "range"}`` of ``values`` (the seeds' figures).

    Args:
        values: The figures, one per seed.
        sample_std: The sample standard deviation (n - 1) instead of the
            population one; either is 0 for one value.

    Returns:
        The mean, standard deviation and max - min; all ``None`` for no values.

    >>> spread([1.0, 3.0])
    {'mean': 2.0, 'std': 1.0, 'range': 2.0}
    """
    if not values:
        return {"mean": None, "std": None, "range": None}
    deviation = statistics.stdev if sample_std else statistics.pstdev
    return {
        "mean": statistics.fmean(values),
        "std": deviation(values) if len(values) > 1 else 0.0,
        "range": max(values) - min(values),
    }
