"""Screenshots of every page of the web console, for docs/img/ and the README.

    python tools/console_screenshots.py            # writes docs/img/console-*.png
    python tools/console_screenshots.py --out /tmp/shots

Builds a scene on loopback and photographs it with Debian's headless Chromium (Playwright):
a control plane with its console (`serve --http-listen 127.0.0.1:0`, authentication off,
signed in by name), demo model servers, two sidecars with live traffic, a registry with
a pending promotion, an A/B test whose outcomes are recorded over the last 40 minutes
(timestamped records through the API, so the charts have a history), a canary rollout in
progress and a shadow deployment. Run it by hand when the pages change; the tests do not
(the pictures would change on every run).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc

from neural.mlops.ab_testing import ABTestManager
from neural.mlops.audit import AuditLogger
from neural.mlops.deployment import (
    DeploymentManager,
    DeploymentStrategy,
    PerformanceMetrics,
    RollbackConfig,
)
from neural.mlops.registry import ModelRegistry, ModelStage
from neural.mlops.v1 import oip_pb2

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
LISTENING = re.compile(r"listening on (\S+:\d+)")
CONSOLE = re.compile(r"console at (http://\S+)")
REVIEWER = "ml_manager@company.com"


def start(stack: ExitStack, *args: str, console: bool = False) -> tuple[str, str]:
    """Start ``neural-mlops ARGS`` and return (its address, its console URL or "")."""
    proc = subprocess.Popen([sys.executable, "-m", "neural.mlops", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stack.callback(lambda: (proc.terminate(), proc.wait(20)))
    found: dict[str, str] = {}

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if m := LISTENING.search(line):
                found["address"] = m.group(1)
            if m := CONSOLE.search(line):
                found["url"] = m.group(1).rstrip("/")
            if "address" in found and (not console or "url" in found):
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(90)
    if "address" not in found:
        raise RuntimeError(f"neural-mlops {' '.join(args[:1])} did not start")
    return found["address"], found.get("url", "")


def traffic(address: str, model: str, stop: threading.Event) -> threading.Thread:
    def run() -> None:
        with grpc.insecure_channel(address) as ch:
            infer = ch.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                                   request_serializer=oip_pb2.ModelInferRequest.SerializeToString,
                                   response_deserializer=oip_pb2.ModelInferResponse.FromString)
            req = oip_pb2.ModelInferRequest(model_name=model)
            req.inputs.add(name="features", datatype="FP32", shape=[1, 4])
            req.raw_input_contents.append(b"\x00\x00\x80?" * 4)
            n = 0
            while not stop.is_set() and n < 200_000:
                n += 1
                try:
                    infer(req, metadata=(("x-user-id", f"user-{n}"),), timeout=5)
                except grpc.RpcError:
                    pass
                time.sleep(0.004)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def registry_scene(target: str) -> None:
    reg = ModelRegistry(target)
    versions = [("v1", 0.912, 0.951), ("v2", 0.934, 0.962), ("v3", 0.941, 0.968)]
    for i, (version, acc, auc) in enumerate(versions):
        reg.register_model(
            name="fraud_detector", version=version, artifact_uri=f"s3://models/fraud/{version}",
            framework="pytorch", created_by="data_scientist@company.com",
            metrics={"accuracy": acc, "auc": auc, "latency_p95_ms": 11.0 + i},
            tags=["fraud", "tabular"], description=f"gradient-boosted features, run {i + 1}",
            lineage={"source_run_id": f"run-{1042 + i}", "code_revision": f"{i + 1}a2b3c4d5e6f",
                     "training_data": [{"uri": f"s3://datasets/fraud/2026-1{i}.parquet"}],
                     **({"parent_version": versions[i - 1][0]} if i else {})})
    for name in ("churn_model", "ranker"):
        for version in ("v1", "v2"):
            reg.register_model(name=name, version=version, artifact_uri=f"s3://models/{name}/"
                               f"{version}", framework="sklearn", created_by="ds@company.com",
                               metrics={"accuracy": 0.8 + 0.02 * int(version[1])})
    for name, version in (("fraud_detector", "v1"), ("fraud_detector", "v2"),
                          ("churn_model", "v1"), ("churn_model", "v2"), ("ranker", "v1")):
        reg.request_promotion(name=name, version=version, target_stage=ModelStage.PRODUCTION,
                              requested_by="ml_engineer@company.com", reviewers=[REVIEWER],
                              justification="offline evaluation passed")
        reg.approve_promotion(name=name, version=version, approver=REVIEWER, comment="ok")
    reg.set_alias("fraud_detector", "champion", "v2", actor=REVIEWER)
    reg.request_promotion(name="fraud_detector", version="v3",
                          target_stage=ModelStage.PRODUCTION,
                          requested_by="ml_engineer@company.com", reviewers=[REVIEWER],
                          justification="+0.7 pt accuracy on the March holdout")


def _converts(unit: str, variant: str) -> bool:
    u = int.from_bytes(hashlib.sha256(unit.encode()).digest()[:8], "big") / 2**64
    return u < (0.125 if variant == "treatment" else 0.10)


def experiment_scene(target: str) -> str:
    with ABTestManager(target) as ab:
        test = ab.create_test(name="ranker v2 vs v1", control_variant="ranker:v1",
                              treatment_variant="ranker:v2", traffic_split=0.5,
                              created_by="ml_engineer@company.com", decision_rule="sequential",
                              minimum_detectable_effect=0.1)
        ab.start_test(test.test_id, actor="ml_engineer@company.com")
        now = datetime.now(UTC)
        for minute in range(40, 0, -1):
            at = now - timedelta(minutes=minute)
            records = []
            for i in range(240):
                variant = "treatment" if i % 2 else "control"
                unit = f"u{minute}-{i}"
                records.append({"variant": variant, "user_id": unit, "timestamp": at,
                                "success": _converts(unit, variant),
                                "latency": 0.02 + (i % 13) / 1000})
            ab.record_requests(test.test_id, records)
        return test.test_id


def deployment_scene(target: str, canary: str, shadow_upstream: str) -> tuple[str, str]:
    with DeploymentManager(target) as dm:
        dep = dm.create_deployment(
            model_name="fraud_detector", model_version="v2", stable_version="v1",
            strategy=DeploymentStrategy.CANARY, created_by="devops@company.com",
            baseline_metrics=PerformanceMetrics(latency_p95=0.05, error_rate=0.01),
            rollback_config=RollbackConfig(error_rate_threshold=0.05,
                                           min_requests_before_check=100),
            steps=[5, 25, 50, 100], step_duration_seconds=15, analysis_interval_seconds=1,
            upstream=canary)
        shadow = dm.shadow_deploy("churn_model:v1", "churn_model:v2", traffic_percentage=100,
                                  created_by="devops@company.com", upstream=shadow_upstream)
        return dep.deployment_id, shadow.shadow_id


def photograph(url: str, pages: dict[str, str], out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url + "/")
        page.fill("#login-name", REVIEWER)
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("h1:has-text('Overview')")
        for name, route in pages.items():
            page.goto(f"{url}/#{route}")
            page.wait_for_selector("main h1")
            page.wait_for_timeout(2500)  # the charts and the tables of every section
            if name == "model":  # two versions side by side, and one's lineage
                page.check("input[aria-label='compare v2']")
                page.check("input[aria-label='compare v3']")
                page.click("text=Compare the two ticked versions")
                page.wait_for_selector("#comparison")
                page.click("[data-table=versions] button:has-text('v3')")
            if name == "audit":
                page.click("text=Generate report")
                page.wait_for_selector("#report")
            path = out / f"console-{name}.png"
            page.screenshot(path=str(path), full_page=True)
            print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        plane, url = start(stack, "serve", "--data-dir", tmp, "--listen", "127.0.0.1:0",
                           "--http-listen", "127.0.0.1:0", console=True)
        target = f"grpc://{plane}"
        stable, _ = start(stack, "demo-model", "--listen", "127.0.0.1:0", "--name",
                          "fraud_detector")
        canary, _ = start(stack, "demo-model", "--listen", "127.0.0.1:0", "--name",
                          "fraud_detector", "--latency-ms", "2")
        churn, _ = start(stack, "demo-model", "--listen", "127.0.0.1:0", "--name", "churn_model")
        churn2, _ = start(stack, "demo-model", "--listen", "127.0.0.1:0", "--name",
                          "churn_model", "--bias", "0.5", "--latency-ms", "3")
        sidecars = [start(stack, "sidecar", "--listen", "127.0.0.1:0", "--upstream", upstream,
                          "--control-plane", plane, "--flush-interval", "0.5")[0]
                    for upstream in (stable, churn)]
        registry_scene(target)
        test_id = experiment_scene(target)
        deployment_id, shadow_id = deployment_scene(target, canary, churn2)
        stack.callback(stop.set)
        for address, model in zip(sidecars, ("fraud_detector", "churn_model"), strict=True):
            traffic(address, model, stop)
        time.sleep(20)  # the canary takes a step or two; the shadow compares
        AuditLogger(target).verify_chain()
        photograph(url, {"overview": "/", "model": "/models/fraud_detector",
                         "experiment": f"/experiments/{test_id}",
                         "rollout": f"/rollouts/{deployment_id}",
                         "shadow": f"/shadows/{shadow_id}", "audit": "/audit"}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
