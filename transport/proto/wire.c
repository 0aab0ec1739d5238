/* SPDX-License-Identifier: MIT */
/* Wire format checks over the codec: names, CREATE, and error codes. */
#include <errno.h>

#include "wire.h"

int wire_check_name(const char *name, size_t len)
{
	if (!len || len > WIRE_MAX_NAME || name[0] == '.')
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return -EINVAL;
	}
	return 0;
}

int wire_parse_name(const void *payload, uint32_t len, const char **name,
		    uint16_t *name_len)
{
	struct wire_name n;
	int off = wire_get_name(payload, len, &n);

	if (off < 0 || len - (uint32_t)off != n.name_len)
		return -EPROTO;
	*name = (const char *)payload + off;
	*name_len = n.name_len;
	return wire_check_name(*name, n.name_len);
}

int wire_parse_create(const void *payload, uint32_t len,
		      struct wire_create *out, const char **name)
{
	int off = wire_get_create(payload, len, out);

	if (off < 0 || len - (uint32_t)off != out->name_len)
		return -EPROTO;
	*name = (const char *)payload + off;
	if (!out->size || out->size > WIRE_MAX_OBJECT_SIZE)
		return out->size ? -E2BIG : -EINVAL;
	if (out->chunk_size < WIRE_MIN_CHUNK || out->chunk_size > WIRE_MAX_CHUNK ||
	    out->chunk_size % WIRE_MIN_CHUNK || out->flags)
		return -EINVAL;
	return wire_check_name(*name, out->name_len);
}

/* One table for both directions of the status ↔ errno mapping. */
static const struct {
	uint32_t status;
	int err; /* positive errno */
	const char *name;
} status_map[] = {
	{ WIRE_OK, 0, "ok" },
	{ WIRE_EPROTO, EPROTO, "malformed frame" },
	{ WIRE_EVERSION, EPROTONOSUPPORT, "no common protocol version" },
	{ WIRE_EAUTH, EACCES, "authentication failed" },
	{ WIRE_ENOENT, ENOENT, "no such object" },
	{ WIRE_EEXIST, EEXIST, "object exists" },
	{ WIRE_EINVAL, EINVAL, "invalid argument" },
	{ WIRE_ERANGE, ERANGE, "outside the object" },
	{ WIRE_E2BIG, E2BIG, "over a limit" },
	{ WIRE_EIO, EIO, "storage error" },
	{ WIRE_ENOSPC, ENOSPC, "storage full" },
	{ WIRE_EBUSY, EBUSY, "server busy" },
	{ WIRE_ECSUM, EBADMSG, "checksum mismatch" },
	{ WIRE_ENOTAUTH, EPERM, "not authenticated" },
	{ WIRE_ESHUTDOWN, ESHUTDOWN, "server shutting down" },
	{ WIRE_ESTALE, ESTALE, "stale placement" },
};

int wire_status_to_errno(uint32_t status)
{
	for (size_t i = 0; i < sizeof(status_map) / sizeof(status_map[0]); i++)
		if (status_map[i].status == status)
			return -status_map[i].err;
	return -EPROTO;
}

uint32_t wire_errno_to_status(int neg_errno)
{
	if (!neg_errno)
		return WIRE_OK;
	for (size_t i = 1; i < sizeof(status_map) / sizeof(status_map[0]); i++)
		if (status_map[i].err == -neg_errno)
			return status_map[i].status;
	if (neg_errno == -EDQUOT)
		return WIRE_ENOSPC;
	return WIRE_EIO;
}

const char *wire_status_name(uint32_t status)
{
	for (size_t i = 0; i < sizeof(status_map) / sizeof(status_map[0]); i++)
		if (status_map[i].status == status)
			return status_map[i].name;
	return "unknown status";
}

const char *wire_op_name(uint16_t op)
{
	static const char *const names[] = {
		[WIRE_HELLO] = "HELLO", [WIRE_AUTH] = "AUTH",
		[WIRE_CREATE] = "CREATE", [WIRE_OPEN] = "OPEN",
		[WIRE_STAT] = "STAT", [WIRE_LIST] = "LIST",
		[WIRE_DELETE] = "DELETE", [WIRE_READ] = "READ",
		[WIRE_WRITE] = "WRITE", [WIRE_SYNC] = "SYNC",
		[WIRE_PING] = "PING", [WIRE_MAP] = "MAP",
		[WIRE_COMMIT] = "COMMIT", [WIRE_VWRITE] = "VWRITE",
		[WIRE_VERSIONS] = "VERSIONS", [WIRE_DISCARD] = "DISCARD",
		[WIRE_NODE] = "NODE", [WIRE_PLACE] = "PLACE",
		[WIRE_PLACEMENT] = "PLACEMENT", [WIRE_HINTS] = "HINTS",
		[WIRE_HINTS_DROP] = "HINTS_DROP", [WIRE_UNMAP] = "UNMAP",
	};

	op &= (uint16_t)~WIRE_RESPONSE;
	return op <= WIRE_OP_MAX && names[op] ? names[op] : "?";
}
