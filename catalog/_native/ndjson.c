/* Fast path of the NDJSON vector parser (module catalog._ndjson).
 *
 * parse_block(buf, size, pos, dims, out, row, line_no) reads lines of the exact form
 *     {"id": "<key>", "vector": [<dims JSON numbers>]}     (members in either order, JSON whitespace,
 *                                                          an optional trailing comma)
 * from buf[pos:size] (buf holds 8 newlines after size), writing each vector as float32 into out[row] and collecting (line_no, key). It
 * stops at the first line it does not fully accept, at the end of buf, or when out is full, and
 * returns (pos, row, line_no, keys, stopped); pos then points at the start of the first line not
 * consumed. Everything unusual is left to the caller's general parser, which also writes the error
 * messages: other members, escapes or non-ASCII in the key, a key with surrounding spaces, a wrong
 * number of values, a value beyond float32, a vector that is all zeros once rounded to float32,
 * nested arrays, a member given twice, a line longer than 64 * dims + 4096 bytes (the limit of
 * catalog/vectors/reading.py), malformed JSON. So for every line it accepts it produces exactly what
 * the general parser would.
 *
 * Numbers are converted to the correctly rounded double (Clinger's exact fast path when the
 * significand is at most 2^53 and the decimal exponent within +-22, otherwise Python's
 * correctly rounded PyOS_string_to_double), then rounded to float32 - the same two steps as the
 * general parser.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static const uint64_t POW10I[8] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000};

#define PADDING 8 /* readable bytes the caller puts after the data (newlines) */

#define IS_WS(c) ((c) == ' ' || (c) == '\t' || (c) == '\r' || (c) == '\n')

static inline const char *skip_ws(const char *p, const char *end) {
    while (p < end && IS_WS(*p)) p++;
    return p;
}

/* p at c (after optional whitespace)? Then the position after it and its whitespace, else NULL. */
static inline const char *expect(const char *p, const char *end, char c) {
    p = skip_ws(p, end);
    return p < end && *p == c ? skip_ws(p + 1, end) : NULL;
}

/* The number of leading ASCII digits (0..8) of 8 bytes read little-endian. */
static inline int digit_run(uint64_t chunk) {
    uint64_t hi = chunk & UINT64_C(0xF0F0F0F0F0F0F0F0);
    uint64_t hi6 = (chunk + UINT64_C(0x0606060606060606)) & UINT64_C(0xF0F0F0F0F0F0F0F0);
    uint64_t bad = (hi ^ UINT64_C(0x3030303030303030)) | (hi6 ^ UINT64_C(0x3030303030303030));
    return bad ? __builtin_ctzll(bad) / 8 : 8;
}

/* The value of the first n (1..7) digits of chunk: shifted to the top, they read as 8 digits with
 * leading zeros, converted with three multiplications (SWAR). */
static inline uint64_t digits_value(uint64_t chunk, int n) {
    uint64_t v = chunk << (8 * (8 - n));
    v = ((v & UINT64_C(0x0F0F0F0F0F0F0F0F)) * 2561) >> 8;
    v = ((v & UINT64_C(0x00FF00FF00FF00FF)) * 6553601) >> 16;
    return ((v & UINT64_C(0x0000FFFF0000FFFF)) * UINT64_C(42949672960001)) >> 32;
}

static inline uint64_t load8(const char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* One JSON number at p, any form; on success stores the double and returns the end, else NULL. */
static const char *parse_number_general(const char *p, const char *end, double *out) {
    const char *start = p;
    int neg = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9') return NULL;
    uint64_t w = 0;
    int sig = 0; /* significant digits kept in w; 20: more than 19, left to the exact conversion */
    int exp10 = 0;
    if (*p == '0') {
        p++;
    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            if (sig < 19) {
                w = w * 10 + (uint64_t)(*p - '0');
                sig++;
            } else {
                sig = 20;
            }
            p++;
        }
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9') return NULL;
        while (p < end && *p >= '0' && *p <= '9') {
            if (w == 0 && *p == '0') {
                exp10--; /* leading zeros of a fraction: not significant */
            } else if (sig < 19) {
                w = w * 10 + (uint64_t)(*p - '0');
                sig++;
                exp10--;
            } else {
                sig = 20;
            }
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0;
        if (p < end && (*p == '+' || *p == '-')) {
            eneg = *p == '-';
            p++;
        }
        if (p >= end || *p < '0' || *p > '9') return NULL;
        int e = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (e < 100000) e = e * 10 + (*p - '0');
            p++;
        }
        exp10 += eneg ? -e : e;
    }
    double v;
    if (w == 0 && sig <= 19) {
        v = 0.0;
    } else if (sig <= 19 && w <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22) {
        v = exp10 < 0 ? (double)w / POW10[-exp10] : (double)w * POW10[exp10];
    } else {
        char tmp[128];
        Py_ssize_t len = p - start;
        if (len >= (Py_ssize_t)sizeof(tmp)) return NULL;
        memcpy(tmp, start, (size_t)len);
        tmp[len] = '\0';
        char *stop = NULL;
        v = PyOS_string_to_double(tmp, &stop, NULL); /* overflow gives +-inf, no exception */
        if (v == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return NULL;
        }
        if (stop != tmp + len) return NULL;
        *out = v;
        return p;
    }
    *out = neg ? -v : v;
    return p;
}

/* One JSON number at p. The common short form -?d{1,7}(.d{1,7})? is read 8 bytes at a time (the
 * caller guarantees 8 readable bytes past the end of every line); anything else goes to the general
 * reader. */
static inline const char *parse_number(const char *p, const char *end, double *out) {
    const char *q = p;
    int neg = *q == '-';
    q += neg;
    uint64_t chunk = load8(q);
    int n = digit_run(chunk);
    if (n == 0 || n == 8 || (n > 1 && *q == '0')) return parse_number_general(p, end, out);
    uint64_t w = digits_value(chunk, n);
    q += n;
    int frac = 0;
    if (*q == '.') {
        chunk = load8(q + 1);
        frac = digit_run(chunk);
        if (frac == 0 || frac == 8) return parse_number_general(p, end, out);
        w = w * POW10I[frac] + digits_value(chunk, frac);
        q += 1 + frac;
    }
    if (*q == 'e' || *q == 'E' || q > end) return parse_number_general(p, end, out);
    double v = frac ? (double)w / POW10[frac] : (double)w; /* w < 10^14: exact; one rounding */
    *out = neg && (frac || w) ? -v : v; /* "-0" is the integer 0 (as the general parser reads it) */
    return q;
}

/* One line [p, end) (no newline). Returns 1 and fills vec/key on success, 0 to leave it to the caller. */
static int parse_line(const char *p, const char *end, Py_ssize_t dims, float *vec, const char **key,
                      Py_ssize_t *key_len) {
    int have_id = 0, have_vec = 0;
    if ((p = expect(p, end, '{')) == NULL) return 0;
    for (;;) {
        if (p >= end || *p != '"') return 0;
        if (end - p >= 4 && memcmp(p, "\"id\"", 4) == 0) {
            if (have_id || (p = expect(p + 4, end, ':')) == NULL || *p != '"') return 0;
            const char *s = ++p;
            while (p < end && *p != '"') {
                unsigned char c = (unsigned char)*p;
                if (c < 0x20 || c >= 0x80 || c == '\\') return 0;
                p++;
            }
            if (p >= end || p == s || s[0] == ' ' || p[-1] == ' ') return 0;
            *key = s;
            *key_len = p - s;
            p++;
            have_id = 1;
        } else if (end - p >= 8 && memcmp(p, "\"vector\"", 8) == 0) {
            if (have_vec || (p = expect(p + 8, end, ':')) == NULL || (p = expect(p, end, '[')) == NULL) return 0;
            Py_ssize_t n = 0;
            int nonzero = 0;
            for (;;) {
                double v;
                if (n >= dims) return 0;
                p = parse_number(p, end, &v);
                if (p == NULL) return 0;
                if (!(fabs(v) <= (double)FLT_MAX)) return 0; /* beyond float32 (or inf) */
                float f = (float)v;
                nonzero |= f != 0.0f; /* after rounding: what is stored must have a direction */
                vec[n++] = f;
                p = skip_ws(p, end);
                if (p < end && *p == ',') {
                    p = skip_ws(p + 1, end);
                    continue;
                }
                if (p < end && *p == ']') {
                    p++;
                    break;
                }
                return 0;
            }
            if (n != dims || !nonzero) return 0;
            have_vec = 1;
        } else {
            return 0;
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}') {
            p++;
            break;
        }
        return 0;
    }
    if (!have_id || !have_vec) return 0;
    p = skip_ws(p, end);
    if (p < end && *p == ',') p = skip_ws(p + 1, end);
    return p == end;
}

static PyObject *py_parse_block(PyObject *self, PyObject *args) {
    Py_buffer buf, out;
    Py_ssize_t size, pos, dims, row, line_no;
    if (!PyArg_ParseTuple(args, "y*nnnw*nn", &buf, &size, &pos, &dims, &out, &row, &line_no)) return NULL;
    PyObject *keys = NULL, *result = NULL;
    if (dims <= 0 || out.len % (Py_ssize_t)(dims * sizeof(float)) != 0 || size < 0 || pos < 0 || pos > size ||
        row < 0 || buf.len < size + PADDING) {
        PyErr_SetString(PyExc_ValueError, "parse_block: bad arguments");
        goto done;
    }
    for (Py_ssize_t i = size; i < size + PADDING; i++) {
        if (((const char *)buf.buf)[i] != '\n') {
            PyErr_SetString(PyExc_ValueError, "parse_block: the padding after the data must be newlines");
            goto done;
        }
    }
    Py_ssize_t cap = out.len / (Py_ssize_t)(dims * sizeof(float));
    keys = PyList_New(0);
    if (keys == NULL) goto done;
    const char *base = (const char *)buf.buf, *bend = base + size;
    float *vecs = (float *)out.buf;
    int stopped = 0;
    const Py_ssize_t max_line = 64 * dims + 4096; /* reading.max_line_bytes: longer lines are refused */
    while (pos < size && row < cap) {
        const char *line = base + pos;
        const char *eol = memchr(line, '\n', (size_t)(bend - line));
        if (eol == NULL) eol = bend;
        if (eol - line > max_line) {
            stopped = 1;
            break;
        }
        const char *a = skip_ws(line, eol);
        if (a == eol) { /* blank line */
            line_no++;
            pos = eol - base + (eol < bend);
            continue;
        }
        const char *key = NULL;
        Py_ssize_t key_len = 0;
        if (!parse_line(a, eol, dims, vecs + row * dims, &key, &key_len)) {
            stopped = 1;
            break;
        }
        line_no++;
        PyObject *item = Py_BuildValue("(ns#)", line_no, key, key_len);
        if (item == NULL) goto done;
        int rc = PyList_Append(keys, item);
        Py_DECREF(item);
        if (rc < 0) goto done;
        row++;
        pos = eol - base + (eol < bend);
    }
    result = Py_BuildValue("(nnnOO)", pos, row, line_no, keys, stopped ? Py_True : Py_False);
done:
    Py_XDECREF(keys);
    PyBuffer_Release(&buf);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"parse_block", py_parse_block, METH_VARARGS,
     "parse_block(buf, size, pos, dims, out, row, line_no) -> (pos, row, line_no, keys, stopped)\n\n"
     "Parse plain {\"id\", \"vector\"} lines of buf[:size] from pos into the float32 rows of out from\n"
     "row (buf holds 8 newlines after size); "
     "stops at the first line left to the general parser (stopped is True), at the end of buf, or\n"
     "when out is full. keys holds (line_no, key) for each parsed line."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ndjson",
                                    "Fast path of the NDJSON vector parser.", -1, methods};

PyMODINIT_FUNC PyInit__ndjson(void) { return PyModule_Create(&module); }
