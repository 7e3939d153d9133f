/* replay.recorder._scan: the per-event loop of the writer's IndexBuilder.scan, in C.
 *
 * Optional: writer.py uses it when the module is built and runs its own Python loop otherwise.
 * It gives exactly what the Python loop gives (tests/recorder/test_writer_scan.py runs both on
 * the same generated batches and compares rows, index state and exceptions), or None, having
 * changed nothing, when the batch is not the plain case it handles (an event that is not an
 * exact 8-tuple with exact int kind, step and call id, a CALL whose payload is not an exact
 * (code_id, parent) pair with an exact int parent): the Python loop then decides.
 *
 * Why: the writer thread derives the calls and exceptions rows from every event it writes,
 * holding the GIL the traced program needs. In Python the loop cost about 0.17 us per event
 * (a third of all events are CALL or RETURN on object-heavy code): 0.56 s of the writer's 4 s on
 * richards.py, which the traced program waited for.
 *
 * No Python code runs: dict and set operations on exact int keys, list stores. Only the public
 * C API is used: the module builds on every CPython replay supports.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* replay.events kinds (writer.py checks they still are, before it uses this module). */
enum { K_CALL = 0, K_LINE, K_RETURN, K_RAISE, K_HANDLED, K_UNWIND, K_YIELD, K_RESUME, K_THROW };

/* Positions in a call row (codec.CALL_FIELDS; checked by writer.py too). */
enum { R_CALL, R_PARENT, R_FUNCTION, R_THREAD, R_DEPTH, R_FIRST, R_LAST, R_EXCEPTION,
       R_GENERATOR, R_FIELDS };

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
        if (k == K_CALL) {
            PyObject *payload = PyTuple_GET_ITEM(e, 5);
            if (!PyTuple_CheckExact(payload) || PyTuple_GET_SIZE(payload) != 2
                || !PyLong_CheckExact(PyTuple_GET_ITEM(payload, 1))) {
                return 0;
            }
        }
    }
    return 1;
}

/* A fresh call row (IndexBuilder.scan's CALL branch). New reference. */
static PyObject *
new_row(PyObject *open_calls, PyObject *event, PyObject *thread_id, PyObject *one)
{
    PyObject *payload = PyTuple_GET_ITEM(event, 5);
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
    PyList_SET_ITEM(row, R_CALL, Py_NewRef(PyTuple_GET_ITEM(event, 3)));
    PyList_SET_ITEM(row, R_PARENT, Py_NewRef(has_parent ? parent : Py_None));
    PyList_SET_ITEM(row, R_FUNCTION, Py_NewRef(code_id));
    PyList_SET_ITEM(row, R_THREAD, Py_NewRef(thread_id));
    PyList_SET_ITEM(row, R_DEPTH, depth);
    PyList_SET_ITEM(row, R_FIRST, Py_NewRef(PyTuple_GET_ITEM(event, 1)));
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

/* One event of a plain batch. 0, or -1 with an exception set. */
static int
scan_event(PyObject *e, PyObject *thread_id, PyObject *open_calls, PyObject *fresh,
           PyObject *touched, PyObject *ended, PyObject *started, PyObject *switches,
           PyObject *raised, PyObject *one)
{
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(e, 0));
    PyObject *step = PyTuple_GET_ITEM(e, 1);
    PyObject *call_id = PyTuple_GET_ITEM(e, 3);
    PyObject *row;
    int rc;
    switch (kind) {
    case K_CALL:
        row = new_row(open_calls, e, thread_id, one);
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
        return PyDict_SetItem(switches, call_id, step);
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
        return PyList_Append(raised, e);
    case K_RAISE:
    case K_HANDLED:
        return PyList_Append(raised, e);
    default: /* LINE, EXTERNAL, GAP and kinds this module does not know: no row needs them */
        return 0;
    }
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

/* scan_calls(events, thread_id, open_calls, fresh, touched, ended) -> (switches, raised) or None
 * See IndexBuilder.scan: the rows of calls started, ended or changed in `events`, filed into
 * the given containers; `switches` maps call id -> step of its last YIELD or RESUME, `raised` is
 * the RAISE, HANDLED, UNWIND and THROW events in order. None if the batch is not plain (nothing
 * changed). */
static PyObject *
scan_calls(PyObject *module, PyObject *args)
{
    PyObject *events, *thread_id, *open_calls, *fresh, *touched, *ended;
    if (!PyArg_ParseTuple(args, "O!OO!O!O!O!:scan_calls", &PyList_Type, &events, &thread_id,
                          &PyDict_Type, &open_calls, &PySet_Type, &fresh, &PyDict_Type,
                          &touched, &PyList_Type, &ended)) {
        return NULL;
    }
    if (!plain_batch(events)) {
        Py_RETURN_NONE;
    }
    PyObject *started = PyList_New(0);
    PyObject *switches = PyDict_New();
    PyObject *raised = PyList_New(0);
    PyObject *one = PyLong_FromLong(1);
    PyObject *result = NULL;
    if (started != NULL && switches != NULL && raised != NULL && one != NULL) {
        Py_ssize_t n = PyList_GET_SIZE(events), i = 0;
        for (; i < n; i++) {
            if (scan_event(PyList_GET_ITEM(events, i), thread_id, open_calls, fresh, touched,
                           ended, started, switches, raised, one)
                < 0) {
                break;
            }
        }
        if (i == n && file_started(started, open_calls, touched) == 0) {
            result = PyTuple_Pack(2, switches, raised);
        }
    }
    Py_XDECREF(started);
    Py_XDECREF(switches);
    Py_XDECREF(raised);
    Py_XDECREF(one);
    return result;
}

static PyMethodDef scan_methods[] = {
    {"scan_calls", scan_calls, METH_VARARGS,
     "scan_calls(events, thread_id, open_calls, fresh, touched, ended): "
     "IndexBuilder.scan's loop; (switches, raised), or None for a batch it leaves to Python."},
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
