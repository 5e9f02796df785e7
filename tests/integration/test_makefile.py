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


def stand_in_python(directory: Path, real: Path, *, venv_module: bool) -> Path:
    """A python3.12 that reports itself as sys.executable; without ``venv_module`` it behaves as Debian's and
    Ubuntu's python3.12 without python3.12-venv: `-m venv` makes the venv's directory without pip, then fails."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "python3.12"
    half_made = (
        ""
        if venv_module
        else f'if [ "$1 $2" = "-m venv" ]; then "{real}" -m venv --without-pip "$3"; '
        'echo "The virtual environment was not created successfully because ensurepip is not available." >&2; '
        "exit 1; fi\n"
    )
    script.write_text(f'#!/bin/bash\n{half_made}exec -a "$0" "{real}" "$@"\n')
    script.chmod(0o755)
    return script


def test_a_venv_left_without_pip_is_rebuilt_once_python_can_make_one(sandbox: Path, tmp_path: Path) -> None:
    real = pyenv_python("3.12")
    broken = stand_in_python(tmp_path / "debian", real, venv_module=False)
    first = run(["make", ".venv/.installed"], sandbox, bin_dir(tmp_path, **{"python3.12": broken}))
    assert first.returncode != 0
    assert "sudo apt-get install python3.12-venv" in first.stderr, first.stdout + first.stderr
    # A Ctrl-C (or an older Makefile) can still leave one behind: the venv's python, no pip, no stamp.
    subprocess.run([real, "-m", "venv", "--without-pip", sandbox / ".venv"], check=True)
    (tmp_path / "bin" / "python3.12").unlink()
    (tmp_path / "bin" / "python3.12").symlink_to(stand_in_python(tmp_path / "fixed", real, venv_module=True))
    second = run(["make", ".venv/.installed"], sandbox, tmp_path / "bin")
    assert second.returncode == 0, second.stdout + second.stderr
    assert ".venv has no pip (its creation failed or was interrupted): rebuilding it" in second.stdout
    assert subprocess.run([sandbox / ".venv" / "bin" / "python", "-m", "pip", "--version"], check=False).returncode == 0


def test_make_test_looks_for_a_browser_before_installing_anything(sandbox: Path, tmp_path: Path) -> None:
    result = run(["make", "test"], sandbox, bin_dir(tmp_path, **{"python3.12": pyenv_python("3.12")}))
    assert result.returncode != 0
    assert "CHROMIUM=/path/to/chrome make test" in result.stderr
    assert not (sandbox / ".venv").exists(), "the venv was made before the browser was looked for"


def test_a_python3_that_is_3_12_or_one_named_by_python_is_used(tmp_path: Path) -> None:
    finder = [str(REPO / "devtools" / "find-python.sh")]
    as_python3 = run(finder, tmp_path, bin_dir(tmp_path, python3=pyenv_python("3.12")))
    assert as_python3.returncode == 0, as_python3.stderr
    assert as_python3.stdout.strip() == str(tmp_path / "bin" / "python3")
    named = run(finder, tmp_path, tmp_path / "bin", PYTHON=str(pyenv_python("3.12")))
    assert named.returncode == 0 and named.stdout.strip().endswith("python3.12"), named.stderr
    wrong = run(finder, tmp_path, tmp_path / "bin", PYTHON=str(pyenv_python("3.13")))
    assert wrong.returncode != 0 and not wrong.stdout
    assert "is Python 3.13, not a Python 3.12" in wrong.stderr


def test_chromium_must_name_an_executable_file_or_a_command_on_path(sandbox: Path, tmp_path: Path) -> None:
    browser = tmp_path / "chromium"
    browser.write_text("#!/bin/sh\n")
    browser.chmod(0o755)
    path = bin_dir(tmp_path, chromium=browser)
    directory = run(["devtools/find-chromium.sh"], sandbox, path, CHROMIUM=str(tmp_path))
    assert directory.returncode != 0 and not directory.stdout and "is not an executable file" in directory.stderr
    command = run(["devtools/find-chromium.sh"], sandbox, path, CHROMIUM="chromium")
    assert command.returncode == 0 and command.stdout.strip() == str(path / "chromium"), command.stderr


@pytest.mark.parametrize("stub", [True, False], ids=["snap stub on PATH", "ubuntu without a browser"])
def test_on_ubuntu_the_snap_stub_is_not_used_nor_installed(sandbox: Path, tmp_path: Path, stub: bool) -> None:
    calls = tmp_path / "apt-get calls"
    apt_get = tmp_path / "apt-get"
    apt_get.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\n')
    apt_get.chmod(0o755)
    extra = {"apt-get": apt_get}
    if stub:  # what Ubuntu's chromium-browser does without snapd
        snap_stub = tmp_path / "chromium-browser"
        snap_stub.write_text("#!/bin/sh\necho \"Command '$0' requires the chromium snap.\" >&2\nexit 1\n")
        snap_stub.chmod(0o755)
        extra["chromium-browser"] = snap_stub
    os_release = tmp_path / "os-release"
    os_release.write_text("ID=ubuntu\n" if not stub else "ID=debian\n")
    result = run(["devtools/find-chromium.sh"], sandbox, bin_dir(tmp_path, **extra), OS_RELEASE=str(os_release))
    assert result.returncode != 0 and not result.stdout
    assert "transitional package for the snap" in result.stderr and "google.com/chrome" in result.stderr
    assert not calls.exists(), "apt-get was asked to install the snap's stub"
