/* SPDX-License-Identifier: MIT */
/* The exposition-format and JSON writers, and monitor addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "monitor.h"
#include "t_mon.h"

static void test_family_and_samples(void **state)
{
	struct mon_buf b;
	struct mon_label l[] = { { "object", "3" }, { "name", "a\"b\\c\nd" } };

	mon_buf_init(&b);
	mon_expo_family(&b, "ufo_faults_total", "counter",
			"Faults\\handled\nhere");
	mon_expo_u64(&b, "ufo_faults_total", NULL, 0, 18446744073709551615ull);
	mon_expo_u64(&b, "ufo_object_faults_total", l, 2, 7);
	mon_expo_double(&b, "ufo_x_seconds", NULL, 0, 0.25);
	mon_expo_double(&b, "ufo_y", l, 1, 1.0 / 0.0);
	assert_false(b.oom);
	assert_string_equal(b.data,
		"# HELP ufo_faults_total Faults\\\\handled\\nhere\n"
		"# TYPE ufo_faults_total counter\n"
		"ufo_faults_total 18446744073709551615\n"
		"ufo_object_faults_total{object=\"3\",name=\"a\\\"b\\\\c\\nd\"} 7\n"
		"ufo_x_seconds 0.25\n"
		"ufo_y{object=\"3\"} +Inf\n");
	mon_buf_free(&b);
}

/* Buckets are cumulative, +Inf equals _count, le bounds are 2^i µs. */
static void test_histogram(void **state)
{
	uint64_t buckets[4] = { 1, 0, 2, 3 }; /* <1 µs, [1,2), [2,4), rest */
	struct mon_label l = { "object", "1" };
	struct mon_buf b;

	mon_buf_init(&b);
	mon_expo_histogram_us(&b, "ufo_lat_seconds", &l, 1, buckets, 4, 1.5);
	assert_string_equal(b.data,
		"ufo_lat_seconds_bucket{object=\"1\",le=\"1e-06\"} 1\n"
		"ufo_lat_seconds_bucket{object=\"1\",le=\"2e-06\"} 1\n"
		"ufo_lat_seconds_bucket{object=\"1\",le=\"4e-06\"} 3\n"
		"ufo_lat_seconds_bucket{object=\"1\",le=\"+Inf\"} 6\n"
		"ufo_lat_seconds_sum{object=\"1\"} 1.5\n"
		"ufo_lat_seconds_count{object=\"1\"} 6\n");
	mon_buf_free(&b);
}

static void test_json_writer(void **state)
{
	struct mon_buf b;
	struct mon_json j;

	mon_buf_init(&b);
	mon_json_init(&j, &b);
	mon_json_object(&j, NULL);
	mon_json_str(&j, "s", "q\"b\\s\x01\n");
	mon_json_u64(&j, "n", 42);
	mon_json_double(&j, "d", 0.5);
	mon_json_double(&j, "nan", 0.0 / 0.0);
	mon_json_bool(&j, "t", true);
	mon_json_str(&j, "null", NULL);
	mon_json_array(&j, "a");
	mon_json_u64(&j, NULL, 1);
	mon_json_object(&j, NULL);
	mon_json_end(&j);
	mon_json_array(&j, NULL);
	mon_json_end(&j);
	mon_json_end(&j);
	mon_json_end(&j);
	assert_false(b.oom);
	assert_string_equal(b.data,
		"{\"s\":\"q\\\"b\\\\s\\u0001\\u000a\",\"n\":42,\"d\":0.5,"
		"\"nan\":null,\"t\":true,\"null\":null,\"a\":[1,{},[]]}");
	assert_true(t_json_valid(b.data));
	mon_buf_free(&b);
}

/* Unbalanced use is reported through oom, never as broken JSON. */
static void test_json_misuse(void **state)
{
	struct mon_buf b;
	struct mon_json j;

	mon_buf_init(&b);
	mon_json_init(&j, &b);
	mon_json_end(&j);
	assert_true(b.oom);
	mon_buf_free(&b);

	mon_buf_init(&b);
	mon_json_init(&j, &b);
	for (int i = 0; i < MON_JSON_DEPTH + 2; i++)
		mon_json_array(&j, NULL);
	assert_true(b.oom);
	mon_buf_free(&b);
}

static void test_json_checker(void **state)
{
	assert_true(t_json_valid("{\"a\":[1,-2.5e3,true,null,\"\\u00e9\"]}"));
	assert_false(t_json_valid("{\"a\":1,}"));
	assert_false(t_json_valid("{\"a\" 1}"));
	assert_false(t_json_valid("[1 2]"));
	assert_false(t_json_valid("{\"a\":NaN}"));
	assert_false(t_json_valid("\"raw\ncontrol\""));
}

static void test_buffer_growth(void **state)
{
	struct mon_buf b;

	mon_buf_init(&b);
	for (int i = 0; i < 100000; i++)
		mon_buf_printf(&b, "%d\n", i);
	assert_false(b.oom);
	assert_true(b.len > 500000);
	assert_string_equal(b.data + b.len - 6, "99999\n");
	mon_buf_free(&b);
}

static void test_parse_addr(void **state)
{
	char host[MON_ADDR_MAX];
	uint16_t port;

	assert_int_equal(mon_parse_addr("127.0.0.1:9170", host, &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 9170);
	assert_int_equal(mon_parse_addr(":0", host, &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(mon_parse_addr("localhost:80", host, &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(mon_parse_addr("[::1]:9100", host, &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 9100);
	assert_int_equal(mon_parse_addr("0.0.0.0:65535", host, &port), 0);
	assert_int_equal(mon_parse_addr("127.0.0.1", host, &port), -EINVAL);
	assert_int_equal(mon_parse_addr("127.0.0.1:65536", host, &port), -EINVAL);
	assert_int_equal(mon_parse_addr("127.0.0.1:-1", host, &port), -EINVAL);
	assert_int_equal(mon_parse_addr("example.com:80", host, &port), -EINVAL);
	assert_int_equal(mon_parse_addr("::1:80", host, &port), -EINVAL);
	assert_int_equal(mon_parse_addr(NULL, host, &port), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_family_and_samples),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_json_writer),
		cmocka_unit_test(test_json_misuse),
		cmocka_unit_test(test_json_checker),
		cmocka_unit_test(test_buffer_growth),
		cmocka_unit_test(test_parse_addr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
