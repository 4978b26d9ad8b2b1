#!/bin/busybox sh
# /init of the arm64 harness's Dom0 initramfs. Loads the modules, builds the
# root: the extracted arm64 Debian (9p tag rootfs, read-only) under a tmpfs
# overlay, this repository at its host path (9p tag repo, read-only, its own
# tmpfs overlay) with the arm64 addon build mounted over build/, the artefact
# cache (tag cache) and the results share (tag xzcout) on /xzc-out. Runs
# /xzc-out/run.sh as root there, stores its status in /xzc-out/rc, powers off.
/bin/busybox --install -s /bin
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
say() { echo "xzc-init[$(cut -d' ' -f1 /proc/uptime)] $*"; }
arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p" | tail -n1; }
KVER=$(uname -r)
RUN=$(arg xzc.run)

while read -r ko; do
	# gntalloc's default limit (1024 pages) is below one 1080p frame.
	case $ko in */xen-gntalloc.ko) opt=limit=1048576 ;; *) opt= ;; esac
	insmod "/lib/modules/$KVER/$ko" $opt 2>/dev/null || say "insmod $ko failed"
done </modules.load

P9="trans=virtio,version=9p2000.L,msize=512000"
# overlay LOWER_TAG DIR: a read-only 9p share under a writable tmpfs at DIR
overlay() {
	mkdir -p /mnt/$1/lower /mnt/$1/rw "$2"
	mount -t 9p -o $P9,ro,cache=loose "$1" /mnt/$1/lower || say "FATAL: 9p share $1 not mounted"
	mount -t tmpfs -o size=1024m tmpfs /mnt/$1/rw
	mkdir -p /mnt/$1/rw/upper /mnt/$1/rw/work
	mount -t overlay overlay -o lowerdir=/mnt/$1/lower,upperdir=/mnt/$1/rw/upper,workdir=/mnt/$1/rw/work "$2" ||
		say "FATAL: overlay of $1 failed"
}
mkdir -p /mnt/out
mount -t 9p -o $P9 xzcout /mnt/out || say "FATAL: results share not mounted"
. /mnt/out/mounts.env

R=/mnt/root
overlay rootfs $R
mount -t proc proc $R/proc
mount -t sysfs sys $R/sys
mount -t devtmpfs dev $R/dev
mkdir -p $R/dev/pts $R/dev/shm
# xenconsoled needs devpts: without it every DomU dies at "console tty: timed out"
mount -t devpts -o ptmxmode=666 devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
mount -t tmpfs tmpfs $R/run
mount -t tmpfs -o size=512m tmpfs $R/tmp
mount -t debugfs debugfs $R/sys/kernel/debug 2>/dev/null
mount -t xenfs xenfs $R/proc/xen || say "xenfs mount failed"
mkdir -p $R/lib/modules/$KVER && mount --bind /lib/modules/$KVER $R/lib/modules/$KVER
overlay repo "$R$XZC_REPO"
mkdir -p "$R$XZC_CACHE"
mount -t 9p -o $P9,ro,cache=loose cache "$R$XZC_CACHE" || say "FATAL: cache share not mounted"
# the repository's build/ holds the host's x86-64 addon: show the arm64 one there
mkdir -p "$R$XZC_REPO/build"
mount --bind "$R$XZC_CACHE/addon/build" "$R$XZC_REPO/build" || say "addon bind mount failed"
mkdir -p $R/xzc-out
mount --move /mnt/out $R/xzc-out || say "FATAL: results share not moved"
# busybox applets for whatever the extracted root lacks, last in PATH
mkdir -p $R/opt/busybox && chroot $R /bin/busybox --install -s /opt/busybox
say "root ready"

rc=125
if [ -n "$RUN" ]; then
	chroot $R /usr/bin/env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/busybox /bin/sh "$RUN"
	rc=$?
fi
say "command exited with status $rc"
echo "$rc" >$R/xzc-out/rc
sync
poweroff -f
