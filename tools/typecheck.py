"""Type-check the package with mypy, using the [tool.mypy] settings in pyproject.toml.

    python tools/typecheck.py            # check everything installed as neural.mlops
    python tools/typecheck.py --no-incremental      # further arguments go to mypy

The import names differ from the folders (server/ is neural.mlops.server, sidecar/ is
neural.mlops.sidecar, protos/neural/mlops/v1 is neural.mlops.v1: the package-dir table in
pyproject.toml) and mypy cannot follow setuptools' editable finder. So this builds a tree
of symbolic links shaped like the installed package, runs mypy on it, and prints the
errors with the repository's own paths. The tree is temporary; mypy's cache stays in
.mypy_cache/ at the repository's root.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "clients" / "python" / "neural"

# Import path of a folder in the tree -> the repository folder it stands for. The client's
# own package is linked entry by entry (below) because the other three live inside it.
MAPPED = {
    Path("neural/mlops/server"): ROOT / "server",
    Path("neural/mlops/sidecar"): ROOT / "sidecar",
    Path("neural/mlops/v1"): ROOT / "protos" / "neural" / "mlops" / "v1",
}
SKIP = {"__pycache__"}


def build_tree(tree: Path) -> dict[str, str]:
    """Create the link tree under ``tree``; return tree prefix -> repository prefix."""
    prefixes: dict[str, str] = {}
    mlops = tree / "neural" / "mlops"
    mlops.mkdir(parents=True)
    os.symlink(CLIENT / "__init__.py", tree / "neural" / "__init__.py")
    for entry in sorted((CLIENT / "mlops").iterdir()):
        if entry.name in SKIP or entry.name in {p.name for p in MAPPED}:
            continue
        os.symlink(entry, mlops / entry.name)
    prefixes["neural/"] = "clients/python/neural/"
    for inside, folder in MAPPED.items():
        os.symlink(folder, tree / inside, target_is_directory=True)
        # Longer prefixes first when rewriting, so these win over "neural/".
        prefixes[f"{inside.as_posix()}/"] = f"{folder.relative_to(ROOT).as_posix()}/"
    return prefixes


def repository_paths(line: str, prefixes: dict[str, str]) -> str:
    for inside in sorted(prefixes, key=len, reverse=True):
        if line.startswith(inside):
            return prefixes[inside] + line[len(inside) :]
    return line


def main(argv: list[str]) -> int:
    extra = argv[1:] if argv[:1] == ["--"] else argv
    # A fresh tree per run: runs may overlap, and a run must not delete another's folder.
    with tempfile.TemporaryDirectory(prefix="neural-mlops-typecheck-") as tree:
        prefixes = build_tree(Path(tree))
        command = [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            *extra,
            "neural",
        ]
        done = subprocess.run(command, cwd=tree, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        print(repository_paths(line, prefixes))
    sys.stderr.write(done.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
