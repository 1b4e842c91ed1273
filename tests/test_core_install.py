"""The wheel without extras, installed into a fresh virtual environment: training and evaluation work
there, and the theory stack (jax, tensorflow, neural-tangents) is absent and reported in one line.

Slow the first time (it installs torch and the other core requirements at the versions of
requirements-lock.txt, from the wheels on this machine and the configured package index); the
environment is kept in the cache ($MTL_META_CACHE/test-core-venv-HASH) and reused while the
requirements and the lock file stay the same, and only mtl_meta itself is reinstalled."""
import hashlib
import json
import os
import subprocess
import sys
import venv
from configparser import ConfigParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def core_venv() -> Path:
    "A virtual environment with the core requirements only (created once per requirements + lock file)."
    from mtl_meta.core import cache_dir
    cfg = ConfigParser(delimiters=["="])
    cfg.read(REPO / "settings.ini")
    key = hashlib.sha256((cfg["DEFAULT"]["requirements"] + (REPO / "requirements-lock.txt").read_text()
                          + sys.version).encode()).hexdigest()[:12]
    env = cache_dir() / f"test-core-venv-{key}"
    py = env / "bin" / "python"
    if not (env / "ready").exists():
        venv.create(env, with_pip=True, clear=True)
        reqs = cfg["DEFAULT"]["requirements"].split()
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                            "-c", str(REPO / "requirements-lock.txt"), *reqs], capture_output=True, text=True)
        assert r.returncode == 0, "installing the core requirements failed: " + r.stderr[-2000:]
        (env / "ready").write_text("\n".join(reqs) + "\n")
    return env


@pytest.mark.slow
def test_wheel_without_extras_trains_and_evaluates(tmp_path, omniglot_root, built_wheel):
    wheel = built_wheel
    env = core_venv()
    py, exe = env / "bin" / "python", env / "bin" / "mtl-meta"
    # the wheel's own requirements must already be satisfied by the core environment: --no-index
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-index",
                        "--force-reinstall", "--no-deps", str(wheel)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(py), "-m", "pip", "check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    clean = {"PATH": f"{env / 'bin'}:/usr/bin:/bin", "HOME": os.environ.get("HOME", str(tmp_path)),
             "MTL_META_DATA": str(omniglot_root), "MTL_META_CACHE": str(tmp_path / "cache")}
    run = lambda *a: subprocess.run(list(map(str, a)), capture_output=True, text=True, env=clean, cwd=tmp_path,
                                    timeout=600)
    # not the theory stack, and mtl_meta comes from the wheel, not from this checkout
    probe = run(py, "-c", "import importlib.util as u, mtl_meta; print(mtl_meta.__file__); "
                "print([m for m in ('jax', 'tensorflow', 'neural_tangents', 'tf2jax') if u.find_spec(m)])")
    assert probe.returncode == 0, probe.stderr
    where, missing = probe.stdout.splitlines()
    assert where.startswith(str(env)) and missing == "[]"
    out = tmp_path / "run"
    r = run(exe, "train", "--dataset", "omniglot-minimal", "--ways", 5, "--shots", 1, "--epochs", 1,
            "--episodes-per-epoch", 4, "--val-episodes", 3, "--out", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "summary.json").read_text())["steps"] == 4
    r = run(exe, "evaluate", "--checkpoint", out / "checkpoint.pt", "--episodes", 5, "--shots", 1, "--json",
            "--no-progress")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert 0 <= res["mean"] <= 1 and res["episodes"] == 5
    # the theory needs its extra: one line that names the command
    r = run(py, "-c", "import sys, numpy as np; from mtl_meta import ntk; from mtl_meta.core import MtlMetaError\n"
            "try: ntk.kernels(np.ones((2, 3)), np.ones((2, 3)), 2)\n"
            "except MtlMetaError as e: print(e); sys.exit(3)")
    assert r.returncode == 3 and 'pip install "mtl_meta[theory]"' in r.stdout and r.stdout.count("\n") == 1
    # and so does reproduce, whose notebook runner and figure style are the notebooks extra (issue 40)
    probe = run(py, "-c", "import importlib.util as u; "
                "print([m for m in ('papermill', 'ipykernel', 'ipywidgets', 'seaborn') if u.find_spec(m)])")
    assert probe.stdout.strip() == "[]", probe.stdout + probe.stderr
    r = run(exe, "reproduce", "--profile", "smoke", "--out", tmp_path / "figs", "--no-progress")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and 'pip install "mtl_meta[notebooks]"' in r.stderr, r.stderr
    assert not (tmp_path / "figs").exists()
