/* The sys.settrace core in C, `c-settrace`: the C twin of replay/recorder/settrace.py.
 *
 * Included by _ctracer.c (it uses that file's frame states, locals diff, encoders and event
 * buffer), after the sys.monitoring callbacks. It is the recorder on Python 3.11, which has no
 * sys.monitoring, and runs on 3.12 and 3.13 with `--backend settrace`. It must produce EXACTLY
 * the events of settrace.py (only `ts` differs): tests/recorder/test_core_parity.py compares the
 * two on every fidelity program. Each handler below names the part of settrace.py it mirrors.
 *
 * How it hooks in: PyEval_SetTrace(st_trace, tracer), the C-level trace function, so no Python
 * frame runs per event and the frame's fast locals are read in place (the Python core pays
 * sys.settrace's trampoline, which also copies every frame's locals into a dict at each event).
 * New threads start with the Tracer object itself as their Python trace function (threading's
 * settrace hook): its tp_call installs st_trace on that thread at its first call event. That
 * object is also what sys.gettrace() returns while recording, so a program that saves the trace
 * function and restores it later (coverage, a debugger) puts replay back, not a broken hook.
 *
 * Differences in what the program sees, against the Python core: out-of-scope frames get
 * `f_trace_lines = False` at their call event (the Python core sets it on out-of-scope callees
 * of in-scope code only), so library code costs no line callback; no frame's f_locals is
 * refreshed by replay.
 */

/* An out-of-scope frame called from in-scope code (settrace.py's `external`): its return value
 * (or exception) becomes the caller's EXTERNAL step. */
typedef struct {
    PyObject *callee;   /* "module.qualname" (strong) */
    void *caller;       /* the caller's _PyInterpreterFrame (compared, never dereferenced) */
    PyObject *last_exc; /* encoded exception of its last 'exception' event, or NULL (strong) */
} ExtFrame;

static void
ext_free(ExtFrame *x)
{
    if (x != NULL) {
        Py_XDECREF(x->callee);
        Py_XDECREF(x->last_exc);
        PyMem_Free(x);
    }
}

static void
st_release(Tracer *t)
{
    PtrMap m = t->st_externals;
    t->st_externals.e = NULL;
    t->st_externals.cap = t->st_externals.n = 0;
    for (size_t i = 0; i < m.cap; i++) {
        if (m.e[i].key != NULL) {
            ext_free(m.e[i].val);
        }
    }
    PyMem_Free(m.e);
}

#define ST_GENERATOR_FLAGS (0x20 | 0x80 | 0x200) /* CO_GENERATOR | CO_COROUTINE | CO_ASYNC_... */

/* What settrace.py reads of `code.co_code` (deoptimized) at `frame.f_lasti`: the opcode there,
 * its argument and the opcode before (-1 where there is none). -1 on error. */
typedef struct {
    int op, oparg, before;
} StOps;

static int
st_ops(_PyInterpreterFrame *f, StOps *ops)
{
    PyObject *bytes = PyCode_GetCode((PyCodeObject *)FRAME_CODE(f)); /* cached by the code */
    if (bytes == NULL) {
        return -1;
    }
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(bytes);
    Py_ssize_t n = PyBytes_GET_SIZE(bytes);
    int lasti = PyUnstable_InterpreterFrame_GetLasti(f);
    ops->op = lasti >= 0 && lasti < n ? b[lasti] : -1;
    ops->oparg = lasti >= 0 && lasti < n - 1 ? b[lasti + 1] : -1;
    ops->before = lasti >= 2 && lasti < n ? b[lasti - 2] : -1;
    Py_DECREF(bytes);
    return 0;
}

/* settrace._leave_kind: RETURN, YIELD or UNWIND for a 'return' event. -1 on error. */
static int
st_leave_kind(Tracer *t, _PyInterpreterFrame *f)
{
    StOps ops;
    if (st_ops(f, &ops) < 0) {
        return -1;
    }
    int op = ops.op;
    if (op >= 0 && (op == t->op_return || op == t->op_return_const)) {
        return K_RETURN;
    }
    int co_flags = ((PyCodeObject *)FRAME_CODE(f))->co_flags;
    if ((co_flags & ST_GENERATOR_FLAGS) && op >= 0
        && (op == t->op_yield || (op == t->op_resume && ops.before == t->op_yield))) {
        return K_YIELD;
    }
    return K_UNWIND;
}

/* settrace._is_start: whether a 'call' event starts the frame (RESUME 0) rather than resuming a
 * generator. -1 on error. */
static int
st_is_start(Tracer *t, _PyInterpreterFrame *f)
{
    StOps ops;
    if (st_ops(f, &ops) < 0) {
        return -1;
    }
    return ops.op == t->op_resume && ops.oparg == 0;
}

/* settrace.py's state_of: the frame's state if it is on the thread's stack (the frames above it
 * are dropped), else NULL without an error. A new reference. */
static FrameState *
st_state_of(CThread *th, void *key)
{
    for (int d = th->depth - 1; d >= 0; d--) {
        if (th->stack[d]->key == key) {
            FrameState *st = (FrameState *)Py_NewRef(th->stack[d]);
            th_truncate(th, d + 1);
            return st;
        }
    }
    return NULL;
}

/* "{frame.f_globals.get('__name__', '?')}.{code.co_qualname}" (a new reference). */
static PyObject *
st_callee_name(_PyInterpreterFrame *f)
{
    PyCodeObject *co = (PyCodeObject *)FRAME_CODE(f);
    PyObject *module = NULL;
    if (f->f_globals != NULL && PyDict_CheckExact(f->f_globals)) {
        module = PyDict_GetItemWithError(f->f_globals, str_name); /* str key: no user code */
        if (module == NULL && PyErr_Occurred()) {
            return NULL;
        }
    }
    if (module == NULL) {
        return PyUnicode_FromFormat("?.%U", co->co_qualname);
    }
    if (PyUnicode_CheckExact(module)) {
        return PyUnicode_FromFormat("%U.%U", module, co->co_qualname);
    }
    PyObject *shown = PyObject_Format(module, NULL); /* as the f-string does */
    if (shown == NULL) {
        return NULL;
    }
    PyObject *name = PyUnicode_FromFormat("%U.%U", shown, co->co_qualname);
    Py_DECREF(shown);
    return name;
}

/* global_trace for a frame out of scope: no line events; called from in-scope code (and not
 * replay's own code, such as the identity map's weak reference callback), it gets the
 * `external` tracer's record. */
static int
st_not_traced(Tracer *t, PyFrameObject *frame, _PyInterpreterFrame *f, CodeEntry *ce)
{
    ((struct _frame *)frame)->f_trace_lines = 0;
    _PyInterpreterFrame *caller = _PyFrame_GetFirstComplete(f->previous); /* frame.f_back */
    if (caller == NULL) {
        return 0;
    }
    CodeEntry *cce = code_get(t, FRAME_CODE(caller));
    if (cce == NULL || !cce->registered || cce->demoted >= BUDGET_CALLS) {
        return 0; /* not called by recorded code, or by code the budget demoted (no EXTERNAL) */
    }
    if (t->collecting.buf != NULL && *(const char *)t->collecting.buf) {
        return 0; /* called by the garbage collector, not by the frame (state.collecting) */
    }
    if (ce->own < 0) {
        PyObject *r = CALL_PYTHON(
            t, PyObject_CallOneArg(t->is_replay_code, ((PyCodeObject *)ce->code)->co_filename));
        int own = r == NULL ? -1 : PyObject_IsTrue(r);
        Py_XDECREF(r);
        if (own < 0) {
            return -1;
        }
        ce = code_get(t, FRAME_CODE(f)); /* re-read: Python ran */
        if (ce == NULL) {
            return 0;
        }
        ce->own = own;
    }
    if (ce->own) {
        return 0;
    }
    ExtFrame *x = PyMem_Calloc(1, sizeof(ExtFrame));
    if (x == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    x->caller = caller;
    x->callee = st_callee_name(f);
    void *old = NULL;
    if (x->callee == NULL || pm_put(&t->st_externals, f, x, &old) < 0) {
        ext_free(x);
        return -1;
    }
    ext_free(old); /* a resumed external generator: the new caller replaces the old */
    return 0;
}

/* global_trace: a 'call' event. */
static int
st_call(Tracer *t, PyFrameObject *frame, _PyInterpreterFrame *f)
{
    PyObject *code = FRAME_CODE(f);
    CodeEntry *ce = code_get(t, code);
    if (ce == NULL || !ce->registered) {
        int want = ce != NULL && ce->scope >= 0 ? ce->scope : scope_wants(t, code);
        if (want < 0) {
            return -1;
        }
        if (!want) {
            /* Remembered: settrace asks at every call (sys.monitoring disables the code). */
            if (ce == NULL && (ce = code_get_or_make(t, code)) == NULL) {
                return -1;
            }
            ce->scope = 0;
            return st_not_traced(t, frame, f, ce);
        }
        ce = code_register(t, code);
        if (ce == NULL) {
            return -1;
        }
    }
    if (ce->demoted >= BUDGET_CALLS) {
        ((struct _frame *)frame)->f_trace_lines = 0; /* the budget demoted it: no lines */
    }
    CThread *th = get_thread(t, 1);
    if (th == NULL) {
        return -1;
    }
    Py_INCREF(th);
    int rc = -1;
    PyObject *changes = NULL, *deleted = NULL, *line = NULL;
    FrameState *st = pm_pop(&t->suspended, f); /* owned */
    if (st != NULL) {
        int start = st_is_start(t, f);
        if (start != 0) { /* a new frame at a dead generator's address (or an error) */
            Py_CLEAR(st);
            if (start < 0) {
                goto done;
            }
        }
    }
    if (st != NULL) {
        /* A generator resumed: RESUME with what changed while it was suspended. */
        if (th_push(th, st) < 0 || diff_locals(t, st, f, 0, &changes, &deleted) < 0) {
            goto done;
        }
        line = frame_line(f, st->ce);
        if (line != NULL) {
            rc = emit(t, th, K_RESUME, st->call_id, line, NULL, changes, deleted, 1);
            changes = deleted = NULL;
        }
        goto done;
    }
    if (ce->demoted == BUDGET_OFF) {
        rc = 0; /* the budget turned its new calls off; resumed generators still end recorded */
        goto done;
    }
    PyObject *parent = Py_NewRef(th->depth ? th->stack[th->depth - 1]->call_id : t->zero);
    st = fs_new(t, ce, f);
    line = st != NULL ? frame_line(f, ce) : NULL;
    if (line == NULL) {
        Py_DECREF(parent);
        goto done;
    }
    Py_SETREF(st->line, Py_NewRef(line));
    if (diff_locals(t, st, f, 0, &changes, &deleted) < 0) {
        Py_DECREF(parent);
        goto done;
    }
    Py_CLEAR(deleted); /* `changes, _ = diff_locals(...)` */
    PyObject *payload = NULL;
    if (settle_unnamed(th, st, changes, 0) < 0
        || (payload = PyTuple_Pack(2, ce->code_id, parent)) == NULL || th_push(th, st) < 0) {
        Py_XDECREF(payload);
        Py_DECREF(parent);
        goto done;
    }
    Py_DECREF(parent);
    rc = emit(t, th, K_CALL, st->call_id, st->line, payload, changes, NULL, 1);
    changes = NULL;
done:
    Py_XDECREF(line);
    Py_XDECREF(changes);
    Py_XDECREF(deleted);
    Py_XDECREF(st);
    Py_DECREF(th);
    return rc;
}

/* local_trace's frame lookup: the state of an in-scope frame on this thread's stack, or NULL
 * (*pth is set either way unless an error is returned as -1). */
static int
st_current(Tracer *t, _PyInterpreterFrame *f, CThread **pth, FrameState **pst)
{
    *pst = NULL;
    CThread *th = get_thread(t, 1);
    if (th == NULL) {
        return -1;
    }
    *pth = th;
    if (th->depth && th->stack[th->depth - 1]->key == f) {
        *pst = (FrameState *)Py_NewRef(th->stack[th->depth - 1]);
        return 0;
    }
    CodeEntry *ce = code_get(t, FRAME_CODE(f));
    if (ce != NULL && ce->registered) { /* only in-scope frames are ever on the stack */
        *pst = st_state_of(th, f);
    }
    return 0;
}

/* What every local_trace event starts with: the locals that changed since the frame's previous
 * event (narrowed by touched_now), then settle_unnamed. New references, or -1 and none. */
static int
st_changes(Tracer *t, CThread *th, FrameState *st, _PyInterpreterFrame *f, int final,
           PyObject **changes, PyObject **deleted)
{
    if (diff_locals(t, st, f, 1, changes, deleted) < 0
        || settle_unnamed(th, st, *changes, final) < 0) {
        Py_CLEAR(*changes);
        Py_CLEAR(*deleted);
        return -1;
    }
    return 0;
}

/* local_trace: 'line'. */
static int
st_line(Tracer *t, CThread *th, FrameState *st, _PyInterpreterFrame *f)
{
    PyObject *changes = NULL, *deleted = NULL;
    if (st_changes(t, th, st, f, 1, &changes, &deleted) < 0) {
        return -1;
    }
    PyObject *line = frame_line(f, st->ce);
    if (line == NULL) {
        Py_XDECREF(changes);
        Py_XDECREF(deleted);
        return -1;
    }
    Py_SETREF(st->line, line);
    return emit(t, th, K_LINE, st->call_id, line, NULL, changes, deleted, 1);
}

/* local_trace: 'exception' (a RAISE step; remembered for the UNWIND that may follow). */
static int
st_exception(Tracer *t, CThread *th, FrameState *st, _PyInterpreterFrame *f, PyObject *arg)
{
    if (arg == NULL || !PyTuple_Check(arg) || PyTuple_GET_SIZE(arg) < 2) {
        PyErr_SetString(PyExc_TypeError, "an 'exception' trace event without (type, value, tb)");
        return -1;
    }
    PyObject *changes = NULL, *deleted = NULL;
    if (st_changes(t, th, st, f, 0, &changes, &deleted) < 0) {
        return -1;
    }
    PyObject *line = frame_line(f, st->ce);
    PyObject *exc = line != NULL ? encode_exception(t, PyTuple_GET_ITEM(arg, 1)) : NULL;
    if (exc == NULL) {
        Py_XDECREF(line);
        Py_XDECREF(changes);
        Py_XDECREF(deleted);
        return -1;
    }
    Py_SETREF(st->line, line);
    Py_XSETREF(st->raised_exc, Py_NewRef(exc));
    return emit(t, th, K_RAISE, st->call_id, st->line, exc, changes, deleted, 1);
}

/* local_trace: 'return' (RETURN, YIELD or UNWIND). */
static int
st_return(Tracer *t, CThread *th, FrameState *st, _PyInterpreterFrame *f, PyObject *arg)
{
    int kind = st_leave_kind(t, f);
    if (kind < 0) {
        return -1;
    }
    PyObject *changes = NULL, *deleted = NULL, *payload = NULL;
    if (st_changes(t, th, st, f, 0, &changes, &deleted) < 0) {
        return -1;
    }
    unsigned long long step = ++t->steps;
    if (kind == K_UNWIND) {
        payload = Py_NewRef(st->raised_exc != NULL ? st->raised_exc : t->unseen_exc);
    }
    else {
        payload = returned_value(t, th, st, kind, arg != NULL ? arg : Py_None, step);
    }
    if (payload == NULL) {
        goto error;
    }
    Py_CLEAR(st->raised_exc);
    if (pop_frame(t, th, st, kind) < 0) {
        goto error;
    }
    PyObject *line = frame_line(f, st->ce);
    if (line == NULL) {
        goto error;
    }
    int rc = emit_step(t, th, kind, step, st->call_id, line, payload, changes, deleted, 1);
    Py_DECREF(line);
    return rc;
error:
    Py_XDECREF(payload);
    Py_XDECREF(changes);
    Py_XDECREF(deleted);
    return -1;
}

/* external_trace: an out-of-scope callee of in-scope code raised or returned. */
static int
st_external(Tracer *t, _PyInterpreterFrame *f, int what, PyObject *arg, PyObject **charged)
{
    ExtFrame *x = pm_get(&t->st_externals, f);
    if (x == NULL) {
        return 0;
    }
    if (what == PyTrace_EXCEPTION) {
        if (arg == NULL || !PyTuple_Check(arg) || PyTuple_GET_SIZE(arg) < 2) {
            return 0;
        }
        PyObject *e = encode_exception(t, PyTuple_GET_ITEM(arg, 1)); /* no reference kept */
        if (e == NULL) {
            return -1;
        }
        Py_XSETREF(x->last_exc, e);
        return 0;
    }
    if (what != PyTrace_RETURN) {
        return 0;
    }
    int kind = st_leave_kind(t, f);
    if (kind < 0) {
        return -1;
    }
    if (kind == K_YIELD) {
        return 0; /* suspended (an awaited library coroutine) */
    }
    x = pm_pop(&t->st_externals, f);
    CThread *th = get_thread(t, 1);
    if (th == NULL) {
        ext_free(x);
        return -1;
    }
    if (!th->depth || th->stack[th->depth - 1]->key != x->caller) {
        ext_free(x);
        return 0;
    }
    FrameState *st = (FrameState *)Py_NewRef(th->stack[th->depth - 1]);
    *charged = st->ce->code; /* the caller's EXTERNAL step: its cost, as on sys.monitoring */
    Py_INCREF(th);
    int rc = -1;
    PyObject *payload = NULL;
    unsigned long long step = ++t->steps;
    PyObject *value = arg != NULL ? arg : Py_None;
    if (kind == K_UNWIND && x->last_exc != NULL) {
        payload = PyTuple_Pack(4, x->callee, Py_True, Py_None, x->last_exc);
    }
    else {
        int secret = name_is_secret(t, x->callee); /* keyring.get_password(...) */
        if (secret < 0) {
            goto done;
        }
        PyObject *v = secret ? redacted(value)
                             : encode_value(t, t->empty_str, t->slow_empty, value);
        if (v == NULL || (!secret && note_unnamed(th, step, v) < 0)) {
            Py_XDECREF(v);
            goto done;
        }
        payload = PyTuple_Pack(4, x->callee, Py_True, v, Py_None);
        Py_DECREF(v);
    }
    if (payload != NULL) {
        rc = emit_step(t, th, K_EXTERNAL, step, st->call_id, st->line, payload, NULL, NULL, 1);
    }
done:
    ext_free(x);
    Py_DECREF(st);
    Py_DECREF(th);
    return rc;
}

/* The C trace function (Py_tracefunc). Errors: an Exception of the recorder is counted and
 * dropped (0); a KeyboardInterrupt or SystemExit raised meanwhile goes to the program (-1).
 * With a budget, the event's time is charged to the frame's code object (an EXTERNAL step's to
 * its caller's), as the sys.monitoring callbacks charge theirs; a line of code the budget
 * demoted turns the frame's line events off (f_trace_lines) and records nothing. */
static int
st_trace(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
    Tracer *t = (Tracer *)obj;
    if (!t->st_on || t->state == NULL) {
        PyEval_SetTrace(NULL, NULL); /* stopped: this thread stops calling */
        return 0;
    }
    _PyInterpreterFrame *f = ((struct _frame *)frame)->f_frame;
    Py_INCREF(t);
    long long start = t->budget_on ? now_ns() : 0;
    PyObject *charged = FRAME_CODE(f); /* borrowed: the frame holds it */
    int rc = 0;
    CThread *entered = list_enter(t);
    if (what == PyTrace_CALL) {
        rc = st_call(t, frame, f);
    }
    else if (what == PyTrace_LINE || what == PyTrace_EXCEPTION || what == PyTrace_RETURN) {
        CThread *th = NULL;
        FrameState *st = NULL;
        rc = st_current(t, f, &th, &st);
        if (rc == 0 && st == NULL) {
            rc = what == PyTrace_LINE ? 0 : st_external(t, f, what, arg, &charged);
        }
        else if (rc == 0 && what == PyTrace_LINE && st->ce->demoted >= BUDGET_CALLS) {
            ((struct _frame *)frame)->f_trace_lines = 0; /* demoted while this frame ran */
            Py_DECREF(st);
        }
        else if (rc == 0) {
            Py_INCREF(th);
            rc = what == PyTrace_LINE        ? st_line(t, th, st, f)
                 : what == PyTrace_EXCEPTION ? st_exception(t, th, st, f, arg)
                                             : st_return(t, th, st, f, arg);
            Py_DECREF(th);
            Py_DECREF(st);
        }
    }
    if (rc < 0) {
        rc = absorb_error(t);
    }
    if (rc == 0 && t->budget_on && budget_charge(t, charged, start) < 0) {
        rc = -1;
    }
    list_leave(t, entered); /* after the budget's review too: it may write GAP steps */
    Py_DECREF(t);
    return rc;
}

/* tracer(frame, event, arg): the Tracer as a Python trace function. A new thread calls it
 * first (threading.settrace), and so does a thread whose program put back the trace function
 * sys.gettrace() gave it: it installs st_trace on the thread at a 'call' event and handles the
 * event. Returns itself, as a trace function that wants the frame's events. */
static PyObject *
tracer_call(Tracer *t, PyObject *args, PyObject *kwds)
{
    PyObject *frame, *event, *arg;
    if (!PyArg_ParseTuple(args, "O!UO:Tracer", &PyFrame_Type, &frame, &event, &arg)) {
        return NULL;
    }
    static const char *const names[] = {"call", "exception", "line", "return"};
    static const int whats[] = {PyTrace_CALL, PyTrace_EXCEPTION, PyTrace_LINE, PyTrace_RETURN};
    for (int i = 0; i < 4; i++) {
        if (PyUnicode_CompareWithASCIIString(event, names[i]) == 0) {
            if (!t->st_on) {
                Py_RETURN_NONE;
            }
            if (whats[i] == PyTrace_CALL) {
                PyEval_SetTrace(st_trace, (PyObject *)t);
            }
            if (st_trace((PyObject *)t, (PyFrameObject *)frame, whats[i],
                         arg == Py_None && whats[i] != PyTrace_RETURN ? NULL : arg)
                < 0) {
                return NULL;
            }
            return Py_NewRef((PyObject *)t);
        }
    }
    return Py_NewRef((PyObject *)t); /* opcode events and the like: nothing to do */
}

/* settrace_start(opcodes, is_replay_code, collecting): start on this thread (threading.settrace
 * is the caller's). `opcodes` maps RETURN_VALUE, RETURN_CONST, YIELD_VALUE and RESUME to their
 * numbers; `is_replay_code(filename)` tells replay's own code (scope.py); `collecting` is
 * state.collecting: 1 while the garbage collector runs, then the count of collections, which
 * the fingerprinter's log of parts reads (fp_event_begin). */
static PyObject *
tracer_settrace_start(Tracer *t, PyObject *args)
{
    PyObject *opcodes, *is_replay_code, *collecting;
    if (!PyArg_ParseTuple(args, "O!OO:settrace_start", &PyDict_Type, &opcodes, &is_replay_code,
                          &collecting)) {
        return NULL;
    }
    if (watch_collecting(t, collecting) < 0) {
        return NULL;
    }
    Py_XSETREF(t->is_replay_code, Py_NewRef(is_replay_code));
    static const char *const names[] = {"RETURN_VALUE", "RETURN_CONST", "YIELD_VALUE", "RESUME"};
    int *slots[] = {&t->op_return, &t->op_return_const, &t->op_yield, &t->op_resume};
    for (int i = 0; i < 4; i++) {
        PyObject *v = PyDict_GetItemString(opcodes, names[i]);
        *slots[i] = v != NULL && PyLong_Check(v) ? (int)PyLong_AsLong(v) : -1;
    }
    if (t->unseen_exc == NULL) {
        t->unseen_exc = untrack(Py_BuildValue("(ssO)", "BaseException",
                                              "(the exception was not seen by settrace)",
                                              Py_None));
        if (t->unseen_exc == NULL) {
            return NULL;
        }
    }
    PyObject *is_secret = PyObject_GetAttrString(t->state, "is_secret");
    if (is_secret == NULL) {
        PyErr_Clear();
    }
    Py_XSETREF(t->state_is_secret, is_secret);
    t->st_on = 1;
    PyEval_SetTrace(st_trace, (PyObject *)t);
    Py_RETURN_NONE;
}

/* settrace_stop(): stop on this thread; other threads stop at their next event. */
static PyObject *
tracer_settrace_stop(Tracer *t, PyObject *Py_UNUSED(ignored))
{
    t->st_on = 0;
    PyThreadState *tstate = PyThreadState_GET();
    if (tstate->c_tracefunc == st_trace) {
        PyEval_SetTrace(NULL, NULL);
    }
    st_release(t);
    Py_RETURN_NONE;
}
