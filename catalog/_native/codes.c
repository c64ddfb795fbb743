/* 8-bit codes of normalised vectors and the SAD scan over them (module catalog._codes).
 *
 * Quantiser (one per embedding version): a global step s and one offset per dimension o_i,
 *     c_i = clamp(rint((x_i - o_i) / s), -128, 127) + 128      (a byte)
 *     x~_i = o_i + s (c_i - 128)                              (its real value)
 * Every row keeps its residual e = sum_i |x_i - x~_i| (clipping included), computed in float64 and
 * rounded up (see RESID_REL / RESID_ABS and the float32 round-up). The offsets cancel in differences,
 * so s * SAD(c_q, c_x) = sum_i |q~_i - x~_i| exactly (real arithmetic), and by the triangle inequality
 *     |L1(q, x) - s SAD(c_q, c_x)| <= e_q + e_x.
 * A common step is what makes the unweighted byte SAD (vpsadbw) valid; per-dimension steps would need
 * a weighted sum. Rows are padded to a multiple of 32 bytes with 128 on both sides (adds 0).
 *
 * scan(): for each row j, over the m query codes a,
 *     LB_j = min_a (s SAD_aj - e_a) - e_j,   UB_j = min_a (s SAD_aj + e_a) + e_j
 * bound min_a L1(q_a, x_j). Rows with LB > hi or UB < lo are dropped; the rest are returned
 * (positions ascending) with a flag saying whether they are certainly in range (UB <= chi and
 * LB >= clo). With kk > 0 (top-k), a certain row is returned only if its LB is at most
 * T = U_kk * wmul + wadd, U_kk the kk-th smallest UB of the certain rows (the running value while
 * scanning, the final one at the end); rows not certain are always returned. The caller widens all
 * thresholds for float32 and float64 rounding (catalog/vectors/codes.py).
 *
 * SAD: AVX-512 BW (64 bytes per vpsadbw) or AVX2 (32 bytes) chosen at run time, or portable C.
 * Rows are split into one contiguous part per thread (pthreads); the GIL is released.
 */
#include "native.h"

#define TILE 64          /* rows scored against every query code before moving on (stay in L1/L2) */
#define MAXQ 4096        /* query codes per scan */
#define MAXT 64          /* threads */
#define RESID_REL 1e-12  /* float64 rounding of a residual: relative ... */
#define RESID_ABS 1e-12  /* ... and absolute per dimension (both far above the true bound) */

enum { ISA_PORTABLE = 0, ISA_AVX2 = 1, ISA_AVX512 = 2 };

static int best_isa(void) {
#if HAVE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512f")) return ISA_AVX512;
    if (__builtin_cpu_supports("avx2")) return ISA_AVX2;
#endif
    return ISA_PORTABLE;
}

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
    int64_t v[8] = {_mm512_reduce_add_epi64(a0), _mm512_reduce_add_epi64(a1), _mm512_reduce_add_epi64(a2),
                    _mm512_reduce_add_epi64(a3), _mm512_reduce_add_epi64(b0), _mm512_reduce_add_epi64(b1),
                    _mm512_reduce_add_epi64(b2), _mm512_reduce_add_epi64(b3)};
    if (i < dp) {
        __m256i r = _mm256_loadu_si256((const __m256i *)(y + i)), t = _mm256_loadu_si256((const __m256i *)(z + i));
        for (int a = 0; a < 4; a++) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(q[a] + i));
            v[a] += hsum256(_mm256_sad_epu8(r, x));
            v[4 + a] += hsum256(_mm256_sad_epu8(t, x));
        }
    }
    memcpy(out, v, sizeof(v));
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

/* ---------------------------------------------------------------- the scan */
typedef struct {
    const uint8_t *codes;
    const float *resid;
    const uint8_t *const *q;
    const double *eq;
    int m, isa;
    Py_ssize_t dp, kk;
    double s, lo, hi, clo, chi, wmul, wadd;
} Scan;

typedef struct {
    const Scan *sc;
    Py_ssize_t start, stop;
    double *heap; /* max-heap of the kk smallest UB of certain rows */
    Py_ssize_t hn;
    int64_t *pos;
    double *lb;
    uint8_t *flag;
    Py_ssize_t n, cap;
    int64_t certain;
    int failed;
} Part;

static void heap_offer(double *h, Py_ssize_t *n, Py_ssize_t kk, double v) {
    if (*n < kk) {
        Py_ssize_t i = (*n)++;
        while (i > 0) {
            Py_ssize_t p = (i - 1) / 2;
            if (h[p] >= v) break;
            h[i] = h[p];
            i = p;
        }
        h[i] = v;
        return;
    }
    if (v >= h[0]) return;
    Py_ssize_t i = 0;
    for (;;) {
        Py_ssize_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && h[c + 1] > h[c]) c++;
        if (h[c] <= v) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
}

static double part_threshold(const Part *p) {
    const Scan *sc = p->sc;
    return p->hn < sc->kk ? INFINITY : p->heap[0] * sc->wmul + sc->wadd;
}

/* keep the rows that are not certain or whose LB is at most t */
static void compact(Part *p, double t) {
    Py_ssize_t w = 0;
    for (Py_ssize_t r = 0; r < p->n; r++)
        if (!p->flag[r] || p->lb[r] <= t) {
            p->pos[w] = p->pos[r];
            p->lb[w] = p->lb[r];
            p->flag[w] = p->flag[r];
            w++;
        }
    p->n = w;
}

static int emit(Part *p, int64_t j, double lb, uint8_t certain) {
    if (p->n == p->cap) {
        if (p->sc->kk > 0) compact(p, part_threshold(p));
        if (p->n * 2 > p->cap) {
            Py_ssize_t cap = p->cap * 2;
            int64_t *np_ = realloc(p->pos, (size_t)cap * sizeof(int64_t));
            if (!np_) return -1;
            p->pos = np_;
            double *nl = realloc(p->lb, (size_t)cap * sizeof(double));
            if (!nl) return -1;
            p->lb = nl;
            uint8_t *nf = realloc(p->flag, (size_t)cap);
            if (!nf) return -1;
            p->flag = nf;
            p->cap = cap;
        }
    }
    p->pos[p->n] = j;
    p->lb[p->n] = lb;
    p->flag[p->n] = certain;
    p->n++;
    return 0;
}

static void *scan_part(void *arg) {
    Part *p = (Part *)arg;
    const Scan *sc = p->sc;
    const int m = sc->m;
    int32_t *sad = malloc((size_t)m * TILE * sizeof(int32_t));
    double lbm[TILE], ubm[TILE];
    if (!sad) {
        p->failed = 1;
        return NULL;
    }
    double t = part_threshold(p);
    for (Py_ssize_t j0 = p->start; j0 < p->stop; j0 += TILE) {
        int nr = (int)(p->stop - j0 < TILE ? p->stop - j0 : TILE);
        sad_tile(sc->isa, sc->q, m, sc->codes + j0 * sc->dp, nr, sc->dp, sad);
        for (int r = 0; r < nr; r++) {
            lbm[r] = INFINITY;
            ubm[r] = INFINITY;
        }
        for (int a = 0; a < m; a++) {
            const int32_t *sa = sad + a * TILE;
            const double e = sc->eq[a], s = sc->s;
            for (int r = 0; r < nr; r++) {
                double base = s * (double)sa[r];
                double l = base - e, u = base + e;
                lbm[r] = l < lbm[r] ? l : lbm[r];
                ubm[r] = u < ubm[r] ? u : ubm[r];
            }
        }
        for (int r = 0; r < nr; r++) {
            double ex = (double)sc->resid[j0 + r];
            double lb = lbm[r] - ex, ub = ubm[r] + ex;
            if (lb > sc->hi || ub < sc->lo) continue;
            uint8_t certain = ub <= sc->chi && lb >= sc->clo;
            if (sc->kk > 0 && certain) {
                p->certain++;
                heap_offer(p->heap, &p->hn, sc->kk, ub);
                t = part_threshold(p);
                if (lb > t) continue;
            }
            if (emit(p, j0 + r, lb, certain)) {
                p->failed = 1;
                free(sad);
                return NULL;
            }
        }
    }
    free(sad);
    return NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

PyDoc_STRVAR(scan_doc,
             "scan(codes, resid, n, dp, qcodes, eq, m, s, lo, hi, clo, chi, kk, wmul, wadd, threads, isa)\n"
             "-> (positions bytes (int64), certain flags bytes (uint8), certain count, U_kk)\n\n"
             "The rows whose code bounds on min over the m query codes of L1 may lie in [lo, hi]; see the\n"
             "module source for the exact rule. isa: 0 portable, 1 AVX2, 2 AVX-512 BW, -1 the best here.");

static PyObject *py_scan(PyObject *self, PyObject *args) {
    PyObject *oc, *oresid, *oq, *oeq;
    Py_ssize_t n, dp, m, kk;
    double s, lo, hi, clo, chi, wmul, wadd;
    int threads, isa;
    if (!PyArg_ParseTuple(args, "OOnnOOndddddnddii", &oc, &oresid, &n, &dp, &oq, &oeq, &m, &s, &lo, &hi, &clo, &chi,
                          &kk, &wmul, &wadd, &threads, &isa))
        return NULL;
    if (n < 0 || dp <= 0 || dp % 32 || m < 1 || m > MAXQ || kk < 0 || dp > (1 << 20) || !(s > 0)) {
        PyErr_SetString(PyExc_ValueError, "scan: sizes out of range");
        return NULL;
    }
    int have = best_isa();
    if (isa < 0 || isa > have) isa = have;
    Py_buffer bc, br, bq, be;
    if (get_buffer(oc, &bc, 0, n * dp, "codes")) return NULL;
    if (get_buffer(oresid, &br, 0, n * 4, "resid")) { PyBuffer_Release(&bc); return NULL; }
    if (get_buffer(oq, &bq, 0, m * dp, "qcodes")) { PyBuffer_Release(&bc); PyBuffer_Release(&br); return NULL; }
    if (get_buffer(oeq, &be, 0, m * 8, "eq")) {
        PyBuffer_Release(&bc); PyBuffer_Release(&br); PyBuffer_Release(&bq);
        return NULL;
    }
    if (threads < 1) threads = 1;
    if (threads > MAXT) threads = MAXT;
    if (n < 4096 * (Py_ssize_t)threads) threads = (int)(n / 4096) > 0 ? (int)(n / 4096) : 1;
    const uint8_t **qs = malloc((size_t)m * sizeof(uint8_t *));
    Part parts[MAXT];
    memset(parts, 0, sizeof(parts));
    int failed = qs == NULL;
    Scan sc = {bc.buf, br.buf, qs, be.buf, (int)m, isa, dp, kk, s, lo, hi, clo, chi, wmul, wadd};
    double uk = INFINITY;
    int64_t certain = 0;
    Py_ssize_t total = 0;
    Py_BEGIN_ALLOW_THREADS
    if (!failed) {
        for (Py_ssize_t a = 0; a < m; a++) qs[a] = (const uint8_t *)bq.buf + a * dp;
        Py_ssize_t per = (n + threads - 1) / threads;
        for (int t = 0; t < threads; t++) {
            Part *p = &parts[t];
            p->sc = &sc;
            p->start = t * per < n ? t * per : n;
            p->stop = p->start + per < n ? p->start + per : n;
            p->cap = 1024;
            p->pos = malloc(p->cap * sizeof(int64_t));
            p->lb = malloc(p->cap * sizeof(double));
            p->flag = malloc(p->cap);
            p->heap = malloc((size_t)(kk ? kk : 1) * sizeof(double));
            if (!p->pos || !p->lb || !p->flag || !p->heap) failed = 1;
        }
        if (!failed) {
            pthread_t th[MAXT];
            int started[MAXT] = {0};
            for (int t = 1; t < threads; t++) started[t] = pthread_create(&th[t], NULL, scan_part, &parts[t]) == 0;
            scan_part(&parts[0]);
            for (int t = 1; t < threads; t++) {
                if (started[t]) pthread_join(th[t], NULL);
                else scan_part(&parts[t]);
            }
            for (int t = 0; t < threads; t++) failed |= parts[t].failed;
        }
        if (!failed && kk > 0) { /* the global kk-th smallest UB from the parts' heaps */
            Py_ssize_t all = 0;
            for (int t = 0; t < threads; t++) all += parts[t].hn;
            if (all >= kk) {
                double *u = malloc((size_t)all * sizeof(double));
                if (!u) failed = 1;
                else {
                    Py_ssize_t w = 0;
                    for (int t = 0; t < threads; t++)
                        for (Py_ssize_t i = 0; i < parts[t].hn; i++) u[w++] = parts[t].heap[i];
                    qsort(u, (size_t)all, sizeof(double), cmp_double);
                    uk = u[kk - 1];
                    free(u);
                }
            }
            double tfin = uk * wmul + wadd;
            for (int t = 0; t < threads; t++) compact(&parts[t], tfin);
        }
        for (int t = 0; t < threads; t++) {
            total += parts[t].n;
            certain += parts[t].certain;
        }
    }
    Py_END_ALLOW_THREADS
    PyObject *result = NULL;
    if (failed) PyErr_NoMemory();
    else {
        PyObject *pb = PyBytes_FromStringAndSize(NULL, total * 8), *fb = PyBytes_FromStringAndSize(NULL, total);
        if (pb && fb) {
            char *pw = PyBytes_AS_STRING(pb), *fw = PyBytes_AS_STRING(fb);
            for (int t = 0; t < threads; t++) {
                memcpy(pw, parts[t].pos, (size_t)parts[t].n * 8);
                memcpy(fw, parts[t].flag, (size_t)parts[t].n);
                pw += parts[t].n * 8;
                fw += parts[t].n;
            }
            result = Py_BuildValue("(OOLd)", pb, fb, (long long)certain, uk);
        }
        Py_XDECREF(pb);
        Py_XDECREF(fb);
    }
    for (int t = 0; t < MAXT; t++) {
        free(parts[t].pos); free(parts[t].lb); free(parts[t].flag); free(parts[t].heap);
    }
    free(qs);
    PyBuffer_Release(&bc); PyBuffer_Release(&br); PyBuffer_Release(&bq); PyBuffer_Release(&be);
    return result;
}

/* ---------------------------------------------------------------- quantisation */
typedef struct {
    const float *x;
    const double *off;
    double s;
    Py_ssize_t n, d, dp;
    uint8_t *codes;
    float *resid;
} Quant;

static void *quant_part(void *arg) {
    const Quant *p = (const Quant *)arg;
    for (Py_ssize_t j = 0; j < p->n; j++) {
        const float *x = p->x + j * p->d;
        uint8_t *c = p->codes + j * p->dp;
        double err = 0.0;
        for (Py_ssize_t i = 0; i < p->d; i++) {
            double v = nearbyint(((double)x[i] - p->off[i]) / p->s);
            v = v > 127.0 ? 127.0 : (v < -128.0 ? -128.0 : v);
            c[i] = (uint8_t)(int)(v + 128.0);
            err += fabs((double)x[i] - (p->off[i] + p->s * v));
        }
        memset(c + p->d, 128, (size_t)(p->dp - p->d));
        double e = err * (1.0 + RESID_REL) + RESID_ABS * (double)p->d;
        float f = (float)e;
        if ((double)f < e) f = nextafterf(f, INFINITY);
        p->resid[j] = f;
    }
    return NULL;
}

PyDoc_STRVAR(quant_doc,
             "quantise(x, n, d, off, s, codes, resid, threads)\n\n"
             "Codes (n x dp uint8, padded with 128) and residuals (float32, rounded up) of float32 rows.");

static PyObject *py_quantise(PyObject *self, PyObject *args) {
    PyObject *ox, *ooff, *oc, *oresid;
    Py_ssize_t n, d;
    double s;
    int threads;
    if (!PyArg_ParseTuple(args, "OnnOdOOi", &ox, &n, &d, &ooff, &s, &oc, &oresid, &threads)) return NULL;
    if (n < 0 || d <= 0 || d > (1 << 20) || !(s > 0)) {
        PyErr_SetString(PyExc_ValueError, "quantise: sizes out of range");
        return NULL;
    }
    Py_ssize_t dp = (d + 31) / 32 * 32;
    Py_buffer bx, bo, bc, br;
    if (get_buffer(ox, &bx, 0, n * d * 4, "x")) return NULL;
    if (get_buffer(ooff, &bo, 0, d * 8, "off")) { PyBuffer_Release(&bx); return NULL; }
    if (get_buffer(oc, &bc, 1, n * dp, "codes")) { PyBuffer_Release(&bx); PyBuffer_Release(&bo); return NULL; }
    if (get_buffer(oresid, &br, 1, n * 4, "resid")) {
        PyBuffer_Release(&bx); PyBuffer_Release(&bo); PyBuffer_Release(&bc);
        return NULL;
    }
    if (threads < 1) threads = 1;
    if (threads > MAXT) threads = MAXT;
    Py_BEGIN_ALLOW_THREADS
    Quant parts[MAXT];
    pthread_t th[MAXT];
    int started[MAXT] = {0};
    Py_ssize_t per = (n + threads - 1) / threads;
    for (int t = 0; t < threads; t++) {
        Py_ssize_t a = t * per < n ? t * per : n, b = a + per < n ? a + per : n;
        parts[t] = (Quant){(const float *)bx.buf + a * d, bo.buf, s, b - a, d, dp, (uint8_t *)bc.buf + a * dp,
                           (float *)br.buf + a};
    }
    for (int t = 1; t < threads; t++) started[t] = pthread_create(&th[t], NULL, quant_part, &parts[t]) == 0;
    quant_part(&parts[0]);
    for (int t = 1; t < threads; t++) {
        if (started[t]) pthread_join(th[t], NULL);
        else quant_part(&parts[t]);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&bx); PyBuffer_Release(&bo); PyBuffer_Release(&bc); PyBuffer_Release(&br);
    Py_RETURN_NONE;
}

static PyObject *py_isa(PyObject *self, PyObject *noargs) {
    static const char *names[] = {"portable", "avx2", "avx512bw"};
    return PyUnicode_FromString(names[best_isa()]);
}

static PyMethodDef methods[] = {
    {"scan", py_scan, METH_VARARGS, scan_doc},
    {"quantise", py_quantise, METH_VARARGS, quant_doc},
    {"isa", py_isa, METH_NOARGS, "The best SAD kernel this CPU runs: avx512bw, avx2 or portable."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_codes",
                                    "8-bit codes of normalised vectors and the SAD scan over them.", -1, methods};

PyMODINIT_FUNC PyInit__codes(void) { return PyModule_Create(&module); }
