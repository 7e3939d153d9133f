/* replay.recorder._scan: the per-event loop of the writer's IndexBuilder.scan, in C.
 *
 * Optional: writer.py uses it when the module is built and runs its own Python loop otherwise.
 * It gives exactly what the Python loop gives (tests/recorder/test_writer_scan.py runs both on
 * the same generated batches and compares rows, index state and exceptions), or None, having
 * changed nothing, when the batch is not the plain case it handles (an event that is not an
 * exact 8-tuple with exact int kind, step and call id, a CALL whose payload is not an exact
 * (code_id, parent) pair with an exact int parent): the Python loop then decides.
 *
 * A C core's event buffer (replay/recorder/_eventbuffer.c) is read in place, record by record,
 * through the capsule _ctracer publishes (EbCapi): no tuple per event, and ints made only for
 * the steps and call ids the rows keep. Exceptions' events are made as tuples, without their
 * changes (no row reads them).
 *
 * Why: the writer thread derives the calls and exceptions rows from every event it writes,
 * holding the GIL the traced program needs. In Python the loop cost about 0.17 us per event
 * (a third of all events are CALL or RETURN on object-heavy code): 0.56 s of the writer's 4 s on
 * richards.py, which the traced program waited for.
 *
 * Calls as records (since 2026-11-28): given a bytearray, the loop keeps each call that begins
 * in a C core's batch on a C stack and, when it returns or unwinds in the batch (most calls),
 * appends a codec.CALL_RECORD record to it instead of making a row: on richards.py the rows,
 * their dict and set entries and their tuples were most of the 0.8 s the writer held the GIL.
 * A call that yields, resumes, is thrown into or still runs at the end becomes a row, as all
 * calls do without records (tests/storage/test_storage_index_rows.py compares both with a plain
 * loop).
 *
 * No Python code runs: dict and set operations on exact int keys, list stores. Only the public
 * C API is used: the module builds on every CPython replay supports.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#include "../../storage/_callrecord.h" /* the records it writes (codec.CALL_RECORD) */
#include "_eventbuffer.h"

/* replay.events kinds (writer.py checks they still are, before it uses this module). */
enum { K_CALL = 0, K_LINE, K_RETURN, K_RAISE, K_HANDLED, K_UNWIND, K_YIELD, K_RESUME, K_THROW };

/* Positions in a call row (codec.CALL_FIELDS; checked by writer.py too). */
enum { R_CALL, R_PARENT, R_FUNCTION, R_THREAD, R_DEPTH, R_FIRST, R_LAST, R_EXCEPTION,
       R_GENERATOR, R_FIELDS };

/* Whether a CALL's payload is what the loop reads: an exact (code_id, parent) pair with an
 * exact int parent. */
static inline int
plain_call_payload(PyObject *payload)
{
    return payload != NULL && PyTuple_CheckExact(payload) && PyTuple_GET_SIZE(payload) == 2
           && PyLong_CheckExact(PyTuple_GET_ITEM(payload, 1));
}

/* Whether every event has the shape the loop reads: then nothing below can fail on it. */
static int
plain_batch(PyObject *events)
{
    Py_ssize_t n = PyList_GET_SIZE(events);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *e = PyList_GET_ITEM(events, i);
        if (!PyTuple_CheckExact(e) || PyTuple_GET_SIZE(e) != 8) {
            return 0;
        }
        PyObject *kind = PyTuple_GET_ITEM(e, 0);
        if (!PyLong_CheckExact(kind) || !PyLong_CheckExact(PyTuple_GET_ITEM(e, 1))
            || !PyLong_CheckExact(PyTuple_GET_ITEM(e, 3))) {
            return 0;
        }
        long k = PyLong_AsLong(kind);
        if (k < 0 || k > 255) {
            PyErr_Clear();
            return 0;
        }
        if (k == K_CALL && !plain_call_payload(PyTuple_GET_ITEM(e, 5))) {
            return 0;
        }
    }
    return 1;
}

/* A fresh call row (IndexBuilder.scan's CALL branch). New reference. */
static PyObject *
new_row(PyObject *open_calls, PyObject *step, PyObject *call_id, PyObject *payload,
        PyObject *thread_id, PyObject *one)
{
    PyObject *code_id = PyTuple_GET_ITEM(payload, 0);
    PyObject *parent = PyTuple_GET_ITEM(payload, 1);
    PyObject *caller = PyDict_GetItemWithError(open_calls, parent); /* borrowed */
    if (caller == NULL && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *depth;
    if (caller != NULL && PyList_CheckExact(caller) && PyList_GET_SIZE(caller) == R_FIELDS) {
        depth = PyNumber_Add(PyList_GET_ITEM(caller, R_DEPTH), one);
    }
    else if (caller != NULL) {
        PyErr_SetString(PyExc_TypeError, "an open call's row is not a call row");
        return NULL;
    }
    else {
        depth = PyLong_FromLong(0);
    }
    if (depth == NULL) {
        return NULL;
    }
    PyObject *row = PyList_New(R_FIELDS);
    if (row == NULL) {
        Py_DECREF(depth);
        return NULL;
    }
    int has_parent = PyObject_IsTrue(parent); /* an exact int: no Python code */
    PyList_SET_ITEM(row, R_CALL, Py_NewRef(call_id));
    PyList_SET_ITEM(row, R_PARENT, Py_NewRef(has_parent ? parent : Py_None));
    PyList_SET_ITEM(row, R_FUNCTION, Py_NewRef(code_id));
    PyList_SET_ITEM(row, R_THREAD, Py_NewRef(thread_id));
    PyList_SET_ITEM(row, R_DEPTH, depth);
    PyList_SET_ITEM(row, R_FIRST, Py_NewRef(step));
    PyList_SET_ITEM(row, R_LAST, Py_NewRef(Py_None));
    PyList_SET_ITEM(row, R_EXCEPTION, Py_NewRef(Py_False));
    PyList_SET_ITEM(row, R_GENERATOR, Py_NewRef(Py_False));
    return row;
}

static inline void
set_field(PyObject *row, Py_ssize_t i, PyObject *value)
{
    PyObject *old = PyList_GET_ITEM(row, i);
    PyList_SET_ITEM(row, i, Py_NewRef(value));
    Py_DECREF(old);
}

/* A call that is over (RETURN, UNWIND) or switched (THROW): `ended` or `started` if it began in
 * this write, else `touched`. */
static int
file_row(PyObject *row, PyObject *call_id, PyObject *fresh, PyObject *if_fresh,
         PyObject *touched)
{
    int is_fresh = PySet_Contains(fresh, call_id);
    if (is_fresh < 0) {
        return -1;
    }
    return is_fresh ? PyList_Append(if_fresh, row) : PyDict_SetItem(touched, call_id, row);
}


/* A call that began in the batch and has had no event but its CALL: kept here, not as a row,
 * until it returns (then it is a record) or a row must hold it (a YIELD, RESUME or THROW of it,
 * or the end of the batch while it runs). */
typedef struct {
    int64_t call, parent, function, depth, first;
} Pending;

/* What one scan files its rows into (scan_calls' arguments and its own containers). */
typedef struct {
    PyObject *thread_id, *open_calls, *fresh, *touched, *ended; /* borrowed */
    PyObject *started, *switches, *raised, *one;                /* owned */
    PyObject *records;    /* bytearray of CallRecords, or NULL: every call gets a row */
    int64_t thread;       /* thread_id as an int (with records) */
    Pending *stack;       /* the batch's calls kept off the rows, innermost last */
    Py_ssize_t depth, cap;
    CallRecord *done;     /* the records of the calls that returned, for `records` */
    Py_ssize_t ndone, donecap;
} Scan;

/* Room for one more item in a PyMem array of `*cap` items of `size` bytes holding `n`: 0, or
 * -1 with MemoryError. */
static int
room_for_one(void **items, Py_ssize_t *cap, Py_ssize_t n, size_t size)
{
    if (n < *cap) {
        return 0;
    }
    Py_ssize_t more = *cap ? 2 * *cap : 64;
    void *grown = PyMem_Realloc(*items, (size_t)more * size);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *items = grown;
    *cap = more;
    return 0;
}

/* A pending call made a row, as the CALL branch of scan_one makes it: in open_calls, fresh and
 * started. 0, or -1 with an exception set. */
static int
make_row(Scan *sc, const Pending *c)
{
    PyObject *row = PyList_New(R_FIELDS);
    PyObject *call_id = PyLong_FromLongLong(c->call);
    PyObject *items[] = {
        call_id,
        c->parent ? PyLong_FromLongLong(c->parent) : Py_NewRef(Py_None),
        PyLong_FromLongLong(c->function),
        Py_NewRef(sc->thread_id),
        PyLong_FromLongLong(c->depth),
        PyLong_FromLongLong(c->first),
        Py_NewRef(Py_None),
        Py_NewRef(Py_False),
        Py_NewRef(Py_False),
    };
    int rc = row == NULL ? -1 : 0;
    for (int i = 0; i < R_FIELDS; i++) {
        if (items[i] == NULL) {
            rc = -1;
        }
        if (row != NULL) {
            PyList_SET_ITEM(row, i, items[i]);
        }
        else {
            Py_XDECREF(items[i]);
        }
    }
    if (rc == 0) {
        Py_INCREF(call_id);
        rc = PyDict_SetItem(sc->open_calls, call_id, row) < 0 || PyList_Append(sc->started, row) < 0
                     || PySet_Add(sc->fresh, call_id) < 0
                 ? -1
                 : 0;
        Py_DECREF(call_id);
    }
    Py_XDECREF(row);
    return rc;
}

/* Make rows of the pending calls from position `from` up, in the order they began. */
static int
rows_from(Scan *sc, Py_ssize_t from)
{
    for (Py_ssize_t i = from; i < sc->depth; i++) {
        if (make_row(sc, &sc->stack[i]) < 0) {
            return -1;
        }
    }
    sc->depth = from < sc->depth ? from : sc->depth;
    return 0;
}

/* Where `call` is among the pending calls, innermost first; -1 if it is not. */
static inline Py_ssize_t
pending_at(const Scan *sc, int64_t call)
{
    for (Py_ssize_t i = sc->depth - 1; i >= 0; i--) {
        if (sc->stack[i].call == call) {
            return i;
        }
    }
    return -1;
}

/* The calls of a C core's batch that begin and end in it (most), without a row: CALL keeps the
 * call pending, its RETURN or UNWIND makes it a record. 1 when the event is handled here, 0
 * when scan_one must see it (the pending calls it concerns are rows by then), -1 on error. */
static int
fast_record(Scan *sc, const EbEvent *e)
{
    switch (e->kind) {
    case K_CALL: {
        PyObject *code_id = PyTuple_GET_ITEM(e->payload, 0);
        PyObject *parent_obj = PyTuple_GET_ITEM(e->payload, 1);
        if (!PyLong_CheckExact(code_id)) {
            return 0; /* its row keeps the object (the Python loop decides what it is) */
        }
        /* Exact ints (plain_records checked the parent): no exception, only an overflow. */
        int overflow = 0;
        int64_t function = PyLong_AsLongLongAndOverflow(code_id, &overflow);
        if (overflow) {
            return 0;
        }
        int64_t parent = PyLong_AsLongLongAndOverflow(parent_obj, &overflow);
        if (overflow || parent < 0) {
            return 0; /* a record's parent 0 stands for none */
        }
        int64_t depth = 0;
        Py_ssize_t at = parent ? pending_at(sc, parent) : -1;
        if (at >= 0) {
            depth = sc->stack[at].depth + 1;
        }
        else if (parent) {
            PyObject *caller = PyDict_GetItemWithError(sc->open_calls, parent_obj);
            if (caller == NULL && PyErr_Occurred()) {
                return -1;
            }
            if (caller != NULL) {
                if (!PyList_CheckExact(caller) || PyList_GET_SIZE(caller) != R_FIELDS
                    || !PyLong_CheckExact(PyList_GET_ITEM(caller, R_DEPTH))) {
                    return 0;
                }
                depth = PyLong_AsLongLongAndOverflow(PyList_GET_ITEM(caller, R_DEPTH), &overflow);
                if (overflow || depth < 0) {
                    PyErr_Clear();
                    return 0;
                }
                depth += 1;
            }
        }
        if (room_for_one((void **)&sc->stack, &sc->cap, sc->depth, sizeof(Pending)) < 0) {
            return -1;
        }
        sc->stack[sc->depth++] = (Pending){e->call, parent, function, depth, e->step};
        return 1;
    }
    case K_RETURN:
    case K_UNWIND: {
        Py_ssize_t at = pending_at(sc, e->call);
        if (at < 0) {
            return 0;
        }
        /* Calls above it that did not end (no RETURN: the events say so) stay open, as rows. */
        if (rows_from(sc, at + 1) < 0) {
            return -1;
        }
        if (room_for_one((void **)&sc->done, &sc->donecap, sc->ndone, sizeof(CallRecord)) < 0) {
            return -1;
        }
        const Pending *c = &sc->stack[at];
        sc->done[sc->ndone++] = (CallRecord){c->call,  c->parent, c->function,
                                             sc->thread, c->depth, c->first,
                                             e->step,  e->kind == K_UNWIND, 0, {0}};
        sc->depth = at;
        return e->kind == K_UNWIND ? 0 : 1; /* an UNWIND is also an exception's event */
    }
    case K_YIELD:
    case K_RESUME:
    case K_THROW: {
        Py_ssize_t at = pending_at(sc, e->call);
        return at < 0 ? 0 : rows_from(sc, at);
    }
    default:
        return 0;
    }
}

/* One event of a plain batch, of kind CALL, RETURN, YIELD, RESUME, THROW or UNWIND (with its
 * step and call id) or RAISE or HANDLED (step and call id unused); *raises: the caller appends
 * the event to `raised`. 0, or -1 with an exception set. */
static int
scan_one(Scan *sc, long kind, PyObject *step, PyObject *call_id, PyObject *payload, int *raises)
{
    PyObject *thread_id = sc->thread_id, *open_calls = sc->open_calls, *fresh = sc->fresh;
    PyObject *touched = sc->touched, *ended = sc->ended, *started = sc->started;
    PyObject *row;
    int rc;
    *raises = 0;
    switch (kind) {
    case K_CALL:
        row = new_row(open_calls, step, call_id, payload, thread_id, sc->one);
        if (row == NULL) {
            return -1;
        }
        rc = PyDict_SetItem(open_calls, call_id, row) < 0 || PyList_Append(started, row) < 0
                         || PySet_Add(fresh, call_id) < 0
                     ? -1
                     : 0;
        Py_DECREF(row);
        return rc;
    case K_RETURN:
        row = PyDict_GetItemWithError(open_calls, call_id);
        if (row == NULL) {
            return PyErr_Occurred() ? -1 : 0;
        }
        Py_INCREF(row);
        rc = PyDict_DelItem(open_calls, call_id) < 0 ? -1 : 0;
        if (rc == 0) {
            set_field(row, R_LAST, step);
            rc = file_row(row, call_id, fresh, ended, touched);
        }
        Py_DECREF(row);
        return rc;
    case K_YIELD:
    case K_RESUME:
        /* All a row needs of them is the call's last one (IndexBuilder._switched). */
        return PyDict_SetItem(sc->switches, call_id, step);
    case K_THROW:
    case K_UNWIND:
        row = PyDict_GetItemWithError(open_calls, call_id);
        if (row == NULL && PyErr_Occurred()) {
            return -1;
        }
        if (row != NULL) {
            Py_INCREF(row);
            set_field(row, R_LAST, step);
            if (kind == K_THROW) {
                set_field(row, R_GENERATOR, Py_True);
                rc = file_row(row, call_id, fresh, started, touched);
            }
            else {
                set_field(row, R_EXCEPTION, Py_True);
                rc = file_row(row, call_id, fresh, ended, touched);
                if (rc == 0) {
                    rc = PyDict_DelItem(open_calls, call_id);
                }
            }
            Py_DECREF(row);
            if (rc < 0) {
                return -1;
            }
        }
        *raises = 1;
        return 0;
    case K_RAISE:
    case K_HANDLED:
        *raises = 1;
        return 0;
    default: /* LINE, EXTERNAL, GAP and kinds this module does not know: no row needs them */
        return 0;
    }
}

/* One event tuple of a plain list. */
static int
scan_tuple(Scan *sc, PyObject *e)
{
    int raises;
    if (scan_one(sc, PyLong_AsLong(PyTuple_GET_ITEM(e, 0)), PyTuple_GET_ITEM(e, 1),
                 PyTuple_GET_ITEM(e, 3), PyTuple_GET_ITEM(e, 5), &raises)
        < 0) {
        return -1;
    }
    return raises ? PyList_Append(sc->raised, e) : 0;
}

/* The capsule of replay.recorder._ctracer (NULL: not imported yet, or not there). */
static const EbCapi *capi;
static int capi_tried;

/* `events` as a C core's event buffer whose records this module reads, or NULL. */
static EventBuffer *
as_buffer(PyObject *events)
{
    if (!capi_tried) {
        capi_tried = 1;
        capi = PyCapsule_Import(EB_CAPI_NAME, 0);
        if (capi == NULL || capi->record_size != sizeof(EbEvent)) {
            PyErr_Clear(); /* no C core here, or another build of it: the tuples are read */
            capi = NULL;
        }
    }
    return capi != NULL && Py_IS_TYPE(events, capi->type) ? (EventBuffer *)events : NULL;
}

/* Whether every CALL record's payload is what the loop reads. */
static int
plain_records(const EventBuffer *b)
{
    for (Py_ssize_t i = 0; i < b->n; i++) {
        if (b->ev[i].kind == K_CALL && !plain_call_payload(b->ev[i].payload)) {
            return 0;
        }
    }
    return 1;
}

/* One record of a plain buffer: the step and call id as ints only where a row keeps them. */
static int
scan_record(Scan *sc, const EbEvent *e)
{
    if (sc->records != NULL) {
        int handled = fast_record(sc, e);
        if (handled != 0) {
            return handled < 0 ? -1 : 0;
        }
    }
    PyObject *step = NULL, *call_id = NULL;
    switch (e->kind) {
    case K_CALL:
    case K_RETURN:
    case K_YIELD:
    case K_RESUME:
    case K_THROW:
    case K_UNWIND:
        step = PyLong_FromLongLong(e->step);
        call_id = PyLong_FromLongLong(e->call);
        if (step == NULL || call_id == NULL) {
            Py_XDECREF(step);
            Py_XDECREF(call_id);
            return -1;
        }
        break;
    case K_RAISE:
    case K_HANDLED:
        break;
    default:
        return 0;
    }
    int raises;
    int rc = scan_one(sc, e->kind, step, call_id, e->payload, &raises);
    Py_XDECREF(step);
    Py_XDECREF(call_id);
    if (rc < 0 || !raises) {
        return rc;
    }
    PyObject *event = capi->event_tuple(e, 0);
    rc = event == NULL ? -1 : PyList_Append(sc->raised, event);
    Py_XDECREF(event);
    return rc;
}

/* Calls of this write started or changed in this batch are touched if they still run at its
 * end (most do not): the caller files them in `started` first, which saves a dict insert and
 * pop per call. */
static int
file_started(PyObject *started, PyObject *open_calls, PyObject *touched)
{
    Py_ssize_t n = PyList_GET_SIZE(started);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PyList_GET_ITEM(started, i);
        PyObject *call_id = PyList_GET_ITEM(row, R_CALL);
        PyObject *open = PyDict_GetItemWithError(open_calls, call_id);
        if (open == NULL && PyErr_Occurred()) {
            return -1;
        }
        if (open == row && PyDict_SetItem(touched, call_id, row) < 0) {
            return -1;
        }
    }
    return 0;
}

/* The batch's records at the end of the `records` bytearray. */
static int
append_records(Scan *sc)
{
    if (sc->records == NULL || sc->ndone == 0) {
        return 0;
    }
    Py_ssize_t had = PyByteArray_GET_SIZE(sc->records);
    size_t add = (size_t)sc->ndone * sizeof(CallRecord);
    if (PyByteArray_Resize(sc->records, had + (Py_ssize_t)add) < 0) {
        return -1;
    }
    memcpy(PyByteArray_AS_STRING(sc->records) + had, sc->done, add);
    return 0;
}

/* scan_calls(events, thread_id, open_calls, fresh, touched, ended) -> (switches, raised) or None
 * See IndexBuilder.scan: the rows of calls started, ended or changed in `events` (a list of
 * event tuples, or a C core's event buffer), filed into the given containers; `switches` maps
 * call id -> step of its last YIELD or RESUME, `raised` is the RAISE, HANDLED, UNWIND and THROW
 * events in order. None if the batch is not plain, or not a list or buffer (nothing changed). */
static PyObject *
scan_calls(PyObject *module, PyObject *args)
{
    PyObject *events, *records = Py_None;
    Scan sc = {0};
    if (!PyArg_ParseTuple(args, "OOO!O!O!O!|O:scan_calls", &events, &sc.thread_id, &PyDict_Type,
                          &sc.open_calls, &PySet_Type, &sc.fresh, &PyDict_Type, &sc.touched,
                          &PyList_Type, &sc.ended, &records)) {
        return NULL;
    }
    if (records != Py_None && !PyByteArray_CheckExact(records)) {
        PyErr_SetString(PyExc_TypeError, "records must be a bytearray or None");
        return NULL;
    }
    if (records != Py_None && PyLong_CheckExact(sc.thread_id)) {
        int overflow = 0;
        sc.thread = PyLong_AsLongLongAndOverflow(sc.thread_id, &overflow);
        sc.records = overflow ? NULL : records;
    }
    EventBuffer *buffer = PyList_CheckExact(events) ? NULL : as_buffer(events);
    if (buffer != NULL ? !plain_records(buffer)
                       : !PyList_CheckExact(events) || !plain_batch(events)) {
        Py_RETURN_NONE;
    }
    sc.started = PyList_New(0);
    sc.switches = PyDict_New();
    sc.raised = PyList_New(0);
    sc.one = PyLong_FromLong(1);
    PyObject *result = NULL;
    if (sc.started != NULL && sc.switches != NULL && sc.raised != NULL && sc.one != NULL) {
        Py_ssize_t n = buffer != NULL ? buffer->n : PyList_GET_SIZE(events), i = 0;
        for (; i < n; i++) {
            int rc = buffer != NULL ? scan_record(&sc, &buffer->ev[i])
                                    : scan_tuple(&sc, PyList_GET_ITEM(events, i));
            if (rc < 0) {
                break;
            }
        }
        /* The calls still running at the end of the batch are rows, as the others' are. */
        if (i == n && rows_from(&sc, 0) == 0
            && file_started(sc.started, sc.open_calls, sc.touched) == 0
            && append_records(&sc) == 0) {
            result = PyTuple_Pack(2, sc.switches, sc.raised);
        }
    }
    PyMem_Free(sc.stack);
    PyMem_Free(sc.done);
    Py_XDECREF(sc.started);
    Py_XDECREF(sc.switches);
    Py_XDECREF(sc.raised);
    Py_XDECREF(sc.one);
    return result;
}

/* pack_rows(records, rows) -> bool: see scan_methods. */
static PyObject *
pack_rows(PyObject *module, PyObject *args)
{
    PyObject *records, *rows;
    if (!PyArg_ParseTuple(args, "O!O!:pack_rows", &PyByteArray_Type, &records, &PyList_Type,
                          &rows)) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(rows);
    CallRecord *out = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof(CallRecord));
    if (out == NULL) {
        return PyErr_NoMemory();
    }
    int fits = 1;
    for (Py_ssize_t i = 0; fits && i < n; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        Py_ssize_t size = PyTuple_CheckExact(row) ? PyTuple_GET_SIZE(row)
                          : PyList_CheckExact(row) ? PyList_GET_SIZE(row)
                                                   : -1;
        if (size != R_FIELDS) {
            fits = 0;
            break;
        }
        PyObject **f = PySequence_Fast_ITEMS(row);
        int64_t *ints[] = {&out[i].call,  NULL,           &out[i].function, &out[i].thread,
                           &out[i].depth, &out[i].first, &out[i].last};
        for (int k = 0; fits && k < 7; k++) {
            PyObject *v = f[k];
            int overflow = 0;
            if (k == R_PARENT) {
                if (v == Py_None) {
                    out[i].parent = 0;
                    continue;
                }
                ints[k] = &out[i].parent;
            }
            if (!PyLong_CheckExact(v)) {
                fits = 0;
                break;
            }
            *ints[k] = PyLong_AsLongLongAndOverflow(v, &overflow);
            if (overflow || (k == R_PARENT && *ints[k] <= 0)) {
                fits = 0;
            }
        }
        if (fits && PyBool_Check(f[R_EXCEPTION]) && PyBool_Check(f[R_GENERATOR])) {
            out[i].exception = f[R_EXCEPTION] == Py_True;
            out[i].generator = f[R_GENERATOR] == Py_True;
        }
        else {
            fits = 0;
        }
    }
    PyObject *result = Py_False;
    if (fits && n > 0) {
        Py_ssize_t had = PyByteArray_GET_SIZE(records);
        if (PyByteArray_Resize(records, had + n * (Py_ssize_t)sizeof(CallRecord)) < 0) {
            PyMem_Free(out);
            return NULL;
        }
        memcpy(PyByteArray_AS_STRING(records) + had, out, (size_t)n * sizeof(CallRecord));
    }
    if (fits) {
        result = Py_True;
    }
    PyMem_Free(out);
    return Py_NewRef(result);
}

static PyMethodDef scan_methods[] = {
    {"scan_calls", scan_calls, METH_VARARGS,
     "scan_calls(events, thread_id, open_calls, fresh, touched, ended[, records]): "
     "IndexBuilder.scan's loop; (switches, raised), or None for a batch it leaves to Python. "
     "With a bytearray `records`, the calls of a C core's batch that begin and end in it are "
     "appended to it as codec.CALL_RECORD records instead of `ended` rows."},
    {"pack_rows", pack_rows, METH_VARARGS,
     "pack_rows(records, rows): append ended call rows (codec.CALL_FIELDS order: ints, None "
     "for no parent, bools) to `records` as CALL_RECORD records; False, having appended "
     "nothing, if one does not fit."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef scan_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "replay.recorder._scan",
    .m_doc = "The writer's index scan loop in C (optional; same rows as Python).",
    .m_size = 0,
    .m_methods = scan_methods,
};

PyMODINIT_FUNC
PyInit__scan(void)
{
    return PyModule_Create(&scan_module);
}
