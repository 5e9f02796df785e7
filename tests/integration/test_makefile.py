"""The Makefile on machines unlike this one, simulated with a controlled PATH in a copy of the repository's
tooling: only Python 3.13, a venv made with the wrong Python, no Chrome or Chromium without apt-get (as on
macOS, Fedora or Arch), a browser at a path with spaces. Nothing is uninstalled and nothing runs apt-get."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYENV_VERSIONS = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
# What the Makefile and its scripts call besides Python, make and a browser.
TOOLS = ("bash", "make", "env", "rm", "mkdir", "touch", "dirname", "id", "cat", "sh")


def pyenv_python(version: str) -> Path:
    found = sorted(PYENV_VERSIONS.glob(f"{version}.*/bin/python{version}"))
    if not found:
        pytest.skip(f"no pyenv Python {version} here to simulate with")
    return found[-1]


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """The Makefile, its scripts and the requirement files (emptied: no download) in a fresh directory."""
    root = tmp_path / "repo copy"
    shutil.copytree(REPO / "devtools", root / "devtools", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "Makefile", root)
    for requirements in ("layers/dependencies", "layers/tracing", "layers/signature"):
        (root / requirements).mkdir(parents=True)
        (root / requirements / "requirements.txt").write_text("")
    (root / "requirements-dev.txt").write_text("")
    return root


def bin_dir(tmp_path: Path, **extra: Path) -> Path:
    """A PATH directory with the basic tools and ``extra`` (name: target), and nothing else."""
    directory = tmp_path / "bin"
    directory.mkdir(exist_ok=True)
    for name in TOOLS:
        target = shutil.which(name)
        assert target, name
        (directory / name).symlink_to(target)
    for name, target in extra.items():
        (directory / name).symlink_to(target)
    return directory


def run(command: list[str], cwd: Path, path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": str(path), "HOME": str(cwd), "PIP_NO_INDEX": "1", **env}
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=300, check=False)


def test_only_python_3_13_is_refused_up_front_saying_what_to_install(sandbox: Path, tmp_path: Path) -> None:
    path = bin_dir(tmp_path, **{"python3.13": pyenv_python("3.13")})
    result = run(["make", "run"], sandbox, path)
    assert result.returncode != 0
    assert "Python 3.12 is needed" in result.stderr and "found Python 3.13" in result.stderr
    assert "pyenv install 3.12" in result.stderr
    assert not (sandbox / ".venv").exists(), "a venv was made with the wrong Python"


def test_a_venv_made_with_another_python_is_rebuilt_with_3_12(sandbox: Path, tmp_path: Path) -> None:
    subprocess.run([pyenv_python("3.13"), "-m", "venv", sandbox / ".venv"], check=True)
    (sandbox / ".venv" / ".installed").touch()  # as if a 3.13 venv had been fully installed
    path = bin_dir(tmp_path, **{"python3.12": pyenv_python("3.12")})
    result = run(["make", ".venv/.installed"], sandbox, path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ".venv has Python 3.13, not 3.12: rebuilding it" in result.stdout
    version = subprocess.run(
        [sandbox / ".venv" / "bin" / "python", "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.strip() == "(3, 12)"


def test_without_a_browser_or_apt_get_make_test_stops_saying_what_to_do(sandbox: Path, tmp_path: Path) -> None:
    path = bin_dir(tmp_path)
    result = run(["devtools/find-chromium.sh"], sandbox, path)
    assert result.returncode != 0 and not result.stdout
    assert "no apt-get" in result.stderr and "CHROMIUM=/path/to/chrome make test" in result.stderr
    assert "dnf install chromium" in result.stderr and "brew install --cask google-chrome" in result.stderr


def test_a_browser_on_path_or_in_chromium_is_used_even_with_spaces_in_its_path(sandbox: Path, tmp_path: Path) -> None:
    browser = tmp_path / "Google Chrome.app" / "Contents" / "Google Chrome"
    browser.parent.mkdir(parents=True)
    browser.write_text("#!/bin/sh\n")
    browser.chmod(0o755)
    found = run(["devtools/find-chromium.sh"], sandbox, bin_dir(tmp_path, **{"google-chrome": browser}))
    assert found.returncode == 0 and found.stdout.strip() == str(tmp_path / "bin" / "google-chrome")

    chosen = run(["devtools/find-chromium.sh"], sandbox, tmp_path / "bin", CHROMIUM=str(browser))
    assert chosen.returncode == 0 and chosen.stdout.strip() == str(browser)
    missing = run(["devtools/find-chromium.sh"], sandbox, tmp_path / "bin", CHROMIUM=str(tmp_path / "no such"))
    assert missing.returncode != 0 and "is not an executable file" in missing.stderr


def test_on_debian_chromium_is_installed_with_apt_get_when_missing(sandbox: Path, tmp_path: Path) -> None:
    # A stand-in apt-get that records its calls and "installs" chromium where PATH finds it.
    calls = tmp_path / "apt-get calls"
    apt_get = tmp_path / "apt-get"
    chromium = tmp_path / "bin" / "chromium"
    apt_get.write_text(
        f'#!/bin/sh\necho "$*" >> "{calls}"\n'
        f'case "$*" in *install*) echo "#!/bin/sh" > "{chromium}"; {shutil.which("chmod")} +x "{chromium}";; esac\n'
    )
    apt_get.chmod(0o755)
    path = bin_dir(tmp_path, **{"apt-get": apt_get})
    if os.getuid() != 0:
        (path / "sudo").write_text('#!/bin/sh\n[ "$1" = -E ] && shift\nexec "$@"\n')
        (path / "sudo").chmod(0o755)
    result = run(["devtools/find-chromium.sh"], sandbox, path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(path / "chromium")
    assert (
        calls.read_text().splitlines()[-1].endswith("install -y -qq --no-install-recommends chromium fonts-liberation")
    )


def test_the_python_finder_prints_a_3_12_interpreter(tmp_path: Path) -> None:
    path = bin_dir(tmp_path, **{"python3.12": pyenv_python("3.12"), "python3.13": pyenv_python("3.13")})
    result = run([str(REPO / "devtools" / "find-python.sh")], tmp_path, path)
    assert result.returncode == 0, result.stderr
    # The 3.12 one, though 3.13 is on PATH too (3.13 was once a fallback; sam build refuses it).
    assert result.stdout.strip().endswith("python3.12") and "3.13" not in result.stdout
