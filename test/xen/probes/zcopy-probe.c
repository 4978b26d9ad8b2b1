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
 *       (pread of /proc/self/mem). Prints "ok BYTES" or "fail WHAT ERRNO".
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

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && !strcmp(argv[1], "umap"))
		return umap(argv[2], (unsigned int)strtoul(argv[3], NULL, 0));
	if (argc == 6 && !strcmp(argv[1], "torefs"))
		return torefs(argv[2], argv[3], (unsigned int)strtoul(argv[4], NULL, 0),
			      (unsigned int)strtoul(argv[5], NULL, 0));
	fprintf(stderr, "usage: see the comment at the top of zcopy-probe.c\n");
	return 2;
}
