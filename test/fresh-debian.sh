#!/usr/bin/env bash
# test/fresh-debian.sh [--rebuild] [REV]
#
# Proves that a fresh Debian 12 (bookworm) with only Node.js plus what node-gyp
# needs (g++, make, python3; ca-certificates for the registry) runs
# `npm ci && npm run test:unit` green for REV (default HEAD) of this repository.
# In particular libdrm-dev is absent (asserted: `dpkg -l libdrm-dev` fails and
# /usr/include/libdrm does not exist), so the addon must not need it.
#
# How: a `debootstrap --variant=minbase bookworm` chroot (default
# /work/fresh-root, override with FRESH_ROOT=; must lie outside the repository)
# plus `apt-get install --no-install-recommends g++ make python3
# ca-certificates`. REV is exported with `git archive` into /build/xen-zcopy in
# the chroot (removed and re-exported on every run), then npm ci and the unit
# tests run there with a clean environment. Exits with their status after
# printing the last lines; the full log is kept in the chroot under /var/log.
#
# Node: Debian bookworm's own `nodejs` is Node 18, which satisfies neither
# `engines` (>= 20) nor vitest 4. So the HOST's Node is copied into the chroot:
# the node binary, its headers (/usr/include/node, used by node-gyp through
# nodedir=/usr, so nothing is downloaded from nodejs.org), the npm package
# directory (/usr/lib/node_modules/npm, which bundles node-gyp) and the
# npm/npx symlinks. The host must therefore have Node >= 20 laid out that way.
# The chroot's npm config is written from scratch: nodedir=/usr and
# cafile=/etc/ssl/certs/ca-certificates.crt (the chroot's ca-certificates).
# Locally added CAs of the host (/usr/local/share/ca-certificates/*.crt, e.g.
# a TLS-intercepting egress proxy's) are added to the chroot's trust store,
# since the chroot uses the host's network; they are public certificates, not
# build dependencies.
#
# Runs as root. Needs only debootstrap on the host (apt-get installed if
# missing) and network access to the Debian mirror (MIRROR=, default: the
# host's first `URIs:` in /etc/apt/sources.list.d/debian.sources, else
# http://deb.debian.org/debian) and to the npm registry.
# Idempotent: an existing, complete chroot is reused; --rebuild re-creates it.
#
# Time (measured on 2 shared cores): creating the chroot takes about 3 min
# (~ 680 MB, of which ~ 115 MB is the copied Node and npm; ~ 850 MB after a run
# with the npm cache and node_modules); each run (npm ci with the addon build,
# then vitest) about 1 min.
set -euo pipefail

usage() { echo "usage: $0 [--rebuild] [REV]" >&2; exit 2; }
log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'fresh-debian: %s\n' "$*" >&2; exit 1; }

REBUILD=0
REV=HEAD
for arg in "$@"; do
	case "$arg" in
	--rebuild) REBUILD=1 ;;
	-h | --help) usage ;;
	-*) usage ;;
	*) REV=$arg ;;
	esac
done

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot, mounts)"

REPO=$(git -C "$(dirname "$(readlink -f "$0")")" rev-parse --show-toplevel)
SHA=$(git -C "$REPO" rev-parse --verify --quiet "$REV^{commit}") || die "unknown revision: $REV"
ROOT=${FRESH_ROOT:-/work/fresh-root}
ROOT=$(readlink -m "$ROOT")
case "$ROOT/" in
"$REPO"/*) die "FRESH_ROOT ($ROOT) must lie outside the repository ($REPO)" ;;
/ | //) die "refusing FRESH_ROOT=/" ;;
esac
STAMP=$ROOT/.fresh-debian-complete
PACKAGES="g++ make python3 ca-certificates"

if [ -z "${MIRROR:-}" ]; then
	MIRROR=$(awk '$1 == "URIs:" { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi

# Host Node to copy in.
HOST_NODE=$(readlink -f "$(command -v node)") || die "no node on the host"
HOST_NPM_DIR=/usr/lib/node_modules/npm
[ -f "$HOST_NPM_DIR/bin/npm-cli.js" ] || die "no npm in $HOST_NPM_DIR on the host"
[ -f /usr/include/node/node_api.h ] || die "no Node headers in /usr/include/node on the host"
NODE_MAJOR=$("$HOST_NODE" -p 'process.versions.node.split(".")[0]')
[ "$NODE_MAJOR" -ge 20 ] || die "host Node is $("$HOST_NODE" -v); >= 20 needed"

# --- mounts --------------------------------------------------------------
mounts_under_root() { awk -v r="$ROOT" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts | sort -r; }
unmount_all() {
	local m
	for m in $(mounts_under_root); do umount -l "$m" 2>/dev/null || umount "$m" || true; done
}
mount_all() {
	mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
	mountpoint -q "$ROOT/sys" || mount -t sysfs sysfs "$ROOT/sys"
	mountpoint -q "$ROOT/dev" || mount --bind /dev "$ROOT/dev"
}
trap unmount_all EXIT

in_root() {
	chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		DEBIAN_FRONTEND=noninteractive "$@"
}

# --- the chroot ----------------------------------------------------------
create_root() {
	if ! command -v debootstrap >/dev/null; then
		log "installing debootstrap on the host"
		apt-get update -qq
		apt-get install -y -qq debootstrap >/dev/null
	fi
	if [ -e "$ROOT" ]; then
		log "removing $ROOT"
		unmount_all
		[ -z "$(mounts_under_root)" ] || die "still mounted under $ROOT: $(mounts_under_root)"
		rm -rf --one-file-system "$ROOT"
	fi
	log "debootstrap --variant=minbase bookworm $ROOT $MIRROR"
	debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >"$ROOT.debootstrap.log" 2>&1 ||
		{ tail -n 20 "$ROOT.debootstrap.log" >&2; die "debootstrap failed (log: $ROOT.debootstrap.log)"; }
	cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
	mount_all
	log "apt-get install --no-install-recommends $PACKAGES"
	in_root apt-get update -qq
	# shellcheck disable=SC2086
	in_root apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
	in_root apt-get clean

	# Locally added CAs of the host (network trust, see the header).
	local ca n=0
	for ca in /usr/local/share/ca-certificates/*.crt; do
		[ -f "$ca" ] || continue
		cp "$ca" "$ROOT/usr/local/share/ca-certificates/"
		n=$((n + 1))
	done
	[ "$n" = 0 ] || { log "adding $n local CA certificate(s) of the host"; in_root update-ca-certificates >/dev/null; }

	# The host's Node (see the header).
	log "copying the host's Node $("$HOST_NODE" -v) and npm $("$HOST_NODE" "$HOST_NPM_DIR/bin/npm-cli.js" -v)"
	install -m 755 "$HOST_NODE" "$ROOT/usr/bin/node"
	mkdir -p "$ROOT/usr/include" "$ROOT/usr/lib/node_modules"
	cp -a /usr/include/node "$ROOT/usr/include/"
	cp -a "$HOST_NPM_DIR" "$ROOT/usr/lib/node_modules/"
	ln -sfn ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/bin/npm"
	ln -sfn ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/bin/npx"
	cat >"$ROOT/root/.npmrc" <<-'EOF'
		nodedir=/usr
		cafile=/etc/ssl/certs/ca-certificates.crt
		fund=false
		audit=false
		update-notifier=false
	EOF
	echo "$PACKAGES" >"$STAMP"
}

if [ "$REBUILD" = 1 ] || [ ! -f "$STAMP" ]; then
	START=$(date +%s)
	create_root
	log "chroot ready in $(($(date +%s) - START)) s"
else
	log "reusing $ROOT (--rebuild to re-create)"
	cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
	mount_all
fi

# --- what "fresh" means: asserted, not assumed ---------------------------
if in_root dpkg -l libdrm-dev >/dev/null 2>&1; then die "libdrm-dev is installed in $ROOT"; fi
[ ! -e "$ROOT/usr/include/libdrm" ] || die "$ROOT/usr/include/libdrm exists"
in_root sh -c 'command -v g++ && command -v make && command -v python3' >/dev/null ||
	die "g++, make or python3 missing in $ROOT"
log "chroot: $(in_root sh -c '. /etc/os-release; echo "$PRETTY_NAME, Debian $(cat /etc/debian_version)"'), node $(in_root node -v), npm $(in_root npm -v), $(in_root g++ --version | head -n 1); libdrm-dev absent"

# --- the check -----------------------------------------------------------
log "exporting $SHA ($REV) into $ROOT/build/xen-zcopy"
rm -rf --one-file-system "$ROOT/build"
mkdir -p "$ROOT/build/xen-zcopy"
git -C "$REPO" archive --format=tar "$SHA" | tar -x -C "$ROOT/build/xen-zcopy"
rm -rf "$ROOT/root/.cache/node-gyp" # nodedir=/usr: nothing is expected there

LOG=/var/log/fresh-debian-${SHA:0:7}.log
log "npm ci && npm run test:unit (log: $ROOT$LOG)"
START=$(date +%s)
set +e
in_root bash -c 'cd /build/xen-zcopy && npm ci && npm run test:unit' >"$ROOT$LOG" 2>&1
STATUS=$?
set -e
echo "----- last lines of $ROOT$LOG -----"
tail -n 25 "$ROOT$LOG"
echo "-----"
if [ "$STATUS" = 0 ]; then
	log "PASS: ${SHA:0:7} ($REV) on fresh Debian 12 in $(($(date +%s) - START)) s"
else
	log "FAIL (status $STATUS): ${SHA:0:7} ($REV) on fresh Debian 12 in $(($(date +%s) - START)) s"
fi
exit "$STATUS"
