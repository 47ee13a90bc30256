#!/usr/bin/env bash
# Make sure the operating system's Chromium is installed: the map's end-to-end test (tests/e2e) drives it
# with Playwright, which never downloads a browser here. Installs the Debian package when run as root with
# apt-get; otherwise says exactly what to install. CHROMIUM=/path/to/chrome overrides the lookup.
set -euo pipefail

if [ -n "${CHROMIUM:-}" ]; then
    [ -x "$CHROMIUM" ] && exit 0
    echo "ERROR: CHROMIUM=$CHROMIUM is not an executable (unset it to use the OS package)" >&2
    exit 1
fi

find_chromium() {
    local name
    for name in chromium chromium-browser google-chrome; do
        command -v "$name" >/dev/null 2>&1 && return 0
    done
    return 1
}

if find_chromium; then
    exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> Chromium not found: installing the OS package (apt-get install chromium) for the map's browser test..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
    find_chromium && { echo "==> Chromium installed: $(command -v chromium)"; exit 0; }
fi

cat >&2 <<'MSG'
ERROR: Chromium is required by the map's end-to-end test (tests/e2e) and could not be installed automatically.
Install the operating system's package, then re-run:
  Debian:         sudo apt-get update && sudo apt-get install -y chromium
  Ubuntu:         sudo apt-get install -y chromium-browser   (a snap on recent releases), or Google Chrome
  Fedora/RHEL:    sudo dnf install -y chromium
  macOS:          brew install --cask chromium
Or point the test at any Chromium/Chrome binary:  export CHROMIUM=/path/to/chromium
MSG
exit 1
