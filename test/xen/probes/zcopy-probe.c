// SPDX-License-Identifier: MIT
/*
 * zcopy-probe: Dom0-side probes of xen_drm_zcopy that Node cannot make
 * (process_vm_readv, vmsplice, O_DIRECT from a mapping, a userfaultfd-held
 * copy-out). Driven by test/xen/correctness.test.ts; one line of output per
 * step, exit status 0 when every check passed.
 *
 *   zcopy-probe umap ACCESS PAGES
 *       fd 3 is a dma-buf of PAGES pages. Maps it read-only and reads it
 *       back through ACCESS, comparing with a plain read of the mapping:
 *       procvm (process_vm_readv), odirect (O_DIRECT write to /dev/ram0,
 *       read back), vmsplice (into a pipe, read out), procmem
 *       (pread of /proc/self/mem); or zap: MADV_DONTNEED of the middle half
 *       (pages PAGES/4 up to PAGES - PAGES/4; PV only), which must lower
 *       the module's user_mapped_pages from PAGES by exactly that many (the
 *       MMU notifier unmaps their grants), then the rest is read again.
 *       Prints "ok BYTES" or "fail WHAT ERRNO".
 *
 *   zcopy-probe torefs ZCOPY_CARD VGEM_CARD DOMID PAGES
 *       Two vgem buffers of PAGES pages. TO_REFS of the first one to DOMID
 *       prints "granted REF..." and waits for a line on stdin; its zcopy
 *       handle is then closed (the refs return to the free list). TO_REFS of
 *       the second one writes its refs into a userfaultfd-registered page:
 *       while the kernel waits in that copy-out it prints "window" and waits
 *       for a line on stdin; then the page is unmapped, so the copy fails:
 *       "result ERRNO". Last, TO_REFS of the same handle again with a normal
 *       buffer: "retry ok" (nothing of the failed call was left behind).
 *
 *   zcopy-probe scanout KMS_CARD WIDTH HEIGHT SEED [hold]
 *       fd 3 is a dma-buf of a WIDTH x HEIGHT XRGB8888 buffer (pitch
 *       WIDTH * 4) that a guest filled with pattern(SEED). Imports it into
 *       the KMS device (vkms: it composes on the CPU, so it vmaps the
 *       buffer), makes it the primary plane's framebuffer in an atomic
 *       modeset of the first CRTC at WIDTHxHEIGHT with only the writeback
 *       connector on it, capturing into a dumb buffer, waits for the writeback
 *       fence and compares the capture with pattern(SEED), word by word
 *       (vkms writes the X byte of XRGB8888 as 0xff): "ok BYTES" or
 *       "fail WHAT ...". With hold it then prints "scanout" and waits for a
 *       line on stdin while the buffer is on screen, captures and compares
 *       once more ("again ok BYTES"), and tears down: plane and CRTC off,
 *       framebuffers removed, handles closed: "done".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "drm_uapi.h"
#include "xen_zcopy_drm.h"

#define PAGE 4096u

static int fail(const char *what, int err)
{
	printf("fail %s %s\n", what, strerrorname_np(err) ? strerrorname_np(err) : "?");
	return 1;
}

static int check(const uint8_t *want, const uint8_t *got, size_t len)
{
	if (memcmp(want, got, len) == 0) {
		printf("ok %zu\n", len);
		return 0;
	}
	for (size_t i = 0; i < len; i++)
		if (want[i] != got[i]) {
			printf("fail compare at %zu\n", i);
			break;
		}
	return 1;
}

/* The module's count of user-mapped grant pages, or -1. */
static long user_mapped_pages(void)
{
	FILE *f = fopen("/sys/devices/platform/xen_drm_zcopy.0/stats/user_mapped_pages", "r");
	long n = -1;

	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = -1;
		fclose(f);
	}
	return n;
}

static int umap(const char *access, unsigned int pages)
{
	size_t len = (size_t)pages * PAGE;
	uint8_t *map, *want, *got;

	map = mmap(NULL, len, PROT_READ, MAP_SHARED, 3, 0);
	if (map == MAP_FAILED)
		return fail("mmap", errno);
	want = malloc(len);
	if (!want || posix_memalign((void **)&got, PAGE, len))
		return fail("malloc", ENOMEM);
	memcpy(want, map, len);		/* the plain access: the PTEs themselves */
	memset(got, 0x5a, len);

	if (!strcmp(access, "procvm")) {
		struct iovec local = { got, len }, remote = { map, len };
		ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);

		if (n != (ssize_t)len)
			return fail("process_vm_readv", n < 0 ? errno : EIO);
	} else if (!strcmp(access, "odirect")) {
		int fd = open("/dev/ram0", O_RDWR | O_DIRECT);

		if (fd < 0)
			return fail("open /dev/ram0", errno);
		if (pwrite(fd, map, len, 0) != (ssize_t)len)
			return fail("O_DIRECT write", errno);
		if (pread(fd, got, len, 0) != (ssize_t)len)
			return fail("O_DIRECT read", errno);
		close(fd);
	} else if (!strcmp(access, "vmsplice")) {
		int p[2];
		size_t done = 0;

		if (pipe(p) < 0)
			return fail("pipe", errno);
		fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
		while (done < len) {
			size_t chunk = len - done < (1u << 16) ? len - done : (1u << 16);
			struct iovec iov = { map + done, chunk };
			ssize_t n = vmsplice(p[1], &iov, 1, 0), m = 0;

			if (n <= 0)
				return fail("vmsplice", n < 0 ? errno : EIO);
			while (m < n) {
				ssize_t r = read(p[0], got + done + m, n - m);

				if (r <= 0)
					return fail("pipe read", r < 0 ? errno : EIO);
				m += r;
			}
			done += n;
		}
	} else if (!strcmp(access, "procmem")) {
		int fd = open("/proc/self/mem", O_RDONLY);

		if (fd < 0)
			return fail("open /proc/self/mem", errno);
		if (pread(fd, got, len, (off_t)(uintptr_t)map) != (ssize_t)len)
			return fail("pread /proc/self/mem", errno);
		close(fd);
	} else if (!strcmp(access, "zap")) {
		size_t lo = (size_t)(pages / 4) * PAGE, hi = len - lo;
		long before = user_mapped_pages(), after;

		if (madvise(map + lo, hi - lo, MADV_DONTNEED))
			return fail("madvise", errno);
		after = user_mapped_pages();
		/* this mapping is the module's only one */
		if (before != (long)pages || before - after != (long)((hi - lo) / PAGE)) {
			printf("fail zap mapped %ld, unmapped %ld of %zu pages\n", before, before - after,
			       (hi - lo) / PAGE);
			return 1;
		}
		/* the zapped part is gone (touching it would fault); the rest still maps the guest */
		memcpy(got, map, lo);
		memcpy(got + lo, want + lo, hi - lo);
		memcpy(got + hi, map + hi, len - hi);
	} else {
		return fail("unknown access", EINVAL);
	}
	return check(want, got, len);
}

static int open_card(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		fail(path, errno);
		exit(1);
	}
	return fd;
}

/* A vgem buffer of `pages` pages imported into the zcopy device: its handle. */
static uint32_t vgem_import(int vgem, int zc, unsigned int pages)
{
	struct drm_mode_create_dumb dumb = { .width = pages * 1024, .height = 1, .bpp = 32 };
	struct drm_prime_handle exp = { 0 }, imp = { 0 };

	if (ioctl(vgem, DRM_IOCTL_MODE_CREATE_DUMB, &dumb) < 0)
		exit(fail("CREATE_DUMB", errno));
	exp.handle = dumb.handle;
	exp.flags = DRM_CLOEXEC | DRM_RDWR;
	if (ioctl(vgem, DRM_IOCTL_PRIME_HANDLE_TO_FD, &exp) < 0)
		exit(fail("PRIME_HANDLE_TO_FD", errno));
	imp.fd = exp.fd;
	if (ioctl(zc, DRM_IOCTL_PRIME_FD_TO_HANDLE, &imp) < 0)
		exit(fail("PRIME_FD_TO_HANDLE", errno));
	close(exp.fd);
	return imp.handle;
}

struct to_refs_call {
	int fd;
	struct drm_xen_zcopy_dumb_to_refs req;
	int err;
};

static void *to_refs_thread(void *arg)
{
	struct to_refs_call *c = arg;

	c->err = ioctl(c->fd, DRM_IOCTL_XEN_ZCOPY_DUMB_TO_REFS, &c->req) < 0 ? errno : 0;
	return NULL;
}

static void wait_stdin(void)
{
	char line[64];

	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		exit(fail("stdin closed", EPIPE));
}

static int torefs(const char *zcpath, const char *vgempath, unsigned int domid, unsigned int pages)
{
	int zc = open_card(zcpath), vgem = open_card(vgempath);
	uint32_t *refs = calloc(pages, sizeof(*refs));
	struct to_refs_call call = { .fd = zc };
	struct drm_gem_close close_a = { 0 };
	struct uffdio_register reg = { 0 };
	struct uffdio_api api = { .api = UFFD_API };
	struct pollfd pfd;
	struct uffd_msg msg;
	pthread_t thread;
	uint8_t *trap;
	int uffd;

	/* 1. a normal TO_REFS: which refs the next one will get */
	call.req = (struct drm_xen_zcopy_dumb_to_refs){
		.num_grefs = pages, .grefs = refs, .otherend_id = domid,
		.handle = vgem_import(vgem, zc, pages),
	};
	if (ioctl(zc, DRM_IOCTL_XEN_ZCOPY_DUMB_TO_REFS, &call.req) < 0)
		return fail("TO_REFS", errno);
	printf("granted");
	for (unsigned int i = 0; i < pages; i++)
		printf(" %u", refs[i]);
	printf("\n");
	wait_stdin();
	close_a.handle = call.req.handle;
	if (ioctl(zc, DRM_IOCTL_GEM_CLOSE, &close_a) < 0)	/* ends the grants */
		return fail("GEM_CLOSE", errno);

	/* 2. TO_REFS whose copy-out faults on a page userfaultfd holds */
	uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) < 0)
		return fail("userfaultfd", errno);
	trap = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (trap == MAP_FAILED)
		return fail("mmap", errno);
	reg.range.start = (uintptr_t)trap;
	reg.range.len = PAGE;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
		return fail("UFFDIO_REGISTER", errno);
	call.req = (struct drm_xen_zcopy_dumb_to_refs){
		.num_grefs = pages, .grefs = (uint32_t *)trap, .otherend_id = domid,
		.handle = vgem_import(vgem, zc, pages),
	};
	if (pthread_create(&thread, NULL, to_refs_thread, &call))
		return fail("pthread_create", EAGAIN);
	pfd = (struct pollfd){ .fd = uffd, .events = POLLIN };
	if (poll(&pfd, 1, 20000) != 1 || read(uffd, &msg, sizeof(msg)) != sizeof(msg) ||
	    msg.event != UFFD_EVENT_PAGEFAULT)
		return fail("no copy-out fault", ETIMEDOUT);
	printf("window\n");
	wait_stdin();
	/* the faulting copy now finds no mapping at all: EFAULT */
	munmap(trap, PAGE);
	close(uffd);
	pthread_join(thread, NULL);
	printf("result %s\n", call.err ? strerrorname_np(call.err) : "0");

	/* 3. the same handle again: nothing of the failed call is left */
	call.req.grefs = refs;
	if (ioctl(zc, DRM_IOCTL_XEN_ZCOPY_DUMB_TO_REFS, &call.req) < 0)
		return fail("retry TO_REFS", errno);
	printf("retry ok\n");
	close(vgem);
	close(zc);
	return call.err == EFAULT ? 0 : 1;
}

/* ---- scanout: a guest buffer on a KMS device, captured by writeback ---- */

/* Mirrors pattern_word() in guest/xzc-guest.c and test/xen/pattern.ts. */
static uint32_t pattern_word(uint32_t seed, uint32_t i)
{
	uint32_t x = seed * 0x9E3779B1u + i;

	x ^= x >> 16;
	x *= 0x85EBCA6Bu;
	x ^= x >> 13;
	x *= 0xC2B2AE35u;
	x ^= x >> 16;
	return x;
}

#define KMS_MAX_PROPS 64

/* Id (and current value) of the property NAME of a KMS object, 0 if none. */
static uint32_t kms_prop(int fd, uint32_t obj, uint32_t type, const char *name, uint64_t *value)
{
	uint32_t ids[KMS_MAX_PROPS];
	uint64_t vals[KMS_MAX_PROPS];
	struct drm_mode_obj_get_properties op = {
		.props_ptr = (uintptr_t)ids, .prop_values_ptr = (uintptr_t)vals,
		.count_props = KMS_MAX_PROPS, .obj_id = obj, .obj_type = type,
	};

	if (ioctl(fd, DRM_IOCTL_MODE_OBJ_GETPROPERTIES, &op) < 0 || op.count_props > KMS_MAX_PROPS)
		return 0;
	for (uint32_t i = 0; i < op.count_props; i++) {
		struct drm_mode_get_property p = { .prop_id = ids[i] };

		if (ioctl(fd, DRM_IOCTL_MODE_GETPROPERTY, &p) < 0)
			return 0;
		if (!strcmp(p.name, name)) {
			if (value)
				*value = vals[i];
			return ids[i];
		}
	}
	return 0;
}

/* An atomic request: (object, property, value) triples, grouped per object. */
struct kms_req {
	uint32_t objs[8], counts[8], props[32];
	uint64_t values[32];
	uint32_t nobjs, nprops;
	int bad;	/* a property was not found */
};

static void kms_add(struct kms_req *r, int fd, uint32_t obj, uint32_t type, const char *name,
		    uint64_t value)
{
	uint32_t prop = kms_prop(fd, obj, type, name, NULL);

	if (!prop) {
		printf("no property %s on object %u\n", name, obj);
		r->bad = 1;
		return;
	}
	if (!r->nobjs || r->objs[r->nobjs - 1] != obj) {
		r->objs[r->nobjs] = obj;
		r->counts[r->nobjs++] = 0;
	}
	r->counts[r->nobjs - 1]++;
	r->props[r->nprops] = prop;
	r->values[r->nprops++] = value;
}

static int kms_commit(int fd, struct kms_req *r, uint32_t flags)
{
	struct drm_mode_atomic a = {
		.flags = flags, .count_objs = r->nobjs, .objs_ptr = (uintptr_t)r->objs,
		.count_props_ptr = (uintptr_t)r->counts, .props_ptr = (uintptr_t)r->props,
		.prop_values_ptr = (uintptr_t)r->values,
	};

	if (r->bad)
		return EINVAL;
	return ioctl(fd, DRM_IOCTL_MODE_ATOMIC, &a) < 0 ? errno : 0;
}

struct scanout {
	int fd;
	uint32_t w, h, seed;
	uint32_t crtc, conn, wb, plane;
	uint32_t *wb_pixels;
	uint32_t wb_fb, wb_pitch;
};

/*
 * One writeback capture of what the CRTC shows (in the same commit as the
 * modeset when req already holds it), compared with pattern(seed).
 */
static int capture(struct scanout *so, struct kms_req *req, uint32_t flags, const char *label)
{
	int32_t fence = -1;
	struct pollfd pfd;
	int err, n;

	memset(so->wb_pixels, 0x5a, (size_t)so->wb_pitch * so->h);
	kms_add(req, so->fd, so->wb, DRM_MODE_OBJECT_CONNECTOR, "WRITEBACK_FB_ID", so->wb_fb);
	kms_add(req, so->fd, so->wb, DRM_MODE_OBJECT_CONNECTOR, "WRITEBACK_OUT_FENCE_PTR",
		(uintptr_t)&fence);
	err = kms_commit(so->fd, req, flags);
	if (err)
		return fail("atomic commit", err);
	if (fence < 0)
		return fail("writeback fence", EINVAL);
	pfd = (struct pollfd){ .fd = fence, .events = POLLIN };
	n = poll(&pfd, 1, 20000);
	close(fence);
	if (n <= 0)
		return fail("writeback fence wait", n < 0 ? errno : ETIMEDOUT);
	for (uint32_t y = 0; y < so->h; y++) {
		for (uint32_t x = 0; x < so->w; x++) {
			uint32_t got = so->wb_pixels[(size_t)y * (so->wb_pitch / 4) + x];
			uint32_t want = pattern_word(so->seed, y * so->w + x) | 0xff000000u;

			if (got != want) {
				printf("%sfail compare at pixel %u,%u: got %08x want %08x\n",
				       label, x, y, got, want);
				return 1;
			}
		}
	}
	printf("%sok %zu\n", label, (size_t)so->w * so->h * 4);
	return 0;
}

static int scanout(const char *card, uint32_t w, uint32_t h, uint32_t seed, int hold)
{
	struct scanout so = { .w = w, .h = h, .seed = seed };
	uint32_t crtcs[8], conns[16], planes[16], handle, mode_blob;
	struct drm_mode_modeinfo modes[256], *mode = NULL;
	struct drm_mode_card_res res = { 0 };
	struct drm_mode_get_plane_res pres = { 0 };
	struct drm_prime_handle prime = { .fd = 3 };
	struct drm_mode_create_dumb dumb = { .width = w, .height = h, .bpp = 32 };
	struct drm_mode_map_dumb map = { 0 };
	struct drm_mode_fb_cmd2 fb = { .width = w, .height = h, .pixel_format = DRM_FORMAT_XRGB8888 };
	struct drm_mode_fb_cmd2 wbfb = fb;
	struct drm_mode_create_blob blob = { 0 };
	struct kms_req req = { 0 };
	struct drm_gem_close gclose = { 0 };
	int rc;

	so.fd = open(card, O_RDWR | O_CLOEXEC);
	if (so.fd < 0)
		return fail("open card", errno);
	{
		struct drm_set_client_cap caps[] = {
			{ DRM_CLIENT_CAP_UNIVERSAL_PLANES, 1 }, { DRM_CLIENT_CAP_ATOMIC, 1 },
			{ DRM_CLIENT_CAP_WRITEBACK_CONNECTORS, 1 },
		};

		for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
			if (ioctl(so.fd, DRM_IOCTL_SET_CLIENT_CAP, &caps[i]) < 0)
				return fail("SET_CLIENT_CAP", errno);
	}
	res.crtc_id_ptr = (uintptr_t)crtcs;
	res.connector_id_ptr = (uintptr_t)conns;
	res.count_crtcs = 8;
	res.count_connectors = 16;
	if (ioctl(so.fd, DRM_IOCTL_MODE_GETRESOURCES, &res) < 0)
		return fail("GETRESOURCES", errno);
	if (!res.count_crtcs || res.count_crtcs > 8 || res.count_connectors > 16)
		return fail("resources", ERANGE);
	so.crtc = crtcs[0];
	for (uint32_t i = 0; i < res.count_connectors; i++) {
		struct drm_mode_get_connector c = { .connector_id = conns[i] };

		if (ioctl(so.fd, DRM_IOCTL_MODE_GETCONNECTOR, &c) < 0)	/* probes the modes */
			return fail("GETCONNECTOR", errno);
		if (c.connector_type == DRM_MODE_CONNECTOR_WRITEBACK) {
			so.wb = conns[i];
			continue;
		}
		if (so.conn || c.count_modes > 256)
			continue;
		c = (struct drm_mode_get_connector){ .connector_id = conns[i], .count_modes = c.count_modes,
						     .modes_ptr = (uintptr_t)modes };
		if (ioctl(so.fd, DRM_IOCTL_MODE_GETCONNECTOR, &c) < 0)
			return fail("GETCONNECTOR modes", errno);
		for (uint32_t m = 0; m < c.count_modes && !mode; m++)
			if (modes[m].hdisplay == w && modes[m].vdisplay == h)
				mode = &modes[m];
		if (mode)
			so.conn = conns[i];
	}
	if (!so.wb)
		return fail("no writeback connector", ENODEV);
	if (!mode)
		return fail("no connector with the mode", ENODEV);
	pres.plane_id_ptr = (uintptr_t)planes;
	pres.count_planes = 16;
	if (ioctl(so.fd, DRM_IOCTL_MODE_GETPLANERESOURCES, &pres) < 0)
		return fail("GETPLANERESOURCES", errno);
	for (uint32_t i = 0; i < pres.count_planes && i < 16 && !so.plane; i++) {
		struct drm_mode_get_plane p = { .plane_id = planes[i] };
		uint64_t type = 0;

		if (ioctl(so.fd, DRM_IOCTL_MODE_GETPLANE, &p) < 0)
			return fail("GETPLANE", errno);
		if ((p.possible_crtcs & 1) &&
		    kms_prop(so.fd, planes[i], DRM_MODE_OBJECT_PLANE, "type", &type) &&
		    type == DRM_PLANE_TYPE_PRIMARY)
			so.plane = planes[i];
	}
	if (!so.plane)
		return fail("no primary plane", ENODEV);

	/* the guest's buffer as a framebuffer: vkms vmaps it when the plane uses it */
	if (ioctl(so.fd, DRM_IOCTL_PRIME_FD_TO_HANDLE, &prime) < 0)
		return fail("PRIME_FD_TO_HANDLE", errno);
	handle = prime.handle;
	fb.handles[0] = handle;
	fb.pitches[0] = w * 4;
	if (ioctl(so.fd, DRM_IOCTL_MODE_ADDFB2, &fb) < 0)
		return fail("ADDFB2", errno);

	/* the writeback target */
	if (ioctl(so.fd, DRM_IOCTL_MODE_CREATE_DUMB, &dumb) < 0)
		return fail("CREATE_DUMB", errno);
	wbfb.handles[0] = dumb.handle;
	wbfb.pitches[0] = dumb.pitch;
	if (ioctl(so.fd, DRM_IOCTL_MODE_ADDFB2, &wbfb) < 0)
		return fail("ADDFB2 writeback", errno);
	so.wb_fb = wbfb.fb_id;
	so.wb_pitch = dumb.pitch;
	map.handle = dumb.handle;
	if (ioctl(so.fd, DRM_IOCTL_MODE_MAP_DUMB, &map) < 0)
		return fail("MAP_DUMB", errno);
	so.wb_pixels = mmap(NULL, dumb.size, PROT_READ | PROT_WRITE, MAP_SHARED, so.fd, map.offset);
	if (so.wb_pixels == MAP_FAILED)
		return fail("mmap dumb", errno);

	blob.data = (uintptr_t)mode;
	blob.length = sizeof(*mode);
	if (ioctl(so.fd, DRM_IOCTL_MODE_CREATEPROPBLOB, &blob) < 0)
		return fail("CREATEPROPBLOB", errno);
	mode_blob = blob.blob_id;

	kms_add(&req, so.fd, so.crtc, DRM_MODE_OBJECT_CRTC, "MODE_ID", mode_blob);
	kms_add(&req, so.fd, so.crtc, DRM_MODE_OBJECT_CRTC, "ACTIVE", 1);
	/*
	 * The writeback connector alone on the CRTC: vkms's encoders cannot be
	 * cloned (6.1.192's clone check refuses the virtual output next to it).
	 */
	kms_add(&req, so.fd, so.conn, DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID", 0);
	kms_add(&req, so.fd, so.plane, DRM_MODE_OBJECT_PLANE, "FB_ID", fb.fb_id);
	kms_add(&req, so.fd, so.plane, DRM_MODE_OBJECT_PLANE, "CRTC_ID", so.crtc);
	kms_add(&req, so.fd, so.plane, DRM_MODE_OBJECT_PLANE, "SRC_X", 0);
	kms_add(&req, so.fd, so.plane, DRM_MODE_OBJECT_PLANE, "SRC_Y", 0);
	kms_add(&req, so.fd, so.plane, DRM_MODE_OBJECT_PLANE, "SRC_W", (uint64_t)w << 16);
	kms_add(&req, so.fd, so.plane, DRM_MODE_OBJECT_PLANE, "SRC_H", (uint64_t)h << 16);
	kms_add(&req, so.fd, so.plane, DRM_MODE_OBJECT_PLANE, "CRTC_X", 0);
	kms_add(&req, so.fd, so.plane, DRM_MODE_OBJECT_PLANE, "CRTC_Y", 0);
	kms_add(&req, so.fd, so.plane, DRM_MODE_OBJECT_PLANE, "CRTC_W", w);
	kms_add(&req, so.fd, so.plane, DRM_MODE_OBJECT_PLANE, "CRTC_H", h);
	kms_add(&req, so.fd, so.wb, DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID", so.crtc);
	rc = capture(&so, &req, DRM_MODE_ATOMIC_ALLOW_MODESET, "");
	if (rc)
		return rc;

	if (hold) {
		char line[64];

		printf("scanout\n");
		if (!fgets(line, sizeof(line), stdin))
			return fail("stdin", EPIPE);
		req = (struct kms_req){ 0 };
		rc = capture(&so, &req, 0, "again ");
		if (rc)
			return rc;
	}

	/* off: the plane lets go of the framebuffer, vkms of its vmap */
	req = (struct kms_req){ 0 };
	kms_add(&req, so.fd, so.plane, DRM_MODE_OBJECT_PLANE, "FB_ID", 0);
	kms_add(&req, so.fd, so.plane, DRM_MODE_OBJECT_PLANE, "CRTC_ID", 0);
	kms_add(&req, so.fd, so.conn, DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID", 0);
	kms_add(&req, so.fd, so.wb, DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID", 0);
	kms_add(&req, so.fd, so.crtc, DRM_MODE_OBJECT_CRTC, "ACTIVE", 0);
	kms_add(&req, so.fd, so.crtc, DRM_MODE_OBJECT_CRTC, "MODE_ID", 0);
	rc = kms_commit(so.fd, &req, DRM_MODE_ATOMIC_ALLOW_MODESET);
	if (rc)
		return fail("atomic commit off", rc);
	{
		struct drm_mode_destroy_blob db = { mode_blob };

		if (ioctl(so.fd, DRM_IOCTL_MODE_DESTROYPROPBLOB, &db) < 0)
			return fail("DESTROYPROPBLOB", errno);
	}
	if (ioctl(so.fd, DRM_IOCTL_MODE_RMFB, &fb.fb_id) < 0 ||
	    ioctl(so.fd, DRM_IOCTL_MODE_RMFB, &wbfb.fb_id) < 0)
		return fail("RMFB", errno);
	munmap(so.wb_pixels, dumb.size);
	gclose.handle = handle;
	if (ioctl(so.fd, DRM_IOCTL_GEM_CLOSE, &gclose) < 0)
		return fail("GEM_CLOSE", errno);
	gclose.handle = dumb.handle;
	if (ioctl(so.fd, DRM_IOCTL_GEM_CLOSE, &gclose) < 0)
		return fail("GEM_CLOSE dumb", errno);
	close(so.fd);
	printf("done\n");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && !strcmp(argv[1], "umap"))
		return umap(argv[2], (unsigned int)strtoul(argv[3], NULL, 0));
	if (argc == 6 && !strcmp(argv[1], "torefs"))
		return torefs(argv[2], argv[3], (unsigned int)strtoul(argv[4], NULL, 0),
			      (unsigned int)strtoul(argv[5], NULL, 0));
	if ((argc == 6 || (argc == 7 && !strcmp(argv[6], "hold"))) && !strcmp(argv[1], "scanout"))
		return scanout(argv[2], (uint32_t)strtoul(argv[3], NULL, 0),
			       (uint32_t)strtoul(argv[4], NULL, 0), (uint32_t)strtoul(argv[5], NULL, 0),
			       argc == 7);
	fprintf(stderr, "usage: see the comment at the top of zcopy-probe.c\n");
	return 2;
}
