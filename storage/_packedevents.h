/* A chunk's events as fixed-size records in memory, which the chunk writer (storage/_dumps.c)
 * reads without the GIL: the kinds, the four integer columns and the three value fields of each
 * event, at the offsets given. The C recorder's event buffer hands its events over this way
 * (`EventBuffer.packed()`, replay/recorder/_eventbuffer.c); storage knows nothing of it but this
 * layout.
 *
 * Why: making the columns of a chunk from the buffer (the integers copied out, packed by
 * difference and byte plane into bytes objects, the value fields gathered into three lists)
 * held the GIL, which the traced program waits for: about 0.09 s of the 0.28 s the program of
 * generators.py waited for the writer's GIL, 0.19 of 0.67 s on richards.py (perf, Python 3.12).
 * From the records, the writer does it inside the release it makes the blobs in.
 *
 * The capsule (named PACKED_EVENTS_CAPSULE) holds a PackedEvents and keeps the records alive
 * until it is freed; the records do not change meanwhile (the writer owns the events it hands
 * over). Every event's changes are flat, (name, value, name, value, ...), and every line is an
 * int: the maker gives no capsule otherwise (the codec then takes its other ways). */
#ifndef REPLAY_STORAGE_PACKEDEVENTS_H
#define REPLAY_STORAGE_PACKEDEVENTS_H

#include <Python.h>
#include <stddef.h>
#include <stdint.h>

#define PACKED_EVENTS_CAPSULE "replay.storage.packed_events"

typedef struct {
    const char *records; /* the first record */
    Py_ssize_t n;        /* records, at least 1 */
    size_t size;         /* bytes from one record to the next */
    /* Offsets in a record: kind a uint8_t; step, ts, call and line int64_t; payload, changes
     * and deleted a PyObject * (NULL for None). */
    size_t kind, step, ts, call, line, payload, changes, deleted;
} PackedEvents;

#endif
