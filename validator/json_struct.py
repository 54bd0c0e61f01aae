"""msgspec Structs for one NDJSON endpoint, derived from ``schemas/endpoint.schema.json``.

The Structs are a *proof* of validity, not the rules themselves: a record that decodes into
``Endpoint`` breaks none of the rules the Structs carry as constraints, so those rules need not
be run on it again. A record that does not decode is not necessarily wrong; it goes to the
exact checks (``check.check_json_object`` and ``check.check_batch``), which decide.

What the Structs prove (each constraint is taken from the compiled schema, never hand-written):

- every key is an endpoint field (``forbid_unknown_fields``; attribute names at least one
  character long and within their length limit);
- every value has its type (strings, numbers, objects, arrays of strings); objects and
  attribute/metric values are never null and attribute arrays never empty (such a record takes
  the exact path, which tells a value from an absent one);
- values drawn from a short list (EndpointStatus, Demographic.Timezone) are one of them or
  empty (``Literal``);
- numbers are finite and inside their ranges (``ge``/``le``);
- attribute values and value counts are within their limits.

What they leave to the reader: attribute name patterns (a regex per value costs as much as the
rest of the decode; the reader tests each distinct name once, ``name_patterns``), repeated keys
(the reader's token count) and the endpoint size (bounded from the line's length). What they
leave to ``check.check_batch`` over a narrow table (``table_fields``): the fields whose rules are
patterns, calendars or conditions on other fields (Address, EffectiveDate), the fields of the
required rule, the keys the cross-record rules count (Id, User.UserId, ChannelType), and the
value lists that are long (Demographic.Locale) or often broken (``COLUMN_WIDE``), checked once
per distinct value.
"""

from __future__ import annotations

import re
import sys
from functools import cache
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from validator.schema import MapField, Schema, load_schema

__all__ = ["UNSET", "Plan", "plan"]

KEY_FIELDS = ("Id", "User.UserId", "ChannelType")  # read by the cross-record rules
LITERAL_MAX = 1000  # a value list longer than this is checked column-wide (Demographic.Locale)
# Value lists that real exports often break (lower-case channels, YES/NO opt-outs, alpha-3
# countries): as a Literal each such record would cost a refused decode run and the slow path;
# column-wide it costs one lookup per distinct value. ChannelType is a table field anyway.
COLUMN_WIDE = ("ChannelType", "OptOut", "Location.Country")
FINITE = Meta(ge=-sys.float_info.max, le=sys.float_info.max)


def _py_pattern(pattern: str) -> str:
    """An RE2 full-text pattern for Python's ``re.search`` (as msgspec applies it): ``$``
    at the end is the end of the text (``\\Z``), not "before a final newline"."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    if not pattern.startswith("^"):
        pattern = "^" + pattern
    return pattern


class Plan:
    """The Struct types for one schema, and what the reader needs to use them."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        proven_by_literal: dict[str, tuple[str, ...]] = {}
        needs_table: set[str] = set(KEY_FIELDS)
        required = schema.required
        needs_table |= {required.unless, *required.fields}
        pools: dict[str, set[str] | None] = {}
        for rule in schema.value_rules:
            pure_pool = (
                rule.pattern is None
                and not rule.calendar_date
                and rule.when_field is None
                and (rule.enum is not None or rule.values is not None)
            )
            if not pure_pool:
                needs_table.add(rule.field)
                if rule.when_field:
                    needs_table.add(rule.when_field)
                pools[rule.field] = None  # no Literal for a field with another rule
                continue
            if rule.field in pools and pools[rule.field] is None:
                continue
            members = set(rule.enum or rule.values or ())
            if rule.enum is not None and rule.values is not None:
                members = set(rule.enum) & set(rule.values)
            previous = pools.get(rule.field)
            pools[rule.field] = members if previous is None else set(previous) & members
        for name, pool in pools.items():
            if pool is None:
                continue
            if len(pool) > LITERAL_MAX or name in COLUMN_WIDE:
                # a Literal this large is slow to build and a regex slow to apply per value:
                # the field is checked column-wide, once per distinct value
                needs_table.add(name)
            else:
                proven_by_literal[name] = tuple(sorted(pool | {""}))
        self.table_fields: tuple[str, ...] = tuple(f for f in schema.fields if f in needs_table)
        self.literals = proven_by_literal
        self.structs: dict[str, type[Struct]] = {}
        self.name_patterns: dict[str, re.Pattern[str]] = {}  # per map prefix
        self.tested_names: dict[str, set[str]] = {}  # per map prefix: names whose patterns held
        self.children: dict[str, tuple[str, ...]] = {}
        self.endpoint: type[Struct] = self._struct("", schema.top_level)
        self.top_fields: tuple[str, ...] = schema.top_level
        self.map_heads: tuple[str, ...] = tuple({m.partition(".")[0]: None for m in schema.maps})
        self.decoder = msgspec.json.Decoder(self.endpoint)
        self.encoder = msgspec.json.Encoder()

    def _leaf_type(self, dotted: str) -> Any:
        schema = self.schema
        if dotted in schema.containers:
            return self._struct(dotted, schema.containers[dotted])
        if dotted in schema.maps:
            return self._map_type(schema.maps[dotted])
        kind = schema.fields[dotted]
        if kind == "number":
            rule = schema.number_rules.get(dotted)
            lo = rule.minimum if rule is not None and rule.minimum is not None else None
            hi = rule.maximum if rule is not None and rule.maximum is not None else None
            meta = Meta(
                ge=lo if lo is not None else -sys.float_info.max,
                le=hi if hi is not None else sys.float_info.max,
            )
            return Annotated[float, meta]
        if dotted in self.literals:
            return Literal[self.literals[dotted]]
        return str

    def _struct(self, path: str, members: tuple[str, ...]) -> type[Struct]:
        fields: list[tuple[str, Any, Any]] = []
        for key in members:
            dotted = f"{path}.{key}" if path else key
            if dotted in self.table_fields:
                # read straight into the table: absent and null are both None (and omitted
                # when encoded, see read_json's key count)
                fields.append((key, self._leaf_type(dotted) | None, None))
            elif dotted in self.schema.containers:
                # never null (a null object takes the exact path) and, when absent, one shared
                # empty instance: the reader reads nested fields with one dotted attrgetter
                child = self._leaf_type(dotted)
                fields.append((key, child, child()))
            else:
                fields.append((key, self._leaf_type(dotted) | None | UnsetType, UNSET))
        name = "Endpoint" + path.replace(".", "")
        cls = msgspec.defstruct(
            name,
            fields,
            forbid_unknown_fields=True,
            omit_defaults=True,
            gc=False,
            frozen=True,  # so that an empty instance may be the shared default
        )
        self.structs[path] = cls
        self.children[path] = members
        return cls

    def _map_type(self, m: MapField) -> Any:
        """A map's Struct type: names within their length limits (their patterns, a regex per
        name, are tested once per distinct name by the reader: ``name_patterns``), values of
        their type and limits, never null and never an empty array (those records take the
        exact path, which tells a value from an absent one)."""
        max_length = None
        patterns: list[str] = []
        for rule in m.name_rules:
            if rule.max_length is not None:
                max_length = (
                    rule.max_length if max_length is None else min(max_length, rule.max_length)
                )
            if rule.pattern is not None:
                patterns.append(_py_pattern(rule.pattern))
        if patterns:
            self.name_patterns[m.prefix] = re.compile(
                patterns[0] if len(patterns) == 1 else "".join(f"(?={p})" for p in patterns)
            )
        key = Annotated[str, Meta(min_length=1, max_length=max_length)]
        value: Any
        if m.kind == "numbers":
            number = m.number
            lo = number.minimum if number is not None and number.minimum is not None else None
            hi = number.maximum if number is not None and number.maximum is not None else None
            value = Annotated[
                float,
                Meta(
                    ge=lo if lo is not None else -sys.float_info.max,
                    le=hi if hi is not None else sys.float_info.max,
                ),
            ]
        else:
            item: Any = (
                Annotated[str, Meta(max_length=m.max_value_length)]
                if m.max_value_length is not None
                else str
            )
            value = Annotated[list[item], Meta(min_length=1, max_length=m.max_values)]
        return dict[key, value] | None


@cache
def plan() -> Plan:
    """The Structs for the loaded schema (built once per process)."""
    return Plan(load_schema())
