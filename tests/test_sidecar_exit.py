"""The sidecar's exit status says whether its last metric windows reached the control plane.

Real processes: a control plane, a demo model and a sidecar with traffic; SIGTERM drains
the backlog within the grace period. Everything acknowledged: 0 (tested in
test_sidecar_control_plane.py). The control plane gone, so batches are left: the
sidecar logs how many and exits 8 (``EXIT_UNFLUSHED``, the CLI's "control plane
unavailable"), so a supervisor or a script sees that counts were lost."""

from __future__ import annotations

from pathlib import Path

from peers.procs import start_all, start_control_plane, start_demo, start_sidecar, write_routes
from test_sidecar_control_plane import Traffic, _wait
from test_sidecar_routing import EXPERIMENT

from neural.mlops.sidecar.app import EXIT_UNFLUSHED


def test_a_sidecar_whose_last_batches_are_not_acknowledged_exits_non_zero(
    tmp_path: Path,
) -> None:
    routes = tmp_path / "routes.json"
    write_routes(routes, [EXPERIMENT])
    control, model = start_all(lambda: start_control_plane(tmp_path / "store", routes),
                               lambda: start_demo("m"))
    sidecar = start_sidecar(model.address, control.address, "--flush-interval", "0.2",
                            "--grace-seconds", "1")
    try:
        _wait(lambda: sidecar.health()["routing"] == "live", 20, "no routing table")
        with Traffic(sidecar.address) as traffic:
            _wait(lambda: sidecar.health()["batches_acked"] > 0, 30, "no metrics acknowledged")
            control.kill9()
            # fail-static: the calls go on and their windows wait for a control plane
            _wait(lambda: sidecar.health()["batches_pending"] > 0, 30, "no batch left pending")
        assert traffic.failures == []
        assert sidecar.stop() == EXIT_UNFLUSHED == 8
    finally:
        for p in (sidecar, model, control):
            p.stop()
