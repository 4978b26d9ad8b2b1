#!/bin/busybox sh
# /init of the DomU fixture: load the grant drivers and the display frontend's
# dependencies (drm, drm_kms_helper, xen-front-pgdir-shbuf) and serve requests
# from Dom0 over xenstore (see guest/xzc-guest.c) until the domain is destroyed.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
KVER=$(uname -r)
while read -r ko; do
	# gntalloc's default limit (1024 pages) is below one 1080p frame.
	case $ko in */xen-gntalloc.ko) opt=limit=1048576 ;; *) opt= ;; esac
	# The display frontend's insmod blocks up to 30 s while a vdispl device waits
	# for its backend: xzc-guest loads it on request (op loadfront).
	case $ko in */drm_xen_front.ko) continue ;; esac
	insmod "/lib/modules/$KVER/$ko" $opt || echo "xzc-domu: insmod $ko failed"
done </modules.load
echo "xzc-domu: up after $(cut -d' ' -f1 /proc/uptime)s"
exec /bin/xzc-guest serve
