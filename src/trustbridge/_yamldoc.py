"""YAML documents checked against a JSON schema, with errors that point to the file and line."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from trustbridge.errors import InputError


class DocumentError(InputError):
    """A YAML document that cannot be read, is not YAML, or violates its schema."""

    def __init__(
        self,
        source: str,
        problem: str,
        *,
        json_path: str | None = None,
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
    ) -> None:
        where = source
        if json_path is not None:
            where += f": {json_path}"
            if line is not None:
                where += f" (line {line})"
        elif line is not None:
            where += f": line {line}" + (f", column {column}" if column is not None else "")
        super().__init__(f"{where}: {problem}", hint=hint)
        #: The file (or resource) the document came from.
        self.source = source
        #: JSON path of the offending node (``$.criteria[2].value``), when there is one.
        self.json_path = json_path
        #: 1-based line in the file, when known.
        self.line = line
        #: 1-based column of a YAML syntax error, when known.
        self.column = column


def read_text(path: Path, source: str, limit: int, error: type[DocumentError]) -> str:
    """The UTF-8 text of ``path``, at most ``limit`` bytes."""
    try:
        with path.open("rb") as stream:
            raw = stream.read(limit + 1)
    except OSError as exc:
        raise error(source, f"cannot read the file: {exc.strerror}") from None
    if len(raw) > limit:
        raise error(source, f"larger than {limit} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(source, f"not UTF-8 text (byte {exc.start})") from None


def load(
    text: str,
    source: str,
    validator: jsonschema.protocols.Validator,
    error: type[DocumentError],
    *,
    what: str,
) -> Any:
    """The data of YAML ``text``, valid under ``validator`` (``what`` names the schema)."""
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = "; ".join(part for part in (exc.context, exc.problem) if part)
        raise error(
            source,
            f"not valid YAML: {problem or 'syntax error'}",
            line=mark.line + 1 if mark is not None else None,
            column=mark.column + 1 if mark is not None else None,
        ) from None
    except yaml.YAMLError as exc:
        raise error(source, f"not valid YAML: {exc}") from None
    violation: jsonschema.ValidationError | None = jsonschema.exceptions.best_match(
        validator.iter_errors(data)
    )
    if violation is not None:
        raise error(
            source,
            f"violates the {what} schema: {violation.message}",
            json_path=violation.json_path,
            line=line_of(text, violation.absolute_path),
        )
    return data


def line_of(text: str, path: Iterable[str | int]) -> int | None:
    """The 1-based line of the YAML node at ``path``, as far down as the path exists."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    for step in path:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == step), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            child = node.value[step] if 0 <= step < len(node.value) else None
        if child is None:
            break
        node = child
    return int(node.start_mark.line) + 1
