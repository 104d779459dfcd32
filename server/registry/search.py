"""Search conditions over model versions, structured or written as a filter string.

Filter grammar (clauses joined by ``and``, case-insensitive keywords)::

    accuracy >= 0.9 and metrics.f1 > 0.8 and tag = fraud and stage = production
    and framework = pytorch and name = fraud_
    run_id = 3f2a9c and code_revision = 9fceb02 and parent = 1.0.0
    and data = s3://bucket/train.parquet and data_digest = sha256:...

``name = X`` is a name prefix, ``code_revision = X`` a commit prefix (a short hash finds
the full one); the other lineage clauses match exactly. Values may be quoted with ' or ".
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.registry.model import ModelStage
from neural.mlops.server.storage.schema import (
    model_version_data,
    model_version_metrics,
    model_version_tags,
    model_versions,
)

# Filter keys of the lineage, and the SearchQuery field each sets.
LINEAGE_KEYS = {
    "run_id": "source_run_id",
    "source_run_id": "source_run_id",
    "code_revision": "code_revision",
    "commit": "code_revision",
    "parent": "parent_version",
    "parent_version": "parent_version",
    "data": "training_data_uri",
    "data_digest": "training_data_digest",
}
_HEX = re.compile(r"[0-9a-fA-F]{1,40}")

# Over SQL columns the operators build expressions, over numbers they compare.
OPS: dict[str, Callable[[Any, Any], Any]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "=": operator.eq,
    "!=": operator.ne,
}

_CLAUSE = re.compile(
    r"""^\s*(?P<key>[A-Za-z_][\w.\-]*)\s*(?P<op>>=|<=|==|!=|>|<|=)\s*(?P<value>'[^']*'|"[^"]*"|\S+)\s*$"""
)


@dataclass(frozen=True, slots=True)
class MetricCondition:
    metric: str
    op: str
    value: float

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise InvalidArgument(
                f"metric condition operator must be one of {' '.join(OPS)}, got {self.op!r}",
                field="metric_conditions",
            )


@dataclass(slots=True)
class SearchQuery:
    name_prefix: str = ""
    tags: list[str] = field(default_factory=list)
    stage: ModelStage | None = None
    framework: str = ""
    metric_conditions: list[MetricCondition] = field(default_factory=list)
    source_run_id: str = ""
    code_revision: str = ""  # a prefix of the commit
    parent_version: str = ""
    training_data_uri: str = ""
    training_data_digest: str = ""
    # "<key> [asc|desc]" (server/registry/ordering.py); "" = registration order.
    order_by: str = ""


def parse_condition(text: str) -> MetricCondition:
    """``"accuracy >= 0.9"`` -> MetricCondition."""
    m = _CLAUSE.match(text)
    if not m:
        raise InvalidArgument(f"cannot parse metric condition {text!r}", field="metric_conditions")
    return MetricCondition(m["key"].removeprefix("metrics."), m["op"], _number(m["value"], text))


def apply_filter(query: SearchQuery, text: str) -> SearchQuery:
    """Add the clauses of a filter string to ``query``."""
    for clause in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        if not clause:
            continue
        m = _CLAUSE.match(clause)
        if not m:
            raise InvalidArgument(f"cannot parse filter clause {clause!r}", field="filter")
        key, op, raw = m["key"].lower(), m["op"], m["value"].strip("'\"")
        if key in LINEAGE_KEYS:
            if op not in ("=", "=="):
                raise InvalidArgument(f"{key} supports only '=' in filter {clause!r}",
                                      field="filter")
            setattr(query, LINEAGE_KEYS[key], raw)
        elif key in ("tag", "tags", "stage", "framework", "name"):
            if op not in ("=", "=="):
                raise InvalidArgument(f"{key} supports only '=' in filter {clause!r}",
                                      field="filter")
            if key in ("tag", "tags"):
                query.tags.append(raw)
            elif key == "stage":
                query.stage = parse_stage(raw, "filter")
            elif key == "framework":
                query.framework = raw
            else:
                query.name_prefix = raw
        else:
            query.metric_conditions.append(
                MetricCondition(m["key"].removeprefix("metrics."), op, _number(raw, clause))
            )
    return query


def parse_stage(value: str | ModelStage, field_name: str) -> ModelStage:
    if isinstance(value, ModelStage):
        return value
    try:
        return ModelStage(str(value).lower())
    except ValueError:
        raise InvalidArgument(
            f"{field_name}: unknown stage {value!r}; expected one of "
            + ", ".join(s.value for s in ModelStage),
            field=field_name,
        ) from None


def where_clauses(query: SearchQuery) -> list[sa.ColumnElement[bool]]:
    mv = model_versions
    out: list[sa.ColumnElement[bool]] = []
    if query.name_prefix:
        escaped = query.name_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        out.append(mv.c.name.like(escaped + "%", escape="\\"))
    if query.stage is not None:
        out.append(mv.c.stage == query.stage.value)
    if query.framework:
        out.append(mv.c.framework == query.framework)
    out += _lineage_clauses(query)
    for tag in query.tags:
        t = model_version_tags
        out.append(sa.exists().where(t.c.version_id == mv.c.id, t.c.tag == tag))
    for cond in query.metric_conditions:
        m = model_version_metrics
        compare: sa.ColumnElement[bool] = OPS[cond.op](m.c.value, cond.value)
        out.append(
            sa.exists().where(m.c.version_id == mv.c.id, m.c.metric == cond.metric, compare)
        )
    return out


def _lineage_clauses(query: SearchQuery) -> list[sa.ColumnElement[bool]]:
    mv, d = model_versions, model_version_data
    out: list[sa.ColumnElement[bool]] = []
    if query.source_run_id:
        out.append(mv.c.source_run_id == query.source_run_id)
    if query.code_revision:
        if not _HEX.fullmatch(query.code_revision):
            raise InvalidArgument("code_revision: expected hex digits of a git commit, got "
                                  f"{query.code_revision[:60]!r}", field="code_revision")
        out.append(mv.c.code_revision.startswith(query.code_revision.lower()))
    if query.parent_version:
        out.append(mv.c.parent_version == query.parent_version)
    if query.training_data_uri:
        out.append(sa.exists().where(d.c.version_id == mv.c.id,
                                     d.c.uri == query.training_data_uri))
    if query.training_data_digest:
        out.append(sa.exists().where(d.c.version_id == mv.c.id,
                                     d.c.digest == query.training_data_digest))
    return out


def _number(raw: str, clause: str) -> float:
    try:
        return float(raw.strip("'\""))
    except ValueError:
        raise InvalidArgument(f"expected a number in {clause!r}", field="filter") from None
