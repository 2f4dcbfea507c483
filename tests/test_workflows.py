"""The GitHub workflows: valid for GitHub's schema, clean under zizmor, and keeping our rules."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent
CHECK_JSONSCHEMA = BIN / "check-jsonschema"
ZIZMOR = BIN / "zizmor"

# A full commit SHA, then a comment naming the release it is (`# v6.0.3`).
PINNED_USES = re.compile(r"^\s*-?\s*uses:\s*[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*\s*$")
USES_LINE = re.compile(r"^\s*-?\s*uses:")


def _ids(paths: list[Path]) -> list[str]:
    return [path.name for path in paths]


def _load(path: Path) -> dict[str, Any]:
    # YAML 1.2 (ruamel's safe loader) keeps the `on:` key a string, as GitHub reads it.
    document = YAML(typ="safe").load(path.read_text())
    assert isinstance(document, dict), f"{path.name} is not a mapping"
    return document


def _schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _run_step(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a step's shell script as the runner does (`bash -e`), with only `env` and a PATH."""
    return subprocess.run(
        ["bash", "-e", "-c", script],
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


def _zizmor_findings(path: Path) -> list[dict[str, Any]]:
    """zizmor's findings at severity low or above, no network.

    The `auditor` persona, zizmor's strictest: the default one stays silent about, for example,
    a workflow-wide `permissions: write-all`. A deliberate exception is a
    `# zizmor: ignore[<audit>]` comment on the line, with the reason beside it.
    """
    result = subprocess.run(
        [
            str(ZIZMOR),
            "--offline",
            "--no-progress",
            "--persona",
            "auditor",
            "--min-severity",
            "low",
            "--format",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Exit codes: 0 clean, 10-14 findings (by highest severity); anything else is zizmor failing.
    assert result.returncode == 0 or 10 <= result.returncode <= 14, result.stderr
    findings = json.loads(result.stdout or "[]")
    assert isinstance(findings, list)
    return findings


def _describe(findings: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{finding['ident']} ({finding['determinations']['severity']}): {finding['desc']}"
        for finding in findings
    )


def _pulumi_steps(workflow: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(job id, job, step) for every step that runs pulumi/actions."""
    return [
        (job_id, job, step)
        for job_id, job in workflow["jobs"].items()
        for step in job.get("steps", [])
        if str(step.get("uses", "")).startswith("pulumi/actions@")
    ]


def test_every_expected_workflow_exists() -> None:
    """The workflows the README documents are all in .github/workflows, and no others."""
    assert _ids(WORKFLOWS) == [
        "cloud-test.yml",
        "deploy.yml",
        "destroy.yml",
        "docs.yml",
        "preview.yml",
        "test.yml",
    ]


@pytest.mark.parametrize("path", WORKFLOWS, ids=_ids(WORKFLOWS))
def test_workflow_matches_github_schema(path: Path) -> None:
    """Each workflow validates against GitHub's published workflow schema."""
    result = _schema_check(path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=_ids(WORKFLOWS))
def test_workflow_has_no_zizmor_findings(path: Path) -> None:
    """zizmor finds nothing of severity low or above in each workflow."""
    findings = _zizmor_findings(path)
    assert findings == [], _describe(findings)


# A small valid workflow; each broken case below changes exactly one thing in it.
VALID_WORKFLOW = """\
name: example
on: push
permissions:
  contents: read
jobs:
  build:
    name: build
    runs-on: ubuntu-latest
    steps:
      - run: echo ok
"""
BAD_FOR_SCHEMA = {
    "misspelt trigger": ("on: push", "on: pushh"),
    "job without runs-on": ("    runs-on: ubuntu-latest\n", ""),
    "unknown permission level": ("contents: read", "contents: admin"),
    "step with both uses and run": (
        "      - run: echo ok",
        "      - run: echo ok\n        uses: actions/checkout@v4",
    ),
    "run that is not a string": ("run: echo ok", "run: true"),
}


def test_schema_check_accepts_the_valid_example(tmp_path: Path) -> None:
    """The baseline the broken cases start from passes, so each failure below is its own change."""
    path = tmp_path / "valid.yml"
    path.write_text(VALID_WORKFLOW)
    result = _schema_check(path)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(("old", "new"), BAD_FOR_SCHEMA.values(), ids=BAD_FOR_SCHEMA.keys())
def test_schema_check_rejects_a_broken_workflow(tmp_path: Path, old: str, new: str) -> None:
    """The schema check fails on a workflow GitHub would refuse, so its passing means something."""
    assert old in VALID_WORKFLOW
    path = tmp_path / "broken.yml"
    path.write_text(VALID_WORKFLOW.replace(old, new, 1))
    result = _schema_check(path)
    assert result.returncode != 0, result.stdout


_CHECKOUT = "      - uses: actions/checkout@df4cb1c069e1874edd31b4311f1884172cec0e10 # v6.0.3\n"
_NO_CREDENTIALS = "        with:\n          persist-credentials: false\n"
BAD_FOR_ZIZMOR = {
    "template-injection": (
        "on: pull_request\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        "    permissions: {}\n    steps:\n"
        '      - run: echo "${{ github.event.pull_request.title }}"\n'
    ),
    "unpinned-uses": (
        "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        "    permissions: {}\n    steps:\n      - uses: pulumi/actions@v6\n"
        "        with:\n          command: preview\n          stack-name: dev\n"
    ),
    "artipacked": (
        "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        f"    permissions: {{}}\n    steps:\n{_CHECKOUT}"
    ),
    "dangerous-triggers": (
        "on: pull_request_target\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        "    permissions: {}\n    steps:\n      - run: echo ok\n"
    ),
    "excessive-permissions": (
        "on: push\npermissions: write-all\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        f"    steps:\n{_CHECKOUT}{_NO_CREDENTIALS}"
    ),
}


@pytest.mark.parametrize("audit", BAD_FOR_ZIZMOR.keys())
def test_zizmor_flags_an_unsafe_workflow(tmp_path: Path, audit: str) -> None:
    """zizmor reports the one audit each unsafe workflow breaks, so its silence means something."""
    path = tmp_path / "unsafe.yml"
    path.write_text("name: unsafe\n" + BAD_FOR_ZIZMOR[audit])
    assert _schema_check(path).returncode == 0, "the unsafe example must still be a valid workflow"
    findings = _zizmor_findings(path)
    assert audit in {finding["ident"] for finding in findings}, _describe(findings)


@pytest.mark.parametrize("path", WORKFLOWS, ids=_ids(WORKFLOWS))
def test_every_action_is_pinned_to_a_commit_with_its_version(path: Path) -> None:
    """Every `uses:` names a full commit SHA and, in a comment, the release it is."""
    unpinned = [
        line.strip()
        for line in path.read_text().splitlines()
        if USES_LINE.match(line) and not PINNED_USES.match(line)
    ]
    assert unpinned == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=_ids(WORKFLOWS))
def test_workflow_token_starts_with_no_write_access(path: Path) -> None:
    """The workflow-wide token is `{}` or read-only; jobs widen it only where they must."""
    permissions = _load(path).get("permissions")
    assert permissions in ({}, {"contents": "read"})


@pytest.mark.parametrize("path", WORKFLOWS, ids=_ids(WORKFLOWS))
def test_every_checkout_drops_its_credentials(path: Path) -> None:
    """No checkout leaves the job token in .git/config for later steps to read."""
    checkouts = [
        step
        for job in _load(path)["jobs"].values()
        for step in job.get("steps", [])
        if str(step.get("uses", "")).startswith("actions/checkout@")
    ]
    assert checkouts, f"{path.name} checks nothing out"
    assert all(step.get("with", {}).get("persist-credentials") is False for step in checkouts)


def test_pulumi_cli_version_matches_the_sdk_pin() -> None:
    """CI installs the Pulumi CLI of the same version as the `pulumi` SDK in requirements.txt."""
    pin = re.search(r"^pulumi==(\S+)$", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    assert pin is not None, "requirements.txt does not pin pulumi"
    versions = {
        f"{path.name}:{job_id}": str(step["with"].get("pulumi-version"))
        for path in WORKFLOWS
        for job_id, _job, step in _pulumi_steps(_load(path))
    }
    assert len(versions) == 4
    assert set(versions.values()) == {pin.group(1)}, versions


@pytest.mark.parametrize(
    ("name", "command"),
    [("preview.yml", "preview"), ("deploy.yml", "up"), ("destroy.yml", "destroy")],
)
def test_pulumi_runs_in_an_environment_with_secrets_from_the_store(name: str, command: str) -> None:
    """Every pulumi job runs in a GitHub environment and takes each credential from `secrets.`."""
    [(job_id, job, step)] = _pulumi_steps(_load(ROOT / ".github" / "workflows" / name))
    assert step["with"]["command"] == command
    assert job.get("environment"), f"{job_id} has no environment"
    for variable in (
        "CLOUDFLARE_API_TOKEN",
        "PULUMI_BACKEND_URL",
        "PULUMI_CONFIG_PASSPHRASE",
        "PULUMI_ACCESS_TOKEN",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ):
        assert job["env"][variable] == f"${{{{ secrets.{variable} }}}}"
    assert step["with"]["cloud-url"] == "${{ secrets.PULUMI_BACKEND_URL }}"


@pytest.mark.parametrize("name", ["deploy.yml", "destroy.yml"])
def test_changes_to_a_stack_run_one_at_a_time(name: str) -> None:
    """`up` and `destroy` of one stack share a concurrency group and never cancel each other."""
    [(_job_id, job, step)] = _pulumi_steps(_load(ROOT / ".github" / "workflows" / name))
    stack = step["with"]["stack-name"]
    assert job["environment"] == stack
    assert job["concurrency"] == {
        "group": "pulumi-" + stack,
        "cancel-in-progress": False,
    }


def test_preview_posts_its_diff_on_the_pull_request() -> None:
    """The preview job comments its diff and is the only job allowed to write to pull requests."""
    workflow = _load(ROOT / ".github" / "workflows" / "preview.yml")
    [(_job_id, job, step)] = _pulumi_steps(workflow)
    assert step["with"]["comment-on-pr"] is True
    assert step["with"]["diff"] is True
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    writers = [
        f"{path.name}:{job_id}"
        for path in WORKFLOWS
        for job_id, other in _load(path)["jobs"].items()
        if "write" in (other.get("permissions") or {}).values()
    ]
    assert writers == ["docs.yml:publish", "preview.yml:preview"]


def test_docs_are_built_strict_and_published_from_main_only() -> None:
    """The site is checked and built with --strict, and only its publishing job, after the
    build, may write, to Pages and nothing else."""
    workflow = _load(ROOT / ".github" / "workflows" / "docs.yml")
    assert workflow["on"]["push"] == {"branches": ["main"]}
    assert "pull_request" not in workflow["on"]
    runs = [step.get("run", "") for step in workflow["jobs"]["build"]["steps"]]
    assert "python -m infra.cli.reference --check" in runs
    assert "mkdocs build --strict --site-dir site" in runs
    publish = workflow["jobs"]["publish"]
    assert publish["needs"] == "build"
    assert publish["permissions"] == {"pages": "write", "id-token": "write"}
    assert publish["environment"]["name"] == "github-pages"


def test_destroy_requires_the_stack_name_typed_twice() -> None:
    """`destroy` waits on a job that fails unless the confirmation equals the chosen stack."""
    workflow = _load(ROOT / ".github" / "workflows" / "destroy.yml")
    inputs = workflow["on"]["workflow_dispatch"]["inputs"]
    assert inputs["stack"]["options"] == ["dev", "prod"]
    assert inputs["confirm"]["required"] is True
    assert workflow["jobs"]["destroy"]["needs"] == "confirm"
    [check] = workflow["jobs"]["confirm"]["steps"]
    # Untrusted input reaches the shell only through the environment, never spliced into it.
    assert "${{" not in check["run"]
    assert check["env"] == {"STACK": "${{ inputs.stack }}", "CONFIRM": "${{ inputs.confirm }}"}


@pytest.mark.parametrize(("confirm", "status"), [("prod", 0), ("dev", 1), ("", 1), ("prod ", 1)])
def test_destroy_confirmation_script_accepts_only_the_exact_name(confirm: str, status: int) -> None:
    """The confirmation step's own shell script passes only on an exact repeat of the stack name."""
    workflow = _load(ROOT / ".github" / "workflows" / "destroy.yml")
    [check] = workflow["jobs"]["confirm"]["steps"]
    result = _run_step(check["run"], {"STACK": "prod", "CONFIRM": confirm})
    assert result.returncode == status
    assert ("nothing was destroyed" in result.stdout) is (status != 0)


def _backend_guard(name: str) -> dict[str, Any]:
    [(_job_id, job, _step)] = _pulumi_steps(_load(ROOT / ".github" / "workflows" / name))
    return dict(job["steps"][0])


@pytest.mark.parametrize("name", ["preview.yml", "deploy.yml", "destroy.yml"])
@pytest.mark.parametrize(
    ("backend", "status"),
    [
        ("https://api.pulumi.com", 0),
        ("s3://aigw-state?endpoint=https://0123.r2.cloudflarestorage.com&region=auto", 0),
        ("", 1),
        ("file://~", 1),
        ("file:///tmp/state", 1),
    ],
)
def test_pulumi_jobs_refuse_a_backend_on_the_runner_disk(
    name: str, backend: str, status: int
) -> None:
    """Each pulumi job first fails unless PULUMI_BACKEND_URL names shared, lasting state."""
    guard = _backend_guard(name)
    assert "${{" not in guard["run"]
    result = _run_step(guard["run"], {"PULUMI_BACKEND_URL": backend})
    assert result.returncode == status
    assert ("set the PULUMI_BACKEND_URL secret" in result.stdout) is (status != 0)


@pytest.mark.parametrize(
    ("unset", "status"),
    [
        (None, 0),
        ("CLOUDFLARE_API_TOKEN", 1),
        ("CLOUDFLARE_ACCOUNT_ID", 1),
        ("AIGW_TEST_OPENAI_KEY", 1),
    ],
)
def test_cloud_test_workflow_fails_instead_of_skipping(unset: str | None, status: int) -> None:
    """The on-demand real-cloud run fails on a missing credential rather than pass on a skip."""
    workflow = _load(ROOT / ".github" / "workflows" / "cloud-test.yml")
    job = workflow["jobs"]["cloud"]
    guard = job["steps"][0]["run"]
    assert "${{" not in guard
    environ = {name: "x" for name in job["env"]}
    if unset is not None:
        environ[unset] = ""
    result = _run_step(guard, environ)
    assert result.returncode == status
    assert (f"set the {unset} secret" in result.stdout) is (status != 0)
    assert job["steps"][-1]["run"].endswith("pytest tests/cloud -m cloud -ra")
