#!/usr/bin/env bash
# Make sure PostgreSQL server binaries and the PostGIS extension are installed.
# Installs the Debian/Ubuntu packages when run as root with apt-get; otherwise says exactly what to install.
set -euo pipefail

have_postgis() {
    local bindir sharedir
    for bindir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$bindir/initdb" ] || continue
        sharedir="/usr/share/postgresql/$(basename "$(dirname "$bindir")")"
        if ls "$sharedir"/extension/postgis.control >/dev/null 2>&1; then
            return 0
        fi
    done
    # Non-Debian layouts: trust pg_config when it is on PATH.
    if command -v pg_config >/dev/null 2>&1; then
        [ -x "$(pg_config --bindir)/initdb" ] && [ -f "$(pg_config --sharedir)/extension/postgis.control" ] && return 0
    fi
    return 1
}

if have_postgis; then
    exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> PostgreSQL + PostGIS not found: installing the OS packages (apt-get)..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql postgresql-contrib >/dev/null
    major=$(ls /usr/lib/postgresql | sort -V | tail -1)
    apt-get install -y -qq "postgresql-${major}-postgis-3" >/dev/null
    have_postgis && { echo "==> PostgreSQL ${major} + PostGIS installed."; exit 0; }
fi

cat >&2 <<'MSG'
ERROR: PostgreSQL server + PostGIS are required and could not be installed automatically.
Install them, then re-run:
  Debian/Ubuntu:  sudo apt-get update && sudo apt-get install -y postgresql postgresql-15-postgis-3
                  (use the postgis package matching your PostgreSQL major version)
  Fedora/RHEL:    sudo dnf install -y postgresql-server postgis
  macOS:          brew install postgresql@16 postgis
Or point the service at an existing PostGIS server:  export DATABASE_URL=postgresql://user:pass@host:5432/db
MSG
exit 1
