"""Compliance reporting: the audit trail of everything the other examples did, plus
explicit events, a compliance report, a signed export, and tamper detection.

    python examples/mlops/compliance_reporting.py  # embedded store in ./mlops-example
    python examples/mlops/compliance_reporting.py --target grpc://127.0.0.1:50051

Every state change (registration, approval, deployment, rollback...) is written to the
hash-chained audit trail in the same transaction as the change; run the other examples
first against the same --target to see their events here.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from neural.mlops.audit import AuditLogger, EventSeverity, EventType


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--target", default="./mlops-example", help="store folder or grpc://HOST:PORT"
    )
    args = parser.parse_args()
    logger = AuditLogger(args.target)

    # Explicit events, as the seed shows.
    logger.log_model_deployment(
        model_name="fraud_detector",
        version="v2.0.0",
        user="devops@company.com",
        environment="production",
        strategy="canary",
    )
    logger.log_approval_granted(
        model_name="fraud_detector",
        version="v2.0.0",
        approver="ml_manager@company.com",
        comment="Approved after successful A/B test",
    )
    logger.log_security_violation(
        user="unknown@external.com",
        resource_type="model",
        resource_id="fraud_detector:v2.0.0",
        action="unauthorized_access",
        details={"ip_address": "192.168.1.1"},
        ip_address="192.168.1.1",
    )

    deployed = logger.query_events(
        event_type=EventType.MODEL_DEPLOYED,
        start_date=datetime.now() - timedelta(days=30),
        severity=EventSeverity.INFO,
    )
    print(f"deployments in the last 30 days: {len(deployed)}")
    for event in list(deployed)[:5]:
        print(
            f"  {event.timestamp:%Y-%m-%d %H:%M:%S} {event.user:24} "
            f"{event.resource_id} {event.action}"
        )

    report = logger.generate_compliance_report(
        start_date=datetime.now() - timedelta(days=90),
        end_date=datetime.now() + timedelta(minutes=1),
    )
    print(f"Total events: {report.total_events}")
    print(f"Security violations: {len(report.security_violations)}")
    print(f"Most active user: {report.summary['most_active_user']}")
    print(f"Approvals granted: {len(report.approvals_granted)}; rollbacks: {len(report.rollbacks)}")
    print(f"Unapproved production changes: {len(report.unapproved_production_changes)}")
    print(f"Audit chain valid: {report.chain_valid}")

    out = Path(tempfile.mkdtemp(prefix="audit-")) / "audit_trail.json"
    export = logger.export_audit_trail(
        output_path=str(out),
        format="json",
        start_date=datetime.now() - timedelta(days=90),
        end_date=datetime.now(),
    )
    print(f"exported {export.count} events to {out} ({export.bytes_written} bytes, signed seal)")
    print(f"export verifies: {AuditLogger.verify_export(out).valid}")

    # Tampering with the exported file is detected.
    doc = json.loads(out.read_text())
    events = doc["events"] if isinstance(doc, dict) else doc
    events[0]["actor"] = "someone_else@company.com"  # rewrite who registered the first model
    tampered = out.with_name("tampered.json")
    tampered.write_text(json.dumps(doc))
    check = AuditLogger.verify_export(tampered)
    print(f"tampered copy verifies: {check.valid} ({check.reason})")
    logger.close()


if __name__ == "__main__":
    main()
