"""Package discovery for the layout in docs/architecture.md.

The repository keeps the contract (``protos/``), the control plane (``server/``), the
data plane (``sidecar/``) and the clients (``clients/python``) in separate top-level
folders, but installs them under the single import name ``neural``. Everything else
lives in pyproject.toml; this file only lists the packages under each mapped folder.
"""

from setuptools import find_packages, setup


def _mapped(where: str, prefix: str) -> list[str]:
    return [prefix] + [f"{prefix}.{name}" for name in find_packages(where)]


setup(
    packages=[
        *find_packages("clients/python"),
        *_mapped("server", "neural.mlops.server"),
        *_mapped("sidecar", "neural.mlops.sidecar"),
        "neural.mlops.v1",
    ]
)
