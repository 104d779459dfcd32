"""CI/CD pipeline templates for GitHub Actions, GitLab CI, Jenkins and Azure Pipelines.

Every template runs the same five steps against a control plane::

    test -> validate (metrics gate against the current PRODUCTION version)
         -> register -> request promotion
         -> after approval: canary deploy, watched until promoted or rolled back

and is parameterised by :class:`PipelineSettings` (model name, metric thresholds,
control-plane address, the name of the secret holding the API token, and the commands
that install, test and train). Parameters are placed once, in the pipeline's
variables block, quoted for that file's syntax; the steps only read variables.

    >>> from neural.mlops.ci_templates import PipelineSettings, render_template
    >>> text = render_template("github", PipelineSettings(model_name="fraud_detector"))
    >>> "neural-mlops gate" in text
    True

``neural-mlops ci init --provider github`` writes the same file into a repository.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path

from neural.mlops.server.errors import AlreadyExists, FailedPrecondition, InvalidArgument

__all__ = [
    "DEFAULT_TARGET",
    "PipelineSettings",
    "Provider",
    "METRIC_NAME",
    "default_output_path",
    "format_thresholds",
    "list_providers",
    "parse_thresholds",
    "render_template",
    "template_text",
    "write_template",
]


class Provider(StrEnum):
    GITHUB = "github"
    GITLAB = "gitlab"
    JENKINS = "jenkins"
    AZURE = "azure"


# The packaged file (seed's Architecture) and where each CI system looks for it.
TEMPLATE_FILES: dict[Provider, str] = {
    Provider.GITHUB: "github_actions.yml",
    Provider.GITLAB: "gitlab_ci.yml",
    Provider.JENKINS: "Jenkinsfile",
    Provider.AZURE: "azure_pipelines.yml",
}
OUTPUT_PATHS: dict[Provider, str] = {
    Provider.GITHUB: ".github/workflows/ml-pipeline.yml",
    Provider.GITLAB: ".gitlab-ci.yml",
    Provider.JENKINS: "Jenkinsfile",
    Provider.AZURE: "azure-pipelines.yml",
}

DEFAULT_TARGET = "grpc://mlops.internal:50051"

# ``@@NAME@@`` becomes a quoted scalar of the file's syntax (YAML double-quoted, Groovy
# single-quoted); ``@@raw:NAME@@`` is inserted as is (inside a YAML block, a secret's name).
_PLACEHOLDER = re.compile(r"@@(raw:)?([A-Z_]+)@@")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# A metric name as the gate and the pipelines accept it.
METRIC_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
_SECRET = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_TARGET = re.compile(r"^grpc://[A-Za-z0-9.\-]+:\d{1,5}$|^grpc://\[[0-9A-Fa-f:]+\]:\d{1,5}$")
_REVIEWER = re.compile(r"^[A-Za-z0-9._%+\-@]{1,320}$")
# Characters a CI system would expand inside a value ($VAR, ${{ }}, $(macro), `cmd`).
_EXPANDING = re.compile(r"[$`]|\$\{\{")


def list_providers() -> list[str]:
    return [p.value for p in Provider]


def parse_provider(value: str | Provider) -> Provider:
    try:
        return Provider(str(value).strip().lower())
    except ValueError:
        raise InvalidArgument(
            f"unknown provider {value!r}; choose one of: {', '.join(list_providers())}",
            field="provider",
        ) from None


def parse_thresholds(
    values: str | Mapping[str, float] | list[str] | None, option: str
) -> dict[str, float]:
    """``"accuracy=0.9,f1=0.8"`` (or a list of such strings, or a mapping) -> ``{metric: value}``.

    A trailing ``%`` is kept as a relative threshold by :mod:`neural.mlops.cli.gate`; here,
    for templates, values are plain numbers.
    """
    if values is None:
        return {}
    items: list[tuple[str, str | float]]
    if isinstance(values, Mapping):
        items = [(str(k), v) for k, v in values.items()]
    else:
        parts: list[str] = []
        for chunk in [values] if isinstance(values, str) else values:
            parts.extend(p.strip() for p in chunk.split(",") if p.strip())
        items = []
        for part in parts:
            metric, sep, raw = part.partition("=")
            if not sep:
                raise InvalidArgument(
                    f"{option}: expected METRIC=VALUE, got {part!r}", field=option
                )
            items.append((metric.strip(), raw.strip()))
    out: dict[str, float] = {}
    for metric, given in items:
        if not METRIC_NAME.match(metric):
            raise InvalidArgument(f"{option}: invalid metric name {metric!r}", field=option)
        try:
            value = float(given)
        except (TypeError, ValueError):
            raise InvalidArgument(
                f"{option}: {metric} needs a number, got {given!r}", field=option
            ) from None
        if not math.isfinite(value):
            raise InvalidArgument(f"{option}: {metric} must be finite", field=option)
        out[metric] = value
    return out


def format_thresholds(values: Mapping[str, float]) -> str:
    """``{"accuracy": 0.9, "f1": 0.8}`` -> ``"accuracy=0.9,f1=0.8"`` (what the gate reads)."""
    return ",".join(f"{k}={v:g}" for k, v in values.items())


@dataclass(frozen=True)
class PipelineSettings:
    """What a generated pipeline is parameterised by.

    ``token_secret`` names the secret in the CI system's store (GitHub/Azure secret,
    GitLab masked variable, Jenkins secret-text credential id); its value reaches the
    CLI as ``NEURAL_MLOPS_TOKEN`` and is never written into the file.
    """

    model_name: str = "my_model"
    min_metrics: Mapping[str, float] = field(default_factory=lambda: {"accuracy": 0.9})
    max_regression: Mapping[str, float] = field(default_factory=lambda: {"accuracy": 0.01})
    target: str = DEFAULT_TARGET
    token_secret: str = "NEURAL_MLOPS_TOKEN"
    python_version: str = "3.11"
    install_command: str = "pip install -e . neural-mlops"
    test_command: str = "pytest tests/ -v"
    train_command: str = "python train.py --output model.pt --metrics metrics.json"
    model_path: str = "model.pt"
    metrics_file: str = "metrics.json"
    framework: str = "pytorch"
    reviewers: tuple[str, ...] = ()
    canary_percent: float = 10.0
    approval_timeout_minutes: int = 180
    watch_timeout_minutes: int = 120

    def validated(self) -> PipelineSettings:
        """Return self, or raise InvalidArgument naming the first bad field."""
        self._check_model_and_gate()
        self._check_connection()
        self._check_job()
        self._check_rollout()
        return self

    def _check_model_and_gate(self) -> None:
        if not _MODEL_NAME.match(self.model_name or ""):
            raise InvalidArgument(
                f"model_name {self.model_name!r} must be 1-128 characters of letters, digits, "
                "'.', '_' or '-', starting with a letter or digit",
                field="model_name",
            )
        if not self.min_metrics and not self.max_regression:
            raise InvalidArgument(
                "give at least one metric threshold (min_metrics or max_regression)",
                field="min_metrics",
            )
        for option, values in (
            ("min_metrics", self.min_metrics),
            ("max_regression", self.max_regression),
        ):
            parse_thresholds(values, option)
        for metric, value in self.max_regression.items():
            if value < 0:
                raise InvalidArgument(
                    f"max_regression: {metric} must be >= 0", field="max_regression"
                )

    def _check_connection(self) -> None:
        if not _TARGET.match(self.target or ""):
            raise InvalidArgument(
                f"target {self.target!r} must look like grpc://HOST:PORT", field="target"
            )
        if not _SECRET.match(self.token_secret or ""):
            raise InvalidArgument(
                f"token_secret {self.token_secret!r} must be a variable name "
                "(letters, digits, '_', not starting with a digit)",
                field="token_secret",
            )

    def _check_job(self) -> None:
        if not re.match(r"^3\.\d{1,2}$", self.python_version):
            raise InvalidArgument(
                f"python_version must look like 3.11, got {self.python_version!r}",
                field="python_version",
            )
        for name in ("install_command", "test_command", "train_command"):
            value = getattr(self, name)
            if (
                not value
                or "\n" in value
                or "\r" in value
                or _EXPANDING.search(value)
                or "'''" in value
            ):
                raise InvalidArgument(
                    f"{name} must be one non-empty line without '$' or '`' (CI systems would "
                    "expand them inside the file); put longer logic in a script",
                    field=name,
                )
        for name in ("model_path", "metrics_file", "framework"):
            value = getattr(self, name)
            if not value or not re.match(r"^[A-Za-z0-9._/\-]+$", value) or ".." in value.split("/"):
                raise InvalidArgument(
                    f"{name} {value!r} must be a relative path of letters, digits, "
                    "'.', '_', '-' and '/'",
                    field=name,
                )

    def _check_rollout(self) -> None:
        for reviewer in self.reviewers:
            if not _REVIEWER.match(reviewer):
                raise InvalidArgument(
                    f"reviewer {reviewer!r} is not a valid identity", field="reviewers"
                )
        if not (0 < self.canary_percent <= 100):
            raise InvalidArgument("canary_percent must be in (0, 100]", field="canary_percent")
        for name in ("approval_timeout_minutes", "watch_timeout_minutes"):
            if not (1 <= int(getattr(self, name)) <= 7 * 24 * 60):
                raise InvalidArgument(f"{name} must be between 1 and 10080", field=name)

    def values(self) -> dict[str, str]:
        """Placeholder name -> raw (unquoted) value."""
        return {
            "MODEL_NAME": self.model_name,
            "GATE_MIN": format_thresholds(self.min_metrics),
            "GATE_MAX_REGRESSION": format_thresholds(self.max_regression),
            "TARGET": self.target,
            "TOKEN_SECRET": self.token_secret,
            "PYTHON_VERSION": self.python_version,
            "INSTALL_COMMAND": self.install_command,
            "TEST_COMMAND": self.test_command,
            "TRAIN_COMMAND": self.train_command,
            "MODEL_PATH": self.model_path,
            "METRICS_FILE": self.metrics_file,
            "FRAMEWORK": self.framework,
            "REVIEWERS": ",".join(self.reviewers),
            "CANARY_PERCENT": f"{self.canary_percent:g}",
            "APPROVAL_TIMEOUT": f"{int(self.approval_timeout_minutes)}m",
            "WATCH_TIMEOUT": f"{int(self.watch_timeout_minutes)}m",
            "APPROVAL_TIMEOUT_MINUTES": str(int(self.approval_timeout_minutes)),
            "WATCH_TIMEOUT_MINUTES": str(int(self.watch_timeout_minutes)),
            "JOB_TIMEOUT_MINUTES": str(
                int(self.approval_timeout_minutes + self.watch_timeout_minutes) + 10
            ),
        }


def _quote(provider: Provider, value: str) -> str:
    if provider is Provider.JENKINS:
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return json.dumps(value)  # a JSON string is a valid YAML double-quoted scalar


def template_text(provider: str | Provider) -> str:
    """The packaged template with its ``@@PLACEHOLDERS@@`` still in."""
    p = parse_provider(provider)
    return (
        resources.files("neural.mlops")
        .joinpath("ci_templates", TEMPLATE_FILES[p])
        .read_text("utf-8")
    )


def render_template(provider: str | Provider, settings: PipelineSettings | None = None) -> str:
    """The pipeline file for ``provider`` with ``settings`` filled in."""
    p = parse_provider(provider)
    s = (settings or PipelineSettings()).validated()
    values = s.values()

    def substitute(m: re.Match[str]) -> str:
        key = m.group(2)
        if key not in values:  # a template bug, caught by the tests
            raise KeyError(f"{TEMPLATE_FILES[p]}: unknown placeholder {m.group(0)}")
        return values[key] if m.group(1) else _quote(p, values[key])

    return _PLACEHOLDER.sub(substitute, template_text(p))


def default_output_path(provider: str | Provider) -> str:
    """Where the CI system expects the file, relative to the repository root."""
    return OUTPUT_PATHS[parse_provider(provider)]


def write_template(
    provider: str | Provider,
    output_dir: str | os.PathLike[str] = ".",
    settings: PipelineSettings | None = None,
    *,
    force: bool = False,
) -> Path:
    """Render and write the pipeline under ``output_dir`` at the provider's usual path.

    An existing file is never replaced unless ``force``; raises AlreadyExists then, and
    FailedPrecondition when the folder cannot be written. Returns the written path.
    """
    p = parse_provider(provider)
    text = render_template(p, settings)
    root = Path(output_dir)
    if root.exists() and not root.is_dir():
        raise FailedPrecondition(f"output {root} exists and is not a folder")
    dest = root / OUTPUT_PATHS[p]
    if dest.exists() and not force:
        raise AlreadyExists(f"{dest} already exists; pass --force to overwrite it")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, dest)
    except OSError as exc:
        raise FailedPrecondition(f"cannot write {dest}: {exc.strerror or exc}") from None
    return dest
