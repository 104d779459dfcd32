"""The compliance report: what happened in a period, who did it, and whether the record
of it is intact. Stored as JSON (``audit_reports``) and rendered as Markdown or HTML.
Computed by :mod:`neural.mlops.server.audit.compliance`."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from neural.mlops.server.audit.events import AuditEvent
from neural.mlops.server.errors import InvalidArgument


class Decision(StrEnum):
    GRANTED = "granted"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class ApprovalDecision:
    """One approval decision of a report: who decided what about which model version
    (``resource_id``, ``name:version``) and how long after the promotion request."""

    time: datetime
    decision: Decision
    event_type: str
    resource_id: str
    actor: str
    requested_by: str
    request_id: str
    seconds_to_decision: float | None  # None: no request found before the decision
    comment: str
    seq: int

    def to_dict(self) -> dict[str, Any]:
        """The decision as the report's JSON holds it."""
        return {
            "time": self.time.isoformat(),
            "decision": str(self.decision),
            "event_type": self.event_type,
            "resource_id": self.resource_id,
            "actor": self.actor,
            "requested_by": self.requested_by,
            "request_id": self.request_id,
            "seconds_to_decision": self.seconds_to_decision,
            "comment": self.comment,
            "seq": self.seq,
        }


@dataclass(frozen=True, slots=True)
class ReportInfo:
    """A saved report as a listing shows it."""

    report_id: str
    generated_at: datetime
    start_date: datetime
    end_date: datetime
    generated_by: str

    def to_dict(self) -> dict[str, str]:
        return {
            "report_id": self.report_id,
            "generated_at": self.generated_at.isoformat(),
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "generated_by": self.generated_by,
        }


@dataclass
class ComplianceReport:
    """A saved compliance report. The fields are plain JSON types so the report reads the
    same from the store, over gRPC and from a file.

    * ``events_by_type`` / ``events_by_severity`` / ``events_by_user``: counts.
    * ``security_violations``: the violation events (at most ``list_limit``; the count
      is ``summary['security_violation_count']``).
    * ``approvals``: one entry per approval decision (granted or rejected) with
      ``seconds_to_decision`` from the promotion request to the decision
      (:meth:`ApprovalDecision.to_dict`).
    * ``deployments`` / ``rollbacks``: the deployment and rollback events.
    * ``unapproved_production_changes``: changes to production with no approval for the
      same model version before them; should be empty.
    * ``unauthenticated_changes``: events recorded for declared, unauthenticated
      identities (``details.auth.method`` ``none``, or written in embedded mode); should
      be empty on a control plane that runs with ``--auth`` (docs/security.md).
    * ``chain_verification``: the result of verifying the whole chain when the report
      was generated.
    """

    report_id: str
    generated_at: datetime
    generated_by: str
    start_date: datetime
    end_date: datetime
    total_events: int
    events_by_type: dict[str, int] = field(default_factory=dict)
    events_by_severity: dict[str, int] = field(default_factory=dict)
    events_by_user: dict[str, int] = field(default_factory=dict)
    security_violations: list[dict[str, Any]] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    rollbacks: list[dict[str, Any]] = field(default_factory=list)
    unapproved_production_changes: list[dict[str, Any]] = field(default_factory=list)
    unauthenticated_changes: list[dict[str, Any]] = field(default_factory=list)
    chain_verification: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    list_limit: int = 1000

    @property
    def approvals_granted(self) -> list[dict[str, Any]]:
        return [a for a in self.approvals if a["decision"] == "granted"]

    @property
    def approvals_rejected(self) -> list[dict[str, Any]]:
        return [a for a in self.approvals if a["decision"] == "rejected"]

    @property
    def chain_valid(self) -> bool:
        return bool(self.chain_verification.get("valid"))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("generated_at", "start_date", "end_date"):
            out[key] = getattr(self, key).isoformat()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ComplianceReport:
        values = dict(data)
        for key in ("generated_at", "start_date", "end_date"):
            values[key] = datetime.fromisoformat(values[key])
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})

    # --- rendering ----------------------------------------------------------------

    def _sections(self) -> list[tuple[str, list[str], Sequence[Sequence[Any]]]]:
        """(title, headers, rows) tables shared by the Markdown and HTML renderings."""
        def ev_rows(events: list[dict[str, Any]]) -> list[list[Any]]:
            return [
                [e.get("time", ""), e.get("event_type", ""), e.get("actor", ""),
                 e.get("resource_id", ""), e.get("action", ""), e.get("seq", "")]
                for e in events
            ]

        ev_headers = ["time", "type", "user", "resource", "action", "seq"]
        return [
            ("Events by type", ["type", "events"], sorted(self.events_by_type.items())),
            ("Events by severity", ["severity", "events"], sorted(self.events_by_severity.items())),
            ("Events by user", ["user", "events"],
             sorted(self.events_by_user.items(), key=lambda kv: (-kv[1], kv[0]))),
            ("Security violations", ev_headers, ev_rows(self.security_violations)),
            ("Approval decisions",
             ["decided", "decision", "model", "approver", "requested by", "seconds to decision"],
             [[a["time"], a["decision"], a["resource_id"], a["actor"], a.get("requested_by", ""),
               a.get("seconds_to_decision")] for a in self.approvals]),
            ("Deployments", ev_headers, ev_rows(self.deployments)),
            ("Rollbacks", ev_headers, ev_rows(self.rollbacks)),
            ("Production changes without approval", ev_headers,
             ev_rows(self.unapproved_production_changes)),
            ("Changes by unauthenticated (declared) identities", ev_headers,
             ev_rows(self.unauthenticated_changes)),
        ]

    def _facts(self) -> list[tuple[str, Any]]:
        cv = self.chain_verification
        chain = ("valid" if cv.get("valid")
                 else f"INVALID at seq {cv.get('first_bad_seq')}: {cv.get('reason')}")
        s = self.summary
        return [
            ("Report", self.report_id),
            ("Period", f"{self.start_date.isoformat()} to {self.end_date.isoformat()}"),
            ("Generated", f"{self.generated_at.isoformat()} by {self.generated_by}"),
            ("Total events", self.total_events),
            ("Most active user", s.get("most_active_user") or "-"),
            ("Security violations", s.get("security_violation_count", 0)),
            ("Approvals granted / rejected",
             f"{s.get('approvals_granted', 0)} / {s.get('approvals_rejected', 0)}"),
            ("Median seconds to decision", s.get("median_seconds_to_decision")),
            ("Deployments / rollbacks",
             f"{s.get('deployment_count', 0)} / {s.get('rollback_count', 0)}"),
            ("Production changes without approval",
             s.get("unapproved_production_change_count", 0)),
            ("Changes by unauthenticated identities", s.get("unauthenticated_change_count", 0)),
            ("Audit chain", f"{chain} ({cv.get('events_checked', 0)} events checked)"),
        ]

    def to_markdown(self) -> str:
        def cell(v: Any) -> str:
            return "-" if v is None or v == "" else str(v).replace("|", "\\|").replace("\n", " ")

        lines = [f"# Compliance report {self.report_id}", ""]
        lines += ["| | |", "|---|---|"] + [f"| {k} | {cell(v)} |" for k, v in self._facts()]
        for title, headers, rows in self._sections():
            lines += ["", f"## {title}", ""]
            if not rows:
                lines.append("None.")
                continue
            lines.append("| " + " | ".join(headers) + " |")
            lines.append("|" + "---|" * len(headers))
            lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        def cell(v: Any) -> str:
            return "-" if v is None or v == "" else html.escape(str(v))

        title = f"Compliance report {html.escape(self.report_id)}"
        out = [
            "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{title}</title>",
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
            "margin-bottom:1.5em}td,th{border:1px solid #bbb;padding:4px 8px;text-align:left}"
            "th{background:#eee}</style></head><body>",
            f"<h1>{title}</h1>", "<table>",
        ]
        out += [f"<tr><th>{cell(k)}</th><td>{cell(v)}</td></tr>" for k, v in self._facts()]
        out.append("</table>")
        for name, headers, rows in self._sections():
            out.append(f"<h2>{html.escape(name)}</h2>")
            if not rows:
                out.append("<p>None.</p>")
                continue
            out.append("<table><tr>" + "".join(f"<th>{cell(h)}</th>" for h in headers) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows]
            out.append("</table>")
        out.append("</body></html>")
        return "\n".join(out) + "\n"

    def render(self, fmt: str) -> str:
        fmt = fmt.lower()
        if fmt in ("md", "markdown"):
            return self.to_markdown()
        if fmt == "html":
            return self.to_html()
        if fmt == "json":
            return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        raise InvalidArgument(
            f"unknown report format {fmt!r}; use markdown, html or json", field="format"
        )


def event_summary(ev: AuditEvent) -> dict[str, Any]:
    """The JSON form of one event inside a report."""
    return {
        "seq": ev.seq,
        "event_id": ev.event_id,
        "time": ev.timestamp.isoformat(),
        "event_type": str(ev.event_type),
        "severity": str(ev.severity),
        "actor": ev.actor,
        "resource_type": ev.resource_type,
        "resource_id": ev.resource_id,
        "action": ev.action,
        "details": ev.details,
    }
