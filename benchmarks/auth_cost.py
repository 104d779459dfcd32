"""What authentication costs the control plane: server CPU per GetModelVersion call.

    python benchmarks/auth_cost.py            # ~2 minutes
    python benchmarks/auth_cost.py --smoke    # seconds (tests/test_auth_bench.py runs this)

Two control planes with the same transport (TLS, a client certificate on every
connection) and the same store: one with ``--auth none``, one with
``--auth token,oidc,mtls``. Rows: no auth; an API token (viewer); an OIDC JWT (RS256,
the same token on every call, as a client holding one sends it); a fresh JWT per call
(every call pays the signature check); mTLS (the certificate is the principal). A third,
plaintext ``--auth none`` plane is the reference for what TLS itself costs.

Closed-loop load from this process at concurrency 8; the server process's CPU time
(psutil, user + system) per call. Rounds are interleaved (the row order rotates every
round) so drift on a shared machine hits every row alike; printed: the median CPU per
call and, per row, the median and range of the per-round ratios to "none" (paired by
round). The target is authenticated calls within 1.15x of unauthenticated: reported,
not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.processes import ServerProcess, start_server  # noqa: E402
from support.secure_server import SecurePlane, bearer  # noqa: E402

from neural.mlops.v1 import (  # noqa: E402
    auth_pb2,
    auth_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
)

CONCURRENCY = 8
WARM_UP = 50
TARGET = 1.15
JWT_USER = "bench@example.com"
MTLS_USER = "spiffe://neural-mlops/user/admin"


@dataclass
class Row:
    name: str
    server: ServerProcess
    credentials: grpc.ChannelCredentials | None  # None = plaintext
    metadata: Callable[[int], tuple[tuple[str, str], ...] | None]
    cpu_per_call: list[float] = field(default_factory=list)


def register(address: str, credentials: grpc.ChannelCredentials | None, token: str = "") -> None:
    """One model version to read, registered by reference (no artifact upload)."""
    channel = (grpc.secure_channel(address, credentials) if credentials
               else grpc.insecure_channel(address))
    with channel:
        part = registry_pb2.RegisterModelRequest(metadata=registry_pb2.RegisterModelMetadata(
            name="bench", version="1", framework="sklearn", artifact_uri="s3://bench/model.pkl",
            created_by="" if token else "bench"))  # authenticated: the principal fills it
        registry_pb2_grpc.RegistryServiceStub(channel).RegisterModel(
            iter([part]), metadata=bearer(token) if token else None, timeout=30)


def prepare(plane: SecurePlane) -> str:
    """Grants for the JWT and certificate principals; returns a viewer API token."""
    with plane.channel() as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        admin = bearer(plane.admin_token)
        for subject in (JWT_USER, MTLS_USER):
            auth.CreateGrant(auth_pb2.CreateGrantRequest(subject=subject, role="viewer"),
                             metadata=admin, timeout=30)
        issued = auth.CreateToken(auth_pb2.CreateTokenRequest(name="bench", roles=["viewer"]),
                                  metadata=admin, timeout=30)
    return issued.secret


async def _load(row: Row, calls: range) -> None:
    request = registry_pb2.GetModelVersionRequest(name="bench", version="1")
    address = row.server.address
    channel = (grpc.aio.secure_channel(address, row.credentials) if row.credentials
               else grpc.aio.insecure_channel(address))
    async with channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        counter = iter(calls)

        async def worker() -> None:
            for i in counter:
                await stub.GetModelVersion(request, metadata=row.metadata(i), timeout=30)

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


def measure(row: Row, calls: int) -> None:
    asyncio.run(_load(row, range(calls, calls + WARM_UP)))  # connection and caches warm
    proc = psutil.Process(row.server.proc.pid)
    before = proc.cpu_times()
    asyncio.run(_load(row, range(calls)))
    after = proc.cpu_times()
    cpu = (after.user + after.system) - (before.user + before.system)
    row.cpu_per_call.append(cpu / calls * 1e6)


def report(rows: list[Row], rounds: int, calls: int) -> None:
    base = rows[0]
    print(f"server CPU per GetModelVersion call: {rounds} interleaved rounds x {calls} calls, "
          f"concurrency {CONCURRENCY}")
    header = f"{'row':34} {'µs/call':>8} {'ratio':>6} {'ratio range':>13}"
    print(header)
    print("-" * len(header))
    for row in rows:
        ratios = [r / b for r, b in zip(row.cpu_per_call, base.cpu_per_call, strict=True)]
        print(f"{row.name:34} {statistics.median(row.cpu_per_call):8.0f} "
              f"{statistics.median(ratios):6.2f} {min(ratios):6.2f}-{max(ratios):<6.2f}")
    verdicts = []
    for row in rows[1:]:
        if row.name.startswith("none"):
            continue
        ratio = statistics.median(
            r / b for r, b in zip(row.cpu_per_call, base.cpu_per_call, strict=True))
        verdicts.append(f"{row.name} {ratio:.2f}x "
                        f"{'within' if ratio <= TARGET else 'ABOVE'}")
    print(f"target <= {TARGET}x of no auth: " + "; ".join(verdicts))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny run (CI)")
    ap.add_argument("--calls", type=int, default=2000, help="calls per row and round")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    args = ap.parse_args(argv)
    calls, rounds = (100, 2) if args.smoke else (args.calls, args.rounds)

    with tempfile.TemporaryDirectory(prefix="auth-cost-") as tmp_name:
        tmp = Path(tmp_name)
        plane = SecurePlane.start(tmp / "auth")
        certs = plane.certs
        tls = ("--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key"),
               "--tls-client-ca", str(certs / "ca.pem"))
        open_plane = start_server(tmp / "none", *tls)
        plain = start_server(tmp / "plain")
        try:
            creds = plane.credentials()
            register(open_plane.address, creds)
            register(plain.address, None)
            register(plane.server.address, creds, plane.admin_token)
            api_token = prepare(plane)
            jwt = plane.jwt(JWT_USER)
            fresh: list[str] = []
            rows = [
                Row("none (TLS)", open_plane, creds, lambda i: None),
                Row("API token", plane.server, creds, lambda i: bearer(api_token)),
                Row("OIDC JWT (same token)", plane.server, creds, lambda i: bearer(jwt)),
                Row("OIDC JWT (new token per call)", plane.server, creds,
                    lambda i: bearer(fresh[i])),
                Row("mTLS", plane.server, creds, lambda i: None),
                Row("none (plaintext, reference)", plain, None, lambda i: None),
            ]
            started = time.monotonic()
            for r in range(rounds):
                shift = r % len(rows)
                for row in rows[shift:] + rows[:shift]:
                    if row.name.startswith("OIDC JWT (new"):
                        # A new token per call: re-sign so no call hits the verified cache.
                        fresh[:] = [plane.jwt(JWT_USER, lifetime=3600 + r * 100_000 + i)
                                    for i in range(calls + WARM_UP)]
                    measure(row, calls)
            report(rows, rounds, calls)
            print(f"({time.monotonic() - started:.0f}s)")
        finally:
            plane.stop()
            open_plane.stop()
            plain.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
