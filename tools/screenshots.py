"""Render pages of a built site to PNG images with a headless Chromium, to look at what a reader sees.

    python tools/screenshots.py [--site _build/site] [--out /tmp/shots] [PAGE ...]

Builds nothing: run `make docs` first. A PAGE is a page of the site without `.html` (`nbs/04_ntk`); with none
given, the index, the paper, two library notebooks, the few-shot experiment and one executed run are taken.
Needs Debian's `chromium` (`apt-get install -y chromium`). Each page becomes OUT/<page with / as ->.png.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PAGES = ["index", "nbs/paper", "nbs/04_ntk", "nbs/08_mtl", "nbs/experiments/fewshot"]


def default_pages(site: Path, root: Path = ROOT) -> list[str]:
    "The default pages, and one executed run of the committed reproduction (figures/runs/), one that records its commit if any."
    runs = sorted((site / "figures" / "runs").glob("*/*.html"))
    def commit(page: Path) -> bool:
        record = root / page.parent.relative_to(site) / "run.json"
        return record.is_file() and '"commit"' in record.read_text(encoding="utf-8")
    runs.sort(key=lambda p: not commit(p))
    return DEFAULT_PAGES + ([str(runs[0].relative_to(site).with_suffix(""))] if runs else [])


def browser() -> str:
    "The Chromium executable, or a one-line error saying how to install it."
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    raise SystemExit("screenshots: no chromium on the PATH; install it with `apt-get install -y chromium`")


def shoot(site: Path, page: str, out: Path, width: int = 1280, height: int = 2000, timeout: int = 120) -> Path:
    "Render `site/page.html` headless into `out/<page>.png` (the first `height` pixels of the page) and return it."
    html = site / (page + ".html")
    if not html.is_file():
        raise SystemExit(f"screenshots: {html} does not exist; build the site first (`make docs`)")
    png = out / (page.replace("/", "-") + ".png")
    cmd = [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           f"--screenshot={png}", f"--window-size={width},{height}", "--virtual-time-budget=5000",
           html.resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if not png.is_file():
        raise SystemExit(f"screenshots: chromium wrote no image for {page} (exit {done.returncode}): "
                         + (done.stderr.strip().splitlines() or [""])[-1])
    return png


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pages", nargs="*", help="pages of the site, without .html (default: a representative few)")
    ap.add_argument("--site", type=Path, default=ROOT / "_build" / "site", help="the built site")
    ap.add_argument("--out", type=Path, default=Path("/tmp/shots"), help="folder for the PNG images")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=2000)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for page in args.pages or default_pages(args.site):
        print(shoot(args.site, page.removesuffix(".html"), args.out, args.width, args.height))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
