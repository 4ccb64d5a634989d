#!/usr/bin/python
"""A host's CPU and memory use over the SLO hold, sampled from /proc (the hold's host triggers)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: host_load
short_description: Sample this host's CPU and memory use from /proc over the hold
description:
  - Reads C(/proc/stat) and C(/proc/meminfo) every O(interval_s) seconds for O(duration_s) seconds and returns, for
    the CPU use of all CPUs together and for the memory in use (MemTotal less MemAvailable), the lowest, highest and
    average percentage. The lowest is the level the host held for the whole hold, which the hold's triggers
    (C(max_cpu_percent), C(max_memory_percent)) judge. Changes nothing.
options:
  duration_s: {description: Seconds to sample., type: int, required: true}
  interval_s: {description: Seconds between two samples., type: int, default: 1}
author: rollwright
"""

RETURN = r"""
cpu_percent:
  description: "lowest, highest, average and samples of the CPU use in percent."
  returned: always
  type: dict
memory_percent: {description: The same for the memory in use., returned: always, type: dict}
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.host_load import cpu_percent, cpu_times, memory_percent, summary


def _read(path):
    with open(path, encoding="ascii") as handle:
        return handle.read()


def main():
    module = AnsibleModule(argument_spec={"duration_s": {"type": "int", "required": True},
                                          "interval_s": {"type": "int", "default": 1}},
                           supports_check_mode=True)
    if module.check_mode:
        module.exit_json(changed=False, skipped=True, msg="no sampling in check mode")
    duration, interval = module.params["duration_s"], max(module.params["interval_s"], 1)
    cpu, memory = [], []
    try:
        last = cpu_times(_read("/proc/stat"))
        end = time.monotonic() + duration
        while time.monotonic() < end:
            time.sleep(min(interval, max(end - time.monotonic(), 0.1)))
            now = cpu_times(_read("/proc/stat"))
            cpu.append(cpu_percent(last, now))
            memory.append(memory_percent(_read("/proc/meminfo")))
            last = now
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f"cannot read this host's load from /proc: {exc}")
    module.exit_json(changed=False, cpu_percent=summary(cpu), memory_percent=summary(memory))


if __name__ == "__main__":
    main()
