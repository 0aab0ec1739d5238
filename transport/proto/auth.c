/* SPDX-License-Identifier: MIT */
/* Shared-secret authentication: HMAC-SHA256 and randomness from libsodium. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wire.h"

int wire_crypto_init(void)
{
	return sodium_init() < 0 ? -EIO : 0;
}

void wire_auth_mac(const uint8_t *secret, size_t secret_len, const char *role,
		   const uint8_t first[WIRE_NONCE],
		   const uint8_t second[WIRE_NONCE], uint8_t out[WIRE_MAC])
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, secret, secret_len);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)role, strlen(role));
	crypto_auth_hmacsha256_update(&st, first, WIRE_NONCE);
	crypto_auth_hmacsha256_update(&st, second, WIRE_NONCE);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

bool wire_mac_equal(const uint8_t a[WIRE_MAC], const uint8_t b[WIRE_MAC])
{
	return sodium_memcmp(a, b, WIRE_MAC) == 0; /* constant time */
}

void wire_random(void *buf, size_t len)
{
	randombytes_buf(buf, len);
}

int wire_read_secret(const char *path, uint8_t *buf, size_t cap, bool *loose)
{
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	*loose = (st.st_mode & 077) != 0;
	n = read(fd, buf, cap);
	if (n < 0)
		n = -errno;
	else if ((size_t)n == cap)
		n = -EINVAL; /* longer than cap */
	close(fd);
	if (n < 0)
		return (int)n;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
			 buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	return n < WIRE_MIN_SECRET ? -EINVAL : (int)n;
}
