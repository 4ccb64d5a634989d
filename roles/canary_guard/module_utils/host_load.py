"""A host's CPU and memory use from /proc, sampled over the hold: the host triggers of the SLO hold (a release
whose hosts stay above N% CPU or memory the whole hold fails it, whatever its traffic says)."""

from __future__ import annotations

BUSY_FIELDS = 8  # user nice system idle iowait irq softirq steal (guest time is already in user)
IDLE_FIELDS = (3, 4)  # idle, iowait


def cpu_times(stat_text):
    """(busy, total) jiffies of all CPUs together, from /proc/stat's first line."""
    for line in stat_text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            numbers = [int(value) for value in fields[1:BUSY_FIELDS + 1]]
            idle = sum(numbers[i] for i in IDLE_FIELDS if i < len(numbers))
            return sum(numbers) - idle, sum(numbers)
    raise ValueError("no cpu line in /proc/stat")


def cpu_percent(before, after):
    """The share of CPU time spent busy between two cpu_times readings, in percent."""
    busy, total = after[0] - before[0], after[1] - before[1]
    return round(100.0 * busy / total, 1) if total > 0 else 0.0


def memory_percent(meminfo_text):
    """The share of memory in use (not available to new work: MemTotal less MemAvailable), in percent."""
    values = {}
    for line in meminfo_text.splitlines():
        name, _, rest = line.partition(":")
        if rest.split():
            values[name.strip()] = int(rest.split()[0])
    total = values.get("MemTotal", 0)
    available = values.get("MemAvailable", values.get("MemFree", 0))
    return round(100.0 * (total - available) / total, 1) if total else 0.0


def summary(samples):
    """lowest (the level held the whole time: what "sustained" means), highest and average of the samples."""
    if not samples:
        return {"lowest": 0.0, "highest": 0.0, "average": 0.0, "samples": 0}
    return {"lowest": min(samples), "highest": max(samples), "average": round(sum(samples) / len(samples), 1),
            "samples": len(samples)}


def host_reasons(host, readings, limits):
    """Why a host fails the hold: its CPU or memory use above the limit in every sample (0 is no limit)."""
    reasons = []
    for key, label in (("cpu_percent", "CPU"), ("memory_percent", "memory")):
        limit, numbers = limits.get(f"max_{key}") or 0, readings.get(key) or {}
        if limit and numbers.get("samples") and numbers["lowest"] > limit:
            reasons.append(f"{host}: {label} use stayed above {limit}% for the whole hold (lowest "
                           f"{numbers['lowest']}%, average {numbers['average']}% over {numbers['samples']} samples)")
    return reasons
