"""Runs the whole Pulumi program (`__main__.py`) under mocks, beside a loopback Cloudflare API."""

from __future__ import annotations

import asyncio
import json
import logging
import runpy
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks, rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.stack import Stack

from tests.cloudflare_fake import ACCOUNT_ID

# pulumi-cloudflare warns on import about its own deprecated resources, none of which aigw uses.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulumi_cloudflare  # noqa: F401  # imported for its side effect: warnings silenced once


PROGRAM = Path(__file__).resolve().parents[2] / "__main__.py"
ACCOUNT = ACCOUNT_ID
ZONE = "fedcba9876543210fedcba9876543210"
RUN_GROUP_ID = "run-group-id-for-tests"
CREATED_GATEWAY_TOKEN = "created-gateway-token-for-tests"
GENERATED_CLIENT_TOKEN = "GeneratedClientTokenForTests0123456789abcdefABCD"


PERMISSION_GROUPS_TOKEN = (
    "cloudflare:index/getAccountApiTokenPermissionGroupsList:getAccountApiTokenPermissionGroupsList"
)


@dataclass(frozen=True)
class Registration:
    """One resource as the program registered it with the engine."""

    type: str
    name: str
    urn: str
    parent: str
    dependencies: tuple[str, ...]
    inputs: dict[str, Any]
    """Inputs as the engine received them; secret values stay wrapped (see `is_secret_input`)."""
    protect: bool
    replace_on_changes: tuple[str, ...]
    delete_before_replace: bool


@dataclass
class ProgramRun:
    """What one run of the program registered and exported."""

    registrations: list[Registration] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    invokes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """What the program logged with `pulumi.log.warn`, as `pulumi preview` would print it."""
    error: Exception | None = None
    """What stopped the program, when it stopped."""

    def of_type(self, type_: str) -> list[Registration]:
        """Every registration of one resource type."""
        return [r for r in self.registrations if r.type == type_]

    def one(self, type_: str) -> Registration:
        """The single registration of one resource type."""
        found = self.of_type(type_)
        assert len(found) == 1, f"expected one {type_}, got {[r.name for r in found]}"
        return found[0]


class AigwMocks(pulumi.runtime.Mocks):
    """Echoes inputs as state and fills in what Cloudflare and pulumi-random would compute."""

    def __init__(self, run: ProgramRun) -> None:
        self._run = run

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == "cloudflare:index/accountToken:AccountToken":
            state["value"] = CREATED_GATEWAY_TOKEN
        if args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = GENERATED_CLIENT_TOKEN
        return f"{args.name}-id", state

    # The base class declares a narrower return type than the mock engine accepts.
    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        self._run.invokes.append(args.token)
        assert args.token == PERMISSION_GROUPS_TOKEN, args.token
        groups = [("AI Gateway Read", "read-group-id"), ("AI Gateway Run", RUN_GROUP_ID)]
        results = [
            {
                "id": group_id,
                "name": name,
                "category": "ai_and_machine_learning",
                "isSelectable": True,
                "scopes": ["com.cloudflare.api.account"],
            }
            for name, group_id in groups
        ]
        return {"results": results}


class _WarningRecorder(logging.Handler):
    """Keeps the warnings the mock engine receives (it hands `pulumi.log` calls to a logger)."""

    def __init__(self, run: ProgramRun) -> None:
        super().__init__(logging.WARNING)
        self._run = run

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno == logging.WARNING:
            self._run.warnings.append(record.getMessage())


ENGINE_LOGGER = logging.getLogger("aigw.tests.mock_engine")
"""Where the mock engine sends `pulumi.log` calls; kept apart so no other logging mixes in."""
ENGINE_LOGGER.propagate = False


class RecordingMonitor(mocks.MockMonitor):
    """A mock monitor that also records parents, dependencies and secret-wrapped inputs."""

    def __init__(self, mocks_: AigwMocks, run: ProgramRun) -> None:
        super().__init__(mocks_)
        self._run = run

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self._run.registrations.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent=request.parent,
                    dependencies=tuple(request.dependencies),
                    inputs=rpc.deserialize_properties(request.object),
                    protect=bool(request.protect),
                    replace_on_changes=tuple(request.replaceOnChanges),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                )
            )
        return response


def is_secret_input(value: object) -> bool:
    """Whether an input reached the engine wrapped as a Pulumi secret."""
    return rpc.is_rpc_secret(value)


def reveal(value: object) -> Any:
    """The value inside a secret-wrapped input (for checking what the engine would store)."""
    return rpc.unwrap_rpc_secret(value)


def run_program(
    config: Mapping[str, object],
    stack: str = "dev",
    *,
    other_config: Mapping[str, str] | None = None,
    expect_error: bool = False,
) -> ProgramRun:
    """Run `__main__.py` under mocks with `aigw:` config (objects given as Python values).

    `other_config` holds full keys of other namespaces (`cloudflare:apiToken`). With
    `expect_error`, the exception that stopped the program is returned in `run.error`.
    """
    run = ProgramRun()
    _ensure_event_loop()
    mocks_ = AigwMocks(run)
    # A fresh root stack per run, so exports and registrations never leak between runs.
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(
        mocks_,
        project="aigw",
        stack=stack,
        preview=False,
        logger=ENGINE_LOGGER,
        monitor=RecordingMonitor(mocks_, run),
    )
    pulumi.runtime.set_all_config(
        {
            **{
                f"aigw:{key}": value if isinstance(value, str) else json.dumps(value)
                for key, value in config.items()
            },
            **(other_config or {}),
        },
        secret_keys=[f"aigw:{key}" for key in ("providerKeys", "clientTokens", "gatewayToken")],
    )

    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        runpy.run_path(str(PROGRAM), run_name="__main__")
        root = runtime_settings.get_root_resource()
        assert isinstance(root, Stack)
        exports: dict[str, pulumi.Output[Any]] = {
            name: pulumi.Output.from_input(value) for name, value in root.outputs.items()
        }

        def collect(name: str, output: pulumi.Output[Any]) -> pulumi.Output[None]:
            async def secret() -> bool:
                return await output.is_secret()

            return pulumi.Output.all(output, pulumi.Output.from_input(secret())).apply(
                lambda pair: _record(run, name, pair[0], pair[1])
            )

        return pulumi.Output.all(*(collect(n, o) for n, o in exports.items())).apply(lambda _: None)

    recorder = _WarningRecorder(run)
    ENGINE_LOGGER.addHandler(recorder)
    try:
        program()
    except Exception as error:
        if not expect_error:
            raise
        run.error = error
    else:
        assert not expect_error, "the program ran to the end"
    finally:
        ENGINE_LOGGER.removeHandler(recorder)
    return run


def _ensure_event_loop() -> None:
    """Give the main thread an event loop if an earlier test's `asyncio.run` left it none.

    Pulumi's mocks run the program on the main thread's loop; `asyncio.run` (used by the load
    tests) clears it on exit, which would break every program run after it.
    """
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


def _record(run: ProgramRun, name: str, value: Any, secret: bool) -> None:
    run.outputs[name] = value
    if secret:
        run.secret_outputs.add(name)
