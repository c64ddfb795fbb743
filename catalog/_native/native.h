/* What the native modules share: the headers, the x86 switch and the buffer check. */
#ifndef CATALOG_NATIVE_H
#define CATALOG_NATIVE_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

/* A C-contiguous buffer of exactly nbytes (writable if asked), or -1 with a ValueError set. */
static int get_buffer(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t nbytes, const char *name) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) < 0) return -1;
    if (view->len != nbytes) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd bytes, got %zd", name, nbytes, view->len);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}
#endif
