#!/usr/bin/env bash
# Installs amskv from BUILD_DIR into a temporary prefix, then builds and runs the C consumer
# twice: through find_package(amskv) and through pkg-config.
# usage: tests/consumer/run.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" > /dev/null
cmake -S "$here" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$tmp/prefix" > /dev/null
cmake --build "$tmp/cmake" > /dev/null
"$tmp/cmake/consumer"
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
# shellcheck disable=SC2046
cc -o "$tmp/consumer_pc" "$here/consumer.c" $(pkg-config --cflags --libs amskv)
"$tmp/consumer_pc"
echo "consumer: find_package and pkg-config builds both ran"
