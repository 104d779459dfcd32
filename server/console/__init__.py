"""The web console (issue #17): served by the control plane itself on ``--http-listen``.

* :mod:`.web`: the aiohttp application, security headers, Host/Origin/CSRF/session checks;
* :mod:`.gateway`: ``/api/v1/<service>/<Method>``, protobuf JSON over every RPC;
* :mod:`.login`, :mod:`.sessions`, :mod:`.oidc_login`, :mod:`.oidc_pending`: who is using
  it (sessions and OIDC logins in progress live in the database, shared by replicas);
* :mod:`.events`: ``/api/events``, live changes as server-sent events;
* :mod:`.downloads`: the audit export as a file;
* :mod:`.server`: wiring, started by :class:`neural.mlops.server.app.ControlPlane`.

The pages themselves are static files under ``static/``. docs/security.md describes the
security model, docs/user-guide.md the use.
"""
