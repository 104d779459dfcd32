"""The model registry domain: versions, artifacts, stages, approvals, aliases, history."""
