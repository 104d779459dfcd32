"""``neural-mlops ab ...``: A/B tests from a terminal.

neural-mlops ab create --name "V2 test" --control fraud:v1 --treatment fraud:v2 --split 0.1
neural-mlops ab start TEST_ID
neural-mlops ab assign TEST_ID user123
neural-mlops ab record TEST_ID --variant treatment --success --latency 0.042 --metric accuracy=0.96
neural-mlops ab analyze TEST_ID
neural-mlops ab record TEST_ID --file requests.jsonl      # one JSON object per line
neural-mlops ab force TEST_ID qa-user treatment            # QA override
neural-mlops ab conclude TEST_ID --winner treatment
neural-mlops ab covariates TEST_ID pre_period.csv         # unit id, covariate (CUPED)
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from neural.mlops.cli._ab_bandit import add_bandit_arguments, bandit_options, strategy
from neural.mlops.cli._ab_files import read_covariates, read_jsonl
from neural.mlops.cli._ab_render import analysis_text
from neural.mlops.cli._output import (
    add_common,
    emit,
    jsonable,
    print_json,
    print_record,
    print_table,
)
from neural.mlops.server.errors import InvalidArgument


def _manager(args: argparse.Namespace) -> Any:
    from neural.mlops.ab_testing import ABTestManager

    return ABTestManager(args.target)


def _metrics(values: list[str] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in values or ():
        key, sep, raw = item.partition("=")
        if not sep:
            raise InvalidArgument(
                f"--metric expects NAME=VALUE, got {item!r}", field="custom_metrics"
            )
        try:
            out[key] = float(raw)
        except ValueError:
            raise InvalidArgument(f"--metric value for {key!r} is not a number: {raw!r}",
                                  field="custom_metrics") from None
    return out


def _variants(values: list[str] | None) -> list[tuple[str, str, float]] | None:
    if not values:
        return None
    out = []
    for item in values:
        parts = item.split("=", 1)
        ref, _, weight = parts[1].rpartition("@") if len(parts) == 2 else ("", "", "")
        try:
            out.append((parts[0], ref, float(weight)))
        except ValueError:
            raise InvalidArgument(f"--variant expects NAME=MODEL:VERSION@WEIGHT, got {item!r}",
                                  field="variants") from None
    return out


def _guardrails(values: list[str] | None) -> list[dict[str, Any]] | None:
    """``METRIC[:DIRECTION[:TOLERANCE]]`` items (the API validates them)."""
    if not values:
        return None
    out: list[dict[str, Any]] = []
    for item in values:
        metric, _, rest = item.partition(":")
        direction, _, tolerance = rest.partition(":")
        try:
            out.append({"metric": metric, "direction": direction or None,
                        "tolerance": float(tolerance or 0.0)})
        except ValueError:
            raise InvalidArgument(f"--guardrail tolerance is not a number: {item!r}",
                                  field="guardrails") from None
    return out


def _data(test: Any) -> dict[str, Any]:
    """The test as JSON, with the derived seed fields (traffic_split, control/treatment refs)."""
    out: dict[str, Any] = jsonable(test)
    out.update(traffic_split=test.traffic_split, control_variant=test.control_variant,
               treatment_variant=test.treatment_variant)
    return out


def _range(text: str) -> tuple[float, float]:
    start, sep, end = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return float(start), float(end)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:END, e.g. 0.2:0.5, got {text!r}") \
            from None


def _show(test: Any) -> None:
    print_record([
        ("test_id", test.test_id), ("name", test.name), ("status", test.status),
        ("strategy", test.strategy), ("model", test.model_name),
        ("variants", [f"{v.name}={v.model_ref}@{v.weight:g}" for v in test.variants]),
        ("control", test.control), ("traffic_split", test.traffic_split),
        ("decision_rule", test.decision_rule), ("confidence_level", test.confidence_level),
        ("created_by", test.created_by), ("created_at", test.created_at),
        ("started_at", test.started_at), ("ended_at", test.ended_at),
        ("running_seconds", round(test.running_seconds, 1)),
        ("winner", test.winner or None), ("conclusion", test.conclusion or None),
        ("forced_variants", test.forced_variants or None),
        ("layer", test.layer or None),
        ("range", "[{:g}, {:g})".format(*test.layer_range) if test.layer_range else
         f"share {test.layer_share:g}, allocated at start"),
        ("targeting", " AND ".join(test.targeting) or None),
    ])


def cmd_create(args: argparse.Namespace) -> None:
    test = _manager(args).create_test(
        name=args.name, description=args.description, control_variant=args.control,
        treatment_variant=args.treatment, traffic_split=args.split, strategy=strategy(args),
        created_by=args.created_by, variants=_variants(args.variant),
        control="control", confidence_level=args.confidence_level,
        minimum_detectable_effect=args.mde, power=args.power, decision_rule=args.decision_rule,
        model_name=args.model_name or "", sequential_tau=args.sequential_tau,
        sequential_tuning=args.sequential_tuning, srm_threshold=args.srm_threshold,
        multiple_testing=args.multiple_testing, prior_mean=args.prior_mean,
        prior_sd=args.prior_sd, guardrails=_guardrails(args.guardrail),
        bandit=bandit_options(args), layer=args.layer or "", layer_share=args.layer_share,
        layer_range=args.range, targeting=args.targeting,
    )
    emit(args, _data(test), lambda: _show(test))


def cmd_list(args: argparse.Namespace) -> None:
    tests = _manager(args).list_tests(args.status)
    emit(
        args,
        {"tests": [_data(t) for t in tests]},
        lambda: print_table(
            ["test_id", "name", "status", "strategy", "split", "winner"],
            [
                [t.test_id, t.name, t.status, t.strategy, t.traffic_split, t.winner or None]
                for t in tests
            ],
        ),
    )


def cmd_show(args: argparse.Namespace) -> None:
    test = _manager(args).get_test(args.test_id)
    emit(args, _data(test), lambda: _show(test))


def _lifecycle(action: str) -> Any:
    def run(args: argparse.Namespace) -> None:
        m = _manager(args)
        if action in ("pause", "stop"):
            test = getattr(m, f"{action}_test")(args.test_id, args.reason, actor=args.actor)
        else:
            test = getattr(m, f"{action}_test")(args.test_id, actor=args.actor)
        emit(args, _data(test), lambda: print(f"{test.test_id}: {test.status}"))

    return run


def cmd_conclude(args: argparse.Namespace) -> None:
    test = _manager(args).conclude_test(args.test_id, args.winner, args.reason, actor=args.actor)
    emit(args, _data(test), lambda: print(f"{test.test_id}: concluded, winner {test.winner}"))


def cmd_split(args: argparse.Namespace) -> None:
    test = _manager(args).update_split(args.test_id, args.split, explicit=args.explicit,
                                       reason=args.reason, actor=args.actor)
    emit(args, _data(test), lambda: print(f"{test.test_id}: traffic_split {test.traffic_split:g}"))


def cmd_assign(args: argparse.Namespace) -> None:
    variant = _manager(args).get_variant(args.test_id, user_id=args.user_id)
    emit(args, {"test_id": args.test_id, "user_id": args.user_id, "variant": variant},
         lambda: print(variant))


def cmd_force(args: argparse.Namespace) -> None:
    test = _manager(args).force_variant(
        args.test_id, args.user_id, None if args.clear else args.variant
    )
    emit(
        args,
        _data(test),
        lambda: print(f"{args.user_id}: {test.forced_variants.get(args.user_id, 'not forced')}"),
    )


def cmd_record(args: argparse.Namespace) -> None:
    success = None if args.success is None else args.success == "yes"
    m = _manager(args)
    if args.file:
        records = read_jsonl(args.file)
        total = 0
        for i in range(0, len(records), 10_000):
            total += m.record_requests(args.test_id, records[i:i + 10_000])
        emit(args, {"recorded": total}, lambda: print(f"recorded {total} requests"))
        return
    if args.outcome:
        if args.user_id is None:
            raise InvalidArgument("--outcome needs --user-id", field="user_id")
        variant = m.record_outcome(args.test_id, args.user_id, success=bool(success is not False),
                                   custom_metrics=_metrics(args.metric), variant=args.variant)
        emit(args, {"variant": variant}, lambda: print(f"outcome credited to {variant}"))
        return
    m.record_request(
        test_id=args.test_id,
        variant=args.variant,
        success=success,
        latency=args.latency,
        custom_metrics=_metrics(args.metric),
        user_id=args.user_id,
        error=args.error,
    )
    emit(args, {"recorded": 1}, lambda: print("recorded 1 request"))


COVARIATES_PER_CALL = 100_000  # the API's bound per call


def cmd_covariates(args: argparse.Namespace) -> None:
    values = list(read_covariates(args.file).items())
    m = _manager(args)
    total = 0
    for i in range(0, len(values), COVARIATES_PER_CALL):
        total += m.set_covariates(args.test_id, dict(values[i:i + COVARIATES_PER_CALL]))
    emit(args, {"stored": total}, lambda: print(f"stored {total} covariates"))


def _when(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(
            f"--{field} expects an ISO date/time, got {value!r}", field=field
        ) from None


def cmd_analyze(args: argparse.Namespace) -> None:
    a = _manager(args).analyze_test(
        args.test_id,
        args.confidence_level,
        since=_when(args.since, "since"),
        until=_when(args.until, "until"),
    )
    if args.json:
        print_json(a)
    else:
        analysis_text(a)


_TEST_ID = "the test's id (ab list shows it)"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("ab", help="A/B tests: create, run, assign, record and analyze")
    rs = p.add_subparsers(dest="ab_command", metavar="ACTION", required=True)

    def add(name: str, handler: Any, help: str) -> argparse.ArgumentParser:
        q = rs.add_parser(name, help=help)
        add_common(q)
        q.set_defaults(handler=handler)
        return q

    q = add("create", cmd_create, "create a test (DRAFT)")
    q.add_argument("--name", required=True, help="a name people recognise the test by")
    q.add_argument("--description", default="", help="free text: the hypothesis, the owner")
    q.add_argument("--control", help="control model ref NAME:VERSION")
    q.add_argument("--treatment", help="treatment model ref NAME:VERSION")
    q.add_argument("--split", type=float, help="treatment share (default 0.5)")
    q.add_argument("--variant", action="append",
                   help="NAME=MODEL:VERSION@WEIGHT, repeatable (instead of --control/--treatment; "
                        "one must be named control)")
    q.add_argument("--strategy", default="hash_based",
                   choices=["hash_based", "random", "round_robin", "bandit",
                            "multi_armed_bandit"],
                   help="how units get a variant: hash_based keeps each user on one variant; "
                        "bandit moves traffic to the arm most likely best (Thompson sampling)")
    add_bandit_arguments(q)
    q.add_argument("--created-by", default="")
    q.add_argument("--confidence-level", type=float, default=0.95,
                   help="1 - alpha of the tests and intervals")
    q.add_argument(
        "--mde", type=float, default=0.05, help="minimum detectable relative lift (0.05 = 5%%)"
    )
    q.add_argument("--power", type=float, default=0.8,
                   help="chance to detect an effect of --mde (plans the sample size)")
    q.add_argument("--decision-rule", default="fixed_horizon",
                   choices=["fixed_horizon", "sequential"],
                   help="fixed_horizon: decide at the planned size; sequential: safe to peek")
    q.add_argument("--model-name", help="model the sidecars route on (default: the control's)")
    q.add_argument("--sequential-tuning", type=float, default=5000.0,
                   help="requests (all arms) at which the sequential test is tightest")
    q.add_argument("--sequential-tau", type=float,
                   help="fixed absolute mSPRT mixing scale (default: scaled to the data)")
    q.add_argument("--srm-threshold", type=float, default=0.001,
                   help="sample-ratio mismatch alarm below this p-value")
    q.add_argument("--multiple-testing", default="holm",
                   choices=["holm", "benjamini_hochberg"],
                   help="correction across variants and metrics")
    q.add_argument("--prior-mean", type=float, default=0.0,
                   help="Bayesian prior mean of the relative effect (0.02 = +2%%)")
    q.add_argument("--prior-sd", type=float, default=0.0,
                   help="Bayesian prior sd of the relative effect (0: flat prior)")
    q.add_argument("--guardrail", action="append",
                   help="METRIC[:increase|decrease[:TOLERANCE]], repeatable: stop the test when "
                        "the treatment is significantly worse on it (error_rate, latency_p95, ...)")

    q.add_argument("--layer", help="the layer (default: the model's own); tests of one layer "
                   "never share a unit, tests of different layers overlap independently")
    q.add_argument("--layer-share", type=float,
                   help="share of the layer the test takes, (0, 1] (default 1: all of it); the "
                        "first free range of that width is allocated when it starts")
    q.add_argument("--range", type=_range, metavar="START:END",
                   help="instead of --layer-share: exactly this range of the layer, e.g. 0.2:0.5")
    q.add_argument("--targeting", action="append", metavar="CONDITION",
                   help="targeting condition, repeatable (ANDed): 'x-country in [DE, FR]', "
                        "'x-plan = enterprise', 'x-app-version >= 4.2', 'param.tier exists'")

    q = add("list", cmd_list, "list tests")
    q.add_argument("--status", choices=["draft", "running", "paused", "stopped", "concluded"],
                   help="only tests in this state (default: all)")

    q = add("show", cmd_show, "show one test")
    q.add_argument("test_id", help=_TEST_ID)

    for action, help in (("start", "start a draft test"), ("pause", "pause a running test"),
                         ("resume", "resume a paused test"), ("stop", "stop a test")):
        q = add(action, _lifecycle(action), help)
        q.add_argument("test_id", help=_TEST_ID)
        q.add_argument("--actor")
        if action in ("pause", "stop"):
            q.add_argument("--reason", default="")

    q = add("conclude", cmd_conclude, "conclude with a winner (default: the recommendation)")
    q.add_argument("test_id", help=_TEST_ID)
    q.add_argument("--winner", help="the winning variant (default: the analysis' recommendation)")
    q.add_argument("--reason", default="")
    q.add_argument("--actor")

    q = add("split", cmd_split, "change the treatment share (only grows unless --explicit)")
    q.add_argument("test_id", help=_TEST_ID)
    q.add_argument("split", type=float, help="the treatment's new share, 0..1")
    q.add_argument("--explicit", action="store_true",
                   help="allow shrinking a running test's share (moves users between variants)")
    q.add_argument("--reason", default="")
    q.add_argument("--actor")

    q = add("assign", cmd_assign, "print the variant of a unit")
    q.add_argument("test_id", help=_TEST_ID)
    q.add_argument("user_id", nargs="?",
                   help="the unit (user, session...); without it a variant is drawn at random")

    q = add("force", cmd_force, "QA: pin a unit to a variant (or --clear the override)")
    q.add_argument("test_id", help=_TEST_ID)
    q.add_argument("user_id", help="the unit to pin")
    q.add_argument("variant", nargs="?", help="the variant it gets (not with --clear)")
    q.add_argument("--clear", action="store_true", help="remove the unit's override")

    q = add("record", cmd_record, "record a request (or, with --outcome, a late outcome)")
    q.add_argument("test_id", help=_TEST_ID)
    q.add_argument("--file", help="JSON lines, one request each (record_request's keyword names)")
    q.add_argument("--variant", help="the variant that served it (default: from --user-id)")
    q.add_argument("--user-id", help="the unit it was served to")
    q.add_argument("--success", nargs="?", const="yes", choices=["yes", "no"],
                   help="the outcome (bare --success: yes; default: not known)")
    q.add_argument("--latency", type=float, help="seconds")
    q.add_argument("--metric", action="append", help="NAME=VALUE, repeatable")
    q.add_argument("--error", action="store_true", help="the request failed")
    q.add_argument("--outcome", action="store_true", help="a late outcome credited by --user-id")

    q = add("analyze", cmd_analyze, "analyze a test")
    q.add_argument("test_id", help=_TEST_ID)
    q.add_argument("--confidence-level", type=float,
                   help="override the test's own for this analysis")
    q.add_argument(
        "--since", help="only traffic from this ISO time on (e.g. 2026-01-01T00:00+00:00)"
    )
    q.add_argument("--until", help="only traffic before this ISO time")

    q = add("covariates", cmd_covariates,
            "set each unit's pre-experiment covariate for CUPED from a CSV file")
    q.add_argument("test_id", help=_TEST_ID)
    q.add_argument("file", help="CSV rows 'unit id,value' (a header row is skipped); a unit's "
                                "value replaces an earlier one")
