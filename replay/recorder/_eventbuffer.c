/* replay.recorder._ctracer.EventBuffer: the C cores' per-thread event list.
 *
 * A list of fixed-size records, one per event, where the Python cores keep a list of tuples.
 * It behaves as that list for the Python code that handles a thread's events (state.hand_off,
 * the writer, the drop policy, the budget's GAP steps): `len`, indexing and iteration give the
 * event tuples, slicing gives a buffer, `del b[i:j]`, `b[i] = event`, append, extend and pop
 * work as on a list. The writer's hot paths read it without tuples: `packed()` hands the records
 * themselves to the chunk writer, which makes the chunk from them without the GIL
 * (storage/_packedevents.h), `columns()` gives the integer fields as int64 arrays for the codec
 * where that writer is not there, and `select(kinds, False)` gives the few events the call index
 * needs, without their changes.
 *
 * An event's changes are kept flat, names and values one after the other (EbEvent.flat), and
 * paired again only for a reader of event tuples; the codec stores them flat.
 *
 * Why: a tuple and two ints per event (the step and the time) were three allocations on the
 * traced thread, and the writer read them back scattered over the heap: transposing the tuples
 * into columns and freeing them took the writer about 1 s of richards.py's 3.2 million events
 * (0.3 us per event of cache misses, holding the GIL the program waits for). A record is 64
 * bytes in one array.
 *
 * Not tracked by the garbage collector: the objects it holds are the recorder's value encodings
 * (untracked tuples, or atoms), which never refer back to a buffer.
 */

#include "_eventbuffer.h"
#include "../../storage/_packedevents.h" /* the records as the chunk writer reads them */

#include <stddef.h>
#include <string.h>

static const char EVENT_SHAPE[] =
    "an event is a (kind, step, ts, call, line, payload, changes, deleted) tuple with int kind "
    "(0..255), step, ts and call, and an int or None line";

EventBuffer *
eb_new(Py_ssize_t cap)
{
    EventBuffer *b = PyObject_New(EventBuffer, &EventBuffer_Type);
    if (b == NULL) {
        return NULL;
    }
    b->n = 0;
    b->cap = 0;
    b->ev = NULL;
    b->cut_requested = 0;
    if (cap > 0) {
        b->ev = PyMem_Malloc(cap * sizeof(EbEvent));
        if (b->ev == NULL) {
            Py_DECREF(b);
            PyErr_NoMemory();
            return NULL;
        }
        b->cap = cap;
    }
    return b;
}

static int
eb_reserve(EventBuffer *b, Py_ssize_t need)
{
    if (need <= b->cap) {
        return 0;
    }
    Py_ssize_t cap = b->cap < 64 ? 64 : b->cap;
    while (cap < need) {
        cap *= 2;
    }
    EbEvent *ev = PyMem_Realloc(b->ev, cap * sizeof(EbEvent));
    if (ev == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->ev = ev;
    b->cap = cap;
    return 0;
}

int
eb_append(EventBuffer *b, int kind, int64_t step, int64_t ts, int64_t call, int64_t line,
          PyObject *payload, PyObject *changes, PyObject *deleted, int flat)
{
    if (b->n == b->cap && eb_reserve(b, b->n + 1) < 0) {
        Py_XDECREF(payload);
        Py_XDECREF(changes);
        Py_XDECREF(deleted);
        return -1;
    }
    EbEvent *e = &b->ev[b->n++];
    e->kind = (uint8_t)kind;
    e->step = step;
    e->ts = ts;
    e->call = call;
    e->line = line;
    e->payload = payload;
    e->changes = changes;
    e->deleted = deleted;
    e->flat = (uint8_t)(flat && changes != NULL);
    return 0;
}

/* None for NULL. New reference. */
static inline PyObject *
object_of(PyObject *o)
{
    return Py_NewRef(o != NULL ? o : Py_None);
}

/* NULL for None. New reference (or NULL). */
static inline PyObject *
stored(PyObject *o)
{
    return o == Py_None ? NULL : Py_NewRef(o);
}

static int
int64_of(PyObject *o, int64_t *out)
{
    if (!PyLong_CheckExact(o)) {
        return 0;
    }
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow || (x == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    *out = (int64_t)x;
    return 1;
}

/* `changes` as a flat tuple (see EbEvent) if it is a tuple of 2-tuples: 1 and a new reference
 * in *out; 0 if it is not (then it is kept as it is); -1 on error. */
static int
flatten(PyObject *changes, PyObject **out)
{
    if (!PyTuple_CheckExact(changes)) {
        return 0;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(changes);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyTuple_GET_ITEM(changes, i);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) {
            return 0;
        }
    }
    PyObject *flat = PyTuple_New(2 * n);
    if (flat == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyTuple_GET_ITEM(changes, i);
        PyTuple_SET_ITEM(flat, 2 * i, Py_NewRef(PyTuple_GET_ITEM(pair, 0)));
        PyTuple_SET_ITEM(flat, 2 * i + 1, Py_NewRef(PyTuple_GET_ITEM(pair, 1)));
    }
    PyObject_GC_UnTrack(flat); /* as the cores' own: only the buffer refers to it */
    *out = flat;
    return 1;
}

/* A flat tuple of changes paired again: ((name, value), ...). New reference. */
static PyObject *
paired(PyObject *flat)
{
    Py_ssize_t n = PyTuple_GET_SIZE(flat) / 2;
    PyObject *pairs = PyTuple_New(n);
    if (pairs == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyTuple_Pack(2, PyTuple_GET_ITEM(flat, 2 * i),
                                      PyTuple_GET_ITEM(flat, 2 * i + 1));
        if (pair == NULL) {
            Py_DECREF(pairs);
            return NULL;
        }
        PyObject_GC_UnTrack(pair);
        PyTuple_SET_ITEM(pairs, i, pair);
    }
    PyObject_GC_UnTrack(pairs);
    return pairs;
}

/* An event tuple as a record (new references), or -1 with TypeError. Changes given as
 * (name, value) pairs are kept flat, anything else as it is. */
static int
parse_event(PyObject *t, EbEvent *e)
{
    int64_t kind;
    if (!PyTuple_CheckExact(t) || PyTuple_GET_SIZE(t) != 8
        || !int64_of(PyTuple_GET_ITEM(t, 0), &kind) || kind < 0 || kind > 255
        || !int64_of(PyTuple_GET_ITEM(t, 1), &e->step) || !int64_of(PyTuple_GET_ITEM(t, 2), &e->ts)
        || !int64_of(PyTuple_GET_ITEM(t, 3), &e->call)) {
        PyErr_SetString(PyExc_TypeError, EVENT_SHAPE);
        return -1;
    }
    PyObject *line = PyTuple_GET_ITEM(t, 4);
    if (line == Py_None) {
        e->line = EB_NO_LINE;
    }
    else if (!int64_of(line, &e->line) || e->line == EB_NO_LINE) {
        PyErr_SetString(PyExc_TypeError, EVENT_SHAPE);
        return -1;
    }
    PyObject *flat = NULL;
    int flattened = flatten(PyTuple_GET_ITEM(t, 6), &flat);
    if (flattened < 0) {
        return -1;
    }
    e->kind = (uint8_t)kind;
    e->flat = (uint8_t)flattened;
    e->payload = stored(PyTuple_GET_ITEM(t, 5));
    e->changes = flattened ? flat : stored(PyTuple_GET_ITEM(t, 6));
    e->deleted = stored(PyTuple_GET_ITEM(t, 7));
    return 0;
}

static void
release(EbEvent *e)
{
    Py_XDECREF(e->payload);
    Py_XDECREF(e->changes);
    Py_XDECREF(e->deleted);
}

int
eb_extend(EventBuffer *b, PyObject *iterable)
{
    if (EventBuffer_CheckExact(iterable)) {
        EventBuffer *other = (EventBuffer *)iterable;
        Py_ssize_t n = other->n; /* b may be other: copy the count first */
        if (eb_reserve(b, b->n + n) < 0) {
            return -1;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            EbEvent e = other->ev[i];
            Py_XINCREF(e.payload);
            Py_XINCREF(e.changes);
            Py_XINCREF(e.deleted);
            b->ev[b->n++] = e;
        }
        return 0;
    }
    PyObject *it = PyObject_GetIter(iterable);
    if (it == NULL) {
        return -1;
    }
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        EbEvent e;
        int rc = parse_event(item, &e);
        Py_DECREF(item);
        if (rc < 0 || eb_append(b, e.kind, e.step, e.ts, e.call, e.line, e.payload, e.changes,
                                e.deleted, e.flat)
                          < 0) {
            Py_DECREF(it);
            return -1;
        }
    }
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : 0;
}

/* absorb(other): other's events moved to the end of this buffer, other left empty. The writer's
 * join of the lists it owns (writer._merge_runs): extend took a reference to every value and the
 * other buffer's end let each go again, all holding the GIL the program waits for (perf of
 * richards.py: 2% of the writer's time). */
static PyObject *
eb_absorb(EventBuffer *b, PyObject *arg)
{
    if (!EventBuffer_CheckExact(arg) || arg == (PyObject *)b) {
        PyErr_SetString(PyExc_TypeError, "absorb() takes another event buffer");
        return NULL;
    }
    EventBuffer *other = (EventBuffer *)arg;
    if (eb_reserve(b, b->n + other->n) < 0) {
        return NULL;
    }
    if (other->n > 0) {
        memcpy(b->ev + b->n, other->ev, (size_t)other->n * sizeof(EbEvent));
    }
    b->n += other->n;
    other->n = 0;
    Py_RETURN_NONE;
}

/* The event tuple of a record, its changes paired again (None without `with_changes`). New
 * reference. */
PyObject *
eb_event_tuple(const EbEvent *e, int with_changes)
{
    PyObject *t = PyTuple_New(8);
    if (t == NULL) {
        return NULL;
    }
    PyObject *fields[5] = {
        PyLong_FromLong(e->kind),
        PyLong_FromLongLong(e->step),
        PyLong_FromLongLong(e->ts),
        PyLong_FromLongLong(e->call),
        e->line == EB_NO_LINE ? Py_NewRef(Py_None) : PyLong_FromLongLong(e->line),
    };
    int failed = 0;
    for (int i = 0; i < 5; i++) {
        if (fields[i] == NULL) {
            failed = 1;
            fields[i] = Py_NewRef(Py_None);
        }
        PyTuple_SET_ITEM(t, i, fields[i]);
    }
    PyObject *changes = !with_changes ? Py_NewRef(Py_None)
                        : e->flat      ? paired(e->changes)
                                       : object_of(e->changes);
    if (changes == NULL) {
        failed = 1;
        changes = Py_NewRef(Py_None);
    }
    PyTuple_SET_ITEM(t, 5, object_of(e->payload));
    PyTuple_SET_ITEM(t, 6, changes);
    PyTuple_SET_ITEM(t, 7, object_of(e->deleted));
    if (failed) {
        Py_DECREF(t);
        return NULL;
    }
    /* Made for a reader (the writer's scan takes thousands at a time): left tracked, they would
     * set the garbage collector going. A new tuple of values can be in no cycle. */
    PyObject_GC_UnTrack(t);
    return t;
}

const EbCapi eb_capi = {&EventBuffer_Type, sizeof(EbEvent), eb_event_tuple};

/* Remove records [lo, hi). */
static void
remove_range(EventBuffer *b, Py_ssize_t lo, Py_ssize_t hi)
{
    if (lo >= hi) {
        return;
    }
    /* Detach before releasing: releasing runs no user code, but nothing may see a half-done
     * buffer anyway. */
    Py_ssize_t count = hi - lo;
    EbEvent *gone = PyMem_Malloc(count * sizeof(EbEvent));
    if (gone != NULL) {
        memcpy(gone, b->ev + lo, count * sizeof(EbEvent));
    }
    else {
        for (Py_ssize_t i = lo; i < hi; i++) { /* no memory for the copy: release in place */
            release(&b->ev[i]);
        }
    }
    memmove(b->ev + lo, b->ev + hi, (b->n - hi) * sizeof(EbEvent));
    b->n -= count;
    if (gone != NULL) {
        for (Py_ssize_t i = 0; i < count; i++) {
            release(&gone[i]);
        }
        PyMem_Free(gone);
    }
}

static void
eb_dealloc(EventBuffer *b)
{
    EbEvent *ev = b->ev;
    Py_ssize_t n = b->n;
    b->ev = NULL;
    b->n = b->cap = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        release(&ev[i]);
    }
    PyMem_Free(ev);
    PyObject_Free(b);
}

static Py_ssize_t
eb_length(EventBuffer *b)
{
    return b->n;
}

static PyObject *
eb_item(EventBuffer *b, Py_ssize_t i)
{
    if (i < 0 || i >= b->n) {
        PyErr_SetString(PyExc_IndexError, "event index out of range");
        return NULL;
    }
    return eb_event_tuple(&b->ev[i], 1);
}

static PyObject *
eb_subscript(EventBuffer *b, PyObject *key)
{
    if (PyIndex_Check(key)) {
        Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
        if (i == -1 && PyErr_Occurred()) {
            return NULL;
        }
        return eb_item(b, i < 0 ? i + b->n : i);
    }
    if (!PySlice_Check(key)) {
        PyErr_SetString(PyExc_TypeError, "event buffer indices must be integers or slices");
        return NULL;
    }
    Py_ssize_t start, stop, step;
    if (PySlice_Unpack(key, &start, &stop, &step) < 0) {
        return NULL;
    }
    Py_ssize_t count = PySlice_AdjustIndices(b->n, &start, &stop, step);
    EventBuffer *out = eb_new(count);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t k = 0, i = start; k < count; k++, i += step) {
        EbEvent e = b->ev[i];
        Py_XINCREF(e.payload);
        Py_XINCREF(e.changes);
        Py_XINCREF(e.deleted);
        out->ev[out->n++] = e;
    }
    return (PyObject *)out;
}

static int
eb_ass_subscript(EventBuffer *b, PyObject *key, PyObject *value)
{
    if (PyIndex_Check(key)) {
        Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
        if (i == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (i < 0) {
            i += b->n;
        }
        if (i < 0 || i >= b->n) {
            PyErr_SetString(PyExc_IndexError, "event index out of range");
            return -1;
        }
        if (value == NULL) {
            remove_range(b, i, i + 1);
            return 0;
        }
        EbEvent e;
        if (parse_event(value, &e) < 0) {
            return -1;
        }
        EbEvent old = b->ev[i];
        b->ev[i] = e;
        release(&old);
        return 0;
    }
    if (!PySlice_Check(key) || value != NULL) {
        PyErr_SetString(PyExc_TypeError, "an event buffer deletes slices, and sets one event");
        return -1;
    }
    Py_ssize_t start, stop, step;
    if (PySlice_Unpack(key, &start, &stop, &step) < 0) {
        return -1;
    }
    Py_ssize_t count = PySlice_AdjustIndices(b->n, &start, &stop, step);
    if (step != 1) {
        PyErr_SetString(PyExc_ValueError, "an event buffer deletes contiguous slices only");
        return -1;
    }
    remove_range(b, start, start + count);
    return 0;
}

static PyObject *
eb_append_method(EventBuffer *b, PyObject *event)
{
    EbEvent e;
    if (parse_event(event, &e) < 0) {
        return NULL;
    }
    if (eb_append(b, e.kind, e.step, e.ts, e.call, e.line, e.payload, e.changes, e.deleted,
                  e.flat)
        < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
eb_extend_method(EventBuffer *b, PyObject *iterable)
{
    if (eb_extend(b, iterable) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
eb_pop(EventBuffer *b, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t i = -1;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "pop() takes at most one argument");
        return NULL;
    }
    if (nargs == 1) {
        i = PyNumber_AsSsize_t(args[0], PyExc_IndexError);
        if (i == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    if (b->n == 0) {
        PyErr_SetString(PyExc_IndexError, "pop from an empty event buffer");
        return NULL;
    }
    PyObject *event = eb_item(b, i < 0 ? i + b->n : i);
    if (event != NULL) {
        i = i < 0 ? i + b->n : i;
        remove_range(b, i, i + 1);
    }
    return event;
}

/* bytes of the native int64 column at `offset` in each record. */
static PyObject *
int_column(EventBuffer *b, size_t offset)
{
    PyObject *data = PyBytes_FromStringAndSize(NULL, b->n * (Py_ssize_t)sizeof(int64_t));
    if (data == NULL) {
        return NULL;
    }
    int64_t *out = (int64_t *)PyBytes_AS_STRING(data);
    for (Py_ssize_t i = 0; i < b->n; i++) {
        memcpy(&out[i], (const char *)&b->ev[i] + offset, sizeof(int64_t));
    }
    return data;
}

static PyObject *
object_column(EventBuffer *b, size_t offset)
{
    PyObject *column = PyList_New(b->n);
    if (column == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < b->n; i++) {
        PyObject *o = *(PyObject **)((const char *)&b->ev[i] + offset);
        PyList_SET_ITEM(column, i, object_of(o));
    }
    /* Untracked: the writer holds a chunk's columns (up to 16,384 items each) while it writes
     * them without the GIL, and every collection the program's own allocations set off
     * meanwhile would visit each item (perf, richards: 4% of the program's thread in
     * visit_decref and visit_reachable, from these lists). They hold the events' values, which
     * the buffer holds too, and make no cycle: reference counting frees them when the write
     * ends. */
    PyObject_GC_UnTrack(column);
    return column;
}

/* The buffer's events are what a chunk's columns can be made of: every line an int and every
 * event's changes flat (columns() and packed() give nothing otherwise). */
static int
eb_packable(const EventBuffer *b)
{
    for (Py_ssize_t i = 0; i < b->n; i++) {
        if (b->ev[i].line == EB_NO_LINE || (b->ev[i].changes != NULL && !b->ev[i].flat)) {
            return 0;
        }
    }
    return 1;
}

/* columns() -> (kinds, steps, ts, calls, lines, payloads, changes, deleted), or None when a line
 * is None or changes are not flat (the codec then reads the event tuples). kinds is bytes; steps
 * to lines are bytes of native int64s; the others are lists, each changes flat or None. */
static PyObject *
eb_columns(EventBuffer *b, PyObject *Py_UNUSED(ignored))
{
    if (!eb_packable(b)) {
        Py_RETURN_NONE;
    }
    PyObject *kinds = PyBytes_FromStringAndSize(NULL, b->n);
    if (kinds == NULL) {
        return NULL;
    }
    unsigned char *k = (unsigned char *)PyBytes_AS_STRING(kinds);
    for (Py_ssize_t i = 0; i < b->n; i++) {
        k[i] = b->ev[i].kind;
    }
    PyObject *parts[8] = {
        kinds,
        int_column(b, offsetof(EbEvent, step)),
        int_column(b, offsetof(EbEvent, ts)),
        int_column(b, offsetof(EbEvent, call)),
        int_column(b, offsetof(EbEvent, line)),
        object_column(b, offsetof(EbEvent, payload)),
        object_column(b, offsetof(EbEvent, changes)),
        object_column(b, offsetof(EbEvent, deleted)),
    };
    PyObject *result = PyTuple_New(8);
    for (int i = 0; i < 8; i++) {
        if (parts[i] == NULL || result == NULL) {
            for (int j = 0; j < 8; j++) {
                Py_XDECREF(parts[j]);
            }
            Py_XDECREF(result);
            return NULL;
        }
    }
    for (int i = 0; i < 8; i++) {
        PyTuple_SET_ITEM(result, i, parts[i]);
    }
    return result;
}

typedef struct {
    PackedEvents view; /* first: the capsule's pointer is the view's */
    PyObject *owner;   /* the buffer, kept alive with its records */
} PackedCapsule;

static void
packed_capsule_free(PyObject *capsule)
{
    PackedCapsule *c = PyCapsule_GetPointer(capsule, PACKED_EVENTS_CAPSULE);
    if (c != NULL) {
        Py_XDECREF(c->owner);
        PyMem_Free(c);
    }
}

/* packed() -> a capsule of the records as storage/_packedevents.h describes them, for the chunk
 * writer to make the chunk of without the GIL; None where columns() gives None, or for no
 * events. The buffer must not change while the capsule lives (the writer's own events). */
static PyObject *
eb_packed(EventBuffer *b, PyObject *Py_UNUSED(ignored))
{
    if (b->n == 0 || !eb_packable(b)) {
        Py_RETURN_NONE;
    }
    PackedCapsule *c = PyMem_Malloc(sizeof(PackedCapsule));
    if (c == NULL) {
        return PyErr_NoMemory();
    }
    c->view = (PackedEvents){
        .records = (const char *)b->ev,
        .n = b->n,
        .size = sizeof(EbEvent),
        .kind = offsetof(EbEvent, kind),
        .step = offsetof(EbEvent, step),
        .ts = offsetof(EbEvent, ts),
        .call = offsetof(EbEvent, call),
        .line = offsetof(EbEvent, line),
        .payload = offsetof(EbEvent, payload),
        .changes = offsetof(EbEvent, changes),
        .deleted = offsetof(EbEvent, deleted),
    };
    c->owner = Py_NewRef((PyObject *)b);
    PyObject *capsule = PyCapsule_New(c, PACKED_EVENTS_CAPSULE, packed_capsule_free);
    if (capsule == NULL) {
        Py_DECREF(c->owner);
        PyMem_Free(c);
    }
    return capsule;
}

/* select(kinds, changes=True) -> list of the event tuples whose kind is in `kinds` (bytes), in
 * order; without `changes`, their changes are None (the writer's scan does not read them, and
 * pairing them again would cost it an allocation per changed name). */
static PyObject *
eb_select(EventBuffer *b, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "select() takes the kinds, and whether to give changes");
        return NULL;
    }
    PyObject *kinds = args[0];
    int with_changes = nargs < 2 ? 1 : PyObject_IsTrue(args[1]);
    if (with_changes < 0) {
        return NULL;
    }
    if (!PyBytes_Check(kinds)) {
        PyErr_SetString(PyExc_TypeError, "select() takes the kinds as bytes");
        return NULL;
    }
    unsigned char wanted[256] = {0};
    const unsigned char *k = (const unsigned char *)PyBytes_AS_STRING(kinds);
    for (Py_ssize_t i = 0; i < PyBytes_GET_SIZE(kinds); i++) {
        wanted[k[i]] = 1;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < b->n; i++) {
        if (!wanted[b->ev[i].kind]) {
            continue;
        }
        PyObject *event = eb_event_tuple(&b->ev[i], with_changes);
        if (event == NULL || PyList_Append(out, event) < 0) {
            Py_XDECREF(event);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(event);
    }
    return out;
}

static PyObject *
eb_new_type(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *iterable = NULL;
    if (!PyArg_ParseTuple(args, "|O:EventBuffer", &iterable)
        || (kwds != NULL && PyDict_GET_SIZE(kwds) != 0)) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "EventBuffer() takes no keyword arguments");
        }
        return NULL;
    }
    EventBuffer *b = eb_new(0);
    if (b != NULL && iterable != NULL && eb_extend(b, iterable) < 0) {
        Py_CLEAR(b);
    }
    return (PyObject *)b;
}

static PyObject *
eb_repr(EventBuffer *b)
{
    return PyUnicode_FromFormat("<EventBuffer of %zd events>", b->n);
}

static PySequenceMethods eb_as_sequence = {
    .sq_length = (lenfunc)eb_length,
    .sq_item = (ssizeargfunc)eb_item,
};

static PyMappingMethods eb_as_mapping = {
    .mp_length = (lenfunc)eb_length,
    .mp_subscript = (binaryfunc)eb_subscript,
    .mp_ass_subscript = (objobjargproc)eb_ass_subscript,
};

static PyMethodDef eb_methods[] = {
    {"append", (PyCFunction)eb_append_method, METH_O, "Append an event tuple."},
    {"extend", (PyCFunction)eb_extend_method, METH_O, "Append event tuples, or a buffer's."},
    {"absorb", (PyCFunction)eb_absorb, METH_O,
     "Move another buffer's events to the end of this one, leaving it empty."},
    {"pop", (PyCFunction)(void (*)(void))eb_pop, METH_FASTCALL,
     "Remove and return the event at an index (default last)."},
    {"columns", (PyCFunction)eb_columns, METH_NOARGS,
     "(kinds, steps, ts, calls, lines, payloads, changes, deleted): int columns as bytes of "
     "native int64 (kinds: bytes), objects as lists, changes flat (name, value, name, value...); "
     "None when a line is None or changes are not pairs."},
    {"packed", (PyCFunction)eb_packed, METH_NOARGS,
     "A capsule of the records for the chunk writer (storage/_packedevents.h), or None."},
    {"select", (PyCFunction)(void (*)(void))eb_select, METH_FASTCALL,
     "select(kinds, changes=True): the event tuples whose kind is in the given bytes, in order "
     "(their changes None unless asked for)."},
    {NULL, NULL, 0, NULL},
};

static PyObject *
eb_get_cut_requested(EventBuffer *b, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(b->cut_requested);
}

static int
eb_set_cut_requested(EventBuffer *b, PyObject *value, void *Py_UNUSED(closure))
{
    int truth = value != NULL ? PyObject_IsTrue(value) : 0;
    if (truth < 0) {
        return -1;
    }
    b->cut_requested = truth;
    return 0;
}

static PyGetSetDef eb_getset[] = {
    {"cut_requested", (getter)eb_get_cut_requested, (setter)eb_set_cut_requested,
     "Whether the writer asked the thread to hand this list off at its next event.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject EventBuffer_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "replay.recorder._ctracer.EventBuffer",
    .tp_doc = "A thread's buffered events as records; a list of event tuples to Python code.",
    .tp_basicsize = sizeof(EventBuffer),
    .tp_dealloc = (destructor)eb_dealloc,
    .tp_repr = (reprfunc)eb_repr,
    .tp_as_sequence = &eb_as_sequence,
    .tp_as_mapping = &eb_as_mapping,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_methods = eb_methods,
    .tp_getset = eb_getset,
    .tp_new = eb_new_type,
};
