#!/usr/bin/env bash
# infra/image/build.sh — builds the mcp-jupyter image (make image).
#
# With a Docker engine (`docker info` answers): docker build, base images from
# the registry (the Dockerfile's GO_IMAGE / BASE_IMAGE defaults).
# Without one: buildah as root (--storage-driver vfs --isolation chroot), and
# because no registry is reachable here, the two base images are made locally
# once and kept in buildah's store:
#   localhost/mcp-jupyter-debian:bookworm-slim  a bookworm minbase root
#       filesystem made by mmdebstrap from Debian's mirror (docs, man pages and
#       locales excluded the way debian:bookworm-slim does), imported as is;
#   localhost/mcp-jupyter-golang:<go version>-bookworm  that image plus this
#       machine's Go toolchain ($(go env GOROOT)); modules come from the Go
#       proxy during the build.
# IMAGE_REBUILD_BASES=1 remakes them. The rootfs tarball is cached in
# infra/image/.cache/ (gitignored).
#
# Environment: IMAGE (tag, default localhost/mcp-jupyter:dev), IMAGE_ENGINE
# (docker|buildah, default: docker if its engine answers), DEBIAN_MIRROR,
# BUILDAH_STORAGE_DRIVER (vfs), VERSION (default: git describe), EXTRA_CA_DIR
# (CAs the Go build stage trusts, default /usr/local/share/ca-certificates).
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE=${IMAGE:-localhost/mcp-jupyter:dev}
VERSION=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY=${DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
CACHE_DIR=infra/image/.cache
BASE_IMAGE_LOCAL=localhost/mcp-jupyter-debian:bookworm-slim
EXTRA_CA_DIR=${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}

say() { printf 'image: %s\n' "$*" >&2; }
die() { printf 'image: FAILED: %s\n' "$*" >&2; exit 1; }

engine=${IMAGE_ENGINE:-}
if [ -z "$engine" ]; then
	if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
		engine=docker
	elif command -v buildah >/dev/null 2>&1; then
		engine=buildah
	else
		die "neither a Docker engine (docker info fails) nor buildah is here: install buildah (apt-get install buildah mmdebstrap) or start Docker"
	fi
fi

started=$(date +%s)

if [ "$engine" = docker ]; then
	say "building $IMAGE with docker (bases from the registry)"
	docker build --build-arg VERSION="$VERSION" -t "$IMAGE" .
	say "built $IMAGE in $(( $(date +%s) - started ))s; size $(docker image inspect -f '{{.Size}}' "$IMAGE" | numfmt --to=iec)"
	exit 0
fi

[ "$(id -u)" = 0 ] || die "buildah with --isolation chroot needs root here (run: sudo make image)"
bah() { buildah --storage-driver "${BUILDAH_STORAGE_DRIVER:-vfs}" "$@"; }
have_image() { bah inspect --type image "$1" >/dev/null 2>&1; }

# The runtime base: a bookworm root filesystem, made once.
if [ -n "${IMAGE_REBUILD_BASES:-}" ] || ! have_image "$BASE_IMAGE_LOCAL"; then
	command -v mmdebstrap >/dev/null 2>&1 || die "mmdebstrap is missing: apt-get install mmdebstrap"
	mkdir -p "$CACHE_DIR"
	rootfs=$CACHE_DIR/bookworm-rootfs.tar
	if [ -n "${IMAGE_REBUILD_BASES:-}" ] || [ ! -s "$rootfs" ]; then
		say "making a bookworm root filesystem with mmdebstrap from $DEBIAN_MIRROR"
		# The path excludes stay in the root filesystem's dpkg configuration,
		# so the packages the Dockerfile installs on top skip them too.
		mmdebstrap --variant=minbase --include=ca-certificates \
			--dpkgopt='path-exclude=/usr/share/man/*' \
			--dpkgopt='path-exclude=/usr/share/info/*' \
			--dpkgopt='path-exclude=/usr/share/doc/*' \
			--dpkgopt='path-include=/usr/share/doc/*/copyright' \
			--dpkgopt='path-exclude=/usr/share/locale/*' \
			--dpkgopt='path-include=/usr/share/locale/locale.alias' \
			--aptopt='APT::Install-Recommends "false"' \
			--customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
			bookworm "$CACHE_DIR/bookworm-rootfs.partial.tar" \
			"deb $DEBIAN_MIRROR bookworm main" \
			"deb $DEBIAN_MIRROR bookworm-updates main" \
			"deb $DEBIAN_SECURITY bookworm-security main"
		mv "$CACHE_DIR/bookworm-rootfs.partial.tar" "$rootfs"
	fi
	say "importing $rootfs as $BASE_IMAGE_LOCAL"
	ctr=$(bah from scratch)
	bah add "$ctr" "$rootfs" /
	# What debian:bookworm-slim adds for images: apt drops the .deb files it
	# installed (else every `apt-get install` layer keeps them, ~270 MB for the
	# kernel packages), keeps no package caches and fetches no translations.
	apt_clean='"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"'
	printf '%s\n' "DPkg::Post-Invoke { $apt_clean; };" "APT::Update::Post-Invoke { $apt_clean; };" \
		'Dir::Cache::pkgcache "";' 'Dir::Cache::srcpkgcache "";' >"$CACHE_DIR/docker-clean"
	printf '%s\n' 'Acquire::Languages "none";' >"$CACHE_DIR/docker-no-languages"
	bah copy "$ctr" "$CACHE_DIR/docker-clean" "$CACHE_DIR/docker-no-languages" /etc/apt/apt.conf.d/ >/dev/null
	bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd /bin/bash "$ctr"
	bah commit --rm "$ctr" "$BASE_IMAGE_LOCAL" >/dev/null
fi

# The Go build stage's base: the runtime base plus this machine's Go.
command -v go >/dev/null 2>&1 || die "go is missing: the build stage uses this machine's Go toolchain"
goroot=$(go env GOROOT)
gover=$(go env GOVERSION)
GO_IMAGE_LOCAL=localhost/mcp-jupyter-golang:${gover#go}-bookworm
if [ -n "${IMAGE_REBUILD_BASES:-}" ] || ! have_image "$GO_IMAGE_LOCAL"; then
	say "making $GO_IMAGE_LOCAL from $BASE_IMAGE_LOCAL and $goroot"
	ctr=$(bah from --pull=never "$BASE_IMAGE_LOCAL")
	bah copy "$ctr" "$goroot" /usr/local/go >/dev/null
	# A machine whose egress goes through a TLS-intercepting proxy trusts its
	# CA (here: /usr/local/share/ca-certificates); `go mod download` in the
	# build stage needs it. Only this build-stage image gets it, never the
	# runtime image.
	if compgen -G "$EXTRA_CA_DIR/*.crt" >/dev/null; then
		say "adding the CAs of $EXTRA_CA_DIR to the Go build image (go mod download through this machine's proxy)"
		bah copy "$ctr" "$EXTRA_CA_DIR" /usr/local/share/ca-certificates >/dev/null
		bah run --isolation chroot "$ctr" -- update-ca-certificates >/dev/null
	fi
	bah config --env PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		--env GOPATH=/go --env GOTOOLCHAIN=local --workingdir /go "$ctr"
	bah commit --rm "$ctr" "$GO_IMAGE_LOCAL" >/dev/null
fi

say "building $IMAGE with buildah (vfs, chroot) on $GO_IMAGE_LOCAL and $BASE_IMAGE_LOCAL"
# --format docker keeps HEALTHCHECK (OCI images have no such field); --layers
# reuses the runtime stage's package layer while the package list is unchanged.
bah bud --isolation chroot --format docker --layers --force-rm --pull=never \
	--build-arg GO_IMAGE="$GO_IMAGE_LOCAL" \
	--build-arg BASE_IMAGE="$BASE_IMAGE_LOCAL" \
	--build-arg GOPROXY="$(go env GOPROXY)" \
	--build-arg VERSION="$VERSION" \
	-t "$IMAGE" .
say "built $IMAGE in $(( $(date +%s) - started ))s"
bah images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$IMAGE" | sed 's/^/image: size /' >&2
