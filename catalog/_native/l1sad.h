/* The SAD micro-kernels of catalog._l1kernel (included once, by l1kernel.c): sums of absolute
 * differences of 8-bit rows, portable, AVX2 (32 bytes per vpsadbw) and AVX-512 BW (64 bytes). */
#ifndef CATALOG_L1SAD_H
#define CATALOG_L1SAD_H
#include "native.h"

#define MP 4           /* block outputs: at most this many pool rows (3 with AVX2, 4 with AVX-512) */

/* ---------------------------------------------------------------- SAD micro-kernels */
/* out[a * MP + b] = SAD(q[a], p[b]); q rows and p rows are dp bytes apart */
static void sad_block_scalar(const uint8_t *q, const uint8_t *p, Py_ssize_t dp, int nqm, int npm, int32_t *out) {
    for (int a = 0; a < nqm; a++)
        for (int b = 0; b < npm; b++) {
            const uint8_t *x = q + a * dp, *y = p + b * dp;
            int32_t s = 0;
            for (Py_ssize_t i = 0; i < dp; i++) s += abs((int)x[i] - (int)y[i]);
            out[a * MP + b] = s;
        }
}

#if HAVE_X86
__attribute__((target("avx2"))) static inline int32_t hsum64(__m256i v) {
    __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi64(s, _mm_unpackhi_epi64(s, s));
    return (int32_t)_mm_cvtsi128_si64(s);
}

/* Four 64-bit horizontal sums at once: [sum(A), sum(B), sum(C), sum(D)]. */
__attribute__((target("avx2"))) static inline __m256i hsum4x64(__m256i A, __m256i B, __m256i C, __m256i D) {
    __m256i t0 = _mm256_add_epi64(_mm256_unpacklo_epi64(A, B), _mm256_unpackhi_epi64(A, B));
    __m256i t1 = _mm256_add_epi64(_mm256_unpacklo_epi64(C, D), _mm256_unpackhi_epi64(C, D));
    return _mm256_add_epi64(_mm256_permute2x128_si256(t0, t1, 0x20), _mm256_permute2x128_si256(t0, t1, 0x31));
}

/* SADs of 4 query rows x 3 pool rows; out[b * 4 + a] = SAD(q[a], p[b]). Returns a 12-bit mask of
   the pairs with SAD <= gate[a] (bit b * 4 + a); most calls return 0 and the caller moves on. */
__attribute__((target("avx2"))) static int sad_4x3_avx2(const uint8_t *q, const uint8_t *p, Py_ssize_t dp,
                                                        const int64_t *gate, int64_t *out) {
    __m256i a00 = _mm256_setzero_si256(), a01 = a00, a02 = a00, a10 = a00, a11 = a00, a12 = a00;
    __m256i a20 = a00, a21 = a00, a22 = a00, a30 = a00, a31 = a00, a32 = a00;
    const uint8_t *q0 = q, *q1 = q + dp, *q2 = q + 2 * dp, *q3 = q + 3 * dp;
    const uint8_t *p0 = p, *p1 = p + dp, *p2 = p + 2 * dp;
    for (Py_ssize_t i = 0; i < dp; i += 32) {
        __m256i y0 = _mm256_load_si256((const __m256i *)(p0 + i));
        __m256i y1 = _mm256_load_si256((const __m256i *)(p1 + i));
        __m256i y2 = _mm256_load_si256((const __m256i *)(p2 + i));
        __m256i x = _mm256_load_si256((const __m256i *)(q0 + i));
        a00 = _mm256_add_epi64(a00, _mm256_sad_epu8(x, y0));
        a01 = _mm256_add_epi64(a01, _mm256_sad_epu8(x, y1));
        a02 = _mm256_add_epi64(a02, _mm256_sad_epu8(x, y2));
        x = _mm256_load_si256((const __m256i *)(q1 + i));
        a10 = _mm256_add_epi64(a10, _mm256_sad_epu8(x, y0));
        a11 = _mm256_add_epi64(a11, _mm256_sad_epu8(x, y1));
        a12 = _mm256_add_epi64(a12, _mm256_sad_epu8(x, y2));
        x = _mm256_load_si256((const __m256i *)(q2 + i));
        a20 = _mm256_add_epi64(a20, _mm256_sad_epu8(x, y0));
        a21 = _mm256_add_epi64(a21, _mm256_sad_epu8(x, y1));
        a22 = _mm256_add_epi64(a22, _mm256_sad_epu8(x, y2));
        x = _mm256_load_si256((const __m256i *)(q3 + i));
        a30 = _mm256_add_epi64(a30, _mm256_sad_epu8(x, y0));
        a31 = _mm256_add_epi64(a31, _mm256_sad_epu8(x, y1));
        a32 = _mm256_add_epi64(a32, _mm256_sad_epu8(x, y2));
    }
    __m256i g = _mm256_loadu_si256((const __m256i *)gate);
    __m256i s0 = hsum4x64(a00, a10, a20, a30), s1 = hsum4x64(a01, a11, a21, a31), s2 = hsum4x64(a02, a12, a22, a32);
    int over = _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(s0, g))) |
               _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(s1, g))) << 4 |
               _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(s2, g))) << 8;
    if (over == 0xFFF) return 0;
    _mm256_storeu_si256((__m256i *)out, s0);
    _mm256_storeu_si256((__m256i *)(out + 4), s1);
    _mm256_storeu_si256((__m256i *)(out + 8), s2);
    return ~over & 0xFFF;
}

/* SAD of one query row and one pool row */
__attribute__((target("avx2"))) static int32_t sad_1x1_avx2(const uint8_t *x, const uint8_t *y, Py_ssize_t dp) {
    __m256i acc = _mm256_setzero_si256(), acc2 = acc;
    Py_ssize_t i = 0;
    for (; i + 64 <= dp; i += 64) {
        acc = _mm256_add_epi64(acc, _mm256_sad_epu8(_mm256_load_si256((const __m256i *)(x + i)),
                                                    _mm256_load_si256((const __m256i *)(y + i))));
        acc2 = _mm256_add_epi64(acc2, _mm256_sad_epu8(_mm256_load_si256((const __m256i *)(x + i + 32)),
                                                      _mm256_load_si256((const __m256i *)(y + i + 32))));
    }
    if (i < dp)
        acc = _mm256_add_epi64(acc, _mm256_sad_epu8(_mm256_load_si256((const __m256i *)(x + i)),
                                                    _mm256_load_si256((const __m256i *)(y + i))));
    return hsum64(_mm256_add_epi64(acc, acc2));
}


/* SADs of 4 query rows x 4 pool rows (dp a multiple of 64); out[b * 4 + a] = SAD(q[a], p[b]).
   Returns a 16-bit mask of the pairs with SAD <= gate[a] (bit b * 4 + a). */
#define SAD4(acc0, acc1, acc2, acc3, x)                                 \
    acc0 = _mm512_add_epi64(acc0, _mm512_sad_epu8(x, y0));              \
    acc1 = _mm512_add_epi64(acc1, _mm512_sad_epu8(x, y1));              \
    acc2 = _mm512_add_epi64(acc2, _mm512_sad_epu8(x, y2));              \
    acc3 = _mm512_add_epi64(acc3, _mm512_sad_epu8(x, y3));
__attribute__((target("avx512f,avx512bw,avx2"))) static inline __m256i fold512(__m512i v) {
    return _mm256_add_epi64(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}
__attribute__((target("avx512f,avx512bw,avx2"))) static int sad_4x4_avx512(const uint8_t *q, const uint8_t *p,
                                                                         Py_ssize_t dp, const int64_t *gate,
                                                                         int64_t *out) {
    __m512i a00 = _mm512_setzero_si512(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00,
            a13 = a00, a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
    const uint8_t *q0 = q, *q1 = q + dp, *q2 = q + 2 * dp, *q3 = q + 3 * dp;
    const uint8_t *p0 = p, *p1 = p + dp, *p2 = p + 2 * dp, *p3 = p + 3 * dp;
    for (Py_ssize_t i = 0; i < dp; i += 64) {
        __m512i y0 = _mm512_load_si512((const void *)(p0 + i)), y1 = _mm512_load_si512((const void *)(p1 + i));
        __m512i y2 = _mm512_load_si512((const void *)(p2 + i)), y3 = _mm512_load_si512((const void *)(p3 + i));
        __m512i x = _mm512_load_si512((const void *)(q0 + i));
        SAD4(a00, a01, a02, a03, x)
        x = _mm512_load_si512((const void *)(q1 + i));
        SAD4(a10, a11, a12, a13, x)
        x = _mm512_load_si512((const void *)(q2 + i));
        SAD4(a20, a21, a22, a23, x)
        x = _mm512_load_si512((const void *)(q3 + i));
        SAD4(a30, a31, a32, a33, x)
    }
    __m256i g = _mm256_loadu_si256((const __m256i *)gate);
    __m256i s0 = hsum4x64(fold512(a00), fold512(a10), fold512(a20), fold512(a30));
    __m256i s1 = hsum4x64(fold512(a01), fold512(a11), fold512(a21), fold512(a31));
    __m256i s2 = hsum4x64(fold512(a02), fold512(a12), fold512(a22), fold512(a32));
    __m256i s3 = hsum4x64(fold512(a03), fold512(a13), fold512(a23), fold512(a33));
    int over = _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(s0, g))) |
               _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(s1, g))) << 4 |
               _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(s2, g))) << 8 |
               _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(s3, g))) << 12;
    if (over == 0xFFFF) return 0;
    _mm256_storeu_si256((__m256i *)out, s0);
    _mm256_storeu_si256((__m256i *)(out + 4), s1);
    _mm256_storeu_si256((__m256i *)(out + 8), s2);
    _mm256_storeu_si256((__m256i *)(out + 12), s3);
    return ~over & 0xFFFF;
}

/* The same for rows of at most 256 bytes, where every SAD fits 16 bits (255 * 256 = 65280): each
   query's four sums are packed into the 16-bit fields of one 64-bit lane before the horizontal
   reduction, a quarter of the shuffles (the reduction is most of the cost of a short block). */
__attribute__((target("avx512f,avx512bw,avx2"))) static int sad_4x4_avx512_short(const uint8_t *q, const uint8_t *p,
                                                                               Py_ssize_t dp, const int64_t *gate,
                                                                               int64_t *out) {
    __m512i a00 = _mm512_setzero_si512(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00,
            a13 = a00, a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
    const uint8_t *q0 = q, *q1 = q + dp, *q2 = q + 2 * dp, *q3 = q + 3 * dp;
    const uint8_t *p0 = p, *p1 = p + dp, *p2 = p + 2 * dp, *p3 = p + 3 * dp;
    for (Py_ssize_t i = 0; i < dp; i += 64) {
        __m512i y0 = _mm512_load_si512((const void *)(p0 + i)), y1 = _mm512_load_si512((const void *)(p1 + i));
        __m512i y2 = _mm512_load_si512((const void *)(p2 + i)), y3 = _mm512_load_si512((const void *)(p3 + i));
        __m512i x = _mm512_load_si512((const void *)(q0 + i));
        SAD4(a00, a01, a02, a03, x)
        x = _mm512_load_si512((const void *)(q1 + i));
        SAD4(a10, a11, a12, a13, x)
        x = _mm512_load_si512((const void *)(q2 + i));
        SAD4(a20, a21, a22, a23, x)
        x = _mm512_load_si512((const void *)(q3 + i));
        SAD4(a30, a31, a32, a33, x)
    }
#define PACK4(a, b, c, d)                                                                                  \
    _mm512_add_epi64(_mm512_add_epi64(a, _mm512_slli_epi64(b, 16)),                                       \
                     _mm512_add_epi64(_mm512_slli_epi64(c, 32), _mm512_slli_epi64(d, 48)))
    /* lane a holds SAD(q[a], p[b]) in bits 16 b .. 16 b + 15 */
    __m256i s = hsum4x64(fold512(PACK4(a00, a01, a02, a03)), fold512(PACK4(a10, a11, a12, a13)),
                         fold512(PACK4(a20, a21, a22, a23)), fold512(PACK4(a30, a31, a32, a33)));
#undef PACK4
    uint64_t g16[4];
    for (int a = 0; a < 4; a++) g16[a] = (uint64_t)(gate[a] < 0xFFFF ? gate[a] : 0xFFFF) * 0x0001000100010001ULL;
    __m256i g = _mm256_loadu_si256((const __m256i *)g16);
    uint32_t pass = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi16(_mm256_min_epu16(s, g), s));
    if (pass == 0) return 0;
    uint16_t f[16];
    _mm256_storeu_si256((__m256i *)f, s);
    int mask = 0;
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            out[b * 4 + a] = f[a * 4 + b];
            if (pass >> (2 * (a * 4 + b)) & 1) mask |= 1 << (b * 4 + a);
        }
    return mask;
}
#undef SAD4

/* SAD of one query row and one pool row (dp a multiple of 64) */
__attribute__((target("avx512f,avx512bw,avx2"))) static int32_t sad_1x1_avx512(const uint8_t *x, const uint8_t *y,
                                                                             Py_ssize_t dp) {
    __m512i acc = _mm512_setzero_si512(), acc2 = acc, acc3 = acc, acc4 = acc;
    Py_ssize_t i = 0;
    for (; i + 256 <= dp; i += 256) { /* four independent sums: latency, not throughput, bounds one pair */
        acc = _mm512_add_epi64(acc, _mm512_sad_epu8(_mm512_load_si512((const void *)(x + i)),
                                                    _mm512_load_si512((const void *)(y + i))));
        acc2 = _mm512_add_epi64(acc2, _mm512_sad_epu8(_mm512_load_si512((const void *)(x + i + 64)),
                                                      _mm512_load_si512((const void *)(y + i + 64))));
        acc3 = _mm512_add_epi64(acc3, _mm512_sad_epu8(_mm512_load_si512((const void *)(x + i + 128)),
                                                      _mm512_load_si512((const void *)(y + i + 128))));
        acc4 = _mm512_add_epi64(acc4, _mm512_sad_epu8(_mm512_load_si512((const void *)(x + i + 192)),
                                                      _mm512_load_si512((const void *)(y + i + 192))));
    }
    for (; i < dp; i += 64)
        acc = _mm512_add_epi64(acc, _mm512_sad_epu8(_mm512_load_si512((const void *)(x + i)),
                                                    _mm512_load_si512((const void *)(y + i))));
    return hsum64(fold512(_mm512_add_epi64(_mm512_add_epi64(acc, acc2), _mm512_add_epi64(acc3, acc4))));
}
#endif

#endif
