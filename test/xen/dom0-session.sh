# Sourced by the generated run.sh in the harness's Dom0 (QEMU mode) before the
# command: starts the Xen toolstack and loads the project's kernel module, as a
# real Dom0 would have them.
XB=/usr/lib/xen-4.17/bin
xzc_uptime() { cut -d' ' -f1 /proc/uptime; }

mkdir -p /run/xen /run/xenstored /var/lib/xenstored /var/log/xen/console /var/lib/xen
XENSTORED_ROOTDIR=/run/xenstored $XB/xenstored --pid-file /run/xenstored.pid
i=0
until xenstore-read -s / >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -gt 200 ] && { echo "xzc: xenstored did not come up" >&2; break; }
	sleep 0.05
done
$XB/xen-init-dom0 >/dev/null
$XB/xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console

if [ -n "${XZC_KMOD:-}" ] && [ ! -d /sys/module/xen_drm_zcopy ]; then
	insmod "$XZC_KMOD" || echo "xzc: insmod $XZC_KMOD failed" >&2
fi
echo "xzc-session[$(xzc_uptime)] toolstack up${XZC_KMOD:+, module loaded}"
