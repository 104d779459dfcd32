"""``neural-mlops status``: one screen with models, running A/B tests and active rollouts.

Each section is read on its own; a section the control plane does not offer (an older
server, a component not installed) is reported as unavailable instead of failing the
whole command. ``--watch SECONDS`` redraws it until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import grpc

from neural.mlops.cli._output import add_common, emit, print_table
from neural.mlops.cli._progress import bar
from neural.mlops.server.errors import MLOpsError, Unavailable


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "status",
        help="models, running A/B tests and active deployments at a glance",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default="", help="only models whose name starts with this")
    p.add_argument(
        "--watch", type=float, metavar="SECONDS", help="redraw every SECONDS until Ctrl-C"
    )
    p.add_argument(
        "--token",
        default=os.environ.get("NEURAL_MLOPS_TOKEN"),
        help="API token (env NEURAL_MLOPS_TOKEN)",
    )
    add_common(p)
    p.set_defaults(handler=run)


def _section(name: str, read: Callable[[], Any], unavailable: dict[str, str]) -> Any:
    try:
        return read()
    except ImportError as exc:
        unavailable[name] = f"not installed ({exc.name})"
    except Unavailable:
        raise  # the control plane itself is down: that is the answer, not a partial screen
    except MLOpsError as exc:
        if "UNIMPLEMENTED" in str(exc) or exc.status in ("UNKNOWN", "INTERNAL"):
            unavailable[name] = f"not offered by this control plane ({exc})"
        else:
            unavailable[name] = str(exc)
    except grpc.RpcError as exc:  # pragma: no cover - clients map these; kept as a guard
        unavailable[name] = str(exc)
    return None


def collect(target: str, token: str | None = None, model_prefix: str = "") -> dict[str, Any]:
    """Everything the status screen shows, as plain data (also the ``--json`` output)."""
    unavailable: dict[str, str] = {}
    where = (target, token, model_prefix)
    result: dict[str, Any] = {"target": target}
    result["models"] = _section("models", lambda: _models(*where), unavailable)
    result["tests"] = _section("tests", lambda: _tests(*where), unavailable)
    deps = _section("deployments", lambda: _deployments(*where), unavailable)
    result["deployments"] = None if deps is None else [d for d in deps if "shadow" not in d]
    result["shadows"] = None if deps is None else [d["shadow"] for d in deps if "shadow" in d]
    result["unavailable"] = unavailable
    return result


def _models(target: str, token: str | None, model_prefix: str) -> list[dict[str, Any]]:
    from neural.mlops.registry import ModelRegistry

    out = []
    with ModelRegistry(target, token=token) as reg:
        page_token = ""
        while True:
            page = reg.list_models(model_prefix, page_token=page_token)
            for m in page:
                by_stage: dict[str, list[str]] = {}
                for v in m.latest_versions:
                    by_stage.setdefault(v.stage.value, []).append(v.version)
                prod = reg.get_production_version(m.name)
                out.append(
                    {
                        "name": m.name,
                        "versions": m.version_count,
                        "production": prod.version if prod else None,
                        "production_metrics": dict(prod.metrics) if prod else {},
                        "latest_by_stage": by_stage,
                        "aliases": dict(m.aliases),
                        "pending_approvals": [
                            r.version for r in reg.list_pending_approvals(name=m.name)
                        ],
                    }
                )
            page_token = page.next_page_token
            if not page_token:
                return out


def _tests(target: str, token: str | None, model_prefix: str) -> list[dict[str, Any]]:
    from neural.mlops.ab_testing import ABTestManager

    out = []
    with ABTestManager(target, token=token) as manager:
        for t in manager.list_tests():
            if t.status.value not in ("running", "paused"):
                continue
            if model_prefix and not t.model_name.startswith(model_prefix):
                continue
            counts: dict[str, int] = {}
            verdict = None
            try:
                analysis = manager.analyze_test(t.test_id)
                counts = {
                    name: int(v.get("n") or 0)
                    for name, v in (analysis.get("variants") or {}).items()
                }
                rec = analysis.get("recommendation") or {}
                verdict = {
                    "significant": analysis.get("statistically_significant"),
                    "p_value": analysis.get("p_value"),
                    "action": rec.get("action"),
                    "reason": rec.get("reason"),
                    "decided_by": decided_by(analysis),
                }
            except MLOpsError:
                pass
            out.append(
                {
                    "test_id": t.test_id,
                    "name": t.name,
                    "model": t.model_name,
                    "status": t.status.value,
                    "split": {v.name: v.weight for v in t.variants},
                    "models": {v.name: v.model_ref for v in t.variants},
                    "requests": counts,
                    "analysis": verdict,
                    "running_seconds": t.running_seconds,
                }
            )
    return out


def _deployments(target: str, token: str | None, model_prefix: str) -> list[dict[str, Any]]:
    from neural.mlops.deployment import DeploymentManager

    out = []
    with DeploymentManager(target, token=token) as manager:
        for d in manager.list_deployments(model_prefix if model_prefix else "", active_only=True):
            last = d.last_check
            out.append(
                {
                    "deployment_id": d.deployment_id,
                    "model": d.model_name,
                    "version": d.model_version,
                    "stable_version": d.stable_version,
                    "strategy": d.strategy.value,
                    "status": d.status.value,
                    "step": d.step_index + 1,
                    "steps": len(d.plan.steps),
                    "split": {
                        d.new_variant: d.traffic_percentage,
                        d.stable_variant: round(100.0 - d.traffic_percentage, 6),
                    },
                    "last_check": (
                        {
                            "verdict": last.verdict.value,
                            "reasons": list(last.reasons),
                            "requests": last.new.request_count,
                        }
                        if last
                        else None
                    ),
                }
            )
        shadows = [
            {
                "shadow_id": s.shadow_id,
                "primary": s.primary_model,
                "shadow": s.shadow_model,
                "traffic_percentage": s.traffic_percentage,
            }
            for s in manager.list_shadows(active_only=True)
            if not model_prefix or s.model_name.startswith(model_prefix)
        ]
    return [*out, *({"shadow": s} for s in shadows)]


def decided_by(analysis: dict[str, Any]) -> dict[str, Any]:
    """What settled the recommendation, in the order the analysis decides: a sample-ratio
    mismatch stops any test whatever the comparison says; an arm without traffic or a
    fixed-horizon test short of its planned size keeps running; otherwise the comparison
    (the always-valid p-value under the sequential rule)."""
    srm = analysis.get("srm") or {}
    if srm.get("detected"):
        return {"check": "sample_ratio_mismatch", "p_value": srm.get("p_value")}
    counts = [int(v.get("n") or 0) for v in (analysis.get("variants") or {}).values()]
    if len(counts) < 2 or min(counts) == 0:
        return {"check": "no_traffic"}
    if analysis.get("decision_rule") == "sequential":
        return {"check": "sequential", "p_value": (analysis.get("sequential") or {}).get("p_value")}
    power = analysis.get("power") or {}
    if (power.get("progress") or 0.0) < 1.0:
        return {"check": "sample_size", "observed": power.get("observed_total"),
                "required": power.get("required_total")}
    return {"check": "comparison", "p_value": analysis.get("p_value")}


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def verdict_text(verdict: dict[str, Any] | None) -> str:
    """``stop (sample ratio mismatch p=7.9e-16)``: the action and what decided it."""
    if not verdict or not verdict.get("action"):
        return "-"
    basis = verdict.get("decided_by") or {}
    check = basis.get("check")
    why = {
        "sample_ratio_mismatch": f"sample ratio mismatch p={_p(basis.get('p_value'))}",
        "no_traffic": "an arm has no traffic yet",
        "sequential": f"always-valid p={_p(basis.get('p_value'))}",
        "sample_size": f"{basis.get('observed')} of {basis['required']} planned requests"
        if basis.get("required") else "sample size not plannable yet",
        "comparison": f"p={_p(basis.get('p_value'))}",
    }.get(check or "")
    return f"{verdict['action']} ({why})" if why else str(verdict["action"])


def render(data: dict[str, Any]) -> None:
    unavailable = data["unavailable"]

    def header(title: str, key: str) -> bool:
        print(f"\n{title}")
        if data[key] is None:
            print(f"  unavailable: {unavailable.get(key, unavailable.get('deployments', '-'))}")
            return False
        if not data[key]:
            print("  none")
            return False
        return True

    print(f"control plane: {data['target']}")
    if header("MODELS", "models"):
        print_table(
            ["name", "versions", "production", "metrics", "staging", "pending", "aliases"],
            [
                [
                    m["name"],
                    m["versions"],
                    m["production"],
                    m["production_metrics"],
                    m["latest_by_stage"].get("staging"),
                    m["pending_approvals"],
                    m["aliases"],
                ]
                for m in data["models"]
            ],
        )
    if header("A/B TESTS", "tests"):
        rows = []
        for t in data["tests"]:
            split = " ".join(f"{k} {v:.0%}" for k, v in t["split"].items())
            reqs = " ".join(f"{k}={n}" for k, n in t["requests"].items()) or "-"
            rows.append([t["test_id"], t["model"], t["status"], split, reqs,
                         verdict_text(t["analysis"])])
        print_table(["test", "model", "status", "split", "requests", "verdict"], rows)
    if header("DEPLOYMENTS", "deployments"):
        rows = []
        for d in data["deployments"]:
            new_name = next(iter(d["split"]))
            check = d["last_check"]
            rows.append(
                [
                    d["deployment_id"],
                    f"{d['model']}:{d['version']}",
                    d["strategy"],
                    f"{d['step']}/{d['steps']}",
                    f"{new_name} {bar(d['split'][new_name], 10)}",
                    d["status"],
                    (check or {}).get("verdict"),
                ]
            )
        print_table(
            ["deployment", "model", "strategy", "step", "live split", "status", "last check"], rows
        )
    if data.get("shadows"):
        print("\nSHADOWS")
        print_table(
            ["shadow", "primary", "shadow model", "mirrored"],
            [
                [s["shadow_id"], s["primary"], s["shadow"], f"{s['traffic_percentage']:g}%"]
                for s in data["shadows"]
            ],
        )


def run(args: argparse.Namespace) -> int:
    while True:
        data = collect(args.target, args.token, args.model)
        if args.watch and sys.stdout.isatty() and not args.json:
            sys.stdout.write("\x1b[H\x1b[2J")
        emit(args, data, lambda d=data: render(d))
        if not args.watch:
            return 0
        sys.stdout.flush()
        time.sleep(max(0.2, args.watch))
