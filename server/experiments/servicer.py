"""ExperimentService over gRPC: converts messages and calls the domain, nothing else."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc

from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.experiments import convert as c
from neural.mlops.server.experiments.bandit_convert import bandit_request_from_pb
from neural.mlops.server.experiments.config import SRM_THRESHOLD
from neural.mlops.server.experiments.sequential import DEFAULT_TUNING
from neural.mlops.server.experiments.spec import CreateSpec
from neural.mlops.server.services import Services
from neural.mlops.v1 import experiments_pb2 as pb
from neural.mlops.v1 import experiments_pb2_grpc

Ctx: TypeAlias = grpc.aio.ServicerContext[Any, Any]


def _strategy(value: pb.TrafficSplitStrategy) -> str:
    if value not in c.STRATEGY_FROM_PB:
        raise InvalidArgument(f"unknown strategy {value}", field="strategy")
    return c.STRATEGY_FROM_PB[value].value


class ExperimentServicer(experiments_pb2_grpc.ExperimentServiceServicer):
    def __init__(self, services: Services) -> None:
        self.experiments = services.experiments

    async def CreateTest(self, request: pb.CreateTestRequest, context: Ctx) -> pb.ABTest:
        s = request.settings
        spec = CreateSpec(
            name=request.name,
            description=request.description,
            control_variant=request.control_variant or None,
            treatment_variant=request.treatment_variant or None,
            traffic_split=request.traffic_split if request.HasField("traffic_split") else None,
            strategy=_strategy(request.strategy),
            created_by=request.created_by,
            variants=[(v.name, v.model_ref, v.weight) for v in request.variants] or None,
            control=request.control or "control",
            confidence_level=s.confidence_level or 0.95,
            minimum_detectable_effect=s.minimum_detectable_effect or 0.05,
            power=s.power or 0.8,
            decision_rule=c.DECISION_RULE_FROM_PB[s.decision_rule],
            sequential_tau=s.sequential_tau,  # 0: scaled by sequential_tuning
            model_name=request.model_name,
            sequential_tuning=s.sequential_tuning or DEFAULT_TUNING,
            srm_threshold=s.srm_threshold or SRM_THRESHOLD,
            multiple_testing=c.multiple_testing_from_pb(s.multiple_testing),
            prior_mean=s.prior_mean,
            prior_sd=s.prior_sd,
            guardrails=c.guardrails_from_pb(request.guardrails),
            bandit=bandit_request_from_pb(request.bandit) if request.HasField("bandit") else None,
            **c.layer_from_request(request),
        )
        return c.test_to_pb(await self.experiments.create_test(spec))

    async def GetTest(self, request: pb.TestRef, context: Ctx) -> pb.ABTest:
        return c.test_to_pb(await self.experiments.get_test(request.test_id))

    async def ListTests(self, request: pb.ListTestsRequest, context: Ctx) -> pb.ListTestsResponse:
        status = c.STATUS_FROM_PB.get(request.status) if request.status else None
        tests, token = await self.experiments.list_tests(
            status, page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListTestsResponse(tests=[c.test_to_pb(t) for t in tests], next_page_token=token)

    async def StartTest(self, request: pb.TestRef, context: Ctx) -> pb.ABTest:
        return c.test_to_pb(await self.experiments.start_test(request.test_id))

    async def PauseTest(self, request: pb.TestRef, context: Ctx) -> pb.ABTest:
        return c.test_to_pb(await self.experiments.pause_test(request.test_id, request.reason))

    async def ResumeTest(self, request: pb.TestRef, context: Ctx) -> pb.ABTest:
        return c.test_to_pb(await self.experiments.resume_test(request.test_id))

    async def StopTest(self, request: pb.TestRef, context: Ctx) -> pb.ABTest:
        return c.test_to_pb(await self.experiments.stop_test(request.test_id, request.reason))

    async def ConcludeTest(self, request: pb.ConcludeTestRequest, context: Ctx) -> pb.ABTest:
        return c.test_to_pb(
            await self.experiments.conclude_test(
                request.test_id, request.winner or None, request.reason
            )
        )

    async def UpdateSplit(self, request: pb.UpdateSplitRequest, context: Ctx) -> pb.ABTest:
        return c.test_to_pb(
            await self.experiments.update_split(
                request.test_id,
                dict(request.weights),
                explicit=request.explicit,
                reason=request.reason,
            )
        )

    async def SetForcedVariant(
        self, request: pb.SetForcedVariantRequest, context: Ctx
    ) -> pb.ABTest:
        return c.test_to_pb(
            await self.experiments.set_forced_variant(
                request.test_id, request.unit_id, request.variant or None
            )
        )

    async def GetVariant(
        self, request: pb.GetVariantRequest, context: Ctx
    ) -> pb.GetVariantResponse:
        name, variant, forced = await self.experiments.get_variant(
            request.test_id, request.unit_id or None
        )
        return pb.GetVariantResponse(
            variant=name, model_ref=variant.model_ref if variant else "", forced=forced
        )

    async def RecordRequests(
        self, request: pb.RecordRequestsRequest, context: Ctx
    ) -> pb.RecordRequestsResponse:
        n = await self.experiments.record_requests(
            request.test_id, [c.record_from_pb(r) for r in request.records]
        )
        return pb.RecordRequestsResponse(recorded=n)

    async def RecordOutcome(
        self, request: pb.RecordOutcomeRequest, context: Ctx
    ) -> pb.RecordOutcomeResponse:
        variant = await self.experiments.record_outcome(
            request.test_id,
            request.unit_id,
            success=request.success,
            custom_metrics=dict(request.custom_metrics),
            variant=request.variant or None,
            timestamp=c.dt(request.timestamp, "timestamp")
            if request.HasField("timestamp")
            else None,
        )
        return pb.RecordOutcomeResponse(variant=variant)

    async def AnalyzeTest(
        self, request: pb.AnalyzeTestRequest, context: Ctx
    ) -> pb.AnalyzeTestResponse:
        result = await self.experiments.analysis(
            request.test_id,
            request.confidence_level or None,
            since=c.dt(request.since, "since") if request.HasField("since") else None,
            until=c.dt(request.until, "until") if request.HasField("until") else None,
        )
        return c.analysis_to_pb(result)

    async def SetCovariates(
        self, request: pb.SetCovariatesRequest, context: Ctx
    ) -> pb.SetCovariatesResponse:
        stored = await self.experiments.set_covariates(request.test_id, dict(request.covariates))
        return pb.SetCovariatesResponse(stored=stored)

    async def ReweightBandit(self, request: pb.TestRef, context: Ctx) -> pb.ABTest:
        return c.test_to_pb(await self.experiments.reweight_bandit_test(request.test_id))
