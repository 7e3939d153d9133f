/* The C cores' event list: fixed-size records instead of a tuple per event (_eventbuffer.c). */

#ifndef REPLAY_EVENTBUFFER_H
#define REPLAY_EVENTBUFFER_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* A `line` of None (a GAP in no known line). */
#define EB_NO_LINE INT64_MIN

/* One event: replay.events' (kind, step, ts, call, line, payload, changes, deleted). The three
 * objects are strong references; NULL stands for None.
 *
 * `flat`: `changes` holds the names and values one after the other, (name, value, name, value,
 * ...), instead of the event tuple's ((name, value), ...): what the C cores append, one tuple
 * per event instead of one more per changed name (1.9 million fewer objects for the program to
 * allocate and the writer to free on richards.py). Read as an event tuple, it is paired again;
 * the codec stores it as it is (`columns()`). */
typedef struct {
    int64_t step;
    int64_t ts;
    int64_t call;
    int64_t line;
    PyObject *payload;
    PyObject *changes;
    PyObject *deleted;
    uint8_t kind;
    uint8_t flat;
} EbEvent;

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;
    Py_ssize_t cap;
    EbEvent *ev;
    /* The writer asks the thread to hand this list off at its next event (a recording of
     * object records: ThreadState.cut_requested, read by the C cores here, in C). */
    int cut_requested;
} EventBuffer;

extern PyTypeObject EventBuffer_Type;

#define EventBuffer_CheckExact(op) Py_IS_TYPE((op), &EventBuffer_Type)

/* A new, empty buffer with room for `cap` events. */
EventBuffer *eb_new(Py_ssize_t cap);

/* Append one event; steals payload, changes and deleted (NULL: None) even on failure.
 * `flat`: changes are names and values one after the other (see EbEvent). */
int eb_append(EventBuffer *b, int kind, int64_t step, int64_t ts, int64_t call, int64_t line,
              PyObject *payload, PyObject *changes, PyObject *deleted, int flat);

/* Append the events of any iterable of event tuples (another buffer included). */
int eb_extend(EventBuffer *b, PyObject *iterable);

/* The event tuple of a record (its changes paired again, or None without `with_changes`). */
PyObject *eb_event_tuple(const EbEvent *e, int with_changes);

/* What another extension (replay.recorder._scan) needs to read a buffer's records in place,
 * published by _ctracer as a capsule named EB_CAPI_NAME: the type, to tell a buffer; the size
 * of a record, to check that both were built from this header; the event tuple of a record. */
typedef struct {
    PyTypeObject *type;
    size_t record_size;
    PyObject *(*event_tuple)(const EbEvent *e, int with_changes);
} EbCapi;

#define EB_CAPI_NAME "replay.recorder._ctracer.EVENT_BUFFER_CAPI"

extern const EbCapi eb_capi;

#endif
