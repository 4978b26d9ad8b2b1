// SPDX-License-Identifier: MIT
/*
 * zcbench: the C side of the benchmarks, issuing the same ioctls as the
 * TypeScript API does, to measure what Node costs on top.
 *
 *   zcbench cycle DOMID REFS_FILE WIDTH HEIGHT CYCLES
 *       FROM_REFS, PRIME export, vgem import, GEM_CLOSE x2, close, WAIT_FREE
 *   zcbench import DOMID REFS_FILE PAGES CYCLES
 *       the same without the vgem import (the kernel's import cost alone):
 *       FROM_REFS of the first PAGES refs as 1024 x PAGES x 32 bpp, export,
 *       GEM_CLOSE, close, WAIT_FREE
 *   zcbench gntmap DOMID REFS_FILE PAGES CYCLES
 *       gntdev MAP_GRANT_REF + mmap + touch + munmap + UNMAP (the hypercall floor)
 *   zcbench poll CYCLES
 *       one poll(2) of /dev/null with no wait per cycle: what a cheap
 *       syscall costs in a small C process (B1 steps compares Node's)
 *   zcbench steps DOMID REFS_FILE WIDTH HEIGHT CYCLES 2018|fd
 *       the cycle in three timed steps, cut where the Node breakdown cuts it:
 *       import (FROM_REFS, export), vgem (PRIME import), teardown (both
 *       GEM_CLOSEs, close, then WAIT_FREE ("2018") or WAIT_FREE_FD with
 *       IF_BUSY ("fd"), as the addon's release does)
 *
 * XZC_ZCBENCH_THREADS=N starts N idle threads first: the kernel takes its
 * slower paths for a process whose files and mm are shared by threads (as
 * Node's are), e.g. fdget's reference count.
 *
 * REFS_FILE holds one decimal grant reference per line. Prints one line per
 * cycle: the cycle's wall time in nanoseconds (steps: three times).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

typedef uint32_t grant_ref_t;
typedef uint16_t domid_t;
#include <xen/gntdev.h>

#include "drm_uapi.h"
#include "xen_zcopy_drm.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "zcbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int xioctl(int fd, unsigned long req, void *arg)
{
	int ret;

	do {
		ret = ioctl(fd, req, arg);
	} while (ret < 0 && errno == EINTR);
	return ret;
}

static int open_drm(const char *driver)
{
	char path[64], name[64];

	for (int i = 0; i < 16; i++) {
		struct drm_version v = { 0 };
		int fd;

		snprintf(path, sizeof(path), "/dev/dri/card%d", i);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		v.name = name;
		v.name_len = sizeof(name) - 1;
		memset(name, 0, sizeof(name));
		if (xioctl(fd, DRM_IOCTL_VERSION, &v) == 0 && !strcmp(name, driver))
			return fd;
		close(fd);
	}
	errno = ENODEV;
	die(driver);
	return -1;
}

static uint32_t *read_refs(const char *file, uint32_t *count)
{
	FILE *f = fopen(file, "r");
	uint32_t *refs = NULL, n = 0, cap = 0;
	unsigned long v;

	if (!f)
		die(file);
	while (fscanf(f, "%lu", &v) == 1) {
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			refs = realloc(refs, cap * sizeof(*refs));
			if (!refs)
				die("realloc");
		}
		refs[n++] = (uint32_t)v;
	}
	fclose(f);
	*count = n;
	return refs;
}

/*
 * The import cycle, `cycles` times: FROM_REFS, PRIME export, (vgem import,)
 * GEM_CLOSEs, close, then WAIT_FREE or WAIT_FREE_FD with IF_BUSY (with_fd).
 * Prints each cycle's time, or with per_step its three steps' (import, vgem
 * import, teardown; the clock is read between steps only then).
 */
static int cycle(uint32_t domid, uint32_t *refs, uint32_t n, uint32_t w, uint32_t h, int cycles,
		 int with_vgem, int with_fd, int per_step)
{
	int zc = open_drm(XENDRM_ZCOPY_DRIVER_NAME), vgem = with_vgem ? open_drm("vgem") : -1;

	for (int c = 0; c < cycles; c++) {
		struct drm_xen_zcopy_dumb_from_refs fr = { 0 };
		struct drm_prime_handle exp = { 0 }, imp = { 0 };
		struct drm_gem_close gc = { 0 };
		uint64_t t0 = now_ns(), t1 = 0, t2 = 0;

		fr.num_grefs = n;
		fr.grefs = refs;
		fr.otherend_id = domid;
		fr.dumb.width = w;
		fr.dumb.height = h;
		fr.dumb.bpp = 32;
		if (xioctl(zc, DRM_IOCTL_XEN_ZCOPY_DUMB_FROM_REFS, &fr))
			die("FROM_REFS");
		exp.handle = fr.dumb.handle;
		exp.flags = DRM_CLOEXEC | DRM_RDWR;
		if (xioctl(zc, DRM_IOCTL_PRIME_HANDLE_TO_FD, &exp))
			die("PRIME_HANDLE_TO_FD");
		if (per_step)
			t1 = now_ns();
		if (with_vgem) {
			imp.fd = exp.fd;
			if (xioctl(vgem, DRM_IOCTL_PRIME_FD_TO_HANDLE, &imp))
				die("PRIME_FD_TO_HANDLE");
			if (per_step)
				t2 = now_ns();
			gc.handle = imp.handle;
			if (xioctl(vgem, DRM_IOCTL_GEM_CLOSE, &gc))
				die("GEM_CLOSE vgem");
		}
		gc.handle = fr.dumb.handle;
		if (xioctl(zc, DRM_IOCTL_GEM_CLOSE, &gc))
			die("GEM_CLOSE zcopy");
		close(exp.fd);
		if (with_fd) {
			struct drm_xen_zcopy_dumb_wait_free_fd wf = {
				.wait_handle = fr.wait_handle,
				.flags = DRM_XEN_ZCOPY_WAIT_FREE_FD_IF_BUSY,
			};

			if (xioctl(zc, DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE_FD, &wf))
				die("WAIT_FREE_FD");
			if (wf.fd >= 0)
				die("WAIT_FREE_FD: not freed by the last close");
		} else {
			struct drm_xen_zcopy_dumb_wait_free wf = {
				.wait_handle = fr.wait_handle, .wait_to_ms = 3000,
			};

			if (xioctl(zc, DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE, &wf) && errno != ENOENT)
				die("WAIT_FREE");
		}
		if (per_step)
			printf("%llu %llu %llu\n", (unsigned long long)(t1 - t0),
			       (unsigned long long)(t2 - t1), (unsigned long long)(now_ns() - t2));
		else
			printf("%llu\n", (unsigned long long)(now_ns() - t0));
	}
	return 0;
}

static int gntmap(uint32_t domid, uint32_t *refs, uint32_t n, int cycles)
{
	int fd = open("/dev/xen/gntdev", O_RDWR | O_CLOEXEC);
	struct ioctl_gntdev_map_grant_ref *op = calloc(1, sizeof(*op) + n * sizeof(op->refs[0]));

	if (fd < 0 || !op)
		die("gntdev");
	for (int c = 0; c < cycles; c++) {
		struct ioctl_gntdev_unmap_grant_ref un = { 0 };
		volatile uint8_t *p;
		uint64_t t0 = now_ns();

		op->count = n;
		for (uint32_t i = 0; i < n; i++) {
			op->refs[i].domid = domid;
			op->refs[i].ref = refs[i];
		}
		if (xioctl(fd, IOCTL_GNTDEV_MAP_GRANT_REF, op))
			die("MAP_GRANT_REF");
		p = mmap(NULL, (size_t)n * 4096, PROT_READ, MAP_SHARED, fd, (off_t)op->index);
		if (p == MAP_FAILED)
			die("mmap");
		(void)p[0];
		munmap((void *)p, (size_t)n * 4096);
		un.index = op->index;
		un.count = n;
		if (xioctl(fd, IOCTL_GNTDEV_UNMAP_GRANT_REF, &un))
			die("UNMAP_GRANT_REF");
		printf("%llu\n", (unsigned long long)(now_ns() - t0));
	}
	return 0;
}

static void *idle_thread(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* this thread's time on a CPU (ns), as the scheduler counts it */
static unsigned long long schedstat_ns(void)
{
	unsigned long long ns;
	FILE *f = fopen("/proc/thread-self/schedstat", "r");

	if (!f || fscanf(f, "%llu", &ns) != 1)
		die("/proc/thread-self/schedstat");
	fclose(f);
	return ns;
}

int main(int argc, char **argv)
{
	const char *threads = getenv("XZC_ZCBENCH_THREADS");
	uint32_t n, *refs;

	for (int t = 0; threads && t < atoi(threads); t++) {
		pthread_t id;

		if (pthread_create(&id, NULL, idle_thread, NULL))
			die("pthread_create");
	}

	if (argc == 7 && !strcmp(argv[1], "cycle")) {
		refs = read_refs(argv[3], &n);
		return cycle((uint32_t)atoi(argv[2]), refs, n, (uint32_t)atoi(argv[4]),
			     (uint32_t)atoi(argv[5]), atoi(argv[6]), 1, 0, 0);
	}
	if (argc == 3 && !strcmp(argv[1], "poll")) {
		struct pollfd p = { .fd = open("/dev/null", O_RDONLY | O_CLOEXEC), .events = POLLIN };

		if (p.fd < 0)
			die("/dev/null");
		for (int c = 0; c < atoi(argv[2]); c++) {
			uint64_t t0 = now_ns();

			if (poll(&p, 1, 0) < 0)
				die("poll");
			printf("%llu\n", (unsigned long long)(now_ns() - t0));
		}
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "wake")) {
		/* CPU per wake-up of a process that sleeps and does nothing else */
		unsigned long long rt0, rt1;
		int cycles = atoi(argv[2]);

		if (cycles <= 0)
			die("wake: CYCLES");
		rt0 = schedstat_ns();
		for (int c = 0; c < cycles; c++)
			poll(NULL, 0, atoi(argv[3]));
		rt1 = schedstat_ns();
		printf("%llu\n", (rt1 - rt0) / (unsigned long long)cycles);
		return 0;
	}
	if (argc == 8 && !strcmp(argv[1], "steps")) {
		refs = read_refs(argv[3], &n);
		return cycle((uint32_t)atoi(argv[2]), refs, n, (uint32_t)atoi(argv[4]),
			     (uint32_t)atoi(argv[5]), atoi(argv[6]), 1, !strcmp(argv[7], "fd"), 1);
	}
	if (argc == 6 && !strcmp(argv[1], "import")) {
		refs = read_refs(argv[3], &n);
		if ((uint32_t)atoi(argv[4]) < n)
			n = (uint32_t)atoi(argv[4]);
		return cycle((uint32_t)atoi(argv[2]), refs, n, 1024, n, atoi(argv[5]), 0, 0, 0);
	}
	if (argc == 6 && !strcmp(argv[1], "gntmap")) {
		refs = read_refs(argv[3], &n);
		if ((uint32_t)atoi(argv[4]) < n)
			n = (uint32_t)atoi(argv[4]);
		return gntmap((uint32_t)atoi(argv[2]), refs, n, atoi(argv[5]));
	}
	fprintf(stderr, "usage: zcbench cycle DOMID REFS W H CYCLES | steps DOMID REFS W H CYCLES 2018|fd | poll CYCLES\n"
		"       | wake CYCLES MS\n"
		"       | import|gntmap DOMID REFS PAGES CYCLES\n");
	return 2;
}
