/* SPDX-License-Identifier: MIT */
/*
 * The wire codec and the handshake machine (transport/proto): every
 * message round-trips and encodes to the bytes protocol v2 always sent;
 * every truncation and bad length is a negative errno; the two halves of
 * the handshake agree with each other and refuse what they must.
 */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "transport.h"
#include "codec_table.h"

#define SECRET "codec test secret, 16+ bytes"

/* ---- every message (codec_table.h) */

#define MSG_MAX 64 /* above every message's size */

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 131 + i * 29 + 7);
}

/* Every message, with every byte different, goes out and comes back equal;
 * nothing past its size is written. */
static void test_round_trip(void **state)
{
	for (size_t i = 0; i < NCODECS; i++) {
		const struct codec *k = &codecs[i];
		uint8_t in[MSG_MAX], out[MSG_MAX], buf[MSG_MAX + 8];

		assert_true(k->size <= MSG_MAX);
		fill(in, k->size, (unsigned)i);
		memset(buf, 0xa5, sizeof(buf));
		memset(out, 0, sizeof(out));
		assert_int_equal(k->put(buf, sizeof(buf), in), (int)k->size);
		assert_int_equal(buf[k->size], 0xa5);
		assert_int_equal(k->get(buf, k->size, out), (int)k->size);
		if (memcmp(in, out, k->size))
			fail_msg("%s does not round-trip", k->name);
	}
}

/* The layout protocol v2 has always had: on a little-endian host, what
 * was sent before the codec was the struct's own memory. */
static void test_same_bytes_as_v2(void **state)
{
	for (size_t i = 0; i < NCODECS && __BYTE_ORDER == __LITTLE_ENDIAN; i++) {
		uint8_t in[MSG_MAX], buf[MSG_MAX];

		fill(in, codecs[i].size, (unsigned)i + 100);
		assert_int_equal(codecs[i].put(buf, sizeof(buf), in),
				 (int)codecs[i].size);
		if (memcmp(in, buf, codecs[i].size))
			fail_msg("%s changed its layout", codecs[i].name);
	}
}

/* Byte by byte, whatever the host: a header and an I/O request. */
static void test_golden_bytes(void **state)
{
	static const uint8_t hdr[32] = {
		0x55, 0x46, 0x4f, 0x31, 0x02, 0x00, 0x08, 0x80,
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
		0x0c, 0x00, 0x00, 0x00, 0x18, 0x00, 0x00, 0x00,
		0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01,
	};
	static const uint8_t io[24] = {
		0x2a, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x10, 0, 0, 0, 0, 0, 0,
		0x00, 0x00, 0x01, 0x00, 0x01, 0, 0, 0,
	};
	struct wire_hdr h = { .magic = WIRE_MAGIC, .version = 2,
			      .op = WIRE_READ | WIRE_RESPONSE,
			      .req_id = 0x0102030405060708ull,
			      .status = WIRE_ECSUM, .len = 24,
			      .csum = 0x0123456789abcdefull };
	struct wire_io w = { .id = 42, .offset = 4096, .len = 65536,
			     .flags = WIRE_IO_HOLES };
	uint8_t buf[32];

	assert_int_equal(wire_put_hdr(buf, sizeof(buf), &h), 32);
	assert_memory_equal(buf, hdr, sizeof(hdr));
	assert_int_equal(wire_put_io(buf, sizeof(buf), &w), 24);
	assert_memory_equal(buf, io, sizeof(io));
}

/* Every length short of a message: -EPROTO to read, -ENOBUFS to write. */
static void test_every_truncation(void **state)
{
	for (size_t i = 0; i < NCODECS; i++) {
		const struct codec *k = &codecs[i];
		uint8_t in[MSG_MAX], buf[MSG_MAX], out[MSG_MAX];

		fill(in, k->size, (unsigned)i);
		assert_int_equal(k->put(buf, sizeof(buf), in), (int)k->size);
		for (size_t len = 0; len < k->size; len++) {
			if (k->get(buf, len, out) != -EPROTO)
				fail_msg("%s read from %zu bytes", k->name, len);
			if (k->put(buf, len, in) != -ENOBUFS)
				fail_msg("%s written into %zu bytes", k->name,
					 len);
		}
		/* More bytes than the message: the rest is not its. */
		assert_int_equal(k->get(buf, sizeof(buf), out), (int)k->size);
	}
}

static void test_u64s(void **state)
{
	uint64_t v[3] = { 1, 0x0102030405060708ull, UINT64_MAX }, back[3];
	uint8_t buf[24];

	assert_int_equal(wire_put_u64s(buf, sizeof(buf), v, 3), 24);
	assert_int_equal(buf[8], 0x08);
	assert_int_equal(wire_get_u64s(buf, sizeof(buf), back, 3), 24);
	assert_memory_equal(v, back, sizeof(v));
	assert_int_equal(wire_put_u64s(buf, 23, v, 3), -ENOBUFS);
	assert_int_equal(wire_get_u64s(buf, 23, back, 3), -EPROTO);
	/* A count no buffer holds (from the network) does not overflow. */
	assert_int_equal(wire_get_u64s(buf, 24, back, SIZE_MAX / 4), -EPROTO);
	/* In place, as the server encodes VERSIONS. */
	memcpy(buf, v, sizeof(v));
	assert_int_equal(wire_put_u64s(buf, 24, (uint64_t *)buf, 3), 24);
	assert_int_equal(wire_get_u64s(buf, 24, back, 3), 24);
	assert_memory_equal(v, back, sizeof(v));
}

/* ---- payloads with a length inside */

static size_t name_msg(uint8_t *buf, uint16_t name_len, const char *name,
		       size_t n)
{
	int off = wire_put_name(buf, 8, &(struct wire_name){
		.name_len = name_len });

	assert_int_equal(off, 8);
	memcpy(buf + off, name, n);
	return (size_t)off + n;
}

static void test_name_lengths(void **state)
{
	uint8_t buf[64];
	const char *name;
	uint16_t nl;
	size_t len = name_msg(buf, 3, "abc", 3);

	assert_int_equal(wire_parse_name(buf, (uint32_t)len, &name, &nl), 0);
	assert_int_equal(nl, 3);
	assert_memory_equal(name, "abc", 3);
	/* Every cut, and a name_len that says more or less than is there. */
	for (uint32_t cut = 0; cut < len; cut++)
		assert_int_equal(wire_parse_name(buf, cut, &name, &nl), -EPROTO);
	len = name_msg(buf, 4, "abc", 3);
	assert_int_equal(wire_parse_name(buf, (uint32_t)len, &name, &nl), -EPROTO);
	len = name_msg(buf, 2, "abc", 3);
	assert_int_equal(wire_parse_name(buf, (uint32_t)len, &name, &nl), -EPROTO);
	len = name_msg(buf, UINT16_MAX, "abc", 3);
	assert_int_equal(wire_parse_name(buf, (uint32_t)len, &name, &nl), -EPROTO);
	len = name_msg(buf, 3, "../", 3);
	assert_int_equal(wire_parse_name(buf, (uint32_t)len, &name, &nl), -EINVAL);
}

static size_t create_msg(uint8_t *buf, uint64_t size, uint32_t chunk,
			 uint16_t name_len, const char *name)
{
	int off = wire_put_create(buf, 16, &(struct wire_create){
		.size = size, .chunk_size = chunk, .name_len = name_len });

	memcpy(buf + off, name, strlen(name));
	return (size_t)off + strlen(name);
}

static void test_create_lengths(void **state)
{
	struct wire_create cr;
	uint8_t buf[64];
	const char *name;
	size_t len = create_msg(buf, 1 << 20, 65536, 4, "obj1");

	assert_int_equal(wire_parse_create(buf, (uint32_t)len, &cr, &name), 0);
	assert_int_equal(cr.size, 1 << 20);
	assert_int_equal(cr.chunk_size, 65536);
	for (uint32_t cut = 0; cut < len; cut++)
		assert_int_equal(wire_parse_create(buf, cut, &cr, &name), -EPROTO);
	len = create_msg(buf, 1 << 20, 65536, 5, "obj1");
	assert_int_equal(wire_parse_create(buf, (uint32_t)len, &cr, &name), -EPROTO);
	len = create_msg(buf, 0, 65536, 4, "obj1");
	assert_int_equal(wire_parse_create(buf, (uint32_t)len, &cr, &name), -EINVAL);
	len = create_msg(buf, WIRE_MAX_OBJECT_SIZE + 1, 65536, 4, "obj1");
	assert_int_equal(wire_parse_create(buf, (uint32_t)len, &cr, &name), -E2BIG);
	len = create_msg(buf, 1 << 20, 4097, 4, "obj1");
	assert_int_equal(wire_parse_create(buf, (uint32_t)len, &cr, &name), -EINVAL);
}

/* ---- headers, frames and the checksum */

static void test_header_checks(void **state)
{
	uint8_t payload[5] = "hello";
	struct iovec iov[2] = { { payload, 2 }, { payload + 2, 3 } };
	struct iovec whole = { payload, 5 };
	struct wire_hdr h;

	assert_int_equal(wire_frame_hdr(&h, 2, WIRE_PING, 9, 0, iov, 2), 0);
	assert_int_equal(h.len, 5);
	/* The checksum of pieces is the checksum of the whole. */
	assert_true(h.csum == wire_csum_iov(&whole, 1));
	assert_int_equal(wire_check_csum(&h, payload), 0);
	assert_int_equal(wire_check_hdr(&h, 5), 0);
	assert_int_equal(wire_check_hdr(&h, 4), -E2BIG);
	payload[4] ^= 1;
	assert_int_equal(wire_check_csum(&h, payload), -EBADMSG);
	h.magic ^= 1;
	assert_int_equal(wire_check_hdr(&h, 5), -EPROTO);
	h.magic = WIRE_MAGIC;
	h.op = WIRE_OP_MAX + 1;
	assert_int_equal(wire_check_hdr(&h, 5), -EPROTO);
	h.op = WIRE_PING;
	h.status = WIRE_STATUS_MAX + 1;
	assert_int_equal(wire_check_hdr(&h, 5), -EPROTO);
	/* A frame over the limit is refused before anything is sent. */
	iov[0].iov_len = WIRE_MAX_PAYLOAD;
	iov[1].iov_len = 1;
	assert_int_equal(wire_frame_hdr(&h, 2, WIRE_WRITE, 9, 0, iov, 2), -E2BIG);
}

/* ---- the handshake machine */

struct frame {
	struct wire_hdr h;
	uint8_t payload[WIRE_HS_OUT_MAX];
};

/* What a caller of the machine sends: out as a frame (the server's answer
 * to req). */
static void as_frame(const struct wire_hs_out *out, const struct wire_hdr *req,
		     struct frame *f)
{
	struct iovec iov = { (void *)out->payload, out->len };
	uint16_t op = out->op;
	uint64_t id = req ? req->req_id : out->req_id;

	memcpy(f->payload, out->payload, out->len);
	assert_int_equal(wire_frame_hdr(&f->h, out->version, op, id,
					out->status, &iov, 1), 0);
}

static void start_pair(struct wire_hs *cli, struct wire_hs *srv,
		       const char *cli_secret, struct frame *hello)
{
	struct wire_hs_out out;

	wire_hs_start(srv, WIRE_HS_SERVER, (const uint8_t *)SECRET,
		      strlen(SECRET), &out);
	assert_int_equal(out.op, 0);
	wire_hs_start(cli, WIRE_HS_CLIENT, (const uint8_t *)cli_secret,
		      strlen(cli_secret), &out);
	assert_int_equal(out.op, WIRE_HELLO);
	assert_int_equal(out.version, 0);
	as_frame(&out, NULL, hello);
}

static void test_handshake_pair(void **state)
{
	struct wire_hs cli, srv;
	struct wire_hs_out out;
	struct frame f, g;

	start_pair(&cli, &srv, SECRET, &f);
	assert_int_equal(wire_hs_check_hdr(&srv, &f.h, &out), 0);
	assert_int_equal(wire_hs_step(&srv, &f.h, f.payload, &out), 0);
	assert_int_equal(out.op, WIRE_HELLO | WIRE_RESPONSE);
	assert_int_equal(out.version, WIRE_VERSION_MAX);
	as_frame(&out, &f.h, &g);
	assert_int_equal(wire_hs_step(&cli, &g.h, g.payload, &out), 0);
	assert_int_equal(out.op, WIRE_AUTH);
	assert_int_equal(out.version, WIRE_VERSION_MAX);
	as_frame(&out, NULL, &f);
	assert_int_equal(wire_hs_step(&srv, &f.h, f.payload, &out), 1);
	assert_int_equal(srv.state, WIRE_HS_DONE);
	as_frame(&out, &f.h, &g);
	assert_int_equal(wire_hs_step(&cli, &g.h, g.payload, &out), 1);
	assert_int_equal(cli.state, WIRE_HS_DONE);
	assert_int_equal(cli.version, srv.version);
	/* Done is done. */
	assert_int_equal(wire_hs_step(&cli, &g.h, g.payload, &out), -EINVAL);
	assert_int_equal(wire_hs_step(&srv, &f.h, f.payload, &out), -EINVAL);
}

/* Drives a pair to the server's AUTH answer; returns the server's rc. */
static int to_server_auth(struct wire_hs *cli, struct wire_hs *srv,
			  const char *cli_secret, struct wire_hs_out *out,
			  struct frame *auth)
{
	struct frame f, g;

	start_pair(cli, srv, cli_secret, &f);
	assert_int_equal(wire_hs_step(srv, &f.h, f.payload, out), 0);
	as_frame(out, &f.h, &g);
	assert_int_equal(wire_hs_step(cli, &g.h, g.payload, out), 0);
	as_frame(out, NULL, auth);
	return wire_hs_step(srv, &auth->h, auth->payload, out);
}

static void test_handshake_wrong_secret(void **state)
{
	struct wire_hs cli, srv;
	struct wire_hs_out out;
	struct frame auth;

	assert_int_equal(to_server_auth(&cli, &srv, "not the secret at all",
					&out, &auth), -EACCES);
	assert_int_equal(srv.state, WIRE_HS_FAILED);
	assert_int_equal(out.status, WIRE_EAUTH);
	assert_memory_equal(out.payload, "wrong secret", out.len);
}

/* A "server" without the secret answers AUTH with a made-up proof. */
static void test_handshake_server_without_secret(void **state)
{
	struct wire_hs cli, srv;
	struct wire_hs_out out;
	struct frame auth, g;

	assert_int_equal(to_server_auth(&cli, &srv, SECRET, &out, &auth), 1);
	out.payload[0] ^= 1;
	as_frame(&out, &auth.h, &g);
	assert_int_equal(wire_hs_step(&cli, &g.h, g.payload, &out), -EACCES);
	assert_int_equal(cli.state, WIRE_HS_FAILED);
}

/* The server's refusals, each with its status, and a client that gets an
 * error answer or a malformed one. */
static void test_handshake_refusals(void **state)
{
	struct wire_hs cli, srv;
	struct wire_hs_out out;
	struct frame f;
	uint8_t big[WIRE_MAX_PREAUTH + 1] = { 0 };
	struct iovec iov = { big, sizeof(big) };

	start_pair(&cli, &srv, SECRET, &f); /* AUTH first */
	f.h.op = WIRE_AUTH;
	assert_int_equal(wire_hs_step(&srv, &f.h, f.payload, &out), -EPERM);
	assert_int_equal(out.status, WIRE_ENOTAUTH);

	start_pair(&cli, &srv, SECRET, &f); /* a short HELLO */
	iov.iov_len = 39;
	wire_frame_hdr(&f.h, 0, WIRE_HELLO, 1, 0, &iov, 1);
	assert_int_equal(wire_hs_step(&srv, &f.h, big, &out), -EPROTO);
	assert_int_equal(out.status, WIRE_EPROTO);

	start_pair(&cli, &srv, SECRET, &f); /* over the pre-auth limit */
	iov.iov_len = sizeof(big);
	wire_frame_hdr(&f.h, 0, WIRE_HELLO, 1, 0, &iov, 1);
	assert_int_equal(wire_hs_check_hdr(&srv, &f.h, &out), -E2BIG);
	assert_int_equal(out.status, WIRE_E2BIG);

	start_pair(&cli, &srv, SECRET, &f); /* a bad checksum */
	f.h.csum ^= 1;
	assert_int_equal(wire_hs_step(&srv, &f.h, f.payload, &out), -EBADMSG);
	assert_int_equal(out.status, WIRE_ECSUM);

	start_pair(&cli, &srv, SECRET, &f); /* versions past ours only */
	wire_put_hello(f.payload, 40, &(struct wire_hello){
		.min_version = WIRE_VERSION_MAX + 1,
		.max_version = WIRE_VERSION_MAX + 2 });
	iov = (struct iovec){ f.payload, 40 };
	wire_frame_hdr(&f.h, 0, WIRE_HELLO, 1, 0, &iov, 1);
	assert_int_equal(wire_hs_step(&srv, &f.h, f.payload, &out),
			 -EPROTONOSUPPORT);
	assert_int_equal(out.status, WIRE_EVERSION);

	start_pair(&cli, &srv, SECRET, &f); /* a header version in HELLO */
	f.h.version = 2;
	assert_int_equal(wire_hs_step(&srv, &f.h, f.payload, &out), -EPROTO);
	assert_int_equal(srv.state, WIRE_HS_FAILED);
	assert_int_equal(wire_hs_step(&srv, &f.h, f.payload, &out), -EINVAL);

	/* The client: an error answer is its errno; a short answer -EPROTO. */
	start_pair(&cli, &srv, SECRET, &f);
	iov = (struct iovec){ (void *)"busy", 4 };
	wire_frame_hdr(&f.h, 0, WIRE_HELLO | WIRE_RESPONSE, 1, WIRE_EBUSY,
		       &iov, 1);
	assert_int_equal(wire_hs_step(&cli, &f.h, "busy", &out), -EBUSY);
	start_pair(&cli, &srv, SECRET, &f);
	iov = (struct iovec){ big, 39 };
	wire_frame_hdr(&f.h, 0, WIRE_HELLO | WIRE_RESPONSE, 1, 0, &iov, 1);
	assert_int_equal(wire_hs_step(&cli, &f.h, big, &out), -EPROTO);
	assert_int_equal(cli.state, WIRE_HS_FAILED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_same_bytes_as_v2),
		cmocka_unit_test(test_golden_bytes),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_u64s),
		cmocka_unit_test(test_name_lengths),
		cmocka_unit_test(test_create_lengths),
		cmocka_unit_test(test_header_checks),
		cmocka_unit_test(test_handshake_pair),
		cmocka_unit_test(test_handshake_wrong_secret),
		cmocka_unit_test(test_handshake_server_without_secret),
		cmocka_unit_test(test_handshake_refusals),
	};

	if (wire_crypto_init())
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
