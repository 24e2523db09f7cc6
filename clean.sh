#!/usr/bin/env sh
# Removes local upload data, reports and events (the default local folders).
set -e
cd "$(dirname "$0")"
rm -rf uploads testing/uploads
