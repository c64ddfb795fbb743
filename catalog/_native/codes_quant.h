/* The quantiser of catalog._codes (included once by codes.c): codes and rounded-up residuals. */
#ifndef CATALOG_CODES_QUANT_H
#define CATALOG_CODES_QUANT_H

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
#endif
