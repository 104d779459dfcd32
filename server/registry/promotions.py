"""Promotion requests: entering STAGING or PRODUCTION needs someone else's approval.

Four eyes: the requester may neither approve nor reject their own request (they cancel
it); named reviewers restrict who may decide; ``required_approvals`` distinct approvers
are needed before the stage moves. The last approval moves the stage in its own
transaction, through :meth:`Stages.enter_production` for PRODUCTION.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server import validation as v
from neural.mlops.server.audit.events import EventType
from neural.mlops.server.clock import Clock, from_us, to_us
from neural.mlops.server.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from neural.mlops.server.registry import promotion_store, store
from neural.mlops.server.registry.model import (
    GATED_STAGES,
    ModelStage,
    PromotionRequest,
    PromotionStatus,
    PromotionVote,
)
from neural.mlops.server.registry.stages import Stages
from neural.mlops.server.storage import Change, Database


class Promotions:
    def __init__(self, db: Database, clock: Clock, stages: Stages) -> None:
        self.db = db
        self.clock = clock
        self.stages = stages

    async def request(
        self,
        name: str,
        version: str,
        target_stage: ModelStage,
        requested_by: str,
        justification: str = "",
        reviewers: Sequence[str] = (),
        required_approvals: int = 1,
    ) -> PromotionRequest:
        requested_by = v.actor(requested_by, "requested_by")
        v.text(justification, "justification")
        if target_stage not in GATED_STAGES:
            raise InvalidArgument(
                f"target_stage must be STAGING or PRODUCTION, got {target_stage.value.upper()} "
                "(use transition_stage for other stages)",
                field="target_stage",
            )
        revs = _reviewers(reviewers, requested_by, required_approvals)
        async with self.db.change() as ch:
            row = await store.resolve(ch.conn, name, version)
            if row.stage is target_stage:
                raise FailedPrecondition(f"{row.ref} is already {target_stage.value.upper()}")
            pending = await promotion_store.pending_id(ch.conn, name, row.version)
            if pending is not None:
                raise FailedPrecondition(
                    f"{row.ref} already has a pending promotion request {pending}"
                )
            req = PromotionRequest(
                request_id=uuid.uuid4().hex, name=name, version=row.version,
                target_stage=target_stage, from_stage=row.stage, requested_by=requested_by,
                justification=justification, reviewers=revs,
                required_approvals=required_approvals, status=PromotionStatus.PENDING,
                approvals=[], decided_by="", decision_comment="",
                created_at=from_us(self._now()),
                decided_at=None,
            )
            await promotion_store.insert(ch.conn, req)
            ch.record(
                EventType.PROMOTION_REQUESTED,
                resource_type="model",
                resource_id=row.ref,
                action="request_promotion",
                actor=requested_by,
                details={"request_id": req.request_id, "target_stage": target_stage.value,
                         "from_stage": row.stage.value, "reviewers": revs,
                         "required_approvals": required_approvals,
                         "justification": justification},
            )
            return req

    async def approve(self, name: str, version: str, approver: str, comment: str = "",
                      request_id: str = "") -> PromotionRequest:
        approver = v.actor(approver, "approver")
        v.text(comment, "comment")
        async with self.db.change() as ch:
            req = await self._reviewable(
                ch.conn, name, version, request_id, approver, "approver",
                " and may not approve it (separation of duties)",
            )
            if any(_same(vote.approver, approver) for vote in req.approvals):
                raise FailedPrecondition(f"{approver} has already approved this request")
            vote = PromotionVote(approver, comment, from_us(self._now()))
            await promotion_store.add_vote(ch.conn, req.request_id, vote)
            req = replace(req, approvals=[*req.approvals, vote])
            if len(req.approvals) < req.required_approvals:
                ch.record(
                    EventType.APPROVAL_GRANTED,
                    resource_type="model",
                    resource_id=f"{req.name}:{req.version}",
                    action="approve_vote",
                    actor=approver,
                    details={"request_id": req.request_id, "approvals": len(req.approvals),
                             "required_approvals": req.required_approvals, "comment": comment},
                )
                return req
            return await self._grant(ch, req, vote)

    async def reject(self, name: str, version: str, rejector: str, comment: str = "",
                     request_id: str = "") -> PromotionRequest:
        rejector = v.actor(rejector, "rejector")
        v.text(comment, "comment")
        async with self.db.change() as ch:
            req = await self._reviewable(ch.conn, name, version, request_id, rejector,
                                         "rejector", "; the requester cancels rather than rejects")
            return await self._close(ch, req, PromotionStatus.REJECTED, rejector, comment,
                                     EventType.PROMOTION_REJECTED)

    async def cancel(self, name: str, version: str, cancelled_by: str, reason: str = "",
                     request_id: str = "") -> PromotionRequest:
        cancelled_by = v.actor(cancelled_by, "cancelled_by")
        v.text(reason, "reason")
        async with self.db.change() as ch:
            req = await self._decidable(ch.conn, name, version, request_id)
            if not _same(cancelled_by, req.requested_by):
                raise PermissionDenied(
                    f"only the requester ({req.requested_by}) may cancel this request",
                    field="cancelled_by", reason="NOT_THE_REQUESTER",
                )
            return await self._close(ch, req, PromotionStatus.CANCELLED, cancelled_by, reason,
                                     EventType.PROMOTION_CANCELLED)

    async def pending(self, reviewer: str = "", name: str = "") -> list[PromotionRequest]:
        """Pending requests; with ``reviewer``, those this reviewer may still approve."""
        async with self.db.read() as conn:
            reqs = await promotion_store.pending(conn, name)
        if reviewer:
            reqs = [
                r for r in reqs
                if not _same(r.requested_by, reviewer)
                and (not r.reviewers or any(_same(x, reviewer) for x in r.reviewers))
                and not any(_same(vote.approver, reviewer) for vote in r.approvals)
            ]
        return reqs

    # ------------------------------------------------------------------ internals

    def _now(self) -> int:
        return to_us(self.clock.now())

    async def _grant(self, ch: Change, req: PromotionRequest,
                     vote: PromotionVote) -> PromotionRequest:
        """The deciding approval: close the request, then move the stage."""
        now = to_us(vote.at)
        await promotion_store.close(ch.conn, req.request_id, PromotionStatus.APPROVED,
                                    vote.approver, vote.comment, now)
        ch.record(
            EventType.PROMOTION_APPROVED,
            resource_type="model",
            resource_id=f"{req.name}:{req.version}",
            action="approve_promotion",
            actor=vote.approver,
            details={"request_id": req.request_id, "target_stage": req.target_stage.value,
                     "requested_by": req.requested_by,
                     "approvers": [x.approver for x in req.approvals],
                     "comment": vote.comment,
                     "seconds_to_decision": (now - to_us(req.created_at)) / 1e6},
        )
        row = await store.resolve(ch.conn, req.name, req.version)
        if req.target_stage is ModelStage.PRODUCTION:
            await self.stages.enter_production(ch, row, vote.approver, req.justification,
                                               req.request_id)
        else:
            await self.stages.set(ch, row, req.target_stage, vote.approver, req.justification,
                                  req.request_id)
        return replace(req, status=PromotionStatus.APPROVED, decided_by=vote.approver,
                       decision_comment=vote.comment, decided_at=vote.at)

    async def _close(self, ch: Change, req: PromotionRequest, status: PromotionStatus,
                     actor: str, comment: str, event: EventType) -> PromotionRequest:
        now = self._now()
        await promotion_store.close(ch.conn, req.request_id, status, actor, comment, now)
        ch.record(
            event,
            resource_type="model",
            resource_id=f"{req.name}:{req.version}",
            action=f"{status.value}_promotion",
            actor=actor,
            details={"request_id": req.request_id, "target_stage": req.target_stage.value,
                     "requested_by": req.requested_by, "comment": comment,
                     "seconds_to_decision": (now - to_us(req.created_at)) / 1e6},
        )
        return replace(req, status=status, decided_by=actor, decision_comment=comment,
                       decided_at=from_us(now))

    async def _reviewable(self, conn: AsyncConnection, name: str, version: str,
                          request_id: str, reviewer: str, field: str,
                          not_the_requester: str) -> PromotionRequest:
        """The pending request ``reviewer`` may decide: never its own requester (separation
        of duties: ``not_the_requester`` ends the refusal), and one of its
        reviewers when it names any."""
        req = await self._decidable(conn, name, version, request_id)
        if _same(reviewer, req.requested_by):
            raise PermissionDenied(f"{reviewer} requested this promotion{not_the_requester}",
                                   field=field, reason="SELF_APPROVAL")
        _require_reviewer(req, reviewer)
        return req

    async def _decidable(self, conn: AsyncConnection, name: str, version: str,
                         request_id: str) -> PromotionRequest:
        """The pending request a decision applies to: the given id, or the version's
        latest."""
        if request_id:
            req = await promotion_store.load(conn, request_id)
            if (req.name, req.version) != (name, version) and name:
                raise InvalidArgument(
                    f"request {request_id} is for {req.name}:{req.version}, not {name}:{version}",
                    field="request_id",
                )
        else:
            resolved = (await store.resolve(conn, name, version)).version
            found = await promotion_store.latest(conn, name, resolved)
            if found is None:
                raise NotFound(f"{name}:{resolved} has no promotion request")
            req = found
        if req.status is not PromotionStatus.PENDING:
            raise FailedPrecondition(
                f"promotion request {req.request_id} for {req.name}:{req.version} is "
                f"{req.status.value}, not pending"
            )
        return req


def _same(a: str, b: str) -> bool:
    """Identity equality as separation of duties needs it: normalized on both sides (rows
    written before normalization may hold other spellings)."""
    return v.normalize_identity(a) == v.normalize_identity(b)


def _reviewers(reviewers: Sequence[str], requested_by: str, required_approvals: int) -> list[str]:
    """The named reviewers, validated against how many approvals the request needs."""
    if isinstance(reviewers, str):
        reviewers = [reviewers]
    revs = sorted({v.actor(r, "reviewers") for r in reviewers})
    if (isinstance(required_approvals, bool) or not isinstance(required_approvals, int)
            or required_approvals < 1):
        raise InvalidArgument("required_approvals must be an integer >= 1",
                              field="required_approvals")
    eligible = [r for r in revs if not _same(r, requested_by)]
    if revs and required_approvals > len(eligible):
        raise InvalidArgument(
            f"required_approvals={required_approvals} but only {len(eligible)} named "
            "reviewer(s) other than the requester can approve",
            field="required_approvals",
        )
    return revs


def _require_reviewer(req: PromotionRequest, actor: str) -> None:
    if req.reviewers and not any(_same(actor, r) for r in req.reviewers):
        raise PermissionDenied(
            f"{actor} is not a named reviewer of this request ({', '.join(req.reviewers)})",
            reason="NOT_A_REVIEWER",
        )
