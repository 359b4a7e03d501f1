#!/usr/bin/env bash
# Installs the Debian packages the full test suite uses: a PostgreSQL server (started by the
# tests on loopback) and Chromium (driven headless by Playwright). Safe to rerun.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: cannot install ${need[*]} (not root or no apt-get); those tests will be skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The Debian package starts a cluster on port 5432; the tests run their own, so stop it.
command -v service >/dev/null 2>&1 && service postgresql stop >/dev/null 2>&1 || true
