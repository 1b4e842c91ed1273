import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def cli(*args, env=None, cwd=None, timeout=600):
    "Run the installed `mtl-meta` console script; return the CompletedProcess (text mode)."
    exe = shutil.which("mtl-meta", path=str(BIN)) or "mtl-meta"
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([exe, *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout)


@pytest.fixture
def run_cli():
    return cli


@pytest.fixture(scope="session")
def omniglot_root():
    "The data root holding the real Omniglot minimal archives; skips locally when absent, fails in CI."
    from mtl_meta.core import data_root
    root = data_root()
    if not (root / "omniglot" / "images_background_small1.zip").exists():
        msg = f"Omniglot minimal archives not found under {root}/omniglot; set MTL_META_DATA"
        if os.environ.get("MTL_META_REQUIRE_DATA"):
            pytest.fail(msg)
        pytest.skip(msg)
    return root


# The fixtures built once for all workers (`built_once`): a worker that needs one while the other builds it waits
# idle on the lock (111 s for the smoke reproduction at fc27522). `make test` runs pytest-xdist with
# `--dist loadgroup`, and this hook puts every test that uses one of them in that fixture's group, so one worker
# builds and uses it while the other goes on with the rest.
SHARED_FIXTURES = (   # test_architecture checks that it names every fixture that calls built_once or cli_once
    "smoke_reproduction", "smoke_out", "site", "straight", "built_wheel")


@pytest.hookimpl(tryfirst=True)   # before xdist's own hook, which reads the groups into the test ids
def pytest_collection_modifyitems(config, items):
    for item in items:
        shared = [f for f in SHARED_FIXTURES if f in getattr(item, "fixturenames", ())]
        if shared:
            item.add_marker(pytest.mark.xdist_group("+".join(shared)))


def _shared_base(tmp_path_factory) -> Path:
    "The base folder of this test session: the one pytest-xdist's workers share, under xdist."
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(tmp_path_factory, name: str, make):
    """`make(folder)` run once per test session into a new `folder`: (the folder, what `make` returned, saved as JSON).
    `make test` runs pytest-xdist workers, each with its own session and module fixtures: under xdist the folder is
    in the base folder the workers share and `make` runs under a lock, so the first worker to need it builds it and
    the other reads it (a wheel, the smoke reproduction, the docs site: minutes each, and a build into the source
    tree twice at once would collide). Callers read the folder and never change it (copy it first)."""
    import fcntl
    import json
    shared = _shared_base(tmp_path_factory)
    folder, result = shared / name, shared / f"{name}.json"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # released when the file closes
        if not result.exists():
            shutil.rmtree(folder, ignore_errors=True)   # a build that failed half-way in another worker
            folder.mkdir()
            value = make(folder)
            tmp = result.with_suffix(".tmp")
            tmp.write_text(json.dumps(value))
            tmp.replace(result)
        return folder, json.loads(result.read_text())


def cli_once(tmp_path_factory, name: str, *args, env=None) -> tuple[subprocess.CompletedProcess, Path]:
    """`mtl-meta ARGS` run once per test session (see `built_once`) with `{out}` in ARGS standing for its output
    folder: (the finished command, as run, and that folder)."""
    def make(folder):
        done = cli(*[a.replace("{out}", str(folder / "out")) for a in args], env=env)
        return {"args": done.args, "returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr}
    folder, d = built_once(tmp_path_factory, name, make)
    return subprocess.CompletedProcess(d["args"], d["returncode"], d["stdout"], d["stderr"]), folder / "out"


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory) -> Path:
    "The wheel of this checkout (`pip wheel --no-deps`), built once per test session (`built_once`); tests only read it."
    def make(dist):
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(dist), str(REPO)], check=True, capture_output=True)
        wheels = list(dist.glob("mtl_meta-*.whl"))
        assert len(wheels) == 1, wheels
        return str(wheels[0])
    return Path(built_once(tmp_path_factory, "built-wheel", make)[1])


@pytest.fixture(scope="session")
def smoke_reproduction(omniglot_root, tmp_path_factory):
    """The whole `smoke` profile, reproduced once per test session: (the finished command, its output folder).
    Tests read it and never change it (copy it first); it is the serial reference of the concurrent runs. Run once
    for all workers (`cli_once`)."""
    done, out = cli_once(tmp_path_factory, "smoke-reproduction", "reproduce", "--profile", "smoke", "--out", "{out}",
                         "--no-progress", "--data-root", str(omniglot_root))
    assert done.returncode == 0, done.stdout + done.stderr
    return done, out
