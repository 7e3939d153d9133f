/* The recorder's writes to its store through SQLite's C API, every statement of a write in one
 * release of the GIL (storage/_sqlite.c). The functions of replay.storage._columns that use it. */
#ifndef REPLAY_STORAGE_SQLITE_H
#define REPLAY_STORAGE_SQLITE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* sqlite_version(library) -> the version of the SQLite that _sqlite3 module uses, or None */
PyObject *sqlite_version(PyObject *module, PyObject *library);
/* sqlite_open(library, uri, pragmas) -> handle or None */
PyObject *sqlite_open(PyObject *module, PyObject *args);
/* sqlite_run(handle, statements[, chunk_parts, level, head]) -> (status, index, code, message,
 * chunk sizes), or None (declined: nothing ran) */
PyObject *sqlite_run(PyObject *module, PyObject *args);
/* sqlite_close(handle) -> None */
PyObject *sqlite_close(PyObject *module, PyObject *handle);
/* sqlite_forget(handle) -> None */
PyObject *sqlite_forget(PyObject *module, PyObject *handle);

#endif
