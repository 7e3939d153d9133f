/* replay.storage._columns.dumps (storage/_dumps.c): marshal.dumps(v, 4) of each value of a
 * list of plain data, written with the GIL released; None for a value it does not write. */
#ifndef REPLAY_STORAGE_DUMPS_H
#define REPLAY_STORAGE_DUMPS_H

#include <Python.h>

PyObject *dumps_plain(PyObject *module, PyObject *values);

/* replay.storage._columns.chunks (storage/_dumps.c): whole chunk blobs, values written and
 * compressed in one release of the GIL; None where that cannot be done. */
PyObject *chunks_plain(PyObject *module, PyObject *args);

/* The same in three steps, for a caller that does more in the release (storage/_sqlite.c):
 * chunk_job_new holding the GIL (NULL with an exception set, or without one where it cannot be
 * done: no libzstd), chunk_job_run without it (0 done, 1 out of memory, 2 declined: a value it
 * does not write), each chunk_job_blob after a run of 0, and chunk_job_free holding the GIL. */
typedef struct ChunkJob ChunkJob;
ChunkJob *chunk_job_new(PyObject *parts, int level, const char *head, size_t head_size);
int chunk_job_run(ChunkJob *job);
const void *chunk_job_blob(const ChunkJob *job, Py_ssize_t i, size_t *size);
void chunk_job_free(ChunkJob *job);

/* replay.storage._columns.compress (storage/_dumps.c): one zstd frame of a small blob, made
 * holding the GIL; None where libzstd is missing. */
PyObject *compress_plain(PyObject *module, PyObject *args);

#endif
