/* The recorder's writes to its store through SQLite's C API, a whole write in one release of
 * the GIL.
 *
 * Why: the recorder's writer thread shares the GIL with the traced program. The sqlite3 module
 * lets go of the GIL around every prepare and step of every statement, and each time the writer
 * then waits to get it back, up to the interpreter's switch interval (5 ms) while the program
 * runs. A write is a transaction of six to ten statements (BEGIN, the chunks, the call and
 * exception blocks, the index rows, the recording's row, COMMIT): on richards.py the writer's
 * `add_batch` took 1.4 s of wall time for 0.25 s of CPU, and the program waited for the writer
 * (docs/internals.md, "Where the time goes"). Here the statements of a write are bound holding
 * the GIL and run in one release.
 *
 * How: the library is the one the interpreter's _sqlite3 module uses, found through that
 * module's own handle (dlopen with RTLD_NOLOAD, dlsym searching it and what it links), so both
 * connections share one copy of SQLite and its file locks (two copies in one process would each
 * think they alone hold the POSIX locks of the file). SQLite's headers need not be installed: the
 * few functions of its C API used here are declared below (stable since 3.7.14, 2012). Where the
 * library cannot be found (SQLite linked into _sqlite3 with hidden symbols), `sqlite_open`
 * returns None and the writer uses the sqlite3 module as before: the rows are the same.
 *
 * The connection is the writer's second one to the store (storage/recording_writer.py keeps the
 * sqlite3 module's for everything else) and runs the same pragmas. Parameters are bound as the
 * sqlite3 module binds them (None, int as a 64-bit integer, float, str as UTF-8 text, bytes as
 * a blob); a statement with any other value is declined (None), before anything runs.
 */

#include "_sqlite.h"

#include "_dumps.h"
#include "_zstd.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_dlfind.h"

/* From sqlite3.h (stable API). */
typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;
typedef long long sqlite3_int64;
#define SQLITE_OK 0
#define SQLITE_RANGE 25
#define SQLITE_ROW 100
#define SQLITE_DONE 101
#define SQLITE_OPEN_READWRITE 0x00000002
#define SQLITE_OPEN_URI 0x00000040
#define SQLITE_STATIC ((void (*)(void *))0)

static struct {
    int tried, ok;
    int (*open_v2)(const char *, sqlite3 **, int, const char *);
    int (*close_v2)(sqlite3 *);
    int (*prepare_v2)(sqlite3 *, const char *, int, sqlite3_stmt **, const char **);
    int (*bind_parameter_count)(sqlite3_stmt *);
    int (*bind_null)(sqlite3_stmt *, int);
    int (*bind_int64)(sqlite3_stmt *, int, sqlite3_int64);
    int (*bind_double)(sqlite3_stmt *, int, double);
    int (*bind_text)(sqlite3_stmt *, int, const char *, int, void (*)(void *));
    int (*bind_blob)(sqlite3_stmt *, int, const void *, int, void (*)(void *));
    int (*step)(sqlite3_stmt *);
    int (*finalize)(sqlite3_stmt *);
    int (*changes)(sqlite3 *);
    int (*get_autocommit)(sqlite3 *);
    int (*extended_errcode)(sqlite3 *);
    const char *(*errmsg)(sqlite3 *);
    const char *(*libversion)(void);
} s;

/* Whether the _sqlite3 module's SQLite was found (hold the GIL). `library` is its file. */
static int
sqlite_available(const char *library)
{
    if (s.tried) {
        return s.ok;
    }
    s.tried = 1;
#ifdef HAVE_DLOPEN
    void *lib = dlopen(library, RTLD_LAZY | RTLD_NOLOAD);
    if (lib == NULL) {
        return 0;
    }
#define FIND(field, symbol)                                                                      \
    do {                                                                                         \
        DL_FIND(lib, s.field, symbol);                                                           \
        s.ok = s.ok && s.field != NULL;                                                          \
    } while (0)
    s.ok = 1;
    FIND(open_v2, "sqlite3_open_v2");
    FIND(close_v2, "sqlite3_close_v2");
    FIND(prepare_v2, "sqlite3_prepare_v2");
    FIND(bind_parameter_count, "sqlite3_bind_parameter_count");
    FIND(bind_null, "sqlite3_bind_null");
    FIND(bind_int64, "sqlite3_bind_int64");
    FIND(bind_double, "sqlite3_bind_double");
    FIND(bind_text, "sqlite3_bind_text");
    FIND(bind_blob, "sqlite3_bind_blob");
    FIND(step, "sqlite3_step");
    FIND(finalize, "sqlite3_finalize");
    FIND(changes, "sqlite3_changes");
    FIND(get_autocommit, "sqlite3_get_autocommit");
    FIND(extended_errcode, "sqlite3_extended_errcode");
    FIND(errmsg, "sqlite3_errmsg");
    FIND(libversion, "sqlite3_libversion");
#undef FIND
    /* The module stays loaded for the life of the process: the handle is not closed (closing
     * it only drops the count dlopen added). */
    dlclose(lib);
#endif
    return s.ok;
}

PyObject *
sqlite_version(PyObject *module, PyObject *arg)
{
    const char *library = PyUnicode_AsUTF8(arg);
    if (library == NULL) {
        return NULL;
    }
    if (!sqlite_available(library)) {
        Py_RETURN_NONE;
    }
    return PyUnicode_FromString(s.libversion());
}

#define CAPSULE "replay.storage._columns.sqlite"

static void
handle_destructor(PyObject *capsule)
{
    sqlite3 *db = PyCapsule_GetPointer(capsule, CAPSULE);
    if (db != NULL) {
        s.close_v2(db);
    }
}

static sqlite3 *
handle_db(PyObject *handle)
{
    if (!PyCapsule_IsValid(handle, CAPSULE)) {
        PyErr_SetString(PyExc_TypeError, "not an open sqlite handle");
        return NULL;
    }
    return PyCapsule_GetPointer(handle, CAPSULE);
}

/* One statement to its end (its rows, if any, are not read: pragmas). SQLITE_DONE or an error. */
static int
exec_plain(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    int rc = s.prepare_v2(db, sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK) {
        return rc;
    }
    while ((rc = s.step(stmt)) == SQLITE_ROW) {
    }
    s.finalize(stmt);
    return rc;
}

PyObject *
sqlite_open(PyObject *module, PyObject *args)
{
    const char *library, *uri;
    PyObject *pragmas;
    if (!PyArg_ParseTuple(args, "ssO!:sqlite_open", &library, &uri, &PyList_Type, &pragmas)) {
        return NULL;
    }
    if (!sqlite_available(library)) {
        Py_RETURN_NONE;
    }
    Py_ssize_t n = PyList_GET_SIZE(pragmas);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyUnicode_Check(PyList_GET_ITEM(pragmas, i))) {
            PyErr_SetString(PyExc_TypeError, "pragmas must be str");
            return NULL;
        }
    }
    sqlite3 *db = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = s.open_v2(uri, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI, NULL);
    Py_END_ALLOW_THREADS
    for (Py_ssize_t i = 0; rc == SQLITE_OK && i < n; i++) {
        const char *sql = PyUnicode_AsUTF8(PyList_GET_ITEM(pragmas, i));
        if (sql == NULL) {
            s.close_v2(db);
            return NULL;
        }
        Py_BEGIN_ALLOW_THREADS
        rc = exec_plain(db, sql);
        Py_END_ALLOW_THREADS
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    if (rc != SQLITE_OK) {
        /* The sqlite3 module's connection to the same file says why, if it is not a fluke. */
        if (db != NULL) {
            s.close_v2(db);
        }
        Py_RETURN_NONE;
    }
    PyObject *capsule = PyCapsule_New(db, CAPSULE, handle_destructor);
    if (capsule == NULL) {
        s.close_v2(db);
    }
    return capsule;
}

PyObject *
sqlite_close(PyObject *module, PyObject *handle)
{
    sqlite3 *db = handle_db(handle);
    if (db == NULL) {
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    }
    PyCapsule_SetDestructor(handle, NULL);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = s.close_v2(db);
    Py_END_ALLOW_THREADS
    (void)rc; /* close_v2 defers the close of a connection still in use: none is, here */
    /* A capsule cannot hold NULL: it now holds a pointer that no one reads. */
    PyCapsule_SetName(handle, "replay.storage._columns.sqlite (closed)");
    Py_RETURN_NONE;
}

PyObject *
sqlite_forget(PyObject *module, PyObject *handle)
{
    if (handle_db(handle) == NULL) {
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    }
    /* In a forked child: the connection belongs to the parent; never closed, never used. */
    PyCapsule_SetDestructor(handle, NULL);
    PyCapsule_SetName(handle, "replay.storage._columns.sqlite (inherited)");
    Py_RETURN_NONE;
}

/* A bound parameter, read from its Python value holding the GIL. */
typedef struct {
    enum { P_NULL, P_INT, P_FLOAT, P_TEXT, P_BLOB, P_CHUNK, P_FRAME } kind;
    sqlite3_int64 i;
    double d;
    const void *p;
    int n;
    /* P_FRAME: the zstd frame of p at level i, made in the release (malloc'd: freed by
     * sqlite_run); frame_size is p's size until it is made, then the frame's. */
    void *frame;
    size_t frame_size;
} Param;

typedef struct {
    const char *sql;
    int sql_size;
    int must_change; /* a statement that must change a row (the recording's UPDATE) */
    Py_ssize_t first, count; /* its parameters in the Param array */
} Statement;

/* 1: read; 0: declined (a value the sqlite3 module would adapt or refuse: it decides); -1: error.
 * A 1-tuple `(i,)` stands for the blob of the write's chunk i, made in the release (`chunks`);
 * a 2-tuple `(raw, level)` for one zstd frame of the bytes `raw` at `level`, made in the release
 * too (a call block: codec.PendingBlob). */
static int
read_param(PyObject *v, Param *out, Py_ssize_t nchunks)
{
    PyTypeObject *tp = Py_TYPE(v);
    if (tp == &PyTuple_Type && PyTuple_GET_SIZE(v) == 2
        && PyBytes_CheckExact(PyTuple_GET_ITEM(v, 0))
        && PyLong_CheckExact(PyTuple_GET_ITEM(v, 1))) {
        long level = PyLong_AsLong(PyTuple_GET_ITEM(v, 1));
        if ((level == -1 && PyErr_Occurred()) || level < -131072 || level > 22
            || !zstd_available()) {
            PyErr_Clear();
            return 0; /* declined: the codec compresses it */
        }
        out->kind = P_FRAME;
        out->p = PyBytes_AS_STRING(PyTuple_GET_ITEM(v, 0));
        out->n = 0;
        out->i = level;
        out->frame_size = (size_t)PyBytes_GET_SIZE(PyTuple_GET_ITEM(v, 0));
        return 1;
    }
    if (tp == &PyTuple_Type && PyTuple_GET_SIZE(v) == 1
        && PyLong_CheckExact(PyTuple_GET_ITEM(v, 0))) {
        Py_ssize_t i = PyLong_AsSsize_t(PyTuple_GET_ITEM(v, 0));
        if (i < 0 || i >= nchunks) {
            PyErr_Clear();
            PyErr_SetString(PyExc_IndexError, "no such chunk in this write");
            return -1;
        }
        out->kind = P_CHUNK;
        out->i = i;
    }
    else if (v == Py_None) {
        out->kind = P_NULL;
    }
    else if (tp == &PyLong_Type || tp == &PyBool_Type) {
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow || (x == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return 0;
        }
        out->kind = P_INT;
        out->i = x;
    }
    else if (tp == &PyFloat_Type) {
        out->kind = P_FLOAT;
        out->d = PyFloat_AS_DOUBLE(v);
    }
    else if (tp == &PyUnicode_Type) {
        Py_ssize_t size;
        const char *text = PyUnicode_AsUTF8AndSize(v, &size);
        if (text == NULL || size > INT32_MAX) {
            PyErr_Clear();
            return 0;
        }
        out->kind = P_TEXT;
        out->p = text; /* kept by the str, which the statements hold */
        out->n = (int)size;
    }
    else if (tp == &PyBytes_Type) {
        if (PyBytes_GET_SIZE(v) > INT32_MAX) {
            return 0;
        }
        out->kind = P_BLOB;
        out->p = PyBytes_AS_STRING(v);
        out->n = (int)PyBytes_GET_SIZE(v);
    }
    else {
        return 0;
    }
    return 1;
}

static int
bind(sqlite3_stmt *stmt, int at, const Param *p, const ChunkJob *job)
{
    size_t size;
    const void *blob;
    switch (p->kind) {
    case P_CHUNK:
        blob = chunk_job_blob(job, (Py_ssize_t)p->i, &size);
        return size > INT32_MAX ? SQLITE_RANGE : s.bind_blob(stmt, at, blob, (int)size, SQLITE_STATIC);
    case P_INT:
        return s.bind_int64(stmt, at, p->i);
    case P_FLOAT:
        return s.bind_double(stmt, at, p->d);
    case P_TEXT:
        return s.bind_text(stmt, at, p->p, p->n, SQLITE_STATIC);
    case P_BLOB:
        return s.bind_blob(stmt, at, p->p, p->n, SQLITE_STATIC);
    case P_FRAME:
        return p->frame_size > INT32_MAX ? SQLITE_RANGE
                                         : s.bind_blob(stmt, at, p->frame, (int)p->frame_size,
                                                       SQLITE_STATIC);
    default:
        return s.bind_null(stmt, at);
    }
}

enum { RUN_OK, RUN_ERROR, RUN_UNCHANGED };

/* The frames of the P_FRAME parameters among the first `n`, without the GIL (malloc: no Python
 * allocator). 0 done; 1 out of memory; 2 a frame libzstd did not make (the codec decides, as
 * for a chunk chunk_job_run declines). Each param's frame is freed by sqlite_run's caller side. */
static int
make_frames(Param *params, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        Param *p = &params[i];
        if (p->kind != P_FRAME) {
            continue;
        }
        size_t raw = p->frame_size, capacity = zstd_bound(raw);
        p->frame = malloc(capacity ? capacity : 1);
        if (p->frame == NULL) {
            p->frame_size = 0;
            return 1;
        }
        ZstdPart part = {p->p, raw, 0};
        size_t size = zstd_frame((int)p->i, &part, 1, p->frame, capacity);
        if (size == 0) {
            p->frame_size = 0;
            return 2;
        }
        p->frame_size = size;
    }
    return 0;
}

/* Runs every statement in order, without the GIL; on a failure, what failed and why (the error
 * message copied to `message`), and the transaction rolled back if one is open. */
static int
run_all(sqlite3 *db, const Statement *st, Py_ssize_t nst, const Param *params,
        const ChunkJob *job, Py_ssize_t *index, int *code, char *message, size_t message_size)
{
    int status = RUN_OK;
    for (Py_ssize_t k = 0; k < nst && status == RUN_OK; k++) {
        sqlite3_stmt *stmt = NULL;
        const char *tail = NULL;
        int rc = s.prepare_v2(db, st[k].sql, st[k].sql_size, &stmt, &tail);
        if (rc == SQLITE_OK && stmt == NULL) {
            rc = SQLITE_RANGE; /* an empty statement: not one the writer makes */
        }
        if (rc == SQLITE_OK && s.bind_parameter_count(stmt) != st[k].count) {
            s.finalize(stmt);
            *index = k;
            *code = SQLITE_RANGE;
            snprintf(message, message_size, "%s", "wrong number of parameters");
            status = RUN_ERROR;
            break;
        }
        for (Py_ssize_t j = 0; rc == SQLITE_OK && j < st[k].count; j++) {
            rc = bind(stmt, (int)j + 1, &params[st[k].first + j], job);
        }
        if (rc == SQLITE_OK) {
            while ((rc = s.step(stmt)) == SQLITE_ROW) {
            }
            rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        }
        if (rc != SQLITE_OK) {
            *index = k;
            *code = s.extended_errcode(db);
            if (*code == SQLITE_OK) {
                *code = rc;
            }
            snprintf(message, message_size, "%s", s.errmsg(db));
            status = RUN_ERROR;
        }
        else if (st[k].must_change && s.changes(db) == 0) {
            *index = k;
            status = RUN_UNCHANGED;
        }
        if (stmt != NULL) {
            s.finalize(stmt);
        }
    }
    if (status != RUN_OK && !s.get_autocommit(db)) {
        exec_plain(db, "ROLLBACK");
    }
    return status;
}

PyObject *
sqlite_run(PyObject *module, PyObject *args)
{
    PyObject *handle, *statements, *chunk_parts = Py_None;
    int level = 0;
    const char *head = "";
    Py_ssize_t head_size = 0;
    if (!PyArg_ParseTuple(args, "OO!|Oiy#:sqlite_run", &handle, &PyList_Type, &statements,
                          &chunk_parts, &level, &head, &head_size)) {
        return NULL;
    }
    sqlite3 *db = handle_db(handle);
    if (db == NULL) {
        return NULL;
    }
    Py_ssize_t nst = PyList_GET_SIZE(statements), nparams = 0;
    for (Py_ssize_t k = 0; k < nst; k++) {
        PyObject *t = PyList_GET_ITEM(statements, k);
        if (!PyTuple_CheckExact(t) || PyTuple_GET_SIZE(t) != 3
            || !PyUnicode_CheckExact(PyTuple_GET_ITEM(t, 0))
            || !PyTuple_CheckExact(PyTuple_GET_ITEM(t, 1))) {
            PyErr_SetString(PyExc_TypeError, "statements are (sql, parameters, must_change)");
            return NULL;
        }
        nparams += PyTuple_GET_SIZE(PyTuple_GET_ITEM(t, 1));
    }
    ChunkJob *job = NULL;
    Py_ssize_t nchunks = 0;
    if (chunk_parts != Py_None) {
        job = chunk_job_new(chunk_parts, level, head, (size_t)head_size);
        if (job == NULL) {
            return PyErr_Occurred() ? NULL : Py_NewRef(Py_None); /* no libzstd: declined */
        }
        nchunks = PyList_GET_SIZE(chunk_parts);
    }
    Statement *st = PyMem_Calloc(nst ? nst : 1, sizeof(Statement));
    Param *params = PyMem_Calloc(nparams ? nparams : 1, sizeof(Param));
    PyObject *result = NULL;
    if (st == NULL || params == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    int declined = 0;
    Py_ssize_t at = 0;
    for (Py_ssize_t k = 0; k < nst && !declined; k++) {
        PyObject *t = PyList_GET_ITEM(statements, k);
        Py_ssize_t size;
        st[k].sql = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(t, 0), &size);
        if (st[k].sql == NULL) {
            goto done;
        }
        if (size >= INT32_MAX) {
            declined = 1;
            break;
        }
        st[k].sql_size = (int)size + 1; /* with its terminating NUL, as SQLite prefers */
        st[k].must_change = PyObject_IsTrue(PyTuple_GET_ITEM(t, 2));
        if (st[k].must_change < 0) {
            goto done;
        }
        PyObject *values = PyTuple_GET_ITEM(t, 1);
        st[k].first = at;
        st[k].count = PyTuple_GET_SIZE(values);
        for (Py_ssize_t j = 0; j < st[k].count; j++) {
            int r = read_param(PyTuple_GET_ITEM(values, j), &params[at++], nchunks);
            if (r < 0) {
                goto done;
            }
            if (r == 0) {
                declined = 1;
                break;
            }
        }
    }
    if (declined) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    Py_ssize_t index = -1;
    int code = 0, status = RUN_OK, made = 0;
    char message[512];
    message[0] = '\0';
    /* The statements' strs and bytes are immutable and held by `statements`, and the chunks'
     * parts by `chunk_parts`, which the caller holds for the call: they stay put without the
     * GIL. The chunks are made first, then bound where the statements name them. */
    Py_BEGIN_ALLOW_THREADS
    made = job != NULL ? chunk_job_run(job) : 0;
    if (made == 0) {
        made = make_frames(params, at);
    }
    if (made == 0) {
        status = run_all(db, st, nst, params, job, &index, &code, message, sizeof message);
    }
    Py_END_ALLOW_THREADS
    if (made == 1) {
        PyErr_NoMemory();
        goto done;
    }
    if (made) { /* a value the C writer does not write: nothing ran, the codec decides */
        result = Py_NewRef(Py_None);
        goto done;
    }
    PyObject *sizes = PyList_New(nchunks);
    for (Py_ssize_t i = 0; sizes != NULL && i < nchunks; i++) {
        size_t size;
        chunk_job_blob(job, i, &size);
        PyObject *x = PyLong_FromSize_t(size);
        if (x == NULL) {
            Py_CLEAR(sizes);
            break;
        }
        PyList_SET_ITEM(sizes, i, x);
    }
    PyObject *text = PyUnicode_DecodeUTF8(message, (Py_ssize_t)strlen(message), "replace");
    if (sizes != NULL && text != NULL) {
        result = Py_BuildValue("(iniNN)", status, index, code, text, sizes);
    }
    else {
        Py_XDECREF(sizes);
        Py_XDECREF(text);
    }
done:
    for (Py_ssize_t i = 0; params != NULL && i < nparams; i++) {
        if (params[i].kind == P_FRAME) {
            free(params[i].frame);
        }
    }
    PyMem_Free(st);
    PyMem_Free(params);
    chunk_job_free(job);
    return result;
}
