#!/bin/busybox sh
# /init of the harness's Dom0 initramfs. Loads the modules, mounts the host's
# root read-only over 9p under a tmpfs overlay, mounts the results share on
# /xzc-out, runs /xzc-out/run.sh as root in that root, stores its status in
# /xzc-out/rc and powers off. Everything else comes from the host through 9p.
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

mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /mnt/lower ||
	say "FATAL: host root not mounted"
mount -t tmpfs -o size=1024m tmpfs /mnt/rw
mkdir -p /mnt/rw/upper /mnt/rw/work
mount -t overlay overlay -o lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work /mnt/root ||
	say "FATAL: overlay failed"
R=/mnt/root
mount -t proc proc $R/proc
mount -t sysfs sys $R/sys
mount -t devtmpfs dev $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
mount -t tmpfs tmpfs $R/run
mount -t debugfs debugfs $R/sys/kernel/debug 2>/dev/null
mount -t xenfs xenfs $R/proc/xen || say "xenfs mount failed"
mkdir -p $R/lib/modules/$KVER && mount --bind /lib/modules/$KVER $R/lib/modules/$KVER
mkdir -p $R/xzc-out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 xzcout $R/xzc-out || say "FATAL: results share not mounted"
say "root ready"

rc=125
if [ -n "$RUN" ]; then
	chroot $R /bin/sh "$RUN"
	rc=$?
fi
say "command exited with status $rc"
echo "$rc" >$R/xzc-out/rc
sync
poweroff -f
