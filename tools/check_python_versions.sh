#!/usr/bin/env bash
# Does the core of the wheel resolve on each supported Python? pip's resolver, binary wheels only, nothing
# installed (--dry-run). Needs the package index. Usage: bash tools/check_python_versions.sh [VERSION ...]
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
REQS=$($PY -c "from configparser import ConfigParser; c = ConfigParser(delimiters=['=']); c.read('settings.ini'); print(c['DEFAULT']['requirements'])")
status=0
for ver in "${@:-3.10}" ${1:+} $([ $# -eq 0 ] && echo 3.11 3.12 3.13); do
  work=$(mktemp -d)
  if $PY -m pip install --dry-run --quiet --report "$work/report.json" --python-version "$ver" --only-binary=:all: \
        --target "$work/target" $REQS > "$work/log" 2>&1; then
    echo "Python $ver: resolves: $($PY -c "import json, sys; r = json.load(open(sys.argv[1])); print(' '.join(f\"{i['metadata']['name']}=={i['metadata']['version']}\" for i in r['install'] if i['metadata']['name'].lower() in ('torch', 'torchvision', 'numpy')))" "$work/report.json")"
  else
    echo "Python $ver: does NOT resolve: $(grep -m1 ERROR "$work/log")"; status=1
  fi
  rm -rf "$work"
done
exit $status
