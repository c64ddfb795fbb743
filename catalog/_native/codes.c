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
 * Pooled first level (optional): codes of the sums of 4 dimensions (catalog/vectors/pooled.py) with
 * their own step ps and residuals give LBp_j = min_a (ps SADp_aj - peq_a) - presid_j, another lower
 * bound on min_a L1 (|sum a_i - sum b_i| <= sum |a_i - b_i|) at a quarter of the bytes. A row with
 * LBp > hi is dropped; with kk > 0 and every row certain by the window (lo = clo = -inf, chi = inf) a
 * row with LBp > T is counted as certain and dropped (its UB >= LBp > T cannot enter the kk
 * smallest). Every other row gets the full bounds, with LB replaced by max(LB, LBp).
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

#include "codes_sad.h"

/* ---------------------------------------------------------------- the scan */
typedef struct {
    const uint8_t *codes;
    const float *resid;
    const uint8_t *const *q;
    const double *eq;
    int m, isa;
    Py_ssize_t dp, kk;
    double s, lo, hi, clo, chi, wmul, wadd;
    /* the pooled first level (pooled == 0: none): codes of sums of 4 dimensions, pp bytes a row */
    int pooled, all_certain;
    const uint8_t *pcodes;
    const float *presid;
    const uint8_t *const *pq;
    const double *peq;
    Py_ssize_t pp;
    double ps;
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

#include "codes_heap.h"

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
    uint8_t *buf = sc->pooled ? malloc((size_t)TILE * sc->dp) : NULL; /* the rows the pooled level kept */
    double lbm[TILE], ubm[TILE], lbp[TILE];
    int64_t rows[TILE];
    if (!sad || (sc->pooled && !buf)) {
        free(sad);
        p->failed = 1;
        return NULL;
    }
    double t = part_threshold(p);
    for (Py_ssize_t j0 = p->start; j0 < p->stop; j0 += TILE) {
        int nr = (int)(p->stop - j0 < TILE ? p->stop - j0 : TILE);
        if (sc->pooled) { /* LBp = min_a (ps SADp - peq_a) - presid_j; keep the rows it cannot decide */
            sad_tile(sc->isa, sc->pq, m, sc->pcodes + j0 * sc->pp, nr, sc->pp, sad);
            for (int r = 0; r < nr; r++) lbm[r] = INFINITY;
            for (int a = 0; a < m; a++) {
                const int32_t *sa = sad + a * TILE;
                const double e = sc->peq[a], ps = sc->ps;
                for (int r = 0; r < nr; r++) {
                    double l = ps * (double)sa[r] - e;
                    lbm[r] = l < lbm[r] ? l : lbm[r];
                }
            }
            int w = 0;
            for (int r = 0; r < nr; r++) {
                double l = lbm[r] - (double)sc->presid[j0 + r];
                if (l > sc->hi) continue;
                if (sc->kk > 0 && sc->all_certain && l > t) { /* certain, and not in the top kk */
                    p->certain++;
                    continue;
                }
                rows[w] = j0 + r;
                lbp[w] = l;
                memcpy(buf + (size_t)w * sc->dp, sc->codes + (j0 + r) * sc->dp, (size_t)sc->dp);
                w++;
            }
            nr = w;
            if (!nr) continue;
            sad_tile(sc->isa, sc->q, m, buf, nr, sc->dp, sad);
        } else {
            for (int r = 0; r < nr; r++) {
                rows[r] = j0 + r;
                lbp[r] = -INFINITY;
            }
            sad_tile(sc->isa, sc->q, m, sc->codes + j0 * sc->dp, nr, sc->dp, sad);
        }
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
            double ex = (double)sc->resid[rows[r]];
            double lb = lbm[r] - ex, ub = ubm[r] + ex;
            lb = lbp[r] > lb ? lbp[r] : lb; /* the larger of the two lower bounds */
            if (lb > sc->hi || ub < sc->lo) continue;
            uint8_t certain = ub <= sc->chi && lb >= sc->clo;
            if (sc->kk > 0 && certain) {
                p->certain++;
                heap_offer(p->heap, &p->hn, sc->kk, ub);
                t = part_threshold(p);
                if (lb > t) continue;
            }
            if (emit(p, rows[r], lb, certain)) {
                p->failed = 1;
                break;
            }
        }
        if (p->failed) break;
    }
    free(sad);
    free(buf);
    return NULL;
}

PyDoc_STRVAR(scan_doc,
             "scan(codes, resid, n, dp, qcodes, eq, m, s, lo, hi, clo, chi, kk, wmul, wadd, threads, isa,\n"
             "     pooled=None)\n"
             "-> (positions bytes (int64), certain flags bytes (uint8), certain count, U_kk)\n\n"
             "The rows whose code bounds on min over the m query codes of L1 may lie in [lo, hi]; see the\n"
             "module source for the exact rule. isa: 0 portable, 1 AVX2, 2 AVX-512 BW, -1 the best here.\n"
             "pooled: None or (pcodes, presid, pp, pqcodes, peq, ps), the first level of sums of 4 dimensions.");

static PyObject *py_scan(PyObject *self, PyObject *args) {
    PyObject *oc, *oresid, *oq, *oeq;
    Py_ssize_t n, dp, m, kk;
    double s, lo, hi, clo, chi, wmul, wadd;
    int threads, isa;
    PyObject *opool = Py_None, *opc = NULL, *opr = NULL, *opq = NULL, *ope = NULL;
    Py_ssize_t pp = 0;
    double ps = 0.0;
    if (!PyArg_ParseTuple(args, "OOnnOOndddddnddii|O", &oc, &oresid, &n, &dp, &oq, &oeq, &m, &s, &lo, &hi, &clo, &chi,
                          &kk, &wmul, &wadd, &threads, &isa, &opool))
        return NULL;
    int pooled = opool != Py_None;
    if (pooled && !PyArg_ParseTuple(opool, "OOnOOd", &opc, &opr, &pp, &opq, &ope, &ps)) return NULL;
    if (pooled && (pp <= 0 || pp % 32 || pp > dp || !(ps > 0))) {
        PyErr_SetString(PyExc_ValueError, "scan: pooled sizes out of range");
        return NULL;
    }
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
    Py_buffer pb4[4];
    int got = 0;
    if (pooled) {
        PyObject *objs[4] = {opc, opr, opq, ope};
        Py_ssize_t sizes[4] = {n * pp, n * 4, m * pp, m * 8};
        static const char *names[4] = {"pooled codes", "pooled resid", "pooled qcodes", "pooled eq"};
        for (; got < 4; got++)
            if (get_buffer(objs[got], &pb4[got], 0, sizes[got], names[got])) break;
        if (got < 4) {
            for (int i = 0; i < got; i++) PyBuffer_Release(&pb4[i]);
            PyBuffer_Release(&bc); PyBuffer_Release(&br); PyBuffer_Release(&bq); PyBuffer_Release(&be);
            return NULL;
        }
    }
    if (threads < 1) threads = 1;
    if (threads > MAXT) threads = MAXT;
    if (n < 4096 * (Py_ssize_t)threads) threads = (int)(n / 4096) > 0 ? (int)(n / 4096) : 1;
    const uint8_t **qs = malloc((size_t)m * sizeof(uint8_t *) * 2), **pqs = qs ? qs + m : NULL;
    Part parts[MAXT];
    memset(parts, 0, sizeof(parts));
    int failed = qs == NULL;
    Scan sc = {bc.buf, br.buf, qs, be.buf, (int)m, isa, dp, kk, s, lo, hi, clo, chi, wmul, wadd, pooled,
               chi == INFINITY && clo == -INFINITY && lo == -INFINITY, pooled ? pb4[0].buf : NULL,
               pooled ? pb4[1].buf : NULL, pqs, pooled ? pb4[3].buf : NULL, pp, ps};
    double uk = INFINITY;
    int64_t certain = 0;
    Py_ssize_t total = 0;
    Py_BEGIN_ALLOW_THREADS
    if (!failed) {
        for (Py_ssize_t a = 0; a < m; a++) qs[a] = (const uint8_t *)bq.buf + a * dp;
        if (pooled)
            for (Py_ssize_t a = 0; a < m; a++) pqs[a] = (const uint8_t *)pb4[2].buf + a * pp;
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
    if (pooled)
        for (int i = 0; i < 4; i++) PyBuffer_Release(&pb4[i]);
    PyBuffer_Release(&bc); PyBuffer_Release(&br); PyBuffer_Release(&bq); PyBuffer_Release(&be);
    return result;
}

#include "codes_quant.h"

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
