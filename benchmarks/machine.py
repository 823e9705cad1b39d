"""What machine a benchmark ran on, for the sentence that goes beside its timings."""

import os
import platform


def cpu_model(cpuinfo_path="/proc/cpuinfo"):
    """The first ``model name`` in ``/proc/cpuinfo``, or the platform's processor string."""
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe_machine():
    """Returns cores (online and usable by this process), CPU model, memory, load."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # Not on Linux.
        usable = os.cpu_count()
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": _memory_gib(),
        "load_average_1m": load_average(),
        "platform": platform.platform(),
    }


def load_average():
    """The 1-minute load average, which says how busy the machine was; None if unknown."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _memory_gib():
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def one_line(machine, *, load_at_end=None):
    """A markdown-ready sentence, e.g. '2 cores (AMD EPYC), 24.0 GiB, load 1.9 -> 2.1'."""
    parts = [f"{machine['usable_cores']} usable cores of {machine['cpu_count']} ({machine['cpu_model']})"]
    if machine.get("memory_gib"):
        parts.append(f"{machine['memory_gib']} GiB memory")
    load = machine.get("load_average_1m")
    if load is not None:
        text = f"1-minute load average {load}"
        if load_at_end is not None:
            text += f" at start, {load_at_end} at end"
        parts.append(text)
    return ", ".join(parts)
