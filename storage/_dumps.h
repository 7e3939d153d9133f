/* replay.storage._columns.dumps (storage/_dumps.c): marshal.dumps(v, 4) of each value of a
 * list of plain data, written with the GIL released; None for a value it does not write. */
#ifndef REPLAY_STORAGE_DUMPS_H
#define REPLAY_STORAGE_DUMPS_H

#include <Python.h>

PyObject *dumps_plain(PyObject *module, PyObject *values);

/* replay.storage._columns.chunks (storage/_dumps.c): whole chunk blobs, values written and
 * compressed in one release of the GIL; None where that cannot be done. */
PyObject *chunks_plain(PyObject *module, PyObject *args);

/* replay.storage._columns.compress (storage/_dumps.c): one zstd frame of a small blob, made
 * holding the GIL; None where libzstd is missing. */
PyObject *compress_plain(PyObject *module, PyObject *args);

#endif
