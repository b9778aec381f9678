#!/bin/sh
# fetch.sh [CACHE_DIR]: Debian's Jupyter Server, unpacked without touching
# the system. Downloads the packages listed in debian-packages.txt (beside
# this script) with `apt-get download` and unpacks each with `dpkg -x` into
# CACHE_DIR (default: .cache beside this script, git-ignored). Python finds
# them with PYTHONPATH=CACHE_DIR/root/usr/lib/python3/dist-packages.
# Idempotent: does nothing when CACHE_DIR/stamp holds the list's sha256.
# Used by `make deps` and by testkit.JupyterServerRoot.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache=${1:-$here/.cache}
list=$here/debian-packages.txt
want=$(sha256sum "$list" | cut -d' ' -f1)
if [ "$(cat "$cache/stamp" 2>/dev/null)" = "$want" ]; then
	echo "jupyter-server: $cache matches debian-packages.txt"
	exit 0
fi
pkgs=$(grep -v '^#' "$list" | grep -v '^$')
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
rm -rf "$cache.tmp"
mkdir -p "$cache.tmp/debs" "$cache.tmp/root"
cd "$cache.tmp/debs"
# NB: apt-get download needs the package lists; on a machine that never ran
# apt-get update it finds nothing, so update once and try again.
# shellcheck disable=SC2086
if ! apt-get download -qq $pkgs >/dev/null 2>&1; then
	echo "jupyter-server: apt-get update (package lists missing or stale)"
	$sudo apt-get update -qq
	apt-get download -qq $pkgs
fi
for deb in ./*.deb; do
	dpkg -x "$deb" "$cache.tmp/root"
done
rm -rf "$cache.tmp/debs"
echo "$want" > "$cache.tmp/stamp"
rm -rf "$cache"
mv "$cache.tmp" "$cache"
echo "jupyter-server: unpacked $(echo $pkgs | wc -w) Debian packages into $cache"
