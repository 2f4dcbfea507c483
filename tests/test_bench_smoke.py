"""The benchmark command still runs end to end (tiny counts, no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("direct", "aigw", "aigw-policy", "aigw-no-failover", "baseline", "litellm")
PLAIN_FIGURES = ("p50_ms", "p99_ms", "added_p50_ms", "added_p99_ms", "rps")
STREAM_FIGURES = (
    "ttfc_p50_ms",
    "ttfc_p99_ms",
    "added_ttfc_p50_ms",
    "pacing_dev_mean_ms",
    "pacing_dev_p99_ms",
)


def _aigw_worker_exists() -> bool:
    from infra.settings import load
    from infra.worker.render import render_worker

    settings, _ = load({"accountId": "0" * 32, "providerKeys": {"openai": ["sk-test-a"]}}, "t")
    try:
        render_worker(settings, gateway_url="http://127.0.0.1:9")
    except NotImplementedError:
        return False
    return True


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The JSON of one quickest run against every target but LiteLLM (pointed at nothing)."""
    output = tmp_path_factory.mktemp("bench")
    command = [sys.executable, "-m", "bench", "--quick", "--concurrency", "1,2", "--requests"]
    command += ["4", "--no-plot", "--output-dir", str(output), "--litellm", str(output / "none")]
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    parsed: dict[str, Any] = json.loads((output / "latest.json").read_text())
    parsed["stdout"] = done.stdout
    return parsed


@pytest.fixture(scope="module")
def results(document: dict[str, Any]) -> dict[str, dict[str, object]]:
    """The figures of each target in that run."""
    targets: dict[str, dict[str, object]] = document["targets"]
    return targets


def test_bench_reports_every_target(results: dict[str, dict[str, object]]) -> None:
    """All six targets are in the JSON; LiteLLM, absent here, is skipped with the reason."""
    assert tuple(results) == TARGETS
    assert "not installed" in str(results["litellm"]["skipped"])


@pytest.mark.parametrize(
    "target", ["direct", "baseline", "aigw", "aigw-policy", "aigw-no-failover"]
)
def test_bench_measures_every_figure(results: dict[str, dict[str, object]], target: str) -> None:
    """Each measured target has every figure at every concurrency, and no failed request."""
    if target.startswith("aigw") and not _aigw_worker_exists():
        pytest.skip("render_worker is not implemented yet")
    figures = results[target]
    assert "skipped" not in figures, figures
    plain, stream = figures["plain"], figures["stream"]
    assert isinstance(plain, dict) and isinstance(stream, dict)
    assert set(plain) == set(stream) == {"1", "2"}
    for row in plain.values():
        assert row["errors"] == 0
        assert all(isinstance(row[name], float) for name in PLAIN_FIGURES), row
        if target != "direct":
            assert isinstance(row["cpu_ms_per_request"], float), row
    for row in stream.values():
        assert row["errors"] == 0
        assert all(isinstance(row[name], float) for name in STREAM_FIGURES), row
    limited = figures["rate_limited"]
    assert isinstance(limited, dict)
    assert sum(limited["client_statuses"].values()) == limited["requests"] == 4
    assert 0.0 <= limited["succeeded_share"] <= 1.0


def test_bench_aigw_absorbs_rate_limits(results: dict[str, dict[str, object]]) -> None:
    """With 429s on two of four keys, aigw's failover gets every client request through."""
    if not _aigw_worker_exists():
        pytest.skip("render_worker is not implemented yet")
    limited = results["aigw"]["rate_limited"]
    assert isinstance(limited, dict)
    assert limited["client_statuses"] == {"200": 4}


def test_bench_prints_aigw_over_the_recipe(document: dict[str, Any]) -> None:
    """Each of aigw's ratios to the recipe is in the JSON and on one printed line of its own."""
    if not _aigw_worker_exists():
        pytest.skip("render_worker is not implemented yet")
    ratios = document["ratios_to_recipe"]["aigw"]
    assert set(ratios) == {"added_latency", "first_chunk", "throughput", "cpu"}
    # CPU time advances in 10 ms ticks: four requests may show none, and their ratio is then None.
    assert isinstance(ratios["throughput"]["ratio"], float), ratios
    assert set(ratios["throughput"]["per_concurrency"]) == {"1", "2"}
    lines = [line for line in document["stdout"].splitlines() if line.startswith("aigw / ")]
    assert len(lines) == 4, document["stdout"]
    assert any("throughput" in line and "goal >= 1.00x" in line for line in lines), lines


OLDER_RENDER_CONTEXT = "3827ba1"
"""A revision whose template needs a render context today's renderer no longer gives."""


def test_hotpath_runs_each_worker_in_one_isolate(tmp_path: Path) -> None:
    """`python -m bench.hotpath` calls each Worker in workerd, every call answered 200, an older
    revision's Worker (`--against`) rendered by that revision's own code."""
    if not _aigw_worker_exists():
        pytest.skip("render_worker is not implemented yet")
    known = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "cat-file", "-e", f"{OLDER_RENDER_CONTEXT}^{{commit}}"],
        check=False,
    )
    if known.returncode != 0:
        pytest.skip(f"revision {OLDER_RENDER_CONTEXT} is not in this clone (a shallow one?)")
    figures = tmp_path / "hotpath.json"
    command = [sys.executable, "-m", "bench.hotpath", "--calls", "20", "--rounds", "2"]
    command += ["--against", OLDER_RENDER_CONTEXT]
    done = subprocess.run(
        [*command, "--json", str(figures)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    best = json.loads(figures.read_text())["best"]
    assert set(best) == {"aigw", f"aigw@{OLDER_RENDER_CONTEXT}", "baseline", "null"}
    assert "aigw - baseline:" in done.stdout


def test_pool_bench_runs(tmp_path: Path) -> None:
    """`python -m bench.pool` runs the Workers against the rate-limited stand-in and reports every
    figure for each (a few seconds; LiteLLM pointed at nothing is skipped with the reason)."""
    command = [sys.executable, "-m", "bench.pool", "--isolates", "2", "--warmup", "1"]
    command += ["--measure", "3", "--loads", "1.5", "--no-plot", "--output-dir", str(tmp_path)]
    command += ["--litellm", str(tmp_path / "none")]
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads((tmp_path / "pool.json").read_text())
    measured = document["targets"]
    assert "not installed" in str(measured["litellm"]["skipped"])
    for target in ("aigw", "baseline"):
        [figures] = measured[target]
        assert figures["load"] == 1.5
        assert figures["requests"] > 0
        assert figures["client_statuses"].get("200", 0) > 0, figures
        assert figures["upstream_attempts_per_request"] > 0


def test_pool_simulation_keeps_the_goals_in_virtual_time(tmp_path: Path) -> None:
    """`python -m bench.pool_sim` drives the model's own pool in virtual time (deterministic, no
    waiting): with the benchmark's four keys and three isolates, 80% of capacity is all answered
    without an upstream 429, and 150% costs at most 1.10 upstream attempts per request."""
    output = tmp_path / "sim.json"
    command = [sys.executable, "-m", "bench.pool_sim", "--keys", "4", "--isolates", "3"]
    command += ["--warmup", "20", "--measure", "60", "--json", str(output)]
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    normal, overload = json.loads(output.read_text())
    assert (normal["load"], overload["load"]) == (0.8, 1.5)
    assert normal["answered_share"] >= 0.995
    assert normal["upstream_429_per_request"] <= 0.01
    assert overload["goodput_over_capacity"] >= 0.95
    assert overload["attempts_per_request"] <= 1.10
    assert overload["client_429_retry_after_late"] == 0


def test_pool_simulation_of_several_models_keeps_the_goals(tmp_path: Path) -> None:
    """`python -m bench.pool_sim --models` (virtual time, deterministic): beside a model at 3x its
    capacity, the other model's client is all answered and never refused pool_exhausted; the
    overloaded model gets 0.90 of its capacity at 1.10 attempts per request at most; a model one
    key may not use is answered by the others; a request too large for every key is sent once."""
    output = tmp_path / "models.json"
    command = [sys.executable, "-m", "bench.pool_sim", "--models", "--isolates", "3"]
    command += ["--warmup", "120", "--measure", "60", "--json", str(output)]
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {(row["scenario"], row["model"]): row for row in json.loads(output.read_text())}
    for scenario, model in (
        ("mixed", "gpt-main"),
        ("refusal", "gpt-main"),
        ("too-large", "gpt-main"),
    ):
        assert rows[(scenario, model)]["answered_share"] >= 0.995, scenario
        assert rows[(scenario, model)]["pool_exhausted"] == 0, scenario
    assert rows[("refusal", "gpt-small")]["answered_share"] >= 0.995
    overloaded = rows[("mixed", "gpt-small")]
    assert overloaded["goodput_over_capacity"] >= 0.90
    assert overloaded["attempts_per_request"] <= 1.10
    assert rows[("too-large", "gpt-main")]["large_attempts"] == 1


def test_reports_bench_counts_calls_and_checks_unsampled_counts() -> None:
    """`python -m bench.reports` runs each report from the events in at most 2 API calls, and
    without sampling `usage` counts exactly the request points recorded."""
    command = [sys.executable, "-m", "bench.reports", "--requests", "3000", "--logs", "60"]
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    events = [row for row in rows if len(row) > 4 and row[-4] in ("events", "unsampled")]
    assert len(events) == 8 and all(int(row[-2]) <= 2 for row in events)
    assert [row for row in rows if row[-4:-3] == ["logs"] and row[-3] == "60"]
    assert "equal" in done.stdout.splitlines()[-1]
