"""Multi-armed bandit costs: the sidecar's sticky lookup per request, and one reweighting.

One command::

    python benchmarks/bandit.py            # full run (about half a minute)
    python benchmarks/bandit.py --smoke    # a few seconds (the test suite runs this)

Rows (medians over the repeats; each ratio against a baseline measured in the same run):

=================== ============================================= ==========================
row                 measured                                      baseline
=================== ============================================= ==========================
resolve bandit new  ``Router.resolve`` of a BANDIT route, units   resolve hash (HASH route,
                    seen for the first time (hash + LRU insert)   same units)
resolve bandit seen the same units again (LRU hit, no hash)       resolve hash
resolve bandit full units beyond ``--sticky-units`` (hash, insert resolve hash
                    and one eviction each)
reweight 2 arms     ``bandit.reweight``: posteriors, 40,000 joint  -
                    draws, P(best), floor
reweight 16 arms    the same with 16 arms                         reweight 2 arms
=================== ============================================= ==========================

Per-request rows are nanoseconds per call on one core, in process (no network): what the
bandit adds to the sidecar's routing decision. The spread is max/min over the repeats.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from neural.mlops.server.experiments.bandit import ArmData, BanditConfig, reweight
from neural.mlops.sidecar.metrics import Aggregator
from neural.mlops.sidecar.router import Router
from neural.mlops.sidecar.sticky import StickyArms
from neural.mlops.v1 import routing_pb2 as pb


def _table(strategy: int) -> pb.RoutingTable:
    route = pb.ModelRoute(
        model_name="m", route_id="test_bench", kind=pb.ROUTE_KIND_EXPERIMENT, strategy=strategy,
        variants=[pb.RouteVariant(name="treatment", weight=0.7, model_name="m"),
                  pb.RouteVariant(name="control", weight=0.3, model_name="m")])
    return pb.RoutingTable(version=1, routes=[route])


def _router(strategy: int, size: int) -> Router:
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    router = Router(Aggregator(), sticky=StickyArms(size))
    router.apply(_table(strategy))
    return router


def _per_call(router: Router, units: list[str]) -> float:
    resolve = router.resolve
    start = time.perf_counter()
    for u in units:
        resolve("m", u)
    return (time.perf_counter() - start) / len(units) * 1e9


def _median(run: Callable[[], float], repeats: int) -> tuple[float, float]:
    values = [run() for _ in range(repeats)]
    return statistics.median(values), max(values) / min(values)


def _rows(n: int, repeats: int) -> list[tuple[str, float, float, str]]:
    units = [f"user-{i}" for i in range(n)]
    hash_ns, hash_spread = _median(
        lambda: _per_call(_router(pb.ASSIGNMENT_STRATEGY_HASH, n), units), repeats)

    def new() -> float:
        return _per_call(_router(pb.ASSIGNMENT_STRATEGY_BANDIT, n), units)

    def seen() -> float:
        router = _router(pb.ASSIGNMENT_STRATEGY_BANDIT, n)
        _per_call(router, units)
        return _per_call(router, units)

    def full() -> float:
        router = _router(pb.ASSIGNMENT_STRATEGY_BANDIT, n // 10)
        _per_call(router, units[: n // 10])
        return _per_call(router, units)

    rows = [("resolve hash", hash_ns, hash_spread, "ns/call")]
    for name, run in (("resolve bandit new", new), ("resolve bandit seen", seen),
                      ("resolve bandit full", full)):
        ns, spread = _median(run, repeats)
        rows.append((name, ns, spread, f"ns/call, {ns / hash_ns:.2f}x hash"))
    return rows


def _reweight_ms(arms: int) -> float:
    data = {f"arm{i}": ArmData(10_000, 1_000.0 + i) for i in range(arms)}
    config = BanditConfig(min_share=0.01)
    start = time.perf_counter()
    reweight(config, data, 1)
    return (time.perf_counter() - start) * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    args = parser.parse_args(argv)
    n = 20_000 if args.smoke else 200_000
    repeats = 3 if args.smoke else 5
    rows = _rows(n, repeats)
    two, two_spread = _median(lambda: _reweight_ms(2), repeats)
    many, many_spread = _median(lambda: _reweight_ms(16), repeats)
    rows += [("reweight 2 arms", two, two_spread, "ms"),
             ("reweight 16 arms", many, many_spread, f"ms, {many / two:.1f}x 2 arms")]
    print(f"bandit benchmark: {n} units, {repeats} repeats (medians; spread = max/min)")
    for name, value, spread, unit in rows:
        print(f"{name:<20} {value:>10.1f} {unit:<28} spread {spread:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
