"""The windowed traffic store: merges by addition, totals over ranges, inside transactions."""

from __future__ import annotations

import random

from support.databases import open_database

from neural.mlops.server import traffic
from neural.mlops.v1.traffic import ShadowStats, VariantStats


def _stats(rng: random.Random, n: int) -> VariantStats:
    s = VariantStats()
    for _ in range(n):
        s.observe(
            success=rng.random() < 0.3,
            latency=rng.lognormvariate(-3, 0.4),
            error=rng.random() < 0.01,
            custom={"revenue": rng.gauss(10, 2)},
            status_code=rng.choice(["OK", "UNAVAILABLE"]),
        )
    return s


async def test_windows_merge_and_totals_equal_sum_of_parts(tmp_path):
    db = await open_database(tmp_path)
    rng = random.Random(7)
    expected: dict[str, VariantStats] = {"control": VariantStats(), "treatment": VariantStats()}
    early = VariantStats()
    try:
        for i in range(12):
            variant = "control" if i % 2 else "treatment"
            part = _stats(rng, 20)
            start = traffic.window_start(1_000_000_000 + i * 30_000_000)
            async with db.change(audited=False) as ch:
                await traffic.apply(ch.conn, "exp1", variant, start, part)
            expected[variant] = expected[variant] + part
            if start < 1_000_000_000 + 120_000_000 and variant == "control":
                early = early + part
        async with db.read() as conn:
            got = await traffic.totals(conn, "exp1")
            ranged = await traffic.totals(
                conn, "exp1", since_us=0, until_us=1_000_000_000 + 120_000_000
            )
            series = await traffic.windows(conn, "exp1")
            other = await traffic.totals(conn, "exp2")
        assert other == {}
        for v in ("control", "treatment"):
            assert got[v].count == expected[v].count == 120
            assert got[v].successes == expected[v].successes
            assert got[v].latency.counts == expected[v].latency.counts
            assert abs(got[v].custom["revenue"].sum - expected[v].custom["revenue"].sum) < 1e-9
            assert got[v].status_codes == expected[v].status_codes
        assert ranged["control"].count == early.count
        # six one-minute windows per variant (two 30 s parts each)
        assert len(series) == 12 and sum(s.count for _, _, s in series) == 240
    finally:
        await db.close()


async def test_failed_transaction_leaves_windows_untouched(tmp_path):
    db = await open_database(tmp_path)
    try:
        one = VariantStats()
        one.observe(success=True, latency=0.01)
        try:
            async with db.change(audited=False) as ch:
                await traffic.apply(ch.conn, "exp", "control", 0, one)
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        async with db.read() as conn:
            assert await traffic.totals(conn, "exp") == {}
    finally:
        await db.close()


async def test_shadow_windows_keep_bounded_samples(tmp_path):
    db = await open_database(tmp_path)
    try:
        for w in range(3):
            part = ShadowStats()
            for i in range(15):
                part.observe(
                    agreed=i % 3 != 0,
                    primary_latency=0.01,
                    shadow_latency=0.02,
                    sample={"request_id": f"{w}-{i}", "primary": 1, "shadow": 2},
                )
            async with db.change(audited=False) as ch:
                await traffic.apply_shadow(ch.conn, "sh1", w * 60_000_000, part)
        async with db.read() as conn:
            total = await traffic.shadow_totals(conn, "sh1")
            first = await traffic.shadow_totals(conn, "sh1", since_us=0, until_us=60_000_000)
        assert total.compared == 45 and total.agreements == 30
        assert len(total.disagreements) == 15
        assert total.disagreements[-1]["request_id"] == "2-12"
        assert first.compared == 15
        assert total.shadow_latency.count == 45
    finally:
        await db.close()
