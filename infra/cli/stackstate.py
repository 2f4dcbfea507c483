"""A deployed stack's outputs, read from its Pulumi state: where `aigw keys` finds key places."""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

BACKEND_ENV = "PULUMI_BACKEND_URL"
"""Overrides the project's `backend.url`, as in the Pulumi CLI."""
KEY_PLACES = "keyPlaces"
"""The stack output mapping provider and key id to `providerKeys.<provider>[<index>]`."""
STACK_TYPE = "pulumi:pulumi:Stack"
"""The root resource of a deployment, which holds the stack's outputs."""
STATE_HINT = (
    "pass the state with --state FILE (pulumi stack export --stack {stack} --file FILE; "
    "the export keeps secrets encrypted, and keyPlaces holds none)"
)


class StackStateError(Exception):
    """A state file that cannot be read or holds no deployment; the message says which."""


@dataclass(frozen=True)
class KeyPlaces:
    """Each provider's key ids to their places in the config, and where that came from."""

    places: dict[str, dict[str, str]]
    source: str | None
    """The state file read; None when none was found (then `hint` says what to do)."""
    hint: str = ""

    def place(self, provider: str, key_id: str) -> str | None:
        """`providerKeys.openai[2]`, or None when the deployed stack does not hold that key."""
        return self.places.get(provider, {}).get(key_id)


def local_stacks_folder(project_dir: Path) -> Path | None:
    """Where a local (`file://`) backend keeps its stacks, or None for another backend.

    The backend is `$PULUMI_BACKEND_URL`, else `backend.url` in `Pulumi.yaml` (aigw's default is
    `file://~`). A file backend keeps each stack in `<dir>/.pulumi/stacks/<project>/<stack>.json`
    (`.json.gz` when compressed), or in `<dir>/.pulumi/stacks/<stack>.json` in backends created
    before projects had folders of their own (Pulumi's "DIY backend" documentation).
    """
    project = _project(project_dir)
    backend = project.get("backend")
    configured = backend.get("url") if isinstance(backend, dict) else None
    url = os.environ.get(BACKEND_ENV) or str(configured or "")
    if not url.startswith("file://"):
        return None
    root = Path(os.path.expanduser(url.removeprefix("file://") or "~"))
    if not root.is_absolute():
        root = project_dir / root
    return root / ".pulumi" / "stacks"


def find_state_file(stack: str, project_dir: Path) -> Path | None:
    """The state file of `stack` in a local backend, if the stack has one there."""
    stacks = local_stacks_folder(project_dir)
    if stacks is None:
        return None
    name = str(_project(project_dir).get("name") or "")
    for folder in ([stacks / name] if name else []) + [stacks]:
        for suffix in (".json", ".json.gz"):
            path = folder / f"{stack}{suffix}"
            if path.is_file():
                return path
    return None


def _project(project_dir: Path) -> dict[str, object]:
    try:
        document = yaml.safe_load((project_dir / "Pulumi.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return document if isinstance(document, dict) else {}


def stack_outputs(path: Path) -> dict[str, object]:
    """The outputs of the deployment in a state file: the backend's own (`checkpoint.latest`)
    or a `pulumi stack export` (`deployment`); secret outputs stay encrypted."""
    try:
        raw = path.read_bytes()
        text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        document = json.loads(text)
    except (OSError, EOFError, gzip.BadGzipFile, ValueError) as error:
        raise StackStateError(f"cannot read the stack state {path}: {error}") from None
    deployment = None
    if isinstance(document, dict):
        checkpoint = document.get("checkpoint")
        deployment = (
            checkpoint.get("latest") if isinstance(checkpoint, dict) else document.get("deployment")
        )
    resources = deployment.get("resources") if isinstance(deployment, dict) else None
    if not isinstance(resources, list):
        raise StackStateError(f"{path} holds no deployment (was the stack deployed?)")
    for resource in resources:
        if isinstance(resource, dict) and resource.get("type") == STACK_TYPE:
            outputs = resource.get("outputs")
            return outputs if isinstance(outputs, dict) else {}
    return {}


def read_key_places(stack: str | None, project_dir: Path, state: Path | None) -> KeyPlaces:
    """The key places of the deployed stack, from `state` or the local backend's state file."""
    if stack is None and state is None:
        return KeyPlaces({}, None, "pass --stack (or --state FILE) to see each key's config entry")
    path = state if state is not None else find_state_file(str(stack), project_dir)
    if path is None:
        hint = STATE_HINT.format(stack=stack)
        local = local_stacks_folder(project_dir)
        if local is not None:
            hint = f"stack {stack} has no state in {local} (not deployed from here?); {hint}"
        return KeyPlaces({}, None, hint)
    outputs = stack_outputs(path)
    places = outputs.get(KEY_PLACES)
    if not isinstance(places, dict):
        return KeyPlaces(
            {},
            str(path),
            "the deployed stack has no keyPlaces output yet: make up with this aigw version",
        )
    valid = {
        str(provider): {str(key): str(place) for key, place in ids.items()}
        for provider, ids in places.items()
        if isinstance(ids, dict)
    }
    return KeyPlaces(valid, str(path))
