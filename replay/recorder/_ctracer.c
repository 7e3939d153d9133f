/* replay's C accelerator: the sys.monitoring core (PEP 669) in C, for CPython 3.12 and 3.13, and
 * the sys.settrace core for 3.11 to 3.13 (_ctracer_settrace.c.h, included at the end).
 *
 * This file is the C twin of replay/recorder/sysmon.py and must produce EXACTLY the events that
 * the pure-Python core produces (same kinds, steps, call ids, lines, payloads, changes/deleted;
 * only the `ts` values differ): tests/recorder/test_core_parity.py checks it on every fidelity
 * program. Read sysmon.py and state.py (diff_locals) first: every callback below names the Python
 * function it mirrors, and keeps its order of side effects (counters, encoder calls, the
 * identity map's serials follow the order in which values are encoded).
 *
 * What lives in C: the per-thread stacks of frame states, the locals snapshots, the step and call
 * counters, the code table (scope decisions, line tables), the table of suspended generator
 * frames (state.suspended is unused), the event tuples. What stays in Python and is called from
 * here: the value encoder for non-atoms (state.encode_named, encode_exception), the code registry
 * (state.register_code, once per code object), the scope (state.scope.wants, once per code
 * object), the thread registry (state.thread_state, once per thread), the hand-off to the writer
 * (state.hand_off, once per BATCH_EVENTS events), faults (state.fault) and callee_name for callables
 * this file does not know.
 *
 * Frames are read through CPython's internal frame structure (_PyInterpreterFrame): the fast
 * locals array, the frame's position in the stack and its instruction pointer. That is why the
 * internal header is included, guarded to 3.11 to 3.13 whose layouts were checked (see
 * read_slot/frame_line); any other version builds a module whose import fails, and replay falls
 * back to the Python core. No frame object is created on the hot path, no frame or user object is
 * kept beyond a callback (trap 2), except what the Python core keeps too: the snapshot's venc of
 * an atom IS the atom (so its id cannot be reused while remembered, as in state.py).
 *
 * Safety rules followed throughout: every Python API result is checked; an Exception raised
 * inside a callback is counted through state.fault() and swallowed (KeyboardInterrupt,
 * SystemExit and other non-Exception BaseExceptions propagate into the program, as in the Python
 * core); objects that can be freed by re-entrant code (frame states, when Python code runs
 * during a callback) are reference counted and held while used.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED) \
    && !defined(PYPY_VERSION)
#define RT_SUPPORTED 1
/* Internal headers: _PyInterpreterFrame (fast locals, previous frame, frame object). Only static
 * inline helpers and struct fields are used from them, no internal symbol is linked. */
#define Py_BUILD_CORE 1
#include "internal/pycore_frame.h"
#if PY_VERSION_HEX < 0x030C0000
#include "internal/pycore_code.h" /* _PyLocals_GetKind, CO_FAST_* (pycore_frame.h has them on 3.12+) */
#endif
#undef Py_BUILD_CORE
#include "_eventbuffer.h"
#include "_fingerprint.h"
#else
#define RT_SUPPORTED 0
#endif

#if RT_SUPPORTED

#if PY_VERSION_HEX < 0x030C0000
/* 3.12 API that 3.11 lacks, written with what 3.11 has. Only the settrace core runs on 3.11. */
#define CO_FAST_HIDDEN 0x10 /* 3.12's inlined-comprehension locals: none on 3.11 */

static inline PyObject *
PyErr_GetRaisedException(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL) {
        return NULL;
    }
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
}

static inline void
PyErr_SetRaisedException(PyObject *exc)
{
    if (exc == NULL) {
        PyErr_Clear();
        return;
    }
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
}

static inline _PyInterpreterFrame *
_PyFrame_GetFirstComplete(_PyInterpreterFrame *f)
{
    while (f != NULL && _PyFrame_IsIncomplete(f)) {
        f = f->previous;
    }
    return f;
}

static inline _PyInterpreterFrame *
_PyThreadState_GetFrame(PyThreadState *tstate)
{
    return _PyFrame_GetFirstComplete(tstate->cframe->current_frame);
}

static inline int
PyUnstable_InterpreterFrame_GetLasti(_PyInterpreterFrame *f)
{
    return _PyInterpreterFrame_LASTI(f) * (int)sizeof(_Py_CODEUNIT);
}
#endif

#if PY_VERSION_HEX < 0x030C0000
#define RT_PY311 1
#else
#define RT_PY311 0
#endif

#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
#define RT_PY312 1
#else
#define RT_PY312 0
#endif

/* 3.11 and 3.12: a function's f_locals is a dict kept on the frame and updated in place at each
 * read (see diff_fast); the frame's code is f_code, the clock _PyTime_GetPerfCounter. */
#define RT_DICT_LOCALS (RT_PY311 || RT_PY312)

#if RT_DICT_LOCALS
#define FRAME_CODE(f) ((PyObject *)(f)->f_code)
#else
#define FRAME_CODE(f) ((f)->f_executable)
#endif

/* Event kinds (replay/events.py). */
enum { K_CALL = 0, K_LINE, K_RETURN, K_RAISE, K_HANDLED, K_UNWIND, K_YIELD, K_RESUME, K_THROW,
       K_EXTERNAL, K_GAP };

#define CO_OPTIMIZED_FLAG 0x0001

/* How a code object's locals are read (state.read_locals). */
enum { LOC_FAST, LOC_GLOBALS, LOC_FLOCALS, LOC_NONE };

/* ------------------------------------------------------------------------------------------- */
/* Small helpers                                                                               */

static inline long long
now_ns(void)
{
    /* time.perf_counter_ns(), which state.t0 comes from. */
#if RT_DICT_LOCALS
    return (long long)_PyTime_GetPerfCounter();
#else
    PyTime_t t;
    if (PyTime_PerfCounterRaw(&t) < 0) {
        return 0;
    }
    return (long long)t;
#endif
}

/* Line numbers repeat on every event: keep the int objects of the first lines. */
#define LINE_CACHE 8192
static PyObject *line_cache[LINE_CACHE];

static PyObject *
line_obj(long line)
{
    if (line < 0) {
        Py_RETURN_NONE;
    }
    if (line < LINE_CACHE) {
        PyObject *o = line_cache[line];
        if (o == NULL) {
            o = PyLong_FromLong(line);
            if (o == NULL) {
                return NULL;
            }
            line_cache[line] = o;
        }
        return Py_NewRef(o);
    }
    return PyLong_FromLong(line);
}

/* Event tuples and the tuples inside them (payloads, changes, pairs) hold only encoded values:
 * plain trees of tuples, lists, dicts and atoms made for the event, which can never be part of a
 * reference cycle. Untracking them keeps the cyclic GC from walking every buffered event: with
 * them tracked, collections took a third of the C core's time on a loop-heavy program. */
static inline PyObject *
untrack(PyObject *o)
{
    if (o != NULL && PyObject_GC_IsTracked(o)) {
        PyObject_GC_UnTrack(o);
    }
    return o;
}

/* The same for an encoded value: a venc is a tree of tuples, lists and dicts made by the encoder
 * for this value (back references are REF tags, never real cycles), kept in the snapshot and in
 * the buffered events. Left tracked, every collection of the older generations walks all of
 * them: on an object-heavy program the GC took a third of the run. Only exact tuples, lists and
 * dicts are descended into; a venc holds no other container. */
static PyObject *
untrack_venc(PyObject *o, int depth)
{
    if (o == NULL || depth > 64) {
        return o;
    }
    PyTypeObject *tp = Py_TYPE(o);
    /* A container already untracked was untracked with everything below it (here, or by the
     * collector, which only untracks a tuple or dict whose items are untracked): a part of a
     * venc shared with an earlier one (_encode.c) is not walked again. */
    if ((tp == &PyTuple_Type || tp == &PyList_Type || tp == &PyDict_Type)
        && !PyObject_GC_IsTracked(o)) {
        return o;
    }
    if (tp == &PyTuple_Type) {
        PyObject_GC_UnTrack(o);
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(o); i++) {
            untrack_venc(PyTuple_GET_ITEM(o, i), depth + 1);
        }
    }
    else if (tp == &PyList_Type) {
        PyObject_GC_UnTrack(o);
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(o); i++) {
            untrack_venc(PyList_GET_ITEM(o, i), depth + 1);
        }
    }
    else if (tp == &PyDict_Type) {
        PyObject_GC_UnTrack(o);
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(o, &pos, &k, &v)) {
            untrack_venc(v, depth + 1);
        }
    }
    return o;
}

/* A pointer -> pointer hash table (open addressing, linear probing, backward-shift deletion).
 * Callers never keep a pointer into `e` across a call into Python: another thread may grow the
 * table while this one waits for the GIL. */
typedef struct {
    void *key;
    void *val;
} PtrEntry;

typedef struct {
    PtrEntry *e;
    size_t cap; /* a power of two, or 0 */
    size_t n;
} PtrMap;

static inline size_t
ptr_hash(const void *k)
{
    uint64_t x = (uint64_t)(uintptr_t)k;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

static void *
pm_get(PtrMap *m, const void *key)
{
    if (m->cap == 0) {
        return NULL;
    }
    size_t mask = m->cap - 1;
    for (size_t i = ptr_hash(key) & mask;; i = (i + 1) & mask) {
        if (m->e[i].key == key) {
            return m->e[i].val;
        }
        if (m->e[i].key == NULL) {
            return NULL;
        }
    }
}

static int
pm_grow(PtrMap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    PtrEntry *e = PyMem_Calloc(cap, sizeof(PtrEntry));
    if (e == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t j = 0; j < m->cap; j++) {
        if (m->e[j].key != NULL) {
            size_t i = ptr_hash(m->e[j].key) & (cap - 1);
            while (e[i].key != NULL) {
                i = (i + 1) & (cap - 1);
            }
            e[i] = m->e[j];
        }
    }
    PyMem_Free(m->e);
    m->e = e;
    m->cap = cap;
    return 0;
}

/* Insert or replace; *old receives the replaced value (or NULL). */
static int
pm_put(PtrMap *m, void *key, void *val, void **old)
{
    *old = NULL;
    if ((m->n + 1) * 2 > m->cap && pm_grow(m) < 0) {
        return -1;
    }
    size_t mask = m->cap - 1;
    size_t i = ptr_hash(key) & mask;
    while (m->e[i].key != NULL) {
        if (m->e[i].key == key) {
            *old = m->e[i].val;
            m->e[i].val = val;
            return 0;
        }
        i = (i + 1) & mask;
    }
    m->e[i].key = key;
    m->e[i].val = val;
    m->n++;
    return 0;
}

static void *
pm_pop(PtrMap *m, const void *key)
{
    if (m->cap == 0) {
        return NULL;
    }
    size_t mask = m->cap - 1;
    size_t i = ptr_hash(key) & mask;
    while (m->e[i].key != key) {
        if (m->e[i].key == NULL) {
            return NULL;
        }
        i = (i + 1) & mask;
    }
    void *val = m->e[i].val;
    /* Backward-shift deletion keeps every probe chain unbroken without tombstones. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (m->e[j].key == NULL) {
            break;
        }
        size_t home = ptr_hash(m->e[j].key) & mask;
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            m->e[i] = m->e[j];
            i = j;
        }
    }
    m->e[i].key = NULL;
    m->e[i].val = NULL;
    m->n--;
    return val;
}

/* ------------------------------------------------------------------------------------------- */
/* Types                                                                                       */

/* What the tracer knows about one code object: in-scope code (registered in state.codes) and
 * out-of-scope callees of in-scope code (given a local PY_RETURN event). The code object is kept
 * alive, as state.codes and sysmon._code_by_id keep it, so its address is never reused. */
typedef struct CodeEntry {
    PyObject *code;      /* strong */
    int scope;           /* 1 in scope, 0 not */
    int registered;      /* in state.codes (code_id valid) */
    int external;        /* local PY_RETURN set for it (sysmon's `externals`) */
    int loc_mode;        /* LOC_* */
    int is_module;       /* co_name == "<module>" (FrameState.is_module) */
    int nslots;          /* co_nlocalsplus */
    int firstlineno;
    PyObject *code_id;   /* int, or NULL until registered */
    PyObject *names;     /* co_localsplusnames */
    unsigned char *kinds;
    unsigned char *slow; /* per slot: the name needs the Python encoder (secret, fault hook) */
    int *lines;          /* code unit index -> line, -1 for none; built on first use */
    Py_ssize_t nunits;
    PyObject *info;      /* its CodeInfo (state.codes), once registered */
    int secret_name;     /* state.is_secret(info.name): -1 not asked yet */
    PyObject *touched;   /* line -> CodeInfo.touched(line), for lines before firstlineno */
    /* CodeInfo.touched(line) by line - firstlineno, filled as lines are met: the names, and
     * which of the first 64 slots they name (TouchedLine), in blocks of TOUCHED_BLOCK lines
     * that never move (frames and diffs hold pointers into them). */
    struct TouchedLine **touched_blocks;
    int ntouched_blocks;
    long long busy_ns;   /* with a budget: time spent in its callbacks since the last review */
    int demoted;         /* how far the budget demoted it: BUDGET_LINES (not), BUDGET_CALLS,
                          * BUDGET_OFF (budget.py's levels) */
    int live;            /* its frame states whose call has not ended (an upper bound: a state
                          * dropped without its call's end is not counted down) */
    int events_off;      /* BUDGET_OFF and no frame of it recorded any more: no local events */
    int own;             /* settrace core: replay's own code (-1 not asked yet) */
} CodeEntry;

/* budget.py's levels: how much of a code object is recorded. */
enum { BUDGET_LINES = 0, BUDGET_CALLS = 1, BUDGET_OFF = 2 };

/* A line's answer to CodeInfo.touched: `names` (strong; NULL not asked yet, Py_None every
 * name) and, where the code has at most 64 slots, `slots`, the bit of each slot whose name is
 * in it: a line's check then tests a bit per slot, not a set (every line of every frame). */
typedef struct TouchedLine {
    PyObject *names;
    uint64_t slots;
    int by_slot;
    int quiet; /* CodeInfo.quiet(line): the log of parts may outlast the line (fp_carry_from) */
} TouchedLine;

#define TOUCHED_BLOCK 64

typedef struct {
    void *id;        /* the object the name was bound to (never dereferenced) */
    PyObject *venc;  /* its venc (strong), NULL when the name is not in the snapshot */
    uint64_t fp;     /* its content fingerprint when venc was confirmed, 0 if none (see
                      * may_have_changed) */
    uint64_t rechecked_fp; /* recheck_untouched_fast's fingerprint of the venc it parked for
                            * this slot, which merge_rechecked_fast makes the slot's */
} Slot;

typedef struct Tracer Tracer;

/* A call into Python from the tracer: Python code may let another thread run, which may change
 * what the walks of this callback read, so the fingerprinter's log of parts starts again after
 * it (log_begin). Every call into Python from a callback goes through here. */
#define CALL_PYTHON(t, call) ((t)->fp.outside_calls++, (call))

/* FrameState (state.py) of one running or suspended in-scope frame. Reference counted so that a
 * callback can hold it while Python code (the encoder, a finalizer) runs and re-enters. */
typedef struct {
    PyObject_VAR_HEAD
    void *key;            /* its _PyInterpreterFrame (stable while it runs or is suspended) */
    CodeEntry *ce;
    int has_info;         /* FrameState.info is not None: the code was registered at creation */
    long touched_for;     /* the line touched_names was looked up for (0: none yet) */
    long epoch;           /* FrameState.epoch: t->switches at the frame's last touched_now */
    PyObject *touched_names; /* borrowed from ce's table (which keeps every answer) */
    const TouchedLine *touched_line; /* that answer's entry with its slots, or NULL */
    PyObject *call_id;    /* int */
    PyObject *pending;    /* callee name of an incomplete external call, or NULL */
    void *pending_code;   /* that callee's code object, or NULL */
    PyObject *line;       /* st.line: int or None */
    PyObject *snap;       /* LOC_GLOBALS/LOC_FLOCALS: dict name -> (id, venc), as state.py */
    PyObject *raised_exc; /* settrace core: the encoded exception of its last RAISE, or NULL */
    int nslots;
    int norder;           /* LOC_FAST: slots in snapshot (insertion) order, see diff_fast */
    int *order;
    Slot slots[1];
} FrameState;

static PyTypeObject FrameState_Type;

/* Between a thread and the writer, for a recording of object records: whether the thread is
 * inside one of the core's callbacks (`busy`, a depth), and how many times the writer took its
 * list while it was not (`taken`). A list is cut only between two events (versions.py: an
 * event's records and its append must go to the same list), so the writer takes the list of a
 * live thread only while `busy` is 0 (take_idle_list), and the thread, at its next callback,
 * lets go of the list and table it held (th_sync). Owned by a capsule (LIST_GUARD_CAPSULE) that
 * the thread's CThread and its Python ThreadState (`guard`) both hold: the writer reaches it
 * from the ThreadState, and it outlives whichever goes first. */
typedef struct {
    int busy;
    unsigned int taken;
} ListGuard;

#define LIST_GUARD_CAPSULE "replay.recorder._ctracer.ListGuard"

typedef struct {
    PyObject_HEAD
    Tracer *tracer;       /* strong */
    uint64_t gen;
    PyObject *pyts;       /* the Python ThreadState (strong) */
    EventBuffer *events;  /* pyts.events (strong; refetched after each hand-off) */
    FrameState **stack;   /* strong refs */
    int depth;
    int cap;
    /* ThreadState.unnamed (state.note_unnamed): (step, id of the value) of recent RETURN and
     * EXTERNAL steps whose value is a bare str/bytes, still open to redaction. Kept here and
     * mirrored to pyts.unnamed whenever it changes (the writer and hand_off read it there). */
    int n_unnamed;
    struct {
        unsigned long long step;
        void *id;
    } unnamed[8];
    uint64_t nodes_mark; /* tracer->nodes_encoded at this thread's last hand-off */
    /* A recording of object records: pyts.written, the table of the records this thread's
     * list holds (strong, NULL until read; read again after each hand-off, which replaces it). */
    PyObject *written;
    ListGuard *guard;      /* owned by guard_capsule */
    PyObject *guard_capsule; /* strong; also pyts.guard */
    unsigned int taken_seen; /* guard->taken when this thread last synced its list */
} CThread;

static PyTypeObject CThread_Type;

struct Tracer {
    PyObject_HEAD
    uint64_t gen;
    /* From the recording state and encoder (strong refs). */
    PyObject *state;
    PyObject *encode_named;
    PyObject *encode_exception;
    PyObject *register_code;
    PyObject *scope_wants;
    PyObject *thread_state;
    PyObject *hand_off;
    PyObject *fault;
    PyObject *callee_name;
    PyObject *is_secret;      /* or NULL */
    PyObject *inject;         /* REPLAY_INJECT_FAULT name, or NULL */
    /* state.versions.records_for (a recording of object records, versions.py), or NULL: the
     * changes of each diff are turned into entries and records (to_records), and a list is cut
     * where the writer asked for it (its buffer's cut_requested), after an event, never between
     * a diff and its append. */
    PyObject *records_for;
    /* From bind(). */
    PyObject *set_local_events;
    PyObject *disable;
    PyObject *tool;
    PyObject *local_mask;
    PyObject *return_mask;
    /* Encoder rule for atoms (SnapshotEncoder.encode_named's fast path). */
    int atoms_fast;
    Py_ssize_t max_string;
    int int_digits;
    long long int_limit;      /* 10**int_digits when int_digits <= 18 */
    PyObject *big, *nbig;     /* 10**int_digits and its negation */
    Fingerprinter fp;         /* content fingerprints of non-atoms (_fingerprint.c) */
    int slow_empty;           /* the name "" needs the Python encoder */
    PyObject *slow_names;     /* name -> bool, for names met outside fast locals */
    PyObject *state_is_secret; /* state.is_secret (callee and function names), from bind() */
    PyObject *secret_names;   /* name -> bool, its answers */
    long long t0;
    Py_ssize_t batch;
    uint64_t nodes_encoded;   /* venc nodes built so far (about): see emit_step */
    uint64_t steps;
    uint64_t calls;
    PtrMap codes;             /* code object -> CodeEntry* */
    PtrMap suspended;         /* frame key -> FrameState* (strong) */
    PyObject *zero;
    PyObject *empty_str;
    PyObject *tls_key;
    PyObject *type_qualname;  /* type.__dict__['__qualname__'] */
    PyObject *type_module;    /* type.__dict__['__module__'] */
    /* The last thread seen (most programs run one thread): its CThread, valid while the Python
     * thread state at that address still has that id (a new thread state gets a new id). */
    PyThreadState *last_tstate;
    uint64_t last_tid;
    CThread *last_th;
    /* state.switch: the thread that last asked touched_now (compared, never dereferenced) and
     * how many times that changed. */
    CThread *switch_th;
    long switches;
    /* The overhead budget (budget.py, `--max-overhead`), off unless set_budget() was called. */
    int budget_on;
    int reviewing;
    long long review_ns;      /* length of a review window */
    long long window_start;   /* now_ns() when the current window began */
    PyObject *budget_review;  /* OverheadBudget.review */
    PyObject *call_mask;      /* the local events of a demoted code object */
    PyObject *gap_budget;     /* "budget", the reason of its GAP steps */
    /* The settrace core (_ctracer_settrace.c.h), set up by settrace_start(). */
    int st_on;
    int op_return, op_return_const, op_yield, op_resume; /* opcode numbers, -1 if none */
    PyObject *is_replay_code; /* scope.is_replay_code(filename) */
    Py_buffer collecting;     /* state.collecting: 1 while the garbage collector runs */
    PtrMap st_externals;      /* out-of-scope callee frame -> ExtFrame* */
    PyObject *unseen_exc;     /* settrace._UNSEEN_EXCEPTION */
};

/* With this many venc nodes built per event of a batch on average, a thread's list is handed
 * off before it holds `batch` events (emit_step). */
#define BATCH_NODES_PER_EVENT 2

static PyTypeObject Tracer_Type;

static uint64_t next_gen = 1;

/* types.MethodWrapperType (its C symbol is not exported on 3.13). */
static PyTypeObject *method_wrapper_type;

static PyObject *str_qualname, *str_name, *str_events, *str_co_lines, *str_co_filename;
/* Attributes read per event in a recording of object records (versions.py). */
static PyObject *str_written, *str_guard, *str_unnamed, *str_cut_requested;
static PyObject *empty_names; /* frozenset(): state._NOTHING */
static const TouchedLine no_names = {NULL, 0, 1}; /* empty_names by slot */

/* ------------------------------------------------------------------------------------------- */
/* Faults                                                                                      */

/* After a failed call: an Exception is the recorder's own fault, counted by state.fault() and
 * cleared (returns 0); anything else (KeyboardInterrupt, SystemExit) belongs to the program and
 * stays raised (returns -1). Mirrors `except Exception as exc: fault(exc)` in sysmon.py. */
static int
absorb_error(Tracer *t)
{
    PyObject *exc = PyErr_GetRaisedException();
    if (exc == NULL) {
        return 0;
    }
    if (!PyErr_GivenExceptionMatches(exc, PyExc_Exception)) {
        PyErr_SetRaisedException(exc);
        return -1;
    }
    PyObject *r = CALL_PYTHON(t, PyObject_CallOneArg(t->fault, exc));
    if (r == NULL) {
        /* The fault counter itself failed: nothing sensible left to do but drop it, unless it
         * is the program's KeyboardInterrupt arriving at that moment. */
        PyObject *exc2 = PyErr_GetRaisedException();
        if (exc2 != NULL && !PyErr_GivenExceptionMatches(exc2, PyExc_Exception)) {
            Py_DECREF(exc);
            PyErr_SetRaisedException(exc2);
            return -1;
        }
        Py_XDECREF(exc2);
    }
    Py_XDECREF(r);
    Py_DECREF(exc);
    return 0;
}

/* The value a callback returns after an error in its body. */
static PyObject *
callback_error(Tracer *t)
{
    if (absorb_error(t) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------------------- */
/* Code entries                                                                                */

static void
code_entry_free(CodeEntry *ce)
{
    Py_XDECREF(ce->code);
    Py_XDECREF(ce->code_id);
    Py_XDECREF(ce->names);
    Py_XDECREF(ce->info);
    Py_XDECREF(ce->touched);
    for (int b = 0; b < ce->ntouched_blocks; b++) {
        for (int i = 0; ce->touched_blocks[b] != NULL && i < TOUCHED_BLOCK; i++) {
            Py_XDECREF(ce->touched_blocks[b][i].names);
        }
        PyMem_Free(ce->touched_blocks[b]);
    }
    PyMem_Free(ce->touched_blocks);
    PyMem_Free(ce->kinds);
    PyMem_Free(ce->slow);
    PyMem_Free(ce->lines);
    PyMem_Free(ce);
}

static CodeEntry *
code_entry_new(Tracer *t, PyObject *code)
{
    PyCodeObject *co = (PyCodeObject *)code;
    CodeEntry *ce = PyMem_Calloc(1, sizeof(CodeEntry));
    if (ce == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    ce->code = Py_NewRef(code);
    ce->scope = -1;
    ce->own = -1;
    ce->secret_name = -1;
    ce->firstlineno = co->co_firstlineno;
    ce->is_module = PyUnicode_Check(co->co_name)
                    && PyUnicode_CompareWithASCIIString(co->co_name, "<module>") == 0;
    ce->nslots = co->co_nlocalsplus;
    ce->names = Py_NewRef(co->co_localsplusnames);
    int hidden = 0;
    if (ce->nslots > 0) {
        ce->kinds = PyMem_Malloc((size_t)ce->nslots);
        if (ce->kinds == NULL) {
            code_entry_free(ce);
            PyErr_NoMemory();
            return NULL;
        }
        for (int i = 0; i < ce->nslots; i++) {
            ce->kinds[i] = (unsigned char)_PyLocals_GetKind(co->co_localspluskinds, i);
            if (ce->kinds[i] & CO_FAST_HIDDEN) {
                hidden = 1;
            }
        }
    }
    /* state.read_locals, decided once per code object. */
    if (co->co_flags & CO_OPTIMIZED_FLAG) {
        /* Hidden fast locals (inlined comprehensions) only exist outside functions; should one
         * appear in a function, f_locals itself is read. */
        ce->loc_mode = hidden ? LOC_FLOCALS : LOC_FAST;
    }
    else if (ce->is_module) {
        ce->loc_mode = LOC_GLOBALS;
    }
    else if (RT_PY312 && co->co_nlocals) {
        ce->loc_mode = LOC_NONE;
    }
    else {
        ce->loc_mode = LOC_FLOCALS;
    }
    (void)t;
    return ce;
}

static inline CodeEntry *
code_get(Tracer *t, PyObject *code)
{
    return (CodeEntry *)pm_get(&t->codes, code);
}

/* The entry of `code`, created (unregistered, scope unknown) if missing. */
static CodeEntry *
code_get_or_make(Tracer *t, PyObject *code)
{
    CodeEntry *ce = code_get(t, code);
    if (ce != NULL) {
        return ce;
    }
    ce = code_entry_new(t, code);
    if (ce == NULL) {
        return NULL;
    }
    void *old;
    if (pm_put(&t->codes, code, ce, &old) < 0) {
        code_entry_free(ce);
        return NULL;
    }
    return ce;
}

/* state.scope.wants(code.co_filename) as 1/0, -1 on error. */
static int
scope_wants(Tracer *t, PyObject *code)
{
    PyObject *filename = PyObject_GetAttr(code, str_co_filename);
    if (filename == NULL) {
        return -1;
    }
    PyObject *r = CALL_PYTHON(t, PyObject_CallOneArg(t->scope_wants, filename));
    Py_DECREF(filename);
    if (r == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(r);
    Py_DECREF(r);
    return truth;
}

static int
set_local_events(Tracer *t, PyObject *code, PyObject *mask)
{
    PyObject *args[3] = {t->tool, code, mask};
    PyObject *r = CALL_PYTHON(t, PyObject_Vectorcall(t->set_local_events, args, 3, NULL));
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* py_start's registration: state.register_code(code), then its local events. */
static CodeEntry *
code_register(Tracer *t, PyObject *code)
{
    CodeEntry *ce = code_get_or_make(t, code);
    if (ce == NULL) {
        return NULL;
    }
    PyObject *info = CALL_PYTHON(t, PyObject_CallOneArg(t->register_code, code));
    if (info == NULL) {
        return NULL;
    }
    PyObject *code_id = PyObject_GetAttrString(info, "code_id");
    if (code_id == NULL) {
        Py_DECREF(info);
        return NULL;
    }
    /* Re-read: the call above ran Python code, another thread may have grown the table. */
    ce = code_get(t, code);
    if (ce == NULL) {
        Py_DECREF(info);
        Py_DECREF(code_id);
        PyErr_SetString(PyExc_RuntimeError, "code entry vanished");
        return NULL;
    }
    Py_XSETREF(ce->code_id, code_id);
    Py_XSETREF(ce->info, info);
    ce->registered = 1;
    ce->scope = 1;
    /* sys.monitoring only (the settrace core is never bound to a tool). */
    if (t->set_local_events != NULL && set_local_events(t, code, t->local_mask) < 0) {
        return NULL;
    }
    return ce;
}

/* The line table of a code object (CodeInfo.line_of in state.py), from co_lines(). */
static int
code_lines(CodeEntry *ce)
{
    if (ce->lines != NULL) {
        return 0;
    }
    PyObject *it = PyObject_CallMethodNoArgs(ce->code, str_co_lines);
    if (it == NULL) {
        return -1;
    }
    PyObject *ranges = PySequence_List(it);
    Py_DECREF(it);
    if (ranges == NULL) {
        return -1;
    }
    Py_ssize_t nbytes = 0;
    Py_ssize_t n = PyList_GET_SIZE(ranges);
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *r = PyList_GET_ITEM(ranges, k);
        if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 3) {
            Py_DECREF(ranges);
            PyErr_SetString(PyExc_TypeError, "unexpected co_lines() item");
            return -1;
        }
        Py_ssize_t end = PyLong_AsSsize_t(PyTuple_GET_ITEM(r, 1));
        if (end == -1 && PyErr_Occurred()) {
            Py_DECREF(ranges);
            return -1;
        }
        if (end > nbytes) {
            nbytes = end;
        }
    }
    Py_ssize_t nunits = nbytes / 2 + 1;
    int *lines = PyMem_Malloc(sizeof(int) * (size_t)nunits);
    if (lines == NULL) {
        Py_DECREF(ranges);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t u = 0; u < nunits; u++) {
        lines[u] = -1;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *r = PyList_GET_ITEM(ranges, k);
        Py_ssize_t start = PyLong_AsSsize_t(PyTuple_GET_ITEM(r, 0));
        Py_ssize_t end = PyLong_AsSsize_t(PyTuple_GET_ITEM(r, 1));
        PyObject *lo = PyTuple_GET_ITEM(r, 2);
        long line = lo == Py_None ? -1 : PyLong_AsLong(lo);
        if (PyErr_Occurred()) {
            PyMem_Free(lines);
            Py_DECREF(ranges);
            return -1;
        }
        for (Py_ssize_t at = start; at < end && at / 2 < nunits; at += 2) {
            if (at >= 0) {
                lines[at / 2] = (int)line;
            }
        }
    }
    Py_DECREF(ranges);
    ce->lines = lines;
    ce->nunits = nunits;
    return 0;
}

/* CodeInfo.line_of(offset): the line, or -1 for None. -2 on error. */
static long
line_of(CodeEntry *ce, long offset)
{
    if (code_lines(ce) < 0) {
        return -2;
    }
    if (offset < 0 || (offset & 1) || offset / 2 >= ce->nunits) {
        return -1;
    }
    return ce->lines[offset / 2];
}

/* ------------------------------------------------------------------------------------------- */
/* Frames                                                                                      */

/* sys._getframe(1) as seen from a Python callback: the instrumented frame. */
static inline _PyInterpreterFrame *
cur_frame(void)
{
    return _PyThreadState_GetFrame(PyThreadState_GET());
}

/* frame.f_lineno (a new reference: int, or None when the instruction has no line). Same rule
 * as PyFrame_GetLineNumber: a line set by a settrace debugger on the frame object wins; else the
 * line of the last instruction, from the code's line table instead of PyCode_Addr2Line's scan. */
static PyObject *
frame_line(_PyInterpreterFrame *f, CodeEntry *ce)
{
    PyFrameObject *fo = f->frame_obj;
    if (fo != NULL && fo->f_lineno > 0) { /* 3.13 marks "not computed yet" with -1 */
        return line_obj(fo->f_lineno);
    }
    int lasti = PyUnstable_InterpreterFrame_GetLasti(f);
    if (lasti < 0) {
        return line_obj(ce->firstlineno);
    }
    long line = line_of(ce, lasti);
    if (line == -2) {
        return NULL;
    }
    return line_obj(line);
}

/* ------------------------------------------------------------------------------------------- */
/* Frame states and threads                                                                    */

static FrameState *
fs_new(Tracer *t, CodeEntry *ce, void *key)
{
    int nslots = ce->loc_mode == LOC_FAST ? ce->nslots : 0;
    FrameState *st = PyObject_NewVar(FrameState, &FrameState_Type, nslots);
    if (st == NULL) {
        return NULL;
    }
    st->key = key;
    st->ce = ce;
    ce->live++;
    st->has_info = ce->registered;
    st->touched_for = 0;
    st->touched_names = NULL;
    st->touched_line = NULL;
    st->epoch = t->switches;
    st->pending = NULL;
    st->pending_code = NULL;
    st->line = Py_NewRef(t->zero);
    st->snap = NULL;
    st->raised_exc = NULL;
    st->nslots = nslots;
    st->norder = 0;
    st->order = (int *)&st->slots[nslots];
    for (int i = 0; i < nslots; i++) {
        st->slots[i].id = NULL;
        st->slots[i].venc = NULL;
        st->slots[i].fp = 0;
    }
    /* FrameState(next(calls), ...): the call counter is consumed here, as in Python. */
    st->call_id = PyLong_FromUnsignedLongLong(++t->calls);
    if (st->call_id == NULL) {
        Py_DECREF(st);
        return NULL;
    }
    return st;
}

static void
fs_dealloc(FrameState *st)
{
    for (int i = 0; i < st->nslots; i++) {
        Py_XDECREF(st->slots[i].venc);
    }
    Py_XDECREF(st->call_id);
    Py_XDECREF(st->pending);
    Py_XDECREF(st->line);
    Py_XDECREF(st->snap);
    Py_XDECREF(st->raised_exc);
    PyObject_Free(st);
}

static PyTypeObject FrameState_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "replay.recorder._ctracer.FrameState",
    .tp_basicsize = offsetof(FrameState, slots),
    .tp_itemsize = sizeof(Slot) + sizeof(int),
    .tp_dealloc = (destructor)fs_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The recorder's state of one in-scope frame (internal).",
};

static int
th_push(CThread *th, FrameState *st)
{
    if (th->depth == th->cap) {
        int cap = th->cap ? th->cap * 2 : 32;
        FrameState **s = PyMem_Realloc(th->stack, sizeof(FrameState *) * (size_t)cap);
        if (s == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        th->stack = s;
        th->cap = cap;
    }
    th->stack[th->depth++] = (FrameState *)Py_NewRef(st);
    return 0;
}

/* Drop the states above `depth` (`del stack[depth:]`). */
static void
th_truncate(CThread *th, int depth)
{
    while (th->depth > depth) {
        FrameState *st = th->stack[--th->depth];
        Py_DECREF(st);
    }
}

static void
guard_capsule_free(PyObject *capsule)
{
    PyMem_Free(PyCapsule_GetPointer(capsule, LIST_GUARD_CAPSULE));
}

static void
th_dealloc(CThread *th)
{
    if (th->tracer != NULL && th->tracer->last_th == th) {
        th->tracer->last_th = NULL;
        th->tracer->last_tstate = NULL;
    }
    if (th->tracer != NULL && th->tracer->switch_th == th) {
        th->tracer->switch_th = NULL; /* a new thread at this address still counts as a switch */
    }
    th_truncate(th, 0);
    PyMem_Free(th->stack);
    Py_XDECREF(th->events);
    Py_XDECREF(th->written);
    Py_XDECREF(th->guard_capsule);
    Py_XDECREF(th->pyts);
    Py_XDECREF(th->tracer);
    PyObject_Free(th);
}

static PyTypeObject CThread_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "replay.recorder._ctracer.ThreadState",
    .tp_basicsize = sizeof(CThread),
    .tp_dealloc = (destructor)th_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The recorder's state of one thread (internal).",
};

/* The calling thread's state (`local.ts`). With create, a thread seen for the first time gets
 * one through state.thread_state() (`except AttributeError: ts = thread_state()`); without, NULL
 * with no error is returned for it. The CThread lives in the thread state's dict, so it goes away
 * with the thread, like the threading.local of the Python core. */
static CThread *
get_thread_of(Tracer *t, PyThreadState *tstate, int create)
{
    uint64_t tid = PyThreadState_GetID(tstate);
    if (t->last_tstate == tstate && t->last_tid == tid && t->last_th != NULL) {
        return t->last_th;
    }
    PyObject *dict = PyThreadState_GetDict();
    if (dict == NULL) {
        if (create) {
            PyErr_SetString(PyExc_RuntimeError, "no thread state dict");
        }
        return NULL;
    }
    PyObject *found = PyDict_GetItemWithError(dict, t->tls_key);
    if (found == NULL && PyErr_Occurred()) {
        return NULL;
    }
    if (found != NULL && Py_IS_TYPE(found, &CThread_Type) && ((CThread *)found)->gen == t->gen) {
        CThread *th = (CThread *)found;
        t->last_tstate = tstate;
        t->last_tid = tid;
        t->last_th = th;
        return th;
    }
    if (!create) {
        return NULL;
    }
    PyObject *pyts = CALL_PYTHON(t, PyObject_CallNoArgs(t->thread_state));
    if (pyts == NULL) {
        return NULL;
    }
    /* The thread's events are records (_eventbuffer.c), not the list of tuples the Python
     * cores keep: the buffer replaces that list. */
    EventBuffer *events = eb_new(t->batch);
    if (events == NULL || PyObject_SetAttr(pyts, str_events, (PyObject *)events) < 0) {
        Py_XDECREF(events);
        Py_DECREF(pyts);
        return NULL;
    }
    CThread *th = PyObject_New(CThread, &CThread_Type);
    if (th == NULL) {
        Py_DECREF(events);
        Py_DECREF(pyts);
        return NULL;
    }
    th->tracer = (Tracer *)Py_NewRef(t);
    th->gen = t->gen;
    th->pyts = pyts;
    th->events = events;
    th->stack = NULL;
    th->depth = 0;
    th->cap = 0;
    th->n_unnamed = 0;
    th->written = NULL;
    th->taken_seen = 0;
    /* Made inside a callback: busy until that callback returns (list_leave). */
    th->guard = PyMem_Calloc(1, sizeof(ListGuard));
    th->guard_capsule = th->guard != NULL ? PyCapsule_New(th->guard, LIST_GUARD_CAPSULE,
                                                          guard_capsule_free)
                                          : NULL;
    if (th->guard_capsule == NULL) {
        if (th->guard != NULL) {
            PyMem_Free(th->guard);
        }
        else {
            PyErr_NoMemory();
        }
        th->guard = NULL;
        Py_DECREF(th);
        return NULL;
    }
    th->guard->busy = 1;
    if (PyObject_SetAttr(pyts, str_guard, th->guard_capsule) < 0) {
        Py_DECREF(th);
        return NULL;
    }
    /* state.thread_state() ran Python code: the dict may have changed meanwhile. */
    dict = PyThreadState_GetDict();
    if (dict == NULL || PyDict_SetItem(dict, t->tls_key, (PyObject *)th) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "no thread state dict");
        }
        Py_DECREF(th);
        return NULL;
    }
    Py_DECREF(th); /* the dict owns it */
    t->last_tstate = tstate;
    t->last_tid = tid;
    t->last_th = th;
    return th;
}

static inline CThread *
get_thread(Tracer *t, int create)
{
    return get_thread_of(t, PyThreadState_GET(), create);
}

/* The list and table the writer left the thread when it took its list (take_idle_list). */
static int
th_sync(CThread *th)
{
    PyObject *events = PyObject_GetAttr(th->pyts, str_events);
    if (events == NULL) {
        return -1;
    }
    if (!EventBuffer_CheckExact(events)) {
        Py_DECREF(events);
        PyErr_SetString(PyExc_TypeError, "ThreadState.events must be the C core's EventBuffer");
        return -1;
    }
    Py_SETREF(th->events, (EventBuffer *)events);
    Py_CLEAR(th->written);
    th->nodes_mark = th->tracer->nodes_encoded;
    th->taken_seen = th->guard->taken;
    return 0;
}

/* A callback begins on the calling thread (ListGuard): its list is the thread's until
 * list_leave. The thread (a new reference), or NULL for a thread seen for the first time,
 * which get_thread makes busy. */
static inline CThread *
list_enter(Tracer *t)
{
    fp_event_begin(&t->fp);
    if (t->records_for == NULL) {
        return NULL; /* a recording of trees: the writer cuts any list (state.hand_off) */
    }
    CThread *th = get_thread(t, 0);
    if (th == NULL) {
        PyErr_Clear();
        return NULL;
    }
    th->guard->busy++;
    if (th->guard->taken != th->taken_seen && th_sync(th) < 0) {
        PyErr_Clear(); /* the buffer it held stays: its events go with its next hand-off */
    }
    return (CThread *)Py_NewRef(th);
}

/* The callback list_enter began has returned: `entered` is what list_enter gave, or NULL, and
 * then the thread the callback made, if it is still the tracer's last (else it stays busy: the
 * writer then asks it to cut its list, as it asks the Python cores). */
static inline void
list_leave(Tracer *t, CThread *entered)
{
    fp_event_end(&t->fp);
    if (entered != NULL) {
        entered->guard->busy--;
        Py_DECREF(entered);
        return;
    }
    if (t->records_for == NULL) {
        return;
    }
    PyThreadState *tstate = PyThreadState_GET();
    if (t->last_th != NULL && t->last_tstate == tstate
        && t->last_tid == PyThreadState_GetID(tstate)) {
        t->last_th->guard->busy--;
    }
}

/* ------------------------------------------------------------------------------------------- */
/* Events                                                                                      */

/* state.hand_off(ts), then `ts.events` again (hand_off gave the writer the old list), and
 * `ts.unnamed`: None means hand_off settled the steps still open to redaction. */
static int
hand_off(Tracer *t, CThread *th)
{
    th->nodes_mark = t->nodes_encoded;
    PyObject *r = CALL_PYTHON(t, PyObject_CallOneArg(t->hand_off, th->pyts));
    Py_CLEAR(th->written); /* a new list, a new table (state.hand_off) */
    if (r != NULL) {
        PyObject *unnamed = PyObject_GetAttrString(th->pyts, "unnamed");
        if (unnamed == NULL) {
            PyErr_Clear();
        }
        else if (unnamed == Py_None) {
            th->n_unnamed = 0;
        }
        Py_XDECREF(unnamed);
    }
    PyObject *events = PyObject_GetAttr(th->pyts, str_events);
    if (events != NULL && !EventBuffer_CheckExact(events)) {
        /* Someone gave the thread a list (not the recorder's own code): take its events. */
        EventBuffer *records = eb_new(t->batch);
        if (records == NULL || eb_extend(records, events) < 0
            || PyObject_SetAttr(th->pyts, str_events, (PyObject *)records) < 0) {
            Py_XDECREF(records);
            Py_CLEAR(events);
        }
        else {
            Py_SETREF(events, (PyObject *)records);
        }
    }
    if (events != NULL) {
        Py_SETREF(th->events, (EventBuffer *)events);
    }
    if (r == NULL || events == NULL) {
        Py_XDECREF(r);
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* Append (kind, step, ts, call, line, payload, changes, deleted) to the thread's buffer. Steals
 * payload, changes (flat: diff_locals' names and values one after the other, EbEvent.flat) and
 * deleted (NULL means None); `line` is borrowed. With check, hands the list
 * off when full (sysmon's emit); without, appends only (sysmon's current()). */
static int
emit_step(Tracer *t, CThread *th, int kind, unsigned long long stepno, PyObject *call_id,
          PyObject *line, PyObject *payload, PyObject *changes, PyObject *deleted, int check)
{
    /* A record in the thread's buffer, not a tuple: no allocation per event (_eventbuffer.c).
     * Call ids and lines are small exact ints (the core makes them); a line may be None. */
    long long call = PyLong_AsLongLong(call_id);
    long long lineno = line == Py_None ? EB_NO_LINE : PyLong_AsLongLong(line);
    if ((call == -1 || lineno == -1) && PyErr_Occurred()) {
        Py_XDECREF(payload);
        Py_XDECREF(changes);
        Py_XDECREF(deleted);
        return -1;
    }
    untrack(payload);
    untrack(changes);
    /* In steps of 256 ns, as state.TS_MASK says (the clock's low byte is noise). */
    if (eb_append(th->events, kind, (int64_t)stepno, (now_ns() - t->t0) & ~255LL, call, lineno,
                  payload, changes, deleted, 1)
        < 0) {
        return -1;
    }
    /* A list is handed off when it holds `batch` events, or sooner when its values are big:
     * the writer's backlog is bounded in lists (state.max_pending), so a list of events that
     * each carry a large changed value would otherwise hold that much more memory. */
    if (check
        && (th->events->n >= t->batch
            || t->nodes_encoded - th->nodes_mark >= (uint64_t)t->batch * BATCH_NODES_PER_EVENT)) {
        return hand_off(t, th);
    }
    if (check && th->events->cut_requested) {
        return hand_off(t, th); /* the writer asked (a recording of object records) */
    }
    return 0;
}

/* emit_step with the next step number (`next(steps)` where the event tuple is built). */
static inline int
emit(Tracer *t, CThread *th, int kind, PyObject *call_id, PyObject *line, PyObject *payload,
     PyObject *changes, PyObject *deleted, int check)
{
    return emit_step(t, th, kind, ++t->steps, call_id, line, payload, changes, deleted, check);
}

/* `fn(name)` as a truth value: 1/0, -1 on error. */
static int
ask_bool(PyObject *fn, PyObject *name)
{
    PyObject *r = PyObject_CallOneArg(fn, name);
    if (r == NULL) {
        return -1;
    }
    int answer = PyObject_IsTrue(r);
    Py_DECREF(r);
    return answer;
}

/* Remember `answer` (1/0) for `name` in a memo dict of at most 65,536 names (emptied when full:
 * names are few in practice, and a program making names up must not grow it without bound).
 * Returns the answer; -1 if it is -1 or on error. */
static int
memo_answer(PyObject *memo, PyObject *name, int answer)
{
    if (answer < 0) {
        return -1;
    }
    if (PyDict_GET_SIZE(memo) >= 65536) {
        PyDict_Clear(memo);
    }
    if (PyDict_SetItem(memo, name, answer ? Py_True : Py_False) < 0) {
        return -1;
    }
    return answer;
}

/* Secret-looking names (state.is_secret): callee names and function names. 1/0, -1. */
static int
name_is_secret(Tracer *t, PyObject *name)
{
    if (t->state_is_secret == NULL || !PyUnicode_Check(name)) {
        return 0;
    }
    PyObject *hit = PyDict_GetItemWithError(t->secret_names, name);
    if (hit != NULL) {
        return hit == Py_True;
    }
    if (PyErr_Occurred()) {
        return -1;
    }
    return memo_answer(t->secret_names, name, CALL_PYTHON(t, ask_bool(t->state_is_secret, name)));
}

/* (V_REDACTED, type(x).__name__), as the Python core writes it in place of a secret value. */
static PyObject *
redacted(PyObject *x)
{
    PyObject *name = PyType_GetName(Py_TYPE(x));
    if (name == NULL) {
        return NULL;
    }
    PyObject *r = Py_BuildValue("(iN)", 4 /* V_REDACTED */, name);
    return untrack(r);
}

/* Mirror th->unnamed to pyts.unnamed: a list of (step, id), or None. */
static int
unnamed_sync(CThread *th)
{
    PyObject *value;
    if (th->n_unnamed == 0) {
        value = Py_NewRef(Py_None);
    }
    else {
        value = PyList_New(th->n_unnamed);
        if (value == NULL) {
            return -1;
        }
        for (int i = 0; i < th->n_unnamed; i++) {
            PyObject *item = Py_BuildValue("(KN)", th->unnamed[i].step,
                                           PyLong_FromVoidPtr(th->unnamed[i].id));
            if (item == NULL) {
                Py_DECREF(value);
                return -1;
            }
            PyList_SET_ITEM(value, i, item);
        }
    }
    int rc = PyObject_SetAttrString(th->pyts, "unnamed", value);
    Py_DECREF(value);
    return rc;
}

/* state.note_unnamed: remember a step whose value (a bare str/bytes venc) has no name yet. */
static int
note_unnamed(CThread *th, unsigned long long step, PyObject *venc)
{
    if (!PyUnicode_CheckExact(venc) && !PyBytes_CheckExact(venc)) {
        return 0;
    }
    if (th->n_unnamed >= 8) {
        return 0;
    }
    th->unnamed[th->n_unnamed].step = step;
    th->unnamed[th->n_unnamed].id = venc;
    th->n_unnamed++;
    return unnamed_sync(th);
}

/* state._redact_step: rewrite the payload of one of the thread's buffered events. */
static int
redact_step(CThread *th, unsigned long long step)
{
    EventBuffer *events = th->events;
    for (Py_ssize_t index = events->n - 1; index >= 0; index--) {
        EbEvent *event = &events->ev[index];
        if ((unsigned long long)event->step < step) {
            return 0;
        }
        if ((unsigned long long)event->step != step) {
            continue;
        }
        PyObject *payload = event->payload != NULL ? event->payload : Py_None;
        PyObject *new_payload;
        if (event->kind == K_EXTERNAL && PyTuple_Check(payload) && PyTuple_GET_SIZE(payload) == 4) {
            PyObject *hidden = redacted(PyTuple_GET_ITEM(payload, 2));
            new_payload = hidden == NULL ? NULL
                                         : untrack(PyTuple_Pack(4, PyTuple_GET_ITEM(payload, 0),
                                                                PyTuple_GET_ITEM(payload, 1),
                                                                hidden,
                                                                PyTuple_GET_ITEM(payload, 3)));
            Py_XDECREF(hidden);
        }
        else {
            new_payload = redacted(payload);
        }
        if (new_payload == NULL) {
            return -1;
        }
        Py_XSETREF(event->payload, new_payload);
        return 0;
    }
    return 0;
}

/* sysmon's finish_pending: the call into out-of-scope code completed, as one EXTERNAL step.
 * Steals value and exc (NULL means None). A value returned by a secret-looking callee
 * (keyring.get_password) is redacted; any other str/bytes value stays open to redaction until
 * the thread's next line (note_unnamed). */
static int
finish_pending(Tracer *t, CThread *th, FrameState *st, PyObject *value, PyObject *exc,
               int observed)
{
    PyObject *callee = st->pending; /* stolen from the frame state */
    st->pending = NULL;
    if (callee == NULL) {
        callee = Py_NewRef(Py_None);
    }
    unsigned long long step = ++t->steps;
    if (value == NULL) {
        value = Py_NewRef(Py_None);
    }
    if (observed && exc == NULL) {
        int secret = name_is_secret(t, callee);
        if (secret > 0) {
            Py_SETREF(value, redacted(value));
        }
        if (secret < 0 || value == NULL || (secret == 0 && note_unnamed(th, step, value) < 0)) {
            Py_DECREF(callee);
            Py_XDECREF(value);
            return -1;
        }
    }
    PyObject *payload = PyTuple_New(4);
    if (payload == NULL) {
        Py_DECREF(callee);
        Py_DECREF(value);
        Py_XDECREF(exc);
        return -1;
    }
    PyTuple_SET_ITEM(payload, 0, callee);
    PyTuple_SET_ITEM(payload, 1, Py_NewRef(observed ? Py_True : Py_False));
    PyTuple_SET_ITEM(payload, 2, value);
    PyTuple_SET_ITEM(payload, 3, exc ? exc : Py_NewRef(Py_None));
    return emit_step(t, th, K_EXTERNAL, step, st->call_id, st->line, payload, NULL, NULL, 1);
}

/* sysmon's current(): the state of frame `f`, resynchronising the stack if needed (a frame left
 * without an event we saw), else adopting the frame as a new call. Returns a NEW reference. */
static FrameState *
current(Tracer *t, CThread *th, _PyInterpreterFrame *f, PyObject *code)
{
    if (th->depth) {
        FrameState *top = th->stack[th->depth - 1];
        if (top->key == f) {
            return (FrameState *)Py_NewRef(top);
        }
        for (int d = th->depth - 1; d >= 0; d--) {
            if (th->stack[d]->key == f) {
                FrameState *st = (FrameState *)Py_NewRef(th->stack[d]);
                th_truncate(th, d + 1);
                return st;
            }
        }
    }
    CodeEntry *ce = code_get_or_make(t, code);
    if (ce == NULL || ce->demoted == BUDGET_OFF) {
        /* A frame of code the budget turned off that started after that: not recorded, its
         * events are ignored (NULL without an exception). */
        return NULL;
    }
    FrameState *st = fs_new(t, ce, f);
    if (st == NULL) {
        return NULL;
    }
    PyObject *parent = th->depth ? th->stack[th->depth - 1]->call_id : t->zero;
    PyObject *payload = PyTuple_Pack(2, ce->registered ? ce->code_id : t->zero, parent);
    if (payload == NULL || th_push(th, st) < 0) {
        Py_XDECREF(payload);
        Py_DECREF(st);
        return NULL;
    }
    PyObject *line = frame_line(f, ce);
    if (line == NULL) {
        Py_DECREF(payload);
        Py_DECREF(st);
        return NULL;
    }
    int rc = emit(t, th, K_CALL, st->call_id, line, payload, NULL, NULL, 0);
    Py_DECREF(line);
    if (rc < 0) {
        Py_DECREF(st);
        return NULL;
    }
    return st;
}

/* ------------------------------------------------------------------------------------------- */
/* Values                                                                                      */

static inline int
is_atom_type(PyTypeObject *tp)
{
    /* replay.events.ATOM_TYPES, by exact type. */
    return tp == &PyLong_Type || tp == &PyUnicode_Type || tp == &PyFloat_Type
           || tp == &PyBool_Type || tp == Py_TYPE(Py_None) || tp == &PyBytes_Type;
}

/* SnapshotEncoder.encode_named's own fast path (for a name that is not secret): exact atoms
 * within the capture limits are their own venc. 1 yes, 0 no, -1 error. */
static int
plain_atom(Tracer *t, PyObject *v)
{
    PyTypeObject *tp = Py_TYPE(v);
    if (tp == &PyLong_Type) {
        /* `nbig < v < big` with big = 10**max_int_digits. */
        if (PyUnstable_Long_IsCompact((PyLongObject *)v)) {
            if (t->int_digits >= 10) {
                return 1; /* |v| < 2**30 < 10**10 */
            }
            long long x = (long long)PyUnstable_Long_CompactValue((PyLongObject *)v);
            return -t->int_limit < x && x < t->int_limit;
        }
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (x == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (!overflow) {
            if (t->int_digits >= 19) {
                return 1; /* |v| < 2**63 < 10**19 */
            }
            return -t->int_limit < x && x < t->int_limit;
        }
        int lt = PyObject_RichCompareBool(t->nbig, v, Py_LT);
        if (lt <= 0) {
            return lt;
        }
        return PyObject_RichCompareBool(v, t->big, Py_LT);
    }
    if (tp == &PyUnicode_Type) {
        return PyUnicode_GET_LENGTH(v) <= t->max_string;
    }
    if (tp == &PyFloat_Type || tp == &PyBool_Type || v == Py_None) {
        return 1;
    }
    if (tp == &PyBytes_Type) {
        return PyBytes_GET_SIZE(v) <= t->max_string;
    }
    return 0;
}

static int confirm_fp(Tracer *t, PyObject *v, uint64_t *before, uint64_t content);

/* state.encode_named(name, v), skipped for plain atoms under names that are not secret (the
 * encoder would return the value itself), and for an object whose last encoding is remembered
 * with the fingerprint it has now (_fingerprint.c). `taken`: the caller just took the value's
 * fingerprint, *fp (0 if its walk gave up: no second walk is tried); else it is taken here. Out,
 * *fp is the fingerprint its venc is known to describe, or 0. The caller holds a reference to
 * v. A new reference, NULL on error. */
static PyObject *
encode_value_fp(Tracer *t, PyObject *name, int slow, PyObject *v, uint64_t *fp, int taken)
{
    if (!slow && t->atoms_fast) {
        int a = plain_atom(t, v);
        if (a > 0) {
            *fp = 0;
            return Py_NewRef(v);
        }
        if (a < 0) {
            return NULL;
        }
    }
    uint64_t f = taken ? *fp : 0;
    if (!taken && t->fp.enabled) {
        int r = fp_of(&t->fp, v, &f);
        if (r < 0) {
            return NULL;
        }
    }
    uint64_t content = t->fp.last_content; /* of the walk that gave f (the caller's, if taken) */
    if (f != 0 && !slow) {
        PyObject *known = fp_cached(&t->fp, v, f);
        if (known != NULL) {
            *fp = f;
            return known;
        }
    }
    /* A value the walk could read is built in C (_encode.c) unless it holds something only
     * the Python encoder knows (then NULL, no exception). A secret name (slow) is redacted by
     * the Python encoder. */
    uint64_t epoch = fp_epoch(&t->fp), built = t->fp.nodes_built;
    PyObject *venc = f != 0 && !slow ? fp_encode(&t->fp, v) : NULL;
    int python_ran = venc == NULL || fp_epoch(&t->fp) != epoch; /* or a serial given out */
    /* New venc nodes, for the hand-off bound: counted by the C encoder, else the size of the
     * value as the walk saw it (or a guess when it gave up). */
    t->nodes_encoded += venc != NULL ? t->fp.nodes_built - built
                        : f != 0    ? (uint64_t)t->fp.last_cost + 1
                                    : 16;
    if (venc == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        PyObject *args[2] = {name, v};
        venc = CALL_PYTHON(t, PyObject_Vectorcall(t->encode_named, args, 2, NULL));
    }
    /* Only the SnapshotEncoder's values are known to be fresh trees (see untrack_venc). */
    venc = t->atoms_fast ? untrack_venc(venc, 0) : venc;
    if (venc != NULL && f != 0) {
        /* A redacted value (slow: a secret name) depends on the name, not only the object. */
        /* Encoded in C without calling Python: nothing can have changed, f still holds. */
        if ((python_ran && confirm_fp(t, v, &f, content) < 0)
            || (!slow && fp_remember(&t->fp, v, f, venc) < 0)) {
            Py_DECREF(venc);
            return NULL;
        }
    }
    *fp = f;
    return venc;
}

static PyObject *
encode_value(Tracer *t, PyObject *name, int slow, PyObject *v)
{
    uint64_t fp = 0;
    return encode_value_fp(t, name, slow, v, &fp, 0);
}

/* `_safe_to_print` (snapshot.py): str() and repr() of `x` are C code all the way down (exact
 * atoms, and exact tuples and lists of at most 64 of them, `depth` levels deep). */
static int
safe_to_print(PyObject *x, int depth)
{
    PyTypeObject *tp = Py_TYPE(x);
    if (tp == &PyUnicode_Type || tp == &PyLong_Type || tp == &PyFloat_Type || tp == &PyBool_Type
        || x == Py_None || tp == &PyBytes_Type) {
        return 1;
    }
    if ((tp != &PyTuple_Type && tp != &PyList_Type) || depth <= 0 || Py_SIZE(x) > 64) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < Py_SIZE(x); i++) {
        PyObject *item = tp == &PyTuple_Type ? PyTuple_GET_ITEM(x, i) : PyList_GET_ITEM(x, i);
        if (!safe_to_print(item, depth - 1)) {
            return 0;
        }
    }
    return 1;
}

/* `SnapshotEncoder.encode_exception` in C, for the exceptions it would describe without user
 * code through BaseException's own `__str__` (StopIteration above all: a generator's end under
 * sys.monitoring, made up by cb_stop_iteration, was nearly half of an asyncio program's core
 * time through Python): `(type name, message, venc)`, the message `str(exc)` cut at max_string
 * as `_cut` cuts it, the venc the C encoder's. NULL without an exception: left to Python (a
 * class with a `__str__` of its own, `args` whose str could run user code, an exception the
 * walk does not read). */
static PyObject *
c_encode_exception(Tracer *t, PyObject *exc)
{
    static PyObject *str_name = NULL;
    if (str_name == NULL && (str_name = PyUnicode_InternFromString("__str__")) == NULL) {
        return NULL;
    }
    PyTypeObject *tp = Py_TYPE(exc);
    PyObject *args = ((PyBaseExceptionObject *)exc)->args;
    /* _PyType_Lookup reads the dicts of the MRO (str keys: no Python code), as _exc_str_func. */
    PyObject *own_str = _PyType_Lookup(tp, str_name);
    if (!t->fp.enabled || args == NULL || !PyTuple_CheckExact(args) || own_str == NULL
        || own_str != _PyType_Lookup((PyTypeObject *)PyExc_BaseException, str_name)
        || !safe_to_print(args, 3)) {
        return NULL;
    }
    /* BaseException's C __str__ over safe args: "", str(args[0]) or str(args). */
    PyObject *text = ((PyTypeObject *)PyExc_BaseException)->tp_str(exc);
    if (text == NULL || !PyUnicode_CheckExact(text)) {
        Py_XDECREF(text);
        return NULL;
    }
    if ((text = fp_cut_text(&t->fp, text)) == NULL) {
        return NULL;
    }
    /* Then the walk (which classifies the class) and, right after it, the encoder it logs for. */
    uint64_t f = 0;
    if (fp_of(&t->fp, exc, &f) < 0) {
        Py_DECREF(text);
        return NULL;
    }
    const FpTypeEntry *te = fp_type_entry(&t->fp, tp);
    if (f == 0 || te == NULL || te->kind != FP_EXCEPTION || te->name == NULL) {
        Py_DECREF(text);
        return NULL;
    }
    PyObject *name = Py_NewRef(te->name); /* encoding may reuse the class's cache entry */
    uint64_t built = t->fp.nodes_built;
    PyObject *venc = fp_encode(&t->fp, exc);
    if (venc == NULL) {
        Py_DECREF(name);
        Py_DECREF(text);
        return NULL;
    }
    t->nodes_encoded += t->fp.nodes_built - built;
    return Py_BuildValue("(NNN)", name, text, untrack_venc(venc, 0));
}

static PyObject *
encode_exception(Tracer *t, PyObject *exc)
{
    if (t->atoms_fast) {
        PyObject *e = c_encode_exception(t, exc);
        if (e != NULL || PyErr_Occurred()) {
            return e;
        }
    }
    PyObject *e = CALL_PYTHON(t, PyObject_CallOneArg(t->encode_exception, exc));
    return t->atoms_fast ? untrack_venc(e, 0) : e;
}

/* Change detection for a name still bound to the same non-atom as at its last encoding (see
 * _fingerprint.c): 0 when its content fingerprint equals `known`, the one kept when its venc was
 * last confirmed, so re-encoding would give that venc again; else 1, with *now the fingerprint
 * taken (0 if the walk gave up). -1 on error. */
static int
may_have_changed(Tracer *t, PyObject *v, uint64_t known, uint64_t *now)
{
    uint64_t f = 0;
    int r = fp_of(&t->fp, v, &f);
    if (r < 0) {
        return -1;
    }
    *now = r > 0 ? f : 0;
    return r == 0 || known == 0 || f != known;
}

/* After encoding `v` (Python code ran, so another thread may have changed it meanwhile): if its
 * content is still `content` (the content half of *before), its fingerprint now, which holds the
 * serials encoding it gave out; else 0, so that a fingerprint is only kept for content the venc
 * is known to describe. -1 on error. */
static int
confirm_fp(Tracer *t, PyObject *v, uint64_t *before, uint64_t content)
{
    if (*before == 0) {
        return 0;
    }
    uint64_t after = 0;
    int r = fp_of(&t->fp, v, &after);
    if (r < 0) {
        return -1;
    }
    *before = r > 0 && t->fp.last_content == content ? after : 0;
    return 0;
}

/* Whether values under `name` must go through the Python encoder: a secret-looking name (the
 * encoder redacts it) or the REPLAY_INJECT_FAULT test hook's name. 1/0, -1 on error. */
static int
name_is_slow(Tracer *t, PyObject *name)
{
    if (!PyUnicode_CheckExact(name)) {
        return 1;
    }
    PyObject *hit = PyDict_GetItemWithError(t->slow_names, name);
    if (hit != NULL) {
        return hit == Py_True;
    }
    if (PyErr_Occurred()) {
        return -1;
    }
    int slow = 0;
    if (t->inject != NULL) {
        slow = PyUnicode_Compare(name, t->inject) == 0;
        if (slow == 0 && PyErr_Occurred()) {
            return -1;
        }
    }
    if (!slow && t->is_secret != NULL) {
        slow = CALL_PYTHON(t, ask_bool(t->is_secret, name));
    }
    return memo_answer(t->slow_names, name, slow);
}

static int
code_slow_flags(Tracer *t, CodeEntry *ce)
{
    if (ce->slow != NULL || ce->nslots == 0) {
        return 0;
    }
    unsigned char *slow = PyMem_Malloc((size_t)ce->nslots);
    if (slow == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (int i = 0; i < ce->nslots; i++) {
        int s = name_is_slow(t, PyTuple_GET_ITEM(ce->names, i));
        if (s < 0) {
            PyMem_Free(slow);
            return -1;
        }
        slow[i] = (unsigned char)s;
    }
    if (ce->slow == NULL) {
        ce->slow = slow;
    }
    else {
        PyMem_Free(slow); /* computed meanwhile by another thread */
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* The locals diff (state.diff_locals)                                                         */

/* A growable array of an event's changes, names and vencs one after the other (name, venc,
 * name, venc, ...), on the stack for the common few: the event buffer keeps them flat, which
 * saves a tuple per changed name (EbEvent.flat). */
typedef struct {
    PyObject **items;
    Py_ssize_t n, cap;
    PyObject *inline_items[32];
} PairBuf;

static inline void
pb_init(PairBuf *b)
{
    b->items = b->inline_items;
    b->n = 0;
    b->cap = 32;
}

static void
pb_clear(PairBuf *b)
{
    for (Py_ssize_t i = 0; i < b->n; i++) {
        Py_DECREF(b->items[i]);
    }
    if (b->items != b->inline_items) {
        PyMem_Free(b->items);
    }
    pb_init(b);
}

static int
pb_add(PairBuf *b, PyObject *name, PyObject *venc)
{
    if (b->n + 2 > b->cap) {
        Py_ssize_t cap = b->cap * 2;
        PyObject **items = PyMem_Malloc(sizeof(PyObject *) * (size_t)cap);
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(items, b->items, sizeof(PyObject *) * (size_t)b->n);
        if (b->items != b->inline_items) {
            PyMem_Free(b->items);
        }
        b->items = items;
        b->cap = cap;
    }
    b->items[b->n++] = Py_NewRef(name);
    b->items[b->n++] = Py_NewRef(venc);
    return 0;
}

/* The names and vencs as one flat tuple (NULL, no error, when empty); empties the buffer. */
static PyObject *
pb_take_tuple(PairBuf *b)
{
    if (b->n == 0) {
        pb_clear(b);
        return NULL;
    }
    PyObject *tup = PyTuple_New(b->n);
    if (tup == NULL) {
        pb_clear(b);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < b->n; i++) {
        PyTuple_SET_ITEM(tup, i, b->items[i]);
    }
    b->n = 0;
    pb_clear(b);
    return tup;
}

/* The value of fast local `i` as f_locals shows it, or NULL when unbound: cells and free
 * variables show their contents (3.12 frame_get_var / 3.13 framelocalsproxy_getval, for a
 * frame past its MAKE_CELL/COPY_FREE_VARS prologue, which every event of ours is). */
static inline PyObject *
read_slot(const unsigned char *kinds, PyObject **fast, int i)
{
    PyObject *v = fast[i];
    if (v == NULL) {
        return NULL;
    }
    if ((kinds[i] & (CO_FAST_FREE | CO_FAST_CELL)) && PyCell_Check(v)) {
        return PyCell_GET(v);
    }
    return v;
}

/* `name in touched` (touched NULL means None: every name is checked). 1/0, -1 on error. */
static inline int
in_touched(PyObject *touched, PyObject *name)
{
    if (touched == NULL) {
        return 1;
    }
    return PySet_Contains(touched, name);
}

/* in_touched for slot `i` of a function's frame, by the line's slot bits where it has them. */
#define IN_TOUCHED_SLOT(d, i, name)                                                        \
    ((d)->touched_line != NULL ? (int)(((d)->touched_line->slots >> (i)) & 1)              \
                               : in_touched((d)->touched, (name)))

/* What one diff needs besides the frame state (the arguments of state.diff_locals). */
typedef struct {
    PyObject **fast;     /* LOC_FAST: the frame's fast locals */
    PyObject *loc;       /* else: the mapping read */
    PyObject *touched;   /* frozenset of names, or NULL for None (borrowed) */
    const TouchedLine *touched_line; /* the same as slot bits, or NULL: ask the set */
    int mutated;         /* an in-place change was found (with touched) */
    int nold;            /* 3.12: snapshot entries at the start (the dict's existing keys) */
    PairBuf changes;
    /* _recheck_untouched's result: (slot index or name, venc) one after the other. Kept in C:
     * a list and a tuple per re-check were a sixth of the objects the garbage collector
     * counted while recording richards.py (a re-check runs after every in-place change). */
    PairBuf rechecked;
} Diff;

static int recheck_untouched_fast(Tracer *t, FrameState *st, Diff *d, int found);
static int recheck_untouched_mapping(Tracer *t, FrameState *st, Diff *d, PyObject *found);

/* One name of the snapshot seen bound to `v` (diff_locals' loop body, for a remembered name). */
static int
slot_existing(Tracer *t, FrameState *st, Diff *d, int i, PyObject *v)
{
    Slot *s = &st->slots[i];
    PyObject *name = PyTuple_GET_ITEM(st->ce->names, i);
    PyObject *venc;
    uint64_t fp = 0;
    if (s->id == (void *)v) {
        /* Same object: an atom cannot have changed; anything else may have been mutated in
         * place and is looked at again, if the line that ran could have touched it: first its
         * fingerprint, then (if that changed or cannot be taken) a re-encoding. */
        if (is_atom_type(Py_TYPE(v))) {
            return 0;
        }
        int in = IN_TOUCHED_SLOT(d, i, name);
        if (in <= 0) {
            return in; /* re-checked by recheck_untouched if anything changed in place */
        }
        int may = may_have_changed(t, v, s->fp, &fp);
        if (may <= 0) {
            return may;
        }
        Py_INCREF(v); /* the encoder runs Python code: keep the value alive meanwhile */
        venc = encode_value_fp(t, name, st->ce->slow[i], v, &fp, 1);
        Py_DECREF(v);
        if (venc == NULL) {
            return -1;
        }
        int eq = PyObject_RichCompareBool(venc, s->venc, Py_EQ);
        if (eq != 0) {
            Py_DECREF(venc);
            if (eq > 0) {
                s->fp = fp;
            }
            return eq < 0 ? -1 : 0;
        }
        if (!d->mutated && d->touched != NULL) {
            d->mutated = 1;
            if (recheck_untouched_fast(t, st, d, i) < 0) {
                Py_DECREF(venc);
                return -1;
            }
        }
    }
    else {
        Py_INCREF(v);
        venc = encode_value_fp(t, name, st->ce->slow[i], v, &fp, 0);
        Py_DECREF(v);
        if (venc == NULL) {
            return -1;
        }
    }
    s->id = (void *)v;
    s->fp = fp;
    Py_SETREF(s->venc, venc);
    return pb_add(&d->changes, name, venc);
}

/* A name not in the snapshot, now bound. */
static int
slot_new(Tracer *t, FrameState *st, Diff *d, int i, PyObject *v)
{
    PyObject *name = PyTuple_GET_ITEM(st->ce->names, i);
    uint64_t fp = 0;
    Py_INCREF(v);
    PyObject *venc = encode_value_fp(t, name, st->ce->slow[i], v, &fp, 0);
    Py_DECREF(v);
    if (venc == NULL) {
        return -1;
    }
    Slot *s = &st->slots[i];
    s->id = (void *)v;
    s->fp = fp;
    Py_XSETREF(s->venc, venc);
    st->order[st->norder++] = i;
    return pb_add(&d->changes, name, venc);
}

/* state._recheck_untouched for fast locals: after the first in-place change, re-encode the
 * remembered non-atoms the line did not mention, in f_locals order (see diff_fast). */
static int
recheck_untouched_fast(Tracer *t, FrameState *st, Diff *d, int found)
{
    const unsigned char *kinds = st->ce->kinds;
#if RT_DICT_LOCALS
    int count = d->nold;
#else
    int count = st->nslots;
#endif
    for (int k = 0; k < count; k++) {
#if RT_DICT_LOCALS
        int i = st->order[k];
#else
        int i = k;
#endif
        PyObject *v = read_slot(kinds, d->fast, i);
        Slot *s = &st->slots[i];
        if (v == NULL || i == found || s->venc == NULL || s->id != (void *)v
            || is_atom_type(Py_TYPE(v))) {
            continue;
        }
        PyObject *name = PyTuple_GET_ITEM(st->ce->names, i);
        int in = IN_TOUCHED_SLOT(d, i, name);
        if (in != 0) {
            if (in < 0) {
                return -1;
            }
            continue;
        }
        uint64_t fp = 0;
        int may = may_have_changed(t, v, s->fp, &fp);
        if (may <= 0) {
            if (may < 0) {
                return -1;
            }
            continue;
        }
        Py_INCREF(v);
        PyObject *venc = encode_value_fp(t, name, st->ce->slow[i], v, &fp, 1);
        Py_DECREF(v);
        if (venc == NULL) {
            return -1;
        }
        int ne = PyObject_RichCompareBool(venc, s->venc, Py_NE);
        if (ne == 0) {
            s->fp = fp;
        }
        s->rechecked_fp = fp;
        /* The slot's index as an int: a shared small int for the first 257 slots. */
        PyObject *index = ne > 0 ? PyLong_FromLong(i) : NULL;
        int rc = ne < 0 || (ne > 0 && (index == NULL || pb_add(&d->rechecked, index, venc) < 0));
        Py_XDECREF(index);
        Py_DECREF(venc);
        if (rc) {
            return -1;
        }
    }
    return 0;
}

/* Whether `name` is already among this event's changes (by identity: the names come from the
 * same tuple of slot names, or the same mapping keys). */
static int
pb_has_name(PairBuf *b, PyObject *name)
{
    for (Py_ssize_t k = 0; k < b->n; k += 2) {
        if (b->items[k] == name) {
            return 1;
        }
    }
    return 0;
}

/* state._merge_rechecked for fast locals. */
static int
merge_rechecked_fast(FrameState *st, Diff *d)
{
    PyObject **rechecked = d->rechecked.items;
    for (Py_ssize_t k = 0; k < d->rechecked.n; k += 2) {
        int i = (int)PyLong_AsLong(rechecked[k]);
        PyObject *venc = rechecked[k + 1];
        PyObject *name = PyTuple_GET_ITEM(st->ce->names, i);
        if (pb_has_name(&d->changes, name)) {
            continue;
        }
        /* The fingerprint the re-check confirmed this venc with (a zero would re-encode the
         * value at its next check for nothing: on richards.py, 93,000 encodings of values that
         * had not changed, one in six of all the encodings of a re-check). */
        Py_XSETREF(st->slots[i].venc, Py_NewRef(venc));
        st->slots[i].fp = st->slots[i].rechecked_fp;
        if (pb_add(&d->changes, name, venc) < 0) {
            return -1;
        }
    }
    return 0;
}

/* diff_locals for a function frame, straight from its fast locals array: no f_locals dict (3.12)
 * or proxy (3.13) is built, and an unchanged atom costs one pointer comparison.
 *
 * Order matters (it is the order of `changes`, and the order in which values are encoded, hence
 * of the identity map's serials). The Python core iterates f_locals:
 * - 3.12: a dict kept on the frame and updated in place at each read, so its order is the order
 *   in which names were first bound, a name unbound then rebound going to the end: exactly the
 *   snapshot's insertion order (`order`), then the new names in slot order;
 * - 3.13: a proxy that iterates the slots in order.
 * `deleted` lists the snapshot's names that are unbound now, in snapshot order, in both. */
static int
diff_fast(Tracer *t, FrameState *st, Diff *d, PyObject **pchanges, PyObject **pdeleted)
{
    const unsigned char *kinds = st->ce->kinds;
    PyObject **fast = d->fast;
    int n = st->nslots;
    int gone = 0;
    if (code_slow_flags(t, st->ce) < 0) {
        return -1;
    }
    d->nold = st->norder;
#if RT_DICT_LOCALS
    for (int k = 0; k < d->nold; k++) {
        int i = st->order[k];
        PyObject *v = read_slot(kinds, fast, i);
        if (v == NULL) {
            gone++;
            continue;
        }
        if (slot_existing(t, st, d, i, v) < 0) {
            return -1;
        }
    }
    for (int i = 0; i < n; i++) {
        if (st->slots[i].venc != NULL) {
            continue;
        }
        PyObject *v = read_slot(kinds, fast, i);
        if (v != NULL && slot_new(t, st, d, i, v) < 0) {
            return -1;
        }
    }
#else
    for (int i = 0; i < n; i++) {
        PyObject *v = read_slot(kinds, fast, i);
        if (st->slots[i].venc != NULL) {
            if (v == NULL) {
                gone++;
            }
            else if (slot_existing(t, st, d, i, v) < 0) {
                return -1;
            }
        }
        else if (v != NULL && slot_new(t, st, d, i, v) < 0) {
            return -1;
        }
    }
#endif
    if (d->mutated && merge_rechecked_fast(st, d) < 0) {
        return -1;
    }
    PyObject *deleted = NULL;
    if (gone) {
        deleted = PyTuple_New(gone);
        if (deleted == NULL) {
            return -1;
        }
        int nd = 0, w = 0;
        for (int k = 0; k < st->norder; k++) {
            int i = st->order[k];
            if (nd < gone && read_slot(kinds, fast, i) == NULL) {
                PyTuple_SET_ITEM(deleted, nd++, Py_NewRef(PyTuple_GET_ITEM(st->ce->names, i)));
                st->slots[i].id = NULL;
                Py_CLEAR(st->slots[i].venc);
            }
            else {
                st->order[w++] = i;
            }
        }
        st->norder = w;
        if (nd != gone) { /* a local changed while the encoder ran: keep the tuple exact */
            if (_PyTuple_Resize(&deleted, nd) < 0) {
                return -1;
            }
            if (nd == 0) {
                Py_CLEAR(deleted);
            }
        }
    }
    *pchanges = pb_take_tuple(&d->changes);
    if (*pchanges == NULL && PyErr_Occurred()) {
        Py_XDECREF(deleted);
        return -1;
    }
    *pdeleted = deleted;
    return 0;
}

static inline int
is_dunder(PyObject *name)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(name);
    if (n < 2) {
        return 0;
    }
    int kind = PyUnicode_KIND(name);
    const void *data = PyUnicode_DATA(name);
    return PyUnicode_READ(kind, data, 0) == '_' && PyUnicode_READ(kind, data, 1) == '_'
           && PyUnicode_READ(kind, data, n - 2) == '_' && PyUnicode_READ(kind, data, n - 1) == '_';
}

/* The (name, value) pairs of a mapping, as `loc.items()` iterates them: a dict is walked in
 * place (its values held while used), anything else through its items(). */
typedef int (*item_fn)(Tracer *t, FrameState *st, Diff *d, PyObject *name, PyObject *value,
                       void *arg);

static int
for_items(Tracer *t, FrameState *st, Diff *d, item_fn fn, void *arg)
{
    PyObject *loc = d->loc;
    if (PyDict_CheckExact(loc)) {
        Py_ssize_t pos = 0;
        PyObject *name, *value;
        Py_ssize_t size = PyDict_GET_SIZE(loc);
        while (PyDict_Next(loc, &pos, &name, &value)) {
            Py_INCREF(name);
            Py_INCREF(value);
            int rc = fn(t, st, d, name, value, arg);
            Py_DECREF(name);
            Py_DECREF(value);
            if (rc < 0) {
                return -1;
            }
            if (PyDict_GET_SIZE(loc) != size) {
                PyErr_SetString(PyExc_RuntimeError, "dictionary changed size during iteration");
                return -1;
            }
        }
        return 0;
    }
    PyObject *items = PyMapping_Items(loc);
    if (items == NULL) {
        return -1;
    }
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(items); k++) {
        PyObject *item = PyList_GET_ITEM(items, k);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
            Py_DECREF(items);
            PyErr_SetString(PyExc_TypeError, "locals items are not pairs");
            return -1;
        }
        if (fn(t, st, d, PyTuple_GET_ITEM(item, 0), PyTuple_GET_ITEM(item, 1), arg) < 0) {
            Py_DECREF(items);
            return -1;
        }
    }
    Py_DECREF(items);
    return 0;
}

typedef struct {
    Py_ssize_t seen, new;
} Counts;

/* diff_locals' loop body for one (name, value) of a mapping, with a dict snapshot. */
static int
mapping_item(Tracer *t, FrameState *st, Diff *d, PyObject *name, PyObject *value, void *arg)
{
    Counts *counts = arg;
    if (st->ce->is_module) {
        if (!PyUnicode_Check(name)) {
            /* `name[:2]` on a non-str global name raises in Python too: the event is lost. */
            PyErr_SetString(PyExc_TypeError, "a module global name that is not a str");
            return -1;
        }
        if (is_dunder(name)) {
            return 0;
        }
    }
    PyObject *entry = PyDict_GetItemWithError(st->snap, name);
    if (entry == NULL && PyErr_Occurred()) {
        return -1;
    }
    PyObject *venc;
    if (entry != NULL) {
        counts->seen++;
        if (PyLong_AsVoidPtr(PyTuple_GET_ITEM(entry, 0)) == (void *)value) {
            if (is_atom_type(Py_TYPE(value))) {
                return 0;
            }
            int in = in_touched(d->touched, name);
            if (in <= 0) {
                return in;
            }
            int slow = name_is_slow(t, name);
            if (slow < 0) {
                return -1;
            }
            Py_INCREF(entry);
            venc = encode_value(t, name, slow, value);
            if (venc == NULL) {
                Py_DECREF(entry);
                return -1;
            }
            int eq = PyObject_RichCompareBool(venc, PyTuple_GET_ITEM(entry, 1), Py_EQ);
            Py_DECREF(entry);
            if (eq != 0) {
                Py_DECREF(venc);
                return eq < 0 ? -1 : 0;
            }
            if (!d->mutated && d->touched != NULL) {
                d->mutated = 1;
                if (recheck_untouched_mapping(t, st, d, name) < 0) {
                    Py_DECREF(venc);
                    return -1;
                }
            }
        }
        else {
            int slow = name_is_slow(t, name);
            venc = slow < 0 ? NULL : encode_value(t, name, slow, value);
        }
    }
    else {
        counts->new++;
        int slow = name_is_slow(t, name);
        venc = slow < 0 ? NULL : encode_value(t, name, slow, value);
    }
    if (venc == NULL) {
        return -1;
    }
    PyObject *vid = PyLong_FromVoidPtr((void *)value);
    PyObject *rec = vid ? PyTuple_Pack(2, vid, venc) : NULL;
    Py_XDECREF(vid);
    int rc = rec == NULL || PyDict_SetItem(st->snap, name, rec) < 0
                 ? -1
                 : pb_add(&d->changes, name, venc);
    Py_XDECREF(rec);
    Py_DECREF(venc);
    return rc;
}

/* state._recheck_untouched over a mapping: one entry. */
static int
recheck_item(Tracer *t, FrameState *st, Diff *d, PyObject *name, PyObject *value, void *arg)
{
    PyObject *found = arg;
    int in = PySet_Contains(d->touched, name);
    if (in != 0) {
        return in < 0 ? -1 : 0;
    }
    if (name == found) {
        return 0;
    }
    if (!PyUnicode_CheckExact(name) || !PyUnicode_CheckExact(found)
        || PyUnicode_Compare(name, found) == 0) {
        int eq = PyObject_RichCompareBool(name, found, Py_EQ);
        if (eq != 0) {
            return eq < 0 ? -1 : 0;
        }
    }
    PyObject *entry = PyDict_GetItemWithError(st->snap, name);
    if (entry == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    if (PyLong_AsVoidPtr(PyTuple_GET_ITEM(entry, 0)) != (void *)value
        || is_atom_type(Py_TYPE(value))) {
        return 0;
    }
    if (st->ce->is_module && PyUnicode_Check(name) && is_dunder(name)) {
        return 0;
    }
    int slow = name_is_slow(t, name);
    if (slow < 0) {
        return -1;
    }
    Py_INCREF(entry);
    PyObject *venc = encode_value(t, name, slow, value);
    if (venc == NULL) {
        Py_DECREF(entry);
        return -1;
    }
    int ne = PyObject_RichCompareBool(venc, PyTuple_GET_ITEM(entry, 1), Py_NE);
    Py_DECREF(entry);
    int rc = ne < 0 || (ne > 0 && pb_add(&d->rechecked, name, venc) < 0);
    Py_DECREF(venc);
    return rc ? -1 : 0;
}

static int
recheck_untouched_mapping(Tracer *t, FrameState *st, Diff *d, PyObject *found)
{
    Py_INCREF(found);
    int rc = for_items(t, st, d, recheck_item, found);
    Py_DECREF(found);
    return rc;
}

/* state._merge_rechecked over a mapping. A name seen twice in rechecked (only a mapping whose
 * items() repeats itself could) is merged once, as the Python dict would. */
static int
merge_rechecked_mapping(FrameState *st, Diff *d)
{
    PyObject **rechecked = d->rechecked.items;
    for (Py_ssize_t k = 0; k < d->rechecked.n; k += 2) {
        PyObject *name = rechecked[k];
        PyObject *venc = rechecked[k + 1];
        int known = 0;
        for (Py_ssize_t j = 0; j < d->changes.n && !known; j += 2) {
            known = PyObject_RichCompareBool(d->changes.items[j], name, Py_EQ);
            if (known < 0) {
                return -1;
            }
        }
        if (known) {
            continue;
        }
        PyObject *entry = PyDict_GetItemWithError(st->snap, name);
        if (entry == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_SetObject(PyExc_KeyError, name);
            }
            return -1;
        }
        PyObject *rec = PyTuple_Pack(2, PyTuple_GET_ITEM(entry, 0), venc);
        if (rec == NULL || PyDict_SetItem(st->snap, name, rec) < 0) {
            Py_XDECREF(rec);
            return -1;
        }
        Py_DECREF(rec);
        if (pb_add(&d->changes, name, venc) < 0) {
            return -1;
        }
    }
    return 0;
}

/* diff_locals over a mapping (module globals, class bodies, f_locals), as written in state.py. */
static int
diff_mapping(Tracer *t, FrameState *st, Diff *d, PyObject **pchanges, PyObject **pdeleted)
{
    if (st->snap == NULL) {
        st->snap = PyDict_New();
        if (st->snap == NULL) {
            return -1;
        }
    }
    Counts counts = {0, 0};
    if (for_items(t, st, d, mapping_item, &counts) < 0) {
        return -1;
    }
    if (d->mutated && merge_rechecked_mapping(st, d) < 0) {
        return -1;
    }
    PyObject *deleted = NULL;
    if (counts.seen < PyDict_GET_SIZE(st->snap) - counts.new) {
        /* Some remembered name was not seen: it was unbound. */
        PyObject *loc = d->loc;
        PyObject *present = PyDict_CheckExact(loc)
                                ? Py_NewRef(loc)
                                : CALL_PYTHON(t, PyObject_CallMethod(loc, "keys", NULL));
        if (present == NULL) {
            return -1;
        }
        PyObject *gone = PyList_New(0);
        if (gone == NULL) {
            Py_DECREF(present);
            return -1;
        }
        Py_ssize_t pos = 0;
        PyObject *name, *rec;
        while (PyDict_Next(st->snap, &pos, &name, &rec)) {
            int has = PySequence_Contains(present, name);
            if (has < 0 || (!has && PyList_Append(gone, name) < 0)) {
                Py_DECREF(present);
                Py_DECREF(gone);
                return -1;
            }
        }
        Py_DECREF(present);
        for (Py_ssize_t k = 0; k < PyList_GET_SIZE(gone); k++) {
            if (PyDict_DelItem(st->snap, PyList_GET_ITEM(gone, k)) < 0) {
                Py_DECREF(gone);
                return -1;
            }
        }
        if (PyList_GET_SIZE(gone)) {
            deleted = PyList_AsTuple(gone);
        }
        Py_DECREF(gone);
        if (deleted == NULL && PyErr_Occurred()) {
            return -1;
        }
    }
    *pchanges = pb_take_tuple(&d->changes);
    if (*pchanges == NULL && PyErr_Occurred()) {
        Py_XDECREF(deleted);
        return -1;
    }
    *pdeleted = deleted;
    return 0;
}

/* After a read line (its names are a state.ReadNames, not an exact frozenset): whether the
 * thread's latest event is still the frame's own LINE, so that no in-scope code ran during the
 * line and its names need no check (state.touched_now). t->last_th is the running thread. */
static inline int
nothing_ran_during(Tracer *t, FrameState *st, PyObject *names)
{
    if (names == NULL || PyFrozenSet_CheckExact(names)) {
        return 0;
    }
    EventBuffer *events = t->last_th->events;
    if (events->n == 0) {
        return 0;
    }
    const EbEvent *last = &events->ev[events->n - 1];
    if (last->kind != K_LINE) {
        return 0;
    }
    long long call = PyLong_AsLongLong(st->call_id);
    if (call == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return last->call == call;
}

/* CodeInfo.touched(line): a new reference to a set or None, or NULL with an exception. */
static PyObject *
ask_touched(Tracer *t, CodeEntry *ce, PyObject *line)
{
    PyObject *names = CALL_PYTHON(t, PyObject_CallMethod(ce->info, "touched", "O", line));
    if (names != NULL && names != Py_None && !PyAnySet_Check(names)) {
        Py_DECREF(names);
        PyErr_SetString(PyExc_TypeError, "CodeInfo.touched() must give a set or None");
        return NULL;
    }
    return names;
}

/* The entry of CodeInfo.touched's answer for `lineno` in the code entry's table (asked and
 * filled the first time), or NULL for a line before the code's first (then ce->touched). */
static TouchedLine *
touched_line_of(Tracer *t, CodeEntry *ce, long lineno, PyObject *line)
{
    long at = lineno - ce->firstlineno;
    if (at < 0 || at >= (1L << 20)) {
        return NULL;
    }
    int block = (int)(at / TOUCHED_BLOCK);
    if (block >= ce->ntouched_blocks) {
        int n = block + 1;
        TouchedLine **grown = PyMem_Realloc(ce->touched_blocks, (size_t)n * sizeof *grown);
        if (grown == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        memset(grown + ce->ntouched_blocks, 0, (size_t)(n - ce->ntouched_blocks) * sizeof *grown);
        ce->touched_blocks = grown;
        ce->ntouched_blocks = n;
    }
    if (ce->touched_blocks[block] == NULL) {
        ce->touched_blocks[block] = PyMem_Calloc(TOUCHED_BLOCK, sizeof(TouchedLine));
        if (ce->touched_blocks[block] == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
    }
    TouchedLine *tl = &ce->touched_blocks[block][at % TOUCHED_BLOCK];
    if (tl->names != NULL) {
        return tl;
    }
    PyObject *names = ask_touched(t, ce, line);
    if (names == NULL) {
        return NULL;
    }
    if (tl->names != NULL) {
        /* Another thread's callback answered it while this one ran Python (the blocks do not
         * move): its answer is the same. */
        Py_DECREF(names);
        return tl;
    }
    /* The slots it names, for a function's frame of at most 64 slots (a set of str: its lookups
     * run no Python code). */
    uint64_t bits = 0;
    int by_slot = ce->loc_mode == LOC_FAST && ce->nslots <= 64;
    for (int i = 0; by_slot && i < ce->nslots; i++) {
        int in = names == Py_None ? 1 : PySet_Contains(names, PyTuple_GET_ITEM(ce->names, i));
        if (in < 0) {
            Py_DECREF(names);
            return NULL;
        }
        bits |= (uint64_t)in << i;
    }
    PyObject *quiet = CALL_PYTHON(t, PyObject_CallMethod(ce->info, "quiet", "O", line));
    int is_quiet = quiet == NULL ? -1 : PyObject_IsTrue(quiet);
    Py_XDECREF(quiet);
    if (is_quiet < 0) {
        Py_DECREF(names);
        return NULL;
    }
    tl->names = names; /* the code entry keeps it, for the tracer's lifetime */
    tl->slots = bits;
    tl->by_slot = by_slot;
    tl->quiet = is_quiet;
    return tl;
}

/* The writer's thread (threading.get_ident()), 0 while there is none: set_writer_thread. */
static unsigned long writer_thread;

/* Whether no thread but the calling one and the writer could run program code between two
 * callbacks: the program has one thread. (The writer runs none of the program's code; its
 * allocations may run a collection, which the carried log checks by the count of them.) */
static int
lone_thread(PyThreadState *tstate)
{
    PyInterpreterState *interp = PyThreadState_GetInterpreter(tstate);
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp); ts != NULL;
         ts = PyThreadState_Next(ts)) {
        if (ts != tstate && (writer_thread == 0 || ts->thread_id != writer_thread)) {
            return 0;
        }
    }
    return 1;
}

/* fp_carry_into for `frame`, on the calling thread, if it is the program's only one. */
static inline void
carry_into(Tracer *t, PyThreadState *tstate, const void *frame)
{
    if (frame != NULL && t->fp.carried == frame && lone_thread(tstate)) {
        t->fp.carries += fp_carry_into(&t->fp);
    }
}

/* Offer the log of parts to the callback after this one, for the frame `st`, if its current
 * line is quiet (state.quiet_lines): what runs until then is the rest of that line. */
static int
carry_from_line(Tracer *t, FrameState *st)
{
    CodeEntry *ce = st->ce;
    if (!st->has_info || ce->info == NULL || ce->demoted != BUDGET_LINES || st->line == NULL
        || !PyLong_CheckExact(st->line)) {
        return 0; /* (code the budget demoted runs its lines without events) */
    }
    long lineno = PyLong_AsLong(st->line);
    if (lineno <= 0) {
        return lineno == -1 && PyErr_Occurred() ? -1 : 0;
    }
    const TouchedLine *tl = touched_line_of(t, ce, lineno, st->line);
    if (tl == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    if (tl->quiet) {
        fp_carry_from(&t->fp, st->key);
    }
    return 0;
}

/* state.touched_now(st): the names the frame's last line could have changed in place, as a
 * borrowed frozenset, or NULL for None (check every name); *by_slot the same as slot bits, or
 * NULL. CodeInfo.touched(line) is asked once per line of each code object; the answers are kept
 * in the code entry. */
static int
touched_now(Tracer *t, FrameState *st, PyObject **out, const TouchedLine **by_slot)
{
    *out = NULL;
    *by_slot = NULL;
    /* Another traced thread ran since this frame's last check: it may have changed objects the
     * frame holds without a line of this frame naming them, so check every name (state.py).
     * t->last_th is the thread of the running callback (get_thread was its first step). */
    if (t->switch_th != t->last_th) {
        t->switch_th = t->last_th;
        t->switches++;
    }
    if (st->epoch != t->switches) {
        st->epoch = t->switches;
        return 0;
    }
    CodeEntry *ce = st->ce;
    if (!st->has_info || ce->info == NULL || st->line == Py_None) {
        return 0;
    }
    long lineno = PyLong_AsLong(st->line);
    if (lineno == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (lineno == 0) { /* `not st.line` */
        return 0;
    }
    if (st->touched_for == lineno) { /* the frame is still on the line it was last time */
        if (nothing_ran_during(t, st, st->touched_names)) {
            *out = empty_names;
            *by_slot = &no_names;
        }
        else {
            *out = st->touched_names;
            *by_slot = st->touched_line;
        }
        return 0;
    }
    const TouchedLine *tl = touched_line_of(t, ce, lineno, st->line);
    PyObject *names;
    if (tl != NULL) {
        names = tl->names;
    }
    else {
        if (PyErr_Occurred()) {
            return -1;
        }
        /* A line before the code's first line (a decorator's): kept by line in a dict. */
        if (ce->touched == NULL) {
            ce->touched = PyDict_New();
            if (ce->touched == NULL) {
                return -1;
            }
        }
        names = PyDict_GetItemWithError(ce->touched, st->line);
        if (names == NULL) {
            if (PyErr_Occurred()) {
                return -1;
            }
            names = ask_touched(t, ce, st->line);
            if (names == NULL) {
                return -1;
            }
            int rc = PyDict_SetItem(ce->touched, st->line, names);
            Py_DECREF(names); /* the code entry's dict keeps it, for the tracer's lifetime */
            if (rc < 0) {
                return -1;
            }
        }
    }
    *out = names == Py_None ? NULL : names;
    *by_slot = tl != NULL && tl->by_slot && names != Py_None ? tl : NULL;
    st->touched_for = lineno;
    st->touched_names = *out;
    st->touched_line = *by_slot;
    if (nothing_ran_during(t, st, *out)) {
        *out = empty_names;
        *by_slot = &no_names;
    }
    return 0;
}

/* The calling thread's table of the records its current list holds (versions.py:
 * ThreadState.written), kept on its CThread until its next hand-off. A new reference, NULL on
 * error. */
static PyObject *
records_written(Tracer *t)
{
    CThread *th = get_thread(t, 1);
    if (th == NULL) {
        return NULL;
    }
    if (th->written == NULL) {
        PyObject *written = PyObject_GetAttr(th->pyts, str_written);
        if (written != NULL && !PyDict_CheckExact(written)) {
            Py_DECREF(written);
            PyErr_SetString(PyExc_TypeError, "ThreadState.written must be a dict");
            return NULL;
        }
        th->written = written;
    }
    return Py_XNewRef(th->written);
}

/* object_records.grown in C: `record` as an R_GROWN change of `old` where it is one (both a
 * sequence's or both a map's record, of the same type, `old`'s item or pair forms first), else
 * `record` itself. New reference. */
static PyObject *
records_grown(PyObject *old, PyObject *record)
{
    if (!PyTuple_CheckExact(old) || !PyTuple_CheckExact(record) || PyTuple_GET_SIZE(old) < 4
        || PyTuple_GET_SIZE(record) < 4) {
        return Py_NewRef(record);
    }
    PyObject *kind = PyTuple_GET_ITEM(record, 0), *old_kind = PyTuple_GET_ITEM(old, 0);
    long k = PyLong_CheckExact(kind) ? PyLong_AsLong(kind) : -1;
    if ((k != R_TAG_SEQ && k != R_TAG_MAP) || !PyLong_CheckExact(old_kind)
        || PyLong_AsLong(old_kind) != k) {
        return Py_NewRef(record);
    }
    PyObject *forms = PyTuple_GET_ITEM(record, 3), *old_forms = PyTuple_GET_ITEM(old, 3);
    if (!PyList_CheckExact(forms) || !PyList_CheckExact(old_forms)
        || PyList_GET_SIZE(forms) < PyList_GET_SIZE(old_forms)) {
        return Py_NewRef(record);
    }
    int same = PyObject_RichCompareBool(PyTuple_GET_ITEM(old, 1), PyTuple_GET_ITEM(record, 1),
                                        Py_EQ);
    Py_ssize_t n = PyList_GET_SIZE(old_forms);
    for (Py_ssize_t i = 0; same > 0 && i < n; i++) {
        same = PyObject_RichCompareBool(PyList_GET_ITEM(old_forms, i), PyList_GET_ITEM(forms, i),
                                        Py_EQ);
    }
    if (same <= 0) {
        return same < 0 ? NULL : Py_NewRef(record);
    }
    PyObject *more = PyList_GetSlice(forms, n, PyList_GET_SIZE(forms));
    return more != NULL ? Py_BuildValue("(iON)", R_TAG_GROWN, PyTuple_GET_ITEM(record, 2), more)
                        : NULL;
}

/* One changed name's records in C (fp_records, from the tree just made): those the list's
 * table does not hold in that version go to `out`, then the name's entry. 1 done, 0 not mine
 * (the Python record encoder's), -1 error. */
static int
name_records(Tracer *t, PyObject *written, PyObject *name, PyObject *v, PyObject *tree,
             PairBuf *out)
{
    PyObject *made = PyDict_New(), *entry = NULL;
    int r = made != NULL ? fp_records(&t->fp, v, tree, &entry, made, written) : -1;
    Py_ssize_t pos = 0;
    PyObject *oid, *record;
    while (r > 0 && PyDict_Next(made, &pos, &oid, &record)) {
        PyObject *old = PyDict_GetItemWithError(written, oid);
        if (old == record) {
            continue; /* the same record, kept by fp_records: already in this list */
        }
        int same = old != NULL ? PyObject_RichCompareBool(old, record, Py_EQ) : 0;
        PyObject *put = same < 0 ? NULL : same ? NULL : old != NULL ? records_grown(old, record)
                                                                    : Py_NewRef(record);
        if (same < 0 || (!same && put == NULL)) {
            r = -1;
            break;
        }
        if (same) {
            r = PyDict_SetItem(written, oid, record) < 0 ? -1 : 1; /* the identical one now */
            continue;
        }
        /* Records are trees of tuples and lists of atoms, as vencs are: kept out of the
         * collector's way (untrack_venc). */
        untrack_venc(record, 0);
        untrack_venc(put, 0);
        r = PyDict_SetItem(written, oid, record) < 0 || pb_add(out, oid, put) < 0 ? -1 : 1;
        Py_DECREF(put);
    }
    if (r > 0 && pb_add(out, name, entry) < 0) {
        r = -1;
    }
    Py_XDECREF(entry);
    Py_XDECREF(made);
    return r;
}

/* A recording of object records: `*pchanges` (flat names and trees) replaced by the names'
 * entries and records (versions.py). A change of an atom or leaf is its own entry; a container
 * or object's records are made in C where fp_records can, else by versions.records_for (the
 * Python record encoder). The values are read as the diff read them: fast locals by slot, else from
 * the mapping `loc`. */
static int
to_records(Tracer *t, FrameState *st, _PyInterpreterFrame *f, PyObject *loc, PyObject **pchanges)
{
    PyObject *changes = *pchanges;
    /* Only containers and objects have records: changes of atoms and leaves alone (most of
     * them) stay as they are. */
    int any = 0;
    for (Py_ssize_t k = 1; k < PyTuple_GET_SIZE(changes) && !any; k += 2) {
        PyObject *tree = PyTuple_GET_ITEM(changes, k);
        any = PyTuple_CheckExact(tree) && PyTuple_GET_SIZE(tree) == 5;
    }
    if (!any) {
        return 0;
    }
    PyObject *written = records_written(t);
    if (written == NULL) {
        return -1;
    }
    PairBuf out;
    pb_init(&out);
    int rc = 0;
    for (Py_ssize_t k = 0; rc == 0 && k < PyTuple_GET_SIZE(changes); k += 2) {
        PyObject *name = PyTuple_GET_ITEM(changes, k), *tree = PyTuple_GET_ITEM(changes, k + 1);
        PyObject *v = NULL;
        int slow = 1;
        if (!(PyTuple_CheckExact(tree) && PyTuple_GET_SIZE(tree) == 5)) {
            rc = pb_add(&out, name, tree);
            continue;
        }
        if (loc == NULL) {
            for (int i = 0; i < st->nslots; i++) {
                if (PyTuple_GET_ITEM(st->ce->names, i) == name) {
                    v = read_slot(st->ce->kinds, f->localsplus, i);
                    slow = st->ce->slow[i];
                    break;
                }
            }
            Py_XINCREF(v);
        }
        else if (PyDict_Check(loc)) {
            v = PyDict_GetItemWithError(loc, name);
            Py_XINCREF(v);
        }
        else {
            v = PyObject_GetItem(loc, name);
        }
        if (v == NULL) {
            if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_KeyError)) {
                rc = -1;
                break;
            }
            PyErr_Clear();
            rc = pb_add(&out, name, tree); /* no value to read: the tree is its own entry */
            continue;
        }
        int r = !slow && t->fp.enabled ? name_records(t, written, name, v, tree, &out) : 0;
        if (r == 0) {
            /* The Python record encoder, for this name (versions.records_for). */
            PyObject *values = Py_BuildValue("{OO}", name, v);
            PyObject *one = values != NULL ? PyTuple_Pack(2, name, tree) : NULL;
            PyObject *got = NULL;
            if (one != NULL) {
                got = CALL_PYTHON(t, PyObject_CallFunctionObjArgs(t->records_for, values, one, NULL));
            }
            Py_XDECREF(values);
            Py_XDECREF(one);
            if (got == NULL || !PyTuple_CheckExact(got)) {
                if (got != NULL) {
                    PyErr_SetString(PyExc_TypeError, "records_for must return a tuple");
                }
                Py_XDECREF(got);
                r = -1;
            }
            else {
                for (Py_ssize_t j = 0; r == 0 && j + 1 < PyTuple_GET_SIZE(got); j += 2) {
                    r = pb_add(&out, PyTuple_GET_ITEM(got, j), PyTuple_GET_ITEM(got, j + 1));
                }
                Py_DECREF(got);
            }
        }
        Py_DECREF(v);
        rc = r < 0 ? -1 : 0;
    }
    Py_DECREF(written);
    if (rc < 0) {
        pb_clear(&out);
        return -1;
    }
    PyObject *flat = pb_take_tuple(&out);
    if (flat == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    Py_SETREF(*pchanges, flat);
    return 0;
}

/* state.diff_locals(st, frame, encode_named, touched): new references (or NULL for None) in
 * pchanges, pdeleted. `narrow` passes touched_now(st), as sysmon.py does for LINE, exception and
 * leave events (PY_START and PY_RESUME check every name). */
static int
diff_locals(Tracer *t, FrameState *st, _PyInterpreterFrame *f, int narrow, PyObject **pchanges,
            PyObject **pdeleted)
{
    *pchanges = NULL;
    *pdeleted = NULL;
    if (st->ce->loc_mode == LOC_NONE) {
        return 0;
    }
    Diff d; /* field by field: the two buffers' inline arrays need no zeroing */
    d.fast = NULL;
    d.loc = NULL;
    d.touched = NULL;
    d.touched_line = NULL;
    d.mutated = 0;
    d.nold = 0;
    pb_init(&d.changes);
    pb_init(&d.rechecked);
    if (narrow && touched_now(t, st, &d.touched, &d.touched_line) < 0) {
        return -1;
    }
    Py_XINCREF(d.touched);
    int rc;
    switch (st->ce->loc_mode) {
    case LOC_FAST:
        d.fast = f->localsplus;
        rc = diff_fast(t, st, &d, pchanges, pdeleted);
        break;
    case LOC_GLOBALS:
        /* Module bodies: their globals, never f_locals (trap 1). */
        d.loc = Py_NewRef(f->f_globals);
        rc = diff_mapping(t, st, &d, pchanges, pdeleted);
        break;
    default: {
        /* Class bodies (and anything unusual): frame.f_locals itself. Rare, not fast. */
        PyFrameObject *fo = PyEval_GetFrame();
        if (fo == NULL || ((struct _frame *)fo)->f_frame != f) {
            PyErr_SetString(PyExc_RuntimeError, "the traced frame is not the current frame");
            rc = -1;
            break;
        }
        d.loc = PyFrame_GetLocals(fo);
        rc = d.loc == NULL ? -1 : diff_mapping(t, st, &d, pchanges, pdeleted);
        break;
    }
    }
    if (rc == 0 && *pchanges != NULL && t->records_for != NULL) {
        rc = to_records(t, st, f, d.loc, pchanges);
    }
    pb_clear(&d.changes);
    pb_clear(&d.rechecked);
    Py_XDECREF(d.loc);
    Py_XDECREF(d.touched);
    return rc;
}

/* The object a remembered name is bound to (its snapshot id), or NULL. */
static void *
snap_id_of(FrameState *st, PyObject *name)
{
    if (st->snap != NULL) {
        PyObject *rec = PyDict_GetItemWithError(st->snap, name);
        return rec != NULL ? PyLong_AsVoidPtr(PyTuple_GET_ITEM(rec, 0)) : NULL;
    }
    for (int i = 0; i < st->nslots; i++) {
        if (PyTuple_GET_ITEM(st->ce->names, i) == name && st->slots[i].venc != NULL) {
            return st->slots[i].id;
        }
    }
    return NULL;
}

/* state.settle_unnamed: redact remembered steps whose value this event binds to a secret-looking
 * name; `final` (a LINE: the statement that received the value is over) forgets the rest. */
static int
settle_unnamed(CThread *th, FrameState *st, PyObject *changes, int final)
{
    if (th->n_unnamed == 0) {
        return 0;
    }
    if (changes != NULL) {
        void *secret_ids[64];
        int n_ids = 0;
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(changes); k += 2) {
            PyObject *venc = PyTuple_GET_ITEM(changes, k + 1);
            if (!PyTuple_CheckExact(venc) || PyTuple_GET_SIZE(venc) == 0) {
                continue;
            }
            PyObject *tag = PyTuple_GET_ITEM(venc, 0);
            if (!PyLong_CheckExact(tag) || PyLong_AsLong(tag) != 4 /* V_REDACTED */) {
                continue;
            }
            void *id = snap_id_of(st, PyTuple_GET_ITEM(changes, k));
            if (id == NULL) {
                if (PyErr_Occurred()) {
                    return -1;
                }
                continue;
            }
            if (n_ids < 64) {
                secret_ids[n_ids++] = id;
            }
        }
        for (int p = 0; p < th->n_unnamed && n_ids; p++) {
            for (int j = 0; j < n_ids; j++) {
                if (th->unnamed[p].id == secret_ids[j]) {
                    if (redact_step(th, th->unnamed[p].step) < 0) {
                        return -1;
                    }
                    break;
                }
            }
        }
    }
    if (final) {
        th->n_unnamed = 0;
        return unnamed_sync(th);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* Callee names (replay/recorder/callees.py)                                                   */

/* callees.python_code: the code a call to `c` starts running, if a plain Python function. */
static PyObject *
python_code(PyObject *c)
{
    if (Py_IS_TYPE(c, &PyFunction_Type)) {
        return PyFunction_GET_CODE(c);
    }
    if (Py_IS_TYPE(c, &PyMethod_Type)) {
        PyObject *func = PyMethod_GET_FUNCTION(c);
        if (Py_IS_TYPE(func, &PyFunction_Type)) {
            return PyFunction_GET_CODE(func);
        }
    }
    return NULL;
}

/* "module.qualname", or qualname when module is not an exact str (new reference). */
static PyObject *
join_name(PyObject *module, PyObject *qualname)
{
    if (module != NULL && PyUnicode_CheckExact(module)) {
        return PyUnicode_FromFormat("%U.%U", module, qualname);
    }
    return Py_NewRef(qualname);
}

/* callees.type_name(cls) through type's own descriptors. NULL with no error set means "let
 * the Python function decide" (an unusual class). */
static PyObject *
type_name_c(Tracer *t, PyObject *cls)
{
    PyObject *qual = Py_TYPE(t->type_qualname)->tp_descr_get(t->type_qualname, cls, NULL);
    if (qual == NULL) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *module = Py_TYPE(t->type_module)->tp_descr_get(t->type_module, cls, NULL);
    if (module == NULL) {
        PyErr_Clear();
        Py_DECREF(qual);
        return NULL;
    }
    PyObject *res = NULL;
    if (PyUnicode_CheckExact(qual) && PyUnicode_CheckExact(module)) {
        if (PyUnicode_CompareWithASCIIString(module, "builtins") == 0) {
            res = Py_NewRef(qual);
        }
        else {
            res = PyUnicode_FromFormat("%U.%U", module, qual);
        }
    }
    Py_DECREF(qual);
    Py_DECREF(module);
    return res;
}

/* callees.callee_name for the common callables, NULL without error to ask the Python function. */
static PyObject *
callee_name_c(Tracer *t, PyObject *c, int depth)
{
    PyTypeObject *kind = Py_TYPE(c);
    if (kind == &PyFunction_Type) {
        PyFunctionObject *fn = (PyFunctionObject *)c;
        if (fn->func_qualname == NULL || !PyUnicode_CheckExact(fn->func_qualname)) {
            return NULL;
        }
        return join_name(fn->func_module, fn->func_qualname);
    }
    if (kind == &PyMethod_Type) {
        return depth < 8 ? callee_name_c(t, PyMethod_GET_FUNCTION(c), depth + 1) : NULL;
    }
    if (kind == &PyCFunction_Type || kind == &PyMethodDescr_Type || kind == &PyWrapperDescr_Type
        || kind == method_wrapper_type) {
        PyObject *qual = PyObject_GetAttr(c, str_qualname);
        if (qual == NULL) {
            PyErr_Clear();
            return NULL;
        }
        if (!PyUnicode_CheckExact(qual)) {
            Py_DECREF(qual);
            return NULL;
        }
        if (kind == &PyCFunction_Type) {
            PyObject *owner = PyCFunction_GET_SELF(c);
            if (owner != NULL && Py_IS_TYPE(owner, &PyModule_Type)) {
                PyObject *d = PyModule_GetDict(owner);
                PyObject *module = d ? PyDict_GetItemWithError(d, str_name) : NULL;
                if (module == NULL && PyErr_Occurred()) {
                    PyErr_Clear();
                    Py_DECREF(qual);
                    return NULL;
                }
                if (module != NULL && PyUnicode_CheckExact(module)) {
                    PyObject *res = PyUnicode_FromFormat("%U.%U", module, qual);
                    Py_DECREF(qual);
                    return res;
                }
            }
        }
        return qual;
    }
    if (PyType_IsSubtype(kind, &PyType_Type)) {
        return type_name_c(t, c);
    }
    return type_name_c(t, (PyObject *)kind);
}

static PyObject *
callee_name(Tracer *t, PyObject *c)
{
    PyObject *name = callee_name_c(t, c, 0);
    if (name != NULL || PyErr_Occurred()) {
        return name;
    }
    return CALL_PYTHON(t, PyObject_CallOneArg(t->callee_name, c));
}

/* ------------------------------------------------------------------------------------------- */
/* The callbacks (sysmon.py's closures, same names)                                            */

#define CHECK_NARGS(n, want)                                                                      \
    if ((n) < (want)) {                                                                           \
        PyErr_SetString(PyExc_TypeError, "missing sys.monitoring callback arguments");            \
        return callback_error(t);                                                                 \
    }

static PyObject *
cb_py_start(Tracer *t, PyObject *const *args, Py_ssize_t nargs)
{
    CHECK_NARGS(nargs, 2);
    PyObject *code = args[0];
    FrameState *st = NULL;
    PyObject *changes = NULL, *deleted = NULL, *payload = NULL;
    CodeEntry *ce = code_get(t, code);
    if (ce == NULL || !ce->registered) {
        int want = ce != NULL && ce->scope >= 0 ? ce->scope : scope_wants(t, code);
        if (want < 0) {
            goto error;
        }
        if (!want) {
            return Py_NewRef(t->disable);
        }
        ce = code_register(t, code);
        if (ce == NULL) {
            goto error;
        }
    }
    else if (ce->demoted == BUDGET_OFF) {
        return Py_NewRef(t->disable); /* the budget turned its new calls off (budget.py) */
    }
    PyThreadState *tstate = PyThreadState_GET(); /* once: a TLS lookup in libpython */
    _PyInterpreterFrame *f = _PyThreadState_GetFrame(tstate);
    if (f == NULL) {
        Py_RETURN_NONE;
    }
    CThread *th = get_thread_of(t, tstate, 1);
    if (th == NULL) {
        goto error;
    }
    Py_INCREF(th);
    if (th->depth && !(((PyCodeObject *)code)->co_flags & (CO_VARARGS | CO_VARKEYWORDS))
        && _PyFrame_GetFirstComplete(f->previous) == th->stack[th->depth - 1]->key) {
        /* Called by the frame that offered the log (its CALL of in-scope code passed the offer
         * on, cb_call), not by code out of scope in between; binding the arguments makes
         * nothing, unless it packs *args or **kwargs. */
        carry_into(t, tstate, th->stack[th->depth - 1]->key);
    }
    PyObject *parent = th->depth ? th->stack[th->depth - 1]->call_id : t->zero;
    Py_INCREF(parent);
    st = fs_new(t, ce, f);
    if (st == NULL) {
        Py_DECREF(parent);
        Py_DECREF(th);
        goto error;
    }
    PyObject *line = frame_line(f, ce);
    if (line == NULL) {
        Py_DECREF(parent);
        Py_DECREF(th);
        goto error;
    }
    Py_SETREF(st->line, line);
    if (diff_locals(t, st, f, 0, &changes, &deleted) < 0) {
        Py_DECREF(parent);
        Py_DECREF(th);
        goto error;
    }
    Py_CLEAR(deleted); /* `changes, _ = diff_locals(...)` */
    if (settle_unnamed(th, st, changes, 0) < 0) {
        Py_DECREF(parent);
        Py_DECREF(th);
        goto error;
    }
    payload = PyTuple_Pack(2, ce->code_id, parent);
    Py_DECREF(parent);
    if (payload == NULL || th_push(th, st) < 0) {
        Py_DECREF(th);
        goto error;
    }
    int rc = emit(t, th, K_CALL, st->call_id, st->line, payload, changes, NULL, 1);
    fp_carry_from(&t->fp, st->key); /* the prologue until its first line makes nothing */
    payload = changes = NULL;
    Py_DECREF(th);
    Py_DECREF(st);
    if (rc < 0) {
        return callback_error(t);
    }
    Py_RETURN_NONE;
error:
    Py_XDECREF(st);
    Py_XDECREF(changes);
    Py_XDECREF(deleted);
    Py_XDECREF(payload);
    return callback_error(t);
}

/* An event of a code object the budget turned off (BUDGET_OFF), once no frame of it that was
 * recorded is left: nothing of it is recorded any more, so its local events are switched off
 * (sys.monitoring), instead of calling back at each return, yield and resume of each new call
 * to be ignored (at the clock's price twice per event, with a budget: a seventh of a demoted
 * richards' run). 1: ignore the event, 0: not such a code object, -1: error. */
static int
off_code_event(Tracer *t, CodeEntry *ce)
{
    if (ce == NULL || ce->demoted != BUDGET_OFF || ce->live > 0) {
        return 0;
    }
    if (!ce->events_off && !t->st_on && t->set_local_events != NULL) {
        ce->events_off = 1;
        if (set_local_events(t, ce->code, t->zero) < 0) {
            return -1;
        }
    }
    return 1;
}

/* off_code_event for `code`, looked up only with a budget: without one no code is turned off,
 * and a yield or resume has no other use for its code entry. */
static inline int
off_event(Tracer *t, PyObject *code)
{
    return t->budget_on ? off_code_event(t, code_get(t, code)) : 0;
}

static PyObject *
cb_py_resume(Tracer *t, PyObject *const *args, Py_ssize_t nargs)
{
    CHECK_NARGS(nargs, 2);
    PyObject *code = args[0];
    int off = off_event(t, code);
    if (off != 0) {
        return off < 0 ? callback_error(t) : Py_NewRef(Py_None);
    }
    PyThreadState *tstate = PyThreadState_GET(); /* once: a TLS lookup in libpython */
    _PyInterpreterFrame *f = _PyThreadState_GetFrame(tstate);
    if (f == NULL) {
        Py_RETURN_NONE;
    }
    FrameState *st = pm_pop(&t->suspended, f); /* owned */
    CThread *th = get_thread_of(t, tstate, 1);
    if (th == NULL) {
        Py_XDECREF(st);
        return callback_error(t);
    }
    Py_INCREF(th);
    int rc;
    if (st == NULL) {
        /* Started before recording began: adopt it as a call. */
        FrameState *adopted = current(t, th, f, code);
        rc = adopted != NULL || !PyErr_Occurred() ? 0 : -1;
        Py_XDECREF(adopted);
    }
    else {
        PyObject *changes, *deleted;
        rc = th_push(th, st);
        if (rc == 0) {
            rc = diff_locals(t, st, f, 0, &changes, &deleted);
        }
        if (rc == 0) {
            PyObject *line = frame_line(f, st->ce);
            if (line == NULL) {
                Py_XDECREF(changes);
                Py_XDECREF(deleted);
                rc = -1;
            }
            else {
                rc = emit(t, th, K_RESUME, st->call_id, line, NULL, changes, deleted, 1);
                Py_DECREF(line);
            }
        }
        Py_DECREF(st);
    }
    Py_DECREF(th);
    if (rc < 0) {
        return callback_error(t);
    }
    Py_RETURN_NONE;
}

/* The payload of a RETURN or YIELD step (a new reference): the value, encoded, or redacted for
 * a secret-looking function (def get_password(): ...); any other str/bytes stays open to
 * redaction until the next line (note_unnamed). Both cores' leave. */
static PyObject *
returned_value(Tracer *t, CThread *th, FrameState *st, int kind, PyObject *value,
               unsigned long long step)
{
    CodeEntry *ce = st->ce;
    if (kind == K_RETURN && st->has_info && ce->info != NULL) {
        if (ce->secret_name < 0) {
            PyObject *fname = PyObject_GetAttrString(ce->info, "name");
            int secret = fname == NULL ? -1 : name_is_secret(t, fname);
            Py_XDECREF(fname);
            if (secret < 0) {
                return NULL;
            }
            ce->secret_name = secret;
        }
        if (ce->secret_name) {
            return redacted(value);
        }
    }
    PyObject *payload = encode_value(t, t->empty_str, t->slow_empty, value);
    if (payload != NULL && note_unnamed(th, step, payload) < 0) {
        Py_DECREF(payload);
        return NULL;
    }
    return payload;
}

/* ts.stack.pop() of the leaving frame `st` (the top), and for a YIELD its suspension. */
static int
pop_frame(Tracer *t, CThread *th, FrameState *st, int kind)
{
    if (th->depth) {
        FrameState *top = th->stack[--th->depth];
        Py_DECREF(top);
    }
    if (kind != K_YIELD && st->ce->live > 0) {
        st->ce->live--; /* its call ended (off_code_event) */
    }
    if (kind == K_YIELD) {
        void *old;
        Py_INCREF(st);
        if (pm_put(&t->suspended, st->key, st, &old) < 0) {
            Py_DECREF(st);
            return -1;
        }
        Py_XDECREF((PyObject *)old);
    }
    return 0;
}

/* sysmon's leave(): RETURN, YIELD or UNWIND of an in-scope frame. */
static int
leave(Tracer *t, PyObject *code, int kind, PyObject *value, int is_exc)
{
    PyThreadState *tstate = PyThreadState_GET(); /* once: a TLS lookup in libpython */
    _PyInterpreterFrame *f = _PyThreadState_GetFrame(tstate);
    if (f == NULL) {
        return 0;
    }
    CThread *th = get_thread_of(t, tstate, 1);
    if (th == NULL) {
        return -1;
    }
    Py_INCREF(th);
    int rc = -1;
    PyObject *changes = NULL, *deleted = NULL, *payload = NULL;
    FrameState *st = current(t, th, f, code);
    if (st == NULL) {
        goto done;
    }
    if (kind == K_RETURN) {
        carry_into(t, tstate, st->key);
    }
    if (st->pending != NULL && finish_pending(t, th, st, NULL, NULL, 0) < 0) {
        goto done;
    }
    if (diff_locals(t, st, f, 1, &changes, &deleted) < 0
        || settle_unnamed(th, st, changes, 0) < 0) {
        goto done;
    }
    unsigned long long step = ++t->steps;
    payload = is_exc ? encode_exception(t, value) : returned_value(t, th, st, kind, value, step);
    if (payload == NULL || pop_frame(t, th, st, kind) < 0) {
        goto done;
    }
    PyObject *line = frame_line(f, st->ce);
    if (line == NULL) {
        goto done;
    }
    rc = emit_step(t, th, kind, step, st->call_id, line, payload, changes, deleted, 1);
    payload = changes = deleted = NULL;
    Py_DECREF(line);
    if (rc == 0 && kind == K_RETURN && th->depth
        && _PyFrame_GetFirstComplete(f->previous) == th->stack[th->depth - 1]->key) {
        /* Its caller (in scope, not code out of scope in between) runs the rest of the line
         * that called: quiet, or an event comes first. */
        rc = carry_from_line(t, th->stack[th->depth - 1]);
    }
done:
    Py_XDECREF(payload);
    Py_XDECREF(changes);
    Py_XDECREF(deleted);
    Py_XDECREF(st);
    Py_DECREF(th);
    return rc;
}

/* sysmon's external_return: an out-of-scope Python callee of in-scope code returned (exc NULL)
 * or unwound: complete its caller's pending step with what it gave. */
static int
external_return(Tracer *t, PyObject *code, PyObject *retval, PyObject *exc)
{
    PyThreadState *tstate = PyThreadState_GET(); /* once: a TLS lookup in libpython */
    _PyInterpreterFrame *f = _PyThreadState_GetFrame(tstate);
    if (f == NULL) {
        return 0;
    }
    _PyInterpreterFrame *caller = _PyFrame_GetFirstComplete(f->previous); /* frame.f_back */
    if (caller == NULL) {
        return 0;
    }
    CThread *th = get_thread_of(t, tstate, 0);
    if (th == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    if (!th->depth) {
        return 0;
    }
    FrameState *st = th->stack[th->depth - 1];
    if (st->key != caller || st->pending == NULL || st->pending_code != (void *)code) {
        return 0;
    }
    Py_INCREF(th);
    Py_INCREF(st);
    int rc = -1;
    if (exc != NULL) {
        PyObject *e = encode_exception(t, exc);
        if (e != NULL) {
            rc = finish_pending(t, th, st, NULL, e, 1);
        }
    }
    else {
        PyObject *v = encode_value(t, t->empty_str, t->slow_empty, retval);
        if (v != NULL) {
            rc = finish_pending(t, th, st, v, NULL, 1);
        }
    }
    Py_DECREF(st);
    Py_DECREF(th);
    return rc;
}

static PyObject *
cb_py_return(Tracer *t, PyObject *const *args, Py_ssize_t nargs)
{
    CHECK_NARGS(nargs, 3);
    CodeEntry *ce = code_get(t, args[0]);
    int rc = off_code_event(t, ce);
    if (rc == 0) {
        rc = ce == NULL || !ce->registered ? external_return(t, args[0], args[2], NULL)
                                           : leave(t, args[0], K_RETURN, args[2], 0);
    }
    if (rc < 0) {
        return callback_error(t);
    }
    Py_RETURN_NONE;
}

static PyObject *
cb_py_yield(Tracer *t, PyObject *const *args, Py_ssize_t nargs)
{
    CHECK_NARGS(nargs, 3);
    int rc = off_event(t, args[0]);
    if (rc < 0 || (rc == 0 && leave(t, args[0], K_YIELD, args[2], 0) < 0)) {
        return callback_error(t);
    }
    Py_RETURN_NONE;
}

static PyObject *
cb_py_unwind(Tracer *t, PyObject *const *args, Py_ssize_t nargs)
{
    CHECK_NARGS(nargs, 3);
    /* A global event: every unwinding frame of the process comes here, hence the early exit. */
    CodeEntry *ce = code_get(t, args[0]);
    int rc = 0;
    if (ce == NULL || !ce->registered) {
        if (ce != NULL && ce->external) {
            rc = external_return(t, args[0], NULL, args[2]);
        }
    }
    else {
        rc = leave(t, args[0], K_UNWIND, args[2], 1);
    }
    if (rc < 0) {
        return callback_error(t);
    }
    Py_RETURN_NONE;
}

/* sysmon's exception_event(kind): RAISE and EXCEPTION_HANDLED (global events). */
static PyObject *
exception_event(Tracer *t, PyObject *const *args, Py_ssize_t nargs, int kind)
{
    CHECK_NARGS(nargs, 3);
    PyObject *code = args[0], *exc = args[2];
    CodeEntry *ce = code_get(t, code);
    if (ce == NULL || !ce->registered) {
        Py_RETURN_NONE;
    }
    PyThreadState *tstate = PyThreadState_GET(); /* once: a TLS lookup in libpython */
    _PyInterpreterFrame *f = _PyThreadState_GetFrame(tstate);
    if (f == NULL) {
        Py_RETURN_NONE;
    }
    CThread *th = get_thread_of(t, tstate, 1);
    if (th == NULL) {
        return callback_error(t);
    }
    Py_INCREF(th);
    int rc = -1;
    PyObject *changes = NULL, *deleted = NULL;
    FrameState *st = current(t, th, f, code);
    if (st == NULL) {
        goto done;
    }
    if (st->pending != NULL) {
        PyObject *e = encode_exception(t, exc);
        if (e == NULL || finish_pending(t, th, st, NULL, e, 1) < 0) {
            goto done;
        }
    }
    if (diff_locals(t, st, f, 1, &changes, &deleted) < 0
        || settle_unnamed(th, st, changes, 0) < 0) {
        goto done;
    }
    PyObject *line = frame_line(f, st->ce);
    if (line == NULL) {
        goto done;
    }
    Py_SETREF(st->line, line);
    PyObject *payload = encode_exception(t, exc);
    if (payload == NULL) {
        goto done;
    }
    rc = emit(t, th, kind, st->call_id, st->line, payload, changes, deleted, 1);
    changes = deleted = NULL;
done:
    Py_XDECREF(changes);
    Py_XDECREF(deleted);
    Py_XDECREF(st);
    Py_DECREF(th);
    if (rc < 0) {
        return callback_error(t);
    }
    Py_RETURN_NONE;
}

static PyObject *
cb_raise(Tracer *t, PyObject *const *args, Py_ssize_t nargs)
{
    return exception_event(t, args, nargs, K_RAISE);
}

static PyObject *
cb_exception_handled(Tracer *t, PyObject *const *args, Py_ssize_t nargs)
{
    return exception_event(t, args, nargs, K_HANDLED);
}

static PyObject *
cb_py_throw(Tracer *t, PyObject *const *args, Py_ssize_t nargs)
{
    CHECK_NARGS(nargs, 3);
    PyObject *code = args[0], *exc = args[2];
    CodeEntry *ce = code_get(t, code);
    if (ce == NULL || !ce->registered) {
        Py_RETURN_NONE;
    }
    PyThreadState *tstate = PyThreadState_GET(); /* once: a TLS lookup in libpython */
    _PyInterpreterFrame *f = _PyThreadState_GetFrame(tstate);
    if (f == NULL) {
        Py_RETURN_NONE;
    }
    FrameState *st = pm_pop(&t->suspended, f); /* owned */
    CThread *th = get_thread_of(t, tstate, 1);
    if (th == NULL) {
        Py_XDECREF(st);
        return callback_error(t);
    }
    Py_INCREF(th);
    int rc = -1;
    if (st != NULL) {
        if (th_push(th, st) < 0) {
            goto done;
        }
    }
    else {
        st = current(t, th, f, code);
        if (st == NULL) {
            goto done;
        }
    }
    PyObject *line = frame_line(f, st->ce);
    if (line == NULL) {
        goto done;
    }
    PyObject *payload = encode_exception(t, exc);
    if (payload == NULL) {
        Py_DECREF(line);
        goto done;
    }
    rc = emit(t, th, K_THROW, st->call_id, line, payload, NULL, NULL, 1);
    Py_DECREF(line);
done:
    Py_XDECREF(st);
    Py_DECREF(th);
    if (rc < 0) {
        return callback_error(t);
    }
    Py_RETURN_NONE;
}

static PyObject *
cb_stop_iteration(Tracer *t, PyObject *const *args, Py_ssize_t nargs)
{
    CHECK_NARGS(nargs, 3);
    PyObject *code = args[0], *value = args[2];
    int off = off_event(t, code);
    if (off != 0) {
        return off < 0 ? callback_error(t) : Py_NewRef(Py_None);
    }
    PyThreadState *tstate = PyThreadState_GET(); /* once: a TLS lookup in libpython */
    _PyInterpreterFrame *f = _PyThreadState_GetFrame(tstate);
    if (f == NULL) {
        Py_RETURN_NONE;
    }
    CThread *th = get_thread_of(t, tstate, 1);
    if (th == NULL) {
        return callback_error(t);
    }
    Py_INCREF(th);
    int rc = -1;
    FrameState *st = current(t, th, f, code);
    if (st == NULL) {
        goto done;
    }
    /* settrace reports a StopIteration here, so we record one (see sysmon.py): the one
     * CPython passes where it made one, else one made for the value returned. */
    PyObject *e = PyObject_TypeCheck(value, (PyTypeObject *)PyExc_StopIteration)
                      ? Py_NewRef(value)
                  : value != Py_None ? PyObject_CallOneArg(PyExc_StopIteration, value)
                                     : PyObject_CallNoArgs(PyExc_StopIteration);
    if (e == NULL) {
        goto done;
    }
    PyObject *payload = encode_exception(t, e);
    Py_DECREF(e);
    if (payload == NULL) {
        goto done;
    }
    PyObject *line = frame_line(f, st->ce);
    if (line == NULL) {
        Py_DECREF(payload);
        goto done;
    }
    rc = emit(t, th, K_RAISE, st->call_id, line, payload, NULL, NULL, 1);
    Py_DECREF(line);
done:
    Py_XDECREF(st);
    Py_DECREF(th);
    if (rc < 0) {
        return callback_error(t);
    }
    Py_RETURN_NONE;
}

/* The hottest path: one call per executed line of in-scope code. Returns -1 with an error set. */
static int
line_event(Tracer *t, PyObject *code, PyObject *line)
{
    PyThreadState *tstate = PyThreadState_GET(); /* once: it is a TLS lookup in libpython */
    _PyInterpreterFrame *f = _PyThreadState_GetFrame(tstate);
    if (f == NULL) {
        return 0;
    }
    CThread *th = get_thread_of(t, tstate, 1);
    if (th == NULL) {
        return -1;
    }
    FrameState *st;
    if (th->depth && th->stack[th->depth - 1]->key == f) {
        st = (FrameState *)Py_NewRef(th->stack[th->depth - 1]);
    }
    else {
        st = current(t, th, f, code);
        if (st == NULL) {
            return PyErr_Occurred() ? -1 : 0;
        }
    }
    /* The thread state lives in the thread's dict and cannot go while this thread runs; the
     * frame state is held because the encoder (Python) may re-enter and pop it. */
    int rc = -1;
    PyObject *changes = NULL, *deleted = NULL;
    carry_into(t, tstate, st->key);
    if (st->pending != NULL && finish_pending(t, th, st, NULL, NULL, 0) < 0) {
        goto done;
    }
    if (diff_locals(t, st, f, 1, &changes, &deleted) < 0
        || settle_unnamed(th, st, changes, 1) < 0) {
        Py_XDECREF(changes);
        Py_XDECREF(deleted);
        goto done;
    }
    Py_INCREF(line);
    Py_SETREF(st->line, line);
    rc = emit(t, th, K_LINE, st->call_id, line, NULL, changes, deleted, 1);
    if (rc == 0) {
        rc = carry_from_line(t, st);
    }
done:
    Py_DECREF(st);
    return rc;
}

static PyObject *
cb_line(Tracer *t, PyObject *const *args, Py_ssize_t nargs)
{
    CHECK_NARGS(nargs, 2);
    if (line_event(t, args[0], args[1]) < 0) {
        return callback_error(t);
    }
    Py_RETURN_NONE;
}

static PyObject *
cb_jump(Tracer *t, PyObject *const *args, Py_ssize_t nargs)
{
    CHECK_NARGS(nargs, 3);
    /* Only same-line backward jumps (a one-line loop) give a LINE; every other jump location is
     * DISABLEd after its first call, as in sysmon.py. */
    long from = PyLong_AsLong(args[1]);
    long to = PyLong_AsLong(args[2]);
    if ((from == -1 || to == -1) && PyErr_Occurred()) {
        return callback_error(t);
    }
    if (to > from) {
        return Py_NewRef(t->disable);
    }
    CodeEntry *ce = code_get(t, args[0]);
    if (ce == NULL || !ce->registered) {
        return Py_NewRef(t->disable);
    }
    long to_line = line_of(ce, to);
    long from_line = line_of(ce, from);
    if (to_line == -2 || from_line == -2) {
        return callback_error(t);
    }
    if (to_line != from_line || to_line < 0) {
        return Py_NewRef(t->disable);
    }
    PyObject *line = line_obj(to_line);
    if (line == NULL) {
        return callback_error(t);
    }
    int rc = line_event(t, args[0], line);
    Py_DECREF(line);
    if (rc < 0) {
        return callback_error(t);
    }
    Py_RETURN_NONE;
}

static PyObject *
cb_call(Tracer *t, PyObject *const *args, Py_ssize_t nargs)
{
    CHECK_NARGS(nargs, 3);
    PyObject *code = args[0], *callable = args[2];
    PyObject *callee_code = python_code(callable);
    if (callee_code != NULL) {
        CodeEntry *cce = code_get(t, callee_code);
        if (cce != NULL && cce->registered) {
            fp_carry_through(&t->fp); /* its PY_START comes next */
            Py_RETURN_NONE; /* in-scope Python code: it gets its own CALL event */
        }
        int want = cce != NULL && cce->scope >= 0 ? cce->scope : scope_wants(t, callee_code);
        if (want < 0) {
            return callback_error(t);
        }
        /* Remember the decision (scope_wants is a pure function of the file name). */
        cce = code_get_or_make(t, callee_code);
        if (cce == NULL) {
            return callback_error(t);
        }
        cce->scope = want;
        if (want) {
            Py_RETURN_NONE;
        }
        if (!cce->external) {
            /* Listen to this library function's returns so its value is recorded. */
            cce->external = 1;
            if (set_local_events(t, callee_code, t->return_mask) < 0) {
                return callback_error(t);
            }
        }
    }
    PyThreadState *tstate = PyThreadState_GET(); /* once: a TLS lookup in libpython */
    _PyInterpreterFrame *f = _PyThreadState_GetFrame(tstate);
    if (f == NULL) {
        Py_RETURN_NONE;
    }
    CThread *th = get_thread_of(t, tstate, 1);
    if (th == NULL) {
        return callback_error(t);
    }
    Py_INCREF(th);
    int rc = -1;
    FrameState *st = current(t, th, f, code);
    if (st == NULL) {
        goto done;
    }
    if (st->pending != NULL && finish_pending(t, th, st, NULL, NULL, 0) < 0) {
        goto done;
    }
    PyObject *name = callee_name(t, callable);
    if (name == NULL) {
        goto done;
    }
    Py_XSETREF(st->pending, name);
    st->pending_code = callee_code;
    rc = 0;
done:
    Py_XDECREF(st);
    Py_DECREF(th);
    if (rc < 0) {
        return callback_error(t);
    }
    Py_RETURN_NONE;
}

static PyObject *
cb_c_return(Tracer *t, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    CThread *th = get_thread(t, 0);
    if (th == NULL) {
        if (!PyErr_Occurred()) { /* `local.ts` raises AttributeError in the Python core */
            PyErr_SetString(PyExc_AttributeError, "no thread state for a C_RETURN");
        }
        return callback_error(t);
    }
    if (th->depth) {
        FrameState *st = th->stack[th->depth - 1];
        if (st->pending != NULL && st->key == cur_frame()) {
            Py_INCREF(th);
            Py_INCREF(st);
            int rc = finish_pending(t, th, st, NULL, NULL, 0);
            Py_DECREF(st);
            Py_DECREF(th);
            if (rc < 0) {
                return callback_error(t);
            }
        }
    }
    Py_RETURN_NONE;
}

static PyObject *
cb_ignore(Tracer *t, PyObject *const *args, Py_ssize_t nargs)
{
    /* C_RAISE: the RAISE event that follows in the caller completes the pending step. It must
     * be registered for C_RETURN to fire. */
    (void)t;
    (void)args;
    (void)nargs;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------------------- */
/* The Tracer type                                                                             */

static PyObject *
get_attr_required(PyObject *obj, const char *name)
{
    PyObject *v = PyObject_GetAttrString(obj, name);
    return v;
}

static int
tracer_init(Tracer *t, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"state", "encode_exception", "callee_name", "batch", "max_string",
                             "max_int_digits", "is_secret", "inject", "fingerprint", NULL};
    PyObject *state, *encode_exception, *callee_name_fn, *is_secret = Py_None, *inject = Py_None;
    PyObject *fingerprint = Py_None;
    Py_ssize_t batch, max_string = -1;
    int int_digits = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOn|$niOOO", kwlist, &state, &encode_exception,
                                     &callee_name_fn, &batch, &max_string, &int_digits,
                                     &is_secret, &inject, &fingerprint)) {
        return -1;
    }
    if (t->state != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Tracer already initialised");
        return -1;
    }
    t->gen = next_gen++;
    t->state = Py_NewRef(state);
    t->encode_exception = Py_NewRef(encode_exception);
    t->callee_name = Py_NewRef(callee_name_fn);
    t->batch = batch > 0 ? batch : 1;
    if (!(t->encode_named = get_attr_required(state, "encode_named"))
        || !(t->register_code = get_attr_required(state, "register_code"))
        || !(t->thread_state = get_attr_required(state, "thread_state"))
        || !(t->hand_off = get_attr_required(state, "hand_off"))
        || !(t->fault = get_attr_required(state, "fault"))) {
        return -1;
    }
    PyObject *versions = PyObject_GetAttrString(state, "versions");
    if (versions == NULL) {
        PyErr_Clear(); /* a state without object records */
    }
    else if (versions != Py_None) {
        t->records_for = PyObject_GetAttrString(versions, "records_for");
        if (t->records_for == NULL) {
            Py_DECREF(versions);
            return -1;
        }
    }
    Py_XDECREF(versions);
    PyObject *scope = PyObject_GetAttrString(state, "scope");
    if (scope == NULL) {
        return -1;
    }
    t->scope_wants = PyObject_GetAttrString(scope, "wants");
    Py_DECREF(scope);
    if (t->scope_wants == NULL) {
        return -1;
    }
    PyObject *t0 = PyObject_GetAttrString(state, "t0");
    if (t0 == NULL) {
        return -1;
    }
    t->t0 = PyLong_AsLongLong(t0);
    Py_DECREF(t0);
    if (t->t0 == -1 && PyErr_Occurred()) {
        return -1;
    }
    /* The encoder's atom rule; without it (max_string < 0: not a SnapshotEncoder) every value
     * goes to the encoder, and its values are not untracked from the GC. */
    t->atoms_fast = max_string >= 0 && int_digits >= 1;
    t->max_string = max_string;
    t->int_digits = int_digits;
    t->int_limit = 1;
    for (int i = 0; i < int_digits && i < 18; i++) {
        t->int_limit *= 10;
    }
    if (t->atoms_fast) {
        PyObject *ten = PyLong_FromLong(10), *exp = PyLong_FromLong(int_digits);
        t->big = ten && exp ? PyNumber_Power(ten, exp, Py_None) : NULL;
        Py_XDECREF(ten);
        Py_XDECREF(exp);
        if (t->big == NULL || !(t->nbig = PyNumber_Negative(t->big))) {
            return -1;
        }
    }
    if (t->atoms_fast && fp_init(&t->fp, fingerprint) < 0) {
        return -1;
    }
    t->is_secret = is_secret == Py_None ? NULL : Py_NewRef(is_secret);
    if (inject != Py_None && !PyUnicode_Check(inject)) {
        PyErr_SetString(PyExc_TypeError, "inject must be a str or None");
        return -1;
    }
    t->inject = inject == Py_None ? NULL : Py_NewRef(inject);
    if (!(t->slow_names = PyDict_New()) || !(t->secret_names = PyDict_New())
        || !(t->zero = PyLong_FromLong(0))
        || !(t->empty_str = PyUnicode_FromString(""))) {
        return -1;
    }
    t->tls_key = PyUnicode_FromString("replay.recorder._ctracer.thread");
    if (t->tls_key == NULL) {
        return -1;
    }
    int slow = name_is_slow(t, t->empty_str);
    if (slow < 0) {
        return -1;
    }
    t->slow_empty = slow;
    PyObject *tdict = PyType_GetDict(&PyType_Type);
    if (tdict == NULL) {
        return -1;
    }
    t->type_qualname = Py_XNewRef(PyDict_GetItemString(tdict, "__qualname__"));
    t->type_module = Py_XNewRef(PyDict_GetItemString(tdict, "__module__"));
    Py_DECREF(tdict);
    if (t->type_qualname == NULL || t->type_module == NULL
        || Py_TYPE(t->type_qualname)->tp_descr_get == NULL
        || Py_TYPE(t->type_module)->tp_descr_get == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "type.__qualname__/__module__ descriptors not found");
        return -1;
    }
    return 0;
}

/* Read state.collecting (array('b', [0, 0])): 1 while the garbage collector runs, then the
 * count of collections modulo 128, which the fingerprinter's log of parts checks. Once. */
static int
watch_collecting(Tracer *t, PyObject *collecting)
{
    if (t->collecting.buf != NULL) {
        return 0;
    }
    if (PyObject_GetBuffer(collecting, &t->collecting, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    if (t->collecting.len < 1) {
        PyBuffer_Release(&t->collecting);
        PyErr_SetString(PyExc_TypeError, "collecting must be array('b', [0, 0])");
        return -1;
    }
    t->fp.gc_runs = t->collecting.len >= 2 ? (const char *)t->collecting.buf + 1 : NULL;
    return 0;
}

static PyObject *
tracer_bind(Tracer *t, PyObject *args)
{
    PyObject *tool, *disable, *sle, *local_mask, *return_mask;
    if (!PyArg_ParseTuple(args, "OOOOO", &tool, &disable, &sle, &local_mask, &return_mask)) {
        return NULL;
    }
    Py_XSETREF(t->tool, Py_NewRef(tool));
    Py_XSETREF(t->disable, Py_NewRef(disable));
    Py_XSETREF(t->set_local_events, Py_NewRef(sle));
    Py_XSETREF(t->local_mask, Py_NewRef(local_mask));
    Py_XSETREF(t->return_mask, Py_NewRef(return_mask));
    /* The redactor's test for callee and function names (set by the Recorder on the state). */
    PyObject *is_secret = PyObject_GetAttrString(t->state, "is_secret");
    if (is_secret == NULL) {
        PyErr_Clear();
    }
    Py_XSETREF(t->state_is_secret, is_secret);
    /* The count of collections (state.watch_gc), for the log of parts carried between
     * callbacks: a collection between two runs finalizers, which are program code. */
    PyObject *collecting = PyObject_GetAttrString(t->state, "collecting");
    int rc = collecting == NULL ? -1 : watch_collecting(t, collecting);
    Py_XDECREF(collecting);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* set_budget(review, call_mask, review_ns): turn the overhead budget on (budget.py). */
static PyObject *
tracer_set_budget(Tracer *t, PyObject *args)
{
    PyObject *review, *call_mask;
    long long review_ns;
    if (!PyArg_ParseTuple(args, "OOL", &review, &call_mask, &review_ns)) {
        return NULL;
    }
    PyObject *reason = PyUnicode_InternFromString("budget");
    if (reason == NULL) {
        return NULL;
    }
    Py_XSETREF(t->gap_budget, reason);
    Py_XSETREF(t->budget_review, Py_NewRef(review));
    Py_XSETREF(t->call_mask, Py_NewRef(call_mask));
    t->review_ns = review_ns > 0 ? review_ns : 1;
    t->window_start = now_ns();
    t->budget_on = 1;
    Py_RETURN_NONE;
}

/* Code objects this tracer set local events on (for stop() to clear them). The table is copied
 * first: building the list allocates, which can run a finalizer that re-enters a callback. */
static PyObject *
tracer_codes(Tracer *t, PyObject *Py_UNUSED(ignored))
{
    size_t n = 0;
    PyObject **codes = PyMem_Malloc(sizeof(PyObject *) * (t->codes.n + 1));
    if (codes == NULL) {
        return PyErr_NoMemory();
    }
    for (size_t i = 0; i < t->codes.cap; i++) {
        CodeEntry *ce = t->codes.e[i].val;
        if (t->codes.e[i].key != NULL && (ce->registered || ce->external)) {
            codes[n++] = Py_NewRef(ce->code);
        }
    }
    PyObject *out = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; i < n; i++) {
        if (out != NULL) {
            PyList_SET_ITEM(out, (Py_ssize_t)i, codes[i]);
        }
        else {
            Py_DECREF(codes[i]);
        }
    }
    PyMem_Free(codes);
    return out;
}

static void st_release(Tracer *t); /* _ctracer_settrace.c.h */

static void
tracer_release(Tracer *t)
{
    /* Suspended frame states (and the values they remember). The table is detached first:
     * releasing runs no user code, but nothing may see a half-emptied table anyway. */
    PtrMap m = t->suspended;
    t->suspended.e = NULL;
    t->suspended.cap = t->suspended.n = 0;
    for (size_t i = 0; i < m.cap; i++) {
        if (m.e[i].key != NULL) {
            Py_DECREF((PyObject *)m.e[i].val);
        }
    }
    PyMem_Free(m.e);
    st_release(t);
}

/* After stop(): forget what is only needed while tracing. Callbacks that still arrive (another
 * thread inside one at this moment) keep working on an empty state. */
static PyObject *
tracer_close(Tracer *t, PyObject *Py_UNUSED(ignored))
{
    tracer_release(t);
    PyObject *dict = PyThreadState_GetDict();
    if (dict != NULL) {
        PyObject *found = PyDict_GetItemWithError(dict, t->tls_key);
        if (found != NULL && Py_IS_TYPE(found, &CThread_Type)
            && ((CThread *)found)->gen == t->gen) {
            if (PyDict_DelItem(dict, t->tls_key) < 0) {
                return NULL;
            }
        }
        else if (PyErr_Occurred()) {
            return NULL;
        }
    }
    t->last_tstate = NULL;
    t->last_th = NULL;
    Py_RETURN_NONE;
}

static PyObject *
tracer_counters(Tracer *t, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("{sKsKsnsnsKsOsKsKsKsKsKsKsKsKsn}", "steps", (unsigned long long)t->steps, "calls",
                         (unsigned long long)t->calls, "codes", (Py_ssize_t)t->codes.n,
                         "suspended", (Py_ssize_t)t->suspended.n, "classes_asked",
                         (unsigned long long)t->fp.classes_asked, "decimal_fields",
                         t->fp.decimal_type != NULL ? Py_True : Py_False, "part_copies",
                         (unsigned long long)t->fp.part_memo_hits, "python_calls",
                         (unsigned long long)t->fp.python_calls, "filed_subtrees",
                         (unsigned long long)t->fp.filed_hits, "nodes_built",
                         (unsigned long long)t->fp.nodes_built, "shared_across_depths",
                         (unsigned long long)t->fp.shared_across_depths, "own_levels_reused",
                         (unsigned long long)t->fp.own_level_hits, "logs_carried",
                         (unsigned long long)t->fp.carries, "cache_full",
                         (unsigned long long)t->fp.cache_full, "cached_nodes",
                         t->fp.cached_nodes);
}

static int
tracer_traverse(Tracer *t, visitproc visit, void *arg)
{
    Py_VISIT(t->state);
    Py_VISIT(t->encode_named);
    Py_VISIT(t->records_for);
    Py_VISIT(t->encode_exception);
    Py_VISIT(t->register_code);
    Py_VISIT(t->scope_wants);
    Py_VISIT(t->thread_state);
    Py_VISIT(t->hand_off);
    Py_VISIT(t->fault);
    Py_VISIT(t->callee_name);
    Py_VISIT(t->is_secret);
    Py_VISIT(t->set_local_events);
    Py_VISIT(t->budget_review);
    return fp_traverse(&t->fp, visit, arg);
}

static int
tracer_clear(Tracer *t)
{
    fp_clear(&t->fp);
    Py_CLEAR(t->state);
    Py_CLEAR(t->encode_named);
    Py_CLEAR(t->records_for);
    Py_CLEAR(t->encode_exception);
    Py_CLEAR(t->register_code);
    Py_CLEAR(t->scope_wants);
    Py_CLEAR(t->thread_state);
    Py_CLEAR(t->hand_off);
    Py_CLEAR(t->fault);
    Py_CLEAR(t->callee_name);
    Py_CLEAR(t->is_secret);
    Py_CLEAR(t->set_local_events);
    Py_CLEAR(t->budget_review);
    Py_CLEAR(t->call_mask);
    Py_CLEAR(t->gap_budget);
    t->budget_on = 0;
    return 0;
}

static void
tracer_dealloc(Tracer *t)
{
    PyObject_GC_UnTrack(t);
    tracer_clear(t);
    tracer_release(t);
    PtrMap codes = t->codes;
    t->codes.e = NULL;
    t->codes.cap = t->codes.n = 0;
    for (size_t i = 0; i < codes.cap; i++) {
        if (codes.e[i].key != NULL) {
            code_entry_free(codes.e[i].val);
        }
    }
    PyMem_Free(codes.e);
    Py_XDECREF(t->inject);
    Py_XDECREF(t->disable);
    Py_XDECREF(t->tool);
    Py_XDECREF(t->local_mask);
    Py_XDECREF(t->return_mask);
    Py_XDECREF(t->big);
    Py_XDECREF(t->nbig);
    Py_XDECREF(t->slow_names);
    Py_XDECREF(t->secret_names);
    Py_XDECREF(t->state_is_secret);
    Py_XDECREF(t->zero);
    Py_XDECREF(t->empty_str);
    Py_XDECREF(t->tls_key);
    Py_XDECREF(t->type_qualname);
    Py_XDECREF(t->type_module);
    Py_XDECREF(t->unseen_exc);
    Py_XDECREF(t->is_replay_code);
    if (t->collecting.buf != NULL) {
        t->fp.gc_runs = NULL; /* it points into this buffer */
        PyBuffer_Release(&t->collecting);
    }
    Py_TYPE(t)->tp_free((PyObject *)t);
}

/* ------------------------------------------------------------------------------------------- */
/* The overhead budget (replay/recorder/budget.py decides; this measures and demotes)          */

/* Move `code` down to `level` (BUDGET_CALLS: call-level events; BUDGET_OFF: py_start turns its
 * new calls away, its running calls keep their call-level events to the end) and record a GAP
 * step with the reason, here. 0 or -1. */
static int
budget_demote(Tracer *t, PyObject *code, int level, PyObject *detail)
{
    CodeEntry *ce = code_get(t, code);
    if (ce == NULL || ce->demoted >= level || level > BUDGET_OFF || !PyUnicode_Check(detail)) {
        return 0;
    }
    ce->demoted = level;
    /* sys.monitoring: its frames stop raising line and library-call events now. settrace
     * (t->st_on) has no per-code events: st_call and st_line read `demoted` instead. */
    if (level == BUDGET_CALLS && !t->st_on && set_local_events(t, code, t->call_mask) < 0) {
        return -1;
    }
    CThread *th = get_thread(t, 1);
    if (th == NULL) {
        return -1;
    }
    FrameState *top = th->depth ? th->stack[th->depth - 1] : NULL;
    PyObject *payload = PyTuple_Pack(2, t->gap_budget, detail);
    if (payload == NULL) {
        return -1;
    }
    return emit(t, th, K_GAP, top ? top->call_id : t->zero, top ? top->line : Py_None, payload,
                NULL, NULL, 0);
}

/* One review: the cost of each code object over the window, to OverheadBudget.review, and the
 * demotions it asks for. The costs are copied out of the code table first (building Python
 * objects can run a finalizer that re-enters a callback and changes the table). 0 or -1. */
static int
budget_review(Tracer *t, long long now)
{
    long long window = now - t->window_start;
    t->window_start = now;
    size_t n = 0;
    for (size_t i = 0; i < t->codes.cap; i++) {
        CodeEntry *ce = t->codes.e[i].key ? t->codes.e[i].val : NULL;
        n += ce != NULL && ce->busy_ns > 0 && ce->registered && ce->demoted < BUDGET_OFF;
    }
    if (n == 0) {
        return 0;
    }
    struct {
        PyObject *code;
        long long ns;
        int level;
    } *costs = PyMem_Calloc(n, sizeof *costs);
    if (costs == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < t->codes.cap && k < n; i++) {
        CodeEntry *ce = t->codes.e[i].key ? t->codes.e[i].val : NULL;
        if (ce != NULL && ce->busy_ns > 0 && ce->registered && ce->demoted < BUDGET_OFF) {
            costs[k].code = Py_NewRef(ce->code);
            costs[k].ns = ce->busy_ns;
            costs[k].level = ce->demoted;
            k++;
        }
        if (ce != NULL) {
            ce->busy_ns = 0;
        }
    }
    int rc = -1;
    PyObject *list = PyList_New(0), *result = NULL;
    for (size_t i = 0; list != NULL && i < k; i++) {
        PyObject *name = PyObject_GetAttrString(costs[i].code, "co_qualname");
        PyObject *item = name ? Py_BuildValue("(OOLi)", costs[i].code, name, costs[i].ns,
                                              costs[i].level)
                              : NULL;
        Py_XDECREF(name);
        if (item == NULL || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            goto done;
        }
        Py_DECREF(item);
    }
    if (list == NULL) {
        goto done;
    }
    result = CALL_PYTHON(t, PyObject_CallFunction(t->budget_review, "LO", window, list));
    if (result == NULL || !PyList_Check(result)) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(result); i++) {
        PyObject *d = PyList_GET_ITEM(result, i);
        PyObject *code = PyObject_GetAttrString(d, "code");
        PyObject *level = code ? PyObject_GetAttrString(d, "level") : NULL;
        PyObject *detail = level ? PyObject_GetAttrString(d, "detail") : NULL;
        long lv = detail ? PyLong_AsLong(level) : -1;
        int r = detail == NULL || (lv == -1 && PyErr_Occurred())
                    ? -1
                    : budget_demote(t, code, (int)lv, detail);
        Py_XDECREF(code);
        Py_XDECREF(level);
        Py_XDECREF(detail);
        if (r < 0) {
            goto done;
        }
    }
    rc = 0;
done:
    for (size_t i = 0; i < k; i++) {
        Py_DECREF(costs[i].code);
    }
    PyMem_Free(costs);
    Py_XDECREF(list);
    Py_XDECREF(result);
    return rc;
}

/* After a callback that succeeded, with a budget: charge its time to `code`, and review when a
 * window is over. A failing review is a recorder fault (counted), never the program's: 0; -1
 * only for the program's own KeyboardInterrupt/SystemExit arriving meanwhile. */
static int
budget_charge(Tracer *t, PyObject *code, long long start)
{
    long long now = now_ns();
    CodeEntry *ce = code_get(t, code);
    if (ce != NULL) {
        ce->busy_ns += now - start;
    }
    /* Reviewed from recorded code only, inside a recorded call: its GAP step then belongs to
     * that call (not to a thread that only runs library code or replay's own, nor to no call
     * after the last frame's return). */
    if (now - t->window_start < t->review_ns || t->reviewing || ce == NULL || !ce->registered) {
        return 0;
    }
    CThread *th = get_thread(t, 0);
    if (th == NULL || th->depth == 0) {
        PyErr_Clear();
        return 0;
    }
    t->reviewing = 1;
    int rc = budget_review(t, now) < 0 ? absorb_error(t) : 0;
    t->reviewing = 0;
    return rc;
}

#include "_ctracer_settrace.c.h"

/* Callbacks refuse to run on a Tracer that was never bound (they need DISABLE and the tool).
 * With a budget, the time each one takes is charged to its code object (every event's first
 * argument is the code object). */
#define CB(name, func)                                                                            \
    static PyObject *name##_entry(PyObject *self, PyObject *const *args, Py_ssize_t nargs)       \
    {                                                                                             \
        Tracer *t = (Tracer *)self;                                                               \
        if (t->disable == NULL || t->state == NULL) {                                             \
            Py_RETURN_NONE;                                                                       \
        }                                                                                         \
        /* Keep the tracer alive even if another thread unregisters it meanwhile. */              \
        Py_INCREF(t);                                                                             \
        long long start = t->budget_on ? now_ns() : 0;                                            \
        CThread *entered = list_enter(t);                                                         \
        PyObject *r = func(t, args, nargs);                                                       \
        if (t->budget_on && r != NULL && nargs > 0 && budget_charge(t, args[0], start) < 0) {    \
            Py_CLEAR(r);                                                                          \
        }                                                                                         \
        list_leave(t, entered); /* after the budget's review too: it may write GAP steps */      \
        Py_DECREF(t);                                                                             \
        return r;                                                                                 \
    }

CB(py_start, cb_py_start)
CB(py_resume, cb_py_resume)
CB(py_return, cb_py_return)
CB(py_yield, cb_py_yield)
CB(py_unwind, cb_py_unwind)
CB(py_throw, cb_py_throw)
CB(raise_, cb_raise)
CB(exception_handled, cb_exception_handled)
CB(stop_iteration, cb_stop_iteration)
CB(line, cb_line)
CB(jump, cb_jump)
CB(call, cb_call)
CB(c_return, cb_c_return)
CB(c_raise, cb_ignore)

/* Test helper: the fast locals of a frame object as the fast path reads them, in slot order, as
 * (name, value) pairs; compared with frame.f_locals by tests/recorder/test_ctracer.py. */
static PyObject *
debug_fast_locals(PyObject *mod, PyObject *frame)
{
    (void)mod;
    if (!PyFrame_Check(frame)) {
        PyErr_SetString(PyExc_TypeError, "a frame object is required");
        return NULL;
    }
    _PyInterpreterFrame *f = ((struct _frame *)frame)->f_frame;
    PyCodeObject *co = (PyCodeObject *)FRAME_CODE(f);
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    for (int i = 0; i < co->co_nlocalsplus; i++) {
        unsigned char kind = (unsigned char)_PyLocals_GetKind(co->co_localspluskinds, i);
        PyObject *v = read_slot(&kind, f->localsplus + i, 0);
        if (v == NULL) {
            continue;
        }
        PyObject *pair = PyTuple_Pack(2, PyTuple_GET_ITEM(co->co_localsplusnames, i), v);
        if (pair == NULL || PyList_Append(out, pair) < 0) {
            Py_XDECREF(pair);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(pair);
    }
    return out;
}

/* Test helper: frame_line() for a frame object, to compare with frame.f_lineno. */
static PyObject *
debug_frame_line(PyObject *mod, PyObject *frame)
{
    (void)mod;
    if (!PyFrame_Check(frame)) {
        PyErr_SetString(PyExc_TypeError, "a frame object is required");
        return NULL;
    }
    _PyInterpreterFrame *f = ((struct _frame *)frame)->f_frame;
    CodeEntry *ce = code_entry_new(NULL, FRAME_CODE(f));
    if (ce == NULL) {
        return NULL;
    }
    PyObject *r = frame_line(f, ce);
    code_entry_free(ce);
    return r;
}

/* Test helper: what the C encoder (_encode.c) makes of `v`, or NotImplemented where it leaves `v` to the
 * Python encoder. The walk runs first, as in the core, so the classes and names it meets are
 * classified (the C encoder only knows classified classes). */
static PyObject *
tracer_c_encode(Tracer *t, PyObject *v)
{
    uint64_t f = 0;
    if (!t->fp.enabled || fp_of(&t->fp, v, &f) < 0) {
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_NotImplemented);
    }
    PyObject *venc = fp_encode(&t->fp, v);
    return venc != NULL || PyErr_Occurred() ? venc : Py_NewRef(Py_NotImplemented);
}

/* Test helper: the C encoder's tree of `v` and what fp_records makes of it, as (tree, entry,
 * records), or NotImplemented where either leaves `v` to Python. */
static PyObject *
tracer_c_records(Tracer *t, PyObject *v)
{
    PyObject *tree = tracer_c_encode(t, v);
    if (tree == NULL || tree == Py_NotImplemented) {
        return tree;
    }
    PyObject *made = PyDict_New(), *entry = NULL;
    int r = made != NULL ? fp_records(&t->fp, v, tree, &entry, made, NULL) : -1;
    if (r <= 0) {
        Py_DECREF(tree);
        Py_XDECREF(made);
        return r < 0 ? NULL : Py_NewRef(Py_NotImplemented);
    }
    return Py_BuildValue("(NNN)", tree, entry, made);
}

/* Test helper: what the C core records of an exception, `(type name, message, venc)`, or
 * NotImplemented where it asks the Python encoder (c_encode_exception). */
static PyObject *
tracer_c_encode_exception(Tracer *t, PyObject *exc)
{
    if (!PyExceptionInstance_Check(exc)) {
        PyErr_SetString(PyExc_TypeError, "an exception instance is needed");
        return NULL;
    }
    PyObject *e = c_encode_exception(t, exc);
    return e != NULL || PyErr_Occurred() ? e : Py_NewRef(Py_NotImplemented);
}

/* The walk's fingerprint of a value, 0 when it gives up: whether the core can tell that the value
 * has not changed without the Python encoder (tests). */
static PyObject *
tracer_c_fingerprint(Tracer *t, PyObject *v)
{
    uint64_t f = 0;
    if (t->fp.enabled && fp_of(&t->fp, v, &f) < 0) {
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(f);
}

static PyMethodDef tracer_methods[] = {
    {"_c_encode", (PyCFunction)tracer_c_encode, METH_O,
     "What the C encoder makes of a value, or NotImplemented (tests)."},
    {"_c_encode_exception", (PyCFunction)tracer_c_encode_exception, METH_O,
     "What the C core records of an exception, or NotImplemented (tests)."},
    {"_c_records", (PyCFunction)tracer_c_records, METH_O,
     "The C encoder's tree of a value, its entry and records, or NotImplemented (tests)."},
    {"_c_fingerprint", (PyCFunction)tracer_c_fingerprint, METH_O,
     "The walk's fingerprint of a value, 0 when it gives up (tests)."},
    {"bind", (PyCFunction)tracer_bind, METH_VARARGS,
     "bind(tool, DISABLE, set_local_events, local_events, return_events)"},
    {"codes", (PyCFunction)tracer_codes, METH_NOARGS, "Code objects given local events."},
    {"set_budget", (PyCFunction)tracer_set_budget, METH_VARARGS,
     "set_budget(review, call_level_events, review_ns): the --max-overhead budget."},
    {"close", (PyCFunction)tracer_close, METH_NOARGS, "Release the tracing state."},
    {"counters", (PyCFunction)tracer_counters, METH_NOARGS, "Internal counters (tests)."},
    {"settrace_start", (PyCFunction)tracer_settrace_start, METH_VARARGS,
     "settrace_start(opcodes, is_replay_code): record this thread through the C trace function."},
    {"settrace_stop", (PyCFunction)tracer_settrace_stop, METH_NOARGS,
     "Stop the C trace function (this thread now, the others at their next event)."},
    {"py_start", (PyCFunction)(void (*)(void))py_start_entry, METH_FASTCALL, NULL},
    {"py_resume", (PyCFunction)(void (*)(void))py_resume_entry, METH_FASTCALL, NULL},
    {"py_return", (PyCFunction)(void (*)(void))py_return_entry, METH_FASTCALL, NULL},
    {"py_yield", (PyCFunction)(void (*)(void))py_yield_entry, METH_FASTCALL, NULL},
    {"py_unwind", (PyCFunction)(void (*)(void))py_unwind_entry, METH_FASTCALL, NULL},
    {"py_throw", (PyCFunction)(void (*)(void))py_throw_entry, METH_FASTCALL, NULL},
    {"raise_", (PyCFunction)(void (*)(void))raise__entry, METH_FASTCALL, NULL},
    {"exception_handled", (PyCFunction)(void (*)(void))exception_handled_entry, METH_FASTCALL,
     NULL},
    {"stop_iteration", (PyCFunction)(void (*)(void))stop_iteration_entry, METH_FASTCALL, NULL},
    {"line", (PyCFunction)(void (*)(void))line_entry, METH_FASTCALL, NULL},
    {"jump", (PyCFunction)(void (*)(void))jump_entry, METH_FASTCALL, NULL},
    {"call", (PyCFunction)(void (*)(void))call_entry, METH_FASTCALL, NULL},
    {"c_return", (PyCFunction)(void (*)(void))c_return_entry, METH_FASTCALL, NULL},
    {"c_raise", (PyCFunction)(void (*)(void))c_raise_entry, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject Tracer_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "replay.recorder._ctracer.Tracer",
    .tp_basicsize = sizeof(Tracer),
    .tp_dealloc = (destructor)tracer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The sys.monitoring callbacks of one recording, in C (see csysmon.py).",
    .tp_traverse = (traverseproc)tracer_traverse,
    .tp_clear = (inquiry)tracer_clear,
    .tp_methods = tracer_methods,
    .tp_call = (ternaryfunc)tracer_call,
    .tp_init = (initproc)tracer_init,
    .tp_new = PyType_GenericNew,
};

/* take_idle_list(ts): the writer takes the list of a live thread of a recording of object
 * records that is between two callbacks (ListGuard), as a hand-off would: the thread gets an
 * empty list and table, and lets go of its old ones at its next callback. None where it may
 * not: the thread is inside a callback (the writer then asks it to cut: cut_requested), it
 * has steps still open to redaction (the thread's own hand-off keeps those back), it is not a
 * C core's, or its list is empty. Runs no Python code between its checks and its changes, so
 * nothing can come between (the GIL). */
static PyObject *
take_idle_list(PyObject *Py_UNUSED(module), PyObject *ts)
{
    PyObject *capsule = PyObject_GetAttr(ts, str_guard);
    if (capsule == NULL) {
        return NULL;
    }
    ListGuard *guard = PyCapsule_IsValid(capsule, LIST_GUARD_CAPSULE)
                           ? PyCapsule_GetPointer(capsule, LIST_GUARD_CAPSULE)
                           : NULL;
    /* Made first: an allocation may run a collection, and a finalizer may let other threads
     * run; from the checks on, nothing can. */
    PyObject *fresh = guard != NULL ? (PyObject *)eb_new(0) : NULL;
    PyObject *table = fresh != NULL ? PyDict_New() : NULL;
    PyObject *unnamed = table != NULL ? PyObject_GetAttr(ts, str_unnamed) : NULL;
    PyObject *events = unnamed != NULL ? PyObject_GetAttr(ts, str_events) : NULL;
    PyObject *taken = NULL;
    int settled = unnamed == Py_None
                  || (unnamed != NULL && PyList_CheckExact(unnamed) && PyList_GET_SIZE(unnamed) == 0);
    if (events != NULL && guard->busy == 0 && settled && EventBuffer_CheckExact(events)
        && ((EventBuffer *)events)->n > 0) {
        if (PyObject_SetAttr(ts, str_events, fresh) == 0
            && PyObject_SetAttr(ts, str_written, table) == 0
            && PyObject_SetAttr(ts, str_cut_requested, Py_False) == 0) {
            guard->taken++;
            taken = Py_NewRef(events);
        }
    }
    Py_DECREF(capsule);
    Py_XDECREF(fresh);
    Py_XDECREF(table);
    Py_XDECREF(unnamed);
    Py_XDECREF(events);
    if (PyErr_Occurred()) {
        Py_XDECREF(taken);
        return NULL;
    }
    return taken != NULL ? taken : Py_NewRef(Py_None);
}

/* Test helper: records_grown(old, new), beside object_records.grown. */
static PyObject *
debug_grown(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *old, *record;
    if (!PyArg_ParseTuple(args, "OO", &old, &record)) {
        return NULL;
    }
    return records_grown(old, record);
}

/* set_writer_thread(ident): the writer's thread is `ident` (threading.get_ident()), 0 for none
 * (lone_thread). */
static PyObject *
set_writer_thread(PyObject *Py_UNUSED(module), PyObject *ident)
{
    unsigned long id = PyLong_AsUnsignedLong(ident);
    if (id == (unsigned long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    writer_thread = id;
    Py_RETURN_NONE;
}

/* A collection begins or ends (gc.callbacks): `collecting`, an array('b') of 2, kept as
 * RecordingState._on_gc keeps it, [1 while collecting, collections begun modulo 128]. In C
 * because the interpreter runs the program's pending signal handlers inside any Python code,
 * and a KeyboardInterrupt raised in a collector's callback is reported as ignored and lost:
 * a SIGINT (Ctrl-C, or one `replay record -- COMMAND` forwards) that arrived during a
 * collection left the program running (tests/cli/test_cli_processes.py found it, one run in
 * thirty on a loaded machine). */
static PyObject *
gc_watch(PyObject *collecting, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "a gc callback takes (phase, info)");
        return NULL;
    }
    int start = PyUnicode_CompareWithASCIIString(args[0], "start") == 0;
    Py_buffer view;
    if (PyObject_GetBuffer(collecting, &view, PyBUF_WRITABLE) < 0) {
        return NULL;
    }
    if (view.len >= 2) {
        signed char *counts = (signed char *)view.buf;
        counts[0] = (signed char)start;
        if (start) {
            counts[1] = (signed char)((counts[1] + 1) % 128);
        }
    }
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyMethodDef gc_watch_def = {
    "gc_watch", (PyCFunction)(void (*)(void))gc_watch, METH_FASTCALL,
    "gc_watch(phase, info): keeps the `collecting` array it was made for (gc_watcher)."};

/* gc_watcher(collecting) -> the C callback for gc.callbacks that keeps `collecting`. */
static PyObject *
gc_watcher(PyObject *Py_UNUSED(module), PyObject *collecting)
{
    return PyCFunction_New(&gc_watch_def, collecting);
}

static PyMethodDef module_methods[] = {
    {"gc_watcher", (PyCFunction)gc_watcher, METH_O,
     "gc_watcher(collecting): a callback for gc.callbacks, in C, that keeps `collecting`."},
    {"set_writer_thread", (PyCFunction)set_writer_thread, METH_O,
     "The writer's thread ident (threading.get_ident()), or 0 when there is none."},
    {"take_idle_list", (PyCFunction)take_idle_list, METH_O,
     "The list of a thread between two callbacks, taken for the writer, or None (ListGuard)."},
    {"_grown", (PyCFunction)debug_grown, METH_VARARGS,
     "object_records.grown as the C cores make it (tests)."},
    {"_fast_locals", (PyCFunction)debug_fast_locals, METH_O,
     "The fast locals of a frame as the C core reads them (tests)."},
    {"_frame_line", (PyCFunction)debug_frame_line, METH_O,
     "frame.f_lineno as the C core computes it (tests)."},
    {NULL, NULL, 0, NULL},
};

#endif /* RT_SUPPORTED */

static struct PyModuleDef ctracer_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "replay.recorder._ctracer",
    .m_doc = "replay's C accelerator: the sys.monitoring recording core (see csysmon.py).",
    .m_size = -1,
#if RT_SUPPORTED
    .m_methods = module_methods,
#endif
};

PyMODINIT_FUNC
PyInit__ctracer(void)
{
#if !RT_SUPPORTED
    PyErr_SetString(PyExc_ImportError,
                    "replay's C core supports CPython 3.11 to 3.13 with the GIL only");
    return NULL;
#else
    if (PyType_Ready(&FrameState_Type) < 0 || PyType_Ready(&CThread_Type) < 0
        || PyType_Ready(&Tracer_Type) < 0 || PyType_Ready(&EventBuffer_Type) < 0) {
        return NULL;
    }
    if (!(str_qualname = PyUnicode_InternFromString("__qualname__"))
        || !(str_name = PyUnicode_InternFromString("__name__"))
        || !(str_events = PyUnicode_InternFromString("events"))
        || !(empty_names = PyFrozenSet_New(NULL))
        || !(str_co_lines = PyUnicode_InternFromString("co_lines"))
        || !(str_co_filename = PyUnicode_InternFromString("co_filename"))
        || !(str_written = PyUnicode_InternFromString("written"))
        || !(str_guard = PyUnicode_InternFromString("guard"))
        || !(str_unnamed = PyUnicode_InternFromString("unnamed"))
        || !(str_cut_requested = PyUnicode_InternFromString("cut_requested"))) {
        return NULL;
    }
    PyObject *wrapper = PyObject_GetAttrString(Py_None, "__eq__");
    if (wrapper == NULL) {
        return NULL;
    }
    method_wrapper_type = (PyTypeObject *)Py_NewRef(Py_TYPE(wrapper));
    Py_DECREF(wrapper);
    PyObject *m = PyModule_Create(&ctracer_module);
    if (m == NULL) {
        return NULL;
    }
    PyObject *capi = PyCapsule_New((void *)&eb_capi, EB_CAPI_NAME, NULL);
    if (capi == NULL || PyModule_AddObjectRef(m, "Tracer", (PyObject *)&Tracer_Type) < 0
        || PyModule_AddObjectRef(m, "EventBuffer", (PyObject *)&EventBuffer_Type) < 0
        || PyModule_AddObjectRef(m, "EVENT_BUFFER_CAPI", capi) < 0
        || PyModule_AddIntConstant(m, "PY312_DICT_ORDER", RT_DICT_LOCALS) < 0) {
        Py_XDECREF(capi);
        Py_DECREF(m);
        return NULL;
    }
    Py_DECREF(capi);
    return m;
#endif
}
