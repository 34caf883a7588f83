"""The private Pulumi SDK internals the offline runner needs, behind one small adapter.

Checked against pulumi 3.272.0 and pulumi-policy 1.21.0 (pinned in requirements.txt): a newer SDK
that moves any of these fails here, in one place, with an ImportError or AttributeError.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime import mocks, resource, rpc, settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.stack import wait_for_rpcs
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import (
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
    unknown_checking_proxy,
)

MockMonitor = mocks.MockMonitor
NotApplicableError = _NotApplicableError  # what StackValidationArgs.not_applicable raises
__all__ = [
    "MockMonitor",
    "NotApplicableError",
    "UnknownValueError",
    "root_outputs",
    "start_program",
    "stop_program",
    "unknown_checking_proxy",
    "unknown_like",
    "unwrap_secret",
    "wait_for_rpcs",
]


def unwrap_secret(value: Any) -> tuple[bool, Any]:
    """(True, the plain value) for a secret as the engine sends it to a mock; else (False, value)."""
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return True, value["value"]
    return False, value


# Every resource's constructor walks the whole Python stack (traceback.extract_stack, reading each file's
# source line) so the engine can show where it was declared: a tenth of a mocked run, which no mock reads.
# 3.272 has no setting to skip it, so a run under mocks swaps in an empty trace (what the SDK itself sends
# when it finds no user frame) and stop_program puts the SDK's back.
_SDK_STACK_TRACE = resource._get_stack_trace


def _no_stack_trace() -> source_pb2.StackTrace:
    return source_pb2.StackTrace()


def start_program(
    project: str,
    stack: str,
    preview: bool,
    values: dict[str, Any],
    recorder: pulumi.runtime.Mocks,
    monitor: Any,
    secret_keys: list[str],
) -> None:
    """Fresh SDK state for one program run under mocks, with the stack's config values."""
    settings.reset_options(project=project, stack=stack, preview=preview)
    resource._get_stack_trace = _no_stack_trace
    set_all_config(dict(values), secret_keys)
    mocks.set_mocks(recorder, project=project, stack=stack, preview=preview, monitor=monitor)


def stop_program() -> None:
    settings.reset_options()
    resource._get_stack_trace = _SDK_STACK_TRACE


def root_outputs() -> dict[str, Any]:
    """What the program exported (pulumi.export), as Outputs."""
    return dict(getattr(settings.get_root_resource(), "outputs", {}))


def unknown_like(value: Any) -> str:
    """The policy SDK's sentinel for an unknown value of this one's type (as at preview)."""
    if isinstance(value, bool):
        return UNKNOWN_BOOLEAN_VALUE
    if isinstance(value, int | float):
        return UNKNOWN_NUMBER_VALUE
    if isinstance(value, list):
        return UNKNOWN_ARRAY_VALUE
    if isinstance(value, dict):
        return UNKNOWN_OBJECT_VALUE
    return UNKNOWN_STRING_VALUE
