"""Packaging for mtl_meta: every piece of metadata comes from settings.ini (nbdev 2 layout)."""
import re
from configparser import ConfigParser
from pathlib import Path

import setuptools

here = Path(__file__).parent
cfg = ConfigParser(delimiters=["="])
cfg.read(here / "settings.ini", encoding="utf-8")
cfg = cfg["DEFAULT"]

licenses = {"apache2": ("Apache Software License 2.0", "OSI Approved :: Apache Software License")}
lic = licenses[cfg["license"]]
statuses = ["1 - Planning", "2 - Pre-Alpha", "3 - Alpha", "4 - Beta", "5 - Production/Stable"]

requirements = cfg.get("requirements", "").split()
# Every `<name>_requirements` key of settings.ini is an extra: pip install "mtl_meta[<name>]".
# `dev` (tools and tests) includes every other extra, so that a contributor's environment runs everything.
extras = {key[: -len("_requirements")]: cfg[key].split() for key in cfg
          if key.endswith("_requirements") and key != "dev_requirements"}
extras["dev"] = cfg.get("dev_requirements", "").split() + sorted({r for reqs in extras.values() for r in reqs})
scripts = [s for s in cfg.get("console_scripts", "").split() if s]


def absolute_links(markdown: str) -> str:
    "The README with its relative links and images made absolute (the package page lives outside the repository)."
    repo = cfg["git_url"].rstrip("/")
    raw = repo.replace("https://github.com/", "https://raw.githubusercontent.com/") + "/" + cfg["branch"] + "/"
    blob = repo + "/blob/" + cfg["branch"] + "/"
    def fix(m):
        bang, text, target = m.group(1), m.group(2), m.group(3)
        if re.match(r"[a-z][a-z0-9+.-]*:|#|/", target):
            return m.group(0)
        return f"{bang}[{text}]({(raw if bang else blob) + target})"
    out = re.sub(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)", fix, markdown)
    return re.sub(r'(<img[^>]*\bsrc=")(?![a-z][a-z0-9+.-]*:|/)([^"]+)"', lambda m: m.group(1) + raw + m.group(2) + '"', out)


readme = here / "README.md"

setuptools.setup(
    name=cfg["lib_name"].replace("_", "-"),
    version=cfg["version"],
    description=cfg["description"],
    long_description=absolute_links(readme.read_text(encoding="utf-8")) if readme.exists() else "",
    long_description_content_type="text/markdown",
    author=cfg["author"],
    author_email=cfg["author_email"],
    url=cfg["git_url"],
    license=lic[0],
    keywords=cfg["keywords"],
    classifiers=[
        "Development Status :: " + statuses[int(cfg["status"]) - 1],
        "Intended Audience :: " + cfg["audience"],
        "License :: " + lic[1],
        "Natural Language :: " + cfg["language"],
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
    python_requires=">=" + cfg["min_python"],
    packages=setuptools.find_packages(include=["mtl_meta", "mtl_meta.*"]) + ["mtl_meta.experiments"],
    # The experiment notebooks are the source of every reproduced table and figure; they ship
    # inside the wheel so that `mtl-meta reproduce` works after a plain `pip install`.
    package_dir={"mtl_meta.experiments": "nbs/experiments"},
    package_data={"mtl_meta.experiments": ["*.ipynb"]},
    include_package_data=True,
    install_requires=requirements,
    extras_require=extras,
    entry_points={"console_scripts": scripts, "nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    zip_safe=False,
)
