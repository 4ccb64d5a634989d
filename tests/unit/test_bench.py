"""The benchmark's pure parts: the physical floor over batches, the ratio cells and the table's rows."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from rollwright.render.batches import split_batches

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench.py"


@pytest.fixture(scope="module")
def bench() -> Any:
    spec = importlib.util.spec_from_file_location("rollwright_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


SECONDS = {"app1": 1.2, "app2": 1.5, "app3": 1.1, "app4": 2.0}


def test_floor_sums_the_slowest_host_of_each_batch(bench: Any) -> None:
    hosts = list(SECONDS)
    assert bench.deploy_floor(SECONDS, split_batches(hosts, [1])) == pytest.approx(1.2 + 1.5 + 1.1 + 2.0)
    # 50% of 4: [app1, app2], [app3, app4]
    assert bench.deploy_floor(SECONDS, split_batches(hosts, ["50%"])) == pytest.approx(1.5 + 2.0)
    assert bench.deploy_floor(SECONDS, split_batches(hosts, ["100%"])) == pytest.approx(2.0)


def test_floor_needs_every_host_of_a_batch(bench: Any) -> None:
    with pytest.raises(KeyError):
        bench.deploy_floor({"app1": 1.0}, [["app1", "app2"]])


def test_ratio_cells(bench: Any) -> None:
    assert bench.ratio(3.0, 1.5) == "2.00x"
    assert bench.ratio(0.0, 2.0) == "0.00x"
    assert bench.ratio(None, 2.0) == "-"
    assert bench.ratio(1.0, None) == "-"
    assert bench.ratio(1.0, 0.0) == "-"


def test_a_deploy_row_compares_with_its_floor_and_baseline(bench: Any) -> None:
    baseline = bench.Row("baseline deploy (plain Ansible)", "3", "1", wall=20.0, cpu=5.0, floor=3.6, requests=2000,
                         failed=0, memory_mib=80.0, exit=0)
    deploy = bench.Row("rolling deploy", "3", "1", wall=30.0, cpu=15.0, floor=3.6, requests=3000, failed=0,
                       memory_mib=120.4, exit=0, baseline=baseline)
    noop = bench.Row("no-op re-run", "3", "1", wall=6.0, cpu=3.0, requests=600, failed=0, memory_mib=90.0, exit=0,
                     deploy=deploy)
    cells = [dict(zip(bench.COLUMNS, row.cells(), strict=True)) for row in (deploy, noop, baseline)]
    assert cells[0] == {"measurement": "rolling deploy", "app hosts": "3", "serial": "1", "wall s": "30.0",
                        "CPU s": "15.0", "floor s": "3.6", "wall/floor": "8.33x",
                        "vs baseline": "1.50x wall, 3.00x CPU", "no-op/deploy": "-",
                        "requests": "3000", "failed": "0", "memory MiB": "120", "exit": "0"}
    assert cells[1]["no-op/deploy"] == "0.20x"
    assert (cells[1]["floor s"], cells[1]["wall/floor"], cells[1]["vs baseline"]) == ("-", "-", "-")
    assert (cells[2]["wall/floor"], cells[2]["vs baseline"], cells[2]["no-op/deploy"]) == ("5.56x", "-", "-")


def test_a_row_without_figures_shows_dashes(bench: Any) -> None:
    cells = bench.Row("verify").cells()
    assert cells[0] == "verify"
    assert set(cells[1:]) == {"-"}
    assert bench.Row("generate", wall=0.0123).cells()[3] == "0.01"


def test_scaling_line_needs_both_lab_sizes_at_serial_50(bench: Any) -> None:
    rows = [bench.Row("rolling deploy", "3", "50%", wall=20.0), bench.Row("rolling deploy", "3", "1", wall=99.0),
            bench.Row("no-op re-run", "12", "50%", wall=99.0)]
    assert bench.scaling_line(rows) is None
    rows.append(bench.Row("rolling deploy", "12", "50%", wall=26.0))
    assert bench.scaling_line(rows) == "t(12)/t(3) at serial 50%: 1.30x (26.0 s / 20.0 s)"
