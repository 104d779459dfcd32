"""MLflow side of benchmarks/registry_vs_mlflow.py.

Runs INSIDE the benchmark's private MLflow virtualenv (never imported by neural-mlops):
``python _mlflow_driver.py WORKLOAD.json TRACKING_URI`` plays the workload against an
MLflow tracking server through ``MlflowClient`` over HTTP and prints one JSON object with
the elapsed seconds and operation count of every phase, plus result counts the caller checks.

The mapping of each phase onto MLflow calls is documented in registry_vs_mlflow.py.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings
from typing import Any

WARMUP = 10  # untimed calls of each kind before the timed phases


def _tag_filter(tag: str) -> str:
    return f"tags.`{tag}` = 'true'"


def main() -> int:  # noqa: C901 - timed phases in a row; the closures count toward it
    workload_path, tracking_uri = sys.argv[1], sys.argv[2]
    with open(workload_path) as fh:
        w: dict[str, Any] = json.load(fh)

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    page = int(w["page_size"])
    out: dict[str, Any] = {"phases": {}, "counts": {}}

    # Untimed setup: one experiment for the runs that carry metrics, and the registered
    # models (neural-mlops creates a model implicitly with its first version; MLflow needs an
    # explicit call, left out of the timing so the comparison favours MLflow).
    exp_id = client.create_experiment(f"bench-{w['run_tag']}")
    for name in w["models"]:
        client.create_registered_model(name)

    def register(r: dict[str, Any]) -> None:
        run = client.create_run(exp_id, tags={"model": r["name"]})
        rid = run.info.run_id
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        client.log_batch(
            rid, metrics=[Metric(k, float(x), now, 0) for k, x in r["metrics"].items()]
        )
        client.create_model_version(
            r["name"], r["artifact_uri"], run_id=rid,
            tags={t: "true" for t in r["tags"]}, await_creation_for=0,
        )

    def register_lite(r: dict[str, Any]) -> None:
        tags = {t: "true" for t in r["tags"]}
        tags.update({f"metric.{k}": repr(float(x)) for k, x in r["metrics"].items()})
        client.create_model_version(
            r["lite_name"], r["artifact_uri"], tags=tags, await_creation_for=0
        )

    # Warm-up (untimed): connection pool, server-side caches and lazy imports.
    warm = "bench_warmup"
    client.create_registered_model(warm)
    for i in range(WARMUP):
        client.create_model_version(
            warm, "s3://bench/warmup", tags={"w": "true"}, await_creation_for=0
        )
        client.get_model_version(warm, str(i + 1))
        client.search_model_versions(_tag_filter("w"), max_results=page)
    client.create_registered_model(w["lite_model"])

    def timed(phase: str, items: list[Any], fn: Any) -> None:
        t0 = time.perf_counter()
        for item in items:
            fn(item)
        out["phases"][phase] = {"n": len(items), "seconds": time.perf_counter() - t0}

    versions: dict[tuple[str, str], str] = {}

    def do_register(r: dict[str, Any]) -> None:
        register(r)

    timed("register", w["registrations"], do_register)
    # MLflow numbers versions 1, 2, ... per model in creation order; map the workload's
    # version labels onto them (registration order is the same as the workload's).
    per_model: dict[str, int] = {}
    for r in w["registrations"]:
        per_model[r["name"]] = per_model.get(r["name"], 0) + 1
        versions[(r["name"], r["version"])] = str(per_model[r["name"]])

    got: list[int] = []

    def do_get(g: list[str]) -> None:
        mv = client.get_model_version(g[0], versions[(g[0], g[1])])
        got.append(len(mv.tags))

    timed("get", w["gets"], do_get)
    out["counts"]["get_tags"] = sum(got)

    tag_hits: list[int] = []

    def do_tag_search(tag: str) -> None:
        tag_hits.append(len(client.search_model_versions(_tag_filter(tag), max_results=page)))

    timed("search_tag", w["tag_searches"], do_tag_search)
    out["counts"]["search_tag"] = tag_hits

    metric_hits: list[int] = []

    def do_metric_search(c: list[Any]) -> None:
        metric, op, value = c
        runs = client.search_runs([exp_id], filter_string=f"metrics.{metric} {op} {value!r}",
                                  max_results=page)
        if not runs:
            metric_hits.append(0)
            return
        ids = ", ".join(f"'{r.info.run_id}'" for r in runs)
        found = client.search_model_versions(f"run_id IN ({ids})", max_results=page)
        metric_hits.append(len(found))

    timed("search_metric", w["metric_searches"], do_metric_search)
    out["counts"]["search_metric"] = metric_hits

    def do_promote(p: list[str]) -> None:
        client.transition_model_version_stage(p[0], versions[(p[0], p[1])], "Production",
                                              archive_existing_versions=True)

    timed("promote", w["promotions"], do_promote)

    def do_alias(p: list[str]) -> None:
        client.set_registered_model_alias(p[0], "champion", versions[(p[0], p[1])])

    timed("alias", w["aliases"], do_alias)
    timed("register_lite", w["lite_registrations"], register_lite)
    promoted = sorted({p[0] for p in w["promotions"]})
    out["counts"]["production"] = sum(
        1 for name in promoted
        for mv in client.search_model_versions(f"name = '{name}'", max_results=10000)
        if mv.current_stage == "Production"
    )
    import mlflow

    out["mlflow_version"] = mlflow.__version__
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
