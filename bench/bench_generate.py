"""How long `rollwright generate` takes for the example specs (prints a table; asserts nothing).

Run: .venv/bin/python bench/bench_generate.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASES = [("hello (staging)", REPO / "examples/hello/rollwright.yml", "staging"),
         ("deployconfig JSON", REPO / "examples/deployconfig/deployconfig.json", None)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    start = time.perf_counter()
    from rollwright.render.project import prepare, render, write_project
    from rollwright.spec.loader import load_spec
    import_s = time.perf_counter() - start
    print(f"import rollwright (once per process): {import_s * 1000:.0f} ms")
    print(f"{'spec':<20} {'files':>6} {'median ms':>10} {'max ms':>8}   (load + render + write, {runs} runs)")
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec, target in CASES:
            times, count = [], 0
            for run in range(runs):
                out = Path(tmp) / f"{run}"
                began = time.perf_counter()
                files = render(prepare(load_spec(spec), target, out))
                write_project(files, out)
                times.append((time.perf_counter() - began) * 1000)
                count = len(files)
            print(f"{name:<20} {count:>6} {statistics.median(times):>10.1f} {max(times):>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
