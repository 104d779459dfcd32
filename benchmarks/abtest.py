"""A/B testing performance: assignment, recording, analysis at scale, gbstats comparison.

One command::

    python benchmarks/abtest.py            # full run (a minute or two)
    python benchmarks/abtest.py --smoke    # a few seconds (the test suite runs this)

Rows (medians over the repeats; each ratio is against a baseline measured in the same run):

================== ============================================== ==================================
row                measured                                       baseline
================== ============================================== ==================================
assign pure        ``Assigner.choose(user)`` (HASH, precomputed)   ``assign(salt, user, weights)``
                                                                  (one-shot function, no caching)
assign grpc        ``ABTestManager("grpc://").get_variant`` calls  assign pure (the ratio is the
                   per second, one client thread                  cost of a network round trip)
record batched     ``record_requests`` batches of 1,000, embedded  ``record_request`` one at a time
analyze 10^3       ``analyze_test`` after 10^3 recorded requests   -
analyze 10^8       ``analyze_test`` after 10^8 recorded requests   analyze 10^3 (must be ~1: the
                   (sums folded into the windows exactly as        analysis reads summed windows)
                   recording would leave them)
analyze units 10^3 ``analyze_test`` with per-unit statistics on    analyze 10^3 (by request)
                   (users sending ~20 requests each)
analyze units 10^8 the same after 10^8 requests (5 x 10^6 users)   analyze 10^8 (by request; must
                                                                  stay within 2x)
unit state         bytes of per-unit state per 10^6 users: the     -
                   store's growth after recording users through
                   ``record_requests`` (SQLite file + WAL)
analysis engine    ``analysis.analyze`` (all tests) on the same    gbstats 0.8: TwoSidedTTest +
                   sufficient statistics                          EffectBayesianABTest on
                                                                  ProportionStatistic (absolute)
================== ============================================== ==================================

The gbstats rows also print the agreement: our Welch test on the proportion's moments
against gbstats' frequentist p-value and CI (same formula, must agree to ~1e-12), and our
exact Beta posterior chance-to-beat-control against gbstats' Gaussian approximation
(close, not equal, by design). gbstats' proportion variance is p(1-p) with denominator n;
the Welch check feeds ours sums of squares with the same variance, so the formulas are
compared, not the conventions. gbstats is a bench-only dependency (``pip install gbstats``;
its metadata pins numpy<2 and pandas<2 although it runs on numpy 2: install it with
``--no-deps`` next to pydantic, nbformat and pandas so it does not downgrade numpy).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics as stats_mod
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

READY = re.compile(r"listening on (\S+:\d+)")


def median_rate(fn: Callable[[], int], repeats: int) -> float:
    """Median operations/second of ``fn`` (which returns how many operations it did)."""
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - t0))
    return stats_mod.median(rates)


def median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return stats_mod.median(times)


def start_server(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "neural.mlops", "serve", "--data-dir", str(data_dir),
         "--listen", "127.0.0.1:0", "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise RuntimeError("control plane exited before it was ready")
        if m := READY.search(line):
            return proc, m.group(1)
    proc.kill()
    raise TimeoutError("control plane did not start")


def bench_assign(n: int, repeats: int) -> tuple[float, float]:
    from neural.mlops.v1.assignment import Assigner, assign

    users = [f"user{i}" for i in range(n)]
    a = Assigner("bench-test", [("treatment", 0.1), ("control", 0.9)])

    def fast() -> int:
        choose = a.choose
        for u in users:
            choose(u)
        return n

    def oneshot() -> int:
        for u in users:
            assign("bench-test", u, [0.1, 0.9])
        return n

    return median_rate(fast, repeats), median_rate(oneshot, repeats)


def bench_grpc_assign(url: str, n: int, repeats: int) -> float:
    from neural.mlops.ab_testing import ABTestManager

    m = ABTestManager(url)
    tid = m.create_test(name="grpc bench", control_variant="m:v1", treatment_variant="m:v2",
                        traffic_split=0.1).test_id
    m.start_test(tid)
    for i in range(20):
        m.get_variant(tid, user_id=f"warm{i}")

    def run() -> int:
        for i in range(n):
            m.get_variant(tid, user_id=f"user{i}")
        return n

    rate = median_rate(run, repeats)
    m.close()
    return rate


def bench_record(folder: Path, batches: int, singles: int, repeats: int) -> tuple[float, float]:
    from neural.mlops.ab_testing import ABTestManager

    m = ABTestManager(str(folder))
    tid = m.create_test(name="record bench", control_variant="r:v1", treatment_variant="r:v2",
                        traffic_split=0.5).test_id
    m.start_test(tid)
    batch = [
        {
            "variant": "treatment" if i % 2 else "control",
            "success": i % 3 == 0,
            "latency": 0.001 * (1 + i % 50),
            "custom_metrics": {"accuracy": 0.9},
        }
        for i in range(1000)
    ]

    def batched() -> int:
        for _ in range(batches):
            m.record_requests(tid, batch)
        return batches * len(batch)

    def one_by_one() -> int:
        for _ in range(singles):
            m.record_request(test_id=tid, variant="control", success=True, latency=0.01,
                             custom_metrics={"accuracy": 0.9})
        return singles

    return median_rate(batched, repeats), median_rate(one_by_one, repeats)


def _synthetic(total: int, seed: int) -> dict[str, Any]:
    """Per-variant sums of ``total`` requests (10% treatment), as recording would leave them."""
    import numpy as np

    from neural.mlops.v1.traffic import LATENCY_BOUNDS, LatencyHistogram, Moments, VariantStats

    rng = np.random.default_rng(seed)
    out = {}
    for name, share, rate in (("treatment", 0.1, 0.102), ("control", 0.9, 0.100)):
        n = int(total * share)
        succ = int(rng.binomial(n, rate))
        lat = rng.lognormal(-4, 0.4, size=min(n, 20000))
        hist = LatencyHistogram()
        for x in lat:
            hist.add(float(x))
        scale = n / len(lat)
        hist = LatencyHistogram({i: int(c * scale) for i, c in hist.counts.items()}, n,
                                hist.sum * scale, hist.sum_squares * scale, hist.min, hist.max)
        assert max(hist.counts) <= len(LATENCY_BOUNDS)
        acc = rng.normal(0.9, 0.05, size=min(n, 20000))
        m = Moments(n, float(acc.mean() * n), float((acc**2).mean() * n))
        out[name] = VariantStats(count=n, successes=succ, latency=hist, custom={"accuracy": m})
    return out


def _synthetic_units(parts: dict[str, Any], seed: int) -> dict[str, Any]:
    """Per-variant unit totals of the same traffic sent by users of ~20 requests each
    (a sample of users summed by the product's aggregate, scaled to the volume)."""
    import numpy as np

    from neural.mlops.server.experiments.unitstats import RatioSums, UnitTotals, aggregate

    rng = np.random.default_rng(seed)
    out = {}
    for name, stats in parts.items():
        users = max(stats.count // 20, 2)
        k = min(users, 100_000)
        n = rng.geometric(1 / 20, size=k)
        s = rng.binomial(n, stats.successes / stats.count)
        lat = n * rng.lognormal(-4, 0.4, size=k)
        t = aggregate(n, s, latency_sum=lat, custom={"accuracy": (n, 0.9 * n)})
        f = users / k
        out[name] = UnitTotals(users, 0, 0.0, 0.0, {
            key: RatioSums(*(x * f for x in m.to_list())) for key, m in t.metrics.items()})
    return out


def bench_analyze(folder: Path, volumes: list[int], repeats: int) -> dict[tuple[int, bool], float]:
    """Median analyze_test time per (volume, per-unit statistics on); the calls are
    interleaved so that load changes on the machine hit all of them alike."""
    import json

    import sqlalchemy as sa

    from neural.mlops._runtime import EmbeddedRuntime
    from neural.mlops.ab_testing import ABTestManager
    from neural.mlops.server import traffic
    from neural.mlops.server.storage.schema import experiment_unit_totals

    m = ABTestManager(str(folder))
    rt = EmbeddedRuntime.for_path(folder)
    tids = {}
    for total, units in [(v, u) for v in volumes for u in (False, True)]:
        tid = m.create_test(
            name=f"analyze {total}",
            # Several tests run at once: each on its own model (a model's traffic is
            # split by one test per layer, so a second test on 'm' would be refused).
            control_variant=f"m{total}{int(units)}:v1",
            treatment_variant=f"m{total}{int(units)}:v2",
            traffic_split=0.1,
        ).test_id
        m.start_test(tid)
        parts = _synthetic(total, seed=total % 1000)
        unit_totals = _synthetic_units(parts, seed=total % 997) if units else {}

        async def fold(services: Any, tid: str = tid, parts: dict[str, Any] = parts,
                       unit_totals: dict[str, Any] = unit_totals) -> None:
            async with services.db.change(audited=False) as ch:
                for variant, stats in parts.items():
                    await traffic.apply(ch.conn, tid, variant, 0, stats)
                for variant, t in unit_totals.items():
                    await ch.conn.execute(sa.insert(experiment_unit_totals).values(
                        test_id=tid, variant=variant, stats=json.dumps(t.to_dict()),
                        updated_us=0))

        rt.call(fold)
        first = m.analyze_test(tid)
        assert first["power"]["observed_total"] == sum(s.count for s in parts.values())
        assert first["analysis_unit"]["unit"] == ("unit" if units else "request")
        tids[total, units] = tid
    times: dict[tuple[int, bool], list[float]] = {key: [] for key in tids}
    for _ in range(repeats):
        for key, tid in tids.items():
            t0 = time.perf_counter()
            m.analyze_test(tid)
            times[key].append(time.perf_counter() - t0)
    return {total: stats_mod.median(ts) for total, ts in times.items()}


def bench_unit_state(folder: Path, users: int) -> float:
    """Bytes of store growth per unit after recording ``users`` users (one request each)."""
    from neural.mlops.ab_testing import ABTestManager

    def size() -> int:
        return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())

    m = ABTestManager(str(folder))
    tid = m.create_test(name="unit state", control_variant="u:v1", treatment_variant="u:v2",
                        traffic_split=0.5).test_id
    m.start_test(tid)
    m.record_requests(tid, [{"user_id": "warm", "success": True, "latency": 0.01}])
    before = size()
    for start in range(0, users, 10_000):
        m.record_requests(tid, [{"user_id": f"user{i}", "success": i % 3 == 0, "latency": 0.01}
                                for i in range(start, min(start + 10_000, users))])
    grown = size() - before
    assert m.analyze_test(tid)["analysis_unit"]["unit"] == "unit"
    m.close()
    return grown / users


def bench_gbstats(repeats: int) -> dict[str, Any] | None:
    try:
        from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
        from gbstats.frequentist.tests import FrequentistConfig, TwoSidedTTest
        from gbstats.models.statistics import ProportionStatistic
    except ImportError:
        return None
    from neural.mlops.server.experiments.analysis import analyze
    from neural.mlops.server.experiments.statistics import welch_ttest
    from neural.mlops.v1.traffic import VariantStats

    cases = [
        (10_000, 1_000, 10_000, 1_080),
        (900_000, 90_000, 100_000, 10_300),
        (5 * 10**7, 5_000_000, 5 * 10**7, 5_004_000),
    ]
    max_p = max_ci = max_bayes = 0.0
    ours_t = theirs_t = 0.0
    for n_c, x_c, n_t, x_t in cases:
        a = ProportionStatistic(n=n_c, sum=x_c)
        b = ProportionStatistic(n=n_t, sum=x_t)
        freq = TwoSidedTTest(a, b, FrequentistConfig(difference_type="absolute")).compute_result()
        bay = EffectBayesianABTest(
            a, b, EffectBayesianConfig(difference_type="absolute")
        ).compute_result()

        # gbstats' proportion variance is p(1 - p) (denominator n); our Welch uses the
        # sample variance (n - 1). Fed sums of squares that give the same variance, the two
        # Welch tests must agree to rounding; the report's own test (pooled z) differs by O(1/n).
        def sq(n: int, x: int) -> float:
            return x * x / n + (n - 1) / n * (x - x * x / n)

        w = welch_ttest(n_c, x_c, sq(n_c, x_c), n_t, x_t, sq(n_t, x_t))
        max_p = max(max_p, abs(float(w.p_value) - freq.p_value) / freq.p_value)
        max_ci = max(max_ci, abs(float(w.ci_low) - freq.ci[0]), abs(float(w.ci_high) - freq.ci[1]))
        totals = {"control": VariantStats(count=n_c, successes=x_c),
                  "treatment": VariantStats(count=n_t, successes=x_t)}
        rep = analyze([("treatment", 0.5), ("control", 0.5)], totals, control="control")
        max_bayes = max(
            max_bayes, abs(rep["bayesian"]["chance_to_beat_control"] - bay.chance_to_win)
        )

        def ours(totals: dict[str, Any] = totals) -> None:
            analyze([("treatment", 0.5), ("control", 0.5)], totals, control="control")

        def theirs(a: Any = a, b: Any = b) -> None:
            TwoSidedTTest(a, b, FrequentistConfig(difference_type="absolute")).compute_result()
            EffectBayesianABTest(
                a, b, EffectBayesianConfig(difference_type="absolute")
            ).compute_result()

        ours_t += median_seconds(ours, repeats)
        theirs_t += median_seconds(theirs, repeats)
    return {"ours": ours_t / len(cases), "gbstats": theirs_t / len(cases),
            "max_p": max_p, "max_ci": max_ci, "max_bayes": max_bayes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    args = parser.parse_args(argv)
    smoke = args.smoke
    n_assign = 20_000 if smoke else 300_000
    n_grpc = 200 if smoke else 3_000
    repeats = 3 if smoke else 5
    os.environ.setdefault("NEURAL_MLOPS_LOG_LEVEL", "warning")

    rows: list[tuple[str, str, str, str]] = []
    fast, oneshot = bench_assign(n_assign, repeats)
    rows.append(
        ("assign pure", f"{fast:,.0f} assignments/s", f"{oneshot:,.0f}/s", f"{fast / oneshot:.2f}x")
    )

    with tempfile.TemporaryDirectory() as tmp:
        proc, address = start_server(Path(tmp) / "server")
        try:
            grpc_rate = bench_grpc_assign(f"grpc://{address}", n_grpc, repeats)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        rows.append(("assign grpc", f"{grpc_rate:,.0f} calls/s", f"{fast:,.0f}/s (pure)",
                     f"{grpc_rate / fast:.4f}x"))

        batched, singles = bench_record(
            Path(tmp) / "rec", 2 if smoke else 20, 20 if smoke else 200, repeats
        )
        rows.append(
            (
                "record batched",
                f"{batched:,.0f} requests/s",
                f"{singles:,.0f}/s (one per call)",
                f"{batched / singles:.1f}x",
            )
        )

        both = bench_analyze(Path(tmp) / "ana", [10**3, 10**8], 20 if smoke else 200)
        times = {total: t for (total, units), t in both.items() if not units}
        with_units = {total: t for (total, units), t in both.items() if units}
        rows.append(("analyze 10^3", f"{times[10**3] * 1e3:.2f} ms", "-", "-"))
        rows.append(
            (
                "analyze 10^8",
                f"{times[10**8] * 1e3:.2f} ms",
                f"{times[10**3] * 1e3:.2f} ms (10^3)",
                f"{times[10**8] / times[10**3]:.2f}x",
            )
        )
        for total, label in ((10**3, "10^3"), (10**8, "10^8")):
            rows.append((f"analyze units {label}", f"{with_units[total] * 1e3:.2f} ms",
                         f"{times[total] * 1e3:.2f} ms (by request)",
                         f"{with_units[total] / times[total]:.2f}x"))
        per_unit = bench_unit_state(Path(tmp) / "units", 5_000 if smoke else 100_000)
        rows.append(("unit state", f"{per_unit * 1e6 / 2**20:,.0f} MiB per 10^6 users",
                     f"{per_unit:,.0f} bytes per unit", "-"))

    g = bench_gbstats(20 if smoke else 200)
    if g is None:
        rows.append(("analysis engine", "gbstats not installed", "-", "-"))
    else:
        rows.append(("analysis engine", f"{g['ours'] * 1e3:.3f} ms (all tests)",
                     f"{g['gbstats'] * 1e3:.3f} ms gbstats (t-test + Bayes)",
                     f"{g['ours'] / g['gbstats']:.2f}x"))

    widths = [
        max(len(r[i]) for r in [("row", "measured", "baseline", "ratio"), *rows]) for i in range(4)
    ]
    header = ("row", "measured (median)", "baseline", "ratio")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    if g is not None:
        print()
        print(f"agreement with gbstats (3 cases, 10^4..10^8 per arm, same variance convention): "
              f"Welch p-value max relative diff = {g['max_p']:.2e}, CI bounds max |diff| = "
              f"{g['max_ci']:.2e}; chance to beat control (our exact Beta posterior vs gbstats' "
              f"Gaussian approximation) max |diff| = {g['max_bayes']:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
