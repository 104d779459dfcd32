"""The registry's SQL over promotion requests and their approval votes.

Like :mod:`.store`, plain functions over the caller's connection and transaction.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server.clock import from_us, to_us
from neural.mlops.server.errors import NotFound
from neural.mlops.server.registry.model import (
    ModelStage,
    PromotionRequest,
    PromotionStatus,
    PromotionVote,
)
from neural.mlops.server.storage.schema import promotion_requests, promotion_votes


async def load(conn: AsyncConnection, request_id: str) -> PromotionRequest:
    pr = promotion_requests
    r = (await conn.execute(sa.select(pr).where(pr.c.request_id == request_id))).first()
    if r is None:
        raise NotFound(f"promotion request {request_id!r} does not exist")
    return await _from_row(conn, r)


async def latest(conn: AsyncConnection, name: str, version: str) -> PromotionRequest | None:
    """The newest request for ``name:version``, whatever its status."""
    pr = promotion_requests
    row = (
        await conn.execute(
            sa.select(pr)
            .where(pr.c.name == name, pr.c.version == version)
            .order_by(pr.c.created_us.desc(), pr.c.request_id.desc())
            .limit(1)
        )
    ).first()
    return await _from_row(conn, row) if row is not None else None


async def pending_id(conn: AsyncConnection, name: str, version: str) -> str | None:
    pr = promotion_requests
    row = (
        await conn.execute(
            sa.select(pr.c.request_id).where(
                pr.c.name == name, pr.c.version == version,
                pr.c.status == PromotionStatus.PENDING.value,
            )
        )
    ).first()
    return row.request_id if row else None


async def pending(conn: AsyncConnection, name: str = "") -> list[PromotionRequest]:
    """Pending requests (of model ``name``, if given), oldest first."""
    pr = promotion_requests
    q = sa.select(pr).where(pr.c.status == PromotionStatus.PENDING.value)
    if name:
        q = q.where(pr.c.name == name)
    rows = (await conn.execute(q.order_by(pr.c.created_us, pr.c.request_id))).all()
    return [await _from_row(conn, r) for r in rows]


async def insert(conn: AsyncConnection, req: PromotionRequest) -> None:
    await conn.execute(
        promotion_requests.insert().values(
            request_id=req.request_id, name=req.name, version=req.version,
            target_stage=req.target_stage.value, from_stage=req.from_stage.value,
            requested_by=req.requested_by, justification=req.justification,
            reviewers=json.dumps(req.reviewers), required_approvals=req.required_approvals,
            status=req.status.value, decided_by="", decision_comment="",
            created_us=to_us(req.created_at), decided_us=None,
        )
    )


async def add_vote(conn: AsyncConnection, request_id: str, vote: PromotionVote) -> None:
    await conn.execute(
        promotion_votes.insert().values(request_id=request_id, approver=vote.approver,
                                        comment=vote.comment, at_us=to_us(vote.at))
    )


async def close(conn: AsyncConnection, request_id: str, status: PromotionStatus, actor: str,
                comment: str, now_us: int) -> None:
    pr = promotion_requests
    await conn.execute(
        pr.update()
        .where(pr.c.request_id == request_id)
        .values(status=status.value, decided_by=actor, decision_comment=comment,
                decided_us=now_us)
    )


async def cancel_pending(conn: AsyncConnection, name: str, version: str, actor: str,
                         comment: str, now_us: int) -> None:
    """Cancel the pending requests of ``name:version`` (its deletion)."""
    pr = promotion_requests
    await conn.execute(
        pr.update()
        .where(pr.c.name == name, pr.c.version == version,
               pr.c.status == PromotionStatus.PENDING.value)
        .values(status=PromotionStatus.CANCELLED.value, decided_by=actor,
                decision_comment=comment, decided_us=now_us)
    )


async def _from_row(conn: AsyncConnection, r: Any) -> PromotionRequest:
    pv = promotion_votes
    votes = (
        await conn.execute(
            sa.select(pv).where(pv.c.request_id == r.request_id).order_by(pv.c.at_us)
        )
    ).all()
    return PromotionRequest(
        request_id=r.request_id, name=r.name, version=r.version,
        target_stage=ModelStage(r.target_stage), from_stage=ModelStage(r.from_stage),
        requested_by=r.requested_by, justification=r.justification,
        reviewers=json.loads(r.reviewers), required_approvals=r.required_approvals,
        status=PromotionStatus(r.status),
        approvals=[PromotionVote(x.approver, x.comment, from_us(x.at_us)) for x in votes],
        decided_by=r.decided_by, decision_comment=r.decision_comment,
        created_at=from_us(r.created_us),
        decided_at=from_us(r.decided_us) if r.decided_us is not None else None,
    )
