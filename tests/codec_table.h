/* SPDX-License-Identifier: MIT */
/*
 * Every message of the wire codec (transport/proto) as one table of
 * (name, size, put, get), for the tests that walk all of them: t_codec.c
 * and the fuzz target fuzz_codec.c.  One translation unit per program:
 * everything static.
 */
#ifndef T_CODEC_TABLE_H
#define T_CODEC_TABLE_H

#include <stddef.h>

#include "wire.h"

struct codec {
	const char *name;
	size_t size;
	int (*put)(void *buf, size_t cap, const void *m);
	int (*get)(const void *buf, size_t len, void *m);
};

#define CODEC(t)                                                             \
	static int put_##t(void *b, size_t c, const void *m)                 \
	{                                                                    \
		return wire_put_##t(b, c, m);                                \
	}                                                                    \
	static int get_##t(const void *b, size_t l, void *m)                 \
	{                                                                    \
		return wire_get_##t(b, l, m);                                \
	}
CODEC(hdr) CODEC(hello) CODEC(mac) CODEC(create) CODEC(name) CODEC(objinfo)
CODEC(list) CODEC(list_reply) CODEC(list_entry) CODEC(io) CODEC(read_reply)
CODEC(id) CODEC(map) CODEC(unmap) CODEC(vio) CODEC(vq) CODEC(vq_reply) CODEC(node)
CODEC(placement) CODEC(hint_q) CODEC(hint_reply) CODEC(hint) CODEC(hint_drop)
#undef CODEC

#define ROW(t) { #t, sizeof(struct wire_##t), put_##t, get_##t }
static const struct codec codecs[] = {
	ROW(hdr), ROW(hello), ROW(mac), ROW(create), ROW(name), ROW(objinfo),
	ROW(list), ROW(list_reply), ROW(list_entry), ROW(io), ROW(read_reply),
	ROW(id), ROW(map), ROW(unmap), ROW(vio), ROW(vq), ROW(vq_reply), ROW(node),
	ROW(placement), ROW(hint_q), ROW(hint_reply), ROW(hint), ROW(hint_drop),
};
#undef ROW
#define NCODECS (sizeof(codecs) / sizeof(codecs[0]))

#endif /* T_CODEC_TABLE_H */
