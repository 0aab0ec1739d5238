/* SPDX-License-Identifier: MIT */
/*
 * The codec: one encoder and one decoder per message of wire.h, and the
 * frame checksum.  The only code in the tree that turns protocol integers
 * into little-endian bytes and back.
 *
 * Each message is written field by field through a cursor (struct wcur,
 * struct rcur) that never touches a byte past the buffer: a write or read
 * that would not fit is skipped and remembered, and the message's last
 * call (wcur_end, rcur_end) turns that into the size or the error.  The
 * field order below is the wire layout; the _Static_asserts in wire.h pin
 * each message's size.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "wire.h"

/* ---- cursors */

struct wcur {
	uint8_t *p;
	size_t cap, off;
};

struct rcur {
	const uint8_t *p;
	size_t len, off;
};

static void w_bytes(struct wcur *w, const void *src, size_t n)
{
	if (n <= w->cap && w->off <= w->cap - n)
		memmove(w->p + w->off, src, n); /* put_u64s works in place */
	w->off += n;
}

static void w_u8(struct wcur *w, uint8_t v)
{
	w_bytes(w, &v, 1);
}

static void w_u16(struct wcur *w, uint16_t v)
{
	v = htole16(v);
	w_bytes(w, &v, 2);
}

static void w_u32(struct wcur *w, uint32_t v)
{
	v = htole32(v);
	w_bytes(w, &v, 4);
}

static void w_u64(struct wcur *w, uint64_t v)
{
	v = htole64(v);
	w_bytes(w, &v, 8);
}

/* The bytes written, or -ENOBUFS when they did not all fit. */
static int w_end(const struct wcur *w)
{
	return w->off <= w->cap ? (int)w->off : -ENOBUFS;
}

/* Reads n bytes into dst; past the end, zeros (and rcur_end fails). */
static void r_bytes(struct rcur *r, void *dst, size_t n)
{
	if (n <= r->len && r->off <= r->len - n)
		memcpy(dst, r->p + r->off, n);
	else
		memset(dst, 0, n);
	r->off += n;
}

static uint8_t r_u8(struct rcur *r)
{
	uint8_t v;

	r_bytes(r, &v, 1);
	return v;
}

static uint16_t r_u16(struct rcur *r)
{
	uint16_t v;

	r_bytes(r, &v, 2);
	return le16toh(v);
}

static uint32_t r_u32(struct rcur *r)
{
	uint32_t v;

	r_bytes(r, &v, 4);
	return le32toh(v);
}

static uint64_t r_u64(struct rcur *r)
{
	uint64_t v;

	r_bytes(r, &v, 8);
	return le64toh(v);
}

/* The bytes read, or -EPROTO when the buffer ended first. */
static int r_end(const struct rcur *r)
{
	return r->off <= r->len ? (int)r->off : -EPROTO;
}

#define WCUR(buf, cap) { .p = (buf), .cap = (cap) }
#define RCUR(buf, len) { .p = (buf), .len = (len) }

/* ---- header and handshake */

int wire_put_hdr(void *buf, size_t cap, const struct wire_hdr *m)
{
	struct wcur w = WCUR(buf, cap);

	w_u32(&w, m->magic);
	w_u16(&w, m->version);
	w_u16(&w, m->op);
	w_u64(&w, m->req_id);
	w_u32(&w, m->status);
	w_u32(&w, m->len);
	w_u64(&w, m->csum);
	return w_end(&w);
}

int wire_get_hdr(const void *buf, size_t len, struct wire_hdr *m)
{
	struct rcur r = RCUR(buf, len);

	m->magic = r_u32(&r);
	m->version = r_u16(&r);
	m->op = r_u16(&r);
	m->req_id = r_u64(&r);
	m->status = r_u32(&r);
	m->len = r_u32(&r);
	m->csum = r_u64(&r);
	return r_end(&r);
}

int wire_put_hello(void *buf, size_t cap, const struct wire_hello *m)
{
	struct wcur w = WCUR(buf, cap);

	w_u16(&w, m->min_version);
	w_u16(&w, m->max_version);
	w_u32(&w, m->flags);
	w_bytes(&w, m->nonce, WIRE_NONCE);
	return w_end(&w);
}

int wire_get_hello(const void *buf, size_t len, struct wire_hello *m)
{
	struct rcur r = RCUR(buf, len);

	m->min_version = r_u16(&r);
	m->max_version = r_u16(&r);
	m->flags = r_u32(&r);
	r_bytes(&r, m->nonce, WIRE_NONCE);
	return r_end(&r);
}

int wire_put_mac(void *buf, size_t cap, const struct wire_mac *m)
{
	struct wcur w = WCUR(buf, cap);

	w_bytes(&w, m->mac, WIRE_MAC);
	return w_end(&w);
}

int wire_get_mac(const void *buf, size_t len, struct wire_mac *m)
{
	struct rcur r = RCUR(buf, len);

	r_bytes(&r, m->mac, WIRE_MAC);
	return r_end(&r);
}

/* ---- objects */

int wire_put_create(void *buf, size_t cap, const struct wire_create *m)
{
	struct wcur w = WCUR(buf, cap);

	w_u64(&w, m->size);
	w_u32(&w, m->chunk_size);
	w_u16(&w, m->name_len);
	w_u16(&w, m->flags);
	return w_end(&w);
}

int wire_get_create(const void *buf, size_t len, struct wire_create *m)
{
	struct rcur r = RCUR(buf, len);

	m->size = r_u64(&r);
	m->chunk_size = r_u32(&r);
	m->name_len = r_u16(&r);
	m->flags = r_u16(&r);
	return r_end(&r);
}

int wire_put_name(void *buf, size_t cap, const struct wire_name *m)
{
	struct wcur w = WCUR(buf, cap);

	w_u16(&w, m->name_len);
	for (int i = 0; i < 3; i++)
		w_u16(&w, m->pad[i]);
	return w_end(&w);
}

int wire_get_name(const void *buf, size_t len, struct wire_name *m)
{
	struct rcur r = RCUR(buf, len);

	m->name_len = r_u16(&r);
	for (int i = 0; i < 3; i++)
		m->pad[i] = r_u16(&r);
	return r_end(&r);
}

static void w_objinfo(struct wcur *w, const struct wire_objinfo *m)
{
	w_u64(w, m->id);
	w_u64(w, m->size);
	w_u32(w, m->chunk_size);
	w_u32(w, m->flags);
	w_u64(w, m->allocated);
	w_u64(w, m->mtime_ns);
}

static void r_objinfo(struct rcur *r, struct wire_objinfo *m)
{
	m->id = r_u64(r);
	m->size = r_u64(r);
	m->chunk_size = r_u32(r);
	m->flags = r_u32(r);
	m->allocated = r_u64(r);
	m->mtime_ns = r_u64(r);
}

int wire_put_objinfo(void *buf, size_t cap, const struct wire_objinfo *m)
{
	struct wcur w = WCUR(buf, cap);

	w_objinfo(&w, m);
	return w_end(&w);
}

int wire_get_objinfo(const void *buf, size_t len, struct wire_objinfo *m)
{
	struct rcur r = RCUR(buf, len);

	r_objinfo(&r, m);
	return r_end(&r);
}

int wire_put_list(void *buf, size_t cap, const struct wire_list *m)
{
	struct wcur w = WCUR(buf, cap);

	w_u64(&w, m->cursor);
	w_u32(&w, m->max);
	w_u32(&w, m->pad);
	return w_end(&w);
}

int wire_get_list(const void *buf, size_t len, struct wire_list *m)
{
	struct rcur r = RCUR(buf, len);

	m->cursor = r_u64(&r);
	m->max = r_u32(&r);
	m->pad = r_u32(&r);
	return r_end(&r);
}

int wire_put_list_reply(void *buf, size_t cap, const struct wire_list_reply *m)
{
	struct wcur w = WCUR(buf, cap);

	w_u64(&w, m->next_cursor);
	w_u32(&w, m->count);
	w_u32(&w, m->pad);
	return w_end(&w);
}

int wire_get_list_reply(const void *buf, size_t len, struct wire_list_reply *m)
{
	struct rcur r = RCUR(buf, len);

	m->next_cursor = r_u64(&r);
	m->count = r_u32(&r);
	m->pad = r_u32(&r);
	return r_end(&r);
}

int wire_put_list_entry(void *buf, size_t cap, const struct wire_list_entry *m)
{
	struct wcur w = WCUR(buf, cap);

	w_objinfo(&w, &m->info);
	w_u16(&w, m->name_len);
	for (int i = 0; i < 3; i++)
		w_u16(&w, m->pad[i]);
	return w_end(&w);
}

int wire_get_list_entry(const void *buf, size_t len, struct wire_list_entry *m)
{
	struct rcur r = RCUR(buf, len);

	r_objinfo(&r, &m->info);
	m->name_len = r_u16(&r);
	for (int i = 0; i < 3; i++)
		m->pad[i] = r_u16(&r);
	return r_end(&r);
}

/* ---- I/O */

int wire_put_io(void *buf, size_t cap, const struct wire_io *m)
{
	struct wcur w = WCUR(buf, cap);

	w_u64(&w, m->id);
	w_u64(&w, m->offset);
	w_u32(&w, m->len);
	w_u32(&w, m->flags);
	return w_end(&w);
}

int wire_get_io(const void *buf, size_t len, struct wire_io *m)
{
	struct rcur r = RCUR(buf, len);

	m->id = r_u64(&r);
	m->offset = r_u64(&r);
	m->len = r_u32(&r);
	m->flags = r_u32(&r);
	return r_end(&r);
}

int wire_put_read_reply(void *buf, size_t cap, const struct wire_read_reply *m)
{
	struct wcur w = WCUR(buf, cap);

	w_u32(&w, m->flags);
	w_u32(&w, m->pad);
	return w_end(&w);
}

int wire_get_read_reply(const void *buf, size_t len, struct wire_read_reply *m)
{
	struct rcur r = RCUR(buf, len);

	m->flags = r_u32(&r);
	m->pad = r_u32(&r);
	return r_end(&r);
}

int wire_put_id(void *buf, size_t cap, const struct wire_id *m)
{
	struct wcur w = WCUR(buf, cap);

	w_u64(&w, m->id);
	return w_end(&w);
}

int wire_get_id(const void *buf, size_t len, struct wire_id *m)
{
	struct rcur r = RCUR(buf, len);

	m->id = r_u64(&r);
	return r_end(&r);
}

int wire_put_map(void *buf, size_t cap, const struct wire_map *m)
{
	struct wcur w = WCUR(buf, cap);

	w_u64(&w, m->addr);
	w_u32(&w, m->rkey);
	w_u32(&w, m->len);
	return w_end(&w);
}

int wire_get_map(const void *buf, size_t len, struct wire_map *m)
{
	struct rcur r = RCUR(buf, len);

	m->addr = r_u64(&r);
	m->rkey = r_u32(&r);
	m->len = r_u32(&r);
	return r_end(&r);
}

int wire_put_unmap(void *buf, size_t cap, const struct wire_unmap *m)
{
	struct wcur w = WCUR(buf, cap);

	w_u64(&w, m->id);
	w_u64(&w, m->offset);
	w_u32(&w, m->len);
	w_u32(&w, m->rkey);
	return w_end(&w);
}

int wire_get_unmap(const void *buf, size_t len, struct wire_unmap *m)
{
	struct rcur r = RCUR(buf, len);

	m->id = r_u64(&r);
	m->offset = r_u64(&r);
	m->len = r_u32(&r);
	m->rkey = r_u32(&r);
	return r_end(&r);
}

/* ---- replicated objects */

int wire_put_vio(void *buf, size_t cap, const struct wire_vio *m)
{
	struct wcur w = WCUR(buf, cap);

	w_u64(&w, m->id);
	w_u64(&w, m->offset);
	w_u32(&w, m->len);
	w_u32(&w, m->flags);
	w_u64(&w, m->version);
	w_u64(&w, m->epoch);
	w_bytes(&w, m->node, WIRE_NODE_ID);
	return w_end(&w);
}

int wire_get_vio(const void *buf, size_t len, struct wire_vio *m)
{
	struct rcur r = RCUR(buf, len);

	m->id = r_u64(&r);
	m->offset = r_u64(&r);
	m->len = r_u32(&r);
	m->flags = r_u32(&r);
	m->version = r_u64(&r);
	m->epoch = r_u64(&r);
	r_bytes(&r, m->node, WIRE_NODE_ID);
	return r_end(&r);
}

int wire_put_vq(void *buf, size_t cap, const struct wire_vq *m)
{
	struct wcur w = WCUR(buf, cap);

	w_u64(&w, m->id);
	w_u64(&w, m->offset);
	w_u32(&w, m->count);
	w_u32(&w, m->flags);
	return w_end(&w);
}

int wire_get_vq(const void *buf, size_t len, struct wire_vq *m)
{
	struct rcur r = RCUR(buf, len);

	m->id = r_u64(&r);
	m->offset = r_u64(&r);
	m->count = r_u32(&r);
	m->flags = r_u32(&r);
	return r_end(&r);
}

int wire_put_vq_reply(void *buf, size_t cap, const struct wire_vq_reply *m)
{
	struct wcur w = WCUR(buf, cap);

	w_u64(&w, m->epoch);
	w_u32(&w, m->count);
	w_u32(&w, m->block_size);
	return w_end(&w);
}

int wire_get_vq_reply(const void *buf, size_t len, struct wire_vq_reply *m)
{
	struct rcur r = RCUR(buf, len);

	m->epoch = r_u64(&r);
	m->count = r_u32(&r);
	m->block_size = r_u32(&r);
	return r_end(&r);
}

int wire_put_node(void *buf, size_t cap, const struct wire_node *m)
{
	struct wcur w = WCUR(buf, cap);

	w_bytes(&w, m->id, WIRE_NODE_ID);
	w_u64(&w, m->objects);
	w_u64(&w, m->flags);
	return w_end(&w);
}

int wire_get_node(const void *buf, size_t len, struct wire_node *m)
{
	struct rcur r = RCUR(buf, len);

	r_bytes(&r, m->id, WIRE_NODE_ID);
	m->objects = r_u64(&r);
	m->flags = r_u64(&r);
	return r_end(&r);
}

int wire_put_placement(void *buf, size_t cap, const struct wire_placement *m)
{
	struct wcur w = WCUR(buf, cap);

	w_u64(&w, m->epoch);
	w_u32(&w, m->group_size);
	w_u8(&w, m->replicas);
	w_u8(&w, m->write_quorum);
	w_u16(&w, m->nmembers);
	return w_end(&w);
}

int wire_get_placement(const void *buf, size_t len, struct wire_placement *m)
{
	struct rcur r = RCUR(buf, len);

	m->epoch = r_u64(&r);
	m->group_size = r_u32(&r);
	m->replicas = r_u8(&r);
	m->write_quorum = r_u8(&r);
	m->nmembers = r_u16(&r);
	return r_end(&r);
}

int wire_put_hint_q(void *buf, size_t cap, const struct wire_hint_q *m)
{
	struct wcur w = WCUR(buf, cap);

	w_u64(&w, m->id);
	w_u64(&w, m->cursor);
	return w_end(&w);
}

int wire_get_hint_q(const void *buf, size_t len, struct wire_hint_q *m)
{
	struct rcur r = RCUR(buf, len);

	m->id = r_u64(&r);
	m->cursor = r_u64(&r);
	return r_end(&r);
}

int wire_put_hint_reply(void *buf, size_t cap, const struct wire_hint_reply *m)
{
	struct wcur w = WCUR(buf, cap);

	w_u64(&w, m->next_cursor);
	w_u32(&w, m->count);
	w_u32(&w, m->more);
	return w_end(&w);
}

int wire_get_hint_reply(const void *buf, size_t len, struct wire_hint_reply *m)
{
	struct rcur r = RCUR(buf, len);

	m->next_cursor = r_u64(&r);
	m->count = r_u32(&r);
	m->more = r_u32(&r);
	return r_end(&r);
}

int wire_put_hint(void *buf, size_t cap, const struct wire_hint *m)
{
	struct wcur w = WCUR(buf, cap);

	w_u64(&w, m->offset);
	w_u32(&w, m->len);
	w_u32(&w, m->pad);
	w_bytes(&w, m->node, WIRE_NODE_ID);
	return w_end(&w);
}

int wire_get_hint(const void *buf, size_t len, struct wire_hint *m)
{
	struct rcur r = RCUR(buf, len);

	m->offset = r_u64(&r);
	m->len = r_u32(&r);
	m->pad = r_u32(&r);
	r_bytes(&r, m->node, WIRE_NODE_ID);
	return r_end(&r);
}

int wire_put_hint_drop(void *buf, size_t cap, const struct wire_hint_drop *m)
{
	struct wcur w = WCUR(buf, cap);

	w_u64(&w, m->id);
	w_u64(&w, m->upto);
	w_bytes(&w, m->node, WIRE_NODE_ID);
	return w_end(&w);
}

int wire_get_hint_drop(const void *buf, size_t len, struct wire_hint_drop *m)
{
	struct rcur r = RCUR(buf, len);

	m->id = r_u64(&r);
	m->upto = r_u64(&r);
	r_bytes(&r, m->node, WIRE_NODE_ID);
	return r_end(&r);
}

/* ---- arrays */

int wire_put_u64s(void *buf, size_t cap, const uint64_t *v, size_t n)
{
	struct wcur w = WCUR(buf, cap);

	if (n > cap / 8)
		return -ENOBUFS;
	for (size_t i = 0; i < n; i++)
		w_u64(&w, v[i]);
	return w_end(&w);
}

int wire_get_u64s(const void *buf, size_t len, uint64_t *v, size_t n)
{
	struct rcur r = RCUR(buf, len);

	if (n > len / 8)
		return -EPROTO;
	for (size_t i = 0; i < n; i++)
		v[i] = r_u64(&r);
	return r_end(&r);
}

/* ---- frames */

uint64_t wire_csum_iov(const struct iovec *iov, int iovcnt)
{
	XXH3_state_t st;

	XXH3_64bits_reset(&st);
	for (int i = 0; i < iovcnt; i++)
		if (iov[i].iov_len)
			XXH3_64bits_update(&st, iov[i].iov_base, iov[i].iov_len);
	return XXH3_64bits_digest(&st);
}

int wire_check_csum(const struct wire_hdr *h, const void *payload)
{
	struct iovec iov = { (void *)payload, h->len };

	return wire_csum_iov(&iov, 1) == h->csum ? 0 : -EBADMSG;
}

int wire_frame_hdr(struct wire_hdr *h, uint16_t version, uint16_t op,
		  uint64_t req_id, uint32_t status, const struct iovec *iov,
		  int iovcnt)
{
	size_t len = 0;

	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > WIRE_MAX_PAYLOAD - len)
			return -E2BIG;
		len += iov[i].iov_len;
	}
	*h = (struct wire_hdr){ .magic = WIRE_MAGIC, .version = version,
				.op = op, .req_id = req_id, .status = status,
				.len = (uint32_t)len,
				.csum = wire_csum_iov(iov, iovcnt) };
	return 0;
}

int wire_check_hdr(const struct wire_hdr *h, uint32_t max_payload)
{
	uint16_t op = h->op & (uint16_t)~WIRE_RESPONSE;

	if (h->magic != WIRE_MAGIC || op < WIRE_HELLO || op > WIRE_OP_MAX ||
	    h->status > WIRE_STATUS_MAX)
		return -EPROTO;
	if (h->len > max_payload)
		return -E2BIG;
	return 0;
}
