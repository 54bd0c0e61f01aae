"""The rules as data: load ``schemas/*.json`` and compile them for the checks.

The files (``endpoint.schema.json``, ``limits.json``, ``rules.json``, ``iso3166-1.json``,
``iso639-1.json``) live in ``validator/_schemas/`` in an installed wheel and in the repository's
``schemas/`` folder in a checkout. ``load_schema()`` reads them once per process and returns a
``Schema``: field names and kinds, the value rules with their codes, the limits, every rule's
severity, and the Arrow schema the JSON reader parses with. Nothing here knows a field name or a
number that the files do not say; the files say where each rule comes from.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from validator.errors import PreflightError

__all__ = [
    "FieldKind",
    "Limits",
    "MapField",
    "NameRule",
    "NumberRule",
    "RequiredRule",
    "Rule",
    "Schema",
    "SchemaFileError",
    "ValueRule",
    "load",
    "load_schema",
    "schema_dir",
]

FieldKind = Literal["string", "number", "strings", "numbers"]
"""What one dotted field holds: a string, a number, an attribute (array of strings), a metric."""

SEVERITIES = ("error", "warning", "info")


class SchemaFileError(PreflightError):
    """A file in schemas/ is missing or contradicts another: the installation is broken."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule code: its severity and the documentation behind it (a row of the README table)."""

    code: str
    severity: str
    stage: str
    description: str
    source: str
    severity_for_push: str | None = None


@dataclass(frozen=True, slots=True)
class ValueRule:
    """A rule on the value of one string field, optionally only when another field has a value.

    A value passes when it is in ``enum`` / ``values`` (when given), matches ``pattern`` (when
    given) and, with ``calendar_date``, its first ten characters name a real day.

    ``values`` is built on first use (``values_of``): the time-zone list walks the tz database
    and the locale list joins every language with every country, so a run whose files hold
    no such field never pays for them.
    """

    code: str
    field: str
    what: str
    hint: str | None = None
    source: str | None = None
    enum: tuple[str, ...] | None = None
    pattern: str | None = None
    values_of: Callable[[], frozenset[str]] | None = dc_field(
        default=None, repr=False, compare=False
    )
    values_ref: str | None = None
    calendar_date: bool = False
    when_field: str | None = None
    when_values: frozenset[str] | None = None
    _values: frozenset[str] | None = dc_field(default=None, init=False, repr=False, compare=False)

    @property
    def values(self) -> frozenset[str] | None:
        """The value list (None: the rule has none), built once, on first use."""
        if self._values is None and self.values_of is not None:
            object.__setattr__(self, "_values", self.values_of())
        return self._values

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled with its list built: the builder is a closure over the schema
        kw = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        values = self.values
        kw["values_of"] = None if values is None else functools.partial(_same, values)
        return (functools.partial(ValueRule, **kw), ())


@dataclass(frozen=True, slots=True)
class NumberRule:
    """A number field (or every member of a number map): finite, and optionally in a range."""

    code: str
    what: str
    range_code: str | None = None
    range_what: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class NameRule:
    """A rule on custom attribute names: a maximum length or a pattern the name must match."""

    code: str
    what: str
    max_length: int | None = None
    pattern: str | None = None
    hint: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class MapField:
    """A map-shaped member whose keys are custom names: ``Attributes.<name>`` and the like.

    ``kind`` is ``"strings"`` (name -> array of strings) or ``"numbers"`` (name -> number).
    """

    prefix: str
    kind: Literal["strings", "numbers"]
    name_rules: tuple[NameRule, ...]
    values_code: str | None = None
    max_values: int | None = None
    values_what: str | None = None
    value_code: str | None = None
    max_value_length: int | None = None
    value_what: str | None = None
    number: NumberRule | None = None

    @property
    def repeatable(self) -> bool:
        """A CSV may repeat this header to give several values."""
        return self.kind == "strings"


@dataclass(frozen=True, slots=True)
class RequiredRule:
    """Without a non-empty ``unless`` field, every one of ``fields`` must be non-empty."""

    code: str
    unless: str
    fields: tuple[str, ...]
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """Service limits from limits.json (sizes in bytes)."""

    job_size_bytes: int
    endpoint_size_bytes: int
    attribute_name_length: int
    attribute_value_length: int
    attribute_values: int
    custom_attributes_per_job: int
    endpoints_per_user: int
    push_channel_types: frozenset[str]
    values: Mapping[str, Any]
    sources: Mapping[str, str]


def schema_dir() -> Path:
    """The folder holding the schema files: installed copy first, then the repository's."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_schemas", here.parent / "schemas"):
        if (candidate / "endpoint.schema.json").is_file():
            return candidate
    raise SchemaFileError(
        f"the rule files (endpoint.schema.json, ...) are in neither {here / '_schemas'} nor "
        f"{here.parent / 'schemas'}: reinstall pinpoint-preflight"
    )


def _read_json(folder: Path, name: str) -> Any:
    path = folder / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemaFileError(f"cannot read {path}: {exc}") from exc


class Schema:
    """The compiled rules. Build it with ``load_schema()``; it is immutable and shared."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._files: dict[str, Any] = {}
        self.document: dict[str, Any] = self._file("endpoint.schema.json")
        self.rules: tuple[Rule, ...] = self._compile_rules(self._file("rules.json"))
        self._rules_by_code = {rule.code: rule for rule in self.rules}
        self.limits: Limits = self._compile_limits(self._file("limits.json"))

        iso3166 = self._file("iso3166-1.json")
        iso639 = self._file("iso639-1.json")
        self.countries: frozenset[str] = frozenset(iso3166["alpha2"])
        self.country_names: Mapping[str, str] = dict(iso3166["names"])
        self.alpha3_to_alpha2: Mapping[str, str] = dict(iso3166["alpha3_to_alpha2"])
        self.reserved_to_alpha2: Mapping[str, str] = dict(iso3166.get("reserved_to_alpha2", {}))
        self.languages: frozenset[str] = frozenset(iso639["codes"])

        doc = self.document
        self.unknown_code: str = doc["x-unknown-code"]
        self.type_code: str = doc["x-type-code"]
        self.not_object_code: str = doc["x-not-object-code"]
        self.number_text_pattern: str = doc["x-number-text-pattern"]

        self.fields: dict[str, Literal["string", "number"]] = {}
        self.top_level: tuple[str, ...] = tuple(doc.get("properties", {}))
        self.containers: dict[str, tuple[str, ...]] = {}
        self.maps: dict[str, MapField] = {}
        self.value_rules: list[ValueRule] = []
        self.number_rules: dict[str, NumberRule] = {}
        self._arrow_fields = self._walk_object(doc, "")
        self.arrow_schema = pa.schema(self._arrow_fields)
        self.required: RequiredRule = self._compile_conditionals(doc.get("allOf", []))
        self._check_codes()
        self._check_limits()

    # -- public queries ---------------------------------------------------------------------------

    def severity(self, code: str, *, push: bool = False) -> str:
        """``"error"``, ``"warning"`` or ``"info"`` for a rule code; ``push`` picks the
        push-channel severity where a rule has one (USER_ENDPOINTS)."""
        rule = self.rule(code)
        if push and rule.severity_for_push:
            return rule.severity_for_push
        return rule.severity

    def limit(self, name: str) -> Any:
        """A limit from limits.json by its key (``"endpoints_per_user"`` -> 15)."""
        try:
            return self.limits.values[name]
        except KeyError:
            raise KeyError(f"limits.json has no {name!r}") from None

    @property
    def push_channel_types(self) -> frozenset[str]:
        """Channel types Pinpoint treats as push when a user has too many endpoints."""
        return self.limits.push_channel_types

    def rule(self, code: str) -> Rule:
        try:
            return self._rules_by_code[code]
        except KeyError:
            raise KeyError(f"unknown rule code {code!r}") from None

    def map_for(self, name: str) -> tuple[MapField, str] | None:
        """``("Attributes" map, "plan")`` for ``Attributes.plan``; None when not a map member.

        The longest prefix wins, so ``User.UserAttributes.x`` is a user attribute. The name is
        everything after the prefix's dot and may itself hold dots.
        """
        for prefix in sorted(self.maps, key=len, reverse=True):
            if name.startswith(prefix + ".") and len(name) > len(prefix) + 1:
                return self.maps[prefix], name[len(prefix) + 1 :]
        return None

    def kind(self, name: str) -> FieldKind | None:
        """What the dotted field holds, or None when the endpoint has no such field."""
        fixed = self.fields.get(name)
        if fixed is not None:
            return fixed
        found = self.map_for(name)
        if found is None:
            return None
        return found[0].kind

    def is_supported(self, name: str) -> bool:
        """Whether ``name`` is a dotted field a CSV header or a flattened JSON key may use."""
        return self.kind(name) is not None

    def arrow_json_schema(self) -> pa.Schema:
        """The explicit schema for ``pyarrow.json.ParseOptions(explicit_schema=...,
        unexpected_field_behavior="infer")``: strings, float64 numbers, structs for the nested
        objects, and an empty struct for each map so that its members are inferred."""
        return self.arrow_schema

    def rules_markdown(self) -> str:
        """The rule table for a README: code, severity, when, source (one line each)."""
        lines = ["| code | severity | when | source |", "|---|---|---|---|"]
        for rule in self.rules:
            severity = rule.severity + (
                f" ({rule.severity_for_push} for push channels)" if rule.severity_for_push else ""
            )
            when = rule.description.replace("|", "\\|")
            lines.append(
                f"| `{rule.code}` | {severity} | {when} | [{_short(rule.source)}]({rule.source}) |"
            )
        return "\n".join(lines) + "\n"

    def field_names(self) -> list[str]:
        """The fixed dotted fields in schema order, then the map patterns
        (``Attributes.<name>``)."""
        return [*self.fields, *(f"{prefix}.<name>" for prefix in self.maps)]

    # -- compiling --------------------------------------------------------------------------------

    def _file(self, name: str) -> Any:
        if name not in self._files:
            self._files[name] = _read_json(self.folder, name)
        return self._files[name]

    def _resolve(self, node: Any) -> dict[str, Any]:
        """Inline local ``$ref``s (``#/$defs/x``); sibling keywords override the referenced ones."""
        if not isinstance(node, dict):
            raise SchemaFileError(f"endpoint.schema.json: expected a schema object, got {node!r}")
        ref = node.get("$ref")
        if ref is None:
            return node
        if not ref.startswith("#/"):
            raise SchemaFileError(f"endpoint.schema.json: only local $ref is supported, not {ref}")
        target: Any = self.document
        for part in ref[2:].split("/"):
            target = target[part]
        merged = dict(self._resolve(target))
        merged.update({k: v for k, v in node.items() if k != "$ref"})
        return merged

    def _subschemas(self, node: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The node and its ``allOf`` members, each resolved: every one may carry an x-code."""
        yield node
        for member in node.get("allOf", []):
            yield from self._subschemas(self._resolve(member))

    def _value_set(self, ref: Any, node: dict[str, Any]) -> frozenset[str]:
        if isinstance(ref, dict) and "join" in ref:
            parts = [sorted(self._value_set(part, {})) for part in ref["join"]]
            sep = ref.get("separator", "")
            return frozenset(sep.join(combo) for combo in itertools.product(*parts))
        if ref == "zoneinfo":
            import zoneinfo  # only when a time zone is checked: walks the tz database

            names = set(zoneinfo.available_timezones())
        elif isinstance(ref, str) and "#/" in ref:
            file_name, pointer = ref.split("#/", 1)
            target: Any = self._file(file_name)
            for part in pointer.split("/"):
                target = target[part]
            names = set(target)
        else:
            raise SchemaFileError(f"endpoint.schema.json: unknown x-values {ref!r}")
        names |= set(node.get("x-values-also", ()))
        names -= set(node.get("x-values-except", ()))
        return frozenset(names)

    def _walk_object(self, node: dict[str, Any], path: str) -> list[pa.Field]:
        arrow: list[pa.Field] = []
        children: list[str] = []
        for name, raw in node.get("properties", {}).items():
            child = self._resolve(raw)
            dotted = f"{path}.{name}" if path else name
            children.append(name)
            types = _types(child)
            if "object" in types and "properties" in child:
                arrow.append(pa.field(name, pa.struct(self._walk_object(child, dotted))))
            elif "object" in types:
                self._compile_map(child, dotted)
                arrow.append(pa.field(name, pa.struct([])))
            elif "number" in types:
                self.fields[dotted] = "number"
                rule = self._compile_number(child)
                if rule is not None:
                    self.number_rules[dotted] = rule
                arrow.append(pa.field(name, pa.float64()))
            elif "string" in types:
                self.fields[dotted] = "string"
                for sub in self._subschemas(child):
                    if "x-code" in sub:
                        self.value_rules.append(self._compile_value(sub, dotted))
                arrow.append(pa.field(name, pa.string()))
            else:
                raise SchemaFileError(f"endpoint.schema.json: {dotted} has no usable type")
        if path:
            self.containers[path] = tuple(children)
        return arrow

    def _compile_value(
        self, node: dict[str, Any], dotted: str, when: tuple[str, frozenset[str]] | None = None
    ) -> ValueRule:
        enum = node.get("enum")
        values_ref = node.get("x-values")
        return ValueRule(
            code=node["x-code"],
            field=dotted,
            what=node.get("x-what", "valid"),
            hint=node.get("x-hint"),
            source=node.get("x-source"),
            enum=tuple(v for v in enum if v is not None) if enum is not None else None,
            # a value list makes the pattern redundant: the pattern is for other JSON Schema users
            pattern=None if values_ref is not None else node.get("pattern"),
            values_of=functools.partial(self._value_set, values_ref, node)
            if values_ref is not None
            else None,
            values_ref=values_ref
            if isinstance(values_ref, str)
            else ("join" if values_ref is not None else None),
            calendar_date=bool(node.get("x-calendar-date", False)),
            when_field=when[0] if when else None,
            when_values=when[1] if when else None,
        )

    def _compile_number(self, node: dict[str, Any]) -> NumberRule | None:
        code = node.get("x-code")
        if code is None:
            return None
        range_code = range_what = minimum = maximum = None
        for sub in self._subschemas(node):
            if "minimum" in sub or "maximum" in sub:
                range_code = sub.get("x-code")
                range_what = sub.get("x-what")
                minimum = sub.get("minimum")
                maximum = sub.get("maximum")
        return NumberRule(
            code=code,
            what=node.get("x-what", "a number"),
            range_code=range_code,
            range_what=range_what,
            minimum=minimum,
            maximum=maximum,
            source=node.get("x-source"),
        )

    def _compile_map(self, node: dict[str, Any], dotted: str) -> None:
        name_rules: list[NameRule] = []
        names = node.get("propertyNames")
        if names is not None:
            for sub in self._subschemas(self._resolve(names)):
                if "x-code" in sub:
                    name_rules.append(
                        NameRule(
                            code=sub["x-code"],
                            what=sub.get("x-what", "a name"),
                            max_length=sub.get("maxLength"),
                            pattern=sub.get("pattern"),
                            hint=sub.get("x-hint"),
                            source=sub.get("x-source"),
                        )
                    )
        value = self._resolve(node.get("additionalProperties", {}))
        types = _types(value)
        if "array" in types:
            items = self._resolve(value.get("items", {}))
            if _types(items) - {"string"}:
                raise SchemaFileError(f"endpoint.schema.json: {dotted} items must be strings")
            self.maps[dotted] = MapField(
                prefix=dotted,
                kind="strings",
                name_rules=tuple(name_rules),
                values_code=value.get("x-code"),
                max_values=value.get("maxItems"),
                values_what=value.get("x-what"),
                value_code=items.get("x-code"),
                max_value_length=items.get("maxLength"),
                value_what=items.get("x-what"),
            )
        elif "number" in types:
            self.maps[dotted] = MapField(
                prefix=dotted,
                kind="numbers",
                name_rules=tuple(name_rules),
                number=self._compile_number(value),
            )
        else:
            raise SchemaFileError(f"endpoint.schema.json: {dotted} map values have no usable type")

    def _compile_conditionals(self, members: list[Any]) -> RequiredRule:
        required: RequiredRule | None = None
        for raw in members:
            member = self._resolve(raw)
            cond, then = member.get("if"), member.get("then")
            if cond is None or then is None:
                raise SchemaFileError("endpoint.schema.json: top-level allOf holds only if/then")
            if "not" in cond:
                unless = cond["not"].get("required", [])
                if len(unless) != 1 or "x-code" not in then:
                    raise SchemaFileError(
                        "endpoint.schema.json: the required rule is "
                        "if: {not: {required: [one field]}}, then: {required}"
                    )
                required = RequiredRule(
                    code=then["x-code"],
                    unless=unless[0],
                    fields=tuple(then["required"]),
                    source=member.get("x-source"),
                )
                continue
            ((when_field, when_schema),) = cond["properties"].items()
            if "const" in when_schema:
                when_values = frozenset([when_schema["const"]])
            else:
                when_values = frozenset(when_schema["enum"])
            for field, sub in then.get("properties", {}).items():
                sub = self._resolve(sub)
                if "x-code" in sub:
                    self.value_rules.append(
                        self._compile_value(sub, field, when=(when_field, when_values))
                    )
        if required is None:
            raise SchemaFileError("endpoint.schema.json: no required-fields rule in allOf")
        return required

    def _compile_rules(self, data: dict[str, Any]) -> tuple[Rule, ...]:
        rules = []
        for entry in data["rules"]:
            if entry["severity"] not in SEVERITIES:
                raise SchemaFileError(f"rules.json: {entry['code']}: bad severity")
            rules.append(
                Rule(
                    code=entry["code"],
                    severity=entry["severity"],
                    stage=entry["stage"],
                    description=entry["description"],
                    source=entry["source"],
                    severity_for_push=entry.get("severity_for_push"),
                )
            )
        return tuple(rules)

    def _compile_limits(self, data: dict[str, Any]) -> Limits:
        def value(key: str) -> Any:
            return data[key]["value"]

        return Limits(
            job_size_bytes=int(value("job_size_bytes")),
            endpoint_size_bytes=int(value("endpoint_size_bytes")),
            attribute_name_length=int(value("attribute_name_length")),
            attribute_value_length=int(value("attribute_value_length")),
            attribute_values=int(value("attribute_values")),
            custom_attributes_per_job=int(value("custom_attributes_per_job")),
            endpoints_per_user=int(value("endpoints_per_user")),
            push_channel_types=frozenset(value("push_channel_types")),
            values={
                key: entry["value"]
                for key, entry in data.items()
                if isinstance(entry, dict) and "value" in entry
            },
            sources={
                key: entry["source"]
                for key, entry in data.items()
                if isinstance(entry, dict) and "source" in entry
            },
        )

    def _check_codes(self) -> None:
        used = {self.unknown_code, self.type_code, self.not_object_code, self.required.code}
        used |= {rule.code for rule in self.value_rules}
        for number in [
            *self.number_rules.values(),
            *(m.number for m in self.maps.values() if m.number),
        ]:
            used.add(number.code)
            if number.range_code:
                used.add(number.range_code)
        for m in self.maps.values():
            used |= {r.code for r in m.name_rules}
            used |= {c for c in (m.values_code, m.value_code) if c}
        missing = sorted(used - set(self._rules_by_code))
        if missing:
            raise SchemaFileError(f"endpoint.schema.json uses codes not in rules.json: {missing}")

    def _check_limits(self) -> None:
        limits = self.limits
        for m in self.maps.values():
            for rule in m.name_rules:
                if rule.max_length is not None and rule.max_length != limits.attribute_name_length:
                    raise SchemaFileError(
                        f"{m.prefix} name maxLength {rule.max_length} != "
                        f"limits.json {limits.attribute_name_length}"
                    )
            if m.kind == "strings" and (m.max_values, m.max_value_length) != (
                limits.attribute_values,
                limits.attribute_value_length,
            ):
                raise SchemaFileError(f"{m.prefix} maxItems/maxLength disagree with limits.json")


def _short(url: str) -> str:
    """``.../developerguide/quotas.html`` -> ``developerguide/quotas``."""
    parts = url.rstrip("/").split("/")
    return "/".join(parts[-2:]).removesuffix(".html")


def _types(node: dict[str, Any]) -> set[str]:
    raw = node.get("type", [])
    types = {raw} if isinstance(raw, str) else set(raw)
    return types - {"null"}


def _same(values: frozenset[str]) -> frozenset[str]:
    return values


@functools.cache
def load_schema() -> Schema:
    """The compiled rules from the schema files, read once per process."""
    return Schema(schema_dir())


load = load_schema
