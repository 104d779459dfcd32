"""The console's shipped assets, without a browser: the bundled third-party files are
those of console/package-lock.json (vendor/manifest.json names each file's package, the
locked version and integrity, and its sha256), every module the pages import exists, and
no page carries inline script or style (the CSP forbids both)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "server" / "console" / "static"
VENDOR = STATIC / "vendor"
LOCK = ROOT / "console" / "package-lock.json"
PACKAGE = ROOT / "console" / "package.json"
IMPORT = re.compile(r"""^\s*import\s+(?:[^"';]+\s+from\s+)?["']([^"']+)["']""", re.M)


def _manifest() -> dict[str, object]:
    data: dict[str, object] = json.loads((VENDOR / "manifest.json").read_text())
    return data


def test_bundled_packages_are_the_locked_versions() -> None:
    lock = json.loads(LOCK.read_text())["packages"]
    declared = json.loads(PACKAGE.read_text())["dependencies"]
    packages = _manifest()["packages"]
    assert isinstance(packages, dict)
    assert set(packages) == set(declared)
    for name, entry in packages.items():
        locked = lock[f"node_modules/{name}"]
        assert entry["version"] == locked["version"] == declared[name], name
        assert entry["integrity"] == locked["integrity"], name


def test_bundled_files_match_the_manifest_and_nothing_else_is_vendored() -> None:
    packages = _manifest()["packages"]
    assert isinstance(packages, dict)
    listed = {path for entry in packages.values() for path in entry["files"]}
    on_disk = {p.relative_to(VENDOR).as_posix() for p in VENDOR.rglob("*")
               if p.is_file() and p.name != "manifest.json"}
    assert on_disk == listed
    for entry in packages.values():
        for path, info in entry["files"].items():
            digest = hashlib.sha256((VENDOR / path).read_bytes()).hexdigest()
            assert digest == info["sha256"], f"{path} differs from the build: npm run build"


def test_every_imported_module_exists() -> None:
    modules = list((STATIC / "js").rglob("*.js"))
    assert modules
    for module in modules:
        for target in IMPORT.findall(module.read_text()):
            assert target.startswith("."), f"{module.name} imports {target} (not bundled)"
            assert (module.parent / target).resolve().is_file(), f"{module.name}: {target}"


def test_pages_have_no_inline_script_or_style() -> None:
    html = (STATIC / "index.html").read_text()
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert 'src="' in tag, tag
    assert re.search(r"<script\b[^>]*>\s*[^<\s]", html) is None  # no script body
    assert "<style" not in html and " style=" not in html
    assert re.search(r"\son[a-z]+=", html) is None  # no inline event handlers
    for module in (STATIC / "js").rglob("*.js"):
        text = module.read_text()
        assert "innerHTML" not in text and 'setAttribute("style"' not in text, module.name
