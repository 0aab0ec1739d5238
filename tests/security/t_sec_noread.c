/* SPDX-License-Identifier: MIT */
/*
 * Attack table (docs/security.md): a client that never reads its answers.
 * It pipelines 1 GiB worth of 1 MiB READs and reads nothing; the server
 * stops reading that connection once CONN_MAX_INFLIGHT_BYTES (64 MiB) of
 * answers are pending, so its resident memory (VmHWM in /proc) grows by
 * about that much, not by the gigabyte asked for.  Meanwhile another
 * client is served, and when the first one finally reads, every answer
 * arrives, in order and intact.
 *
 * Over every transport of $UFO_TEST_SCHEME (t_srv.h).  Over rdma:// not
 * reading means never reposting receive buffers: the server's SENDs wait
 * in receiver-not-ready retries, and once it stops reading too, the
 * client's own SENDs do; so the READs go out from a thread of their own,
 * which may block until the answers are read (over TCP and TLS the socket
 * buffers take them all).
 */
#include "t_srv.h"

#define MIB ((uint64_t)1 << 20)
#define OBJ_SIZE (16 * MIB)
#define READ_LEN ((uint32_t)MIB)
#define NREADS_MAX 1024
/* CONN_MAX_INFLIGHT_BYTES (server/server.h) plus one READ past it, and
 * slack for allocator and sanitizer overheads: far under what is asked. */
#define RSS_BOUND (64 * MIB + 64 * MIB)
#define SETTLE_MS 3000

/* READs asked for: 1 GiB of answers; over rdma:// (a TCG guest, about
 * 40 MiB/s) 256 MiB, still twice RSS_BOUND. */
static uint64_t nreads(void)
{
	return t_srv_scheme() == T_RDMA ? 256 : NREADS_MAX;
}

/* A "VmRSS:" / "VmHWM:" line of /proc/PID/status, in bytes. */
static uint64_t proc_kib(pid_t pid, const char *key)
{
	char path[64], line[256];
	uint64_t v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			v = strtoull(line + strlen(key), NULL, 10) * 1024;
	fclose(f);
	return v;
}

struct sender {
	struct ufo_conn *c;
	uint64_t id, first_req;
	int rc; /* of the first frame_send that failed, or 0 */
	pthread_t thread;
};

static void *send_reads(void *arg)
{
	struct sender *s = arg;

	for (uint64_t i = 0; i < nreads() && !s->rc; i++) {
		struct wire_io io = {
			.id = htole64(s->id),
			.offset = htole64(i * READ_LEN % OBJ_SIZE),
			.len = htole32(READ_LEN) };
		s->rc = frame_send(s->c, WIRE_VERSION_MAX, WIRE_READ,
				   s->first_req + i, 0, &io, sizeof(io), NULL,
				   0, T_SRV_WAIT_MS);
	}
	return NULL;
}

/* Reads every answer: OK, each request once (workers may answer out of
 * order), the object's bytes. */
static void read_answers(struct ufo_conn *c, uint64_t first_req,
			 const uint8_t *obj)
{
	static bool seen[NREADS_MAX];

	for (uint64_t i = 0; i < nreads(); i++) {
		struct t_reply r;
		uint64_t k;

		assert_int_equal(t_recv(c, &r), 0);
		assert_int_equal(r.h.status, WIRE_OK);
		assert_int_equal(r.h.len, READ_LEN);
		assert_true(r.h.req_id >= first_req &&
			    r.h.req_id < first_req + nreads());
		k = r.h.req_id - first_req;
		assert_false(seen[k]);
		seen[k] = true;
		assert_memory_equal(r.payload, obj + k * READ_LEN % OBJ_SIZE,
				    READ_LEN);
		t_reply_free(&r);
	}
}

static void test_client_never_reads(void **state)
{
	struct ufo_conn *hog, *other;
	struct sender snd = { .first_req = 1u << 20 };
	struct wire_objinfo info;
	struct t_srv s;
	uint64_t id, base, peak = 0;
	uint8_t *obj = malloc(OBJ_SIZE);

	assert_non_null(obj);
	t_pattern(obj, OBJ_SIZE, 5);
	t_srv_init(&s);
	t_srv_start(&s);
	other = t_login(&s);
	assert_int_equal(t_create(other, "hogged", OBJ_SIZE, 1 << 20, &info), 0);
	id = le64toh(info.id);
	for (uint64_t off = 0; off < OBJ_SIZE; off += READ_LEN)
		assert_int_equal(t_write(other, id, off, obj + off, READ_LEN), 0);
	hog = t_login(&s);
	/* Warm the READ path once so the baseline holds its buffers. */
	assert_int_equal(t_read(hog, id, 0, obj, 4096), 0);
	t_pattern(obj, OBJ_SIZE, 5);
	base = proc_kib(s.pid, "VmRSS:");

	snd.c = hog;
	snd.id = id;
	assert_int_equal(pthread_create(&snd.thread, NULL, send_reads, &snd), 0);
	for (int64_t end = t_now_ms() + SETTLE_MS; t_now_ms() < end;) {
		uint64_t rss = proc_kib(s.pid, "VmRSS:");
		peak = rss > peak ? rss : peak;
		t_ping_ok(other); /* served all along */
		t_sleep_ms(100);
	}
	peak = proc_kib(s.pid, "VmHWM:") > peak ? proc_kib(s.pid, "VmHWM:")
						: peak;
	print_message("server RSS %llu MiB before, peak %llu MiB with %llu MiB "
		      "of answers asked for and unread (over %s)\n",
		      (unsigned long long)(base / MIB),
		      (unsigned long long)(peak / MIB),
		      (unsigned long long)nreads(), t_srv_transport()->name);
	if (snd.rc)
		fail_msg("sending the READs: %s", strerror(-snd.rc));
	if (peak - base > RSS_BOUND)
		fail_msg("server memory grew by %llu MiB (bound %llu MiB)",
			 (unsigned long long)((peak - base) / MIB),
			 (unsigned long long)(RSS_BOUND / MIB));
	read_answers(hog, snd.first_req, obj);
	assert_int_equal(pthread_join(snd.thread, NULL), 0);
	assert_int_equal(snd.rc, 0);
	t_ping_ok(hog);
	t_ping_ok(other);
	conn_close(hog);
	conn_close(other);
	assert_int_equal(t_srv_stop(&s, SIGTERM), 0);
	t_srv_fini(&s);
	free(obj);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_never_reads),
	};

	t_server_bin();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
