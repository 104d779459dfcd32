"""The permission table: every RPC the control plane serves -> exactly one permission.

Each :class:`Rule` also says where the call's model is (for grants scoped to model-name
globs) and which request fields name the acting principal (checked and filled by the
interceptor when the call is authenticated). tests/test_auth_permissions.py fails when a
method of the protos is missing here.

A static table with ``fnmatch`` globs rather than PyCasbin: grants live in our own store
so that every change is chained in the audit trail, the actor-field checks are not
policy evaluation, and the table is compared against the proto descriptors by a test.
"""

from __future__ import annotations

from dataclasses import dataclass

from neural.mlops.server.auth.roles import PUBLIC, SESSION


@dataclass(frozen=True, slots=True)
class Rule:
    permission: str
    # Request field paths ("metadata.name") holding model names or "name:version" refs;
    # every one that is set must match a scoped grant's glob.
    models: tuple[str, ...] = ()
    # (kind, id field): the model of a stored resource (deployment, test, shadow).
    resource: tuple[str, str] | None = None
    # Fields naming the acting principal: must be empty (filled) or the principal.
    actors: tuple[str, ...] = ()
    # Fields put under the principal's name ("<principal>/<value>"): a sidecar's id.
    namespaced: tuple[str, ...] = ()
    # (field, permission): when the field is set, the call needs that permission too.
    elevated: tuple[tuple[str, str], ...] = ()


def _service(full_name: str, rules: dict[str, Rule]) -> dict[str, Rule]:
    return {f"/{full_name}/{method}": rule for method, rule in rules.items()}


def _reg(permission: str, actor: str = "") -> Rule:
    return Rule(permission, models=("name",), actors=(actor,) if actor else ())


_DEPLOYMENT = ("deployment", "deployment_id")
_SHADOW = ("shadow", "shadow_id")
_TEST = ("test", "test_id")


def _dep(permission: str, *actors: str) -> Rule:
    return Rule(permission, resource=_DEPLOYMENT, actors=actors)


def _test(permission: str) -> Rule:
    return Rule(permission, resource=_TEST)


V1 = "neural.mlops.v1"

RULES: dict[str, Rule] = {
    **_service(f"{V1}.RegistryService", {
        "RegisterModel": Rule(
            "registry.write", models=("metadata.name",), actors=("metadata.created_by",)
        ),
        "GetModelVersion": _reg("registry.read"),
        "ListModels": Rule("registry.read"),
        "ListVersions": _reg("registry.read"),
        "GetLatestVersions": _reg("registry.read"),
        "SearchModelVersions": Rule("registry.read"),
        "UpdateModelVersion": _reg("registry.write", "updated_by"),
        "DeleteModelVersion": _reg("registry.delete", "deleted_by"),
        "TransitionStage": _reg("registry.stage", "actor"),
        "RequestPromotion": _reg("promotion.request", "requested_by"),
        "ApprovePromotion": _reg("promotion.review", "approver"),
        "RejectPromotion": _reg("promotion.review", "rejector"),
        "CancelPromotion": _reg("promotion.request", "cancelled_by"),
        "ListPendingApprovals": _reg("registry.read"),
        "SetAlias": _reg("registry.alias", "actor"),
        "DeleteAlias": _reg("registry.alias", "actor"),
        "RollbackAlias": _reg("registry.alias", "actor"),
        "GetHistory": _reg("registry.read"),
        "CompareModels": _reg("registry.read"),
        "DownloadArtifact": _reg("registry.read"),
    }),
    **_service(f"{V1}.DeploymentService", {
        "CreateDeployment": Rule(
            "deployments.operate", models=("model_name",), actors=("created_by",),
            elevated=(("override_reason", "deployments.override"),),
        ),
        "GetDeployment": _dep("deployments.read"),
        "ListDeployments": Rule("deployments.read", models=("model_name",)),
        "ListDeploymentEvents": _dep("deployments.read"),
        "WatchDeployment": _dep("deployments.read"),
        "UpdateMetrics": _dep("metrics.report"),
        "CheckHealth": _dep("deployments.operate", "actor"),
        "Promote": _dep("deployments.operate", "actor"),
        "Pause": _dep("deployments.operate", "actor"),
        "Resume": _dep("deployments.operate", "actor"),
        "Abort": _dep("deployments.operate", "actor"),
        "Rollback": _dep("deployments.operate", "actor"),
        "ShadowDeploy": Rule(
            "deployments.operate", models=("primary_model", "shadow_model"),
            actors=("created_by",),
        ),
        "GetShadow": Rule("deployments.read", resource=_SHADOW),
        "ListShadows": Rule("deployments.read"),
        "RecordShadowComparison": Rule("metrics.report", resource=_SHADOW),
        "CompareShadow": Rule("deployments.read", resource=_SHADOW),
        "StopShadow": Rule("deployments.operate", resource=_SHADOW, actors=("stopped_by",)),
    }),
    **_service(f"{V1}.ExperimentService", {
        "CreateTest": Rule("experiments.write", models=("model_name",), actors=("created_by",)),
        "GetTest": _test("experiments.read"),
        "ListTests": Rule("experiments.read"),
        "StartTest": _test("experiments.operate"),
        "PauseTest": _test("experiments.operate"),
        "ResumeTest": _test("experiments.operate"),
        "StopTest": _test("experiments.operate"),
        "ConcludeTest": _test("experiments.operate"),
        "UpdateSplit": _test("experiments.operate"),
        "SetForcedVariant": _test("experiments.operate"),
        "GetVariant": _test("experiments.variant"),
        "RecordRequests": _test("metrics.report"),
        "RecordOutcome": _test("metrics.report"),
        "AnalyzeTest": _test("experiments.read"),
        # Covariates configure the analysis, as the test's author does at creation.
        "SetCovariates": _test("experiments.write"),
        "ReweightBandit": _test("experiments.operate"),  # as UpdateSplit
    }),
    **_service(f"{V1}.RoutingService", {
        "WatchRoutes": Rule("routes.read", namespaced=("sidecar_id",)),
        "GetRoutingTable": Rule("routes.read"),
        "ReportMetrics": Rule("metrics.report", namespaced=("sidecar_id",)),
        "ListSidecars": Rule("deployments.read"),  # operators' view, not for sidecars
        "GetTrafficSeries": Rule("deployments.read"),
    }),
    # LogEvent's ``user`` is not an actor field: the audit service records the principal
    # as the actor and keeps a differing claimed user as a detail (docs/audit.md).
    **_service(f"{V1}.AuditService", {
        "LogEvent": Rule("audit.write"),
        "LogEvents": Rule("audit.write"),
        "QueryEvents": Rule("audit.read"),
        "GenerateComplianceReport": Rule("audit.report"),
        "GetReport": Rule("audit.read"),
        "ListReports": Rule("audit.read"),
        "ExportAuditTrail": Rule("audit.report"),
        "VerifyChain": Rule("audit.read"),
        "CreateCheckpoint": Rule("audit.report"),
        "ListCheckpoints": Rule("audit.read"),
        "Purge": Rule("audit.admin"),
        "GetPublicKey": Rule("audit.read"),
        "RotateKey": Rule("audit.admin"),
    }),
    **_service(f"{V1}.AuthService", {
        "CreateToken": Rule("auth.admin"),
        "ListTokens": Rule("auth.read"),
        "RevokeToken": Rule("auth.admin"),
        "CreateGrant": Rule("auth.admin"),
        "DeleteGrant": Rule("auth.admin"),
        "ListGrants": Rule("auth.read"),
        "WhoAmI": Rule(SESSION),
        "ListRoles": Rule(SESSION),
    }),
    # Health answers probes and load balancers without credentials; reflection only
    # describes the (public) protos, so any authenticated caller may use it.
    **_service("grpc.health.v1.Health", {"Check": Rule(PUBLIC), "Watch": Rule(PUBLIC)}),
    **_service("grpc.reflection.v1alpha.ServerReflection", {
        "ServerReflectionInfo": Rule(SESSION),
    }),
    **_service("grpc.reflection.v1.ServerReflection", {
        "ServerReflectionInfo": Rule(SESSION),
    }),
}
