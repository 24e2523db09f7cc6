#!/usr/bin/env sh
# Removes what a local run leaves: uploaded data, reports, events (dead letters too) and the copies delivered to
# `file` targets, at the folders the server's settings give (environment, then -appconf FILE, then the defaults:
# everything under ./uploads). Configuration is never removed. A compose run keeps its data in the `uploads`
# volume instead: `docker compose down -v` removes it.
#   ./clean.sh [-appconf FILE] [--dry-run]
set -e
cd "$(dirname "$0")"
[ -f dist/cmd/clean.js ] || npm run build --silent >/dev/null
exec node dist/cmd/clean.js "$@"
