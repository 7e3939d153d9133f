/* replay.storage._columns.dumps: marshal.dumps(value, 4) of plain data, with the GIL released.
 *
 * dumps([value, ...]) -> [bytes or None, ...]: each value written on its own, as
 * marshal.dumps(value, 4) writes it, or None for a value holding something it does not write.
 * chunks(parts, level, head) -> [blob, ...] or None: whole chunk blobs, the values written so and
 * compressed by libzstd (storage/_zstd.c) in the same release (at the end of this file). A
 * chunk's parts may also be its events as packed records (storage/_packedevents.h), whose
 * columns are then made in that release too.
 *
 * Why: the recorder's writer thread shares the GIL with the traced program, and writing a
 * chunk's values with `marshal.dumps` was the largest thing it did holding it (on richards.py,
 * Python 3.12, leaving the values out of the chunks made the whole recording 18% faster; on
 * nbody 30%). The values are plain data made by the recorder (the venc tuples of
 * docs/internals.md, "Values"), so they can be written by reading their memory alone, without
 * creating, changing or freeing any object: this module does that with the GIL released, and
 * the program runs on another core meanwhile (measured A/B, whole recordings: richards 10%,
 * nbody 16-18% faster; docs/internals.md, "Where the time goes").
 *
 * What it writes is marshal's own format, version 4 (Python/marshal.c), read back by
 * `marshal.loads` on every Python replay supports: the same type codes, the same rule for
 * back-references (an object with more than one reference is flagged and, when met again,
 * written as a reference to the first), so the bytes are those of `marshal.dumps` up to which
 * objects carry the reference flag (marshal's rule reads reference counts, which another thread
 * may change meanwhile: a count read at another moment flags another set of objects, and
 * `marshal.loads` gives equal values either way).
 *
 * What it reads: None, True, False, exact ints that fit 64 bits, exact floats, exact str and
 * bytes, exact tuples, and exact lists and dicts. Anything else (a subclass, a set, a bigger
 * int, nesting past MAX_DEPTH) makes it give up and return None, having changed nothing; the
 * caller then runs `marshal.dumps`, which decides.
 *
 * The caller's promise, which is what makes reading without the GIL safe: every object reached
 * is kept alive by the caller for the whole call, and no thread changes a list or dict reached
 * (the writer's events are its own once handed off, and the values in them are immutable: a
 * venc's dict of an object's attributes is built whole before the venc is made, and never
 * changed after, which the recorder relies on anyway: its values are shared between events). Other threads may change reference counts and, for a str, its interned state and
 * cached hash or UTF-8 form; none of which this module reads, apart from the reference count
 * and the interned state, which only choose between equivalent encodings. Under a free-threaded
 * build (no GIL to release) the function declines.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_dumps.h"
#include "_packedevents.h"
#include "_zstd.h"

#define MAX_DEPTH 64           /* vencs nest a dozen levels; deeper data goes to marshal */
#define SMALL_PART 4096        /* below this many top-level items the GIL is kept: a release
                                  costs a switch to the program and waiting to get it back */
#define FLAG_REF 0x80

typedef struct {
    const void *key;
    uint32_t index;
} RefSlot;

typedef struct {
    unsigned char *data;
    size_t size, capacity;
    RefSlot *refs; /* open addressing by address; key NULL = empty */
    size_t n_refs, refs_capacity;
    int failed; /* 1: out of memory, 2: something this module does not write */
} Writer;

static int
reserve(Writer *w, size_t extra)
{
    if (w->size + extra <= w->capacity) {
        return 1;
    }
    size_t capacity = w->capacity ? w->capacity : 1 << 16;
    while (capacity < w->size + extra) {
        capacity *= 2;
    }
    unsigned char *data = realloc(w->data, capacity);
    if (data == NULL) {
        w->failed = 1;
        return 0;
    }
    w->data = data;
    w->capacity = capacity;
    return 1;
}

static inline void
put_byte(Writer *w, unsigned char byte)
{
    if (reserve(w, 1)) {
        w->data[w->size++] = byte;
    }
}

static inline void
put_int32(Writer *w, int32_t value)
{
    if (reserve(w, 4)) {
        uint32_t u = (uint32_t)value;
        for (int b = 0; b < 4; b++) {
            w->data[w->size++] = (unsigned char)(u >> (8 * b));
        }
    }
}

static inline void
put_bytes(Writer *w, const void *bytes, size_t n)
{
    if (reserve(w, n)) {
        memcpy(w->data + w->size, bytes, n);
        w->size += n;
    }
}

static inline size_t
slot_of(const void *key, size_t capacity)
{
    uintptr_t h = (uintptr_t)key >> 4;
    h ^= h >> 17;
    h *= 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & (capacity - 1);
}

static int
grow_refs(Writer *w)
{
    size_t capacity = w->refs_capacity ? w->refs_capacity * 2 : 1 << 12;
    RefSlot *refs = calloc(capacity, sizeof(RefSlot));
    if (refs == NULL) {
        w->failed = 1;
        return 0;
    }
    for (size_t i = 0; i < w->refs_capacity; i++) {
        if (w->refs[i].key != NULL) {
            size_t s = slot_of(w->refs[i].key, capacity);
            while (refs[s].key != NULL) {
                s = (s + 1) & (capacity - 1);
            }
            refs[s] = w->refs[i];
        }
    }
    free(w->refs);
    w->refs = refs;
    w->refs_capacity = capacity;
    return 1;
}

/* marshal's w_ref: 1 if `v` was written before (a TYPE_REF is out), else 0, with `*flag` set
 * when `v` is shared and so may be referred to later. */
static int
put_ref(Writer *w, PyObject *v, unsigned char *flag)
{
    if (Py_REFCNT(v) == 1 && !(PyUnicode_CheckExact(v) && PyUnicode_CHECK_INTERNED(v))) {
        return 0;
    }
    if ((w->n_refs + 1) * 2 > w->refs_capacity && !grow_refs(w)) {
        return 1; /* failed: stop */
    }
    size_t s = slot_of(v, w->refs_capacity);
    while (w->refs[s].key != NULL) {
        if (w->refs[s].key == v) {
            put_byte(w, 'r');
            put_int32(w, (int32_t)w->refs[s].index);
            return 1;
        }
        s = (s + 1) & (w->refs_capacity - 1);
    }
    if (w->n_refs >= INT32_MAX) {
        w->failed = 2;
        return 1;
    }
    w->refs[s].key = v;
    w->refs[s].index = (uint32_t)w->n_refs++;
    *flag = FLAG_REF;
    return 0;
}

/* marshal's w_PyLong: the magnitude in 15-bit digits, their count signed like the value. */
static void
put_long(Writer *w, unsigned char flag, long long x)
{
    uint64_t magnitude = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
    uint16_t digits[5];
    int n = 0;
    while (magnitude) {
        digits[n++] = (uint16_t)(magnitude & 0x7FFF);
        magnitude >>= 15;
    }
    put_byte(w, 'l' | flag);
    put_int32(w, x < 0 ? -n : n);
    for (int i = 0; i < n; i++) {
        put_byte(w, (unsigned char)(digits[i] & 0xFF));
        put_byte(w, (unsigned char)(digits[i] >> 8));
    }
}

/* A str as marshal writes it: ASCII as such, anything else as UTF-8 with lone surrogates
 * encoded like any other code point ("surrogatepass"). */
static void
put_str(Writer *w, PyObject *v, unsigned char flag)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(v);
    int interned = PyUnicode_CHECK_INTERNED(v) != 0;
    if (PyUnicode_IS_ASCII(v)) {
        if (n < 256) {
            put_byte(w, (interned ? 'Z' : 'z') | flag);
            put_byte(w, (unsigned char)n);
        }
        else {
            if (n > INT32_MAX) {
                w->failed = 2;
                return;
            }
            put_byte(w, (interned ? 'A' : 'a') | flag);
            put_int32(w, (int32_t)n);
        }
        put_bytes(w, PyUnicode_DATA(v), (size_t)n);
        return;
    }
    int kind = PyUnicode_KIND(v);
    const void *data = PyUnicode_DATA(v);
    size_t length = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        length += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    }
    if (length > INT32_MAX) {
        w->failed = 2;
        return;
    }
    put_byte(w, (interned ? 't' : 'u') | flag);
    put_int32(w, (int32_t)length);
    if (!reserve(w, length)) {
        return;
    }
    unsigned char *out = w->data + w->size;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c < 0x80) {
            *out++ = (unsigned char)c;
        }
        else if (c < 0x800) {
            *out++ = (unsigned char)(0xC0 | (c >> 6));
            *out++ = (unsigned char)(0x80 | (c & 0x3F));
        }
        else if (c < 0x10000) {
            *out++ = (unsigned char)(0xE0 | (c >> 12));
            *out++ = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
            *out++ = (unsigned char)(0x80 | (c & 0x3F));
        }
        else {
            *out++ = (unsigned char)(0xF0 | (c >> 18));
            *out++ = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
            *out++ = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
            *out++ = (unsigned char)(0x80 | (c & 0x3F));
        }
    }
    w->size += length;
}

static void put_object(Writer *w, PyObject *v, int depth);

static void
put_size(Writer *w, Py_ssize_t n)
{
    if (n > INT32_MAX) {
        w->failed = 2;
        return;
    }
    put_int32(w, (int32_t)n);
}

/* An int of 64 bits as marshal writes an exact int: 'i' where it fits 32 bits, else 'l'. */
static void
put_int64(Writer *w, unsigned char flag, int64_t x)
{
    if (x >= INT32_MIN && x <= INT32_MAX) {
        put_byte(w, 'i' | flag);
        put_int32(w, (int32_t)x);
    }
    else {
        put_long(w, flag, (long long)x);
    }
}

/* The type code and size that come before the `n` bytes of a bytes object. */
static void
put_bytes_header(Writer *w, unsigned char flag, size_t n)
{
    put_byte(w, 's' | flag);
    put_size(w, (Py_ssize_t)n);
}

/* marshal's w_complex_object for the types above; `failed` = 2 for any other. */
static void
put_shared(Writer *w, PyObject *v, unsigned char flag, int depth)
{
    PyTypeObject *type = Py_TYPE(v);
    if (type == &PyLong_Type) {
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow) {
            w->failed = 2; /* not an error: the function sets none when it reports overflow */
        }
        else {
            put_int64(w, flag, (int64_t)x);
        }
    }
    else if (type == &PyFloat_Type) {
        double x = PyFloat_AS_DOUBLE(v);
        uint64_t bits;
        memcpy(&bits, &x, sizeof bits); /* IEEE 754, as every platform CPython runs on */
        put_byte(w, 'g' | flag);
        if (reserve(w, 8)) {
            for (int b = 0; b < 8; b++) {
                w->data[w->size++] = (unsigned char)(bits >> (8 * b));
            }
        }
    }
    else if (type == &PyUnicode_Type) {
        put_str(w, v, flag);
    }
    else if (type == &PyBytes_Type) {
        put_bytes_header(w, flag, (size_t)PyBytes_GET_SIZE(v));
        put_bytes(w, PyBytes_AS_STRING(v), (size_t)PyBytes_GET_SIZE(v));
    }
    else if (type == &PyTuple_Type) {
        Py_ssize_t n = PyTuple_GET_SIZE(v);
        if (n < 256) {
            put_byte(w, ')' | flag);
            put_byte(w, (unsigned char)n);
        }
        else {
            put_byte(w, '(' | flag);
            put_size(w, n);
        }
        for (Py_ssize_t i = 0; i < n && !w->failed; i++) {
            put_object(w, PyTuple_GET_ITEM(v, i), depth + 1);
        }
    }
    else if (type == &PyList_Type) {
        Py_ssize_t n = PyList_GET_SIZE(v);
        put_byte(w, '[' | flag);
        put_size(w, n);
        for (Py_ssize_t i = 0; i < n && !w->failed; i++) {
            put_object(w, PyList_GET_ITEM(v, i), depth + 1);
        }
    }
    else if (type == &PyDict_Type) {
        /* PyDict_Next reads the table in place: no object is made or changed. */
        Py_ssize_t position = 0;
        PyObject *key, *value;
        put_byte(w, '{' | flag);
        while (!w->failed && PyDict_Next(v, &position, &key, &value)) {
            put_object(w, key, depth + 1);
            put_object(w, value, depth + 1);
        }
        put_byte(w, '0');
    }
    else {
        w->failed = 2;
    }
}

static void
put_object(Writer *w, PyObject *v, int depth)
{
    if (w->failed) {
        return;
    }
    if (depth > MAX_DEPTH) {
        w->failed = 2;
        return;
    }
    if (v == Py_None) {
        put_byte(w, 'N');
    }
    else if (v == Py_False) {
        put_byte(w, 'F');
    }
    else if (v == Py_True) {
        put_byte(w, 'T');
    }
    else {
        unsigned char flag = 0;
        if (!put_ref(w, v, &flag)) {
            put_shared(w, v, flag, depth);
        }
    }
}

/* The items of a value and of its tuples and lists (a chunk's values: three lists of the
 * events' fields), which decides whether releasing the GIL pays. */
static Py_ssize_t
items_in(PyObject *v)
{
    if (PyTuple_CheckExact(v) || PyList_CheckExact(v)) {
        Py_ssize_t n = Py_SIZE(v), total = n;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *item = PyTuple_CheckExact(v) ? PyTuple_GET_ITEM(v, i) : PyList_GET_ITEM(v, i);
            if (PyTuple_CheckExact(item) || PyList_CheckExact(item)) {
                total += Py_SIZE(item);
            }
        }
        return total;
    }
    return 1;
}

/* The bytes of a finished writer, None if it met something it does not write; frees it. */
static PyObject *
finish(Writer *w)
{
    PyObject *result;
    if (w->failed == 1) {
        result = PyErr_NoMemory();
    }
    else if (w->failed) {
        result = Py_NewRef(Py_None);
    }
    else {
        result = PyBytes_FromStringAndSize((const char *)w->data, (Py_ssize_t)w->size);
    }
    free(w->data);
    free(w->refs);
    return result;
}

/* dumps(values) -> a list: for each value, its bytes or None. All in one release of the GIL
 * (a release costs the writer a switch to the program and the wait to get the GIL back, up to
 * the switch interval: once per write, not once per chunk), unless they are small. */
PyObject *
dumps_plain(PyObject *module, PyObject *values)
{
    if (!PyList_CheckExact(values)) {
        PyErr_SetString(PyExc_TypeError, "dumps takes a list of values");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(values);
    Writer *writers = calloc(n ? (size_t)n : 1, sizeof(Writer));
    if (writers == NULL) {
        return PyErr_NoMemory();
    }
    /* The list is the caller's and nobody changes it meanwhile (the module comment). */
    PyObject **items = ((PyListObject *)values)->ob_item;
#ifdef Py_GIL_DISABLED
    for (Py_ssize_t i = 0; i < n; i++) {
        writers[i].failed = 2;
    }
#else
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        total += items_in(items[i]);
    }
    int release = total >= SMALL_PART;
    PyThreadState *saved = release ? PyEval_SaveThread() : NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        put_object(&writers[i], items[i], 0);
    }
    if (release) {
        PyEval_RestoreThread(saved);
    }
#endif
    PyObject *result = PyList_New(n);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *data = finish(&writers[i]);
        if (result != NULL && data != NULL) {
            PyList_SET_ITEM(result, i, data);
        }
        else {
            Py_XDECREF(data);
            Py_CLEAR(result);
        }
    }
    free(writers);
    return result;
}

/* A chunk blob being made: `head`, then its zstd frame (storage/codec.py, `_compress_chunk`). */
typedef struct {
    unsigned char *data;
    size_t size;
} Blob;

/* A chunk's three parts as the codec gives them: (columns, values, noise), the values either
 * written already (bytes) or plain data to write; or its events as packed records
 * (storage/_packedevents.h), which make_blob makes the parts of. 1 if so, else 0. */
static int
chunk_parts_ok(PyObject *item)
{
    if (PyCapsule_CheckExact(item)) {
        return PyCapsule_IsValid(item, PACKED_EVENTS_CAPSULE);
    }
    return PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) == 3
           && PyBytes_CheckExact(PyTuple_GET_ITEM(item, 0))
           && PyBytes_CheckExact(PyTuple_GET_ITEM(item, 2));
}

/* -- a chunk's parts from packed records ----------------------------------------------------
 * What codec._event_parts_packed and codec._join_parts make from an event buffer's columns(),
 * made here from its records without the GIL: the same columns and values (the bytes may differ
 * in marshal's reference flags only, which follow reference counts: the ints and bytes made
 * here carry none, and a value only the buffer holds is not flagged where its list made it so). */

#define AS_FLAT_COLUMNS 2 /* codec._AS_FLAT_COLUMNS */

static inline int64_t
packed_int(const PackedEvents *pe, Py_ssize_t i, size_t offset)
{
    int64_t x;
    memcpy(&x, pe->records + (size_t)i * pe->size + offset, sizeof x);
    return x;
}

static inline PyObject *
packed_object(const PackedEvents *pe, Py_ssize_t i, size_t offset)
{
    PyObject *o;
    memcpy(&o, pe->records + (size_t)i * pe->size + offset, sizeof o);
    return o != NULL ? o : Py_None;
}

/* One integer column as codec._pack_ints gives it, `(width, first, data)`, written into `w`:
 * the items after the first as their difference from the one before (`delta`) or as they are,
 * little-endian in 4 bytes, or 8 if one needs it, by byte plane (`planar`: every item's byte 0,
 * then every byte 1...) or item by item. With `noise`, the first plane goes there instead of into
 * `data` (the time column: codec._join_parts). 2 when a difference does not fit 64 bits (the
 * codec then decides), 1 out of memory, else 0. */
static int
put_int_column(Writer *w, const PackedEvents *pe, size_t offset, int delta, int planar,
               Writer *noise)
{
    Py_ssize_t count = pe->n - 1;
    int width = 4;
    for (Py_ssize_t i = 1; i < pe->n; i++) {
        int64_t item = packed_int(pe, i, offset);
        if (delta && __builtin_sub_overflow(item, packed_int(pe, i - 1, offset), &item)) {
            return 2;
        }
        if (item < INT32_MIN || item > INT32_MAX) {
            width = 8;
        }
    }
    put_byte(w, ')');
    put_byte(w, 3);
    put_int64(w, 0, width);
    put_int64(w, 0, packed_int(pe, 0, offset));
    int skip = noise != NULL ? 1 : 0; /* planes kept out of `data` */
    size_t size = (size_t)count * (size_t)(width - skip);
    put_bytes_header(w, 0, size);
    if (!reserve(w, size) || (noise != NULL && !reserve(noise, (size_t)count))) {
        return 1;
    }
    unsigned char *out = w->data + w->size;
    unsigned char *low = noise != NULL && count > 0 ? noise->data + noise->size : NULL;
    int64_t previous = packed_int(pe, 0, offset);
    for (Py_ssize_t i = 0; i < count; i++) {
        int64_t x = packed_int(pe, i + 1, offset);
        uint64_t u = (uint64_t)(delta ? x - previous : x); /* fits: checked above */
        previous = x;
        for (int b = 0; b < width; b++) {
            unsigned char byte = (unsigned char)(u >> (8 * b));
            if (b < skip) {
                low[i] = byte;
            }
            else if (planar) {
                out[(size_t)(b - skip) * (size_t)count + (size_t)i] = byte;
            }
            else {
                out[(size_t)i * (size_t)width + (size_t)b] = byte;
            }
        }
    }
    w->size += size;
    if (noise != NULL) {
        noise->size += (size_t)count;
    }
    return w->failed;
}

/* The columns part, `marshal.dumps((layout, n, kinds, steps, ts, calls, lines), 4)`, and the
 * noise of packed events; 0, or put_int_column's code. */
static int
put_packed_columns(Writer *w, Writer *noise, const PackedEvents *pe)
{
    put_byte(w, ')');
    put_byte(w, 7);
    put_int64(w, 0, AS_FLAT_COLUMNS);
    put_int64(w, 0, pe->n);
    put_bytes_header(w, 0, (size_t)pe->n);
    if (!reserve(w, (size_t)pe->n)) {
        return 1;
    }
    for (Py_ssize_t i = 0; i < pe->n; i++) {
        w->data[w->size++] = *(const uint8_t *)(pe->records + (size_t)i * pe->size + pe->kind);
    }
    int failed = put_int_column(w, pe, pe->step, 1, 1, NULL);
    failed = failed ? failed : put_int_column(w, pe, pe->ts, 1, 1, noise);
    failed = failed ? failed : put_int_column(w, pe, pe->call, 1, 0, NULL);
    failed = failed ? failed : put_int_column(w, pe, pe->line, 0, 1, NULL);
    return failed ? failed : w->failed;
}

/* The values part, `(payloads, changes, deleted)`: three lists of the events' fields. */
static void
put_packed_values(Writer *w, const PackedEvents *pe)
{
    const size_t fields[3] = {pe->payload, pe->changes, pe->deleted};
    put_byte(w, ')');
    put_byte(w, 3);
    for (int f = 0; f < 3 && !w->failed; f++) {
        put_byte(w, '[');
        put_size(w, pe->n);
        for (Py_ssize_t i = 0; i < pe->n && !w->failed; i++) {
            put_object(w, packed_object(pe, i, fields[f]), 1);
        }
    }
}

static int frame_blob(const void *cdata, size_t csize, const void *vdata, size_t vsize,
                      const void *ndata, size_t nsize, int level, const char *head,
                      size_t head_size, Blob *out);

/* One chunk, without the GIL: its parts made from its packed events, or its values written
 * (unless given as bytes), then head, the sizes prefix and the three parts compressed into one
 * frame. 0 on success, 1 out of memory, 2 declined (the codec then decides). */
static int
make_blob(PyObject *item, Writer *w, int level, const char *head, size_t head_size, Blob *out)
{
    const void *cdata, *vdata, *ndata;
    size_t csize, vsize, nsize;
    Writer cw = {0}, nw = {0}; /* a packed chunk's columns and noise */
    int failed = 0;
    if (PyCapsule_CheckExact(item)) {
        const PackedEvents *pe = PyCapsule_GetPointer(item, PACKED_EVENTS_CAPSULE);
        failed = put_packed_columns(&cw, &nw, pe);
        if (!failed) {
            put_packed_values(w, pe);
            failed = w->failed;
        }
        cdata = cw.data, csize = cw.size;
        vdata = w->data, vsize = w->size;
        ndata = nw.data != NULL ? (const void *)nw.data : "", nsize = nw.size; /* 1 event: none */
    }
    else {
        PyObject *columns = PyTuple_GET_ITEM(item, 0), *values = PyTuple_GET_ITEM(item, 1);
        PyObject *noise = PyTuple_GET_ITEM(item, 2);
        if (PyBytes_CheckExact(values)) {
            vdata = PyBytes_AS_STRING(values), vsize = (size_t)PyBytes_GET_SIZE(values);
        }
        else {
            put_object(w, values, 0);
            failed = w->failed;
            vdata = w->data, vsize = w->size;
        }
        cdata = PyBytes_AS_STRING(columns), csize = (size_t)PyBytes_GET_SIZE(columns);
        ndata = PyBytes_AS_STRING(noise), nsize = (size_t)PyBytes_GET_SIZE(noise);
    }
    if (!failed) {
        failed = frame_blob(cdata, csize, vdata, vsize, ndata, nsize, level, head, head_size, out);
    }
    free(cw.data);
    free(nw.data);
    return failed;
}

/* head, then one zstd frame of the sizes prefix and the three parts. 0, 1 (out of memory), 2. */
static int
frame_blob(const void *cdata, size_t csize, const void *vdata, size_t vsize, const void *ndata,
           size_t nsize, int level, const char *head, size_t head_size, Blob *out)
{
    if (csize > UINT32_MAX || vsize > UINT32_MAX) {
        return 2;
    }
    unsigned char prefix[8]; /* struct "<II": the sizes of the columns and of the values */
    for (int b = 0; b < 4; b++) {
        prefix[b] = (unsigned char)(csize >> (8 * b));
        prefix[4 + b] = (unsigned char)(vsize >> (8 * b));
    }
    ZstdPart parts[4] = {
        {prefix, sizeof prefix, 0},
        {cdata, csize, 1}, /* each part ends a block (its own tables) */
        {vdata, vsize, 1},
        {ndata, nsize, 0},
    };
    size_t capacity = head_size + zstd_bound(sizeof prefix + csize + vsize + nsize);
    out->data = malloc(capacity);
    if (out->data == NULL) {
        return 1;
    }
    memcpy(out->data, head, head_size);
    size_t frame = zstd_frame(level, parts, 4, out->data + head_size, capacity - head_size);
    if (frame == 0) {
        return 2;
    }
    out->size = head_size + frame;
    return 0;
}

struct ChunkJob {
    PyObject *parts; /* the caller's list, strong */
    Py_ssize_t n;
    int level;
    const char *head;
    size_t head_size;
    Blob *blobs;
};

ChunkJob *
chunk_job_new(PyObject *parts, int level, const char *head, size_t head_size)
{
#ifdef Py_GIL_DISABLED
    return NULL; /* no GIL to release; and the values' lists could change meanwhile */
#endif
    if (!PyList_Check(parts) || !zstd_available()) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(parts);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!chunk_parts_ok(PyList_GET_ITEM(parts, i))) {
            PyErr_SetString(PyExc_TypeError,
                            "chunks takes a list of (bytes, values, bytes) or packed events");
            return NULL;
        }
    }
    ChunkJob *job = calloc(1, sizeof(ChunkJob));
    if (job != NULL) {
        job->blobs = calloc(n ? (size_t)n : 1, sizeof(Blob));
    }
    if (job == NULL || job->blobs == NULL) {
        chunk_job_free(job);
        PyErr_NoMemory();
        return NULL;
    }
    job->parts = Py_NewRef(parts);
    job->n = n;
    job->level = level;
    job->head = head;
    job->head_size = head_size;
    return job;
}

int
chunk_job_run(ChunkJob *job)
{
    /* The list and its items are the caller's, unchanged meanwhile (the module comment). */
    PyObject **items = ((PyListObject *)job->parts)->ob_item;
    int failed = 0;
    for (Py_ssize_t i = 0; i < job->n && !failed; i++) {
        Writer w = {0}; /* one chunk's values at a time: they are in its frame once it is made */
        failed = make_blob(items[i], &w, job->level, job->head, job->head_size, &job->blobs[i]);
        free(w.data);
        free(w.refs);
    }
    return failed;
}

const void *
chunk_job_blob(const ChunkJob *job, Py_ssize_t i, size_t *size)
{
    *size = job->blobs[i].size;
    return job->blobs[i].data;
}

void
chunk_job_free(ChunkJob *job)
{
    if (job == NULL) {
        return;
    }
    for (Py_ssize_t i = 0; job->blobs != NULL && i < job->n; i++) {
        free(job->blobs[i].data);
    }
    free(job->blobs);
    Py_XDECREF(job->parts); /* with the GIL held: the caller's */
    free(job);
}

/* chunks(parts, level, head) -> [blob, ...] or None: for each chunk's (columns, values, noise),
 * `head` and a zstd frame of the three parts, as codec._compress_chunk makes it, with the values
 * written as `dumps` writes them; all in one release of the GIL (storage/_zstd.c says why). None
 * when libzstd is not there, or a value holds something `dumps` does not write: the codec then
 * takes its own way, marshal and python-zstandard. */
PyObject *
chunks_plain(PyObject *module, PyObject *args)
{
    PyObject *parts;
    int level;
    const char *head;
    Py_ssize_t head_size;
    if (!PyArg_ParseTuple(args, "O!iy#", &PyList_Type, &parts, &level, &head, &head_size)) {
        return NULL;
    }
    ChunkJob *job = chunk_job_new(parts, level, head, (size_t)head_size);
    if (job == NULL) {
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    }
    int failed;
    Py_BEGIN_ALLOW_THREADS
    failed = chunk_job_run(job);
    Py_END_ALLOW_THREADS
    PyObject *result = failed ? NULL : PyList_New(job->n);
    for (Py_ssize_t i = 0; result != NULL && i < job->n; i++) {
        size_t size;
        const void *data = chunk_job_blob(job, i, &size);
        PyObject *blob = PyBytes_FromStringAndSize(data, (Py_ssize_t)size);
        if (blob == NULL) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, i, blob);
    }
    chunk_job_free(job);
    if (failed == 1) {
        return PyErr_NoMemory();
    }
    if (failed) {
        Py_RETURN_NONE;
    }
    return result;
}

/* compress(data, level) -> bytes or None: one zstd frame of `data` (checksum and content size,
 * as the codec's python-zstandard compressor makes it), made holding the GIL. For the small
 * blobs a write makes besides its chunks (call and exception blocks, a file's source): letting
 * go of the GIL for them cost the writer a wait to get it back each time (storage/_zstd.c),
 * longer than compressing them takes. None where libzstd is not there. */
PyObject *
compress_plain(PyObject *module, PyObject *args)
{
    Py_buffer data;
    int level;
    if (!PyArg_ParseTuple(args, "y*i", &data, &level)) {
        return NULL;
    }
    if (!zstd_available()) {
        PyBuffer_Release(&data);
        Py_RETURN_NONE;
    }
    ZstdPart part = {data.buf, (size_t)data.len, 0};
    size_t capacity = zstd_bound((size_t)data.len);
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)capacity);
    if (out == NULL) {
        PyBuffer_Release(&data);
        return NULL;
    }
    size_t size = zstd_frame(level, &part, 1, PyBytes_AS_STRING(out), capacity);
    PyBuffer_Release(&data);
    if (size == 0) {
        Py_DECREF(out);
        Py_RETURN_NONE;
    }
    if (_PyBytes_Resize(&out, (Py_ssize_t)size) < 0) {
        return NULL;
    }
    return out;
}
