"""Reading YAML safely and wording pydantic's errors as `file: key.path: message` lines, for specs and model
files alike."""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from harness.errors import SpecError
from harness.spec.schema import InitRule


def format_loc(loc: tuple) -> str:
    """('trainable', 2) -> 'trainable[2]'; ('method', 'args', 'n') -> 'method.args.n'."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def clean_loc(loc: tuple) -> tuple:
    """Drop pydantic's bookkeeping from a location: the tag of a tagged union (`init[0].normal.std` ->
    `init[0].std`) and the `[key]` marker of an invalid mapping key."""
    kept = []
    for index, part in enumerate(loc):
        after_init_index = index >= 2 and loc[index - 2] == "init" and isinstance(loc[index - 1], int)
        if (after_init_index and part in _INIT_TAGS) or part == "[key]":
            continue
        kept.append(part)
    return tuple(kept)


_INIT_TAGS = {  # the init union's discriminator values: pydantic puts the tag in an error's location
    tag
    for rule in typing.get_args(typing.get_args(InitRule)[0])
    for tag in typing.get_args(rule.model_fields["distribution"].annotation)
}


def pydantic_errors(path: Path, error: ValidationError, prefix: tuple = ()) -> list[str]:
    lines = []
    for item in error.errors():
        loc = prefix + clean_loc(item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "missing":
            message = "required key is missing"
        elif "[key]" in item["loc"]:
            message = f"invalid key {item['input']!r}: {message}"
        lines.append(f"{path}: {format_loc(loc)}: {message}")
    return lines


class SpecLoader(yaml.SafeLoader):
    """yaml.SafeLoader (nothing but plain data), reading `1e-4` as a float as YAML 1.2 does, and refusing a
    key written twice in one mapping (PyYAML would silently keep the last).

    PyYAML follows YAML 1.1, where a float needs a dot (`1.0e-4`) and `1e-4` is a string.
    """

    def compose_node(self, parent, index):
        """Refuse an alias (`*name`): each one repeats its anchor's whole value, so a few lines can stand for
        billions of values (a "billion laughs") that validation would walk for hours. No spec needs one."""
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            why = f"an alias (*{event.anchor}); write the value out, a spec holds no aliases"
            raise yaml.composer.ComposerError(None, None, why, event.start_mark)
        return super().compose_node(parent, index)

    def construct_yaml_int(self, node):
        """An integer, or a YAML error: Python refuses to read one of more than 4,300 digits (a ValueError,
        which PyYAML would let through as a traceback)."""
        try:
            return super().construct_yaml_int(node)
        except ValueError:
            why = f"an integer of {len(node.value):,} characters; no setting needs more than a few"
            raise yaml.constructor.ConstructorError(None, None, why, node.start_mark) from None

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {seen[key]}, again on line {line})",
                    key_node.start_mark,
                )  # fmt: skip
            if isinstance(key, str | int | float | bool):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


MAX_SPEC_BYTES = 1_000_000  # a spec is a page of YAML; anything larger is a mistake, and slow to parse
MAX_NESTING = 50  # deeper YAML would exhaust the parser's recursion


SpecLoader.add_constructor("tag:yaml.org,2002:int", SpecLoader.construct_yaml_int)
SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.VERBOSE,
    ),
    list("-+0123456789."),
)


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from `path`, or SpecError naming the file (and line) for anything else."""
    from harness.errors import InputError
    from harness.inputs import present, regular_file

    if path.is_dir():
        raise SpecError([f"{path}: (top level): is a folder, expected a YAML file"])
    if not present(path):
        raise SpecError([f"{path}: (top level): file not found"])
    try:
        regular_file(path, "YAML file")  # a named pipe would block the read forever
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError([f"{path}: (top level): {size:,} bytes; a spec file is at most {MAX_SPEC_BYTES:,}"])
        with path.open("rb") as handle:
            raw = handle.read(MAX_SPEC_BYTES + 1)  # bounded: the file may grow between stat and read
    except SpecError:
        raise
    except InputError as error:
        raise SpecError(error.errors) from None
    except OSError as error:
        raise SpecError([f"{path}: (top level): cannot read the file: {error.strerror or error}"]) from None
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError([f"{path}: (top level): more than {MAX_SPEC_BYTES:,} bytes; a spec file is at most that"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        byte = f"byte {raw[error.start]:#04x} on line {line}"
        raise SpecError([f"{path}: (top level): not UTF-8 text ({byte}); save the spec as UTF-8"]) from None
    depth = nesting_depth(text)
    if depth > MAX_NESTING:
        raise SpecError([f"{path}: (top level): nested {depth} levels deep; a spec nests at most {MAX_NESTING}"])
    try:
        data = yaml.load(text, Loader=SpecLoader)  # a SafeLoader: plain data only
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(unknown position)"
        raise SpecError([f"{path}: {where}: invalid YAML: {error.problem}"]) from None
    except yaml.reader.ReaderError as error:  # a character YAML does not allow (a NUL, a control character)
        line = text.count("\n", 0, error.position) + 1
        column = error.position - (text.rfind("\n", 0, error.position) + 1) + 1
        character = f"#x{error.character:04x}" if isinstance(error.character, int) else repr(error.character)
        raise SpecError(
            [f"{path}: line {line}, column {column}: invalid YAML: character {character}: {error.reason}"]
        ) from None
    except yaml.YAMLError as error:
        raise SpecError([f"{path}: (top level): invalid YAML: {' '.join(str(error).split())}"]) from None
    if data is None:
        raise SpecError([f"{path}: (top level): the file is empty; expected a mapping of keys"])
    if not isinstance(data, dict):
        raise SpecError([f"{path}: (top level): expected a mapping of keys, got {type(data).__name__}"])
    return data


def nesting_depth(text: str) -> int:
    """An upper bound of the YAML nesting: the deepest run of open flow brackets or block indentation levels."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(0, depth - 1)
    indents = {len(line) - len(line.lstrip(" ")) for line in text.splitlines() if line.strip()}
    return max(deepest, len(indents))
