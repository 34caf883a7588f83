"""Run the real program in-process under Pulumi mocks: no CLI, no cloud, no Docker.

Used by preflight and the tests. The stack file's values go in as Pulumi hands them to a program
(objects JSON-encoded), `__main__.py` runs with runpy, and every registration is awaited, so what
comes back is exactly what the program declared and exported.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import hashlib
import runpy
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pulumi

from postgres_platform.model.load import SECRET_KEYS
from postgres_platform.model.names import NAMESPACE
from postgres_platform.model.stackfile import ROOT, read_stack_values, stack_file
from postgres_platform.offline import sdk

PROJECT = "postgres-platform"


@dataclass(frozen=True)
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]  # secrets unwrapped
    secret_inputs: frozenset[str]  # dotted paths of inputs the program marked secret
    urn: str = ""
    protect: bool = False
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)  # input -> urns it flows from
    aliases: tuple[str, ...] = ()  # earlier names (Alias(name=...)) a deployed stack may know it by
    ignore_changes: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()  # urns it waits for (depends_on and inputs)
    import_id: str = ""  # the `import` option: an existing object adopted by this resource
    retain_on_delete: bool = False


@dataclass(frozen=True)
class _Meta:
    urn: str
    protect: bool
    property_dependencies: dict[str, list[str]]
    aliases: tuple[str, ...]
    ignore_changes: tuple[str, ...]
    dependencies: tuple[str, ...]
    import_id: str
    retain_on_delete: bool


class _RecordingMonitor(sdk.MockMonitor):
    """Keeps what the engine would give a policy: URN, protect, and each input's dependencies."""

    def __init__(self, recorder: RecordingMocks) -> None:
        super().__init__(recorder)
        self.meta: dict[tuple[str, str], _Meta] = {}

    def RegisterResource(self, request: Any) -> Any:
        deps = {key: list(value.urns) for key, value in request.propertyDependencies.items()}
        urn = self.make_urn(request.parent, request.type, request.name)
        aliases = tuple(alias.spec.name for alias in request.aliases if alias.HasField("spec") and alias.spec.name)
        ignored, waits = tuple(request.ignoreChanges), tuple(request.dependencies)
        self.meta[(request.type, request.name)] = _Meta(
            urn, bool(request.protect), deps, aliases, ignored, waits, request.importId, bool(request.retainOnDelete)
        )
        return super().RegisterResource(request)  # type: ignore[no-untyped-call]


@dataclass
class ProgramRun:
    stack: str
    resources: list[Registered]
    outputs: dict[str, Any]  # resolved plain values
    secret_outputs: set[str] = field(default_factory=set)  # dotted paths of secret outputs

    def of_type(self, type_token: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_token]

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(r.type for r in self.resources).items()))


def fake_secret(name: str) -> str:
    """What a mocked RandomPassword returns: unique per resource, easy to search for in outputs."""
    return "pw" + hashlib.sha256(name.encode()).hexdigest()[:30]


def _unwrap(value: Any, path: str, secrets: set[str]) -> Any:
    """Strip the engine's secret wrappers from mock inputs, remembering where they were."""
    secret, value = sdk.unwrap_secret(value)
    if secret:
        secrets.add(path)
        return _unwrap(value, path, secrets)
    if isinstance(value, dict):
        return {k: _unwrap(v, f"{path}.{k}" if path else k, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v, f"{path}[{i}]", secrets) for i, v in enumerate(value)]
    return value


def _pem(kind: str, name: str) -> str:
    return f"-----BEGIN {kind}-----\n{hashlib.sha256(name.encode()).hexdigest()}\n-----END {kind}-----\n"


def _public_ip(name: str) -> str:
    return f"198.51.100.{int(hashlib.sha256(name.encode()).hexdigest(), 16) % 200 + 10}"  # TEST-NET-2


# What providers compute beyond the inputs, for the outputs the program reads.
COMPUTED: dict[str, Any] = {
    "random:index/randomPassword:RandomPassword": lambda name, inputs: {"result": fake_secret(name)},
    "docker:index/remoteImage:RemoteImage": lambda name, inputs: {
        "imageId": "sha256:" + hashlib.sha256(inputs["name"].encode()).hexdigest()
    },
    "hcloud:index/server:Server": lambda name, inputs: {"ipv4Address": _public_ip(name)},
    "tls:index/privateKey:PrivateKey": lambda name, inputs: {"privateKeyPem": _pem("PRIVATE KEY", name)},
    "tls:index/selfSignedCert:SelfSignedCert": lambda name, inputs: {"certPem": _pem("CERTIFICATE", name)},
    "tls:index/certRequest:CertRequest": lambda name, inputs: {"certRequestPem": _pem("CERTIFICATE REQUEST", name)},
    "tls:index/locallySignedCert:LocallySignedCert": lambda name, inputs: {"certPem": _pem("CERTIFICATE", name)},
}


class RecordingMocks(pulumi.runtime.Mocks):
    """Echo inputs back as state, computing the few outputs providers would."""

    def __init__(self) -> None:
        self.registered: list[Registered] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        secrets: set[str] = set()
        state = _unwrap(dict(args.inputs), "", secrets)
        self.registered.append(Registered(args.typ, args.name, dict(state), frozenset(secrets)))
        state.update(COMPUTED.get(args.typ, lambda name, inputs: {})(args.name, state))
        # Hetzner IDs are numbers (the program converts them with int()); every ID depends on the
        # resource alone, so two runs (preflight --against) differ only where the config does.
        digest = int(hashlib.sha256(f"{args.typ}/{args.name}".encode()).hexdigest()[:8], 16)
        resource_id = str(digest) if args.typ.startswith("hcloud:") else f"{args.name}-id"
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


async def _resolve(value: Any, path: str, secrets: set[str]) -> Any:
    if isinstance(value, pulumi.Output):
        if await value.is_secret():
            secrets.add(path)
        return await _resolve(await value.future(), path, secrets)
    if isinstance(value, dict):
        return {k: await _resolve(v, f"{path}.{k}" if path else k, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [await _resolve(v, f"{path}[{i}]", secrets) for i, v in enumerate(value)]
    return value


def with_operator_secrets(values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The values as Pulumi hands them to the program once the operator set the secret config this repo
    cannot hold (`pulumi config set --secret`): stand-ins where missing, every secret key marked secret."""
    secrets = [f"{NAMESPACE}:{key}" for key in SECRET_KEYS]
    given = {k: v for k, v in values.items() if isinstance(v, str) and v.startswith('{"secure":')}
    completed = {**{key: f"offline-{key.split(':')[1]}" for key in secrets}, **values}
    return completed, sorted({*secrets, *given})


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: the SDK's Outputs, tasks and futures of a run are well over a
    million objects, all live until it ends, and the collector scanning them again and again was half its
    time (and grew faster than the stack). The price: a run's cyclic garbage waits until the end (~8% memory).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@collector_paused()
def run_program(
    stack: str,
    values: dict[str, Any],
    *,
    preview: bool = True,
    recorder: RecordingMocks | None = None,
    program: Callable[[], None] | None = None,
) -> ProgramRun:
    """Run __main__.py for `stack` with these config values; raises what the program raises.

    Pass a `recorder` to see what was registered even when the program raises, and a `program` to run
    that instead of __main__.py (one component on its own, say).
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        recorder = recorder or RecordingMocks()
        monitor = _RecordingMonitor(recorder)
        values, secret_keys = with_operator_secrets(values)
        sdk.start_program(PROJECT, stack, preview, values, recorder, monitor, secret_keys)
        if program is None:
            runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        else:
            program()
        loop.run_until_complete(sdk.wait_for_rpcs())
        secrets: set[str] = set()
        outputs = loop.run_until_complete(_resolve(sdk.root_outputs(), "", secrets))
        resources = [dataclasses.replace(r, **vars(monitor.meta[(r.type, r.name)])) for r in recorder.registered]
        return ProgramRun(stack, resources, outputs, secrets)
    finally:
        # Let registrations queued before a raise finish, so none is left un-awaited.
        with contextlib.suppress(Exception):
            loop.run_until_complete(sdk.wait_for_rpcs())
        sdk.stop_program()
        loop.close()
        asyncio.set_event_loop(None)


def run_stack(stack: str, *, preview: bool = True) -> ProgramRun:
    return run_program(stack, read_stack_values(stack_file(stack)), preview=preview)
