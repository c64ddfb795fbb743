/* The bounded max-heap of the kk smallest upper bounds, and a double comparison for qsort (included
 * once by codes.c). */
#ifndef CATALOG_CODES_HEAP_H
#define CATALOG_CODES_HEAP_H

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

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
#endif
