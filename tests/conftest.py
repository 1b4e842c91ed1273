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


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory) -> Path:
    """The wheel of this checkout (`pip wheel --no-deps`), built once per test session; tests only read it.
    `make test` runs pytest-xdist workers, each with its own session fixtures: the wheel is built once in the folder
    they share, under a lock, since setuptools writes build/ and the egg-info into the source tree and two builds at
    once would collide."""
    import fcntl
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    shared = tmp_path_factory.getbasetemp().parent if worker else tmp_path_factory.getbasetemp()
    dist = shared / "built-wheel"
    with open(shared / "built-wheel.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # released when the file closes
        if not list(dist.glob("mtl_meta-*.whl")):
            dist.mkdir(exist_ok=True)
            subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(dist), str(REPO)], check=True, capture_output=True)
    wheels = list(dist.glob("mtl_meta-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="session")
def smoke_reproduction(omniglot_root, tmp_path_factory):
    """The whole `smoke` profile, reproduced once per test session: (the finished command, its output folder).
    Tests read it and never change it (copy it first); it is the serial reference of the concurrent runs."""
    out = tmp_path_factory.mktemp("smoke") / "out"
    done = cli("reproduce", "--profile", "smoke", "--out", str(out), "--no-progress", "--data-root", str(omniglot_root))
    assert done.returncode == 0, done.stdout + done.stderr
    return done, out
