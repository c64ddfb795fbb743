/* Exact batched L1 k-nearest neighbours with an 8-bit prefilter (module catalog._l1kernel).
 *
 * Both matrices are quantised once per call with one global step s: q = round(x / s) + 128,
 * clamped to [1, 255], and every row keeps its residual e = sum_i |x_i - s (q_i - 128)| (float64,
 * rounded up). By the triangle inequality |L1(a, b) - s SAD(q_a, q_b)| <= e_a + e_b for every pair,
 * so s SAD - e_a - e_b and s SAD + e_a + e_b bound the true distance. Per query, the k-th smallest
 * upper bound U_k over the pool caps the k-th nearest distance; only rows whose lower bound is
 * <= U_k (widened by the float32 rounding bound of the exact distance) can be among the k nearest.
 * Those candidates are re-scored exactly in float32, summed in the same order as faiss's AVX2
 * fvec_L1 (8 lanes, folded to 4, 4-lane tail, pairwise, scalar tail), and the k best are kept,
 * ties broken by the smaller pool index. The result equals an exhaustive float32 scan.
 *
 * SAD over uint8 uses AVX-512 BW's or AVX2's vpsadbw (64 or 32 bytes per instruction) when the CPU
 * has it, with a portable scalar path otherwise. Per query chunk and pool tile, pairs are compared
 * either on the pooled level first (half the bytes; the full SAD only where that cannot decide) or
 * on the full level alone, whichever the last measured pass rate of the pooled level says is cheaper. Queries are handed out in chunks to worker threads (pthreads).
 */
#include "native.h"

#define QCHUNK 128     /* queries per work item (their bytes stay in L2) */
#define PTILE_BYTES (128 * 1024) /* pool rows scanned per tile by one chunk (L2) */
#define MQ 4           /* micro-kernel: queries (x MP pool rows, l1sad.h) */
#define ISA_PORTABLE 0
#define ISA_AVX2 1
#define ISA_AVX512 2
#define LEVEL_AUTO 0
#define LEVEL_POOLED 1
#define LEVEL_FULL 2
/* Level choice (LEVEL_AUTO), per query chunk and pool tile: the pooled SAD first while at most
   POOLED_PASS_MAX of its pairs go on to the full SAD (measured on the last tile run that way), the
   full SAD alone otherwise; every PROBE_EVERY-th tile runs pooled again to re-measure. */
#define POOLED_PASS_MAX 0.10
#define PROBE_EVERY 32

typedef struct {
    /* inputs */
    const float *xq, *xp;        /* float32 rows, d wide */
    const uint8_t *qq, *qp;      /* quantised rows, dp wide (multiple of 32, padded with 128) */
    const double *eq, *ep;       /* residuals */
    double emax;                 /* max pool residual */
    double s;                    /* quantisation step */
    /* pooled level: sums of dimension pairs (2i, 2i + 1), quantised the same way, dp1 wide.
       L1(a, b) >= L1(pooled a, pooled b), so its lower bound prunes at half the bytes. */
    const uint8_t *qq1, *qp1;
    const double *eq1, *ep1;
    double emax1, s1;
    Py_ssize_t dp1;
    double widen;                /* (1 + g) / (1 - g): float32 rounding of the exact distance */
    double cap;                  /* range search: no row farther than this (widened) is kept; else inf */
    Py_ssize_t nq, nb, d, dp, k, kk;
    /* outputs */
    float *out_d;
    int64_t *out_i;
    /* work distribution */
    Py_ssize_t next;             /* next query chunk (atomic) */
    int use_avx2;                /* AVX2 (or better) for the exact re-scoring and the 1 x 1 SADs */
    int isa;                     /* SAD blocks: ISA_PORTABLE, ISA_AVX2 or ISA_AVX512 */
    int level;                   /* LEVEL_AUTO, LEVEL_POOLED (pooled SAD first) or LEVEL_FULL (full SAD only) */
    /* stats */
    int64_t candidates;          /* atomic: rows re-scored exactly */
    int64_t full_sads;           /* atomic: pairs that passed the pooled bound */
    int failed;                  /* out of memory */
} Job;

/* ---------------------------------------------------------------- exact float32 L1 (faiss order) */
static float l1_exact_scalar(const float *x, const float *y, Py_ssize_t d) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    Py_ssize_t i = 0;
    for (; i + 8 <= d; i += 8)
        for (int l = 0; l < 8; l++) acc[l] = acc[l] + fabsf(x[i + l] - y[i + l]);
    float m[4];
    for (int l = 0; l < 4; l++) m[l] = acc[l + 4] + acc[l];
    if (i + 4 <= d) {
        for (int l = 0; l < 4; l++) m[l] = m[l] + fabsf(x[i + l] - y[i + l]);
        i += 4;
    }
    float a = m[2] + m[0], b = m[3] + m[1];
    float s = a + b;
    for (; i < d; i++) s = s + fabsf(x[i] - y[i]);
    return s;
}

#if HAVE_X86
__attribute__((target("avx2"))) static float l1_exact_avx2(const float *x, const float *y, Py_ssize_t d) {
    const __m256 mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 acc = _mm256_setzero_ps();
    Py_ssize_t i = 0;
    for (; i + 8 <= d; i += 8)
        acc = _mm256_add_ps(acc, _mm256_and_ps(mask, _mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i))));
    __m128 m = _mm_add_ps(_mm256_extractf128_ps(acc, 1), _mm256_castps256_ps128(acc));
    if (i + 4 <= d) {
        const __m128 mask4 = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
        m = _mm_add_ps(m, _mm_and_ps(mask4, _mm_sub_ps(_mm_loadu_ps(x + i), _mm_loadu_ps(y + i))));
        i += 4;
    }
    m = _mm_add_ps(m, _mm_movehl_ps(m, m));
    m = _mm_add_ss(m, _mm_shuffle_ps(m, m, 1));
    float s = _mm_cvtss_f32(m);
    for (; i < d; i++) s = s + fabsf(x[i] - y[i]);
    return s;
}
#endif

#include "l1sad.h"

/* SADs of nqm query rows x npm pool rows one pair at a time (block edges, or no SIMD block kernel);
   out[b * 4 + a], mask bit b * 4 + a where SAD <= gate[a], as the block kernels. */
static int sad_block_masked(const Job *job, const uint8_t *q, const uint8_t *p, Py_ssize_t dp, int nqm, int npm,
                            const int64_t *gate, int64_t *out) {
    int mask = 0;
    for (int a = 0; a < nqm; a++)
        for (int b = 0; b < npm; b++) {
            const uint8_t *x = q + a * dp, *y = p + b * dp;
            int32_t sad;
#if HAVE_X86
            if (job->isa == ISA_AVX512) sad = sad_1x1_avx512(x, y, dp);
            else if (job->isa == ISA_AVX2) sad = sad_1x1_avx2(x, y, dp);
            else
#endif
                sad_block_scalar(x, y, dp, 1, 1, &sad);
            out[b * 4 + a] = sad;
            if (sad <= gate[a]) mask |= 1 << (b * 4 + a);
        }
    return mask;
}

/* ---------------------------------------------------------------- per-query state */
typedef struct {
    double *heap;      /* max-heap of the kk smallest upper bounds */
    Py_ssize_t hn;
    double thresh;     /* candidate if lower bound <= thresh */
    int32_t gate;      /* SAD above this: neither candidate nor upper-bound improvement */
    int32_t gate1;     /* the same for the pooled SAD */
    int32_t *cand;     /* (pool index, SAD) pairs */
    Py_ssize_t cn, ccap;
    int64_t passes;    /* pairs that passed the pooled bound */
} QState;

static void heap_sift_down(double *h, Py_ssize_t n, Py_ssize_t i) {
    double v = h[i];
    for (;;) {
        Py_ssize_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1] > h[c]) c++;
        if (h[c] <= v) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
}

static void heap_push(double *h, Py_ssize_t *n, double v) {
    Py_ssize_t i = (*n)++;
    while (i > 0) {
        Py_ssize_t p = (i - 1) / 2;
        if (h[p] >= v) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static void update_gate(const Job *job, QState *st, double eqi, double eqi1) {
    double t = st->hn < job->kk ? INFINITY : st->heap[0] * job->widen;
    if (job->cap < t) t = job->cap;
    if (t == INFINITY) {
        st->thresh = INFINITY;
        st->gate = st->gate1 = INT32_MAX;
        return;
    }
    st->thresh = t;
    double g = (st->thresh + eqi + job->emax) / job->s;
    st->gate = g >= (double)INT32_MAX ? INT32_MAX : (int32_t)g + 1;
    g = (st->thresh + eqi1 + job->emax1) / job->s1;
    st->gate1 = g >= (double)INT32_MAX ? INT32_MAX : (int32_t)g + 1;
}

static int compact(const Job *job, QState *st, double eqi) {
    Py_ssize_t w = 0;
    for (Py_ssize_t r = 0; r < st->cn; r++) {
        int32_t j = st->cand[2 * r], sad = st->cand[2 * r + 1];
        if (job->s * sad - eqi - job->ep[j] <= st->thresh) {
            st->cand[2 * w] = j;
            st->cand[2 * w + 1] = sad;
            w++;
        }
    }
    st->cn = w;
    if (w * 2 > st->ccap) { /* still more than half full: grow */
        Py_ssize_t cap = st->ccap * 2;
        int32_t *c = realloc(st->cand, (size_t)cap * 2 * sizeof(int32_t));
        if (!c) return -1;
        st->cand = c;
        st->ccap = cap;
    }
    return 0;
}

static inline int visit(const Job *job, QState *st, double eqi, double eqi1, int32_t j, int32_t sad) {
    if (sad > st->gate) return 0;
    double base = job->s * sad, ej = job->ep[j];
    if (base - eqi - ej <= st->thresh) {
        if (st->cn == st->ccap && compact(job, st, eqi)) return -1;
        st->cand[2 * st->cn] = j;
        st->cand[2 * st->cn + 1] = sad;
        st->cn++;
    }
    double up = base + eqi + ej;
    if (st->hn < job->kk) {
        heap_push(st->heap, &st->hn, up);
        if (st->hn == job->kk) update_gate(job, st, eqi, eqi1);
    } else if (up < st->heap[0]) {
        st->heap[0] = up;
        heap_sift_down(st->heap, st->hn, 0);
        update_gate(job, st, eqi, eqi1);
    }
    return 0;
}

/* ---------------------------------------------------------------- final exact selection */
typedef struct {
    float d;
    int64_t i;
} Hit;

static inline int hit_worse(Hit a, Hit b) { /* a ranks after b */
    return a.d > b.d || (a.d == b.d && a.i > b.i);
}

static void hit_sift_down(Hit *h, Py_ssize_t n, Py_ssize_t i) {
    Hit v = h[i];
    for (;;) {
        Py_ssize_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && hit_worse(h[c + 1], h[c])) c++;
        if (!hit_worse(h[c], v)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
}

typedef struct {
    double lb; /* lower bound of the distance */
    int32_t j; /* pool index */
} Cand;

static int cand_cmp(const void *a, const void *b) {
    const Cand *x = a, *y = b;
    return x->lb < y->lb ? -1 : x->lb > y->lb ? 1 : (x->j > y->j) - (x->j < y->j);
}

/* Re-score the query's candidates exactly, nearest lower bound first: once k exact distances are
   known, a candidate whose lower bound lies above the k-th of them (widened by the float32 rounding
   bound) is strictly farther in float32 too, and so are all after it. -1 when out of memory. */
static int finish_query(Job *job, QState *st, Py_ssize_t qi, Hit *hits, Cand **buf, Py_ssize_t *bufcap) {
    const float *x = job->xq + qi * job->d;
    double eqi = job->eq[qi];
    Py_ssize_t n = 0, kk = job->kk, kept = 0, nc = 0;
    if (st->cn > *bufcap) {
        Cand *c = realloc(*buf, (size_t)st->cn * sizeof(Cand));
        if (!c) return -1;
        *buf = c;
        *bufcap = st->cn;
    }
    Cand *order = *buf;
    for (Py_ssize_t r = 0; r < st->cn; r++) {
        int32_t j = st->cand[2 * r], sad = st->cand[2 * r + 1];
        double lb = job->s * sad - eqi - job->ep[j];
        if (lb > st->thresh) continue;
        order[nc].lb = lb;
        order[nc].j = j;
        nc++;
    }
    qsort(order, (size_t)nc, sizeof(Cand), cand_cmp);
    for (Py_ssize_t r = 0; r < nc; r++) {
        int32_t j = order[r].j;
        if (n == kk && order[r].lb > (double)hits[0].d * job->widen) break;
        kept++;
        const float *y = job->xp + (Py_ssize_t)j * job->d;
#if HAVE_X86
        float dist = job->use_avx2 ? l1_exact_avx2(x, y, job->d) : l1_exact_scalar(x, y, job->d);
#else
        float dist = l1_exact_scalar(x, y, job->d);
#endif
        Hit h = {dist, j};
        if (n < kk) {
            /* push into max-heap (worst on top) */
            Py_ssize_t i = n++;
            while (i > 0) {
                Py_ssize_t p = (i - 1) / 2;
                if (!hit_worse(h, hits[p])) break;
                hits[i] = hits[p];
                i = p;
            }
            hits[i] = h;
        } else if (hit_worse(hits[0], h)) {
            hits[0] = h;
            hit_sift_down(hits, n, 0);
        }
    }
    __atomic_fetch_add(&job->candidates, (int64_t)kept, __ATOMIC_RELAXED);
    /* pop worst first into the back of the output row */
    float *od = job->out_d + qi * job->k;
    int64_t *oi = job->out_i + qi * job->k;
    for (Py_ssize_t m = n; m > 0; m--) {
        od[m - 1] = hits[0].d;
        oi[m - 1] = hits[0].i;
        hits[0] = hits[m - 1];
        hit_sift_down(hits, m - 1, 0);
    }
    for (Py_ssize_t m = n; m < job->k; m++) {
        od[m] = INFINITY;
        oi[m] = -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- worker */
/* A pair whose pooled SAD passed the integer gate: check its pooled lower bound exactly, then take
   the full SAD and update the query's bounds and candidates. */
static inline int pair(Job *job, QState *st, Py_ssize_t qi, const uint8_t *qrow, int32_t j, int64_t s1) {
    double eqi1 = job->eq1[qi];
    if (job->s1 * (double)s1 - eqi1 - job->ep1[j] > st->thresh) return 0;
    st->passes++;
    int32_t full;
    const uint8_t *prow = job->qp + (Py_ssize_t)j * job->dp;
#if HAVE_X86
    if (job->isa == ISA_AVX512) full = sad_1x1_avx512(qrow, prow, job->dp);
    else if (job->isa == ISA_AVX2) full = sad_1x1_avx2(qrow, prow, job->dp);
    else
#endif
        sad_block_scalar(qrow, prow, job->dp, 1, 1, &full);
    return visit(job, st, job->eq[qi], eqi1, j, full);
}

/* One tile [t0, t1) of the pool for one chunk of queries, at one level: block SADs, then every pair
   under its query's gate goes on (pooled: to pair(); full: straight to visit()). */
static int scan_tile(Job *job, QState *st, Py_ssize_t q0, Py_ssize_t nqc, Py_ssize_t t0, Py_ssize_t t1, int pooled,
                     int64_t *gate) {
    Py_ssize_t dp = job->dp, dl = pooled ? job->dp1 : job->dp;
    const uint8_t *ql = pooled ? job->qq1 : job->qq, *pl = pooled ? job->qp1 : job->qp;
    int np = job->isa == ISA_AVX512 ? 4 : 3;
    int64_t sad[MQ * MP];
    for (Py_ssize_t a = 0; a < nqc; a++) gate[a] = pooled ? st[a].gate1 : st[a].gate;
    for (Py_ssize_t a0 = 0; a0 < nqc; a0 += MQ) {
        int nqm = nqc - a0 < MQ ? (int)(nqc - a0) : MQ;
        const uint8_t *qrow = job->qq + (q0 + a0) * dp, *qlev = ql + (q0 + a0) * dl;
        for (Py_ssize_t j0 = t0; j0 < t1; j0 += np) {
            int npm = t1 - j0 < np ? (int)(t1 - j0) : np, mask;
            const uint8_t *prow = pl + j0 * dl;
#if HAVE_X86
            if (nqm == MQ && npm == 4 && job->isa == ISA_AVX512)
                mask = dl <= 256 ? sad_4x4_avx512_short(qlev, prow, dl, gate + a0, sad)
                                 : sad_4x4_avx512(qlev, prow, dl, gate + a0, sad);
            else if (nqm == MQ && npm == 3 && job->isa == ISA_AVX2) mask = sad_4x3_avx2(qlev, prow, dl, gate + a0, sad);
            else
#endif
                mask = sad_block_masked(job, qlev, prow, dl, nqm, npm, gate + a0, sad);
            while (mask) {
                int bit = __builtin_ctz(mask), a = bit & 3, b = bit >> 2;
                mask &= mask - 1;
                if (sad[bit] > gate[a0 + a]) continue; /* the gate moved meanwhile */
                QState *sa = &st[a0 + a];
                Py_ssize_t qi = q0 + a0 + a;
                if (pooled) {
                    if (pair(job, sa, qi, qrow + a * dp, (int32_t)(j0 + b), sad[bit])) return -1;
                    gate[a0 + a] = sa->gate1;
                } else {
                    sa->passes++;
                    if (visit(job, sa, job->eq[qi], job->eq1[qi], (int32_t)(j0 + b), (int32_t)sad[bit])) return -1;
                    gate[a0 + a] = sa->gate;
                }
            }
        }
    }
    return 0;
}

static void *worker(void *arg) {
    Job *job = (Job *)arg;
    Py_ssize_t kk = job->kk, nb = job->nb;
    QState st[QCHUNK];
    int64_t gate[QCHUNK + MQ];
    memset(st, 0, sizeof(st));
    Hit *hits = malloc((size_t)(kk > 0 ? kk : 1) * sizeof(Hit));
    int ok = hits != NULL;
    for (int a = 0; ok && a < QCHUNK; a++) {
        st[a].heap = malloc((size_t)(kk > 0 ? kk : 1) * sizeof(double));
        st[a].ccap = 4 * kk + 256;
        st[a].cand = malloc((size_t)st[a].ccap * 2 * sizeof(int32_t));
        if (!st[a].heap || !st[a].cand) ok = 0;
    }
    Py_ssize_t ptile = PTILE_BYTES / job->dp1;
    if (ptile < 12) ptile = 12;
    ptile = ptile / 12 * 12; /* whole 4- and 3-row blocks */
    int64_t passes = 0;
    Cand *order = NULL;
    Py_ssize_t ordercap = 0;
    while (ok) {
        Py_ssize_t q0 = __atomic_fetch_add(&job->next, QCHUNK, __ATOMIC_RELAXED);
        if (q0 >= job->nq) break;
        Py_ssize_t nqc = job->nq - q0 < QCHUNK ? job->nq - q0 : QCHUNK;
        for (Py_ssize_t a = 0; a < nqc; a++) {
            st[a].hn = 0;
            st[a].cn = 0;
            st[a].passes = 0;
            update_gate(job, &st[a], job->eq[q0 + a], job->eq1[q0 + a]);
        }
        int pooled = job->level != LEVEL_FULL, tile = 0;
        for (Py_ssize_t t0 = 0; ok && t0 < nb; t0 += ptile, tile++) {
            Py_ssize_t t1 = t0 + ptile < nb ? t0 + ptile : nb;
            int probe = job->level == LEVEL_AUTO && !pooled && tile % PROBE_EVERY == 0;
            int64_t before = 0;
            for (Py_ssize_t a = 0; a < nqc; a++) before += st[a].passes;
            if (scan_tile(job, st, q0, nqc, t0, t1, pooled || probe, gate)) ok = 0;
            if (job->level == LEVEL_AUTO && (pooled || probe)) {
                int64_t after = 0;
                for (Py_ssize_t a = 0; a < nqc; a++) after += st[a].passes;
                pooled = (double)(after - before) <= POOLED_PASS_MAX * (double)nqc * (double)(t1 - t0);
            }
        }
        for (Py_ssize_t a = 0; ok && a < nqc; a++) {
            passes += st[a].passes;
            if (finish_query(job, &st[a], q0 + a, hits, &order, &ordercap)) ok = 0;
        }
    }
    __atomic_fetch_add(&job->full_sads, passes, __ATOMIC_RELAXED);
    if (!ok) __atomic_store_n(&job->failed, 1, __ATOMIC_RELAXED);
    for (int a = 0; a < QCHUNK; a++) {
        free(st[a].heap);
        free(st[a].cand);
    }
    free(hits);
    free(order);
    return NULL;
}

/* ---------------------------------------------------------------- quantisation */
/* Level values of one row: x itself, or the pooled row x[2i] + x[2i + 1] (the last one alone for
   odd d), in float64. */
static inline Py_ssize_t level_width(Py_ssize_t d, int pooled) { return pooled ? (d + 1) / 2 : d; }

static void level_row(const float *x, Py_ssize_t d, int pooled, double *out) {
    if (!pooled) {
        for (Py_ssize_t i = 0; i < d; i++) out[i] = (double)x[i];
        return;
    }
    Py_ssize_t i = 0;
    for (; 2 * i + 1 < d; i++) out[i] = (double)x[2 * i] + (double)x[2 * i + 1];
    if (2 * i < d) out[i] = (double)x[2 * i];
}

/* q = clamp(round(v / s), -127, 127) + 128; returns sum |v - s (q - 128)|, plus a few units of
   float64 rounding of sum |v| (the pair sums in v are rounded to float64 once) */
static double quantise_values_scalar(const double *v, Py_ssize_t w, double s, uint8_t *q) {
    double inv = 1.0 / s, err = 0.0, mag = 0.0;
    for (Py_ssize_t i = 0; i < w; i++) {
        double c = nearbyint(v[i] * inv);
        if (c > 127.0) c = 127.0;
        if (c < -127.0) c = -127.0;
        q[i] = (uint8_t)(int)(c + 128.0);
        err += fabs(v[i] - s * c);
        mag += fabs(v[i]);
    }
    return err + 4.0 * DBL_EPSILON * mag;
}

#if HAVE_X86
__attribute__((target("avx2"))) static double quantise_values_avx2(const double *v, Py_ssize_t w, double s, uint8_t *q) {
    const __m256d inv = _mm256_set1_pd(1.0 / s), sv = _mm256_set1_pd(s), hi = _mm256_set1_pd(127.0),
                  lo = _mm256_set1_pd(-127.0), off = _mm256_set1_pd(128.0);
    const __m256d absmask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
    __m256d err = _mm256_setzero_pd(), mag = _mm256_setzero_pd();
    Py_ssize_t i = 0;
    for (; i + 4 <= w; i += 4) {
        __m256d x = _mm256_loadu_pd(v + i);
        __m256d c = _mm256_round_pd(_mm256_mul_pd(x, inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        c = _mm256_max_pd(_mm256_min_pd(c, hi), lo);
        err = _mm256_add_pd(err, _mm256_and_pd(absmask, _mm256_sub_pd(x, _mm256_mul_pd(sv, c))));
        mag = _mm256_add_pd(mag, _mm256_and_pd(absmask, x));
        __m128i n = _mm256_cvtpd_epi32(_mm256_add_pd(c, off));
        n = _mm_packus_epi16(_mm_packs_epi32(n, n), n);
        int32_t packed = _mm_cvtsi128_si32(n);
        memcpy(q + i, &packed, 4);
    }
    double lanes[4], m[4];
    _mm256_storeu_pd(lanes, err);
    _mm256_storeu_pd(m, mag);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3] + 4.0 * DBL_EPSILON * (m[0] + m[1] + m[2] + m[3]) +
           quantise_values_scalar(v + i, w - i, s, q + i);
}
#endif

typedef struct {
    const float *x;
    uint8_t *q;
    double *e;
    Py_ssize_t n, d, dp;
    int pooled, avx2;
    double s;
} QuantPart;

static void *quant_worker(void *arg) {
    const QuantPart *p = (const QuantPart *)arg;
    Py_ssize_t w = level_width(p->d, p->pooled);
    double *buf = malloc((size_t)(w ? w : 1) * sizeof(double));
    if (!buf) return (void *)1;
    for (Py_ssize_t r = 0; r < p->n; r++) {
        uint8_t *qr = p->q + r * p->dp;
        level_row(p->x + r * p->d, p->d, p->pooled, buf);
#if HAVE_X86
        double err = p->avx2 ? quantise_values_avx2(buf, w, p->s, qr) : quantise_values_scalar(buf, w, p->s, qr);
#else
        double err = quantise_values_scalar(buf, w, p->s, qr);
#endif
        memset(qr + w, 128, (size_t)(p->dp - w));
        /* rounded up for the float64 arithmetic (pair sums, products, the sum of d terms) */
        p->e[r] = err * (1.0 + 8.0 * (double)(p->d + 4) * DBL_EPSILON) + 1e-290;
    }
    free(buf);
    return NULL;
}

static int quantise_parallel(const float *x, uint8_t *q, double *e, Py_ssize_t n, Py_ssize_t d, Py_ssize_t dp,
                             int pooled, double s, int avx2, int nthreads) {
    pthread_t th[64];
    QuantPart parts[64];
    int started[64] = {0}, failed = 0;
    if (nthreads > 64) nthreads = 64;
    if (nthreads < 1) nthreads = 1;
    Py_ssize_t per = (n + nthreads - 1) / nthreads;
    for (int t = 0; t < nthreads; t++) {
        Py_ssize_t a = t * per, b = a + per < n ? a + per : n;
        if (a > b) a = b;
        parts[t] = (QuantPart){x + a * d, q + a * dp, e + a, b - a, d, dp, pooled, avx2, s};
    }
    for (int t = 1; t < nthreads; t++)
        if (parts[t].n > 0) started[t] = pthread_create(&th[t], NULL, quant_worker, &parts[t]) == 0;
    failed |= quant_worker(&parts[0]) != NULL;
    for (int t = 1; t < nthreads; t++) {
        void *r = NULL;
        if (started[t]) pthread_join(th[t], &r);
        else if (parts[t].n > 0) r = quant_worker(&parts[t]);
        failed |= r != NULL;
    }
    return failed;
}

/* The step with the smallest mean residual on a sample of rows. Clipping is allowed: the residual
   includes it, so the bounds stay valid whatever the step. Returns 0 when out of memory. */
static double pick_step(const float *x, Py_ssize_t n, Py_ssize_t d, int pooled, double mx, int avx2) {
    static const double fr[] = {1.0, 0.8, 0.65, 0.5, 0.4, 0.3, 0.22, 0.16};
    double top = (pooled ? 2.0 : 1.0) * mx / 127.0, best = INFINITY, step = top;
    if (!(top > 0.0)) return 1.0;
    Py_ssize_t every = n / 1000 > 1 ? n / 1000 : 1, w = level_width(d, pooled);
    double *buf = malloc((size_t)w * sizeof(double));
    uint8_t *q = malloc((size_t)w);
    if (!buf || !q) {
        free(buf);
        free(q);
        return 0.0;
    }
    for (size_t f = 0; f < sizeof(fr) / sizeof(fr[0]); f++) {
        double s = fr[f] * top, tot = 0.0;
        for (Py_ssize_t r = 0; r < n; r += every) {
            level_row(x + r * d, d, pooled, buf);
#if HAVE_X86
            tot += avx2 ? quantise_values_avx2(buf, w, s, q) : quantise_values_scalar(buf, w, s, q);
#else
            tot += quantise_values_scalar(buf, w, s, q);
#endif
        }
        if (tot < best) {
            best = tot;
            step = s;
        }
    }
    free(buf);
    free(q);
    return step;
}

/* max |x| over n values, or -1 when one of them is NaN or infinite */
static double max_abs_scalar(const float *x, Py_ssize_t n) {
    float mx = 0.0f, bad = 0.0f;
    for (Py_ssize_t i = 0; i < n; i++) {
        float v = fabsf(x[i]);
        bad += x[i] - x[i]; /* NaN once any value is NaN or infinite */
        mx = v > mx ? v : mx;
    }
    return bad == 0.0f ? (double)mx : -1.0;
}

#if HAVE_X86
__attribute__((target("avx2"))) static double max_abs_avx2(const float *x, Py_ssize_t n) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 mx = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        bad = _mm256_add_ps(bad, _mm256_sub_ps(v, v));
        mx = _mm256_max_ps(mx, _mm256_and_ps(absmask, v));
    }
    float m[8], b[8];
    _mm256_storeu_ps(m, mx);
    _mm256_storeu_ps(b, bad);
    double tail = max_abs_scalar(x + i, n - i), out = tail;
    for (int l = 0; l < 8; l++) {
        if (b[l] != 0.0f) return -1.0;
        if (m[l] > out) out = m[l];
    }
    return tail < 0 ? -1.0 : out;
}
#endif

/* ---------------------------------------------------------------- Python entry point */
static void *aligned(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64)) return NULL;
    return p;
}

PyDoc_STRVAR(knn_doc,
             "knn_l1(queries, pool, nq, nb, d, k, out_d, out_i, threads, simd[, max_dist[, level]])\n"
             "    -> (step, candidates, full, isa)\n\n"
             "Exact k nearest pool rows under L1 for each query (float32, C order, given as buffers).\n"
             "Writes distances (float32) and pool indices (int64) nearest first, ties by smaller index;\n"
             "inf / -1 where the pool has fewer than k rows. simd: 0 portable, 1 the best this CPU runs\n"
             "(AVX-512 BW, AVX2), 2 at most AVX2. level: 0 chosen per pool tile, 1 pooled SAD first, 2 full\n"
             "SAD only. Returns the quantisation step, the number of rows re-scored exactly, the number of\n"
             "pairs that needed the full 8-bit SAD and the SAD kernel used, or None when the input holds\n"
             "NaN or infinity. With max_dist (a range search) rows whose lower bound lies above it are\n"
             "never candidates; hits farther than max_dist may remain and are the caller's to drop.");

static PyObject *py_knn(PyObject *self, PyObject *args) {
    PyObject *oq, *op, *od, *oi;
    Py_ssize_t nq, nb, d, k;
    int threads, simd, level = LEVEL_AUTO;
    double max_dist = INFINITY;
    if (!PyArg_ParseTuple(args, "OOnnnnOOii|di", &oq, &op, &nq, &nb, &d, &k, &od, &oi, &threads, &simd,
                          &max_dist, &level)) return NULL;
    if (simd < 0 || simd > 2 || level < LEVEL_AUTO || level > LEVEL_FULL) {
        PyErr_SetString(PyExc_ValueError, "knn_l1: simd must be 0, 1 or 2 and level 0, 1 or 2");
        return NULL;
    }
    if (isnan(max_dist) || max_dist < 0) {
        PyErr_SetString(PyExc_ValueError, "knn_l1: max_dist must be a non-negative number");
        return NULL;
    }
    if (nq < 0 || nb < 0 || d <= 0 || k < 0 || nb > INT32_MAX - 8 || d > (1 << 22)) {
        PyErr_SetString(PyExc_ValueError, "knn_l1: sizes out of range");
        return NULL;
    }
    Py_buffer bq, bp, bd, bi;
    if (get_buffer(oq, &bq, 0, nq * d * 4, "queries")) return NULL;
    if (get_buffer(op, &bp, 0, nb * d * 4, "pool")) { PyBuffer_Release(&bq); return NULL; }
    if (get_buffer(od, &bd, 1, nq * k * 4, "out_d")) { PyBuffer_Release(&bq); PyBuffer_Release(&bp); return NULL; }
    if (get_buffer(oi, &bi, 1, nq * k * 8, "out_i")) {
        PyBuffer_Release(&bq); PyBuffer_Release(&bp); PyBuffer_Release(&bd);
        return NULL;
    }
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    Job job;
    memset(&job, 0, sizeof(job));
    job.xq = bq.buf; job.xp = bp.buf;
    job.nq = nq; job.nb = nb; job.d = d; job.k = k;
    job.kk = k < nb ? k : nb;
    job.dp = (d + 63) / 64 * 64; /* whole 64-byte loads */
    job.level = level;
    job.out_d = bd.buf; job.out_i = bi.buf;
#if HAVE_X86
    __builtin_cpu_init();
    if (simd != 0 && __builtin_cpu_supports("avx2")) job.isa = ISA_AVX2;
    if (simd == 1 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) job.isa = ISA_AVX512;
    job.use_avx2 = job.isa != ISA_PORTABLE;
#endif
    PyObject *result = NULL;
    uint8_t *qq = NULL, *qp = NULL, *qq1 = NULL, *qp1 = NULL;
    double *eq = NULL, *ep = NULL;
    int finite = 1, nomem = 0;
    Py_BEGIN_ALLOW_THREADS
    if (nq > 0 && job.kk > 0) {
#if HAVE_X86
        double mq = job.use_avx2 ? max_abs_avx2(job.xq, nq * d) : max_abs_scalar(job.xq, nq * d);
        double mp = job.use_avx2 ? max_abs_avx2(job.xp, nb * d) : max_abs_scalar(job.xp, nb * d);
#else
        double mq = max_abs_scalar(job.xq, nq * d), mp = max_abs_scalar(job.xp, nb * d);
#endif
        double mx = mq > mp ? mq : mp;
        finite = mq >= 0 && mp >= 0;
        if (finite) {
            job.s = pick_step(job.xp, nb, d, 0, mx, job.use_avx2);
            job.s1 = pick_step(job.xp, nb, d, 1, mx, job.use_avx2);
            job.dp1 = (level_width(d, 1) + 63) / 64 * 64;
            qq = aligned((size_t)nq * job.dp);
            qp = aligned((size_t)nb * job.dp);
            qq1 = aligned((size_t)nq * job.dp1);
            qp1 = aligned((size_t)nb * job.dp1);
            eq = malloc((size_t)(nq ? nq : 1) * 2 * sizeof(double));
            ep = malloc((size_t)(nb ? nb : 1) * 2 * sizeof(double));
            if (!qq || !qp || !qq1 || !qp1 || !eq || !ep || job.s == 0.0 || job.s1 == 0.0) nomem = 1;
        }
        if (finite && !nomem) {
            nomem |= quantise_parallel(job.xq, qq, eq, nq, d, job.dp, 0, job.s, job.use_avx2, threads);
            nomem |= quantise_parallel(job.xp, qp, ep, nb, d, job.dp, 0, job.s, job.use_avx2, threads);
            nomem |= quantise_parallel(job.xq, qq1, eq + nq, nq, d, job.dp1, 1, job.s1, job.use_avx2, threads);
            nomem |= quantise_parallel(job.xp, qp1, ep + nb, nb, d, job.dp1, 1, job.s1, job.use_avx2, threads);
        }
        if (finite && !nomem) {
            job.qq = qq; job.qp = qp; job.eq = eq; job.ep = ep;
            job.qq1 = qq1; job.qp1 = qp1; job.eq1 = eq + nq; job.ep1 = ep + nb;
            for (Py_ssize_t j = 0; j < nb; j++) {
                if (job.ep[j] > job.emax) job.emax = job.ep[j];
                if (job.ep1[j] > job.emax1) job.emax1 = job.ep1[j];
            }
            /* any summation order of d rounded |x - y| terms: relative error below g */
            double g = (double)(d + 2) * ldexp(1.0, -24);
            g = g / (1.0 - g);
            job.widen = (1.0 + g) / (1.0 - g) * (1.0 + 1e-12);
            job.cap = max_dist * job.widen; /* inf stays inf */
            pthread_t th[64];
            int started[64];
            for (int t = 1; t < threads; t++) started[t] = pthread_create(&th[t], NULL, worker, &job) == 0;
            worker(&job);
            for (int t = 1; t < threads; t++) if (started[t]) pthread_join(th[t], NULL);
            nomem = job.failed;
        }
    } else {
        for (Py_ssize_t i = 0; i < nq * k; i++) { job.out_d[i] = INFINITY; job.out_i[i] = -1; }
    }
    Py_END_ALLOW_THREADS
    free(qq); free(qp); free(qq1); free(qp1); free(eq); free(ep);
    if (nomem) PyErr_NoMemory();
    else if (!finite) { Py_INCREF(Py_None); result = Py_None; }
    else {
        static const char *isa_names[] = {"portable", "avx2", "avx512bw"};
        result = Py_BuildValue("(dLLs)", job.s, (long long)job.candidates, (long long)job.full_sads,
                               isa_names[job.isa]);
    }
    PyBuffer_Release(&bq); PyBuffer_Release(&bp); PyBuffer_Release(&bd); PyBuffer_Release(&bi);
    return result;
}

static PyObject *py_has_avx2(PyObject *self, PyObject *noargs) {
#if HAVE_X86
    __builtin_cpu_init();
    return PyBool_FromLong(__builtin_cpu_supports("avx2"));
#else
    Py_RETURN_FALSE;
#endif
}

static PyMethodDef methods[] = {
    {"knn_l1", py_knn, METH_VARARGS, knn_doc},
    {"has_avx2", py_has_avx2, METH_NOARGS, "Whether this CPU runs the AVX2 path."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_l1kernel",
                                    "Exact batched L1 k-nearest neighbours with an 8-bit prefilter.", -1, methods};

PyMODINIT_FUNC PyInit__l1kernel(void) { return PyModule_Create(&module); }
