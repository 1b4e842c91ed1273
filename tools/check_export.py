"""Run nbdev_export and fail if it changed anything in mtl_meta/: the committed package must be
exactly what the notebooks generate."""
import hashlib
import subprocess
import sys
from pathlib import Path


def snapshot() -> dict:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path("mtl_meta").rglob("*.py")) if "__pycache__" not in p.parts}


def main() -> int:
    before = snapshot()
    subprocess.run([str(Path(sys.executable).parent / "nbdev_export")], check=True)
    after = snapshot()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    for path in changed:
        print(f"{path}: differs from what nbs/ exports; commit the output of `nbdev_export`", file=sys.stderr)
    print(f"mtl_meta in sync with nbs/: {len(after)} modules checked, {len(changed)} changed by nbdev_export")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
