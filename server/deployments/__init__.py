"""Deployments: canary, blue-green, direct and shadow rollouts with automated rollback."""
