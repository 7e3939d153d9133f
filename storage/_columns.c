/* replay.storage._columns: the per-item loops of storage/codec.py's column layout, in C.
 *
 * Optional: codec.py uses these when the module is built and falls back to its own Python
 * code otherwise. Each function gives exactly what the Python code gives (the bytes of a chunk
 * do not depend on whether this module was built: tests/storage/test_codec_columns.py checks
 * both on the same input), or None when its input is not the plain case it handles (a big
 * int, a bool, a tuple subclass...): codec.py then runs its Python code, which decides.
 *
 * Why: the recorder's writer thread encodes every event it writes, holding the GIL the traced
 * program needs. Transposing the event tuples, checking that the integer fields are exact ints
 * and packing them into fixed-width little-endian planes took the writer about 0.4 us per event
 * in Python (zip, map, array): a quarter of the writer's time on richards.py. The call blocks'
 * rows (`call_columns`) cost it as much per call.
 *
 * Only the public, stable C API is used: the module builds on every CPython replay supports.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_callrecord.h"
#include "_dumps.h"
#include "_sqlite.h"
#include "_zstd.h"

/* transpose(rows, width) -> list of `width` lists, or None unless every row is an exact tuple
 * of `width` items (`list(zip(*rows))` as lists, without an iterator per row). */
static PyObject *
transpose(PyObject *module, PyObject *args)
{
    PyObject *rows;
    Py_ssize_t width;
    if (!PyArg_ParseTuple(args, "O!n:transpose", &PyList_Type, &rows, &width)) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(rows);
    if (width <= 0) {
        Py_RETURN_NONE;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        if (!PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) != width) {
            Py_RETURN_NONE;
        }
    }
    PyObject *columns = PyList_New(width);
    if (columns == NULL) {
        return NULL;
    }
    for (Py_ssize_t c = 0; c < width; c++) {
        PyObject *column = PyList_New(n);
        if (column == NULL) {
            Py_DECREF(columns);
            return NULL;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            PyList_SET_ITEM(column, i, Py_NewRef(PyTuple_GET_ITEM(PyList_GET_ITEM(rows, i), c)));
        }
        PyList_SET_ITEM(columns, c, column);
    }
    return columns;
}

/* The value of an exact int that fits 64 bits: 1, or 0 (not an exact int, or too big). */
static inline int
exact_int64(PyObject *v, int64_t *out)
{
    if (!PyLong_CheckExact(v)) {
        return 0;
    }
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || (x == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    *out = (int64_t)x;
    return 1;
}

/* (width, first, data): `count` items of `rest` as little-endian `width`-byte items, planar
 * (every item's byte 0, then every byte 1, ...) or not. */
static PyObject *
packed(const int64_t *rest, Py_ssize_t count, int width, int planar, PyObject *first)
{
    PyObject *data = PyBytes_FromStringAndSize(NULL, count * width);
    if (data == NULL) {
        return NULL;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(data);
    for (Py_ssize_t i = 0; i < count; i++) {
        uint64_t u = (uint64_t)rest[i];
        for (int b = 0; b < width; b++) {
            unsigned char byte = (unsigned char)(u >> (8 * b));
            if (planar) {
                out[b * count + i] = byte;
            }
            else {
                out[i * width + b] = byte;
            }
        }
    }
    return Py_BuildValue("(iON)", width, first, data);
}

/* pack_ints(values, delta, planar) -> (width, first, data) as codec._pack_ints makes it, or
 * None when an item is not an exact int or an item (or a difference) does not fit 64 bits. */
static PyObject *
pack_ints(PyObject *module, PyObject *args)
{
    PyObject *values;
    int delta, planar;
    if (!PyArg_ParseTuple(args, "O!pp:pack_ints", &PyList_Type, &values, &delta, &planar)) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(values);
    if (n == 0) {
        Py_RETURN_NONE;
    }
    Py_ssize_t count = n - 1;
    int64_t *rest = PyMem_Malloc((count ? count : 1) * sizeof(int64_t));
    if (rest == NULL) {
        return PyErr_NoMemory();
    }
    int64_t previous, x;
    int width = 4;
    if (!exact_int64(PyList_GET_ITEM(values, 0), &previous)) {
        goto plain;
    }
    for (Py_ssize_t i = 1; i < n; i++) {
        if (!exact_int64(PyList_GET_ITEM(values, i), &x)) {
            goto plain;
        }
        int64_t item = x;
        if (delta && __builtin_sub_overflow(x, previous, &item)) {
            goto plain;
        }
        previous = x;
        rest[i - 1] = item;
        if (item < INT32_MIN || item > INT32_MAX) {
            width = 8;
        }
    }
    PyObject *result = packed(rest, count, width, planar, PyList_GET_ITEM(values, 0));
    PyMem_Free(rest);
    return result;

plain:
    PyMem_Free(rest);
    Py_RETURN_NONE;
}

/* (width, first, data) of `n` (at least one) int64s as pack_ints makes it: `first` is the
 * object to show as the first value (call_columns: the one the row holds, as the Python code
 * keeps it), or NULL for a new int; None (a new reference) when a difference does not fit 64
 * bits. `rest` is scratch room for n - 1 items. */
static PyObject *
pack_column(const int64_t *items, Py_ssize_t n, int delta, int planar, PyObject *first,
            int64_t *rest)
{
    int width = 4;
    for (Py_ssize_t i = 1; i < n; i++) {
        int64_t item = items[i];
        if (delta && __builtin_sub_overflow(items[i], items[i - 1], &item)) {
            Py_RETURN_NONE;
        }
        rest[i - 1] = item;
        if (item < INT32_MIN || item > INT32_MAX) {
            width = 8;
        }
    }
    PyObject *made = first == NULL ? PyLong_FromLongLong(items[0]) : Py_NewRef(first);
    PyObject *result = made == NULL ? NULL : packed(rest, n - 1, width, planar, made);
    Py_XDECREF(made);
    return result;
}

/* pack_int64(data, delta, planar) -> pack_ints of the native int64s in `data` (bytes, as an
 * event buffer's columns() gives them), or None when a difference does not fit 64 bits. */
static PyObject *
pack_int64(PyObject *module, PyObject *args)
{
    Py_buffer view;
    int delta, planar;
    if (!PyArg_ParseTuple(args, "y*pp:pack_int64", &view, &delta, &planar)) {
        return NULL;
    }
    Py_ssize_t n = view.len / (Py_ssize_t)sizeof(int64_t);
    if (n == 0 || view.len % (Py_ssize_t)sizeof(int64_t) != 0) {
        PyBuffer_Release(&view);
        Py_RETURN_NONE;
    }
    int64_t *rest = PyMem_Malloc((n > 1 ? n - 1 : 1) * sizeof(int64_t));
    PyObject *result = rest == NULL ? PyErr_NoMemory()
                                    : pack_column(view.buf, n, delta, planar, NULL, rest);
    PyMem_Free(rest);
    PyBuffer_Release(&view);
    return result;
}

/* kind_bytes(kinds) -> bytes(kinds) when every item is an exact int in 0..255, else None. */
static PyObject *
kind_bytes(PyObject *module, PyObject *kinds)
{
    if (!PyList_CheckExact(kinds)) {
        Py_RETURN_NONE;
    }
    Py_ssize_t n = PyList_GET_SIZE(kinds);
    PyObject *data = PyBytes_FromStringAndSize(NULL, n);
    if (data == NULL) {
        return NULL;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(data);
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t k;
        if (!exact_int64(PyList_GET_ITEM(kinds, i), &k) || k < 0 || k > 255) {
            Py_DECREF(data);
            Py_RETURN_NONE;
        }
        out[i] = (unsigned char)k;
    }
    return data;
}


/* Call row fields (codec.CALL_FIELDS) and the columns call_columns packs from them. */
enum { C_CALL, C_PARENT, C_FUNCTION, C_THREAD, C_DEPTH, C_FIRST, C_LAST, C_EXCEPTION,
       C_GENERATOR, C_FIELDS };
enum { P_CALL, P_GAP, P_FUNCTION, P_THREAD, P_DEPTH, P_FIRST, P_SPAN, P_COLUMNS };

/* One row into the packed columns (`cols[column * n + i]`) and `flags`: 1, or 0 when the row
 * is not the plain case (call_columns then declines). */
static int
call_row(PyObject *row, Py_ssize_t i, Py_ssize_t n, int64_t *cols, unsigned char *flags)
{
    if (!PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) != C_FIELDS) {
        return 0;
    }
    static const int direct[][2] = {{C_CALL, P_CALL},     {C_FUNCTION, P_FUNCTION},
                                    {C_THREAD, P_THREAD}, {C_DEPTH, P_DEPTH},
                                    {C_FIRST, P_FIRST}};
    for (int k = 0; k < 5; k++) {
        if (!exact_int64(PyTuple_GET_ITEM(row, direct[k][0]), &cols[direct[k][1] * n + i])) {
            return 0;
        }
    }
    int64_t call = cols[P_CALL * n + i], first = cols[P_FIRST * n + i], parent, last;
    PyObject *parent_obj = PyTuple_GET_ITEM(row, C_PARENT);
    int64_t *gap = &cols[P_GAP * n + i], *span = &cols[P_SPAN * n + i];
    if (parent_obj == Py_None) {
        *gap = 0; /* no parent */
    }
    else if (!exact_int64(parent_obj, &parent) || __builtin_sub_overflow(call, parent, gap)
             || *gap == 0) {
        return 0; /* a parent equal to its call cannot be told from none */
    }
    PyObject *last_obj = PyTuple_GET_ITEM(row, C_LAST);
    if (last_obj == Py_None) {
        *span = -1; /* still running */
    }
    else if (!exact_int64(last_obj, &last) || __builtin_sub_overflow(last, first, span)
             || *span < 0) {
        return 0;
    }
    PyObject *exception = PyTuple_GET_ITEM(row, C_EXCEPTION);
    PyObject *generator = PyTuple_GET_ITEM(row, C_GENERATOR);
    if (!PyBool_Check(exception) || !PyBool_Check(generator)) {
        return 0;
    }
    flags[i] = (unsigned char)((exception == Py_True) | (generator == Py_True) << 1);
    return 1;
}

/* call_columns(rows) -> codec._call_columns(rows) for rows it reads as they are: a non-empty
 * list of exact tuples of the nine call fields, ints within 64 bits (parent and last step may
 * be None), bools for the flags; None for anything else (the Python code then decides). One
 * pass over the rows where the Python code makes a dozen (0.4 us per call on the writer). */
static PyObject *
call_columns(PyObject *module, PyObject *rows)
{
    if (!PyList_CheckExact(rows) || PyList_GET_SIZE(rows) == 0) {
        Py_RETURN_NONE;
    }
    Py_ssize_t n = PyList_GET_SIZE(rows);
    int64_t *cols = PyMem_Malloc((size_t)(P_COLUMNS + 1) * (size_t)n * sizeof(int64_t));
    PyObject *flags = PyBytes_FromStringAndSize(NULL, n);
    if (cols == NULL || flags == NULL) {
        PyMem_Free(cols);
        Py_XDECREF(flags);
        return cols == NULL ? PyErr_NoMemory() : NULL;
    }
    int64_t *rest = cols + P_COLUMNS * n; /* scratch for pack_column */
    unsigned char *flag_bytes = (unsigned char *)PyBytes_AS_STRING(flags);
    PyObject *result = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!call_row(PyList_GET_ITEM(rows, i), i, n, cols, flag_bytes)) {
            result = Py_NewRef(Py_None);
            goto done;
        }
    }
    /* (delta, planar, the row field whose object is `first`, or -1: a new int), as
     * codec._call_columns packs each column. */
    static const int how[P_COLUMNS][3] = {
        {1, 1, C_CALL},  {0, 1, -1},      {0, 1, C_FUNCTION}, {0, 1, C_THREAD},
        {0, 1, C_DEPTH}, {1, 1, C_FIRST}, {0, 1, -1},
    };
    if (n == 1) {
        /* As bytes(...) gives it: the interpreter's shared one-byte object (marshal flags an
         * object with other references, so the block's bytes would differ otherwise). */
        Py_SETREF(flags, PyBytes_FromStringAndSize((const char *)flag_bytes, 1));
        if (flags == NULL) {
            PyMem_Free(cols);
            return NULL;
        }
    }
    PyObject *head = PyList_GET_ITEM(rows, 0);
    result = PyTuple_New(P_COLUMNS + 3);
    if (result == NULL) {
        goto done;
    }
    PyTuple_SET_ITEM(result, 0, PyLong_FromLong(1)); /* codec._AS_COLUMNS */
    PyTuple_SET_ITEM(result, 1, PyLong_FromSsize_t(n));
    for (int c = 0; c < P_COLUMNS; c++) {
        PyObject *first = how[c][2] < 0 ? NULL : PyTuple_GET_ITEM(head, how[c][2]);
        PyObject *column = pack_column(cols + c * n, n, how[c][0], how[c][1], first, rest);
        if (column == Py_None) {
            Py_SETREF(result, column);
            goto done;
        }
        PyTuple_SET_ITEM(result, 2 + c, column);
    }
    PyTuple_SET_ITEM(result, P_COLUMNS + 2, Py_NewRef(flags));
    for (Py_ssize_t k = 0; k < P_COLUMNS + 3; k++) {
        if (PyTuple_GET_ITEM(result, k) == NULL) {
            Py_CLEAR(result);
            break;
        }
    }
done:
    PyMem_Free(cols);
    Py_DECREF(flags);
    return result;
}


static int
record_before(const CallRecord *a, const CallRecord *b, int by_first)
{
    if (by_first && a->first != b->first) {
        return a->first < b->first;
    }
    return a->call < b->call;
}

/* Sort `idx` (n indices into `recs`) by call id, or by (first step, call id): an insertion
 * sort on the nearly sorted runs the writer hands (calls end in order), merge sort otherwise. */
static void
sort_records(const CallRecord *recs, Py_ssize_t *idx, Py_ssize_t n, int by_first,
             Py_ssize_t *scratch)
{
    if (n < 2) {
        return;
    }
    Py_ssize_t inversions = 0;
    for (Py_ssize_t i = 1; i < n && inversions <= 64; i++) {
        inversions += record_before(&recs[idx[i]], &recs[idx[i - 1]], by_first);
    }
    if (inversions <= 64) {
        for (Py_ssize_t i = 1; i < n; i++) {
            Py_ssize_t x = idx[i], j = i;
            while (j > 0 && record_before(&recs[x], &recs[idx[j - 1]], by_first)) {
                idx[j] = idx[j - 1];
                j--;
            }
            idx[j] = x;
        }
        return;
    }
    Py_ssize_t half = n / 2;
    sort_records(recs, idx, half, by_first, scratch);
    sort_records(recs, idx + half, n - half, by_first, scratch);
    Py_ssize_t a = 0, b = half, k = 0;
    while (a < half && b < n) {
        scratch[k++] = record_before(&recs[idx[b]], &recs[idx[a]], by_first) ? idx[b++] : idx[a++];
    }
    while (a < half) {
        scratch[k++] = idx[a++];
    }
    while (b < n) {
        scratch[k++] = idx[b++];
    }
    memcpy(idx, scratch, (size_t)n * sizeof(Py_ssize_t));
}

/* The row tuple (codec.CALL_FIELDS) of a record, as CallRecords.rows makes it. */
static PyObject *
record_row(const CallRecord *r)
{
    return Py_BuildValue("(LNLLLLLOO)", (long long)r->call,
                         r->parent ? PyLong_FromLongLong(r->parent) : Py_NewRef(Py_None),
                         (long long)r->function, (long long)r->thread, (long long)r->depth,
                         (long long)r->first, (long long)r->last,
                         r->exception ? Py_True : Py_False, r->generator ? Py_True : Py_False);
}

/* codec._call_columns of one block of records (in block order), or the block's row tuples
 * where call_columns would decline (a parent equal to its call, a last step before the first, a
 * difference past 64 bits: the Python code then decides, as for rows). */
static PyObject *
block_columns(const CallRecord *recs, const Py_ssize_t *idx, Py_ssize_t n, int64_t *cols,
              int64_t *rest)
{
    PyObject *flags = PyBytes_FromStringAndSize(NULL, n);
    if (flags == NULL) {
        return NULL;
    }
    unsigned char *flag_bytes = (unsigned char *)PyBytes_AS_STRING(flags);
    int plain = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        const CallRecord *r = &recs[idx[i]];
        cols[P_CALL * n + i] = r->call;
        cols[P_FUNCTION * n + i] = r->function;
        cols[P_THREAD * n + i] = r->thread;
        cols[P_DEPTH * n + i] = r->depth;
        cols[P_FIRST * n + i] = r->first;
        int64_t *gap = &cols[P_GAP * n + i], *span = &cols[P_SPAN * n + i];
        if (r->parent == 0) {
            *gap = 0;
        }
        else if (__builtin_sub_overflow(r->call, r->parent, gap) || *gap == 0) {
            plain = 0;
        }
        if (__builtin_sub_overflow(r->last, r->first, span) || *span < 0) {
            plain = 0;
        }
        flag_bytes[i] = (unsigned char)((r->exception != 0) | (r->generator != 0) << 1);
    }
    PyObject *result = NULL;
    if (plain) {
        static const int how[P_COLUMNS][2] = {{1, 1}, {0, 1}, {0, 1}, {0, 1},
                                              {0, 1}, {1, 1}, {0, 1}};
        if (n == 1) { /* the shared one-byte object, as call_columns gives it */
            Py_SETREF(flags, PyBytes_FromStringAndSize((const char *)flag_bytes, 1));
            if (flags == NULL) {
                return NULL;
            }
        }
        result = PyTuple_New(P_COLUMNS + 3);
        if (result == NULL) {
            Py_DECREF(flags);
            return NULL;
        }
        PyTuple_SET_ITEM(result, 0, PyLong_FromLong(1)); /* codec._AS_COLUMNS */
        PyTuple_SET_ITEM(result, 1, PyLong_FromSsize_t(n));
        for (int c = 0; c < P_COLUMNS && result != NULL; c++) {
            PyObject *column = pack_column(cols + c * n, n, how[c][0], how[c][1], NULL, rest);
            if (column == Py_None) {
                Py_DECREF(column);
                Py_CLEAR(result);
                plain = 0;
                break;
            }
            PyTuple_SET_ITEM(result, 2 + c, column);
        }
        if (result != NULL) {
            PyTuple_SET_ITEM(result, P_COLUMNS + 2, Py_NewRef(flags));
            for (Py_ssize_t k = 0; k < P_COLUMNS + 3; k++) {
                if (PyTuple_GET_ITEM(result, k) == NULL) {
                    Py_CLEAR(result);
                    break;
                }
            }
            if (result == NULL) {
                Py_DECREF(flags);
                return NULL;
            }
        }
    }
    Py_DECREF(flags);
    if (plain) {
        return result;
    }
    PyObject *rows = PyList_New(n);
    for (Py_ssize_t i = 0; rows != NULL && i < n; i++) {
        PyObject *row = record_row(&recs[idx[i]]);
        if (row == NULL) {
            Py_CLEAR(rows);
            break;
        }
        PyList_SET_ITEM(rows, i, row);
    }
    return rows;
}

/* call_blocks(records, block_calls, block_span) -> batch.call_blocks_of's blocks of packed
 * ended calls (codec.CallRecords' bytes): per thread, in the order threads first appear, calls
 * by id cut into blocks of at most `block_calls` calls spanning fewer than `block_span` ids,
 * each block in (first step, call id) order, as (thread_id, first_call, last_call, first_step,
 * last_step, n_calls, columns) with columns as call_columns makes them (or the block's row
 * tuples where it would decline). No tuple per call: the recorder's writer hands a few hundred
 * thousand calls a second. */
static PyObject *
call_blocks(PyObject *module, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t block_calls, block_span;
    if (!PyArg_ParseTuple(args, "y*nn:call_blocks", &view, &block_calls, &block_span)) {
        return NULL;
    }
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    PyBuffer_Release(&view); /* the records are little-endian: the Python code reads them */
    Py_RETURN_NONE;
#endif
    PyObject *out = NULL;
    Py_ssize_t n = view.len / (Py_ssize_t)sizeof(CallRecord);
    const CallRecord *recs = view.buf;
    Py_ssize_t *idx = NULL, *scratch = NULL;
    int64_t *cols = NULL, *threads = NULL;
    if (view.len % (Py_ssize_t)sizeof(CallRecord) != 0 || block_calls < 1 || block_span < 1) {
        PyErr_SetString(PyExc_ValueError, "call_blocks needs whole CALL_RECORD records");
        goto done;
    }
    out = PyList_New(0);
    if (out == NULL || n == 0) {
        goto done;
    }
    idx = PyMem_Malloc((size_t)n * sizeof(Py_ssize_t));
    scratch = PyMem_Malloc((size_t)n * sizeof(Py_ssize_t));
    threads = PyMem_Malloc((size_t)n * sizeof(int64_t));
    Py_ssize_t widest = n < block_calls ? n : block_calls;
    cols = PyMem_Malloc((size_t)(P_COLUMNS + 1) * (size_t)widest * sizeof(int64_t));
    if (idx == NULL || scratch == NULL || threads == NULL || cols == NULL) {
        PyErr_NoMemory();
        Py_CLEAR(out);
        goto done;
    }
    Py_ssize_t nthreads = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t t = 0;
        while (t < nthreads && threads[t] != recs[i].thread) {
            t++;
        }
        if (t == nthreads) {
            threads[nthreads++] = recs[i].thread;
        }
    }
    for (Py_ssize_t t = 0; t < nthreads && out != NULL; t++) {
        Py_ssize_t m = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (recs[i].thread == threads[t]) {
                idx[m++] = i;
            }
        }
        sort_records(recs, idx, m, 0, scratch);
        for (Py_ssize_t start = 0; start < m;) {
            Py_ssize_t end = start + 1, limit = start + block_calls < m ? start + block_calls : m;
            while (end < limit && recs[idx[end]].call - recs[idx[start]].call < block_span) {
                end++;
            }
            Py_ssize_t k = end - start;
            int64_t first_call = recs[idx[start]].call, last_call = recs[idx[end - 1]].call;
            Py_ssize_t *block = idx + start;
            sort_records(recs, block, k, 1, scratch);
            int64_t last_step = recs[block[0]].last;
            for (Py_ssize_t i = 1; i < k; i++) {
                if (recs[block[i]].last > last_step) {
                    last_step = recs[block[i]].last;
                }
            }
            PyObject *columns = block_columns(recs, block, k, cols, cols + P_COLUMNS * k);
            PyObject *item = columns == NULL
                                 ? NULL
                                 : Py_BuildValue("(LLLLLnN)", (long long)threads[t],
                                                 (long long)first_call, (long long)last_call,
                                                 (long long)recs[block[0]].first,
                                                 (long long)last_step, k, columns);
            if (item == NULL || PyList_Append(out, item) < 0) {
                Py_XDECREF(item);
                Py_CLEAR(out);
                break;
            }
            Py_DECREF(item);
            start = end;
        }
    }
done:
    PyMem_Free(idx);
    PyMem_Free(scratch);
    PyMem_Free(threads);
    PyMem_Free(cols);
    PyBuffer_Release(&view);
    return out;
}

/* paired(changes) -> list of codec._paired(item) for each item: None stays None, a flat tuple
 * (name, value, name, value, ...) becomes a tuple of (name, value) pairs. None (declined) unless
 * `changes` is a list whose items are None or exact tuples of even length: codec.py then runs
 * its Python loop, which refuses the others. The readers' side (decoding a chunk), where pairing
 * in Python cost two thirds of a chunk's decoding. */
static PyObject *
paired(PyObject *module, PyObject *changes)
{
    if (!PyList_CheckExact(changes)) {
        Py_RETURN_NONE;
    }
    Py_ssize_t n = PyList_GET_SIZE(changes);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(changes, i);
        if (item != Py_None && (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) % 2)) {
            Py_RETURN_NONE;
        }
    }
    PyObject *out = PyList_New(n);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *flat = PyList_GET_ITEM(changes, i);
        if (flat == Py_None) {
            PyList_SET_ITEM(out, i, Py_NewRef(Py_None));
            continue;
        }
        Py_ssize_t m = PyTuple_GET_SIZE(flat) / 2;
        PyObject *pairs = PyTuple_New(m);
        if (pairs == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, pairs); /* the list owns it: freed with it on failure */
        PyObject_GC_UnTrack(pairs);     /* decoded data: no cycle runs through it (untrack) */
        for (Py_ssize_t j = 0; j < m; j++) {
            PyObject *pair = PyTuple_New(2);
            if (pair == NULL) {
                Py_DECREF(out);
                return NULL;
            }
            PyTuple_SET_ITEM(pair, 0, Py_NewRef(PyTuple_GET_ITEM(flat, 2 * j)));
            PyTuple_SET_ITEM(pair, 1, Py_NewRef(PyTuple_GET_ITEM(flat, 2 * j + 1)));
            PyTuple_SET_ITEM(pairs, j, pair);
            PyObject_GC_UnTrack(pair);
        }
    }
    return out;
}

/* untrack(items): the cyclic garbage collector stops watching each exact tuple in the list
 * `items` (None). For decoded events: they hold values read from a chunk, which cannot refer
 * back to them, so no reference cycle runs through them, and reference counting frees them.
 * The engine decodes chunks with the collector paused; without this, the first collection
 * after the pause walked every event tuple of every chunk decoded meanwhile (about 2 ms per
 * chunk of 16,384 events). */
static PyObject *
untrack(PyObject *module, PyObject *items)
{
    if (!PyList_CheckExact(items)) {
        PyErr_SetString(PyExc_TypeError, "untrack() takes a list");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        if (PyTuple_CheckExact(item) && PyObject_GC_IsTracked(item)) {
            PyObject_GC_UnTrack(item);
        }
    }
    Py_RETURN_NONE;
}

static PyObject *
libzstd_version(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    unsigned version = zstd_version();
    return version ? PyLong_FromUnsignedLong(version) : Py_NewRef(Py_None);
}

static PyMethodDef columns_methods[] = {
    {"transpose", transpose, METH_VARARGS,
     "transpose(rows, width): the columns of a list of exact tuples, or None."},
    {"pack_ints", pack_ints, METH_VARARGS,
     "pack_ints(values, delta, planar): codec._pack_ints of exact 64-bit ints, or None."},
    {"pack_int64", pack_int64, METH_VARARGS,
     "pack_int64(data, delta, planar): pack_ints of the native int64s in bytes, or None."},
    {"kind_bytes", kind_bytes, METH_O, "kind_bytes(kinds): bytes of exact ints 0..255, or None."},
    {"call_columns", call_columns, METH_O,
     "call_columns(rows): codec._call_columns of plain call rows, in one pass; or None."},
    {"call_blocks", call_blocks, METH_VARARGS,
     "call_blocks(records, block_calls, block_span): batch.call_blocks_of's blocks of packed "
     "ended calls (codec.CallRecords), their columns made as call_columns makes them."},
    {"untrack", untrack, METH_O,
     "untrack(items): stop the garbage collector watching each exact tuple of a list."},
    {"paired", paired, METH_O,
     "paired(changes): codec._paired of each event's flat changes, or None (declined)."},
    {"libzstd", libzstd_version, METH_NOARGS,
     "The version number of the libzstd `chunks` calls (10504 for 1.5.4), or None."},
    {"compress", compress_plain, METH_VARARGS,
     "compress(data, level): one zstd frame of a small blob, holding the GIL; None where "
     "libzstd is missing."},
    {"chunks", chunks_plain, METH_VARARGS,
     "chunks(parts, level, head): each chunk's blob, its values written and compressed without "
     "the GIL in one go (a chunk's parts, or its events packed: storage/_packedevents.h); None "
     "where libzstd is missing or a value is not plain data."},
    {"dumps", dumps_plain, METH_O,
     "dumps(values): marshal.dumps(v, 4) of each value, written without the GIL; None for a "
     "value it does not write."},
    {"sqlite_version", sqlite_version, METH_O,
     "sqlite_version(library): the version of the SQLite the _sqlite3 module at `library` "
     "uses, where storage/_sqlite.c can call it; else None."},
    {"sqlite_open", sqlite_open, METH_VARARGS,
     "sqlite_open(library, uri, pragmas): a connection to a store through the SQLite the "
     "_sqlite3 module at `library` uses, the pragmas run; None where that SQLite is not found "
     "or the store does not open (storage/_sqlite.c)."},
    {"sqlite_run", sqlite_run, METH_VARARGS,
     "sqlite_run(handle, statements[, chunk_parts, level, head]): the chunks' blobs made as "
     "`chunks` makes them, then each (sql, parameters, must_change) run in order, a parameter "
     "(i,) bound to chunk i's blob, all in one release of the GIL, rolled back on a failure: "
     "(status, index, code, message, the blobs' sizes), status 0 done, 1 an SQLite error, 2 a "
     "must_change statement changed no row; None (nothing run) where a parameter is not None, "
     "int, float, str, bytes or (i,), or a chunk's value is one `chunks` declines."},
    {"sqlite_close", sqlite_close, METH_O, "sqlite_close(handle): close the connection."},
    {"sqlite_forget", sqlite_forget, METH_O,
     "sqlite_forget(handle): in a forked child, never close nor use the parent's connection."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef columns_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "replay.storage._columns",
    .m_doc = "C loops of the storage codec's column layout (optional; same bytes as Python).",
    .m_size = 0,
    .m_methods = columns_methods,
};

PyMODINIT_FUNC
PyInit__columns(void)
{
    PyObject *module = PyModule_Create(&columns_module);
    /* `chunks` and `sqlite_run` take a chunk's events as packed records too (_packedevents.h). */
    if (module != NULL && PyModule_AddIntConstant(module, "PACKED_EVENTS", 1) < 0) {
        Py_CLEAR(module);
    }
    return module;
}
