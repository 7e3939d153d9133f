/* The value encoder in C, for the values a fingerprint walk can read (_fingerprint.c).
 *
 * Why: when a value did change (an attribute set, an item appended), the C core used to call
 * the Python encoder (replay/recorder/snapshot.py), which builds its venc node by node in
 * Python. On object-heavy code that was two thirds of the recorder's time. This file builds the
 * same venc in C for the values the fingerprint walk knows: exact atoms, list, tuple, dict, set
 * and frozenset and their subclasses (shown as the container, under their own name), and instances of plain
 * classes (content: their instance `__dict__` alone). It mirrors
 * `SnapshotEncoder._enc` rule for rule: the same budget, depth, item and attribute limits, back
 * references, secret names and (name, value) pairs, and it asks the identity map for the serial
 * of each container and object in the same order as the Python encoder does, so that both give
 * the same serials. tests/recorder/test_parity.py runs the C and the Python core on the same
 * programs and compares their events; tests/recorder/test_cencode.py compares this encoder with
 * the Python one value by value.
 *
 * Anything else (a set, a slotted object, a big int, a class not classified yet, a Python
 * callback that failed) makes `fp_encode` answer "not mine" (NULL, no exception), and the
 * caller runs the Python encoder on the whole value, which has a rule for everything.
 *
 * Safety: like the Python encoder, it never runs user code. It does call three Python
 * functions of the recorder (the identity map's `key`, the redactor's `is_secret` on a name not
 * seen before, the encoder's `type_name` for a redacted value), and while they run another
 * thread may change the values being read, so items are copied (with references) before any of
 * them is encoded, as the Python encoder copies them in one C call.
 */

#include "_fingerprint.h"

/* One encoding: the Python encoder's per-value state ([budget, path] in snapshot.py). */
typedef struct {
    Fingerprinter *fp;
    Py_ssize_t budget;
    int npath;
    /* Where the encoding is in fp->parts, the parts of the value that fp_of's walk recorded;
     * -1 once out of step with them (then parts are walked one by one: fp_subtree). */
    int cursor;
    uint64_t parts_gen;
    uint64_t epoch; /* fp_epoch when the encoding began */
    void *path[FP_MAX_PATH];
    /* fp_records only: the list's table of records (or NULL: no subtree is skipped), and the
     * (serial, record) of every node the walk met or skipped, in order, strong (FpFiledMemo). */
    PyObject *written;
    PyObject **visits;
    Py_ssize_t nvisits, visits_cap;
} Enc;

/* Every function below returns a new reference, or NULL: with an exception set for an error
 * that must reach the program (KeyboardInterrupt, MemoryError inside our own code is treated the
 * same), without one for "not mine" (the caller falls back to the Python encoder). */
static PyObject *enc_value(Enc *e, PyObject *v, int depth);

/* A recorder callback failed with an ordinary exception: not mine (the Python encoder, run
 * next, has its own rule for faults). Anything else (KeyboardInterrupt) propagates. */
static PyObject *
callback_failed(void)
{
    if (PyErr_ExceptionMatches(PyExc_Exception)) {
        PyErr_Clear();
    }
    return NULL;
}

/* The identity map's check for an object that takes no weak references (`_check`): the class's
 * id, for an exact tuple mixed with its size and the ids of its end items (its arithmetic keeps
 * the low 64 bits, which is what unsigned overflow keeps here). */
static uint64_t
identity_check(PyTypeObject *tp, Py_ssize_t size, void *first, void *last)
{
    uint64_t check = (uint64_t)(uintptr_t)tp;
    if (tp == &PyTuple_Type) {
        uint64_t n = (uint64_t)size;
        if (size) {
            n ^= ((uint64_t)(uintptr_t)first * 31) ^ ((uint64_t)(uintptr_t)last << 1);
        }
        check ^= n * 0x9E3779B97F4A7C15ULL;
    }
    return check;
}

/* The identity map's lock (re-entrant), taken without waiting, as `acquire(blocking=False)`:
 * 1 if taken, else 0 (another thread is inside the map: it decides, in Python). */
static int
map_lock_take(Fingerprinter *fp)
{
    PyObject *args[2] = {fp->identity_lock, Py_False};
    PyObject *taken = PyObject_VectorcallMethod(fp->str_acquire, args, 2, NULL);
    int ok = taken == Py_True;
    Py_XDECREF(taken);
    if (!ok) {
        PyErr_Clear();
    }
    return ok;
}

/* The lock given back, and `serial` (a new reference, or NULL) passed on: NULL, with no
 * exception, if anything failed on the way. */
static PyObject *
map_lock_give(Fingerprinter *fp, PyObject *serial)
{
    PyObject *released = PyObject_VectorcallMethod(fp->str_release, &fp->identity_lock, 1, NULL);
    Py_XDECREF(released);
    if (serial == NULL || released == NULL) {
        Py_CLEAR(serial);
        PyErr_Clear();
    }
    return serial;
}

/* `IdentityMap._insert` of an object that takes no weak references, in C, in the one case that
 * is all of its work on the hot path: a new young entry (`serial << 64 | check`) at an address
 * that has none, or one of a dead object (replaced, counted in both `entry_changes`), with no old
 * entry there (one to promote) and room in the young generation (no rotation), the map's lock
 * taken without waiting (a thread inside the Python insert is waited for there). A yielded
 * tuple, a request's new dict: each asked the map in Python (2-3 us; 28,000 times on
 * generators.py 25). A new reference to the serial, or NULL (no exception): the map is asked. */
static PyObject *
young_insert(Fingerprinter *fp, PyObject *v, uint64_t check)
{
    if (fp->identity_map == NULL) {
        return NULL;
    }
    if (!map_lock_take(fp)) {
        return NULL;
    }
    /* Nothing below runs Python code or a collection (int keys, ints, a list append), so the
     * map cannot change under it on this thread or another. */
    PyObject *serial = NULL, *oid = PyLong_FromVoidPtr(v);
    /* Read each time: a rotation replaces both. */
    PyObject *old = oid != NULL ? PyObject_GetAttr(fp->identity_map, fp->str_old) : NULL;
    PyObject *young = old != NULL ? PyObject_GetAttr(fp->identity_map, fp->str_young) : NULL;
    if (young == NULL || !PyDict_CheckExact(old) || !PyList_CheckExact(young)
        || PyList_GET_SIZE(young) >= fp->identity_limit) {
        goto done;
    }
    int in_old = PyDict_Contains(old, oid);
    PyObject *entry = in_old == 0 ? PyDict_GetItemWithError(fp->entries, oid) : NULL;
    if (in_old != 0 || (entry != NULL && !PyLong_CheckExact(entry)) || PyErr_Occurred()) {
        goto done; /* an old entry to look at, or a weak reference: the map decides */
    }
    serial = PyObject_CallNoArgs(fp->identity_next);
    PyObject *shifted = serial != NULL ? PyNumber_Lshift(serial, fp->int_64) : NULL;
    PyObject *low = shifted != NULL ? PyLong_FromUnsignedLongLong(check) : NULL;
    PyObject *made = low != NULL ? PyNumber_Or(shifted, low) : NULL;
    Py_XDECREF(shifted);
    Py_XDECREF(low);
    uint64_t *changes = (uint64_t *)fp->entry_changes.buf;
    if (made != NULL && entry != NULL) {
        changes[0]++; /* a newer object holds the address: the entry there was a dead one's */
        changes[1]++;
        fp_forget_address(fp, v); /* in place of changes[2] (identity.py, entry_changes) */
    }
    if (made == NULL || PyDict_SetItem(fp->entries, oid, made) < 0
        || PyList_Append(young, oid) < 0) {
        Py_CLEAR(serial);
    }
    else {
        changes[0]++;
        fp->map_entries++; /* a serial given out: fingerprints taken before do not hold it */
    }
    Py_XDECREF(made);
done:
    Py_XDECREF(oid);
    Py_XDECREF(old);
    Py_XDECREF(young);
    return map_lock_give(fp, serial);
}

/* The lock-free first step of `IdentityMap.key` for an object that takes no weak references,
 * in C: its young entry (`serial << 64 | check`, keyed by address), if the check matches. A new
 * reference to the serial, or NULL (no exception) where the map must be asked. */
static PyObject *
young_serial(Fingerprinter *fp, PyObject *v, uint64_t check)
{
    PyObject *entry = fp_young_entry(fp, v);
    if (entry == NULL) {
        return NULL;
    }
    Py_INCREF(entry);
    PyObject *serial = NULL;
    if (PyLong_AsUnsignedLongLongMask(entry) == check) {
        static PyObject *shift = NULL; /* 64, made once (an immortal small int on 3.12+) */
        if (shift == NULL) {
            shift = PyLong_FromLong(64);
        }
        serial = shift != NULL ? PyNumber_Rshift(entry, shift) : NULL;
    }
    Py_DECREF(entry);
    if (serial == NULL || !PyLong_CheckExact(serial)) {
        Py_XDECREF(serial);
        PyErr_Clear();
        return NULL;
    }
    return serial;
}

/* `IdentityMap._insert` for an object that takes weak references, at an address with no entry
 * in either generation: a `_Ref` carrying the map's callback, the object's id and a new serial,
 * put in `_entries`, under the map's lock taken without waiting; the serial, or NULL with no
 * exception wherever the map is to decide (an entry at that address, which it replaces and
 * counts; its lock held by another thread; a reference the class refuses). The references are
 * what the map's own `_insert` makes, and the serial is the next one, as the Python encoder
 * would have asked for it here. Why: json_requests.py asked the map in Python for a serial for
 * each new request and response (4,000 of its 4,269 calls into Python per 2,000 requests), and a
 * web application makes objects like them at every request. */
static PyObject *
weak_insert(Fingerprinter *fp, PyObject *v)
{
    if (fp->identity_map == NULL || fp->oid_offset == 0) {
        return NULL;
    }
    if (!map_lock_take(fp)) {
        return NULL;
    }
    PyObject *serial = NULL, *oid = PyLong_FromVoidPtr(v);
    PyObject *old = oid != NULL ? PyObject_GetAttr(fp->identity_map, fp->str_old) : NULL;
    int absent = old != NULL && PyDict_CheckExact(old) && PyDict_Contains(old, oid) == 0
               && PyDict_Contains(fp->entries, oid) == 0; /* int keys: no user code */
    PyObject *args[2] = {v, fp->ref_callback};
    PyObject *ref = absent ? PyObject_Vectorcall(fp->ref_type, args, 2, NULL) : NULL;
    if (ref != NULL && Py_IS_TYPE(ref, (PyTypeObject *)fp->ref_type)) {
        serial = PyObject_CallNoArgs(fp->identity_next);
    }
    if (serial != NULL) {
        /* `ref.oid = oid; ref.serial = serial`: the class's own slots, at their offsets. */
        Py_XSETREF(*(PyObject **)((char *)ref + fp->oid_offset), Py_NewRef(oid));
        Py_XSETREF(*(PyObject **)((char *)ref + fp->serial_offset), Py_NewRef(serial));
        if (PyDict_SetItem(fp->entries, oid, ref) < 0) {
            Py_CLEAR(serial);
        }
        else {
            fp->map_entries++; /* a serial given out: fingerprints taken before do not hold it */
        }
    }
    Py_XDECREF(ref);
    Py_XDECREF(oid);
    Py_XDECREF(old);
    return map_lock_give(fp, serial);
}

/* The identity map's `key(v)`. Answered in C where the map's answer is known: an object it
 * holds a weak reference to (the serial is on that reference), or an object that takes none (a
 * list, dict or tuple, a class with `__slots__` and no `__weakref__`, such as a
 * `dataclass(slots=True)`) whose entry was read before and has not moved since (FpKeyMemo).
 * Else the map is asked (Python). */
static PyObject *
serial_of(Enc *e, PyObject *v)
{
    Fingerprinter *fp = e->fp;
    PyTypeObject *tp = Py_TYPE(v);
    FpKeyMemo *memo = NULL;
    Py_ssize_t size = 0;
    void *first = NULL, *last = NULL;
    /* Objects without weak references: the map keys them by address and class (and a tuple by
     * its size and end items too). Until 2026-11-28 only lists, dicts and tuples: orders.py's
     * slotted orders and lines asked the map 94,000 times. */
    if (fp->key_memo != NULL && tp->tp_weaklistoffset == 0) {
        if (PyTuple_Check(v) && (size = PyTuple_GET_SIZE(v)) > 0) {
            first = PyTuple_GET_ITEM(v, 0);
            last = PyTuple_GET_ITEM(v, size - 1);
        }
        /* Two entries per address, so that two containers in use together whose addresses
         * share a slot do not push each other out at every encoding (a call into Python each
         * time: nbody's pairs took a third longer to record in one run in three). */
        memo = &fp->key_memo[fp_slot_of(v, FP_ENTRY_MEMO) & ~(size_t)1];
        uint64_t changes = ((const uint64_t *)fp->entry_changes.buf)[2];
        for (int way = 0; way < 2; way++) {
            FpKeyMemo *m = &memo[way];
            if (m->serial != NULL && m->addr == (void *)v && m->type == tp && m->size == size
                && m->first == first && m->last == last && m->changes == changes) {
                return Py_NewRef(m->serial);
            }
        }
    }
    else {
        PyObject *known = fp_serial_ref(fp, v);
        if (known != NULL) {
            return Py_NewRef(known);
        }
    }
    uint64_t check = memo != NULL ? identity_check(tp, size, first, last) : 0;
    PyObject *key = memo != NULL ? young_serial(fp, v, check) : NULL;
    if (key == NULL && memo != NULL) {
        key = young_insert(fp, v, check);
    }
    else if (key == NULL) {
        key = weak_insert(fp, v);
    }
    if (key == NULL) {
        fp->python_calls++;
        key = PyObject_CallOneArg(fp->key, v);
        if (key == NULL) {
            return callback_failed();
        }
    }
    if (memo != NULL && PyLong_CheckExact(key)) {
        /* The map's entry for this address is now v's: remember it until entries move, in the
         * first way, the entry there moving to the second unless it is out of date. */
        if (memo[0].serial != NULL && memo[0].changes == ((const uint64_t *)fp->entry_changes.buf)[2]) {
            Py_XSETREF(memo[1].serial, NULL);
            memo[1] = memo[0];
            memo[0].serial = NULL;
        }
        memo->addr = (void *)v;
        memo->type = tp;
        memo->size = size;
        memo->first = first;
        memo->last = last;
        memo->changes = ((const uint64_t *)fp->entry_changes.buf)[2];
        Py_XSETREF(memo->serial, Py_NewRef(key));
    }
    return key;
}

static int
on_path(Enc *e, void *p)
{
    for (int i = 0; i < e->npath; i++) {
        if (e->path[i] == p) {
            return 1;
        }
    }
    return 0;
}

/* `_is_secret_key`: 1/0, -1 with or without an exception (not mine). */
static int
key_is_secret(Enc *e, PyObject *k)
{
    PyObject *name;
    if (PyUnicode_CheckExact(k)) {
        name = Py_NewRef(k);
    }
    else if (PyBytes_CheckExact(k)) {
        name = PyUnicode_DecodeLatin1(PyBytes_AS_STRING(k), PyBytes_GET_SIZE(k), NULL);
        if (name == NULL) {
            return -1;
        }
    }
    else {
        return 0;
    }
    int secret = fp_name_secret(e->fp, name);
    if (secret < 0) { /* not asked yet: ask the redactor, which remembers the answer */
        Py_CLEAR(e->fp->miss_name);
        e->fp->python_calls++;
        PyObject *answer = PyObject_CallOneArg(e->fp->is_secret, name);
        secret = answer == NULL ? -1 : PyObject_IsTrue(answer);
        Py_XDECREF(answer);
        if (secret < 0) {
            callback_failed();
        }
    }
    Py_DECREF(name);
    return secret;
}

/* (V_REDACTED, type_name(x)) */
static PyObject *
redacted(Enc *e, PyObject *x)
{
    e->fp->python_calls++;
    PyObject *name = PyObject_CallOneArg(e->fp->type_name, x);
    if (name == NULL) {
        return callback_failed();
    }
    return Py_BuildValue("(iN)", e->fp->tags.redacted, name);
}

/* A venc node `(tag, key, tname, third, fourth)` (or a 3-tuple when `third` is NULL), built
 * without Py_BuildValue's format parsing (a node per container encoded: nbody makes a dozen per
 * line). Steals `key`, `third` and `fourth` (as Py_BuildValue's "N" does, even on failure);
 * borrows `tname`. A new reference, NULL on error. */
static PyObject *
venc_node(int tag, PyObject *key, PyObject *tname, PyObject *third, PyObject *fourth)
{
    PyObject *t = PyTuple_New(third != NULL ? 5 : 3);
    PyObject *tag_obj = t != NULL ? PyLong_FromLong(tag) : NULL;
    if (tag_obj == NULL) {
        Py_XDECREF(t);
        Py_DECREF(key);
        Py_XDECREF(third);
        Py_XDECREF(fourth);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, tag_obj);
    PyTuple_SET_ITEM(t, 1, key);
    PyTuple_SET_ITEM(t, 2, Py_NewRef(tname));
    if (third != NULL) {
        PyTuple_SET_ITEM(t, 3, third);
        PyTuple_SET_ITEM(t, 4, fourth);
    }
    return t;
}

/* `venc_node` for a container: its size, then its items (NULL: cut, shown as None). Steals
 * `key` and `items`. */
static PyObject *
venc_container(int tag, PyObject *key, PyObject *tname, Py_ssize_t n, PyObject *items)
{
    PyObject *size = PyLong_FromSsize_t(n);
    if (size == NULL) {
        Py_DECREF(key);
        Py_XDECREF(items);
        return NULL;
    }
    return venc_node(tag, key, tname, size, items != NULL ? items : Py_NewRef(Py_None));
}

/* `_room`: how many of n items to expand. */
static inline Py_ssize_t
room_for(Enc *e, Py_ssize_t n)
{
    if (n == 0) {
        return 0; /* an empty container takes nothing from an overdrawn budget */
    }
    Py_ssize_t k = n < e->fp->max_items ? n : e->fp->max_items;
    return k < e->budget ? k : e->budget;
}

/* References to the first k items of a list or tuple, taken before any is encoded. */
static PyObject **
copy_items(PyObject *v, Py_ssize_t k)
{
    PyObject **items = PyMem_Malloc((size_t)(k ? k : 1) * sizeof(PyObject *));
    if (items == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    PyObject **src = PyTuple_Check(v) ? ((PyTupleObject *)v)->ob_item
                                      : ((PyListObject *)v)->ob_item;
    for (Py_ssize_t i = 0; i < k; i++) {
        items[i] = Py_NewRef(src[i]);
    }
    return items;
}

static void
release(PyObject **refs, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_DECREF(refs[i]);
    }
    PyMem_Free(refs);
}

/* `_secret_pair`: a 2-item list or tuple whose first item is a secret-looking name. */
static PyObject *
enc_secret_pair(Enc *e, PyObject *pair, PyObject *tname, int depth)
{
    PyObject *key = serial_of(e, pair);
    if (key == NULL) {
        return NULL;
    }
    if (depth >= e->fp->max_depth) {
        return venc_container(e->fp->tags.seq, key, tname, 2, NULL);
    }
    if (Py_SIZE(pair) != 2) { /* changed by another thread while `key` ran */
        Py_DECREF(key);
        return NULL;
    }
    e->budget -= 2;
    PyObject *first = PySequence_Fast_ITEMS(pair)[0], *second = PySequence_Fast_ITEMS(pair)[1];
    Py_INCREF(first);
    Py_INCREF(second);
    PyObject *ef = enc_value(e, first, depth + 1);
    PyObject *hidden = ef != NULL ? redacted(e, second) : NULL;
    Py_DECREF(first);
    Py_DECREF(second);
    if (hidden == NULL) {
        Py_XDECREF(ef);
        Py_DECREF(key);
        return NULL;
    }
    return Py_BuildValue("(iNOn[NN])", e->fp->tags.seq, key, tname, (Py_ssize_t)2, ef, hidden);
}

/* `_items` then `_item`: one item of a list or tuple, one level down. */
static PyObject *
enc_item(Enc *e, PyObject *x, int depth)
{
    if (fp_inline_atom(e->fp, x)) {
        return Py_NewRef(x);
    }
    PyTypeObject *tx = Py_TYPE(x);
    if ((tx == &PyTuple_Type || tx == &PyList_Type) && Py_SIZE(x) == 2) {
        int secret = key_is_secret(e, PySequence_Fast_ITEMS(x)[0]);
        if (secret < 0) {
            return NULL;
        }
        if (secret) {
            return enc_secret_pair(e, x, tx == &PyTuple_Type ? e->fp->names.tuple
                                                             : e->fp->names.list, depth);
        }
    }
    return enc_value(e, x, depth);
}

/* What `_list`, `_tuple` and `_dict` do before their items: the serial, then a back reference
 * or a header without items (cut by depth or budget). 1: expand the first *k items (*key holds
 * the serial, the budget is charged). 0: *done is what to return (the venc, or NULL). */
static int
container_head(Enc *e, PyObject *v, int depth, Py_ssize_t n, int tag, PyObject *tname,
               PyObject **key, Py_ssize_t *k, PyObject **done)
{
    *key = serial_of(e, v);
    if (*key == NULL) {
        *done = NULL;
        return 0;
    }
    if (on_path(e, v)) {
        *done = venc_node(e->fp->tags.ref, *key, tname, NULL, NULL);
        return 0;
    }
    *k = room_for(e, n);
    if (depth >= e->fp->max_depth || (n && *k <= 0)) {
        *done = venc_container(tag, *key, tname, n, NULL);
        return 0;
    }
    if (e->npath >= FP_MAX_PATH) {
        Py_DECREF(*key);
        *done = NULL;
        return 0;
    }
    e->budget -= *k;
    return 1;
}

/* The rest of `_list`, `_tuple` and `_seq` once the first `got` items of `v` are copied (owned
 * references, released here): each encoded one level down with `v` on the recursion path, then
 * the container's venc. Steals `key`. */
static PyObject *
enc_copied_items(Enc *e, PyObject *v, PyObject *key, PyObject *tname, Py_ssize_t n,
                 PyObject **items, Py_ssize_t got, int depth)
{
    PyObject *out = PyList_New(got);
    if (out == NULL) {
        release(items, got);
        Py_DECREF(key);
        return NULL;
    }
    e->path[e->npath++] = v;
    for (Py_ssize_t i = 0; i < got; i++) {
        PyObject *x = enc_item(e, items[i], depth + 1);
        if (x == NULL) {
            e->npath--;
            release(items, got);
            Py_DECREF(out);
            Py_DECREF(key);
            return NULL;
        }
        PyList_SET_ITEM(out, i, x);
    }
    e->npath--;
    release(items, got);
    return venc_container(e->fp->tags.seq, key, tname, n, out);
}

/* `_list` and `_tuple`, and `_seq` for their subclasses (named `tname`). */
static PyObject *
enc_sequence(Enc *e, PyObject *v, PyObject *tname, int depth)
{
    PyObject *key, *done;
    Py_ssize_t n = Py_SIZE(v), k;
    if (!container_head(e, v, depth, n, e->fp->tags.seq, tname, &key, &k, &done)) {
        return done;
    }
    PyObject **items = copy_items(v, k);
    if (items == NULL) {
        Py_DECREF(key);
        return NULL;
    }
    return enc_copied_items(e, v, key, tname, n, items, k, depth);
}

/* References to up to k (key, value) pairs of an exact dict, taken before any is encoded:
 * 2 * *got references. */
static PyObject **
copy_pairs(PyObject *d, Py_ssize_t k, Py_ssize_t *got)
{
    FpAttrs items = {.dict = d}; /* borrowed: not closed */
    return fp_attrs_copy(&items, k, got);
}

/* `_pairs`: a dict's (key, value) pairs, one level down. */
static PyObject *
enc_pairs(Enc *e, PyObject **pairs, Py_ssize_t n, int depth)
{
    PyObject *out = PyList_New(n);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *k = pairs[2 * i], *val = pairs[2 * i + 1];
        PyTypeObject *tk = Py_TYPE(k);
        PyObject *ek = (tk == &PyUnicode_Type && PyUnicode_GET_LENGTH(k) <= e->fp->max_string)
                               || (tk == &PyLong_Type && PyUnstable_Long_IsCompact((PyLongObject *)k))
                           ? Py_NewRef(k)
                           : enc_value(e, k, depth);
        if (ek == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        int secret = 0;
        if (tk == &PyUnicode_Type || tk == &PyBytes_Type) {
            secret = key_is_secret(e, k);
        }
        PyObject *ev = secret < 0  ? NULL
                       : secret    ? redacted(e, val)
                       : fp_inline_atom(e->fp, val) ? Py_NewRef(val)
                                                 : enc_value(e, val, depth);
        if (ev == NULL) {
            Py_DECREF(ek);
            Py_DECREF(out);
            return NULL;
        }
        PyObject *pair = PyTuple_Pack(2, ek, ev);
        Py_DECREF(ek);
        Py_DECREF(ev);
        if (pair == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, pair);
    }
    return out;
}

/* `_seq` for a set or frozenset, or a deque (and their subclasses, named `tname`): the items
 * of a set's hash table in order (see walk_set), the first items of a deque as deque's own
 * __iter__ gives them (see walk_deque); copied with references before any is encoded. */
static PyObject *
enc_set_or_deque(Enc *e, PyObject *v, PyObject *tname, int depth, int is_set)
{
    PyObject *key, *done;
    PySetObject *so = (PySetObject *)v;
    PyTypeObject *dt = e->fp->deque_type;
    Py_ssize_t n = is_set ? so->used : fp_deque_len(dt, v), k;
    if (n < 0) {
        return NULL;
    }
    if (!container_head(e, v, depth, n, e->fp->tags.seq, tname, &key, &k, &done)) {
        return done;
    }
    PyObject **items = PyMem_Malloc((size_t)(k ? k : 1) * sizeof(PyObject *));
    if (items == NULL) {
        Py_DECREF(key);
        return PyErr_NoMemory();
    }
    Py_ssize_t got = 0;
    for (Py_ssize_t i = 0; is_set && i <= so->mask && got < k; i++) {
        setentry *entry = &so->table[i];
        if (entry->key != NULL && entry->hash != -1) {
            items[got++] = Py_NewRef(entry->key);
        }
    }
    for (; !is_set && got < k; got++) {
        items[got] = fp_deque_item(dt, v, got);
        if (items[got] == NULL) {
            release(items, got);
            Py_DECREF(key);
            return NULL;
        }
    }
    return enc_copied_items(e, v, key, tname, n, items, got, depth);
}

/* `_dict`, and `_map` for its subclasses (named `tname`). */
static PyObject *
enc_dict(Enc *e, PyObject *v, PyObject *tname, int depth)
{
    PyObject *key, *done;
    Py_ssize_t n = PyDict_GET_SIZE(v), k;
    if (!container_head(e, v, depth, n, e->fp->tags.map, tname, &key, &k, &done)) {
        return done;
    }
    Py_ssize_t got = 0;
    PyObject **pairs = copy_pairs(v, k, &got);
    if (pairs == NULL) {
        Py_DECREF(key);
        return NULL;
    }
    e->path[e->npath++] = v;
    PyObject *out = enc_pairs(e, pairs, got, depth + 1);
    e->npath--;
    release(pairs, 2 * got);
    if (out == NULL) {
        Py_DECREF(key);
        return NULL;
    }
    return venc_container(e->fp->tags.map, key, tname, n, out);
}

/* An OBJ node's attrs dict, sized for the `n` names it will hold at most (up to 64; past that
 * it grows as usual): a dict grown one name at a time past five is resized on the way (a new
 * table, the names moved, the old freed), and every changed object of a recording makes one. */
static inline PyObject *
new_attrs(Py_ssize_t n)
{
#if PY_VERSION_HEX < 0x030E0000
    return n > 5 ? _PyDict_NewPresized(n < 64 ? n : 64) : PyDict_New();
#else
    return PyDict_New(); /* _PyDict_NewPresized is private; not relied on past 3.13 */
#endif
}

/* enc_object below the checks: the instance dict's attributes (if it has one), then the slots
 * (`slots`, copied out of the class's cache entry), into the OBJ node. Consumes `key`. */
static PyObject *
enc_attrs(Enc *e, PyObject *v, PyObject *tname, PyObject *key, int depth, int has_dict, int exc,
          const FpSlot *slots, Py_ssize_t nslots)
{
    Fingerprinter *fp = e->fp;
    FpAttrs d;
    if (e->npath >= FP_MAX_PATH) {
        Py_DECREF(key);
        return NULL;
    }
    if (has_dict && !fp_attrs_open(v, &d)) {
        Py_DECREF(key);
        return NULL;
    }
    Py_ssize_t room = fp->max_attrs < e->budget ? fp->max_attrs : e->budget;
    e->budget -= room;
    room -= exc; /* an exception's `args` takes one unit of it, first */
    Py_ssize_t n = has_dict ? fp_attrs_size(&d) : 0, got = 0;
    PyObject **pairs = has_dict ? fp_attrs_copy(&d, n <= room ? n : room, &got) : PyMem_Malloc(1);
    if (has_dict) {
        fp_attrs_close(&d);
    }
    PyObject *attrs = pairs != NULL ? new_attrs(got + exc + nslots) : NULL;
    if (attrs == NULL) {
        if (pairs != NULL) {
            release(pairs, 2 * got);
        }
        Py_DECREF(key);
        return NULL;
    }
    int truncated = n > got;
    room -= got;
    e->path[e->npath++] = v;
    int ok = 1;
    if (exc) {
        /* `BaseException.args` (its C getset: the field, None when unset), never redacted. */
        PyObject *args = ((PyBaseExceptionObject *)v)->args;
        args = Py_NewRef(args != NULL ? args : Py_None); /* encoding may run Python code */
        PyObject *ev = enc_value(e, args, depth + 1);
        Py_DECREF(args);
        ok = ev != NULL && PyDict_SetItem(attrs, fp->names.args, ev) == 0;
        Py_XDECREF(ev);
    }
    for (Py_ssize_t i = 0; ok && i < got; i++) {
        PyObject *name = pairs[2 * i], *val = pairs[2 * i + 1];
        if (!PyUnicode_CheckExact(name)) {
            truncated = 1; /* a str subclass key could hash in user code: skipped */
            continue;
        }
        int secret = key_is_secret(e, name);
        PyObject *ev = secret < 0               ? NULL
                       : secret                 ? redacted(e, val)
                       : fp_inline_atom(fp, val)   ? Py_NewRef(val)
                                                : enc_value(e, val, depth + 1);
        ok = ev != NULL && PyDict_SetItem(attrs, name, ev) == 0;
        Py_XDECREF(ev);
    }
    /* `_slot_attrs`: unset slots skipped, one unit of room each, a name the dict gave kept. */
    for (Py_ssize_t i = 0; ok && i < nslots; i++) {
        /* Held: encoding may run Python code (the identity map). */
        PyObject *slot = fp_slot_get(v, &slots[i]);
        if (slot == NULL) {
            ok = !PyErr_Occurred(); /* else an unset slot: not shown */
            continue;
        }
        if (room <= 0) {
            Py_DECREF(slot);
            truncated = 1;
            break;
        }
        room--;
        PyObject *name = slots[i].name;
        int shown = PyDict_Contains(attrs, name); /* exact str keys: no user code */
        if (shown != 0) {
            Py_DECREF(slot);
            ok = shown > 0;
            continue;
        }
        int secret = key_is_secret(e, name);
        PyObject *ev = secret < 0 ? NULL
                       : secret   ? redacted(e, slot)
                                  : enc_value(e, slot, depth + 1);
        Py_DECREF(slot);
        ok = ev != NULL && PyDict_SetItem(attrs, name, ev) == 0;
        Py_XDECREF(ev);
    }
    e->npath--;
    release(pairs, 2 * got);
    if (!ok) {
        Py_DECREF(attrs);
        Py_DECREF(key);
        return NULL;
    }
    if (room > 0) {
        e->budget += room;
    }
    return venc_node(fp->tags.obj, key, tname, attrs, Py_NewRef(truncated ? Py_True : Py_False));
}


/* `_obj` for an instance of a plain class (its instance dict's attributes) or of a slotted one
 * (FP_SLOTTED: its instance dict, if it has one, then its slots). */
static PyObject *
enc_object(Enc *e, PyObject *v, PyObject *tname, int depth)
{
    Fingerprinter *fp = e->fp;
    PyObject *key = serial_of(e, v);
    if (key == NULL) {
        return NULL;
    }
    if (on_path(e, v)) {
        return venc_node(fp->tags.ref, key, tname, NULL, NULL);
    }
    if (depth >= fp->max_depth || e->budget <= 0) {
        return venc_node(fp->tags.obj, key, tname, Py_NewRef(Py_None), Py_NewRef(Py_True));
    }
    /* A slotted class (FP_SLOTTED) or an exception: its slots after its instance dict, if it
     * has one. The layout is copied: encoding the attributes may run Python code (the identity
     * map, the redactor) that classifies other classes, which may reuse this class's cache
     * entry. */
    const FpTypeEntry *te = fp_type_entry(fp, Py_TYPE(v));
    int slotted = te != NULL && te->kind == FP_SLOTTED;
    int exc = te != NULL && te->kind == FP_EXCEPTION;
    int has_dict = !slotted || te->has_dict;
    Py_ssize_t nslots = slotted || exc ? te->nslots : 0;
    FpSlot *slots = nslots ? PyMem_Malloc((size_t)nslots * sizeof *slots) : NULL;
    if (nslots && slots == NULL) {
        Py_DECREF(key);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < nslots; i++) {
        slots[i].name = Py_NewRef(te->slots[i].name);
        slots[i].offset = te->slots[i].offset;
        slots[i].type = te->slots[i].type;
    }
    PyObject *node = enc_attrs(e, v, tname, key, depth, has_dict, exc, slots, nslots);
    for (Py_ssize_t i = 0; i < nslots; i++) {
        Py_DECREF(slots[i].name);
    }
    PyMem_Free(slots);
    return node;
}

/* `_namedtuple`: an object whose attributes are its first fields (walk_namedtuple). */
static PyObject *
enc_namedtuple(Enc *e, PyObject *v, PyObject *tname, int depth)
{
    Fingerprinter *fp = e->fp;
    const FpTypeEntry *te = fp_type_entry(fp, Py_TYPE(v));
    if (te == NULL || te->fields == NULL) {
        return NULL;
    }
    /* Held: encoding may run Python code (the identity map), which may reclassify the class. */
    PyObject *fields = Py_NewRef(te->fields);
    PyObject *key = serial_of(e, v);
    if (key == NULL) {
        Py_DECREF(fields);
        return NULL;
    }
    if (on_path(e, v)) {
        Py_DECREF(fields);
        return venc_node(fp->tags.ref, key, tname, NULL, NULL);
    }
    if (depth >= fp->max_depth || e->budget <= 0) {
        Py_DECREF(fields);
        return venc_node(fp->tags.obj, key, tname, Py_NewRef(Py_None), Py_NewRef(Py_True));
    }
    Py_ssize_t n = PyTuple_GET_SIZE(v), k = PyTuple_GET_SIZE(fields);
    k = n < k ? n : k;
    k = k < fp->max_attrs ? k : fp->max_attrs;
    k = k < e->budget ? k : e->budget;
    PyObject *attrs = e->npath < FP_MAX_PATH ? new_attrs(k) : NULL;
    if (attrs == NULL) {
        Py_DECREF(fields);
        Py_DECREF(key);
        return NULL;
    }
    e->budget -= k;
    e->path[e->npath++] = v;
    int ok = 1;
    for (Py_ssize_t i = 0; ok && i < k; i++) {
        PyObject *name = PyTuple_GET_ITEM(fields, i);
        PyObject *x = PyTuple_GET_ITEM(v, i); /* a tuple's items do not change */
        int secret = key_is_secret(e, name);
        PyObject *ev = secret < 0 ? NULL : secret ? redacted(e, x) : enc_value(e, x, depth + 1);
        ok = ev != NULL && PyDict_SetItem(attrs, name, ev) == 0;
        Py_XDECREF(ev);
    }
    e->npath--;
    Py_DECREF(fields);
    if (!ok) {
        Py_DECREF(attrs);
        Py_DECREF(key);
        return NULL;
    }
    return venc_node(fp->tags.obj, key, tname, attrs, Py_NewRef(k < n ? Py_True : Py_False));
}

/* A list, tuple, dict or object inside the value: built by enc_node, or, when the same part was
 * encoded before in the same place (depth, budget left, identity map generation) and has not
 * changed since (fp_subtree), its earlier venc, shared. A shared venc is written once per chunk
 * of the store (marshal keeps one copy of an object it meets twice), and costs no encoding. */
static PyObject *enc_node(Enc *e, PyObject *v, int depth);

/* The entry of fp->parts for `v`, about to be encoded at `depth`, if the encoding is still in
 * step with the walk that recorded them (same part, same place, same budget, nothing ran since);
 * else NULL, and the log is not used again for this value. */
static FpPart *
logged_part(Enc *e, PyObject *v, int depth)
{
    Fingerprinter *fp = e->fp;
    if (e->cursor < 0) {
        return NULL;
    }
    /* Once Python code ran (the identity map's `key` for a new object), the map may have moved
     * (a rotation) and the content may have changed: what the walk saw no longer holds. */
    if (e->parts_gen == fp->parts_gen && e->epoch == fp_epoch(fp)
        && e->cursor < fp->nparts) {
        FpPart *p = &fp->parts[e->cursor];
        if (p->ptr == (void *)v && p->depth == depth && p->budget_in == e->budget) {
            return p;
        }
    }
    e->cursor = -1; /* another walk ran meanwhile (re-entered), or the value changed */
    return NULL;
}

static PyObject *
enc_part(Enc *e, PyObject *v, int depth)
{
    Fingerprinter *fp = e->fp;
    FpPart *p = logged_part(e, v, depth);
    uint64_t sub = 0, content = 0;
    Py_ssize_t before = e->budget, after = 0;
    if (p != NULL) {
        sub = p->fp;
        content = p->content;
        after = p->budget_out;
        e->cursor++; /* into its own parts */
    }
    else if (depth > 0 && fp->values != NULL
             && fp_subtree(fp, v, depth, before, e->path, e->npath, &sub, &content, &after) <= 0) {
        sub = 0;
    }
    if (sub == 0) {
        return enc_node(e, v, depth);
    }
    /* The value itself (depth 0) has its own cache, the caller's, under fp_of's fingerprint; here
     * it may share the venc it has as a part of a value encoded before (nbody's `v1`, changed,
     * after `bodies` and `pairs`, which hold it, were encoded at the same line). */
    PyObject *known = depth == 0 ? fp_cached_part(fp, v, sub) : fp_cached_at(fp, v, sub, depth);
    if (known != NULL) {
        e->budget = after;
        if (p != NULL && e->cursor >= 0) {
            e->cursor = p->next; /* past its own parts */
        }
        return known;
    }
    /* Remembered as a part: the value itself at depth 1's place (a part's fingerprint holds at
     * any depth; the caller remembers it as a value too, under fp_of's fingerprint). */
    int at = depth > 0 ? depth : 1;
    uint64_t epoch = fp_epoch(fp);
    PyObject *venc = enc_node(e, v, depth);
    if (venc == NULL || e->budget != after) {
        return venc;
    }
    if (fp_epoch(fp) == epoch) {
        /* No Python code ran: nothing changed, and no serial was given out. */
        fp_remember_at(fp, v, sub, venc, at, before - after);
        return venc;
    }
    /* Python code ran meanwhile (the identity map's `key`): keep the venc only if the part still
     * has the content it had before, so that the venc describes it; remember it under the
     * fingerprint it has now, with the serials the encoding gave out. */
    uint64_t now = 0, content_now = 0;
    if (fp_subtree(fp, v, depth, before, e->path, e->npath, &now, &content_now, &after) > 0
        && content_now == content && e->budget == after) {
        fp_remember_at(fp, v, now, venc, at, before - after);
    }
    return venc;
}

/* `_opaque` for a value of a C class shown by its own C repr (FP_CREPR: a Decimal, a complex, a
 * range; the exact classes `walk_kind` names, never a subclass): `(V_OPAQUE, 0, name, text)`,
 * the text cut at max_string as `_cut` cuts it. Made here because every sum or product of
 * Decimals is a new one: orders.py asked the Python encoder for 159,000 of them. NULL (no
 * exception) where the Python encoder decides: a repr that fails or is not an exact str. */
static PyObject *
crepr_venc(Enc *e, PyObject *v, PyObject *name)
{
    Fingerprinter *fp = e->fp;
    PyObject *text = Py_TYPE(v)->tp_repr(v);
    if (text == NULL || !PyUnicode_CheckExact(text)) {
        Py_XDECREF(text);
        PyErr_Clear();
        return NULL;
    }
    text = fp_cut_text(fp, text);
    if (text == NULL) {
        PyErr_Clear();
        return NULL;
    }
    return Py_BuildValue("(iiON)", fp->tags.opaque, 0, name, text);
}

PyObject *
fp_cut_text(Fingerprinter *fp, PyObject *text)
{
    if (PyUnicode_GET_LENGTH(text) <= fp->max_string) {
        return text;
    }
    PyObject *head = PyUnicode_Substring(text, 0, fp->max_string);
    Py_DECREF(text);
    text = head != NULL ? PyUnicode_Concat(head, fp->names.ellipsis) : NULL;
    Py_XDECREF(head);
    return text;
}

/* The text `_object_text` (snapshot.py) gives a function, a generator, coroutine or async
 * generator, or an object whose text names its class alone (FP_OPAQUE_TYPE: an iterator, say),
 * made from their C fields; NULL, with no exception, for any other value or field (the Python
 * encoder then makes it). Why: json_requests.py asked Python for 4,000 of them per 2,000
 * requests (the handler function bound at each request, whose cached venc the request's own
 * values had pushed out, and a list iterator per request), generators.py for 1,500 coroutines. */
static PyObject *
object_text(PyObject *v, int kind, PyObject *name, Fingerprinter *fp)
{
    PyTypeObject *tp = Py_TYPE(v);
    PyObject *text = NULL;
    if (kind == FP_OPAQUE_TYPE) {
        text = PyUnicode_FromFormat("<%U object>", name);
    }
    else if (tp == &PyFunction_Type) {
        /* `_qualified(module, qualname)`: "?" for a qualname that is not a str, no module for
         * one that is not a str or is "builtins". */
        PyObject *module = ((PyFunctionObject *)v)->func_module;
        PyObject *qualname = ((PyFunctionObject *)v)->func_qualname;
        PyObject *qual = qualname != NULL && PyUnicode_CheckExact(qualname) ? qualname : NULL;
        int prefixed = module != NULL && PyUnicode_CheckExact(module)
                       && PyUnicode_CompareWithASCIIString(module, "builtins") != 0;
        text = prefixed ? (qual != NULL ? PyUnicode_FromFormat("<function %U.%U>", module, qual)
                                        : PyUnicode_FromFormat("<function %U.?>", module))
               : qual != NULL ? PyUnicode_FromFormat("<function %U>", qual)
                              : PyUnicode_FromString("<function ?>");
    }
    else {
        static const char *const words[] = {"generator", "coroutine", "async_generator"};
        int gen = tp == &PyGen_Type ? 0 : tp == &PyCoro_Type ? 1 : tp == &PyAsyncGen_Type ? 2 : -1;
        getter get = gen >= 0 ? fp->gen_qualname[gen] : NULL;
        PyObject *qualname = get != NULL ? get(v, NULL) : NULL; /* a C getset: no user code */
        if (qualname != NULL && PyUnicode_CheckExact(qualname)) {
            text = PyUnicode_FromFormat("<%s object %U>", words[gen], qualname);
        }
        Py_XDECREF(qualname);
    }
    if (text == NULL) {
        PyErr_Clear();
    }
    return text;
}

/* A class, function, method, builtin, module or generator (FP_OPAQUE), or an object whose text
 * names its class (FP_OPAQUE_TYPE): `(V_OPAQUE, serial, name, text)`, the text made here where
 * `object_text` can, else the venc from the Python encoder (`encode_opaque`), kept in the value
 * cache under its fingerprint (but a generator's: see fp_remember_at), so that the next value
 * holding it reuses it without Python. */
static PyObject *
enc_opaque(Enc *e, PyObject *v)
{
    Fingerprinter *fp = e->fp;
    PyObject *name = NULL;
    uint64_t f = 0;
    int kind = fp_type_kind(fp, Py_TYPE(v), &name);
    if (!fp_leaf_kind(kind) || fp_opaque(fp, v, &f) <= 0) {
        return NULL;
    }
    fp->nodes_built++;
    PyObject *known = fp_cached_at(fp, v, f, 0);
    if (known != NULL) {
        return known;
    }
    /* A Decimal, complex or range; or a date whose text is all C (every `datetime.now()` is a
     * new one: orders.py asked the Python encoder for 23,000 of them). */
    int c_text = kind == FP_CREPR || (kind == FP_DATETIME && fp_datetime_text_in_c(v));
    PyObject *venc = c_text ? crepr_venc(e, v, name) : NULL;
    PyObject *text = c_text ? NULL : object_text(v, kind, name, fp);
    if (text != NULL) {
        /* `_opaque`: the map's serial, as the Python encoder asks for it (nothing between). */
        PyObject *serial = serial_of(e, v);
        if (serial == NULL) {
            Py_DECREF(text);
            return NULL; /* the map said no: not mine, or an exception to pass on */
        }
        venc = Py_BuildValue("(iNON)", fp->tags.opaque, serial, name, text);
        if (venc == NULL) {
            return NULL;
        }
    }
    if (venc == NULL) {
        fp->python_calls++;
        venc = PyObject_CallOneArg(fp->encode_opaque, v);
        if (venc == NULL) {
            return callback_failed();
        }
    }
    /* Under its fingerprint now: the encoding may have given it its serial. */
    if (fp_opaque(fp, v, &f) > 0 && fp_remember_at(fp, v, f, venc, 0, 1) < 0) {
        Py_DECREF(venc);
        return NULL;
    }
    return venc;
}

/* `_enc`. */
static PyObject *
enc_value(Enc *e, PyObject *v, int depth)
{
    Fingerprinter *fp = e->fp;
    PyTypeObject *tp = Py_TYPE(v);
    if (tp == &PyLong_Type) {
        int overflow = 0;
        (void)PyLong_AsLongLongAndOverflow(v, &overflow);
        /* |v| < 2**63 < 10**19 <= 10**max_int_digits (fp_init checks): an atom, as is a
         * bigger int with fewer digits than that. Longer ones are shown by their leading
         * digits: not mine. */
        return overflow && fp_whole_int_bits(fp, v) == 0 ? NULL : Py_NewRef(v);
    }
    if (tp == &PyUnicode_Type) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(v);
        if (n <= fp->max_string) {
            return Py_NewRef(v);
        }
        PyObject *head = PyUnicode_Substring(v, 0, fp->max_string);
        return head ? Py_BuildValue("(iONn)", fp->tags.cut, fp->names.str, head, n) : NULL;
    }
    if (tp == &PyBytes_Type) {
        Py_ssize_t n = PyBytes_GET_SIZE(v);
        if (n <= fp->max_string) {
            return Py_NewRef(v);
        }
        PyObject *head = PyBytes_FromStringAndSize(PyBytes_AS_STRING(v), fp->max_string);
        return head ? Py_BuildValue("(iONn)", fp->tags.cut, fp->names.bytes, head, n) : NULL;
    }
    if (tp == &PyFloat_Type || tp == &PyBool_Type || v == Py_None) {
        return Py_NewRef(v);
    }
    if (!fp_is_part(v, e->fp->deque_type)) {
        /* Other C types: a leaf, as the walk reads it (walk_value). */
        return enc_opaque(e, v);
    }
    return enc_part(e, v, depth);
}

static PyObject *
enc_node(Enc *e, PyObject *v, int depth)
{
    Fingerprinter *fp = e->fp;
    fp->nodes_built++;
    PyTypeObject *tp = Py_TYPE(v);
    if (tp == &PyList_Type || tp == &PyTuple_Type) {
        return enc_sequence(e, v, tp == &PyList_Type ? fp->names.list : fp->names.tuple, depth);
    }
    if (tp == &PyDict_Type) {
        return enc_dict(e, v, fp->names.dict, depth);
    }
    if (!fp_is_part(v, e->fp->deque_type)) {
        return NULL;
    }
    PyObject *tname = NULL;
    int kind = fp_type_kind(fp, tp, &tname);
    if (fp_leaf_kind(kind)) {
        return enc_opaque(e, v);
    }
    switch (kind) {
    case FP_SET:
    case FP_DEQUE:
        return enc_set_or_deque(e, v, tname, depth, kind == FP_SET);
    case FP_PLAIN:
    case FP_SLOTTED:
    case FP_EXCEPTION:
        return enc_object(e, v, tname, depth);
    case FP_NAMEDTUPLE:
        return enc_namedtuple(e, v, tname, depth);
    case FP_LIST:
    case FP_TUPLE:
        return enc_sequence(e, v, tname, depth);
    case FP_DICT:
        return enc_dict(e, v, tname, depth);
    default:
        return NULL;
    }
}

PyObject *
fp_encode(Fingerprinter *fp, PyObject *v)
{
    if (!fp->can_encode) {
        return NULL;
    }
    Enc e;
    e.fp = fp;
    e.budget = fp->max_nodes;
    e.npath = 0;
    /* The parts fp_of's walk recorded, if they are of this value (the caller's last walk). */
    e.cursor = fp->parts_root == (void *)v ? fp->parts_root_slot : -1;
    e.parts_gen = fp->parts_gen;
    e.epoch = fp_epoch(fp);
    PyObject *venc = enc_value(&e, v, 0);
    if (venc == NULL && PyErr_Occurred()) {
        callback_failed(); /* MemoryError and the like: the Python encoder decides */
    }
    return venc;
}

/* ------------------------------------------------------------------------------------------- */
/* Object records (replay/recorder/records.py, versions.py)                                     */
/*
 * In a recording of object records, a changed name is written as its entry and the records of
 * the objects its value shows. The tree the C core has just made for the name (to decide that
 * it changed) shows exactly those objects, each with its serial: fp_records walks the tree and
 * the live value side by side and makes, for each container or object the tree shows, its
 * record as `RecordEncoder.record` makes it (its own level to `max_items`/`max_attrs`, each
 * item that is itself a container or object a reference `(V_OREF, serial)`). What it does not
 * know it leaves to the Python record encoder (NULL, no exception: "not mine"): a secret-looking
 * pair in a sequence, an enum member whose value is not an atom, and any live value that is no
 * longer what the tree shows (its serial differs: another thread changed it).
 */

/* (V_OREF, serial of x) */
static PyObject *
rec_ref(Enc *e, PyObject *x)
{
    PyObject *key = serial_of(e, x);
    return key != NULL ? Py_BuildValue("(iN)", R_TAG_OREF, key) : NULL;
}

/* A leaf's form: its venc, as the tree encoder makes it; but an enum member whose value is a
 * container has a form of its own (the value's reference): the Python encoder's. */
static PyObject *
rec_leaf(Enc *e, PyObject *x)
{
    PyObject *leaf = enc_opaque(e, x);
    if (leaf != NULL && PyTuple_CheckExact(leaf) && PyTuple_GET_SIZE(leaf) == 4
        && PyLong_CheckExact(PyTuple_GET_ITEM(leaf, 0))
        && PyLong_AsLong(PyTuple_GET_ITEM(leaf, 0)) == R_TAG_ENUM
        && PyTuple_CheckExact(PyTuple_GET_ITEM(leaf, 3))) {
        Py_DECREF(leaf);
        return NULL;
    }
    return leaf;
}

/* `RecordEncoder.form`. */
static PyObject *
rec_form(Enc *e, PyObject *x)
{
    Fingerprinter *fp = e->fp;
    PyTypeObject *tp = Py_TYPE(x);
    if (tp == &PyLong_Type || tp == &PyUnicode_Type || tp == &PyBytes_Type || tp == &PyFloat_Type
        || tp == &PyBool_Type || x == Py_None) {
        return enc_value(e, x, 0); /* itself, or cut; NULL for an int only Python shows */
    }
    if (tp == &PyList_Type || tp == &PyTuple_Type || tp == &PyDict_Type) {
        return rec_ref(e, x);
    }
    if (!fp_is_part(x, fp->deque_type)) {
        return rec_leaf(e, x);
    }
    PyObject *tname = NULL;
    int kind = fp_type_kind(fp, tp, &tname);
    if (fp_leaf_kind(kind)) {
        return rec_leaf(e, x);
    }
    switch (kind) {
    case FP_PLAIN:
    case FP_LIST:
    case FP_TUPLE:
    case FP_DICT:
    case FP_SET:
    case FP_DEQUE:
    case FP_SLOTTED:
    case FP_EXCEPTION:
    case FP_NAMEDTUPLE:
        return rec_ref(e, x);
    default:
        return NULL;
    }
}

/* `RecordEncoder.item_form`: a secret-looking pair is the Python encoder's. */
static PyObject *
rec_item_form(Enc *e, PyObject *x)
{
    PyTypeObject *tx = Py_TYPE(x);
    if ((tx == &PyTuple_Type || tx == &PyList_Type) && Py_SIZE(x) == 2) {
        int secret = key_is_secret(e, PySequence_Fast_ITEMS(x)[0]);
        if (secret != 0) {
            return NULL; /* secret: not mine; -1: not mine either */
        }
    }
    return rec_form(e, x);
}

/* Whether v is a deque or an instance of a subclass of deque. */
static inline int
rec_is_deque(Enc *e, PyObject *v)
{
    return e->fp->deque_type != NULL && PyObject_TypeCheck(v, e->fp->deque_type);
}

/* The length of a list, tuple, set or deque (or of a subclass of one), as the encoder reads
 * it: through the base class's own slots, never a subclass's __len__. */
static Py_ssize_t
rec_length(Enc *e, PyObject *v)
{
    return PyAnySet_Check(v) ? PySet_GET_SIZE(v)
           : rec_is_deque(e, v) ? fp_deque_len(e->fp->deque_type, v)
                                : Py_SIZE(v);
}

/* The first k items of a list, tuple, set (hash table order) or deque (its iterator's order),
 * or of a subclass of one, with references, into items (k slots); how many were taken (fewer
 * only where a deque's item could not be read: an error is then set). */
static Py_ssize_t
rec_take_items(Enc *e, PyObject *v, Py_ssize_t k, PyObject **items)
{
    if (rec_is_deque(e, v)) {
        Py_ssize_t got = 0;
        for (; got < k; got++) {
            items[got] = fp_deque_item(e->fp->deque_type, v, got);
            if (items[got] == NULL) {
                break;
            }
        }
        return got;
    }
    if (PyAnySet_Check(v)) {
        PySetObject *so = (PySetObject *)v;
        Py_ssize_t got = 0;
        for (Py_ssize_t i = 0; i <= so->mask && got < k; i++) {
            setentry *entry = &so->table[i];
            if (entry->key != NULL && entry->hash != -1) {
                items[got++] = Py_NewRef(entry->key);
            }
        }
        return got;
    }
    PyObject **src = PyTuple_Check(v) ? ((PyTupleObject *)v)->ob_item : ((PyListObject *)v)->ob_item;
    for (Py_ssize_t i = 0; i < k; i++) {
        items[i] = Py_NewRef(src[i]);
    }
    return k;
}

/* One item in an own-level hash: what its form depends on. An exact atom or a part by
 * identity (and class), a leaf by its content (fp_opaque: a generator's text may change);
 * 0 where that cannot be said (the record is then not kept). */
static uint64_t
rec_item_hash(Enc *e, PyObject *x)
{
    PyTypeObject *tp = Py_TYPE(x);
    uint64_t h = (uint64_t)(uintptr_t)x * 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)tp;
    if (tp == &PyLong_Type || tp == &PyUnicode_Type || tp == &PyBytes_Type || tp == &PyFloat_Type
        || tp == &PyBool_Type || x == Py_None || fp_is_part(x, e->fp->deque_type)) {
        return h | 1;
    }
    uint64_t f = 0;
    return fp_opaque(e->fp, x, &f) > 0 ? (h ^ (f * 0xC2B2AE3D27D4EB4FULL)) | 1 : 0;
}

static inline uint64_t
rec_mix(uint64_t h, uint64_t x)
{
    return (h ^ x) * 0x100000001B3ULL + 0x9E3779B97F4A7C15ULL;
}

/* The memo entry for v, and whether it holds v's record as it is now (own: v's own-level
 * hash, 0 for "not kept"). */
static FpRecordMemo *
rec_memo_of(Enc *e, PyObject *v, uint64_t own, int *hit)
{
    Fingerprinter *fp = e->fp;
    *hit = 0;
    if (own == 0 || fp->entries == NULL) {
        return NULL;
    }
    if (fp->record_memo == NULL) {
        fp->record_memo = PyMem_Calloc(FP_RECORD_MEMO, sizeof(FpRecordMemo));
        if (fp->record_memo == NULL) {
            return NULL; /* no memo: records made every time */
        }
    }
    FpRecordMemo *m = &fp->record_memo[fp_slot_of(v, FP_RECORD_MEMO)];
    uint64_t changes = ((const uint64_t *)fp->entry_changes.buf)[1];
    *hit = m->record != NULL && m->obj == (void *)v && m->own == own && m->changes == changes;
    return m;
}

/* The record kept for v if its own level (its type, length `n` and the `count` items or
 * pair halves `items` its record is made of) is as it was then: a new reference, or NULL with
 * *own and *m set for rec_memo_keep. */
static PyObject *
rec_kept(Enc *e, PyObject *v, Py_ssize_t n, PyObject **items, Py_ssize_t count, uint64_t *own,
         FpRecordMemo **m)
{
    uint64_t h = rec_mix((uint64_t)(uintptr_t)Py_TYPE(v), (uint64_t)n) | 1;
    for (Py_ssize_t i = 0; i < count && h; i++) {
        uint64_t x = rec_item_hash(e, items[i]);
        h = x ? rec_mix(h, x) | 1 : 0;
    }
    int hit;
    *own = h;
    *m = rec_memo_of(e, v, h, &hit);
    return hit ? Py_NewRef((*m)->record) : NULL;
}

static PyObject *
rec_memo_keep(Enc *e, FpRecordMemo *m, PyObject *v, uint64_t own, PyObject *record)
{
    if (m != NULL && record != NULL) {
        m->obj = (void *)v;
        m->own = own;
        m->changes = ((const uint64_t *)e->fp->entry_changes.buf)[1];
        Py_XSETREF(m->record, Py_NewRef(record));
    }
    return record;
}

/* `RecordEncoder._named`: (name, form), or (name, redacted) under a secret-looking name. */
static PyObject *
rec_named(Enc *e, PyObject *name, PyObject *val)
{
    int secret = key_is_secret(e, name);
    PyObject *vf = secret < 0 ? NULL : secret ? redacted(e, val) : rec_form(e, val);
    if (vf == NULL) {
        return NULL;
    }
    PyObject *pair = PyTuple_Pack(2, name, vf);
    Py_DECREF(vf);
    return pair;
}

/* The forms of a dict's first `limit` pairs: a map's `(key form, value form)` (the value
 * redacted under a secret-looking key) or, for an instance dict (`attrs`), its `(name, form)`
 * with `(None, None)` for a key that is not an exact str. With `owner`, the record kept for
 * it may stand instead (*kept: rec_kept, the dict being its whole own level). A new list, or
 * NULL (*kept set, or an error, or not mine). */
static PyObject *
rec_dict_forms(Enc *e, const FpAttrs *d, Py_ssize_t limit, int attrs, PyObject *owner,
               PyObject **kept, uint64_t *own, FpRecordMemo **m)
{
    Py_ssize_t n = fp_attrs_size(d), got = 0;
    PyObject **pairs = fp_attrs_copy(d, n < limit ? n : limit, &got);
    if (pairs == NULL) {
        return NULL;
    }
    if (owner != NULL && (*kept = rec_kept(e, owner, n, pairs, 2 * got, own, m)) != NULL) {
        release(pairs, 2 * got);
        return NULL;
    }
    PyObject *forms = PyList_New(got);
    for (Py_ssize_t i = 0; forms != NULL && i < got; i++) {
        PyObject *k = pairs[2 * i], *val = pairs[2 * i + 1], *pair;
        if (attrs) {
            pair = PyUnicode_CheckExact(k) ? rec_named(e, k, val) : PyTuple_Pack(2, Py_None, Py_None);
        }
        else {
            int secret = key_is_secret(e, k);
            PyObject *kf = secret < 0 ? NULL : rec_form(e, k);
            PyObject *vf = kf == NULL ? NULL : secret ? redacted(e, val) : rec_form(e, val);
            pair = vf != NULL ? PyTuple_Pack(2, kf, vf) : NULL;
            Py_XDECREF(kf);
            Py_XDECREF(vf);
        }
        if (pair == NULL) {
            Py_CLEAR(forms);
            break;
        }
        PyList_SET_ITEM(forms, i, pair);
    }
    release(pairs, 2 * got);
    return forms;
}

/* `RecordEncoder._obj` for a slotted object or an exception (FP_SLOTTED, FP_EXCEPTION):
 * `(R_OBJ, tname, args form or NO_ARGS, dict_length, [(name, form)], [set slots])`, the set
 * slots to max_attrs + 1 (whether the object is cut is decided where it is shown). */
static PyObject *
rec_slotted(Enc *e, PyObject *v, PyObject *tname, const FpTypeEntry *te)
{
    Fingerprinter *fp = e->fp;
    int exc = te->kind == FP_EXCEPTION;
    int has_dict = exc || te->has_dict;
    Py_ssize_t nslots = te->nslots;
    /* The layout is copied: making forms may run Python code that reclassifies the class. */
    FpSlot *slots = nslots ? PyMem_Malloc((size_t)nslots * sizeof *slots) : NULL;
    if (nslots && slots == NULL) {
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < nslots; i++) {
        slots[i].name = Py_NewRef(te->slots[i].name);
        slots[i].offset = te->slots[i].offset;
        slots[i].type = te->slots[i].type;
    }
    PyObject *args = NULL, *dict_forms = NULL, *slot_forms = NULL, *record = NULL;
    Py_ssize_t dict_length = -1;
    if (exc) {
        PyObject *a = ((PyBaseExceptionObject *)v)->args;
        a = Py_NewRef(a != NULL ? a : Py_None);
        args = rec_form(e, a);
        Py_DECREF(a);
    }
    else {
        args = Py_BuildValue("(is)", R_TAG_OBJ, "no args");
    }
    dict_forms = args != NULL ? PyList_New(0) : NULL;
    if (dict_forms != NULL && has_dict) {
        FpAttrs d;
        if (!fp_attrs_open(v, &d)) {
            Py_CLEAR(dict_forms); /* not mine */
        }
        else {
            dict_length = fp_attrs_size(&d);
            Py_SETREF(dict_forms, rec_dict_forms(e, &d, fp->max_attrs, 1, NULL, NULL, NULL, NULL));
            fp_attrs_close(&d);
        }
    }
    slot_forms = dict_forms != NULL ? PyList_New(0) : NULL;
    for (Py_ssize_t i = 0; slot_forms != NULL && i < nslots; i++) {
        if (PyList_GET_SIZE(slot_forms) > fp->max_attrs) {
            break;
        }
        PyObject *val = fp_slot_get(v, &slots[i]);
        if (val == NULL) {
            if (PyErr_Occurred()) {
                Py_CLEAR(slot_forms);
            }
            continue; /* unset: not shown */
        }
        PyObject *pair = rec_named(e, slots[i].name, val);
        Py_DECREF(val);
        if (pair == NULL || PyList_Append(slot_forms, pair) < 0) {
            Py_CLEAR(slot_forms);
        }
        Py_XDECREF(pair);
    }
    if (slot_forms != NULL) {
        record = Py_BuildValue("(iOOnOO)", R_TAG_OBJ, tname, args, dict_length, dict_forms,
                               slot_forms);
    }
    Py_XDECREF(args);
    Py_XDECREF(dict_forms);
    Py_XDECREF(slot_forms);
    for (Py_ssize_t i = 0; i < nslots; i++) {
        Py_DECREF(slots[i].name);
    }
    PyMem_Free(slots);
    return record;
}

/* The own-level hash of a slotted object without an instance dict, as rec_kept makes one over
 * a container's items: each slot's value by identity (and class), an unset slot by a mark of
 * its own. 0 where that cannot be said (the record is then made, not kept). */
static uint64_t
rec_slots_own(Enc *e, PyObject *v, const FpTypeEntry *te)
{
    uint64_t h = rec_mix((uint64_t)(uintptr_t)Py_TYPE(v), (uint64_t)te->nslots) | 1;
    for (Py_ssize_t i = 0; i < te->nslots && h; i++) {
        PyObject *val = fp_slot_get(v, &te->slots[i]);
        if (val == NULL) {
            if (PyErr_Occurred()) {
                PyErr_Clear();
                return 0;
            }
            h = rec_mix(h, 0x7A5E7ULL) | 1; /* unset: not shown */
            continue;
        }
        uint64_t x = rec_item_hash(e, val);
        Py_DECREF(val);
        h = x ? rec_mix(h, x) | 1 : 0;
    }
    return h;
}

/* `RecordEncoder._namedtuple`: `(R_NAMEDTUPLE, tname, n, field_count, [(field, form)])`. */
static PyObject *
rec_namedtuple(Enc *e, PyObject *v, PyObject *tname, const FpTypeEntry *te)
{
    if (te->fields == NULL) {
        return NULL;
    }
    PyObject *fields = Py_NewRef(te->fields);
    Py_ssize_t n = PyTuple_GET_SIZE(v), nf = PyTuple_GET_SIZE(fields);
    Py_ssize_t k = n < nf ? n : nf;
    k = k < e->fp->max_attrs ? k : e->fp->max_attrs;
    PyObject *forms = PyList_New(k);
    for (Py_ssize_t i = 0; forms != NULL && i < k; i++) {
        PyObject *pair = rec_named(e, PyTuple_GET_ITEM(fields, i), PyTuple_GET_ITEM(v, i));
        if (pair == NULL) {
            Py_CLEAR(forms);
            break;
        }
        PyList_SET_ITEM(forms, i, pair);
    }
    Py_DECREF(fields);
    return forms != NULL ? Py_BuildValue("(iOnnN)", R_TAG_NT, tname, n, nf, forms) : NULL;
}

/* A record `(R_SEQ, tname, n, [item forms])`, `(R_MAP, tname, n, [(key, value) forms])` or
 * `(R_OBJ, tname, NO_ARGS, dict_length, [(name, form)], [])` of v, a list, tuple, set, dict
 * (or a subclass of one) or a plain object; NULL without an exception for anything else. */
static PyObject *
rec_record(Enc *e, PyObject *v)
{
    Fingerprinter *fp = e->fp;
    PyTypeObject *tp = Py_TYPE(v);
    PyObject *tname = NULL;
    int kind;
    if (tp == &PyList_Type) {
        kind = FP_LIST, tname = fp->names.list;
    }
    else if (tp == &PyTuple_Type) {
        kind = FP_TUPLE, tname = fp->names.tuple;
    }
    else if (tp == &PyDict_Type) {
        kind = FP_DICT, tname = fp->names.dict;
    }
    else {
        kind = fp_type_kind(fp, tp, &tname);
    }
    if (kind == FP_LIST || kind == FP_TUPLE || kind == FP_SET || kind == FP_DEQUE) {
        Py_ssize_t n = rec_length(e, v);
        Py_ssize_t k = n < fp->max_items ? n : fp->max_items;
        PyObject **items = PyMem_Malloc((size_t)(k ? k : 1) * sizeof(PyObject *));
        if (items == NULL) {
            return PyErr_NoMemory();
        }
        Py_ssize_t got = rec_take_items(e, v, k, items);
        if (got < k) {
            release(items, got);
            return NULL; /* a deque's item unread: the error stands */
        }
        uint64_t own;
        FpRecordMemo *m;
        PyObject *kept = rec_kept(e, v, n, items, got, &own, &m);
        if (kept != NULL) {
            release(items, got);
            return kept;
        }
        PyObject *forms = PyList_New(got);
        for (Py_ssize_t i = 0; forms != NULL && i < got; i++) {
            PyObject *f = rec_item_form(e, items[i]);
            if (f == NULL) {
                Py_CLEAR(forms);
                break;
            }
            PyList_SET_ITEM(forms, i, f);
        }
        release(items, got);
        return rec_memo_keep(
            e, m, v, own, forms != NULL ? Py_BuildValue("(iOnN)", R_TAG_SEQ, tname, n, forms) : NULL);
    }
    if (kind == FP_DICT) {
        uint64_t own = 0;
        FpRecordMemo *m = NULL;
        PyObject *kept = NULL;
        FpAttrs items = {.dict = v}; /* borrowed: not closed */
        PyObject *forms = rec_dict_forms(e, &items, fp->max_items, 0, v, &kept, &own, &m);
        if (forms == NULL) {
            return kept;
        }
        Py_ssize_t n = PyDict_GET_SIZE(v);
        return rec_memo_keep(e, m, v, own, Py_BuildValue("(iOnN)", R_TAG_MAP, tname, n, forms));
    }
    if (kind == FP_SLOTTED || kind == FP_EXCEPTION || kind == FP_NAMEDTUPLE) {
        const FpTypeEntry *te = fp_type_entry(fp, tp);
        if (te == NULL || te->kind != kind) {
            return NULL;
        }
        /* Kept while its own level is unchanged, as a container's record is (FpRecordMemo): a
         * namedtuple by its items, a slotted object without an instance dict by its slots. */
        uint64_t own = 0;
        if (kind == FP_NAMEDTUPLE) {
            Py_ssize_t n = PyTuple_GET_SIZE(v);
            own = rec_mix((uint64_t)(uintptr_t)tp, (uint64_t)n) | 1;
            for (Py_ssize_t i = 0; i < n && own; i++) {
                uint64_t x = rec_item_hash(e, PyTuple_GET_ITEM(v, i));
                own = x ? rec_mix(own, x) | 1 : 0;
            }
        }
        else if (kind == FP_SLOTTED && !te->has_dict) {
            own = rec_slots_own(e, v, te);
        }
        int hit;
        FpRecordMemo *m = rec_memo_of(e, v, own, &hit);
        if (hit) {
            return Py_NewRef(m->record);
        }
        return rec_memo_keep(e, m, v, own,
                             kind == FP_NAMEDTUPLE ? rec_namedtuple(e, v, tname, te)
                                                   : rec_slotted(e, v, tname, te));
    }
    if (kind != FP_PLAIN) {
        return NULL;
    }
    FpAttrs d;
    if (!fp_attrs_open(v, &d)) {
        return NULL;
    }
    uint64_t own = 0;
    FpRecordMemo *m = NULL;
    PyObject *kept = NULL;
    Py_ssize_t n = fp_attrs_size(&d);
    PyObject *forms = rec_dict_forms(e, &d, fp->max_attrs, 1, v, &kept, &own, &m);
    fp_attrs_close(&d);
    if (forms == NULL) {
        return kept;
    }
    return rec_memo_keep(
        e, m, v, own, Py_BuildValue("(iO(is)nN[])", R_TAG_OBJ, tname, R_TAG_OBJ, "no args", n, forms));
}

/* The value of attribute `name` as the encoder shows it for an object of a kind fp_records
 * knows: a namedtuple's field, an exception's `args`, an instance dict's entry, a set slot. A
 * new reference, or NULL (with an exception: an error; without: not found, not mine). */
static PyObject *
rec_attr(Enc *e, PyObject *v, PyObject *name)
{
    Fingerprinter *fp = e->fp;
    const FpTypeEntry *te = fp_type_entry(fp, Py_TYPE(v));
    int kind = te != NULL ? te->kind : FP_PLAIN;
    if (kind == FP_NAMEDTUPLE) {
        PyObject *fields = te->fields;
        for (Py_ssize_t i = 0; fields != NULL && i < PyTuple_GET_SIZE(fields)
                               && i < PyTuple_GET_SIZE(v); i++) {
            if (PyTuple_GET_ITEM(fields, i) == name
                || PyUnicode_Compare(PyTuple_GET_ITEM(fields, i), name) == 0) {
                return Py_NewRef(PyTuple_GET_ITEM(v, i));
            }
        }
        return NULL;
    }
    if (kind == FP_EXCEPTION && PyUnicode_Compare(name, fp->names.args) == 0) {
        PyObject *a = ((PyBaseExceptionObject *)v)->args;
        return Py_NewRef(a != NULL ? a : Py_None);
    }
    if (kind != FP_SLOTTED || te->has_dict) {
        FpAttrs d;
        if (!fp_attrs_open(v, &d)) {
            return NULL;
        }
        PyObject *val = fp_attrs_get(&d, name);
        Py_XINCREF(val);
        fp_attrs_close(&d);
        if (val != NULL || PyErr_Occurred()) {
            return val;
        }
    }
    for (Py_ssize_t i = 0; (kind == FP_SLOTTED || kind == FP_EXCEPTION) && i < te->nslots; i++) {
        if (te->slots[i].name == name || PyUnicode_Compare(te->slots[i].name, name) == 0) {
            FpSlot slot = te->slots[i];
            return fp_slot_get(v, &slot);
        }
    }
    return NULL;
}

/* Whether a tree node is a container's or object's, and its serial (borrowed). */
static PyObject *
rec_node_serial(Enc *e, PyObject *tree)
{
    if (!PyTuple_CheckExact(tree) || PyTuple_GET_SIZE(tree) != 5
        || !PyLong_CheckExact(PyTuple_GET_ITEM(tree, 0))) {
        return NULL;
    }
    long tag = PyLong_AsLong(PyTuple_GET_ITEM(tree, 0));
    Fingerprinter *fp = e->fp;
    return tag == fp->tags.seq || tag == fp->tags.map || tag == fp->tags.obj
               ? PyTuple_GET_ITEM(tree, 1)
               : NULL;
}

/* A node's (serial, record) noted as met by this walk. 0, or -1 (no memory). */
static int
rec_visit(Enc *e, PyObject *serial, PyObject *record)
{
    if (e->nvisits + 2 > e->visits_cap) {
        Py_ssize_t cap = e->visits_cap ? 2 * e->visits_cap : 64;
        PyObject **grown = PyMem_Realloc(e->visits, (size_t)cap * sizeof(PyObject *));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        e->visits = grown;
        e->visits_cap = cap;
    }
    e->visits[e->nvisits++] = Py_NewRef(serial);
    e->visits[e->nvisits++] = Py_NewRef(record);
    return 0;
}

/* Whether the list's table still holds every record filed for `tree` (FpFiledMemo): then they
 * are noted as met, for the subtrees that hold this one, and the walk need not go in. 1 yes,
 * 0 no, -1 error. */
static int
rec_filed_kept(Enc *e, PyObject *tree)
{
    Fingerprinter *fp = e->fp;
    if (e->written == NULL || fp->filed_memo == NULL) {
        return 0;
    }
    FpFiledMemo *m = &fp->filed_memo[fp_slot_of(tree, FP_FILED_MEMO)];
    if (m->node != tree) {
        return 0;
    }
    PyObject *filed = m->filed;
    Py_ssize_t n = PyTuple_GET_SIZE(filed);
    for (Py_ssize_t i = 0; i < n; i += 2) {
        PyObject *now = PyDict_GetItemWithError(e->written, PyTuple_GET_ITEM(filed, i));
        if (now != PyTuple_GET_ITEM(filed, i + 1)) {
            return now == NULL && PyErr_Occurred() ? -1 : 0;
        }
    }
    for (Py_ssize_t i = 0; i < n; i += 2) {
        if (rec_visit(e, PyTuple_GET_ITEM(filed, i), PyTuple_GET_ITEM(filed, i + 1)) < 0) {
            return -1;
        }
    }
    fp->filed_hits++;
    return 1;
}

/* Remember the records this walk met under `tree` (those noted since `first`), which the list's
 * table holds once fp_records' caller has filed them. 0, or -1 (error). */
static int
rec_filed_keep(Enc *e, PyObject *tree, Py_ssize_t first)
{
    Fingerprinter *fp = e->fp;
    Py_ssize_t n = e->nvisits - first;
    if (e->written == NULL || n < 4 || n > 2 * FP_FILED_MAX) {
        return 0; /* one record is checked as cheaply as it is made; a big subtree not kept */
    }
    if (fp->filed_memo == NULL) {
        fp->filed_memo = PyMem_Calloc(FP_FILED_MEMO, sizeof(FpFiledMemo));
        if (fp->filed_memo == NULL) {
            return 0; /* no memo: every subtree walked */
        }
    }
    PyObject *filed = PyTuple_New(n);
    if (filed == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyTuple_SET_ITEM(filed, i, Py_NewRef(e->visits[first + i]));
    }
    PyObject_GC_UnTrack(filed); /* serials and records: no cycle can go through it */
    FpFiledMemo *m = &fp->filed_memo[fp_slot_of(tree, FP_FILED_MEMO)];
    Py_XSETREF(m->node, Py_NewRef(tree));
    Py_XSETREF(m->filed, filed);
    return 0;
}

static int rec_walk_node(Enc *e, PyObject *v, PyObject *tree, PyObject *serial, PyObject *made,
                         int depth);

/* The records of what `tree` shows of `v`, into `made` (serial -> record), but for subtrees the
 * list's table already holds (rec_filed_kept). 1, 0 (not mine), -1 (error). */
static int
rec_walk(Enc *e, PyObject *v, PyObject *tree, PyObject *made, int depth)
{
    PyObject *serial = rec_node_serial(e, tree);
    if (serial == NULL) {
        return 1; /* an atom, a leaf, a back reference: no record */
    }
    if (depth > FP_MAX_PATH) {
        return 0;
    }
    int kept = rec_filed_kept(e, tree);
    if (kept != 0) {
        return kept;
    }
    Py_ssize_t first = e->nvisits;
    int rc = rec_walk_node(e, v, tree, serial, made, depth);
    return rc == 1 && rec_filed_keep(e, tree, first) < 0 ? -1 : rc;
}

/* rec_walk for a node the memo does not stand for: its record, then its parts'. */
static int
rec_walk_node(Enc *e, PyObject *v, PyObject *tree, PyObject *serial, PyObject *made, int depth)
{
    PyObject *key = serial_of(e, v);
    if (key == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    int same = PyObject_RichCompareBool(key, serial, Py_EQ);
    Py_DECREF(key);
    if (same <= 0) {
        return same; /* changed since the tree was made: the Python encoder's */
    }
    PyObject *record = PyDict_GetItemWithError(made, serial);
    if (record == NULL) {
        if (PyErr_Occurred()) {
            return -1;
        }
        record = rec_record(e, v);
        if (record == NULL) {
            return PyErr_Occurred() ? -1 : 0;
        }
        int rc = PyDict_SetItem(made, serial, record);
        Py_DECREF(record);
        if (rc < 0) {
            return -1;
        }
    }
    if (rec_visit(e, serial, record) < 0) {
        return -1;
    }
    long tag = PyLong_AsLong(PyTuple_GET_ITEM(tree, 0));
    Fingerprinter *fp = e->fp;
    if (tag == fp->tags.obj) {
        PyObject *attrs = PyTuple_GET_ITEM(tree, 3);
        if (!PyDict_Check(attrs) || PyDict_GET_SIZE(attrs) == 0) {
            return 1;
        }
        /* The record is of a kind fp_records knows (rec_record made it): read each attribute
         * the tree shows where that kind keeps it. */
        Py_ssize_t pos = 0;
        PyObject *name, *vt;
        int rc = 1;
        while (rc == 1 && PyDict_Next(attrs, &pos, &name, &vt)) {
            if (rec_node_serial(e, vt) == NULL) {
                continue;
            }
            PyObject *val = rec_attr(e, v, name);
            if (val == NULL) {
                rc = PyErr_Occurred() ? -1 : 0;
                break;
            }
            rc = rec_walk(e, val, vt, made, depth + 1);
            Py_DECREF(val);
        }
        return rc;
    }
    PyObject *shown = PyTuple_GET_ITEM(tree, 4);
    if (!PyList_Check(shown) || PyList_GET_SIZE(shown) == 0) {
        return 1; /* cut: the record alone */
    }
    Py_ssize_t k = PyList_GET_SIZE(shown), got;
    int is_map = tag == fp->tags.map;
    PyObject **live = NULL;
    if (is_map) {
        if (!PyDict_Check(v)) {
            return 0;
        }
        live = copy_pairs(v, k, &got);
        got *= 2;
    }
    else {
        if (!(PyList_Check(v) || PyTuple_Check(v) || PyAnySet_Check(v) || rec_is_deque(e, v))) {
            return 0;
        }
        if (rec_length(e, v) < k) {
            return 0;
        }
        live = PyMem_Malloc((size_t)k * sizeof(PyObject *));
        got = live != NULL ? rec_take_items(e, v, k, live) : 0;
        if (got < k && PyErr_Occurred()) {
            release(live, got);
            return -1;
        }
    }
    if (live == NULL) {
        return -1;
    }
    int rc = got == (is_map ? 2 * k : k);
    for (Py_ssize_t i = 0; rc == 1 && i < k; i++) {
        PyObject *node = PyList_GET_ITEM(shown, i);
        if (is_map) {
            if (!PyTuple_CheckExact(node) || PyTuple_GET_SIZE(node) != 2) {
                rc = 0;
                break;
            }
            rc = rec_walk(e, live[2 * i], PyTuple_GET_ITEM(node, 0), made, depth + 1);
            if (rc == 1) {
                rc = rec_walk(e, live[2 * i + 1], PyTuple_GET_ITEM(node, 1), made, depth + 1);
            }
        }
        else {
            rc = rec_walk(e, live[i], node, made, depth + 1);
        }
    }
    release(live, got);
    return rc;
}

int
fp_records(Fingerprinter *fp, PyObject *v, PyObject *tree, PyObject **entry, PyObject *made,
           PyObject *written)
{
    *entry = NULL;
    if (!fp->can_encode) {
        return 0;
    }
    Enc e;
    e.fp = fp;
    e.budget = fp->max_nodes;
    e.npath = 0;
    e.cursor = -1;
    e.parts_gen = fp->parts_gen;
    e.epoch = fp_epoch(fp);
    PyObject *serial = rec_node_serial(&e, tree);
    if (serial == NULL) {
        *entry = Py_NewRef(tree); /* an atom or a leaf is its own entry */
        return 1;
    }
    e.written = written;
    e.visits = NULL;
    e.nvisits = e.visits_cap = 0;
    int rc = rec_walk(&e, v, tree, made, 0);
    release(e.visits, e.nvisits);
    if (rc < 0) {
        callback_failed(); /* the Python encoder decides */
        return PyErr_Occurred() ? -1 : 0;
    }
    if (rc == 1) {
        *entry = Py_BuildValue("(iO)", R_TAG_OREF, serial);
        return *entry != NULL ? 1 : -1;
    }
    return 0;
}
