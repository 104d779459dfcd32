"""The text rendering of ``neural-mlops ab analyze`` (``--json`` prints the report itself)."""

from __future__ import annotations

from typing import Any

from neural.mlops.cli._output import print_record, print_table


def analysis_text(a: dict[str, Any]) -> None:
    names = list(a["variants"])
    print_table(
        ["variant", "n", "success_rate", "latency_p50", "latency_p95", "latency_p99"],
        [
            [
                n,
                a["variants"][n]["n"],
                a["variants"][n]["success_rate"],
                a["variants"][n]["latency"]["p50"],
                a["variants"][n]["latency"]["p95"],
                a["variants"][n]["latency"]["p99"],
            ]
            for n in names
        ],
    )
    imp = a["improvement"]
    print()
    print_record(
        [
            ("compared", f"{a['compared_variant']} vs {a['control_variant']}"),
            ("p_value", a["p_value"]),
            ("significant", a["statistically_significant"]),
            ("relative_improvement_%", imp["relative_improvement"]),
            ("difference_ci", imp["confidence_interval"]),
            ("sequential_p", (a["sequential"] or {}).get("p_value")),
            ("chance_to_beat_control", (a["bayesian"] or {}).get("chance_to_beat_control")),
            ("srm_p", a["srm"]["p_value"]),
            ("srm_detected", a["srm"]["detected"]),
            ("required_total", a["power"]["required_total"]),
            ("observed_total", a["power"]["observed_total"]),
            ("recommendation", a["recommendation"]["action"]),
            ("reason", a["recommendation"]["reason"]),
        ]
    )
    if a["metrics"]:
        print()
        print_table(["metric", "difference", "lift_%", "p_value", "p_holm", "significant"],
                    [[k, m["difference"], m["lift"], m["p_value"], m["p_value_adjusted"],
                      m["statistically_significant"]] for k, m in a["metrics"].items()])
    for w in a["warnings"]:
        print(f"warning: {w}")
