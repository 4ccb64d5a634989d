"""Ansible's `serial` arithmetic, so `plan` shows the batches a deploy will really use."""

from __future__ import annotations

from collections.abc import Sequence


def batch_sizes(total: int, serial: Sequence[int | str]) -> list[int]:
    """Sizes of successive batches for `total` hosts, as ansible-core computes them.

    Each entry is a count or a percentage of all hosts (at least 1); the last entry repeats
    until every host is in a batch.
    """
    sizes: list[int] = []
    remaining, index = total, 0
    while remaining > 0:
        entry = serial[min(index, len(serial) - 1)]
        size = (int(int(entry[:-1]) / 100.0 * total) or 1) if isinstance(entry, str) else entry  # pct_to_int
        size = min(size, remaining)
        sizes.append(size)
        remaining -= size
        index += 1
    return sizes


def split_batches(hosts: Sequence[str], serial: Sequence[int | str]) -> list[list[str]]:
    """The hosts of each batch, in inventory order."""
    out, start = [], 0
    for size in batch_sizes(len(hosts), serial):
        out.append(list(hosts[start:start + size]))
        start += size
    return out
