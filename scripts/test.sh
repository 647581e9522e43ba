#!/usr/bin/env bash
# Installs what the tests need (Debian's PostgreSQL client tools, Debian's slapd and ldap-utils,
# libxmlsec1 and libclang for the SAML build, SimpleSAMLphp and php-cli for the SAML tests,
# Debian's Chromium for the
# browser tests, Debian's python3-psycopg2, tmux, pgjdbc and a JDK, the test OpenID provider's npm packages incl. playwright-core,
# the Python packages of tests/python/requirements.txt in a virtual environment), then runs
# formatting, lints and every test. Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portcullis-target}"
# Fresh builds gain nothing from incremental data, and it grows the cache by tens of GB.
export CARGO_INCREMENTAL=0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
# PostgreSQL 15's client tools, and its server for the gateway tests (each test makes its own
# cluster with initdb in a temp dir).
if ! command -v psql >/dev/null || ! command -v pgbench >/dev/null \
   || [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql-client postgresql-15 >/dev/null
fi
# OpenLDAP's slapd and ldap-utils for the LDAP tests (each test runs its own slapd in a temp
# dir; the package's own directory is not configured).
if ! command -v slapd >/dev/null && [ ! -x /usr/sbin/slapd ] || ! command -v ldapadd >/dev/null; then
  echo "slapd slapd/no_configuration boolean true" | $SUDO debconf-set-selections
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq slapd ldap-utils >/dev/null
fi
# SAML: the build needs libxmlsec1 (XML signatures, through samael's bindings: libclang and
# pkg-config generate them); the tests run Debian's SimpleSAMLphp under php -S as the IdP and
# make its signing key with openssl.
if ! pkg-config --exists xmlsec1 2>/dev/null || [ ! -d /usr/lib/llvm-14/lib ] \
   || [ ! -d /usr/share/simplesamlphp/www ] || ! command -v php >/dev/null \
   || ! command -v openssl >/dev/null; then
  # simplesamlphp depends on a web server (apache2): installed, never started here.
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    pkg-config libxml2-dev libxmlsec1-dev libclang-dev xmlsec1 openssl \
    simplesamlphp php-cli php-xml >/dev/null
  if [ -n "$made_policy" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
fi
# The test OpenID provider (npm oidc-provider, pinned by tests/idp/package-lock.json).
if ! command -v node >/dev/null || ! command -v curl >/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm curl >/dev/null
fi
# Headless Chromium for the browser sign-in test (driven by tests/idp/browser.mjs).
if [ ! -x /usr/bin/chromium ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
# psycopg2 (Debian's, over libpq) for the device-grant test of a Python client.
# tmux for the CLI's interactive-shell test; pgjdbc and a JDK (single-file java launch) for the
# JDBC test.
if ! /usr/bin/python3 -c 'import psycopg2' 2>/dev/null || ! command -v tmux >/dev/null \
   || [ ! -f /usr/share/java/postgresql.jar ] || ! command -v javac >/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-psycopg2 tmux \
    libpostgresql-jdbc-java default-jdk-headless >/dev/null
fi
npm ci --prefix tests/idp --no-audit --no-fund --silent
# Python packages of the tests (prometheus_client for /metrics, psycopg 3 with libpq 18 for
# OAUTHBEARER), pinned, in a virtual environment outside the clone.
export TEST_VENV_PYTHON="${TEST_VENV_PYTHON:-$HOME/.cache/portcullis-venv/bin/python}"
venv="$(dirname "$(dirname "$TEST_VENV_PYTHON")")"
if [ ! -x "$TEST_VENV_PYTHON" ] && ! /usr/bin/python3 -m venv "$venv" >/dev/null 2>&1; then
  # Debian's python3 makes virtual environments only with python3-venv.
  rm -rf "$venv"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
  /usr/bin/python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/python/requirements.txt
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
log=$(mktemp)
cargo test --workspace 2>&1 | tee "$log"
# One closing line for the whole run (cargo prints one per test binary, the last often 0 doc-tests).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
# The fuzz targets, briefly: they keep building, and the seeds still pass.
bash scripts/fuzz.sh 10
