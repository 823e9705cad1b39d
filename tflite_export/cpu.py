"""What this CPU offers the LiteRT kernels: its feature flags, read once, in one place.

XNNPACK picks its kernels by the CPU's vector extensions (AVX, AVX512-VNNI, AMX
on x86; the dot-product and i8mm instructions on Arm), so whether a file runs
fast depends on them. Linux lists them in ``/proc/cpuinfo``: on a ``flags``
line on x86 and a ``Features`` line on Arm.
"""

__all__ = ["cpu_flags"]


def cpu_flags(cpuinfo_path: str = "/proc/cpuinfo") -> frozenset[str] | None:
    """The CPU's feature flags, as Linux lists them; ``None`` where they cannot be read.

    Args:
        cpuinfo_path: The file that lists them (``/proc/cpuinfo`` on Linux).

    Returns:
        The words of the first ``flags`` (x86) or ``Features`` (Arm) line, or
        ``None`` if the file is missing or has no such line (another operating
        system, or a restricted container).

    >>> flags = cpu_flags()
    >>> flags is None or isinstance(flags, frozenset)
    True
    """
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                name, separator, value = line.partition(":")
                if separator and name.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        return None
    return None
