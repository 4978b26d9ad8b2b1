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
 *
 * Display frontend (drm_xen_front) and a guest DRM app: raw KMS ioctls on
 * /dev/dri/card0. Every call is bounded (the frontend answers each ioctl
 * within ~3 s; flip events are awaited at most FLIP_WAIT_MS); errors reply
 * "err <what> <errno>" (<what> one word, e.g. CREATE_DUMB, <errno> a number).
 *   loadfront                        start `busybox insmod drm_xen_front.ko` in
 *                                    the background (it blocks up to 30 s while
 *                                    a vdispl device waits for its backend);
 *                                    "ok <pid>" at once
 *   dstat                            "ok <card0> <insmod>": card0 1|0 (whether
 *                                    /dev/dri/card0 exists), insmod none|running|
 *                                    exit:<status>|signal:<sig>
 *   dopen CONN                       open card0 (becoming DRM master), pick the
 *                                    CONN'th connector, its CRTC and first mode:
 *                                    "ok <connector id> <crtc id> <W> <H>
 *                                    <vrefresh> <connection 1=connected>"
 *   dbuf W H                         CREATE_DUMB (32 bpp) + MAP_DUMB + mmap:
 *                                    "ok <id> <pitch> <size>" (id = GEM handle)
 *   ddraw ID FRAME [KIND]            draw frame FRAME into buffer ID: KIND 0
 *                                    (default) the demo image, style 0, this
 *                                    domid (demo-image.ts renderDemo), row by
 *                                    row at the buffer's pitch; KIND 1 the words
 *                                    of pattern(FRAME) over the whole buffer
 *                                    (pattern.ts); "ok drawn"
 *   dfb ID                           ADDFB (XRGB8888: depth 24, bpp 32): "ok <fb>"
 *   dset FB                          SETCRTC: the CRTC shows FB with the mode on
 *                                    the connector; FB 0 turns the CRTC off; "ok"
 *   dflip FB                         PAGE_FLIP with DRM_MODE_PAGE_FLIP_EVENT, wait
 *                                    for its flip-complete event: "ok <ms>" (time
 *                                    from the ioctl to the event, 3 decimals)
 *   dloop N W H                      two W x H buffers (0 0: the mode's size), each
 *                                    with an fb; if no dset/dloop set the CRTC yet,
 *                                    SETCRTC to buffer 1 (black) first; then for
 *                                    k = 0..N-1 draw frame k (KIND 0) into buffer
 *                                    k % 2, flip to it and wait for the event:
 *                                    "ok <N> <ms> <id0> <id1> <fb0> <fb1> <flip ms>
 *                                    <max flip ms>" (ms: the whole loop, drawing
 *                                    included; flip ms: the sum of the flips'
 *                                    ioctl-to-event times); on an error "err <what>
 *                                    <errno> frame <k>"; the buffers and fbs stay
 *                                    until drmfb/dfree/dclose
 *   drmfb FB                         RMFB; "ok"
 *   dfree ID                         munmap + DESTROY_DUMB; "ok"
 *   dclose                           RMFB every fb, free every buffer, close card0;
 *                                    "ok closed"
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "drm_uapi.h" /* native/: dumb-buffer structs and ioctl numbers */

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
	/* text scale: by height, but narrow frames keep a 17-character line whole */
	uint32_t s = h / 60 < w / 120 ? h / 60 : w / 120, x0 = w / 16, y0 = h / 8;

	if (!s)
		s = 1;

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

/* Rows of W pixels PITCH bytes apart; the bytes past W * 4 in a row are left alone. */
static void draw_demo_pitch(void *base, uint32_t w, uint32_t h, size_t pitch, uint32_t style,
			    uint32_t frame, uint32_t domid)
{
	char lines[2][32];

	demo_lines(style, frame, domid, lines);
	for (uint32_t y = 0; y < h; y++) {
		uint32_t *row = (uint32_t *)((char *)base + (size_t)y * pitch);

		for (uint32_t x = 0; x < w; x++)
			row[x] = demo_pixel(x, y, w, h, style, frame, lines);
	}
}

static void draw_demo(uint32_t *px, uint32_t w, uint32_t h, uint32_t style, uint32_t frame,
		      uint32_t domid)
{
	draw_demo_pitch(px, w, h, (size_t)w * 4, style, frame, domid);
}

/* ---- xenstore over /dev/xen/xenbus ---- */

struct xsd_sockmsg {
	uint32_t type, req_id, tx_id, len;
};

enum { XS_READ = 2, XS_WATCH = 4, XS_WRITE = 11, XS_RM = 13, XS_WATCH_EVENT = 15, XS_ERROR = 16 };

static int xs_fd = -1;
static char xs_err[64] = "";
/* a watch event came in (while waiting for a reply, or in serve()'s poll) */
static int xs_event;

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

/* One message from xenbus: its header in *r, its payload (NUL-terminated, malloc'd). */
static char *xs_message(struct xsd_sockmsg *r)
{
	char *payload;

	if (full_read(xs_fd, r, sizeof(*r)) < 0)
		return NULL;
	if (r->len > XS_MAX) {
		errno = EPROTO;
		return NULL;
	}
	payload = calloc(1, r->len + 1);
	if (!payload || full_read(xs_fd, payload, r->len) < 0) {
		free(payload);
		return NULL;
	}
	return payload;
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
	/* the reply, after any watch events queued before it */
	for (;;) {
		reply = xs_message(&r);
		if (!reply)
			return NULL;
		if (r.type != XS_WATCH_EVENT)
			break;
		xs_event = 1;
		free(reply);
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

/* ---- the guest DRM app: raw KMS ioctls on /dev/dri/card0 ----
 * The KMS structures are the kernel's (include/uapi/drm/drm_mode.h and drm.h),
 * written out here because the helper is static and has no libdrm; those the
 * addon also uses (dumb buffers, modes, resources, connectors, encoders,
 * events) come from native/drm_uapi.h. The asserts pin them for LP64. */

struct drm_mode_crtc {
	__u64 set_connectors_ptr;
	__u32 count_connectors;
	__u32 crtc_id, fb_id;
	__u32 x, y;
	__u32 gamma_size;
	__u32 mode_valid;
	struct drm_mode_modeinfo mode;
};

struct drm_mode_fb_cmd {
	__u32 fb_id, width, height, pitch, bpp, depth, handle;
};

struct drm_mode_crtc_page_flip {
	__u32 crtc_id, fb_id, flags, reserved;
	__u64 user_data;
};

#define DRM_IOCTL_MODE_SETCRTC		DRM_IOWR(0xA2, struct drm_mode_crtc)
#define DRM_IOCTL_MODE_ADDFB		DRM_IOWR(0xAE, struct drm_mode_fb_cmd)
#define DRM_IOCTL_MODE_PAGE_FLIP	DRM_IOWR(0xB0, struct drm_mode_crtc_page_flip)

_Static_assert(sizeof(struct drm_mode_modeinfo) == 68, "drm_mode_modeinfo layout");
_Static_assert(offsetof(struct drm_mode_modeinfo, vrefresh) == 24, "drm_mode_modeinfo layout");
_Static_assert(sizeof(struct drm_mode_card_res) == 64, "drm_mode_card_res layout");
_Static_assert(sizeof(struct drm_mode_get_connector) == 80, "drm_mode_get_connector layout");
_Static_assert(offsetof(struct drm_mode_get_connector, connection) == 60, "drm_mode_get_connector layout");
_Static_assert(sizeof(struct drm_mode_get_encoder) == 20, "drm_mode_get_encoder layout");
_Static_assert(sizeof(struct drm_mode_crtc) == 104, "drm_mode_crtc layout");
_Static_assert(offsetof(struct drm_mode_crtc, mode) == 36, "drm_mode_crtc layout");
_Static_assert(sizeof(struct drm_mode_fb_cmd) == 28, "drm_mode_fb_cmd layout");
_Static_assert(sizeof(struct drm_mode_crtc_page_flip) == 24, "drm_mode_crtc_page_flip layout");
_Static_assert(sizeof(struct drm_event) == 8, "drm_event layout");
_Static_assert(sizeof(struct drm_event_vblank) == 32, "drm_event_vblank layout");
_Static_assert(DRM_IOCTL_MODE_GETRESOURCES == 0xC04064A0, "DRM_IOCTL_MODE_GETRESOURCES");
_Static_assert(DRM_IOCTL_MODE_SETCRTC == 0xC06864A2, "DRM_IOCTL_MODE_SETCRTC");
_Static_assert(DRM_IOCTL_MODE_GETENCODER == 0xC01464A6, "DRM_IOCTL_MODE_GETENCODER");
_Static_assert(DRM_IOCTL_MODE_GETCONNECTOR == 0xC05064A7, "DRM_IOCTL_MODE_GETCONNECTOR");
_Static_assert(DRM_IOCTL_MODE_ADDFB == 0xC01C64AE, "DRM_IOCTL_MODE_ADDFB");
_Static_assert(DRM_IOCTL_MODE_RMFB == 0xC00464AF, "DRM_IOCTL_MODE_RMFB");
_Static_assert(DRM_IOCTL_MODE_PAGE_FLIP == 0xC01864B0, "DRM_IOCTL_MODE_PAGE_FLIP");

#define FRONT_KO	"kernel/drivers/gpu/drm/xen/drm_xen_front.ko"
#define DRM_CARD	"/dev/dri/card0"
#define DRM_MAX_BUFS	16
#define DRM_MAX_FBS	32
#define DRM_MAX_OBJS	32  /* CRTCs, connectors, encoders, fbs listed by GETRESOURCES */
#define DRM_MAX_MODES	64
#define FLIP_WAIT_MS	5000

/* The frontend module's insmod: none, running, or done with a wait status. */
static enum { FRONT_NONE, FRONT_RUNNING, FRONT_DONE } front_state;
static pid_t front_pid;
static int front_wstatus;

/* A dumb buffer mapped into the helper; handle 0 = free slot. */
struct dbuf {
	uint32_t handle, w, h, pitch;
	uint64_t size;
	void *mem;
};

static int drm_fd = -1;
static uint32_t drm_conn, drm_crtc, drm_scanout;
static struct drm_mode_modeinfo drm_mode;
static struct dbuf dbufs[DRM_MAX_BUFS];
static uint32_t dfbs[DRM_MAX_FBS]; /* 0 = free */
static uint64_t flip_seq;

/* Reaps finished children (the helper is the guest's PID 1). */
static void reap_children(void)
{
	pid_t p;
	int st;

	while ((p = waitpid(-1, &st, WNOHANG)) > 0)
		if (p == front_pid) {
			front_state = FRONT_DONE;
			front_wstatus = st;
		}
}

static void op_loadfront(uint32_t seq)
{
	struct utsname u;
	char path[256];
	pid_t p;

	reap_children();
	if (front_state == FRONT_RUNNING) {
		reply(seq, "err insmod-running %d", EBUSY);
		return;
	}
	if (uname(&u) < 0) {
		reply(seq, "err uname %d", errno);
		return;
	}
	snprintf(path, sizeof(path), "/lib/modules/%s/" FRONT_KO, u.release);
	if (access(path, R_OK) < 0) {
		reply(seq, "err drm_xen_front.ko %d", errno);
		return;
	}
	p = fork();
	if (p < 0) {
		reply(seq, "err fork %d", errno);
		return;
	}
	if (p == 0) {
		execl("/bin/busybox", "insmod", path, (char *)NULL);
		_exit(127);
	}
	front_pid = p;
	front_state = FRONT_RUNNING;
	reply(seq, "ok %d", (int)p);
}

static void op_dstat(uint32_t seq)
{
	int card;

	/* Reap first: an insmod seen done then had its chance to register card0. */
	reap_children();
	card = access(DRM_CARD, F_OK) == 0;
	if (front_state == FRONT_NONE)
		reply(seq, "ok %d none", card);
	else if (front_state == FRONT_RUNNING)
		reply(seq, "ok %d running", card);
	else if (WIFEXITED(front_wstatus))
		reply(seq, "ok %d exit:%d", card, WEXITSTATUS(front_wstatus));
	else
		reply(seq, "ok %d signal:%d", card, WIFSIGNALED(front_wstatus) ? WTERMSIG(front_wstatus) : 0);
}

/* An ioctl on card0, retried on EINTR/EAGAIN as libdrm does (bounded). */
static int drm_ioctl(unsigned long req, void *arg)
{
	int r = -1;

	for (int i = 0; i < 100; i++) {
		r = ioctl(drm_fd, req, arg);
		if (r == 0 || (errno != EINTR && errno != EAGAIN))
			break;
	}
	return r;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static void drm_close_all(void)
{
	for (int i = 0; i < DRM_MAX_FBS; i++)
		if (dfbs[i]) {
			unsigned int fb = dfbs[i];

			drm_ioctl(DRM_IOCTL_MODE_RMFB, &fb);
			dfbs[i] = 0;
		}
	for (int i = 0; i < DRM_MAX_BUFS; i++)
		if (dbufs[i].handle) {
			struct drm_mode_destroy_dumb d = { dbufs[i].handle };

			munmap(dbufs[i].mem, (size_t)dbufs[i].size);
			drm_ioctl(DRM_IOCTL_MODE_DESTROY_DUMB, &d);
			dbufs[i].handle = 0;
		}
	if (drm_fd >= 0)
		close(drm_fd);
	drm_fd = -1;
	drm_conn = drm_crtc = drm_scanout = 0;
}

/* Opens card0 and picks connector CONN, its CRTC and first mode; returns what
 * failed (errno in *err) or NULL with the reply's details in DETAILS. */
static const char *drm_open(uint32_t conn_index, char *details, size_t len, int *err)
{
	uint32_t crtcs[DRM_MAX_OBJS], conns[DRM_MAX_OBJS], encs[DRM_MAX_OBJS], fbs[DRM_MAX_OBJS];
	uint32_t conn_encs[DRM_MAX_OBJS];
	static struct drm_mode_modeinfo modes[DRM_MAX_MODES];
	struct drm_mode_card_res res = { 0 };
	struct drm_mode_get_connector c = { 0 };
	struct drm_mode_get_encoder e = { 0 };
	uint32_t ncrtcs;

	drm_fd = open(DRM_CARD, O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (drm_fd < 0) {
		*err = errno;
		return "open";
	}
	res.fb_id_ptr = (uintptr_t)fbs;
	res.crtc_id_ptr = (uintptr_t)crtcs;
	res.connector_id_ptr = (uintptr_t)conns;
	res.encoder_id_ptr = (uintptr_t)encs;
	res.count_fbs = res.count_crtcs = res.count_connectors = res.count_encoders = DRM_MAX_OBJS;
	if (drm_ioctl(DRM_IOCTL_MODE_GETRESOURCES, &res) < 0) {
		*err = errno;
		return "GETRESOURCES";
	}
	/* The kernel fills at most our counts and returns the real ones. */
	ncrtcs = res.count_crtcs < DRM_MAX_OBJS ? res.count_crtcs : DRM_MAX_OBJS;
	if (conn_index >= res.count_connectors || conn_index >= DRM_MAX_OBJS) {
		*err = ENOENT;
		return "connector";
	}
	/* First call with no room: counts only, and the connector is probed. */
	c.connector_id = conns[conn_index];
	if (drm_ioctl(DRM_IOCTL_MODE_GETCONNECTOR, &c) < 0) {
		*err = errno;
		return "GETCONNECTOR";
	}
	/* Second call: modes and encoders are copied only when all fit. */
	c = (struct drm_mode_get_connector){ .connector_id = conns[conn_index] };
	c.modes_ptr = (uintptr_t)modes;
	c.count_modes = DRM_MAX_MODES;
	c.encoders_ptr = (uintptr_t)conn_encs;
	c.count_encoders = DRM_MAX_OBJS;
	if (drm_ioctl(DRM_IOCTL_MODE_GETCONNECTOR, &c) < 0) {
		*err = errno;
		return "GETCONNECTOR";
	}
	if (c.count_modes == 0 || c.count_modes > DRM_MAX_MODES) {
		*err = c.count_modes ? E2BIG : ENOENT;
		return "modes";
	}
	if (c.count_encoders == 0 || c.count_encoders > DRM_MAX_OBJS) {
		*err = c.count_encoders ? E2BIG : ENOENT;
		return "encoders";
	}
	drm_conn = c.connector_id;
	drm_mode = modes[0];
	drm_crtc = 0;
	/* The encoder's current CRTC, else the first CRTC an encoder can drive. */
	for (uint32_t i = 0; i < c.count_encoders && !drm_crtc; i++) {
		e = (struct drm_mode_get_encoder){ .encoder_id = conn_encs[i] };
		if (drm_ioctl(DRM_IOCTL_MODE_GETENCODER, &e) < 0) {
			*err = errno;
			return "GETENCODER";
		}
		if (e.crtc_id) {
			drm_crtc = e.crtc_id;
			break;
		}
		for (uint32_t k = 0; k < ncrtcs && k < 32; k++)
			if (e.possible_crtcs & (1u << k)) {
				drm_crtc = crtcs[k];
				break;
			}
	}
	if (!drm_crtc) {
		*err = ENOENT;
		return "crtc";
	}
	snprintf(details, len, "%u %u %u %u %u %u", drm_conn, drm_crtc, drm_mode.hdisplay, drm_mode.vdisplay,
	      drm_mode.vrefresh, c.connection);
	return NULL;
}

static struct dbuf *dbuf_find(uint32_t id)
{
	for (int i = 0; id && i < DRM_MAX_BUFS; i++)
		if (dbufs[i].handle == id)
			return &dbufs[i];
	return NULL;
}

/* CREATE_DUMB + MAP_DUMB + mmap; returns what failed or NULL. */
static const char *dbuf_create(uint32_t w, uint32_t h, struct dbuf **out, int *err)
{
	struct drm_mode_create_dumb c = { .height = h, .width = w, .bpp = 32 };
	struct drm_mode_map_dumb m = { 0 };
	struct drm_mode_destroy_dumb d;
	struct dbuf *b = NULL;
	void *mem;

	for (int i = 0; i < DRM_MAX_BUFS && !b; i++)
		if (!dbufs[i].handle)
			b = &dbufs[i];
	if (!b) {
		*err = ENOSPC;
		return "buffers";
	}
	if (w < 2 || h < 2 || w > 8192 || h > 8192) {
		*err = EINVAL;
		return "size";
	}
	if (drm_ioctl(DRM_IOCTL_MODE_CREATE_DUMB, &c) < 0) {
		*err = errno;
		return "CREATE_DUMB";
	}
	d.handle = c.handle;
	m.handle = c.handle;
	if (drm_ioctl(DRM_IOCTL_MODE_MAP_DUMB, &m) < 0) {
		*err = errno;
		drm_ioctl(DRM_IOCTL_MODE_DESTROY_DUMB, &d);
		return "MAP_DUMB";
	}
	if (c.pitch < w * 4 || c.size < (uint64_t)c.pitch * h) {
		drm_ioctl(DRM_IOCTL_MODE_DESTROY_DUMB, &d);
		*err = EINVAL;
		return "dumb-layout";
	}
	mem = mmap(NULL, (size_t)c.size, PROT_READ | PROT_WRITE, MAP_SHARED, drm_fd, (off_t)m.offset);
	if (mem == MAP_FAILED) {
		*err = errno;
		drm_ioctl(DRM_IOCTL_MODE_DESTROY_DUMB, &d);
		return "mmap";
	}
	*b = (struct dbuf){ c.handle, w, h, c.pitch, c.size, mem };
	*out = b;
	return NULL;
}

/* Frame FRAME of a guest display buffer: KIND 0 the demo image (style 0), KIND 1
 * pattern(FRAME) over all SIZE bytes. Used by ddraw and the `frame` command. */
static int draw_frame(void *mem, uint64_t size, uint32_t w, uint32_t h, uint32_t pitch, uint32_t frame,
		      uint32_t kind, uint32_t domid)
{
	if (kind == 0)
		draw_demo_pitch(mem, w, h, pitch, 0, frame, domid);
	else if (kind == 1)
		fill_pattern(mem, (size_t)(size / 4), frame);
	else
		return -1;
	return 0;
}

static const char *fb_add(struct dbuf *b, uint32_t *fb_out, int *err)
{
	struct drm_mode_fb_cmd f = { .width = b->w, .height = b->h, .pitch = b->pitch, .bpp = 32,
				     .depth = 24, .handle = b->handle };
	for (int i = 0; i < DRM_MAX_FBS; i++)
		if (!dfbs[i]) {
			if (drm_ioctl(DRM_IOCTL_MODE_ADDFB, &f) < 0) {
				*err = errno;
				return "ADDFB";
			}
			dfbs[i] = f.fb_id;
			*fb_out = f.fb_id;
			return NULL;
		}
	*err = ENOSPC;
	return "fbs";
}

static const char *crtc_set(uint32_t fb, int *err)
{
	struct drm_mode_crtc c = { .crtc_id = drm_crtc, .fb_id = fb };
	uint32_t conn = drm_conn;

	if (fb) {
		c.set_connectors_ptr = (uintptr_t)&conn;
		c.count_connectors = 1;
		c.mode_valid = 1;
		c.mode = drm_mode;
	}
	if (drm_ioctl(DRM_IOCTL_MODE_SETCRTC, &c) < 0) {
		*err = errno;
		return "SETCRTC";
	}
	drm_scanout = fb;
	return NULL;
}

/* PAGE_FLIP to FB with an event; waits at most FLIP_WAIT_MS for that event. */
static const char *flip(uint32_t fb, double *ms, int *err)
{
	struct drm_mode_crtc_page_flip f = { .crtc_id = drm_crtc, .fb_id = fb,
					     .flags = DRM_MODE_PAGE_FLIP_EVENT, .user_data = ++flip_seq };
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (drm_ioctl(DRM_IOCTL_MODE_PAGE_FLIP, &f) < 0) {
		*err = errno;
		return "PAGE_FLIP";
	}
	for (;;) {
		double left = FLIP_WAIT_MS - ms_since(&t0);
		struct pollfd p = { drm_fd, POLLIN, 0 };
		char buf[1024];
		ssize_t r;
		int pr;

		if (left <= 0) {
			*err = ETIMEDOUT;
			return "flip-event";
		}
		pr = poll(&p, 1, (int)left + 1);
		if (pr < 0 && errno != EINTR) {
			*err = errno;
			return "poll";
		}
		if (pr <= 0)
			continue;
		r = read(drm_fd, buf, sizeof(buf));
		if (r < 0 && errno != EINTR && errno != EAGAIN) {
			*err = errno;
			return "read";
		}
		/* Whole events, one after another; stale ones (earlier flips) are skipped. */
		for (size_t off = 0; r > 0 && off + sizeof(struct drm_event) <= (size_t)r;) {
			struct drm_event ev;
			struct drm_event_vblank v;

			memcpy(&ev, buf + off, sizeof(ev));
			if (ev.length < sizeof(ev) || off + ev.length > (size_t)r)
				break;
			if (ev.type == DRM_EVENT_FLIP_COMPLETE && ev.length >= sizeof(v)) {
				memcpy(&v, buf + off, sizeof(v));
				if (v.user_data == f.user_data) {
					*ms = ms_since(&t0);
					drm_scanout = fb;
					return NULL;
				}
			}
			off += ev.length;
		}
	}
}

static void op_dloop(uint32_t seq, uint32_t n, uint32_t w, uint32_t h)
{
	struct dbuf *b[2] = { NULL, NULL };
	uint32_t fb[2] = { 0, 0 };
	struct timespec t0;
	const char *what = NULL;
	double ms, flip_total = 0, flip_max = 0;
	int err = 0;

	if (!w && !h) {
		w = drm_mode.hdisplay;
		h = drm_mode.vdisplay;
	}
	for (int i = 0; i < 2 && !what; i++) {
		what = dbuf_create(w, h, &b[i], &err);
		if (!what)
			what = fb_add(b[i], &fb[i], &err);
	}
	if (!what && !drm_scanout)
		what = crtc_set(fb[1], &err);
	if (what) {
		reply(seq, "err %s %d", what, err);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint32_t k = 0; k < n; k++) {
		struct dbuf *d = b[k % 2];

		draw_frame(d->mem, d->size, d->w, d->h, d->pitch, k, 0, my_domid);
		what = flip(fb[k % 2], &ms, &err);
		if (what) {
			reply(seq, "err %s %d frame %u", what, err, k);
			return;
		}
		flip_total += ms;
		flip_max = ms > flip_max ? ms : flip_max;
	}
	reply(seq, "ok %u %.3f %u %u %u %u %.3f %.3f", n, ms_since(&t0), b[0]->handle, b[1]->handle, fb[0],
	      fb[1], flip_total, flip_max);
}

static int fb_known(uint32_t fb)
{
	for (int i = 0; fb && i < DRM_MAX_FBS; i++)
		if (dfbs[i] == fb)
			return i;
	return -1;
}

/* The d* ops; returns 0 when OP is not one of them. */
static int handle_drm(uint32_t seq, const char *op, int nargs, uint32_t a, uint32_t b, uint32_t c)
{
	const char *what = NULL;
	char details[128];
	struct dbuf *d;
	double ms;
	int err = 0;

	if (!strcmp(op, "loadfront")) {
		op_loadfront(seq);
		return 1;
	}
	if (!strcmp(op, "dstat")) {
		op_dstat(seq);
		return 1;
	}
	if (!strcmp(op, "dclose")) {
		drm_close_all();
		reply(seq, "ok closed");
		return 1;
	}
	if (!strcmp(op, "dopen")) {
		if (drm_fd >= 0) {
			reply(seq, "err already-open %d", EBUSY);
		} else if ((what = drm_open(nargs >= 1 ? a : 0, details, sizeof(details), &err))) {
			drm_close_all();
			reply(seq, "err %s %d", what, err);
		} else {
			reply(seq, "ok %s", details);
		}
		return 1;
	}
	if (strcmp(op, "dbuf") && strcmp(op, "ddraw") && strcmp(op, "dfb") && strcmp(op, "dset") &&
	    strcmp(op, "dflip") && strcmp(op, "dloop") && strcmp(op, "drmfb") && strcmp(op, "dfree"))
		return 0;
	if (drm_fd < 0) {
		reply(seq, "err not-open %d", EBADF);
		return 1;
	}
	if (!strcmp(op, "dbuf") && nargs >= 2) {
		if ((what = dbuf_create(a, b, &d, &err)))
			reply(seq, "err %s %d", what, err);
		else
			reply(seq, "ok %u %u %llu", d->handle, d->pitch, (unsigned long long)d->size);
	} else if (!strcmp(op, "ddraw") && nargs >= 2) {
		d = dbuf_find(a);
		if (!d)
			reply(seq, "err no-buffer %d", ENOENT);
		else if (draw_frame(d->mem, d->size, d->w, d->h, d->pitch, b, nargs >= 3 ? c : 0, my_domid) < 0)
			reply(seq, "err kind %d", EINVAL);
		else
			reply(seq, "ok drawn");
	} else if (!strcmp(op, "dfb") && nargs >= 1) {
		uint32_t fb;

		d = dbuf_find(a);
		if (!d)
			reply(seq, "err no-buffer %d", ENOENT);
		else if ((what = fb_add(d, &fb, &err)))
			reply(seq, "err %s %d", what, err);
		else
			reply(seq, "ok %u", fb);
	} else if (!strcmp(op, "dset") && nargs >= 1) {
		if ((what = crtc_set(a, &err)))
			reply(seq, "err %s %d", what, err);
		else
			reply(seq, "ok");
	} else if (!strcmp(op, "dflip") && nargs >= 1) {
		if ((what = flip(a, &ms, &err)))
			reply(seq, "err %s %d", what, err);
		else
			reply(seq, "ok %.3f", ms);
	} else if (!strcmp(op, "dloop") && nargs >= 3) {
		op_dloop(seq, a, b, c);
	} else if (!strcmp(op, "drmfb") && nargs >= 1) {
		int i = fb_known(a);
		unsigned int fb = a;

		if (i < 0) {
			reply(seq, "err no-fb %d", ENOENT);
		} else if (drm_ioctl(DRM_IOCTL_MODE_RMFB, &fb) < 0) {
			reply(seq, "err RMFB %d", errno);
		} else {
			dfbs[i] = 0;
			/* Removing the fb on screen turns the CRTC off. */
			if (drm_scanout == a)
				drm_scanout = 0;
			reply(seq, "ok");
		}
	} else if (!strcmp(op, "dfree") && nargs >= 1) {
		d = dbuf_find(a);
		if (!d) {
			reply(seq, "err no-buffer %d", ENOENT);
		} else {
			struct drm_mode_destroy_dumb dd = { d->handle };

			munmap(d->mem, (size_t)d->size);
			d->handle = 0;
			if (drm_ioctl(DRM_IOCTL_MODE_DESTROY_DUMB, &dd) < 0)
				reply(seq, "err DESTROY_DUMB %d", errno);
			else
				reply(seq, "ok");
		}
	} else {
		reply(seq, "err missing-arguments %d", EINVAL);
	}
	return 1;
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
	if (handle_drm(seq, op, n - 2, a, b, c))
		return;
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
	uint32_t last = 0;

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
	/*
	 * Commands wake us through a watch on data/cmd: no polling, so an idle
	 * guest costs Dom0's xenstored nothing (under TCG a poll every 2 ms kept
	 * it busy a fifth of a vCPU, which every benchmark then measured).
	 */
	{
		char watch[64];
		int n = snprintf(watch, sizeof(watch), "/local/domain/%u/data/cmd", my_domid);
		char *r = xs_request(XS_WATCH, watch, (size_t)n + 1, "cmd", 4);

		if (!r) {
			perror("xzc-guest: xenstore watch");
			return 1;
		}
		free(r);
	}
	printf("xzc-guest: serving\n");
	fflush(stdout);
	for (;;) {
		struct pollfd pfd = { .fd = xs_fd, .events = POLLIN };
		char *cmd;
		uint32_t seq;

		/*
		 * Bounded: without an event, look again after a second anyway. What
		 * woke us is a watch event (no request is in flight here); data/cmd
		 * is read either way.
		 */
		if (!xs_event && poll(&pfd, 1, 1000) > 0) {
			struct xsd_sockmsg m;
			char *ev = xs_message(&m);

			if (!ev) {
				perror("xzc-guest: xenbus read");
				return 1;
			}
			free(ev);
		}
		xs_event = 0;
		reap_children();
		cmd = xs_read("data/cmd");
		if (cmd && sscanf(cmd, "%u", &seq) == 1 && seq != last) {
			last = seq;
			handle(cmd);
			xs_write("data/res", res);
		}
		free(cmd);
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
	if (argc == 8 && !strcmp(argv[1], "frame")) {
		uint32_t v[6];
		void *mem;
		size_t size;

		for (int i = 0; i < 6; i++)
			v[i] = (uint32_t)strtoul(argv[2 + i], NULL, 0);
		size = (size_t)v[2] * v[1];
		if (v[0] < 2 || v[1] < 2 || v[0] > 8192 || v[1] > 8192 || v[2] < v[0] * 4 || v[2] > 65536)
			return 2;
		mem = calloc(1, size);
		if (!mem || draw_frame(mem, size, v[0], v[1], v[2], v[3], v[4], v[5]) < 0)
			return 2;
		fwrite(mem, 1, size, stdout);
		free(mem);
		return 0;
	}
	fprintf(stderr, "usage: xzc-guest serve | pattern SEED N | image W H STYLE FRAME DOMID |\n"
			"       frame W H PITCH FRAME KIND DOMID\n");
	return 2;
}
