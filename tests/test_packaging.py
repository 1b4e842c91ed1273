"""The package's metadata agrees with itself, and a wheel carries what users need."""
import subprocess
import sys
import zipfile
from configparser import ConfigParser
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]


def settings():
    cfg = ConfigParser(delimiters=["="])
    cfg.read(REPO / "settings.ini")
    return cfg["DEFAULT"]


def all_requirements() -> list[str]:
    "Core requirements, then every extra's (`*_requirements` keys), development last."
    cfg = settings()
    extras = [k for k in cfg if k.endswith("_requirements") and k != "dev_requirements"]
    return cfg["requirements"].split() + [s for k in extras for s in cfg[k].split()] + cfg["dev_requirements"].split()


def normalise(spec: str) -> tuple:
    r = Requirement(spec)
    return (r.name.lower().replace("_", "-"), tuple(sorted(r.extras)), str(r.specifier))


def test_environment_yml_lists_exactly_the_settings_requirements():
    cfg = settings()
    wanted = [normalise(s) for s in all_requirements()]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml needs exactly one pip section"
    got = [normalise(s) for s in pip_sections[0]]
    assert sorted(got) == sorted(wanted), (
        f"only in environment.yml: {sorted(set(got) - set(wanted))}; "
        f"only in settings.ini: {sorted(set(wanted) - set(got))}")
    py = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python=")]
    assert py, "environment.yml must pin a Python version"
    major_minor = tuple(int(x) for x in py[0].split("=")[1].split(".")[:2])
    assert major_minor >= tuple(int(x) for x in cfg["min_python"].split("."))


def test_lock_file_satisfies_every_requirement():
    cfg = settings()
    pins = {}
    for line in (REPO / "requirements-lock.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, ver = line.partition("==")
            pins[name.lower().replace("_", "-")] = ver
    for spec in all_requirements():
        r = Requirement(spec)
        name = r.name.lower().replace("_", "-")
        assert name in pins, f"{name} is required but not pinned in requirements-lock.txt (run make lock)"
        assert r.specifier.contains(pins[name], prereleases=True), f"lock pins {name}=={pins[name]}, outside {r.specifier}"


def test_installed_version_matches_settings():
    import mtl_meta
    assert mtl_meta.__version__ == settings()["version"]


@pytest.mark.slow
def test_wheel_contains_package_experiments_and_console_script(tmp_path, built_wheel):
    wheels = [built_wheel]   # built once per session (conftest)
    with zipfile.ZipFile(wheels[0]) as z:
        names = set(z.namelist())
        assert "mtl_meta/core.py" in names and "mtl_meta/cli.py" in names
        assert "mtl_meta/experiments/environment.ipynb" in names
        entry = next(n for n in names if n.endswith("entry_points.txt"))
        assert "mtl-meta = mtl_meta.cli:main" in z.read(entry).decode()
        meta = z.read(next(n for n in names if n.endswith("METADATA"))).decode()
    for spec in settings()["requirements"].split():
        assert f"Requires-Dist: {Requirement(spec).name}" in meta
    # a light core (issue 40): the notebook runner and the plotting stack come only with the notebooks extra
    for spec in settings()["notebooks_requirements"].split():
        lines = [l for l in meta.splitlines() if l.startswith(f"Requires-Dist: {Requirement(spec).name}")]
        assert any('extra == "notebooks"' in l for l in lines) and all("extra ==" in l for l in lines), lines
    assert "](figures/" not in meta and "https://raw.githubusercontent.com/" in meta   # absolute links (issue 29)
    # installed from the wheel alone, the runner finds the notebooks shipped inside the package
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                    str(wheels[0])], check=True, capture_output=True)
    probe = subprocess.run([sys.executable, "-c", "from mtl_meta.runs import experiments_dir; "
                            "print(experiments_dir())"], capture_output=True, text=True, check=True,
                           cwd=tmp_path, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert Path(probe.stdout.strip()) == target / "mtl_meta" / "experiments"


def test_library_requirements_are_compatible_ranges():
    "Exact pins belong in requirements-lock.txt; the core and the extras users install take ranges (issue 29)."
    cfg = settings()
    extras = [k for k in cfg if k.endswith("_requirements") and k != "dev_requirements"]
    for spec in cfg["requirements"].split() + [s for k in extras for s in cfg[k].split()]:
        r = Requirement(spec)
        assert not any(s.operator in ("==", "===") for s in r.specifier), f"{spec} is an exact pin"
    numpy = next(Requirement(s) for s in cfg["requirements"].split() if s.startswith("numpy"))
    assert numpy.specifier.contains("2.1.0"), "numpy>=2.1 is the first with Python 3.13 wheels"


def test_package_description_has_absolute_links_and_images():
    r = subprocess.run([sys.executable, "setup.py", "--long-description"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    import re
    targets = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", r.stdout) + re.findall(r'<img[^>]*src="([^"]+)"', r.stdout)
    assert targets and any("figures/" in t for t in targets)
    relative = [t for t in targets if not re.match(r"(https?:|mailto:|#)", t)]
    assert not relative, relative[:5]
    assert "https://raw.githubusercontent.com/" in r.stdout   # images load from the raw files


def test_only_the_shared_fixture_builds_a_wheel_from_the_checkout():
    """`make test` runs on 2 pytest-xdist workers; two wheel builds from the checkout at once would write the same
    build/ folder. Only conftest's `built_wheel` builds one, once, under a lock the workers share."""
    import ast
    builders = set()
    for path in sorted(REPO.glob("tests/*.py")):
        source = path.read_text()
        for node in ast.parse(source).body:       # module-level functions (a builder's nested helpers count as it)
            if isinstance(node, ast.FunctionDef):
                for call in (n for n in ast.walk(node) if isinstance(n, ast.List)):
                    words = [e.value for e in call.elts if isinstance(e, ast.Constant)]
                    if "pip" in words and "wheel" in words and "str(REPO)" in ast.get_source_segment(source, call):
                        builders.add(node.name)
    assert builders == {"built_wheel"}, sorted(builders)

