/* The SAD kernels of catalog._codes (included once by codes.c): 4 query codes x 1 or 2 rows, 1 query
 * code x 4 rows, in AVX-512 BW, AVX2 and portable C, and sad_tile() that picks among them. */
#ifndef CATALOG_CODES_SAD_H
#define CATALOG_CODES_SAD_H

/* ---------------------------------------------------------------- SAD of 4 query codes x 1 row */
static void sad4_portable(const uint8_t *const *q, int nq, const uint8_t *y, Py_ssize_t dp, int32_t *out) {
    for (int a = 0; a < nq; a++) {
        const uint8_t *x = q[a];
        int32_t s = 0;
        for (Py_ssize_t i = 0; i < dp; i++) s += abs((int)x[i] - (int)y[i]);
        out[a] = s;
    }
}

#if HAVE_X86
__attribute__((target("avx2"))) static inline int64_t hsum256(__m256i v) {
    __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi64(s, _mm_unpackhi_epi64(s, s));
    return _mm_cvtsi128_si64(s);
}

__attribute__((target("avx2"))) static void sad4_avx2(const uint8_t *const *q, int nq, const uint8_t *y,
                                                      Py_ssize_t dp, int32_t *out) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    const uint8_t *q0 = q[0], *q1 = q[nq > 1 ? 1 : 0], *q2 = q[nq > 2 ? 2 : 0], *q3 = q[nq > 3 ? 3 : 0];
    for (Py_ssize_t i = 0; i < dp; i += 32) {
        __m256i r = _mm256_loadu_si256((const __m256i *)(y + i));
        a0 = _mm256_add_epi64(a0, _mm256_sad_epu8(r, _mm256_loadu_si256((const __m256i *)(q0 + i))));
        a1 = _mm256_add_epi64(a1, _mm256_sad_epu8(r, _mm256_loadu_si256((const __m256i *)(q1 + i))));
        a2 = _mm256_add_epi64(a2, _mm256_sad_epu8(r, _mm256_loadu_si256((const __m256i *)(q2 + i))));
        a3 = _mm256_add_epi64(a3, _mm256_sad_epu8(r, _mm256_loadu_si256((const __m256i *)(q3 + i))));
    }
    int32_t v[4] = {(int32_t)hsum256(a0), (int32_t)hsum256(a1), (int32_t)hsum256(a2), (int32_t)hsum256(a3)};
    for (int a = 0; a < nq; a++) out[a] = v[a];
}

/* 4 query codes x 2 rows: out[a] for row y, out[4 + a] for row y + dp (one load of each per step) */
__attribute__((target("avx512f,avx512bw"))) static void sad4x2_avx512(const uint8_t *const *q, const uint8_t *y,
                                                                      Py_ssize_t dp, int64_t *out) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    const uint8_t *q0 = q[0], *q1 = q[1], *q2 = q[2], *q3 = q[3], *z = y + dp;
    Py_ssize_t i = 0;
    for (; i + 64 <= dp; i += 64) {
        __m512i r = _mm512_loadu_si512((const void *)(y + i)), t = _mm512_loadu_si512((const void *)(z + i));
        __m512i x = _mm512_loadu_si512((const void *)(q0 + i));
        a0 = _mm512_add_epi64(a0, _mm512_sad_epu8(r, x)); b0 = _mm512_add_epi64(b0, _mm512_sad_epu8(t, x));
        x = _mm512_loadu_si512((const void *)(q1 + i));
        a1 = _mm512_add_epi64(a1, _mm512_sad_epu8(r, x)); b1 = _mm512_add_epi64(b1, _mm512_sad_epu8(t, x));
        x = _mm512_loadu_si512((const void *)(q2 + i));
        a2 = _mm512_add_epi64(a2, _mm512_sad_epu8(r, x)); b2 = _mm512_add_epi64(b2, _mm512_sad_epu8(t, x));
        x = _mm512_loadu_si512((const void *)(q3 + i));
        a3 = _mm512_add_epi64(a3, _mm512_sad_epu8(r, x)); b3 = _mm512_add_epi64(b3, _mm512_sad_epu8(t, x));
    }
    if (i < dp) { /* a 32-byte tail (rows are padded to 32), folded into the low half */
        __m256i r = _mm256_loadu_si256((const __m256i *)(y + i)), t = _mm256_loadu_si256((const __m256i *)(z + i));
        __m256i x = _mm256_loadu_si256((const __m256i *)(q0 + i));
        a0 = _mm512_add_epi64(a0, _mm512_zextsi256_si512(_mm256_sad_epu8(r, x)));
        b0 = _mm512_add_epi64(b0, _mm512_zextsi256_si512(_mm256_sad_epu8(t, x)));
        x = _mm256_loadu_si256((const __m256i *)(q1 + i));
        a1 = _mm512_add_epi64(a1, _mm512_zextsi256_si512(_mm256_sad_epu8(r, x)));
        b1 = _mm512_add_epi64(b1, _mm512_zextsi256_si512(_mm256_sad_epu8(t, x)));
        x = _mm256_loadu_si256((const __m256i *)(q2 + i));
        a2 = _mm512_add_epi64(a2, _mm512_zextsi256_si512(_mm256_sad_epu8(r, x)));
        b2 = _mm512_add_epi64(b2, _mm512_zextsi256_si512(_mm256_sad_epu8(t, x)));
        x = _mm256_loadu_si256((const __m256i *)(q3 + i));
        a3 = _mm512_add_epi64(a3, _mm512_zextsi256_si512(_mm256_sad_epu8(r, x)));
        b3 = _mm512_add_epi64(b3, _mm512_zextsi256_si512(_mm256_sad_epu8(t, x)));
    }
    /* Pack the 8 sums into fewer horizontal reductions: every lane (and a row's total) is at most
     * 255 dp, so with dp <= 256 four sums fit 16-bit fields of one 64-bit lane, else two 32-bit ones. */
    if (dp <= 256) {
        __m512i pa = _mm512_or_si512(_mm512_or_si512(a0, _mm512_slli_epi64(a1, 16)),
                                     _mm512_or_si512(_mm512_slli_epi64(a2, 32), _mm512_slli_epi64(a3, 48)));
        __m512i pb = _mm512_or_si512(_mm512_or_si512(b0, _mm512_slli_epi64(b1, 16)),
                                     _mm512_or_si512(_mm512_slli_epi64(b2, 32), _mm512_slli_epi64(b3, 48)));
        uint64_t ra = (uint64_t)_mm512_reduce_add_epi64(pa), rb = (uint64_t)_mm512_reduce_add_epi64(pb);
        for (int a = 0; a < 4; a++) {
            out[a] = (int64_t)((ra >> (16 * a)) & 0xffff);
            out[4 + a] = (int64_t)((rb >> (16 * a)) & 0xffff);
        }
        return;
    }
    uint64_t r01 = (uint64_t)_mm512_reduce_add_epi64(_mm512_or_si512(a0, _mm512_slli_epi64(a1, 32)));
    uint64_t r23 = (uint64_t)_mm512_reduce_add_epi64(_mm512_or_si512(a2, _mm512_slli_epi64(a3, 32)));
    uint64_t s01 = (uint64_t)_mm512_reduce_add_epi64(_mm512_or_si512(b0, _mm512_slli_epi64(b1, 32)));
    uint64_t s23 = (uint64_t)_mm512_reduce_add_epi64(_mm512_or_si512(b2, _mm512_slli_epi64(b3, 32)));
    out[0] = (int64_t)(r01 & 0xffffffffu); out[1] = (int64_t)(r01 >> 32);
    out[2] = (int64_t)(r23 & 0xffffffffu); out[3] = (int64_t)(r23 >> 32);
    out[4] = (int64_t)(s01 & 0xffffffffu); out[5] = (int64_t)(s01 >> 32);
    out[6] = (int64_t)(s23 & 0xffffffffu); out[7] = (int64_t)(s23 >> 32);
}

__attribute__((target("avx2"))) static void sad4x2_avx2(const uint8_t *const *q, const uint8_t *y, Py_ssize_t dp,
                                                        int64_t *out) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    const uint8_t *q0 = q[0], *q1 = q[1], *q2 = q[2], *q3 = q[3], *z = y + dp;
    for (Py_ssize_t i = 0; i < dp; i += 32) {
        __m256i r = _mm256_loadu_si256((const __m256i *)(y + i)), t = _mm256_loadu_si256((const __m256i *)(z + i));
        __m256i x = _mm256_loadu_si256((const __m256i *)(q0 + i));
        a0 = _mm256_add_epi64(a0, _mm256_sad_epu8(r, x)); b0 = _mm256_add_epi64(b0, _mm256_sad_epu8(t, x));
        x = _mm256_loadu_si256((const __m256i *)(q1 + i));
        a1 = _mm256_add_epi64(a1, _mm256_sad_epu8(r, x)); b1 = _mm256_add_epi64(b1, _mm256_sad_epu8(t, x));
        x = _mm256_loadu_si256((const __m256i *)(q2 + i));
        a2 = _mm256_add_epi64(a2, _mm256_sad_epu8(r, x)); b2 = _mm256_add_epi64(b2, _mm256_sad_epu8(t, x));
        x = _mm256_loadu_si256((const __m256i *)(q3 + i));
        a3 = _mm256_add_epi64(a3, _mm256_sad_epu8(r, x)); b3 = _mm256_add_epi64(b3, _mm256_sad_epu8(t, x));
    }
    int64_t v[8] = {hsum256(a0), hsum256(a1), hsum256(a2), hsum256(a3),
                    hsum256(b0), hsum256(b1), hsum256(b2), hsum256(b3)};
    memcpy(out, v, sizeof(v));
}

/* one query code against 4 rows (the single-query case: the query stays in L1, rows stream) */
__attribute__((target("avx2"))) static void sad1x4_avx2(const uint8_t *x, const uint8_t *y, Py_ssize_t dp,
                                                        int32_t *out) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    const uint8_t *y1 = y + dp, *y2 = y + 2 * dp, *y3 = y + 3 * dp;
    for (Py_ssize_t i = 0; i < dp; i += 32) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(x + i));
        a0 = _mm256_add_epi64(a0, _mm256_sad_epu8(q, _mm256_loadu_si256((const __m256i *)(y + i))));
        a1 = _mm256_add_epi64(a1, _mm256_sad_epu8(q, _mm256_loadu_si256((const __m256i *)(y1 + i))));
        a2 = _mm256_add_epi64(a2, _mm256_sad_epu8(q, _mm256_loadu_si256((const __m256i *)(y2 + i))));
        a3 = _mm256_add_epi64(a3, _mm256_sad_epu8(q, _mm256_loadu_si256((const __m256i *)(y3 + i))));
    }
    out[0] = (int32_t)hsum256(a0); out[1] = (int32_t)hsum256(a1);
    out[2] = (int32_t)hsum256(a2); out[3] = (int32_t)hsum256(a3);
}

__attribute__((target("avx512f,avx512bw"))) static void sad4_avx512(const uint8_t *const *q, int nq,
                                                                    const uint8_t *y, Py_ssize_t dp, int32_t *out) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    const uint8_t *q0 = q[0], *q1 = q[nq > 1 ? 1 : 0], *q2 = q[nq > 2 ? 2 : 0], *q3 = q[nq > 3 ? 3 : 0];
    Py_ssize_t i = 0;
    for (; i + 64 <= dp; i += 64) {
        __m512i r = _mm512_loadu_si512((const void *)(y + i));
        a0 = _mm512_add_epi64(a0, _mm512_sad_epu8(r, _mm512_loadu_si512((const void *)(q0 + i))));
        a1 = _mm512_add_epi64(a1, _mm512_sad_epu8(r, _mm512_loadu_si512((const void *)(q1 + i))));
        a2 = _mm512_add_epi64(a2, _mm512_sad_epu8(r, _mm512_loadu_si512((const void *)(q2 + i))));
        a3 = _mm512_add_epi64(a3, _mm512_sad_epu8(r, _mm512_loadu_si512((const void *)(q3 + i))));
    }
    int64_t v[4] = {_mm512_reduce_add_epi64(a0), _mm512_reduce_add_epi64(a1), _mm512_reduce_add_epi64(a2),
                    _mm512_reduce_add_epi64(a3)};
    if (i < dp) { /* a 32-byte tail (rows are padded to 32) */
        __m256i r = _mm256_loadu_si256((const __m256i *)(y + i));
        const uint8_t *qs[4] = {q0, q1, q2, q3};
        for (int a = 0; a < 4; a++)
            v[a] += hsum256(_mm256_sad_epu8(r, _mm256_loadu_si256((const __m256i *)(qs[a] + i))));
    }
    for (int a = 0; a < nq; a++) out[a] = (int32_t)v[a];
}

__attribute__((target("avx512f,avx512bw"))) static void sad1x4_avx512(const uint8_t *x, const uint8_t *y,
                                                                      Py_ssize_t dp, int32_t *out) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    const uint8_t *y1 = y + dp, *y2 = y + 2 * dp, *y3 = y + 3 * dp;
    Py_ssize_t i = 0;
    for (; i + 64 <= dp; i += 64) {
        __m512i q = _mm512_loadu_si512((const void *)(x + i));
        a0 = _mm512_add_epi64(a0, _mm512_sad_epu8(q, _mm512_loadu_si512((const void *)(y + i))));
        a1 = _mm512_add_epi64(a1, _mm512_sad_epu8(q, _mm512_loadu_si512((const void *)(y1 + i))));
        a2 = _mm512_add_epi64(a2, _mm512_sad_epu8(q, _mm512_loadu_si512((const void *)(y2 + i))));
        a3 = _mm512_add_epi64(a3, _mm512_sad_epu8(q, _mm512_loadu_si512((const void *)(y3 + i))));
    }
    int64_t v[4] = {_mm512_reduce_add_epi64(a0), _mm512_reduce_add_epi64(a1), _mm512_reduce_add_epi64(a2),
                    _mm512_reduce_add_epi64(a3)};
    if (i < dp) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(x + i));
        const uint8_t *ys[4] = {y, y1, y2, y3};
        for (int b = 0; b < 4; b++)
            v[b] += hsum256(_mm256_sad_epu8(q, _mm256_loadu_si256((const __m256i *)(ys[b] + i))));
    }
    for (int b = 0; b < 4; b++) out[b] = (int32_t)v[b];
}
#endif

/* sad[a * TILE + r] for r < nr rows starting at y and every query code a < m */
static void sad_tile(int isa, const uint8_t *const *q, int m, const uint8_t *y, int nr, Py_ssize_t dp, int32_t *sad) {
    int32_t tmp[4];
#if HAVE_X86
    if (m == 1 && isa != ISA_PORTABLE) {
        int r = 0;
        for (; r + 4 <= nr; r += 4) {
            if (isa == ISA_AVX512) sad1x4_avx512(q[0], y + r * dp, dp, sad + r);
            else sad1x4_avx2(q[0], y + r * dp, dp, sad + r);
        }
        for (; r < nr; r++) {
            sad4_avx2(q, 1, y + r * dp, dp, tmp);
            sad[r] = tmp[0];
        }
        return;
    }
#endif
    int r = 0;
#if HAVE_X86
    if (isa != ISA_PORTABLE) { /* whole groups of 4 query codes, two rows at a time */
        int64_t v[8];
        for (; r + 2 <= nr; r += 2)
            for (int a0 = 0; a0 + 4 <= m; a0 += 4) {
                if (isa == ISA_AVX512) sad4x2_avx512(q + a0, y + r * dp, dp, v);
                else sad4x2_avx2(q + a0, y + r * dp, dp, v);
                for (int a = 0; a < 4; a++) {
                    sad[(a0 + a) * TILE + r] = (int32_t)v[a];
                    sad[(a0 + a) * TILE + r + 1] = (int32_t)v[4 + a];
                }
            }
    }
    int rest = isa != ISA_PORTABLE ? m / 4 * 4 : 0; /* query codes the pairs of rows did not cover */
    for (int rr = 0; rr < nr; rr++) {
        int from = rr < r ? rest : 0;
        for (int a0 = from; a0 < m; a0 += 4) {
#else
    for (int rr = 0; rr < nr; rr++) {
        for (int a0 = 0; a0 < m; a0 += 4) {
#endif
            int g = m - a0 < 4 ? m - a0 : 4;
#if HAVE_X86
            if (isa == ISA_AVX512) sad4_avx512(q + a0, g, y + rr * dp, dp, tmp);
            else if (isa == ISA_AVX2) sad4_avx2(q + a0, g, y + rr * dp, dp, tmp);
            else
#endif
                sad4_portable(q + a0, g, y + rr * dp, dp, tmp);
            for (int a = 0; a < g; a++) sad[(a0 + a) * TILE + rr] = tmp[a];
        }
    }
    (void)r;
}

#endif
