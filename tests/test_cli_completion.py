"""``neural-mlops completion``: bash/zsh scripts generated from the parser, exercised in bash."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from neural.mlops.cli import build_parser
from neural.mlops.cli.completion import bash_script, command_tree, zsh_script


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    res = subprocess.run(
        [sys.executable, "-m", "neural.mlops", "completion", "bash"], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    path = tmp_path_factory.mktemp("completion") / "neural-mlops.bash"
    path.write_text(res.stdout)
    return path


def complete(script: Path, *words: str) -> list[str]:
    """What bash offers after typing ``words`` (the last one is the word being completed)."""
    bash = shutil.which("bash")
    assert bash, "bash is needed"
    code = (
        'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); '
        '_neural_mlops; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    res = subprocess.run(
        [bash, "-c", code, "_", str(script), "neural-mlops", *words],
        capture_output=True,
        text=True,
        cwd=script.parent,
    )
    assert res.returncode == 0, res.stderr
    return [w for w in res.stdout.splitlines() if w]


def test_script_is_valid_bash(script: Path) -> None:
    res = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "complete -F _neural_mlops neural-mlops" in script.read_text()


def test_top_level_offers_every_command(script: Path) -> None:
    tree = command_tree(build_parser())
    assert set(complete(script, "")) == set(tree.subcommands)
    assert {"ci", "gate", "completion", "registry", "serve"} <= set(tree.subcommands)
    assert complete(script, "ga") == ["gate"]


def test_nested_commands_options_and_choices(script: Path) -> None:
    assert complete(script, "ci", "in") == ["init"]
    assert complete(script, "ci", "init", "--provider", "") == [
        "github",
        "gitlab",
        "jenkins",
        "azure",
    ]
    assert complete(script, "ci", "init", "--provider", "gi") == ["github", "gitlab"]
    assert complete(script, "ci", "init", "--for") == ["--force"]
    assert complete(script, "completion", "") == ["bash", "zsh"]
    # An option's value is skipped when finding the command path.
    assert "--max-regression" in complete(script, "gate", "--target", "./store", "--max-")
    assert "--candidate-metrics" in complete(script, "gate", "--candidate")


def test_option_values_without_choices_complete_file_names(script: Path) -> None:
    (script.parent / "metrics.json").write_text("{}")
    assert complete(script, "gate", "--candidate-metrics", "metr") == ["metrics.json"]


def test_zsh_uses_the_same_completion() -> None:
    parser = build_parser()
    text = zsh_script(parser)
    assert text.startswith("#compdef neural-mlops\n")
    assert "bashcompinit" in text and bash_script(parser) in text
    zsh = shutil.which("zsh")
    if zsh:
        res = subprocess.run([zsh, "-n", "-c", text], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr


def test_unknown_shell_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from neural.mlops.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["completion", "powershell"])
    assert exc.value.code == 2
    assert "invalid choice: 'powershell'" in capsys.readouterr().err
