"""The web console in a real browser: Playwright drives Debian's headless Chromium against a
real control plane (`serve --auth token --http-listen 127.0.0.1:0`), real demo model
servers and a sidecar carrying live traffic. One browser and one stack for the module;
each test signs in in a fresh browser context (its own cookies) with its own API token.

Flows of issue #17: a reviewer approves a promotion and the model page shows PRODUCTION;
the experiment page shows the chart and the verdict once traffic arrives; a canary rolled
back while its page is open shows without a reload; the audit page filters and exports;
a viewer sees no approve button and the server refuses the post; a post without the CSRF
token is refused. Every page is also checked for script errors and CSP violations.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from peers.procs import Proc, start_all, start_demo, start_sidecar  # noqa: E402
from support.databases import store_args  # noqa: E402
from support.peers import require_peer  # noqa: E402
from support.processes import ServerProcess, start_server  # noqa: E402
from support.rpc import call, message  # noqa: E402

from neural.mlops.v1 import oip_pb2, registry_pb2  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
CONSOLE_AT = re.compile(r"console at (http://\S+)")
REG = "/neural.mlops.v1.RegistryService/"
EXP = "/neural.mlops.v1.ExperimentService/"
DEP = "/neural.mlops.v1.DeploymentService/"
AUTH = "/neural.mlops.v1.AuthService/"
TIMEOUT_MS = 30_000


def _playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    require_peer(sync_playwright is not None and shutil.which(CHROMIUM) is not None,
                 "Chromium (/usr/bin/chromium) or Playwright",
                 "apt-get install -y chromium && pip install -e '.[dev]'")
    return sync_playwright


@dataclass
class Stack:
    server: ServerProcess
    url: str
    admin: str
    channel: grpc.Channel
    procs: list[Proc]
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, name: str, *roles: str) -> str:
        if name not in self.tokens:
            resp = call(self.channel, AUTH + "CreateToken",
                        message(AUTH + "CreateToken", name=name, roles=list(roles)),
                        token=self.admin)
            self.tokens[name] = resp.secret
        return self.tokens[name]

    def rpc(self, path: str, who: str, **fields: Any) -> Any:
        return call(self.channel, path, message(path, **fields), token=self.tokens[who])

    def register(self, name: str, version: str, **metrics: float) -> None:
        meta = registry_pb2.RegisterModelMetadata(
            name=name, version=version, framework="sklearn", metrics=metrics,
            artifact_uri=f"s3://models/{name}/{version}")
        first = registry_pb2.RegisterModelRequest(metadata=meta)
        call(self.channel, REG + "RegisterModel", [first], token=self.admin)

    def promote(self, name: str, version: str, stage: int = 3) -> None:
        """Request (as the admin) and approve (as boss) ``version`` into ``stage``."""
        self.request(name, version, stage)
        self.rpc(REG + "ApprovePromotion", "boss@x.com", name=name, version=version)

    def request(self, name: str, version: str, stage: int = 3) -> None:
        call(self.channel, REG + "RequestPromotion", message(
            REG + "RequestPromotion", name=name, version=version, target_stage=stage,
            justification="offline evaluation passed", reviewers=["boss@x.com"]),
            token=self.admin)


class InferenceTraffic:
    """ModelInfer calls through the sidecar from a few threads until the block ends."""

    def __init__(self, address: str, model: str, workers: int = 4) -> None:
        self.channel = grpc.insecure_channel(address)
        self.infer = self.channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=oip_pb2.ModelInferRequest.SerializeToString,
            response_deserializer=oip_pb2.ModelInferResponse.FromString)
        tensor = oip_pb2.ModelInferRequest.InferInputTensor(name="x", datatype="FP32",
                                                            shape=[1, 4])
        self.request = oip_pb2.ModelInferRequest(model_name=model, inputs=[tensor],
                                                 raw_input_contents=[bytes(16)])
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(w,)) for w in range(workers)]

    def _run(self, worker: int) -> None:
        n = 0
        while not self.stop.is_set() and n < 20_000:  # bounded even if the test hangs
            n += 1
            try:
                self.infer(self.request, metadata=(("x-user-id", f"u{worker}-{n}"),), timeout=5)
            except grpc.RpcError:
                pass  # the faulty canary's errors are the point

    def __enter__(self) -> InferenceTraffic:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)
        self.channel.close()


def _console_url(server: ServerProcess, timeout: float = 60.0) -> str:
    """The URL `serve` prints right after its listening line. That line may already sit in
    the pipe's read buffer (select() would not see it), so read in a thread."""
    found: list[str] = []

    def read() -> None:
        assert server.proc.stdout is not None
        for line in server.proc.stdout:
            if m := CONSOLE_AT.search(line):
                found.append(m.group(1).rstrip("/"))
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if not found:
        raise TimeoutError(f"serve printed no console URL within {timeout} s")
    return found[0]


def _bootstrap(data: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "neural.mlops", "auth", "bootstrap", *store_args(data), "--json"],
        check=True, capture_output=True, text=True, timeout=120)
    return str(json.loads(out.stdout)["token"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    _playwright()
    data = tmp_path_factory.mktemp("console")
    admin = _bootstrap(data)
    server = start_server(data, "--auth", "token", "--http-listen", "127.0.0.1:0")
    channel = grpc.insecure_channel(server.address)
    procs: list[Proc] = []
    try:
        url = _console_url(server)
        s = Stack(server, url, admin, channel, procs)
        sidecar_token = s.token("sidecar-1", "sidecar")
        stable, canary = start_all(lambda: start_demo("m"),
                                   lambda: start_demo("m", "--error-rate", "0.5", "--seed", "3"))
        procs += [stable, canary]
        procs.append(start_sidecar(stable.address, server.address, "--flush-interval", "0.2",
                                   "--control-plane-token", sidecar_token))
        for name, roles in (("boss@x.com", ("reviewer",)), ("viewer@x.com", ("viewer",)),
                            ("ops@x.com", ("author", "operator")), ("audit@x.com", ("auditor",))):
            s.token(name, *roles)
        yield s
    finally:
        for p in reversed(procs):
            p.stop()
        channel.close()
        server.stop()


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Any]:
    with _playwright()() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


class Page:
    """A signed-in page that fails the test on a script error or a CSP violation."""

    def __init__(self, browser: Any, stack: Stack, token: str) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900},
                                           accept_downloads=True)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.problems: list[str] = []
        self.page.on("pageerror", lambda e: self.problems.append(f"script error: {e}"))
        self.page.on("console", self._console)
        self.url = stack.url
        self.page.goto(self.url + "/")
        self.page.fill("#login-token", token)
        self.page.click("#login-form button[type=submit]")
        self.page.wait_for_selector("h1:has-text('Overview')")

    def _console(self, msg: Any) -> None:
        if "Content Security Policy" in msg.text or "Refused to" in msg.text:
            self.problems.append(f"CSP: {msg.text}")

    def open(self, route: str, heading: str) -> Any:
        self.page.goto(f"{self.url}/#{route}")
        self.page.wait_for_selector(f"h1:has-text('{heading}')")
        return self.page

    def post(self, path: str, body: dict[str, Any], *, csrf: bool = True) -> dict[str, Any]:
        """A POST from inside the page (its cookie, its origin), with or without the
        session's CSRF token; returns {status, body}."""
        result: dict[str, Any] = self.page.evaluate(
            """async ([path, body, csrf]) => {
                const s = await (await fetch('/api/session')).json();
                const headers = {'Content-Type': 'application/json'};
                if (csrf) headers['X-CSRF-Token'] = s.csrf_token;
                const r = await fetch(path, {method: 'POST', headers,
                                             body: JSON.stringify(body)});
                return {status: r.status, body: await r.json()};
            }""", [path, body, csrf])
        return result

    def close(self) -> None:
        self.context.close()
        assert not self.problems, self.problems


@pytest.fixture
def signed_in(browser: Any, stack: Stack) -> Iterator[Any]:
    pages: list[Page] = []

    def open_as(who: str) -> Page:
        page = Page(browser, stack, stack.tokens[who])
        pages.append(page)
        return page

    yield open_as
    for p in pages:
        p.close()


def test_a_reviewer_approves_a_promotion_and_the_model_page_shows_production(
    stack: Stack, signed_in: Any
) -> None:
    stack.register("fraud", "v1", accuracy=0.93)
    stack.register("fraud", "v2", accuracy=0.96)
    stack.request("fraud", "v2")
    page = signed_in("boss@x.com").open("/models/fraud", "Model fraud")
    row = page.locator("[data-table=versions] tr", has_text="v2")
    assert row.locator(".badge").inner_text() == "development"
    promotion = page.locator(".promotion", has_text="v2")
    promotion.locator("input[name=comment]").fill("metrics look right")
    promotion.locator("[data-action=ApprovePromotion]").click()
    page.wait_for_selector("#no-promotions")
    # The versions table re-renders from its own fetch, which may land after the
    # promotions list's: wait for what the reviewer waits to see.
    page.wait_for_selector("[data-table=versions] tr:has-text('v2') .badge:has-text('production')")
    assert row.locator(".badge").inner_text() == "production"
    timeline = page.locator("#timeline").inner_text()
    assert "v2: development → production by boss@x.com" in timeline
    version = call(stack.channel, REG + "GetModelVersion",
                   message(REG + "GetModelVersion", name="fraud", version="v2"),
                   token=stack.admin)
    assert version.stage == 3


def test_a_viewer_sees_no_approve_button_and_the_server_refuses_the_post(
    stack: Stack, signed_in: Any
) -> None:
    stack.register("churn", "v1")
    stack.request("churn", "v1")
    viewer = signed_in("viewer@x.com")
    page = viewer.open("/models/churn", "Model churn")
    page.wait_for_selector(".promotion")
    assert page.locator("[data-action=ApprovePromotion]").count() == 0
    assert page.locator("[data-action=RejectPromotion]").count() == 0
    assert page.locator("[data-nav=audit]").is_hidden()  # viewers do not read the trail
    answer = viewer.post("/api/v1/neural.mlops.v1.RegistryService/ApprovePromotion",
                         {"name": "churn", "version": "v1"})
    assert answer["status"] == 403 and answer["body"]["code"] == 7, answer
    pending = call(stack.channel, REG + "ListPendingApprovals",
                   message(REG + "ListPendingApprovals", name="churn"), token=stack.admin)
    assert [r.version for r in pending.requests] == ["v1"]  # still pending


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    stack: Stack, signed_in: Any
) -> None:
    stack.register("spam", "v1")
    stack.request("spam", "v1")
    boss = signed_in("boss@x.com")
    boss.open("/models/spam", "Model spam").wait_for_selector("[data-action=ApprovePromotion]")
    path = "/api/v1/neural.mlops.v1.RegistryService/ApprovePromotion"
    refused = boss.post(path, {"name": "spam", "version": "v1"}, csrf=False)
    assert refused["status"] == 403, refused
    assert refused["body"]["message"] == "CSRF token missing or wrong"
    pending = call(stack.channel, REG + "ListPendingApprovals",
                   message(REG + "ListPendingApprovals", name="spam"), token=stack.admin)
    assert [r.version for r in pending.requests] == ["v1"]
    accepted = boss.post(path, {"name": "spam", "version": "v1"})
    assert accepted["status"] == 200 and accepted["body"]["status"] == "PROMOTION_STATUS_APPROVED"


def test_while_the_event_stream_is_down_the_page_polls(stack: Stack, signed_in: Any) -> None:
    stack.register("polled", "v1")
    stack.request("polled", "v1")
    viewer = signed_in("viewer@x.com")
    viewer.page.route("**/api/events", lambda route: route.abort())
    viewer.page.reload()  # the stream opened at sign-in goes; its reconnections fail
    page = viewer.open("/models/polled", "Model polled")
    page.wait_for_selector("#live[data-state=polling]")
    row = page.locator("[data-table=versions] tr", has_text="v1")
    assert row.locator(".badge").inner_text() == "development"
    stack.rpc(REG + "ApprovePromotion", "boss@x.com", name="polled", version="v1")
    page.wait_for_selector("[data-table=versions] .badge:has-text('production')")
    assert page.locator("#no-promotions").count() == 1


def test_the_experiment_page_shows_the_chart_and_verdict_after_traffic(
    stack: Stack, signed_in: Any
) -> None:
    test = stack.rpc(EXP + "CreateTest", "ops@x.com", name="checkout button",
                     control_variant="shop:v1", treatment_variant="shop:v2",
                     model_name="shop", settings={"decision_rule": 2})  # sequential
    stack.rpc(EXP + "StartTest", "ops@x.com", test_id=test.test_id)
    page = signed_in("ops@x.com").open(f"/experiments/{test.test_id}", "Experiment checkout")
    page.wait_for_selector("#verdict")
    assert "keep running" in page.locator("#verdict .badge").inner_text()
    # Traffic: 1000 units per arm, 30% vs 10% success (a clear winner).
    records = []
    for i in range(2000):
        variant = "treatment" if i % 2 else "control"
        rate = 3 if variant == "treatment" else 1
        records.append({"unit_id": f"u{i}", "variant": variant, "success": (i // 2) % 10 < rate,
                        "latency": 0.01 + (i % 7) / 1000})
    stack.rpc(EXP + "RecordRequests", "ops@x.com", test_id=test.test_id, records=records)
    # Outcomes recorded through the API (not a sidecar's metric batch) write no audit event
    # and no batch, which is all the change feed watches (server/console/events.py), so
    # the page is reloaded here; live updates are checked with sidecar traffic below.
    page.reload()
    page.wait_for_selector("#verdict .badge:has-text('ship treatment')")
    assert page.locator("[data-table=variants] tr", has_text="treatment").count() == 1
    assert page.locator("[data-chart=lift] circle").count() == 1
    page.wait_for_selector("[data-chart='Cumulative success rate'] canvas")  # drawn last
    assert page.locator("[data-chart='Cumulative success rate'] canvas").count() == 1
    assert page.locator("#srm-ok").count() == 1
    # Analysed by unit (the records name units): no request-level sequential curve.
    assert page.locator("#sequential-by-unit").count() == 1
    assert page.locator("[data-chart^='Always-valid p-value']").count() == 0


def test_a_sequential_test_by_request_plots_its_always_valid_p_value_and_sequence(
    stack: Stack, signed_in: Any
) -> None:
    test = stack.rpc(EXP + "CreateTest", "ops@x.com", name="banner", model_name="banner",
                     control_variant="banner:v1", treatment_variant="banner:v2",
                     settings={"decision_rule": 2})  # sequential
    stack.rpc(EXP + "StartTest", "ops@x.com", test_id=test.test_id)
    records = [{"variant": "treatment" if i % 2 else "control",
                "success": (i // 2) % 10 < (3 if i % 2 else 1)} for i in range(2000)]
    stack.rpc(EXP + "RecordRequests", "ops@x.com", test_id=test.test_id, records=records)
    page = signed_in("ops@x.com").open(f"/experiments/{test.test_id}", "Experiment banner")
    # GetTrafficSeries' sequential looks: the always-valid p-value against alpha, and the
    # confidence sequence of the difference.
    pvals = page.locator("[data-chart='Always-valid p-value over time (sequential test)']")
    pvals.locator("canvas").wait_for()
    assert "always-valid p-value treatment vs control (mSPRT)" in pvals.inner_text()
    cs = page.locator("[data-chart^='Confidence sequence of the success-rate difference']")
    assert cs.locator("canvas").count() == 1
    assert page.locator("#sequential-by-unit").count() == 0


def test_a_canary_rolled_back_while_its_page_is_open_shows_without_a_reload(
    stack: Stack, signed_in: Any
) -> None:
    stack.register("m", "v1")
    stack.register("m", "v2")
    stack.promote("m", "v1")
    stack.promote("m", "v2")
    canary = stack.procs[1]
    dep = stack.rpc(DEP + "CreateDeployment", "ops@x.com", model_name="m", model_version="v2",
                    stable_version="v1", strategy=2, upstream=canary.address,
                    analysis_interval_seconds=0.25, rollback_config={
                        "error_rate_threshold": 0.05, "min_requests_before_check": 50,
                        "latency_threshold_multiplier": 10.0, "max_failed_checks": 1,
                        "alpha": 0.05, "latency_effect_threshold": 0.05, "auto_rollback": True})
    page = signed_in("ops@x.com").open(f"/rollouts/{dep.deployment_id}", "Rollout m")
    page.wait_for_selector("#rollout-status .badge:has-text('in_progress')")
    page.evaluate("window.__still_the_same_page = true")
    with InferenceTraffic(stack.procs[2].address, "m"):
        page.wait_for_selector("#rollout-status .badge:has-text('rolled_back')")
    assert page.evaluate("window.__still_the_same_page") is True
    log = page.locator("[data-table=decisions]").inner_text()
    assert "rolled_back" in log and "error rate" in log
    assert page.locator("[data-action=Rollback]").count() == 0  # nothing left to roll back


def test_the_audit_page_filters_and_exports(stack: Stack, signed_in: Any) -> None:
    stack.register("audited", "v1")
    auditor = signed_in("audit@x.com")
    page = auditor.open("/audit", "Audit trail")
    page.wait_for_selector("#chain-status .badge:has-text('chain valid')")
    page.select_option("#audit-filters select[name=type]", "MODEL_REGISTERED")
    page.fill("#audit-filters input[name=resource_id]", "audited:v1")
    page.click("#audit-filters button[type=submit]")
    page.wait_for_function(
        "() => document.querySelectorAll('[data-table=events] tbody tr').length === 1")
    row = page.locator("[data-table=events] tbody tr").inner_text()
    assert "model_registered" in row and "audited:v1" in row
    with page.expect_download() as info:
        page.click("[data-download=jsonl]")
    download = info.value
    assert download.suggested_filename == "audit-export.jsonl"
    seal_line, *events = [json.loads(line) for line in
                          Path(download.path()).read_text().splitlines() if line.strip()]
    assert seal_line["record"] == "seal" and seal_line["count"] == len(events)
    assert any(e["event_type"] == "model_registered" and e["resource_id"] == "audited:v1"
               for e in events)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    with page.expect_download() as seal_info:
        page.click("[data-download=jsonl-seal]")
    seal = json.loads(Path(seal_info.value.path()).read_text())
    assert seal["format"] == "neural-mlops-audit-export" and seal["signature"]


def test_clicking_a_metric_header_orders_the_versions_across_pages(
    stack: Stack, signed_in: Any
) -> None:
    accuracy = {f"r{i:02d}": ((i * 37) % 60) / 100 for i in range(60) if i % 10}
    for i in range(60):
        version = f"r{i:02d}"
        stack.register("ranked", version,
                       **({"accuracy": accuracy[version]} if version in accuracy else {}))
    page = signed_in("viewer@x.com").open("/models/ranked", "Model ranked")
    rows = page.locator("[data-table=versions] tbody tr")
    rows.first.wait_for()
    page.click("[data-table=versions] button[data-order='metrics.accuracy']")
    page.wait_for_selector("[data-table=versions] th[aria-sort=descending]")

    def shown() -> list[str]:
        return [t.strip() for t in rows.locator("td:first-child").all_inner_texts()]

    first = shown()
    page.click("[data-pager=versions] .page-next")
    page.wait_for_selector("[data-pager=versions] .pages:has-text('page 2')")
    second = shown()
    assert len(first) == 50 and len(second) == 10 and not set(first) & set(second)
    ranked = sorted(accuracy, key=lambda v: (-accuracy[v], v))
    assert first == ranked[:50]
    # Versions without the metric last; ties (here: those) in the order's direction.
    assert second == ranked[50:] + sorted({f"r{i:02d}" for i in range(60)} - set(accuracy),
                                          reverse=True)


def test_long_series_are_fetched_in_steps_of_at_most_300_points(
    stack: Stack, signed_in: Any
) -> None:
    page = signed_in("viewer@x.com").page
    minute = 60_000_000
    steps = page.evaluate(
        """async (m) => {
            const s = await import('/static/js/pages/series.js');
            return [30, 6 * 60, 2 * 1440, 60 * 1440, 400 * 1440].map(
                (minutes) => s.stepFor(1e15, 1e15 + minutes * m) / m);
        }""", minute)
    assert steps == [1, 2, 10, 360, 1440 * 2]
    for total, step in zip([30, 360, 2880, 86400, 576000], steps, strict=True):
        assert total / step <= 300
