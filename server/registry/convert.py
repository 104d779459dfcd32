"""Registry domain types <-> protobuf messages, used by the servicer and the remote client."""

from __future__ import annotations

import json
from typing import Any

from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.registry.lineage import (
    DataReference,
    Lineage,
    Signature,
    TensorDatatype,
    TensorSpec,
)
from neural.mlops.server.registry.model import (
    AliasChange,
    Artifact,
    HistoryEntry,
    ModelStage,
    ModelVersion,
    PromotionRequest,
    PromotionStatus,
    PromotionVote,
    RegisteredModel,
)
from neural.mlops.server.timestamps import from_timestamp as dt
from neural.mlops.server.timestamps import to_timestamp as ts
from neural.mlops.v1 import registry_pb2 as pb

STAGE_TO_PB = {
    ModelStage.DEVELOPMENT: pb.MODEL_STAGE_DEVELOPMENT,
    ModelStage.STAGING: pb.MODEL_STAGE_STAGING,
    ModelStage.PRODUCTION: pb.MODEL_STAGE_PRODUCTION,
    ModelStage.ARCHIVED: pb.MODEL_STAGE_ARCHIVED,
}
STAGE_FROM_PB: dict[int, ModelStage] = {int(v): k for k, v in STAGE_TO_PB.items()}
STATUS_TO_PB = {
    PromotionStatus.PENDING: pb.PROMOTION_STATUS_PENDING,
    PromotionStatus.APPROVED: pb.PROMOTION_STATUS_APPROVED,
    PromotionStatus.REJECTED: pb.PROMOTION_STATUS_REJECTED,
    PromotionStatus.CANCELLED: pb.PROMOTION_STATUS_CANCELLED,
}
STATUS_FROM_PB: dict[int, PromotionStatus] = {int(v): k for k, v in STATUS_TO_PB.items()}
# TENSOR_DATATYPE_FP32 <-> "FP32": the enum value's name without its prefix is the OIP string.
# Read from the module's constants, typed as the enum (EnumTypeWrapper.Value is typed int).
# Keyed by str: TensorDatatype is a StrEnum and a lineage may hold an unknown string.
DATATYPE_TO_PB: dict[str, pb.TensorDatatype] = {
    d: getattr(pb, f"TENSOR_DATATYPE_{d.value}") for d in TensorDatatype
}
DATATYPE_FROM_PB: dict[int, TensorDatatype] = {
    int(v): TensorDatatype(k) for k, v in DATATYPE_TO_PB.items()
}


# The textual filter's "=" is "==" on the wire: the enum has one value per comparison.
OP_TO_PB = {
    ">": pb.COMPARISON_OPERATOR_GREATER,
    ">=": pb.COMPARISON_OPERATOR_GREATER_OR_EQUAL,
    "<": pb.COMPARISON_OPERATOR_LESS,
    "<=": pb.COMPARISON_OPERATOR_LESS_OR_EQUAL,
    "==": pb.COMPARISON_OPERATOR_EQUAL,
    "=": pb.COMPARISON_OPERATOR_EQUAL,
    "!=": pb.COMPARISON_OPERATOR_NOT_EQUAL,
}
OP_FROM_PB: dict[int, str] = {int(v): k for k, v in OP_TO_PB.items() if k != "="}
HISTORY_KIND_TO_PB = {"stage": pb.HISTORY_KIND_STAGE, "alias": pb.HISTORY_KIND_ALIAS}
HISTORY_KIND_FROM_PB: dict[int, str] = {int(v): k for k, v in HISTORY_KIND_TO_PB.items()}


def stage_from_pb(value: int) -> ModelStage | None:
    return STAGE_FROM_PB.get(int(value))


def op_to_pb(op: str) -> pb.ComparisonOperator:
    # An operator the domain refuses goes as UNSPECIFIED, which the server refuses too.
    return OP_TO_PB.get(op, pb.COMPARISON_OPERATOR_UNSPECIFIED)


def op_from_pb(value: int, field: str) -> str:
    op = OP_FROM_PB.get(int(value))
    if op is None:
        raise InvalidArgument(f"{field} is required (one of > >= < <= == !=)", field=field)
    return op


def artifact_to_pb(a: Artifact) -> pb.Artifact:
    return pb.Artifact(uri=a.uri, sha256=a.sha256, size_bytes=a.size_bytes, filename=a.filename,
                       stored=a.stored)


def artifact_from_pb(a: pb.Artifact) -> Artifact:
    return Artifact(a.uri, a.sha256, a.size_bytes, a.filename, a.stored)


def _tensor_to_pb(t: TensorSpec) -> pb.TensorSpec:
    # Validated lineages hold TensorDatatype; anything else is sent as UNSPECIFIED and
    # refused by the server.
    datatype = DATATYPE_TO_PB.get(t.datatype, pb.TENSOR_DATATYPE_UNSPECIFIED)
    return pb.TensorSpec(name=t.name, datatype=datatype, shape=list(t.shape))


def _tensor_from_pb(t: pb.TensorSpec) -> TensorSpec:
    # An unknown datatype number stays a number, which validation names and refuses.
    datatype: TensorDatatype | str = DATATYPE_FROM_PB.get(int(t.datatype), str(t.datatype))
    return TensorSpec(t.name, datatype, list(t.shape))


def lineage_to_pb(lin: Lineage) -> pb.Lineage:
    return pb.Lineage(
        source_run_id=lin.source_run_id, source_uri=lin.source_uri,
        code_revision=lin.code_revision, parent_version=lin.parent_version,
        training_data=[pb.DataReference(uri=d.uri, digest=d.digest) for d in lin.training_data],
        signature=pb.ModelSignature(inputs=[_tensor_to_pb(t) for t in lin.signature.inputs],
                                    outputs=[_tensor_to_pb(t) for t in lin.signature.outputs]),
    )


def lineage_from_pb(lin: pb.Lineage) -> Lineage:
    return Lineage(
        source_run_id=lin.source_run_id, source_uri=lin.source_uri,
        code_revision=lin.code_revision, parent_version=lin.parent_version,
        training_data=[DataReference(d.uri, d.digest) for d in lin.training_data],
        signature=Signature([_tensor_from_pb(t) for t in lin.signature.inputs],
                            [_tensor_from_pb(t) for t in lin.signature.outputs]),
    )


def version_to_pb(m: ModelVersion) -> pb.ModelVersion:
    return pb.ModelVersion(
        name=m.name, version=m.version, stage=STAGE_TO_PB[m.stage], framework=m.framework,
        description=m.description, created_by=m.created_by, created_at=ts(m.created_at),
        updated_at=ts(m.updated_at), metrics=m.metrics, tags=m.tags, params=m.params,
        config_json=json.dumps(m.config, sort_keys=True), artifact=artifact_to_pb(m.artifact),
        aliases=m.aliases, lineage=lineage_to_pb(m.lineage),
    )


def version_from_pb(m: pb.ModelVersion) -> ModelVersion:
    return ModelVersion(
        name=m.name, version=m.version, stage=STAGE_FROM_PB[m.stage], framework=m.framework,
        description=m.description, created_by=m.created_by, created_at=dt(m.created_at),
        updated_at=dt(m.updated_at), metrics=dict(m.metrics), tags=list(m.tags),
        params=dict(m.params), config=json.loads(m.config_json or "{}"),
        artifact=artifact_from_pb(m.artifact), aliases=list(m.aliases),
        lineage=lineage_from_pb(m.lineage),
    )


def model_to_pb(r: RegisteredModel) -> pb.RegisteredModel:
    return pb.RegisteredModel(
        name=r.name, created_at=ts(r.created_at), updated_at=ts(r.updated_at),
        version_count=r.version_count, aliases=r.aliases,
        latest_versions=[version_to_pb(v) for v in r.latest_versions],
    )


def model_from_pb(r: pb.RegisteredModel) -> RegisteredModel:
    return RegisteredModel(
        r.name, dt(r.created_at), dt(r.updated_at), r.version_count, dict(r.aliases),
        [version_from_pb(v) for v in r.latest_versions],
    )


def request_to_pb(r: PromotionRequest) -> pb.PromotionRequest:
    return pb.PromotionRequest(
        request_id=r.request_id, name=r.name, version=r.version,
        target_stage=STAGE_TO_PB[r.target_stage], from_stage=STAGE_TO_PB[r.from_stage],
        requested_by=r.requested_by, justification=r.justification, reviewers=r.reviewers,
        required_approvals=r.required_approvals, status=STATUS_TO_PB[r.status],
        approvals=[pb.PromotionVote(approver=v.approver, comment=v.comment, at=ts(v.at))
                   for v in r.approvals],
        decided_by=r.decided_by, decision_comment=r.decision_comment,
        created_at=ts(r.created_at), decided_at=ts(r.decided_at),
    )


def request_from_pb(r: pb.PromotionRequest) -> PromotionRequest:
    return PromotionRequest(
        request_id=r.request_id, name=r.name, version=r.version,
        target_stage=STAGE_FROM_PB[r.target_stage], from_stage=STAGE_FROM_PB[r.from_stage],
        requested_by=r.requested_by, justification=r.justification, reviewers=list(r.reviewers),
        required_approvals=r.required_approvals, status=STATUS_FROM_PB[r.status],
        approvals=[PromotionVote(v.approver, v.comment, dt(v.at)) for v in r.approvals],
        decided_by=r.decided_by, decision_comment=r.decision_comment,
        created_at=dt(r.created_at),
        decided_at=dt(r.decided_at) if r.HasField("decided_at") and r.decided_at.seconds else None,
    )


def alias_to_pb(a: AliasChange) -> pb.AliasResponse:
    return pb.AliasResponse(name=a.name, alias=a.alias, version=a.version,
                            previous_version=a.previous_version)


def alias_from_pb(a: pb.AliasResponse) -> AliasChange:
    return AliasChange(a.name, a.alias, a.version, a.previous_version)


def _stage_value_to_pb(value: str) -> pb.ModelStage:
    return STAGE_TO_PB[ModelStage(value)] if value else pb.MODEL_STAGE_UNSPECIFIED


def history_to_pb(h: HistoryEntry) -> pb.HistoryEntry:
    out = pb.HistoryEntry(
        kind=HISTORY_KIND_TO_PB[h.kind], name=h.name, version=h.version, alias=h.alias,
        actor=h.actor, reason=h.reason, promotion_request_id=h.promotion_request_id,
        at=ts(h.at),
    )
    if h.kind == "stage":
        out.from_stage = _stage_value_to_pb(h.from_value)
        out.to_stage = _stage_value_to_pb(h.to_value)
    else:
        out.from_version, out.to_version = h.from_value, h.to_value
    return out


def history_from_pb(h: pb.HistoryEntry) -> HistoryEntry:
    kind = HISTORY_KIND_FROM_PB[h.kind]
    if kind == "stage":
        before, after = (s.value if (s := stage_from_pb(x)) else ""
                         for x in (h.from_stage, h.to_stage))
    else:
        before, after = h.from_version, h.to_version
    return HistoryEntry(kind, h.name, h.version, before, after, h.alias, h.actor, h.reason,
                        h.promotion_request_id, dt(h.at))


def comparison_to_pb(c: dict[str, Any]) -> pb.CompareModelsResponse:
    out = pb.CompareModelsResponse(
        name=c["name"], version1=c["version1"], version2=c["version2"],
        tags_only_in_version1=c["tags_only_in_version1"],
        tags_only_in_version2=c["tags_only_in_version2"],
        framework=pb.ValueChange(**c["framework"]), stage=pb.ValueChange(**c["stage"]),
        size_bytes_version1=c["size_bytes"]["version1"],
        size_bytes_version2=c["size_bytes"]["version2"],
        lineage_version1=lineage_to_pb(Lineage.from_dict(c["lineage"]["version1"])),
        lineage_version2=lineage_to_pb(Lineage.from_dict(c["lineage"]["version2"])),
        lineage_changed=c["lineage"]["changed"],
    )
    for key, m in c["metrics_comparison"].items():
        out.metrics_comparison[key].CopyFrom(
            pb.MetricComparison(**{k: x for k, x in m.items() if x is not None})
        )
    for key, p in c["params_diff"].items():
        out.params_diff[key].CopyFrom(
            pb.ValueChange(version1=p["version1"] or "", version2=p["version2"] or "")
        )
    return out


def comparison_from_pb(c: pb.CompareModelsResponse) -> dict[str, Any]:
    def opt(msg: Any, f: str) -> float | None:
        return getattr(msg, f) if msg.HasField(f) else None

    return {
        "name": c.name,
        "version1": c.version1,
        "version2": c.version2,
        "metrics_comparison": {
            k: {f: opt(m, f) for f in ("version1", "version2", "difference", "relative_change")}
            for k, m in sorted(c.metrics_comparison.items())
        },
        "tags_only_in_version1": list(c.tags_only_in_version1),
        "tags_only_in_version2": list(c.tags_only_in_version2),
        "params_diff": {
            k: {"version1": p.version1 or None, "version2": p.version2 or None}
            for k, p in sorted(c.params_diff.items())
        },
        "framework": {"version1": c.framework.version1, "version2": c.framework.version2},
        "stage": {"version1": c.stage.version1, "version2": c.stage.version2},
        "size_bytes": {"version1": c.size_bytes_version1, "version2": c.size_bytes_version2},
        "lineage": {"version1": lineage_from_pb(c.lineage_version1).to_dict(),
                    "version2": lineage_from_pb(c.lineage_version2).to_dict(),
                    "changed": list(c.lineage_changed)},
    }
