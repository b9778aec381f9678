#!/usr/bin/env bash
# infra/image/test.sh — runs the built image and checks it from inside (make image-test).
#
# Two containers of the image share one volume directory (mounted at
# /data/mcp, owned by 10001:10001 like a pod's fsGroup volume):
#   container 1: uid, doctor, MCP execute over stdio, serve under tini
#                (/health, the server's uid, SIGTERM drain within the grace);
#   container 2: a fresh container on the same volume sees container 1's
#                kernel and execution (the restart of a pod).
# The checks are infra/image/probe.py, run with the image's own python3 as the
# image's user; each prints PASS/FAIL. Then the image's size and what takes it.
# Exits non-zero when a check failed.
#
# Engine: docker when its engine answers, otherwise buildah (root, vfs, chroot
# isolation). Under chroot isolation a container has no PID namespace of its
# own, so the processes a run leaves behind (kernels outlive their server by
# design) are ended after each run, found by the container's root directory —
# as a pod's end ends them.
#
# Environment: IMAGE (default localhost/mcp-jupyter:dev), IMAGE_ENGINE,
# BUILDAH_STORAGE_DRIVER (vfs), IMAGE_MAX_MB (size the image must stay under, 1000),
# IMAGE_TEST_KEEP=1 keeps the volume directory (infra/image/.cache/volume.*) of a failed run.
set -uo pipefail
cd "$(dirname "$0")/../.."

IMAGE=${IMAGE:-localhost/mcp-jupyter:dev}
IMAGE_MAX_MB=${IMAGE_MAX_MB:-1000}
PROBE=$PWD/infra/image/probe.py

engine=${IMAGE_ENGINE:-}
if [ -z "$engine" ]; then
	if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then engine=docker; else engine=buildah; fi
fi
bah() { buildah --storage-driver "${BUILDAH_STORAGE_DRIVER:-vfs}" "$@"; }

fails=0
results=()
note() { printf 'image-test: %s\n' "$*"; }
# tally reads the probe's PASS/FAIL lines; a probe that failed without one is a FAIL too.
tally() {
	local name=$1 rc=$2 out=$3
	printf '%s\n' "$out"
	while IFS= read -r line; do
		case $line in PASS\ *|FAIL\ *) results+=("$line") ;; esac
		case $line in FAIL\ *) fails=$((fails + 1)) ;; esac
	done <<<"$out"
	if [ "$rc" != 0 ] && ! grep -q '^FAIL ' <<<"$out"; then
		results+=("FAIL $name: the probe exited $rc without a verdict")
		fails=$((fails + 1))
	fi
}

mkdir -p infra/image/.cache
vol=$(mktemp -d "$PWD/infra/image/.cache/volume.XXXXXX")
chown 10001:10001 "$vol"
chmod 0750 "$vol"
containers=()

# end_container_processes kills what a container's runs left behind: only
# processes whose root directory is that container's root file system
# (device:inode, which the probe prints; never this machine's own root).
end_container_processes() {
	local root=$1 pid n=0 ended=() i
	[ -n "$root" ] && [ "$root" != "$(stat -L -c '%d:%i' /)" ] || return 0
	for pid in /proc/[0-9]*; do
		if [ "$(stat -L -c '%d:%i' "$pid/root" 2>/dev/null)" = "$root" ]; then
			note "ending pid ${pid#/proc/} left in the container: $(tr '\0' ' ' <"$pid/cmdline" 2>/dev/null | cut -c1-100)"
			kill -KILL "${pid#/proc/}" 2>/dev/null && n=$((n + 1)) && ended+=("$pid")
		fi
	done
	# Gone, not only signalled: the next container's server must find them
	# dead (a killed but unreaped kernel still has its /proc entry).
	for pid in "${ended[@]}"; do
		for i in $(seq 100); do
			[ -e "$pid" ] && [ "$(awk '{print $3}' "$pid/stat" 2>/dev/null)" != Z ] || break
			sleep 0.1
		done
	done
	[ "$n" = 0 ] || note "ended $n process(es) left in the container (kernels outlive their server by design; a pod's end ends them)"
}

cleanup() {
	local c
	for c in "${containers[@]}"; do
		bah rm "$c" >/dev/null 2>&1
	done
	if [ "$fails" = 0 ] || [ -z "${IMAGE_TEST_KEEP:-}" ]; then rm -rf "$vol"; else note "kept the volume $vol"; fi
}
trap cleanup EXIT

# probe CONTAINER CHECK [ARGS]: run probe.py CHECK inside the container.
probe() {
	local ctr=$1
	shift
	local out rc
	if [ "$engine" = docker ]; then
		out=$(docker run --rm -v "$vol:/data/mcp" -v "$PROBE:/probe/probe.py:ro" --entrypoint /usr/bin/python3 \
			"$IMAGE" /probe/probe.py "$@" 2>&1)
	else
		out=$(bah run --isolation chroot -v "$vol:/data/mcp" -v "$PROBE:/probe/probe.py:ro" "$ctr" -- \
			/usr/bin/python3 /probe/probe.py "$@" 2>&1)
	fi
	rc=$?
	[ "$engine" = docker ] || end_container_processes "$(sed -n 's/^ROOT //p' <<<"$out" | head -1)"
	tally "$1" "$rc" "$(grep -v '^ROOT ' <<<"$out")"
}

new_container() {
	if [ "$engine" = docker ]; then echo docker; return; fi
	local ctr
	ctr=$(bah from --pull=never "$IMAGE") || return 1
	# buildah run mounts the image's VOLUME /data/mcp as an anonymous volume
	# beside our -v bind on the same path, and which one wins varies from run
	# to run: drop it from this working container (the image keeps it).
	bah config --volume /data/mcp- "$ctr" >/dev/null || return 1
	echo "$ctr"
}

if [ "$engine" = docker ]; then
	docker image inspect "$IMAGE" >/dev/null 2>&1 || { note "FAIL: no image $IMAGE: run make image first"; exit 1; }
	user=$(docker image inspect -f '{{.Config.User}}' "$IMAGE")
	size_bytes=$(docker image inspect -f '{{.Size}}' "$IMAGE")
else
	[ "$(id -u)" = 0 ] || { note "FAIL: buildah with chroot isolation needs root (sudo make image-test)"; exit 1; }
	bah inspect --type image "$IMAGE" >/dev/null 2>&1 || { note "FAIL: no image $IMAGE: run make image first"; exit 1; }
	user=$(bah inspect --type image --format '{{.Docker.Config.User}}' "$IMAGE")
	# NB: `buildah images` sums every layer's files on vfs, minutes for this
	# image; the du below measures the same content in seconds.
	size_bytes="(not asked: slow on vfs)"
fi
started=$(date +%s)

if [ "$user" = 10001:10001 ]; then
	results+=("PASS image-user: the image's USER is $user (numeric, so runAsNonRoot can verify it)")
else
	results+=("FAIL image-user: the image's USER is '$user', want 10001:10001"); fails=$((fails + 1))
fi

note "container 1 of $IMAGE ($engine), volume $vol"
c1=$(new_container) || { note "FAIL: cannot create a container of $IMAGE"; exit 1; }
[ "$engine" = docker ] || containers+=("$c1")
probe "$c1" uid
probe "$c1" doctor
probe "$c1" stdio
probe "$c1" serve-drain

note "container 2 of $IMAGE on the same volume (a restarted pod)"
c2=$(new_container) || { note "FAIL: cannot create a second container"; exit 1; }
[ "$engine" = docker ] || containers+=("$c2")
probe "$c2" after-restart image-drain-1

# The size, and what takes it: the root file system's content (du inside the
# container; what `docker images` calls the size, uncompressed) is what the
# limit applies to; buildah's own figure is printed beside it.
# One du per path: du given several counts each file once, under the first.
du_cmd='for d in /usr/lib/python3/dist-packages/plotly /usr/share/python3-plotly /usr/lib/python3/dist-packages /usr/lib/x86_64-linux-gnu /usr/share /usr/bin/gdb /usr/local/bin/mcp-jupyter /; do du -sxm "$d" 2>/dev/null; done'
if [ "$engine" = docker ]; then
	breakdown=$(docker run --rm --entrypoint sh "$IMAGE" -c "$du_cmd")
else
	breakdown=$(bah run --isolation chroot "$c2" -- sh -c "$du_cmd")
fi
note "what takes the space (MB, du):"
printf '  %s\n' "${breakdown//$'\n'/$'\n'  }"
rootfs_mb=$(awk '$2 == "/" {print $1}' <<<"$breakdown")
plotly_mb=$(awk '$2 ~ /plotly/ {s += $1} END {print s + 0}' <<<"$breakdown")
if [ -n "$rootfs_mb" ] && [ "$rootfs_mb" -le "$IMAGE_MAX_MB" ]; then
	results+=("PASS image-size: $IMAGE holds ${rootfs_mb} MB (limit ${IMAGE_MAX_MB} MB; $engine reports $size_bytes); plotly ${plotly_mb} MB of it")
else
	results+=("FAIL image-size: $IMAGE holds ${rootfs_mb:-?} MB, over the ${IMAGE_MAX_MB} MB limit ($engine reports $size_bytes); plotly ${plotly_mb} MB of it"); fails=$((fails + 1))
fi

echo
note "results ($(( $(date +%s) - started ))s):"
printf '  %s\n' "${results[@]}"
if [ "$fails" != 0 ]; then
	note "FAILED: $fails check(s)"
	exit 1
fi
note "all ${#results[@]} checks passed"
