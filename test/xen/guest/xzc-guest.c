// SPDX-License-Identifier: MIT
/*
 * xzc-guest: the DomU side of the test fixture. Static, no Xen libraries: it
 * talks to xenstore through /dev/xen/xenbus and to the grant table through
 * /dev/xen/gntalloc and /dev/xen/gntdev.
 *
 *   xzc-guest serve          answer requests from Dom0 until killed
 *   xzc-guest pattern SEED N print the first N words of pattern(SEED) (self-check)
 *   xzc-guest image W H STYLE FRAME DOMID
 *                            write the demo image's raw XRGB8888 pixels to stdout
 *
 * Protocol (all keys relative to the guest's /local/domain/<domid>):
 *   data/ready = "1"                     once serving
 *   data/cmd   = "<seq> <op> <args...>"  written by Dom0, one request at a time
 *   data/res   = "<seq> ok <details>" | "<seq> err <message>"
 *   data/s<id>/n, data/s<id>/<k>         refs of shared buffer <id>, 200 per key in
 *                                        hex (xenstored limits a guest's values to
 *                                        2048 bytes)
 *   data/m<seq>/<k>                      refs Dom0 asks the guest to map
 *
 * Ops:
 *   share PAGES SEED WRITABLE DOMID  grant PAGES pages holding pattern(SEED)
 *                                    to DOMID; id = seq; details "<id> <pages>"
 *   check ID SEED                    compare buffer ID with pattern(SEED)
 *   fill ID SEED                     rewrite buffer ID with pattern(SEED)
 *   unshare ID                       end the grants of buffer ID and free it
 *   map DOMID COUNT MODE SEED        map COUNT refs (data/m<seq>) of DOMID;
 *                                    MODE verify|write|read0|hold: compare with
 *                                    or write pattern(SEED), or report word 0;
 *                                    hold keeps the mapping as id = seq
 *   unmap ID                         drop a held mapping
 *   draw ID W H STYLE FRAME          draw the demo image (see draw_demo) into
 *                                    buffer ID as W x H XRGB8888, pitch W * 4
 *   mapdraw DOMID COUNT W H STYLE FRAME
 *                                    map COUNT refs (data/m<seq>) of DOMID and
 *                                    draw the demo image into them
 *   ping                             "ok pong"
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

typedef uint32_t grant_ref_t;
typedef uint16_t domid_t;
#include <xen/gntalloc.h>
#include <xen/gntdev.h>

#define PAGE_SIZE 4096u
#define REFS_PER_KEY 200u
#define MAX_SLOTS 256
#define XS_MAX 4096u

/* The fixture's pattern: word i of a buffer filled with pattern(seed).
 * Mirrored exactly by test/xen/pattern.ts. */
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

static void fill_pattern(uint32_t *w, size_t words, uint32_t seed)
{
	for (size_t i = 0; i < words; i++)
		w[i] = pattern_word(seed, (uint32_t)i);
}

/* Index of the first word that differs from pattern(seed), or -1. */
static long first_mismatch(const uint32_t *w, size_t words, uint32_t seed)
{
	for (size_t i = 0; i < words; i++)
		if (w[i] != pattern_word(seed, (uint32_t)i))
			return (long)i;
	return -1;
}

/* ---- the demo image: a gradient with two lines of text ----
 * Mirrored exactly by test/xen/demo-image.ts. Style 0 is the frame a guest
 * frontend renders; style 1 is what the guest draws into a Dom0 buffer. */

static const char font_chars[] = "-0123456789ABCDEFMNOPRUWXYZ";
static const uint8_t font[][7] = {
	{ 0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00 },
	{ 0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e },
	{ 0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e },
	{ 0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f },
	{ 0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e },
	{ 0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02 },
	{ 0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e },
	{ 0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e },
	{ 0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08 },
	{ 0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e },
	{ 0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c },
	{ 0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11 },
	{ 0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e },
	{ 0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e },
	{ 0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c },
	{ 0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f },
	{ 0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10 },
	{ 0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11 },
	{ 0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11 },
	{ 0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e },
	{ 0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10 },
	{ 0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11 },
	{ 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e },
	{ 0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a },
	{ 0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11 },
	{ 0x11, 0x11, 0x0a, 0x04, 0x04, 0x04, 0x04 },
	{ 0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f }
};

static int glyph_bit(char c, uint32_t row, uint32_t col)
{
	const char *p = c ? strchr(font_chars, c) : NULL;

	if (!p || row > 6 || col > 4)
		return 0;
	return (font[p - font_chars][row] >> (4 - col)) & 1;
}

static void demo_lines(uint32_t style, uint32_t frame, uint32_t domid, char lines[2][32])
{
	if (style == 0) {
		snprintf(lines[0], 32, "XEN-ZCOPY");
		snprintf(lines[1], 32, "DOMU %u FRAME %u", domid, frame);
	} else {
		snprintf(lines[0], 32, "DOM0 BUFFER");
		snprintf(lines[1], 32, "DRAWN BY DOMU %u", domid);
	}
}

static uint32_t demo_pixel(uint32_t x, uint32_t y, uint32_t w, uint32_t h, uint32_t style,
			   uint32_t frame, char lines[2][32])
{
	uint32_t s = h / 60 ? h / 60 : 1, x0 = w / 16, y0 = h / 8;

	if (x >= x0 && y >= y0 && y < y0 + 20 * s) {
		uint32_t line = (y - y0) / (10 * s), cell = (x - x0) / (6 * s);

		if (cell < strlen(lines[line]) &&
		    glyph_bit(lines[line][cell], ((y - y0) % (10 * s)) / s, ((x - x0) % (6 * s)) / s))
			return 0x00ffffffu;
	}
	if (style == 0)
		return (x * 255 / (w - 1)) << 16 | (y * 255 / (h - 1)) << 8 | ((frame * 37) & 255);
	return 0x20u << 16 | (x * 255 / (w - 1)) << 8 | (y * 255 / (h - 1));
}

static void draw_demo(uint32_t *px, uint32_t w, uint32_t h, uint32_t style, uint32_t frame,
		      uint32_t domid)
{
	char lines[2][32];

	demo_lines(style, frame, domid, lines);
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++)
			px[(size_t)y * w + x] = demo_pixel(x, y, w, h, style, frame, lines);
}

/* ---- xenstore over /dev/xen/xenbus ---- */

struct xsd_sockmsg {
	uint32_t type, req_id, tx_id, len;
};

enum { XS_READ = 2, XS_WRITE = 11, XS_RM = 13, XS_ERROR = 16 };

static int xs_fd = -1;
static char xs_err[64] = "";

static int full_read(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One request; returns the reply payload (NUL-terminated, malloc'd) or NULL
 * with errno set (ENOENT when xenstore answered an error). */
static char *xs_request(uint32_t type, const char *a, size_t alen, const char *b, size_t blen)
{
	static uint32_t req_id;
	struct xsd_sockmsg h = { type, ++req_id, 0, (uint32_t)(alen + blen) };
	char buf[sizeof(h) + 2 * XS_MAX];
	struct xsd_sockmsg r;
	char *reply;

	if (alen + blen > XS_MAX) {
		errno = E2BIG;
		return NULL;
	}
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), a, alen);
	if (blen)
		memcpy(buf + sizeof(h) + alen, b, blen);
	if (write(xs_fd, buf, sizeof(h) + alen + blen) != (ssize_t)(sizeof(h) + alen + blen))
		return NULL;
	if (full_read(xs_fd, &r, sizeof(r)) < 0)
		return NULL;
	reply = calloc(1, r.len + 1);
	if (!reply || full_read(xs_fd, reply, r.len) < 0) {
		free(reply);
		return NULL;
	}
	if (r.type == XS_ERROR) {
		snprintf(xs_err, sizeof(xs_err), "%s", reply);
		free(reply);
		errno = EIO;
		return NULL;
	}
	return reply;
}

static char *xs_read(const char *path)
{
	return xs_request(XS_READ, path, strlen(path) + 1, NULL, 0);
}

static int xs_write(const char *path, const char *value)
{
	char *r = xs_request(XS_WRITE, path, strlen(path) + 1, value, strlen(value));

	if (!r)
		return -1;
	free(r);
	return 0;
}

static void xs_rm(const char *path)
{
	free(xs_request(XS_RM, path, strlen(path) + 1, NULL, 0));
}

/* ---- buffers ---- */

enum slot_kind { SLOT_FREE, SLOT_SHARED, SLOT_MAPPED };

struct slot {
	enum slot_kind kind;
	uint32_t id;
	uint32_t pages;
	uint64_t index; /* mmap offset on the gntalloc/gntdev fd */
	uint32_t *mem;
};

static struct slot slots[MAX_SLOTS];
static int gntalloc_fd = -1, gntdev_fd = -1;

static struct slot *slot_find(uint32_t id)
{
	for (int i = 0; i < MAX_SLOTS; i++)
		if (slots[i].kind != SLOT_FREE && slots[i].id == id)
			return &slots[i];
	return NULL;
}

static struct slot *slot_new(void)
{
	for (int i = 0; i < MAX_SLOTS; i++)
		if (slots[i].kind == SLOT_FREE)
			return &slots[i];
	return NULL;
}

static char res[XS_MAX];

static void reply(uint32_t seq, const char *fmt, ...)
{
	int n = snprintf(res, sizeof(res), "%u ", seq);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res + n, sizeof(res) - (size_t)n, fmt, ap);
	va_end(ap);
}

static int publish_refs(uint32_t id, const uint32_t *refs, uint32_t count)
{
	char key[64], val[REFS_PER_KEY * 9 + 1];

	for (uint32_t k = 0; k * REFS_PER_KEY < count; k++) {
		size_t off = 0;

		for (uint32_t i = k * REFS_PER_KEY; i < count && i < (k + 1) * REFS_PER_KEY; i++)
			off += (size_t)snprintf(val + off, sizeof(val) - off, "%s%x", off ? " " : "", refs[i]);
		snprintf(key, sizeof(key), "data/s%u/%u", id, k);
		if (xs_write(key, val) < 0)
			return -1;
	}
	snprintf(key, sizeof(key), "data/s%u/n", id);
	snprintf(val, sizeof(val), "%u", count);
	return xs_write(key, val);
}

static void op_share(uint32_t seq, uint32_t pages, uint32_t seed, int writable, uint32_t domid)
{
	struct ioctl_gntalloc_alloc_gref *op;
	struct ioctl_gntalloc_dealloc_gref dop;
	struct slot *s = slot_new();
	void *mem;

	if (!s || !pages) {
		reply(seq, "err %s", s ? "zero pages" : "too many buffers");
		return;
	}
	op = calloc(1, sizeof(*op) + pages * sizeof(uint32_t));
	if (!op) {
		reply(seq, "err ENOMEM");
		return;
	}
	op->domid = (uint16_t)domid;
	op->flags = writable ? GNTALLOC_FLAG_WRITABLE : 0;
	op->count = pages;
	if (ioctl(gntalloc_fd, IOCTL_GNTALLOC_ALLOC_GREF, op) < 0) {
		reply(seq, "err gntalloc %s", strerror(errno));
		free(op);
		return;
	}
	mem = mmap(NULL, (size_t)pages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		   gntalloc_fd, (off_t)op->index);
	if (mem == MAP_FAILED) {
		reply(seq, "err mmap %s", strerror(errno));
		goto err_dealloc;
	}
	fill_pattern(mem, (size_t)pages * PAGE_SIZE / 4, seed);
	if (publish_refs(seq, op->gref_ids, pages) < 0) {
		reply(seq, "err xenstore %s", errno == EIO ? xs_err : strerror(errno));
		munmap(mem, (size_t)pages * PAGE_SIZE);
		goto err_dealloc;
	}
	*s = (struct slot){ SLOT_SHARED, seq, pages, op->index, mem };
	reply(seq, "ok %u %u", seq, pages);
	free(op);
	return;

err_dealloc:
	dop = (struct ioctl_gntalloc_dealloc_gref){ op->index, pages };
	ioctl(gntalloc_fd, IOCTL_GNTALLOC_DEALLOC_GREF, &dop);
	free(op);
}

static void release_slot(struct slot *s)
{
	char key[64];

	munmap(s->mem, (size_t)s->pages * PAGE_SIZE);
	if (s->kind == SLOT_SHARED) {
		struct ioctl_gntalloc_dealloc_gref op = { s->index, s->pages };

		ioctl(gntalloc_fd, IOCTL_GNTALLOC_DEALLOC_GREF, &op);
		snprintf(key, sizeof(key), "data/s%u", s->id);
		xs_rm(key);
	} else {
		struct ioctl_gntdev_unmap_grant_ref op = { s->index, s->pages, 0 };

		ioctl(gntdev_fd, IOCTL_GNTDEV_UNMAP_GRANT_REF, &op);
	}
	s->kind = SLOT_FREE;
}

static void op_check(uint32_t seq, struct slot *s, uint32_t seed)
{
	long m = first_mismatch(s->mem, (size_t)s->pages * PAGE_SIZE / 4, seed);

	if (m < 0)
		reply(seq, "ok match");
	else
		reply(seq, "ok mismatch %ld 0x%08x 0x%08x", m, s->mem[m], pattern_word(seed, (uint32_t)m));
}

/* Reads COUNT refs that Dom0 wrote to data/m<seq>/<k>. */
static uint32_t *read_refs(uint32_t seq, uint32_t count)
{
	uint32_t *refs = calloc(count, sizeof(*refs));
	uint32_t got = 0;
	char key[64];

	for (uint32_t k = 0; refs && got < count; k++) {
		char *val, *p, *end;

		snprintf(key, sizeof(key), "data/m%u/%u", seq, k);
		val = xs_read(key);
		if (!val)
			break;
		for (p = val; got < count; p = end) {
			unsigned long v = strtoul(p, &end, 16);

			if (end == p)
				break;
			refs[got++] = (uint32_t)v;
		}
		free(val);
	}
	if (refs && got != count) {
		free(refs);
		return NULL;
	}
	return refs;
}

/* Image parameters of a mapdraw request (mode "draw" of op_map). */
static uint32_t draw_w, draw_h, draw_style;
static uint32_t my_domid;

static void op_map(uint32_t seq, uint32_t domid, uint32_t count, const char *mode, uint32_t seed)
{
	struct ioctl_gntdev_map_grant_ref *op;
	struct ioctl_gntdev_unmap_grant_ref uop;
	uint32_t *refs = count ? read_refs(seq, count) : NULL;
	int writable = strcmp(mode, "write") == 0 || strcmp(mode, "hold") == 0 ||
		       strcmp(mode, "draw") == 0;
	struct slot *s;
	void *mem;

	if (!refs) {
		reply(seq, "err cannot read %u refs", count);
		return;
	}
	op = calloc(1, sizeof(*op) + count * sizeof(op->refs[0]));
	if (!op) {
		reply(seq, "err ENOMEM");
		free(refs);
		return;
	}
	op->count = count;
	for (uint32_t i = 0; i < count; i++) {
		op->refs[i].domid = domid;
		op->refs[i].ref = refs[i];
	}
	free(refs);
	if (ioctl(gntdev_fd, IOCTL_GNTDEV_MAP_GRANT_REF, op) < 0) {
		reply(seq, "err gntdev map %s", strerror(errno));
		free(op);
		return;
	}
	mem = mmap(NULL, (size_t)count * PAGE_SIZE, PROT_READ | (writable ? PROT_WRITE : 0),
		   MAP_SHARED, gntdev_fd, (off_t)op->index);
	if (mem == MAP_FAILED) {
		reply(seq, "err gntdev mmap %s", strerror(errno));
		goto out_unmap;
	}
	if (strcmp(mode, "hold") == 0) {
		s = slot_new();
		if (s) {
			*s = (struct slot){ SLOT_MAPPED, seq, count, op->index, mem };
			reply(seq, "ok %u %u", seq, count);
			free(op);
			return;
		}
		reply(seq, "err too many buffers");
	} else if (strcmp(mode, "write") == 0) {
		fill_pattern(mem, (size_t)count * PAGE_SIZE / 4, seed);
		reply(seq, "ok written");
	} else if (strcmp(mode, "draw") == 0) {
		if ((uint64_t)draw_w * draw_h * 4 > (uint64_t)count * PAGE_SIZE || draw_w < 2 || draw_h < 2) {
			reply(seq, "err %ux%u does not fit %u pages", draw_w, draw_h, count);
		} else {
			draw_demo(mem, draw_w, draw_h, draw_style, seed, my_domid);
			reply(seq, "ok drawn");
		}
	} else if (strcmp(mode, "read0") == 0) {
		reply(seq, "ok 0x%08x", ((uint32_t *)mem)[0]);
	} else {
		long m = first_mismatch(mem, (size_t)count * PAGE_SIZE / 4, seed);

		if (m < 0)
			reply(seq, "ok match");
		else
			reply(seq, "ok mismatch %ld 0x%08x 0x%08x", m, ((uint32_t *)mem)[m],
			      pattern_word(seed, (uint32_t)m));
	}
	munmap(mem, (size_t)count * PAGE_SIZE);
out_unmap:
	uop = (struct ioctl_gntdev_unmap_grant_ref){ op->index, count, 0 };
	ioctl(gntdev_fd, IOCTL_GNTDEV_UNMAP_GRANT_REF, &uop);
	free(op);
}

static void handle(const char *cmd)
{
	char op[16] = "", mode[16] = "";
	uint32_t seq, a = 0, b = 0, c = 0, d = 0, e = 0, f = 0;
	struct slot *s;
	int n = sscanf(cmd, "%u %15s %u %u %u %u %u %u", &seq, op, &a, &b, &c, &d, &e, &f);

	if (n < 2) {
		reply(0, "err malformed request");
		return;
	}
	if (!strcmp(op, "ping")) {
		reply(seq, "ok pong");
	} else if (!strcmp(op, "share") && n >= 6) {
		op_share(seq, a, b, (int)c, d);
	} else if (!strcmp(op, "map") &&
		   sscanf(cmd, "%u %15s %u %u %15s %u", &seq, op, &a, &b, mode, &c) == 6) {
		op_map(seq, a, b, mode, c);
	} else if (!strcmp(op, "mapdraw") && n >= 8) {
		draw_w = c;
		draw_h = d;
		draw_style = e;
		op_map(seq, a, b, "draw", f);
	} else if (!strcmp(op, "draw") && n >= 7) {
		s = slot_find(a);
		if (!s)
			reply(seq, "err no buffer %u", a);
		else if ((uint64_t)b * c * 4 > (uint64_t)s->pages * PAGE_SIZE || b < 2 || c < 2)
			reply(seq, "err %ux%u does not fit %u pages", b, c, s->pages);
		else {
			draw_demo(s->mem, b, c, d, e, my_domid);
			reply(seq, "ok drawn");
		}
	} else if ((!strcmp(op, "check") || !strcmp(op, "fill")) && n >= 4) {
		s = slot_find(a);
		if (!s) {
			reply(seq, "err no buffer %u", a);
		} else if (!strcmp(op, "check")) {
			op_check(seq, s, b);
		} else {
			fill_pattern(s->mem, (size_t)s->pages * PAGE_SIZE / 4, b);
			reply(seq, "ok filled");
		}
	} else if ((!strcmp(op, "unshare") || !strcmp(op, "unmap")) && n >= 3) {
		s = slot_find(a);
		if (!s) {
			reply(seq, "err no buffer %u", a);
		} else {
			release_slot(s);
			reply(seq, "ok released");
		}
	} else {
		reply(seq, "err unknown request '%s'", cmd);
	}
}

static int serve(void)
{
	uint32_t last = 0, idle = 0;

	xs_fd = open("/dev/xen/xenbus", O_RDWR | O_CLOEXEC);
	gntalloc_fd = open("/dev/xen/gntalloc", O_RDWR | O_CLOEXEC);
	gntdev_fd = open("/dev/xen/gntdev", O_RDWR | O_CLOEXEC);
	if (xs_fd < 0 || gntalloc_fd < 0 || gntdev_fd < 0) {
		perror("xzc-guest: open /dev/xen/*");
		return 1;
	}
	{
		char *id = xs_read("domid");

		my_domid = id ? (uint32_t)strtoul(id, NULL, 10) : 0;
		free(id);
	}
	if (xs_write("data/ready", "1") < 0) {
		perror("xzc-guest: xenstore write");
		return 1;
	}
	printf("xzc-guest: serving\n");
	fflush(stdout);
	for (;;) {
		char *cmd = xs_read("data/cmd");
		uint32_t seq;

		struct timespec tick = { 0, 0 };

		if (cmd && sscanf(cmd, "%u", &seq) == 1 && seq != last) {
			last = seq;
			handle(cmd);
			xs_write("data/res", res);
			idle = 0;
		}
		free(cmd);
		/* Poll fast while Dom0 is busy with us, slowly when it is not. */
		tick.tv_nsec = (idle++ < 500 ? 2 : 50) * 1000 * 1000L;
		nanosleep(&tick, NULL);
	}
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "serve"))
		return serve();
	if (argc == 4 && !strcmp(argv[1], "pattern")) {
		uint32_t seed = (uint32_t)strtoul(argv[2], NULL, 0);
		unsigned long n = strtoul(argv[3], NULL, 0);

		for (unsigned long i = 0; i < n; i++)
			printf("%08x\n", pattern_word(seed, (uint32_t)i));
		return 0;
	}
	if (argc == 7 && !strcmp(argv[1], "image")) {
		uint32_t w = (uint32_t)strtoul(argv[2], NULL, 0), h = (uint32_t)strtoul(argv[3], NULL, 0);
		uint32_t *px = w >= 2 && h >= 2 && w <= 8192 && h <= 8192 ? calloc((size_t)w * h, 4) : NULL;

		if (!px)
			return 2;
		draw_demo(px, w, h, (uint32_t)strtoul(argv[4], NULL, 0), (uint32_t)strtoul(argv[5], NULL, 0),
			  (uint32_t)strtoul(argv[6], NULL, 0));
		fwrite(px, 4, (size_t)w * h, stdout);
		free(px);
		return 0;
	}
	fprintf(stderr, "usage: xzc-guest serve | pattern SEED N | image W H STYLE FRAME DOMID\n");
	return 2;
}
