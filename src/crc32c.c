/*
 * crc32c.c - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
 *
 * Two implementations behind one function, chosen once per process:
 *
 * - SSE4.2 (x86-64 CPUs since 2008): the crc32 instruction folds 8 bytes
 *   per call but has a latency of 3 cycles, so one dependent chain runs at
 *   a third of the instruction's throughput.  Long buffers are therefore cut
 *   into three adjacent streams computed in parallel and then joined: the
 *   CRC register is linear, so the CRC of A||B is the register after A
 *   advanced over len(B) zero bytes, xor the register of B started from 0.
 *   "Advance over n zero bytes" is a fixed linear map of 32 bits, kept as
 *   four 256-entry tables (one per byte of the register) for the two stream
 *   lengths used.  This is the method of Intel's white paper "Fast CRC
 *   Computation for iSCSI Polynomial Using CRC32 Instruction".
 *
 * - Anywhere else: slicing-by-8 tables, about 1 byte per cycle.
 *
 * The tables are built on first use under pthread_once; afterwards every
 * call reads only immutable data, so crc32c() is safe from any thread.
 */
#include "config.h"

#include <pthread.h>
#include <string.h>

#include "dmfs/crc32c.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define CRC32C_HAVE_HW 1
#include <nmmintrin.h>
#endif

#define CRC32C_POLY 0x82F63B78u /* reflected Castagnoli polynomial */

#define CRC32C_LONG 8192 /* bytes per stream, big buffers */
#define CRC32C_SHORT 256 /* bytes per stream, the remainder */

/* slicing-by-8; table[0] is the plain byte-at-a-time table */
static uint32_t crc32c_table[8][256];
/* advance a register over CRC32C_LONG / CRC32C_SHORT zero bytes */
static uint32_t crc32c_zeros_long[4][256];
static uint32_t crc32c_zeros_short[4][256];

static int crc32c_use_hw;
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

/* Raw register update (no pre/post inversion), one byte at a time. */
static uint32_t crc32c_sw_bytes(uint32_t crc, const unsigned char *p,
				size_t len)
{
	while (len--)
		crc = crc32c_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

/* Raw register update, slicing-by-8. */
static uint32_t crc32c_sw(uint32_t crc, const unsigned char *p, size_t len)
{
	while (len && ((uintptr_t)p & 7)) {
		crc = crc32c_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
		len--;
	}
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		w = __builtin_bswap64(w);
#endif
		w ^= crc;
		crc = crc32c_table[7][w & 0xff] ^
		      crc32c_table[6][(w >> 8) & 0xff] ^
		      crc32c_table[5][(w >> 16) & 0xff] ^
		      crc32c_table[4][(w >> 24) & 0xff] ^
		      crc32c_table[3][(w >> 32) & 0xff] ^
		      crc32c_table[2][(w >> 40) & 0xff] ^
		      crc32c_table[1][(w >> 48) & 0xff] ^
		      crc32c_table[0][w >> 56];
		p += 8;
		len -= 8;
	}
	return crc32c_sw_bytes(crc, p, len);
}

/*
 * Tabulate the linear map "advance the register over n zero bytes": the
 * image of each of the 32 unit vectors, then every byte value of each of the
 * four register bytes as the xor of the images of its bits.
 */
static void crc32c_zeros_build(uint32_t zeros[4][256], size_t n)
{
	static const unsigned char zero[CRC32C_LONG];
	uint32_t col[32];

	for (int i = 0; i < 32; i++)
		col[i] = crc32c_sw(1u << i, zero, n);
	for (int k = 0; k < 4; k++) {
		for (int b = 0; b < 256; b++) {
			uint32_t v = 0;

			for (int i = 0; i < 8; i++)
				if (b & (1 << i))
					v ^= col[8 * k + i];
			zeros[k][b] = v;
		}
	}
}

static uint32_t crc32c_shift(uint32_t zeros[4][256], uint32_t crc)
{
	return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^
	       zeros[2][(crc >> 16) & 0xff] ^ zeros[3][crc >> 24];
}

static void crc32c_init(void)
{
	for (uint32_t b = 0; b < 256; b++) {
		uint32_t c = b;

		for (int i = 0; i < 8; i++)
			c = c & 1 ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		crc32c_table[0][b] = c;
	}
	for (int b = 0; b < 256; b++) {
		uint32_t c = crc32c_table[0][b];

		for (int k = 1; k < 8; k++) {
			c = crc32c_table[0][c & 0xff] ^ (c >> 8);
			crc32c_table[k][b] = c;
		}
	}
	crc32c_zeros_build(crc32c_zeros_long, CRC32C_LONG);
	crc32c_zeros_build(crc32c_zeros_short, CRC32C_SHORT);
#ifdef CRC32C_HAVE_HW
	__builtin_cpu_init();
	crc32c_use_hw = __builtin_cpu_supports("sse4.2");
#endif
}

#ifdef CRC32C_HAVE_HW
static inline uint64_t load64(const unsigned char *p)
{
	uint64_t w;

	memcpy(&w, p, 8);
	return w;
}

/* Raw register update with the crc32 instruction, three streams at once. */
__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t crc32, const unsigned char *p, size_t len)
{
	uint64_t crc0 = crc32, crc1, crc2;

	while (len && ((uintptr_t)p & 7)) {
		crc0 = _mm_crc32_u8((uint32_t)crc0, *p++);
		len--;
	}
	while (len >= 3 * CRC32C_LONG) {
		const unsigned char *end = p + CRC32C_LONG;

		crc1 = crc2 = 0;
		do {
			crc0 = _mm_crc32_u64(crc0, load64(p));
			crc1 = _mm_crc32_u64(crc1, load64(p + CRC32C_LONG));
			crc2 = _mm_crc32_u64(crc2, load64(p + 2 * CRC32C_LONG));
			p += 8;
		} while (p < end);
		crc0 = crc32c_shift(crc32c_zeros_long, (uint32_t)crc0) ^ crc1;
		crc0 = crc32c_shift(crc32c_zeros_long, (uint32_t)crc0) ^ crc2;
		p += 2 * CRC32C_LONG;
		len -= 3 * CRC32C_LONG;
	}
	while (len >= 3 * CRC32C_SHORT) {
		const unsigned char *end = p + CRC32C_SHORT;

		crc1 = crc2 = 0;
		do {
			crc0 = _mm_crc32_u64(crc0, load64(p));
			crc1 = _mm_crc32_u64(crc1, load64(p + CRC32C_SHORT));
			crc2 =
			    _mm_crc32_u64(crc2, load64(p + 2 * CRC32C_SHORT));
			p += 8;
		} while (p < end);
		crc0 = crc32c_shift(crc32c_zeros_short, (uint32_t)crc0) ^ crc1;
		crc0 = crc32c_shift(crc32c_zeros_short, (uint32_t)crc0) ^ crc2;
		p += 2 * CRC32C_SHORT;
		len -= 3 * CRC32C_SHORT;
	}
	while (len >= 8) {
		crc0 = _mm_crc32_u64(crc0, load64(p));
		p += 8;
		len -= 8;
	}
	while (len) {
		crc0 = _mm_crc32_u8((uint32_t)crc0, *p++);
		len--;
	}
	return (uint32_t)crc0;
}
#endif

uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;

	pthread_once(&crc32c_once, crc32c_init);
	crc = ~crc;
#ifdef CRC32C_HAVE_HW
	if (crc32c_use_hw)
		return ~crc32c_hw(crc, p, len);
#endif
	return ~crc32c_sw(crc, p, len);
}
