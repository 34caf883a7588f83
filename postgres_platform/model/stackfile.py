"""Stack files as the Pulumi CLI reads them: bounded, strict YAML, the values Pulumi would pass the program."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent, Event, MappingStartEvent, NodeEvent, SequenceStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from postgres_platform.model.config import ConfigError, PlatformConfig
from postgres_platform.model.load import load_stack_values

ROOT = Path(__file__).resolve().parents[2]  # the Pulumi project: Pulumi.yaml, __main__.py, stack files


def stack_file(stack: str) -> Path:
    return ROOT / f"Pulumi.{stack}.yaml"


# Bounds on a stack file, checked while it is composed: before any alias is expanded into memory (a few hundred
# bytes of nested aliases, a "billion laughs", would otherwise expand to gigabytes). Prod's file is 3 KB, about
# 200 values, 5 levels deep: the bounds leave room for hundreds of times that and nothing near a machine's memory.
MAX_FILE_BYTES = 1 << 20  # 1 MiB, read no further
MAX_VALUES = 100_000  # mappings, sequences and scalars, each alias counted as the whole value it names, each use
MAX_TEXT = 4 * MAX_FILE_BYTES  # characters in scalars, aliases expanded the same way
MAX_DEPTH = 64  # nesting levels, aliases expanded; PyYAML composes (and json encodes) nesting recursively
DEPTH_REFUSED = f"nests more than {MAX_DEPTH} levels deep (aliases expanded)"
MAX_NUMBER_CHARS = 100  # no setting is a longer number; int() of a long sexagesimal one takes quadratic time
_REFUSED_TAGS = ("binary", "set", "omap", "pairs")  # values JSON cannot carry, as Pulumi passes config on


class _Refused(yaml.MarkedYAMLError):
    """A bound above crossed: `file:line: problem`, not reported as YAML that does not parse."""


class _Measure(NamedTuple):
    """What a node becomes once its aliases are expanded."""

    values: int
    text: int
    height: int  # nesting levels it holds: 0 for a scalar


class _BoundedComposer(Composer):
    """PyYAML's composer (an alias stays a reference to its anchor's node: nothing is expanded here) that measures
    each node as if its aliases were expanded, and refuses past the bounds. Linear in the file's events."""

    if TYPE_CHECKING:  # the parser's, which the loaders below mix in

        def peek_event(self) -> Event: ...

    def _start_measuring(self) -> None:
        self._values = 0  # totals so far over the document, aliases expanded
        self._text = 0
        self._open: list[int] = []  # per collection being composed: the height of its tallest child so far
        self._measures: dict[Node, _Measure] = {}  # completed nodes with an anchor, for the aliases naming them

    def _count(self, values: int, text: int, mark: Any) -> None:
        self._values += values
        self._text += text
        if self._values > MAX_VALUES:
            raise _Refused(
                None,
                None,
                f"expands to more than {MAX_VALUES} values (each alias counts as the whole "
                "value it names, each time it is used)",
                mark,
            )
        if self._text > MAX_TEXT:
            raise _Refused(
                None,
                None,
                f"expands to more than {MAX_TEXT} characters of text (each alias counts as "
                "the whole value it names, each time it is used)",
                mark,
            )

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event = self.peek_event()
        mark: Any = event.start_mark  # the parser's Mark (PyYAML's or libyaml's)
        depth = len(self._open)
        if isinstance(event, AliasEvent):
            node = super().compose_node(parent, index)  # its anchor's node (or an undefined alias error)
            measure = self._measures.get(node) if node is not None else None
            if measure is None:  # its anchor's collection is still open: the alias is inside it
                raise _Refused(
                    None, None, f"alias *{event.anchor} is used inside the value it names (a recursive structure)", mark
                )
            self._count(measure.values, measure.text, mark)
        else:
            collection = isinstance(event, SequenceStartEvent | MappingStartEvent)
            before = (self._values, self._text)
            if collection:
                self._check_depth(depth + 1, mark)
                self._count(1, 0, mark)
                self._open.append(0)
            node = super().compose_node(parent, index)
            if node is None:
                return None
            if collection:
                height = self._open.pop() + 1
            else:
                self._count(1, len(node.value), mark)
                height = 0
            measure = _Measure(self._values - before[0], self._text - before[1], height)
            if isinstance(event, NodeEvent) and event.anchor is not None:
                self._measures[node] = measure
        self._check_depth(depth + measure.height, mark)
        if self._open:
            self._open[-1] = max(self._open[-1], measure.height)
        return node

    @staticmethod
    def _check_depth(depth: int, mark: Any) -> None:
        if depth > MAX_DEPTH:
            raise _Refused(None, None, DEPTH_REFUSED, mark)


class _StrictConstructor(SafeConstructor):
    """SafeConstructor that refuses a key given twice (PyYAML keeps the last one without a word), keys that are not
    plain one-line values, and what JSON cannot carry; reads timestamps as the strings Pulumi sees. Any value it
    cannot read is a ConstructorError at its line, never another exception."""

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ArithmeticError, LookupError, TypeError, ValueError) as exc:
            tag = str(node.tag).removeprefix("tag:yaml.org,2002:")
            raise ConstructorError(None, None, f"cannot read this value as {tag}: {exc}", node.start_mark) from None


def _kind(node: Node) -> str:
    return "mapping" if isinstance(node, MappingNode) else "sequence" if isinstance(node, SequenceNode) else "scalar"


def _mapping_without_duplicates(loader: Any, node: Node) -> Any:
    if not isinstance(node, MappingNode):
        raise ConstructorError(None, None, f"expected a mapping, found a {_kind(node)}", node.start_mark)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if not isinstance(key_node, ScalarNode):
            raise ConstructorError(
                None, None, f"a key must be a plain value, found a {_kind(key_node)}", key_node.start_mark
            )
        key = loader.construct_object(key_node)
        if isinstance(key, str) and not key.isprintable():
            raise ConstructorError(
                None, None, f"key {key!r} holds a line break or control character", key_node.start_mark
            )
        if key in seen:
            raise ConstructorError(None, None, f"key {key!r} is given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


def _bounded_number(construct: Callable[[SafeConstructor, ScalarNode], Any]) -> Callable[[Any, Node], Any]:
    def number(loader: Any, node: Node) -> Any:
        if isinstance(node, ScalarNode) and len(node.value) > MAX_NUMBER_CHARS:
            raise ConstructorError(None, None, f"a number of more than {MAX_NUMBER_CHARS} characters", node.start_mark)
        return construct(loader, node)  # type: ignore[arg-type]  # a non-scalar: its own ConstructorError

    return number


def _as_string(loader: Any, node: Node) -> Any:
    return loader.construct_scalar(node)  # a non-scalar: its own ConstructorError


def _refused_tag(loader: Any, node: Node) -> Any:
    tag = str(node.tag).removeprefix("tag:yaml.org,2002:")
    raise ConstructorError(None, None, f"a !!{tag} value is no stack setting (config values are JSON)", node.start_mark)


_StrictConstructor.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)
_StrictConstructor.add_constructor("tag:yaml.org,2002:int", _bounded_number(SafeConstructor.construct_yaml_int))
_StrictConstructor.add_constructor("tag:yaml.org,2002:float", _bounded_number(SafeConstructor.construct_yaml_float))
# Pulumi's YAML (Go yaml.v3) hands an unquoted date or time to a program as the string written.
_StrictConstructor.add_constructor("tag:yaml.org,2002:timestamp", _as_string)
for _tag in _REFUSED_TAGS:
    _StrictConstructor.add_constructor(f"tag:yaml.org,2002:{_tag}", _refused_tag)


class _PythonLoader(Reader, Scanner, Parser, _BoundedComposer, _StrictConstructor, Resolver):
    """PyYAML's own loader, bounded and strict."""

    def __init__(self, stream: bytes) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        _BoundedComposer.__init__(self)
        _StrictConstructor.__init__(self)
        Resolver.__init__(self)
        self._start_measuring()


_Loader: type[Any] = _PythonLoader
if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _LibyamlLoader(_BoundedComposer, CParser, _StrictConstructor, Resolver):
        """The same with libyaml's scanner and parser (4 times faster here): composing, and so the bounds, stay ours."""

        def __init__(self, stream: bytes) -> None:
            CParser.__init__(self, stream)
            _BoundedComposer.__init__(self)
            _StrictConstructor.__init__(self)
            Resolver.__init__(self)
            self._start_measuring()

    _Loader = _LibyamlLoader


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _read_document(path: Path) -> Any:
    """The stack file's YAML document; every problem one ConfigError line `file[:line]: problem`."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read it: {exc.strerror or exc}"]) from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError([f"{path}: is larger than {MAX_FILE_BYTES} bytes (1 MiB), the most a stack file may be"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError([f"{path}:{line}: not UTF-8 text: byte 0x{data[exc.start]:02x} ({exc.reason})"]) from None
    unprintable = Reader.NON_PRINTABLE.search(text)  # YAML's rule; found here, its line is known
    if unprintable:
        line = text.count("\n", 0, unprintable.start()) + 1
        character = ord(unprintable.group())
        raise ConfigError([f"{path}:{line}: not valid YAML: control character U+{character:04X} is not allowed"])
    try:
        return yaml.load(data, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        kind = "" if isinstance(exc, _Refused) else "not valid YAML: "
        problem = exc.problem or exc.context or "?"
        if problem.startswith("exceeded maximum nesting depth"):  # libyaml's own bound (PyYAML 6.0.4), past ours
            kind, problem, exc.context = "", DEPTH_REFUSED, None
        if exc.problem and exc.context:  # `second occurrence` says little without `found duplicate anchor 'a'`
            problem += f" ({exc.context}" + (f" at line {exc.context_mark.line + 1})" if exc.context_mark else ")")
        raise ConfigError([_one_line(f"{where}: {kind}{problem}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([_one_line(f"{path}: not valid YAML: {exc}")]) from None


def read_stack_values(path: Path) -> dict[str, Any]:
    """The stack file's values as the Pulumi CLI would pass them (objects JSON-encoded).

    Every key is kept, so model.load can say which ones it does not read (a namespace typo would
    otherwise drop a whole section without a word). A bad file (too large, not UTF-8, bad YAML, past the
    bounds above) is one ConfigError line: file, line, problem.
    """
    document = _read_document(path) or {}
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        got = type(config).__name__ if config is not None else "nothing"
        raise ConfigError([f"{path}: `config` must be a mapping of stack settings, got {got}"])
    for key in config:
        if not isinstance(key, str):
            raise ConfigError([f"{path}: `config` keys must be strings (namespace:key), got {key!r}"])
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}


def load_stack_file(path: Path) -> tuple[dict[str, Any], PlatformConfig]:
    """The file's values and its checked config; every problem (a missing file too) is a ConfigError."""
    if not path.is_file():
        raise ConfigError([f"{path}: no such stack file"])
    values = read_stack_values(path)
    return values, load_stack_values(values)
