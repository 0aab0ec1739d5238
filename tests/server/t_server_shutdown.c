/* SPDX-License-Identifier: MIT */
/*
 * SIGTERM and requests the server has not read yet (issue 13 item 5):
 * each is answered ESHUTDOWN before the connection closes, none is lost
 * with it.  The server is stopped (SIGSTOP) while a client queues pings
 * and then a WRITE whose payload never arrives in full; SIGTERM and
 * SIGCONT follow.  Whatever the loop read before it saw the signal is
 * answered as usual; the rest, and always the cut-off WRITE (it can
 * never run), must come back ESHUTDOWN.
 */
#include "t_srv.h"

#define PINGS 100

static int find_id(const uint64_t *ids, int n, uint64_t id)
{
	for (int i = 0; i < n; i++)
		if (ids[i] == id)
			return i;
	return -1;
}

static void test_unread_requests_answered(void **state)
{
	struct t_srv s;
	struct ufo_conn *c;
	uint64_t ids[PINGS];
	struct wire_objinfo info;
	bool answered[PINGS] = { false };
	struct wire_io io;
	uint8_t io_raw[sizeof(io)];
	struct wire_hdr cut;
	struct t_reply r;
	int shutdowns = 0, oks = 0, rc;
	bool cut_answered = false;

	(void)state;
	t_srv_init(&s);
	t_srv_start(&s);
	c = t_login(&s);
	assert_int_equal(t_create(c, "cut", 1 << 20, 65536, &info), WIRE_OK);

	assert_int_equal(kill(s.pid, SIGSTOP), 0);
	for (int i = 0; i < PINGS; i++) {
		struct wire_hdr h = t_hdr(WIRE_VERSION_MAX, WIRE_PING, 0);

		ids[i] = h.req_id;
		assert_int_equal(t_send_raw(c, h, NULL, 0, false), 0);
	}
	/* A WRITE of 64 KiB whose header and io arrive, its data never. */
	io = (struct wire_io){ .id = le64toh(info.id), .offset = 0, .len = 65536 };
	wire_put_io(io_raw, sizeof(io_raw), &io);
	cut = t_hdr(WIRE_VERSION_MAX, WIRE_WRITE, sizeof(io_raw) + 65536);
	assert_int_equal(t_send_raw(c, cut, io_raw, sizeof(io_raw), false), 0);
	assert_int_equal(kill(s.pid, SIGTERM), 0);
	assert_int_equal(kill(s.pid, SIGCONT), 0);

	while ((rc = t_recv(c, &r)) == 0) {
		int i = find_id(ids, PINGS, r.h.req_id);

		if (r.h.req_id == cut.req_id) {
			assert_int_equal(r.h.status, WIRE_ESHUTDOWN);
			cut_answered = true;
		} else {
			assert_true(i >= 0);
			assert_false(answered[i]);
			answered[i] = true;
			if (r.h.status == WIRE_ESHUTDOWN)
				shutdowns++;
			else if (r.h.status == WIRE_OK)
				oks++;
			else
				fail_msg("ping %d: status %u", i, r.h.status);
		}
		t_reply_free(&r);
	}
	t_reply_free(&r);
	assert_true(rc == -ECONNRESET || rc == -EPIPE);
	fprintf(stderr, "after SIGTERM: %d pings answered OK, %d ESHUTDOWN\n",
		oks, shutdowns);
	assert_int_equal(oks + shutdowns, PINGS);
	assert_true(cut_answered);
	conn_close(c);
	rc = t_srv_stop(&s, SIGTERM);
	assert_true(WIFEXITED(rc));
	assert_int_equal(WEXITSTATUS(rc), 0);
	t_srv_fini(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unread_requests_answered),
	};

	t_server_bin();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
