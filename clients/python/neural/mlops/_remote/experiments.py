"""ExperimentService's public methods over gRPC (the mirror of the experiments servicer)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from neural.mlops._remote.connection import RemoteConnection
from neural.mlops.server import validation as v
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.experiments import convert as c
from neural.mlops.server.experiments.bandit_convert import bandit_to_pb
from neural.mlops.server.experiments.model import ABTest, TestStatus, Variant
from neural.mlops.server.experiments.recording import MAX_COVARIATES, RequestRecord
from neural.mlops.server.experiments.spec import CreateSpec, validate_spec
from neural.mlops.server.timestamps import to_timestamp
from neural.mlops.v1 import experiments_pb2 as pb
from neural.mlops.v1.experiments_pb2_grpc import ExperimentServiceStub


def _confidence(value: object) -> float:
    """The store's check on confidence_level, made before sending (0 means the default)."""
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument("confidence_level must be a number", field="confidence_level")
    if not 0.5 <= value < 1.0:
        raise InvalidArgument("confidence_level must be in [0.5, 1)", field="confidence_level")
    return float(value)


class RemoteExperiments:
    def __init__(self, conn: RemoteConnection) -> None:
        self._conn = conn
        self._stub = conn.stub(ExperimentServiceStub)

    async def _test(self, method: Any, request: Any) -> ABTest:
        return c.test_from_pb(await self._conn.unary(method, request))

    async def create_test(self, spec: CreateSpec) -> ABTest:
        ok = validate_spec(spec)  # the same errors as embedded, before anything is sent
        req = pb.CreateTestRequest(
            name=ok.name, description=ok.description, strategy=c.STRATEGY_TO_PB[ok.strategy],
            created_by=ok.created_by, control=ok.control, model_name=spec.model_name,
            settings=pb.AnalysisSettings(
                confidence_level=ok.confidence_level,
                minimum_detectable_effect=ok.minimum_detectable_effect,
                power=ok.power, decision_rule=c.decision_rule_to_pb(ok.decision_rule),
                sequential_tau=ok.sequential_tau,
                sequential_tuning=ok.sequential_tuning, srm_threshold=ok.srm_threshold,
                multiple_testing=c.multiple_testing_to_pb(ok.multiple_testing),
                prior_mean=ok.prior_mean,
                prior_sd=ok.prior_sd,
            ),
            guardrails=c.guardrails_to_pb(ok.guardrails),
        )
        if ok.bandit is not None:
            req.bandit.CopyFrom(bandit_to_pb(ok.bandit))
        c.layer_to_request(ok.layer, req)
        if spec.variants is not None:
            req.variants.extend(
                pb.Variant(name=n, model_ref=r, weight=w) for n, r, w in ok.declared
            )
        else:
            req.control_variant = ok.declared[0][1]
            req.treatment_variant = ok.declared[1][1]
            req.traffic_split = ok.declared[1][2]
        return await self._test(self._stub.CreateTest, req)

    async def get_test(self, test_id: str) -> ABTest:
        return await self._test(self._stub.GetTest, pb.TestRef(test_id=test_id))

    async def list_tests(self, status: TestStatus | str | None = None, *, page_size: int = 0,
                         page_token: str = "") -> tuple[list[ABTest], str]:
        st = TestStatus(getattr(status, "value", status)) if status else None
        req = pb.ListTestsRequest(status=c.STATUS_TO_PB[st] if st else pb.TEST_STATUS_UNSPECIFIED,
                                  page_size=page_size,
                                  page_token=page_token)
        resp = await self._conn.unary(self._stub.ListTests, req)
        return [c.test_from_pb(t) for t in resp.tests], resp.next_page_token

    async def start_test(self, test_id: str) -> ABTest:
        return await self._test(self._stub.StartTest, pb.TestRef(test_id=test_id))

    async def pause_test(self, test_id: str, reason: str = "") -> ABTest:
        return await self._test(self._stub.PauseTest, pb.TestRef(test_id=test_id, reason=reason))

    async def resume_test(self, test_id: str) -> ABTest:
        return await self._test(self._stub.ResumeTest, pb.TestRef(test_id=test_id))

    async def stop_test(self, test_id: str, reason: str = "") -> ABTest:
        return await self._test(self._stub.StopTest, pb.TestRef(test_id=test_id, reason=reason))

    async def conclude_test(self, test_id: str, winner: str | None = None,
                            reason: str = "") -> ABTest:
        req = pb.ConcludeTestRequest(test_id=test_id, winner=winner or "", reason=reason)
        return await self._test(self._stub.ConcludeTest, req)

    async def update_split(
        self,
        test_id: str,
        weights: Mapping[str, float] | None = None,
        *,
        traffic_split: float | None = None,
        explicit: bool = False,
        reason: str = "",
    ) -> ABTest:
        """``traffic_split`` becomes weights here (the RPC takes weights): the treatment's
        share and the control's rest, for the test as it is now."""
        if traffic_split is not None:
            if weights is not None:
                raise InvalidArgument("pass weights or traffic_split, not both", field="weights")
            test = await self.get_test(test_id)
            if len(test.variants) != 2:
                raise InvalidArgument("traffic_split needs a two-variant test; pass weights",
                                      field="traffic_split")
            split = v.fraction(traffic_split, "traffic_split")
            treatment = next(x.name for x in test.variants if x.name != test.control)
            weights = {treatment: split, test.control: 1.0 - split}
        if not isinstance(weights, Mapping):
            raise InvalidArgument("weights is required", field="weights")
        checked = {str(k): v.fraction(w, f"weights.{k}") for k, w in weights.items()}
        req = pb.UpdateSplitRequest(test_id=test_id, weights=checked, explicit=bool(explicit),
                                    reason=v.text(reason, "reason"))
        return await self._test(self._stub.UpdateSplit, req)

    async def set_forced_variant(self, test_id: str, unit_id: str, variant: str | None) -> ABTest:
        req = pb.SetForcedVariantRequest(test_id=test_id, unit_id=unit_id or "",
                                         variant=variant or "")
        return await self._test(self._stub.SetForcedVariant, req)

    async def get_variant(self, test_id: str,
                          user_id: str | None = None) -> tuple[str, Variant, bool]:
        """As the store answers, except that the variant's weight is not on the wire (0.0)."""
        req = pb.GetVariantRequest(test_id=test_id, unit_id="" if user_id is None else str(user_id))
        resp = await self._conn.unary(self._stub.GetVariant, req)
        return resp.variant, Variant(resp.variant, resp.model_ref, 0.0), resp.forced

    async def record_requests(self, test_id: str, records: Sequence[RequestRecord]) -> int:
        req = pb.RecordRequestsRequest(
            test_id=test_id, records=[c.record_to_pb(r) for r in records]
        )
        return int((await self._conn.unary(self._stub.RecordRequests, req)).recorded)

    async def record_outcome(
        self,
        test_id: str,
        user_id: str,
        *,
        success: bool = True,
        custom_metrics: Mapping[str, float] | None = None,
        variant: str | None = None,
        timestamp: datetime | None = None,
    ) -> str:
        req = pb.RecordOutcomeRequest(test_id=test_id, unit_id=user_id, success=success,
                                      custom_metrics=dict(custom_metrics or {}),
                                      variant=variant or "")
        if timestamp is not None:
            req.timestamp.CopyFrom(to_timestamp(timestamp))
        return str((await self._conn.unary(self._stub.RecordOutcome, req)).variant)

    async def set_covariates(self, test_id: str, values: Mapping[str, float]) -> int:
        """The server validates the unit ids; the values are checked here because a map of
        doubles cannot carry anything else."""
        if not isinstance(values, Mapping):
            raise InvalidArgument("covariates must be a mapping of unit id to number",
                                  field="covariates")
        if len(values) > MAX_COVARIATES:
            raise InvalidArgument(f"at most {MAX_COVARIATES} covariates per call",
                                  field="covariates")
        checked = {"" if k is None else str(k): v.finite(x, f"covariates.{str(k)[:40]}")
                   for k, x in values.items()}
        req = pb.SetCovariatesRequest(test_id=test_id, covariates=checked)
        return int((await self._conn.unary(self._stub.SetCovariates, req)).stored)

    async def analyze_test(
        self,
        test_id: str,
        confidence_level: float | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict[str, Any]:
        req = pb.AnalyzeTestRequest(test_id=test_id, confidence_level=_confidence(confidence_level))
        if since is not None:
            req.since.CopyFrom(to_timestamp(since))
        if until is not None:
            req.until.CopyFrom(to_timestamp(until))
        return c.analysis_from_pb(await self._conn.unary(self._stub.AnalyzeTest, req))

    async def reweight_bandit_test(self, test_id: str) -> ABTest:
        return await self._test(self._stub.ReweightBandit, pb.TestRef(test_id=test_id))
