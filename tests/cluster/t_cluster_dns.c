/* SPDX-License-Identifier: MIT */
/*
 * A host name that resolves to several addresses names a cluster, as a
 * Kubernetes headless Service does: three servers listen on 127.0.0.1,
 * .2 and .3, the same port, and a private /etc/hosts (in a mount namespace
 * of this test only) gives the name "ufo-storage" all three addresses.
 * "ufo://ufo-storage:PORT/name" must then map a replicated object over
 * the three.  Skips (77) where a mount namespace cannot be made (not
 * root).
 */
#include <sched.h>
#include <sys/mount.h>

#include "t_cluster.h"

#define NSRV 3
#define CHUNK (64 * T_KIB)
#define SIZE (4 * T_MIB)

static char hosts[PATH_MAX];

/* Our own /etc/hosts, seen by this process and its children only. */
static int private_hosts(void)
{
	const char *tmp = getenv("TMPDIR");
	const char *text = "127.0.0.1 localhost\n"
			   "127.0.0.1 ufo-storage\n"
			   "127.0.0.2 ufo-storage\n"
			   "127.0.0.3 ufo-storage\n";

	snprintf(hosts, sizeof(hosts), "%s/t_cluster_dns.hosts.%d",
		 tmp && *tmp ? tmp : "/tmp", (int)getpid());
	if (t_write_file(hosts, text, strlen(text), 0644))
		return -1;
	if (unshare(CLONE_NEWNS) ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount(hosts, "/etc/hosts", NULL, MS_BIND, NULL)) {
		fprintf(stderr, "skip: no private /etc/hosts: %s\n",
			strerror(errno));
		unlink(hosts);
		return -1;
	}
	return 0;
}

static void test_headless_name(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	struct ufo_remote_opts o;
	struct ufo_cluster *c;
	struct ufo_cluster_member m[NSRV + 1];
	struct ufo_repair_stats st;
	char url[128];

	(void)state;
	t_catch_install();
	t_config(&cfg, CHUNK, 16, 8);
	ctx = t_ctx(&cfg);
	t_cluster_opts(&o, 0);
	o.flags = UFO_REMOTE_CREATE;
	o.create_size = SIZE;
	o.chunk_size = CHUNK;
	snprintf(url, sizeof(url), "ufo://ufo-storage:%u/dns",
		 (unsigned)t_srvs[0].port);
	assert_int_equal(ufo_remote_open(ctx, url, &o, &obj), 0);
	t_cluster_fill(obj, 31);
	assert_int_equal(ufo_sync(obj), 0);
	assert_int_equal(ufo_refresh(obj), 0);
	assert_int_equal(t_cluster_check(obj, 31), -1);
	assert_int_equal(ufo_free(obj), 0);

	/* The same name for the cluster API: three members, all holding
	 * their share (R = 2 of 3: every server is a home of some group). */
	snprintf(url, sizeof(url), "ufo-storage:%u", (unsigned)t_srvs[0].port);
	assert_int_equal(ufo_cluster_connect(url, &o, &c), 0);
	assert_int_equal(ufo_cluster_members(c, m, NSRV + 1), NSRV);
	for (unsigned i = 0; i < NSRV; i++)
		assert_true(m[i].up);
	assert_int_equal(ufo_cluster_repair(c, "dns",
					    UFO_REPAIR_FULL | UFO_REPAIR_DRY_RUN,
					    NULL, NULL, &st), 0);
	assert_int_equal(st.objects, 1);
	assert_int_equal(st.blocks_copied, 0);
	ufo_cluster_close(c);
	for (unsigned i = 0; i < NSRV; i++)
		assert_true(t_disk_usage(t_srvs[i].data) > SIZE / 4);
	ufo_ctx_destroy(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_headless_name),
	};
	char host[16];
	int rc;

	if (private_hosts())
		return T_EXIT_SKIP;
	/* Three servers on one port, one loopback address each. */
	setenv("UFO_TEST_HOST", "127.0.0.1", 1);
	t_cluster_setup(1);
	for (unsigned i = 1; i < NSRV; i++) {
		snprintf(host, sizeof(host), "127.0.0.%u", i + 1);
		setenv("UFO_TEST_HOST", host, 1);
		assert_int_equal(t_server_init(&t_srvs[i], getenv("UFO_SERVER")),
				 0);
		snprintf(t_srvs[i].secret, sizeof(t_srvs[i].secret), "%s",
			 t_srvs[0].secret);
		assert_int_equal(t_server_spawn(&t_srvs[i], t_srvs[0].port), 0);
		t_nsrv = i + 1;
	}
	setenv("UFO_TEST_HOST", "127.0.0.1", 1);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(hosts);
	return rc;
}
