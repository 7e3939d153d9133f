/* Content fingerprints and the value cache: the C core's cheap answer to "has this value changed
 * since it was encoded?".
 *
 * Why: a list appended to or an attribute set changes a variable without rebinding it, so after
 * every line that may have touched a non-atom local the recorder must look at its content again;
 * and every call binds its arguments (`self` first) to objects that were mostly encoded before.
 * Encoding them again with the Python encoder (replay/recorder/snapshot.py) was nearly all of the
 * cost of recording object-heavy code. A fingerprint is a 64-bit hash of exactly what the encoder
 * would read of a value, computed by a C walk that allocates nothing. Equal fingerprints mean the
 * encoding would be the same, so:
 * - a name still bound to the same object is not re-encoded while its fingerprint is unchanged;
 * - the last encoding of each object is remembered (a bounded cache keyed by the object, checked
 *   by a weak reference where the object takes one), and reused while its fingerprint holds.
 * A fingerprint only saves work: when it differs, or cannot be taken, the value is encoded as
 * before. Only a 64-bit collision could hide a change.
 *
 * The walk mirrors the encoder rule for rule (depth, items, attributes, the per-value node
 * budget, recursion back references, redacted names and (name, value) pairs), so that it reads
 * exactly what the encoder reads, for the values it knows: exact atoms by value (int, float,
 * str, bytes, bool, None); list, tuple and dict by identity (their address, which is what their
 * recorded `id` is keyed by, or the identity map's serial for a subclass that takes weak
 * references), class, length and items, subclasses included (the encoder shows them as the
 * container: `_seq`, `_map`), and sets and frozensets alike; instances of plain Python classes
 * (whose content is their instance `__dict__` alone, as the encoder decides) by identity, class
 * and attributes; classes, functions, methods, builtins, modules, generators and enum members
 * (with an atom value) by identity and what their venc shows (opaque_content). Anything else
 * (slots, exceptions, namedtuples, OrderedDict, deques, stdlib values, big ints) makes the walk
 * give up, and the value is encoded.
 *
 * Identity: a venc names objects by the identity map's serials, so a fingerprint also mixes in
 * the serial of each object (object_serial) and the map's entry of each list, dict and tuple
 * (container_serial): a new object at a dead one's address with the same content differs.
 * Parts of a value have fingerprints of their own (fp_subtree), which the C encoder (_encode.c)
 * uses to share the venc of an unchanged part between versions of the value.
 * docs/internals.md, "Change detection and encoding", says what a fingerprint cannot see.
 *
 * Safety: the walk reads through borrowed references and never runs Python code, so nothing can
 * change or free what it is reading. Reading an instance dict may create it (the encoder does the
 * same); since 3.12 an allocation only schedules a garbage collection, it never runs one. A class
 * or a name met for the first time is classified by the encoder (Python) after the walk, which is
 * then retried.
 */

#include "_fingerprint.h"
#include "datetime.h"

#include <string.h>

/* Walks of one value, each classifying the first class or name it stops at. A value full of
 * new classes and names (class-building code, a test that makes classes) needs one retry per new
 * one; a retry costs a partial walk, far less than the Python encoder the value goes to when
 * the walks run out (8 was too few: attrs' tests gave up on values holding ten new things). */
#define FP_MAX_RETRIES 32

static inline uint64_t
mix(uint64_t h, uint64_t x)
{
    /* One multiply-xorshift round per word (as in splitmix64): cheap and well spread. */
    h = (h ^ x) * 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 31);
}

enum { T_INT = 1, T_FLOAT, T_STR, T_BYTES, T_TRUE, T_FALSE, T_NONE, T_LIST, T_TUPLE, T_DICT,
       T_OBJ, T_REF, T_CUT, T_SECRET, T_SECRET_PAIR, T_SET, T_OPAQUE, T_DEQUE, T_BIGINT,
       T_EXC_ARGS };

/* One walk: the encoder's per-value state (`[budget, path]` in snapshot.py) and the hash. */
typedef struct {
    Fingerprinter *fp;
    uint64_t h;   /* content: what the encoder reads, objects by address */
    uint64_t ids; /* the identity map's serials of the objects met (see object_serial) */
    Py_ssize_t budget;
    int npath;
    int min_ref; /* the lowest path index a back reference pointed at (FP_MAX_PATH: none) */
    /* The least the budget exceeded what any decision of the walk needed (negative: the budget
     * cut something). While it is not negative, the walk, and the encoding, would be the same
     * with any budget down to the budget given minus this margin (fp_subtree). */
    Py_ssize_t min_margin;
    int log;      /* record each part in fp->parts (fp_of's walk, for the encoder) */
    int memo;     /* copy a part met again from fp->parts and fp->part_memo (fp_of's walk) */
    int deepest;  /* the depth of the deepest part met so far (part_memo_add: its reach) */
    int secret_pairs; /* secret (name, value) pairs met so far, which the depth limit cuts */
    void *path[FP_MAX_PATH];
} Walk;

/* An exact str's hash: the one it caches, read without a call when it is there (the walk hashes
 * every attribute name and string it meets). */
static inline Py_hash_t
str_hash(PyObject *s)
{
    Py_hash_t h = ((PyASCIIObject *)s)->hash;
    return h != -1 ? h : PyObject_Hash(s);
}

/* 1 walk on, 0 give up, -1 error. */
static int walk_value(Walk *w, PyObject *v, int depth);
static int walk_part(Walk *w, PyObject *v, int depth, FpPart *out);
static uint64_t container_serial(Fingerprinter *fp, PyObject *v);
static uint64_t object_serial(Fingerprinter *fp, PyObject *v);

/* The type cache's entry for `tp` at its current version tag, or NULL. */
static inline FpTypeEntry *
type_entry(Fingerprinter *fp, PyTypeObject *tp, unsigned int version)
{
    size_t home = fp_slot_of(tp, FP_TYPE_CACHE);
    for (size_t i = 0; i < FP_TYPE_PROBES; i++) {
        FpTypeEntry *e = &fp->types[(home + i) & (FP_TYPE_CACHE - 1)];
        if (e->type == tp) {
            return e->version == version ? e : NULL;
        }
        if (e->type == NULL) {
            return NULL;
        }
    }
    return NULL;
}

/* Empty an entry (its name and slot layout), so that it can be filled for another class. */
static void
type_entry_reset(FpTypeEntry *e)
{
    Py_CLEAR(e->name);
    Py_CLEAR(e->fields);
    for (Py_ssize_t i = 0; i < e->nslots; i++) {
        Py_DECREF(e->slots[i].name);
    }
    PyMem_Free(e->slots);
    e->slots = NULL;
    e->nslots = 0;
    e->has_dict = 0;
}

const FpTypeEntry *
fp_type_entry(Fingerprinter *fp, PyTypeObject *tp)
{
    return tp->tp_version_tag ? type_entry(fp, tp, tp->tp_version_tag) : NULL;
}

/* Where to file an answer for `tp`: its own entry (an older version), else a free one in its
 * probe window, else one of the window's entries, chosen in turn (the cache is full there:
 * some hundreds of classes). */
static FpTypeEntry *
type_entry_to_fill(Fingerprinter *fp, PyTypeObject *tp)
{
    static size_t victim = 0;
    size_t home = fp_slot_of(tp, FP_TYPE_CACHE);
    for (size_t i = 0; i < FP_TYPE_PROBES; i++) {
        FpTypeEntry *e = &fp->types[(home + i) & (FP_TYPE_CACHE - 1)];
        if (e->type == tp || e->type == NULL) {
            return e;
        }
    }
    victim = (victim + 1) % FP_TYPE_PROBES;
    return &fp->types[(home + victim) & (FP_TYPE_CACHE - 1)];
}

/* How instances of `tp` are walked: an FP_* kind (FP_NOT_WALKED: 0), or -1 not classified yet
 * (fp->miss_type is set). */
static int
type_kind(Fingerprinter *fp, PyTypeObject *tp)
{
    unsigned int version = tp->tp_version_tag;
    if (version == 0) {
        /* No tag yet (assigning one runs no Python code), or the class ran out of them: then
         * its answer cannot be cached, and it is not walked. */
        if (!PyUnstable_Type_AssignVersionTag(tp)) {
            return 0;
        }
        version = tp->tp_version_tag;
    }
    FpTypeEntry *e = type_entry(fp, tp, version);
    if (e != NULL) {
        return e->kind;
    }
    if (fp->miss_type == NULL) {
        fp->miss_type = (PyTypeObject *)Py_NewRef((PyObject *)tp);
    }
    return -1;
}

/* The redactor's answer for the exact str `name`, found by value in its cache: 1/0, -1 not
 * asked yet (fp->miss_name is set, if it was free). `remember`: keep the answer in the cache by
 * name object too (a name met again is the same object: an attribute name); not for a name
 * made for the lookup (a decoded bytes name), which would push a lasting one out. */
static int
name_secret_by_value(Fingerprinter *fp, PyObject *name, int remember)
{
    PyObject *hit = PyDict_GetItemWithError(fp->secret_cache, name); /* exact str: no user code */
    if (hit != NULL) {
        if (remember) {
            /* The newest answer goes first, the older one second; the one pushed out may free
             * its name: a str's deallocation runs no Python code. */
            FpNameEntry *e = &fp->secret_names[fp_slot_of(name, FP_NAME_CACHE) & ~(size_t)1];
            Py_XDECREF(e[1].name);
            e[1] = e[0];
            e[0].name = Py_NewRef(name);
            e[0].secret = hit == Py_True;
        }
        return hit == Py_True;
    }
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (fp->miss_name == NULL) {
        fp->miss_name = Py_NewRef(name);
    }
    return -1;
}

int
fp_name_secret_slow(Fingerprinter *fp, PyObject *name)
{
    return name_secret_by_value(fp, name, 1);
}


/* Whether `p` is on the recursion path (a back reference), noting how far up it points. */
static int
on_path(Walk *w, void *p)
{
    for (int i = 0; i < w->npath; i++) {
        if (w->path[i] == p) {
            if (i < w->min_ref) {
                w->min_ref = i;
            }
            return 1;
        }
    }
    return 0;
}

/* A container about to be expanded: `_room` and the checks before it in _list/_dict. 1 expand
 * k items, 0 header only (already hashed), -1 give up. */
static int
container_room(Walk *w, PyObject *v, Py_ssize_t n, int depth, Py_ssize_t *k)
{
    Fingerprinter *fp = w->fp;
    Py_ssize_t room = n < fp->max_items ? n : fp->max_items;
    if (n && w->budget - room < w->min_margin) {
        w->min_margin = w->budget - room;
    }
    if (room > w->budget && n) {
        room = w->budget; /* an empty container takes nothing from an overdrawn budget */
    }
    if (depth >= fp->max_depth) {
        /* Cut by depth (its items shown as None), which an empty one's header alone would not
         * tell from `[]`: parts are shared across depths by their hashes (walk_part). */
        w->h = mix(w->h, T_CUT);
        return 0;
    }
    if (n && room <= 0) {
        return 0;
    }
    if (w->npath >= FP_MAX_PATH) {
        return -1;
    }
    w->budget -= room;
    *k = room;
    return 1;
}

/* Hash a value the encoder stores as a header only (cut by depth or budget) or as a back
 * reference: its identity, class and size are all it shows. */
static inline void
hash_header(Walk *w, int tag, PyObject *v, uint64_t size)
{
    w->h = mix(mix(mix(mix(w->h, tag), (uintptr_t)v), (uintptr_t)Py_TYPE(v)), size);
}

/* For a tuple, what the identity map checks besides its address (identity._check): its size
 * and its first and last items' identities, which it keeps for life. Two tuples at one address
 * that differ there get different serials, even where the encoder shows no item (a cut tuple). */
static inline void
hash_tuple_check(Walk *w, PyObject *v)
{
    Py_ssize_t n = PyTuple_GET_SIZE(v);
    if (n > 0) {
        w->h = mix(mix(w->h, (uintptr_t)PyTuple_GET_ITEM(v, 0)),
                   (uintptr_t)PyTuple_GET_ITEM(v, n - 1));
    }
}

/* The encoder's `_is_secret_key`: 1/0, -1 not cached yet (fp->miss_name is set), -2 give up. A
 * bytes name is decoded as latin-1 first, as the encoder does (ASGI headers are (bytes, bytes)
 * pairs): the decoded name is a new str each time, looked up in the redactor's cache by value
 * and not kept in the cache by name object. */
static int
key_secret(Fingerprinter *fp, PyObject *k)
{
    if (PyUnicode_CheckExact(k)) {
        return fp_name_secret(fp, k);
    }
    if (!PyBytes_CheckExact(k)) {
        return 0;
    }
    PyObject *name = PyUnicode_DecodeLatin1(PyBytes_AS_STRING(k), PyBytes_GET_SIZE(k), NULL);
    if (name == NULL) {
        PyErr_Clear();
        return -2;
    }
    int secret = name_secret_by_value(fp, name, 0);
    Py_DECREF(name);
    return secret;
}

/* A non-atom item of a list or tuple (_item): a 2-item list or tuple whose first item is a
 * secret-looking name is a (name, value) pair whose value is hidden (_secret_pair). */
static int
walk_item(Walk *w, PyObject *x, int depth)
{
    PyTypeObject *tx = Py_TYPE(x);
    if ((tx == &PyTuple_Type || tx == &PyList_Type) && Py_SIZE(x) == 2) {
        PyObject *first = tx == &PyTuple_Type ? PyTuple_GET_ITEM(x, 0) : PyList_GET_ITEM(x, 0);
        PyObject *second = tx == &PyTuple_Type ? PyTuple_GET_ITEM(x, 1) : PyList_GET_ITEM(x, 1);
        int secret = key_secret(w->fp, first);
        if (secret < 0) {
            return 0;
        }
        if (secret) {
            w->secret_pairs++;
            hash_header(w, T_SECRET_PAIR, x, 2);
            if (tx == &PyTuple_Type) {
                hash_tuple_check(w, x);
            }
            w->ids = mix(w->ids, container_serial(w->fp, x));
            if (depth >= w->fp->max_depth) {
                w->h = mix(w->h, T_CUT); /* as container_room: the cut is read */
                return 1;
            }
            w->budget -= 2;
            w->h = mix(w->h, (uintptr_t)Py_TYPE(second));
            return walk_value(w, first, depth + 1);
        }
    }
    return walk_value(w, x, depth);
}

/* The identity map's serial of a list, tuple or dict, or of a subclass of one: by address
 * (container_serial) unless its class takes weak references (object_serial), as the map keys
 * them. */
static inline uint64_t
identity_serial(Fingerprinter *fp, PyObject *v)
{
    return Py_TYPE(v)->tp_weaklistoffset ? object_serial(fp, v) : container_serial(fp, v);
}

/* _list and _tuple, and _seq for their subclasses (and the tuple's item identities, which the
 * identity map's tuple fingerprint reads). */
static int
walk_sequence(Walk *w, PyObject *v, int depth)
{
    int is_tuple = PyTuple_Check(v);
    if (on_path(w, v)) {
        hash_header(w, T_REF, v, 0);
        return 1;
    }
    Py_ssize_t n = Py_SIZE(v), k = 0;
    hash_header(w, is_tuple ? T_TUPLE : T_LIST, v, (uint64_t)n);
    if (is_tuple) {
        hash_tuple_check(w, v);
    }
    w->ids = mix(w->ids, identity_serial(w->fp, v));
    int expand = container_room(w, v, n, depth, &k);
    if (expand <= 0) {
        return expand == 0 ? 1 : 0;
    }
    PyObject **items = is_tuple ? ((PyTupleObject *)v)->ob_item : ((PyListObject *)v)->ob_item;
    w->path[w->npath++] = v;
    int r = 1;
    for (Py_ssize_t i = 0; i < k && r > 0; i++) {
        PyObject *x = items[i];
        if (is_tuple) {
            w->h = mix(w->h, (uintptr_t)x);
        }
        r = fp_inline_atom(w->fp, x) ? walk_value(w, x, depth + 1) : walk_item(w, x, depth + 1);
    }
    w->npath--;
    return r;
}

/* The start of `_seq` for a set or a deque of `n` items: a back reference, or its header (`tag`)
 * and identity, then the room for its items (container_room). 1: walk its first *k items; 0:
 * nothing more to read; -1: give up. */
static int
items_head(Walk *w, PyObject *v, int tag, Py_ssize_t n, int depth, Py_ssize_t *k)
{
    if (on_path(w, v)) {
        hash_header(w, T_REF, v, 0);
        return 0;
    }
    hash_header(w, tag, v, (uint64_t)n);
    w->ids = mix(w->ids, identity_serial(w->fp, v));
    return container_room(w, v, n, depth, k);
}

/* `_seq` for a set or frozenset (and their subclasses): its items in iteration order, that is
 * the order of its hash table, read in place (set.__iter__ skips the same empty and deleted
 * slots: a deleted one holds a dummy key with hash -1, which no real hash is). */
static int
walk_set(Walk *w, PyObject *v, int depth)
{
    PySetObject *so = (PySetObject *)v;
    Py_ssize_t n = so->used, k = 0;
    int head = items_head(w, v, T_SET, n, depth, &k);
    if (head <= 0) {
        return head == 0;
    }
    w->path[w->npath++] = v;
    int r = 1;
    Py_ssize_t taken = 0;
    for (Py_ssize_t i = 0; i <= so->mask && taken < k && r > 0; i++) {
        setentry *entry = &so->table[i];
        if (entry->key == NULL || entry->hash == -1) {
            continue;
        }
        taken++;
        PyObject *x = entry->key;
        r = fp_inline_atom(w->fp, x) ? walk_value(w, x, depth + 1) : walk_item(w, x, depth + 1);
    }
    w->npath--;
    return r;
}

/* `_seq` for a deque (and its subclasses): its length and first items as deque's own __len__
 * and __iter__ give them (`_take_deque`), read in place (fp_deque_item). */
static int
walk_deque(Walk *w, PyObject *v, int depth)
{
    PyTypeObject *dt = w->fp->deque_type;
    Py_ssize_t n = fp_deque_len(dt, v), k = 0;
    if (n < 0) {
        PyErr_Clear();
        return 0;
    }
    int head = items_head(w, v, T_DEQUE, n, depth, &k);
    if (head <= 0) {
        return head == 0;
    }
    w->path[w->npath++] = v;
    int r = 1;
    for (Py_ssize_t i = 0; i < k && r > 0; i++) {
        PyObject *x = fp_deque_item(dt, v, i);
        if (x == NULL) {
            PyErr_Clear();
            r = 0;
            break;
        }
        r = fp_inline_atom(w->fp, x) ? walk_value(w, x, depth + 1) : walk_item(w, x, depth + 1);
        Py_DECREF(x); /* the deque still holds it: nothing ran meanwhile */
    }
    w->npath--;
    return r;
}

/* _dict (and _map for its subclasses) and _pairs: keys inline if atoms else encoded; a str key
 * that looks secret hides its value (only the value's class shows). */
static int
walk_dict(Walk *w, PyObject *v, int depth)
{
    if (on_path(w, v)) {
        hash_header(w, T_REF, v, 0);
        return 1;
    }
    Py_ssize_t n = PyDict_GET_SIZE(v), k = 0;
    hash_header(w, T_DICT, v, (uint64_t)n);
    w->ids = mix(w->ids, identity_serial(w->fp, v));
    int expand = container_room(w, v, n, depth, &k);
    if (expand <= 0) {
        return expand == 0 ? 1 : 0;
    }
    w->path[w->npath++] = v;
    Py_ssize_t pos = 0, taken = 0;
    PyObject *key, *val;
    int r = 1;
    while (r > 0 && taken < k && PyDict_Next(v, &pos, &key, &val)) {
        taken++;
        r = walk_value(w, key, depth + 1);
        if (r <= 0) {
            break;
        }
        int secret = key_secret(w->fp, key);
        if (secret < 0) {
            r = 0;
        }
        else if (secret) {
            w->h = mix(mix(w->h, T_SECRET), (uintptr_t)Py_TYPE(val));
        }
        else {
            r = walk_value(w, val, depth + 1);
        }
    }
    w->npath--;
    return r;
}

/* The identity map's serial of `v`, read from the weak reference the map holds to it (an
 * `identity._Ref`, found in the object's list of weak references), or 0 if the map has none.
 *
 * Why: an address is not an identity. When an object dies and a new one of the same class is
 * made at the same address with the same content, the encoder gives the new one a new serial
 * (the map's weak reference callback forgot the old one), so an encoding remembered for the old
 * object, or for a list holding it, must not be reused. Serials are never reused, so mixing
 * them in makes such fingerprints differ. Lists, dicts and tuples take no weak references: the
 * map itself keys them by address, as the fingerprint does. */
PyObject *
fp_serial_ref(Fingerprinter *fp, PyObject *v)
{
    Py_ssize_t offset = Py_TYPE(v)->tp_weaklistoffset;
    if (offset == 0 || fp->serial_offset == 0) {
        return NULL;
    }
    /* A negative offset is a managed weak reference list (3.12+), before the object header. */
    PyWeakReference *ref = *(PyWeakReference **)((char *)v + offset);
    for (int hops = 0; ref != NULL && hops < 8; ref = ref->wr_next, hops++) {
        if ((PyObject *)Py_TYPE(ref) == fp->ref_type && ref->wr_callback == fp->ref_callback) {
            PyObject *serial = *(PyObject **)((char *)ref + fp->serial_offset);
            return serial != NULL && PyLong_CheckExact(serial) ? serial : NULL;
        }
    }
    return NULL;
}

static uint64_t
object_serial(Fingerprinter *fp, PyObject *v)
{
    PyObject *serial = fp_serial_ref(fp, v);
    if (serial == NULL) {
        return 0;
    }
    int overflow = 0;
    long long n = PyLong_AsLongLongAndOverflow(serial, &overflow);
    return overflow || n < 0 ? 0 : (uint64_t)n;
}

PyObject *
fp_young_entry(Fingerprinter *fp, PyObject *v)
{
    PyObject *oid = PyLong_FromVoidPtr(v);
    if (oid == NULL) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *entry = PyDict_GetItemWithError(fp->entries, oid); /* int keys: no user code */
    Py_DECREF(oid);
    if (entry == NULL || !PyLong_CheckExact(entry)) {
        PyErr_Clear();
        return NULL;
    }
    return entry;
}

/* Whether a memo of container_serial still gives what the map holds at its address: a found
 * entry (serial != 0) is compared with entry_changes[2], an absent one with [0]. */
static inline int
entry_memo_stands(const FpEntryMemo *m, const uint64_t *changes)
{
    return m->changes == changes[m->serial != 0 ? 2 : 0];
}

/* The identity map's entry for a list, dict or tuple (by address, as the map keys them), as a
 * number that changes whenever the map gives that address a new serial; 0 if it has none in its
 * young generation (`_entries`; an old entry is renewed by the next encoding).
 *
 * Why: such an object cannot be weakly referenced, so when it dies and another list, dict or
 * tuple takes its address, the map only notices at the next `key` call: for a different type or
 * a tuple with different items it gives a new serial, and an encoding remembered from before
 * must not be reused even if the content looks the same again later. */
static uint64_t
container_serial(Fingerprinter *fp, PyObject *v)
{
    if (fp->entries == NULL) {
        return 0;
    }
    /* Two ways, as the encoder's key memo (serial_of in _encode.c). An entry found stands
     * while the map replaces no entry and does not rotate (entry_changes[2]; an entry the C
     * encoder replaces clears this memo of its address: fp_forget_address): entries added at
     * other addresses do not move it. "No entry here" stands only while nothing is added
     * anywhere (entry_changes[0]). Until 2026-11-28 both waited for [0], and a program that
     * makes containers as it runs (orders.py: a tuple per step of an order's history) asked
     * the dict again for nearly every list, dict and tuple of every walk. */
    const uint64_t *changes = (const uint64_t *)fp->entry_changes.buf;
    FpEntryMemo *memo = &fp->entry_memo[fp_slot_of(v, FP_ENTRY_MEMO) & ~(size_t)1];
    for (int way = 0; way < 2; way++) {
        if (memo[way].addr == (void *)v && entry_memo_stands(&memo[way], changes)) {
            return memo[way].serial;
        }
    }
    if (entry_memo_stands(&memo[0], changes)) {
        memo[1] = memo[0];
    }
    PyObject *entry = fp_young_entry(fp, v);
    uint64_t serial = 0;
    if (entry != NULL) {
        Py_hash_t h = PyObject_Hash(entry); /* serial << 64 | check: another serial differs */
        serial = h == -1 ? 0 : (uint64_t)h;
    }
    PyErr_Clear();
    memo->addr = (void *)v;
    memo->changes = changes[serial != 0 ? 2 : 0];
    memo->serial = serial;
    return serial;
}

/* The identity map's entry at `v`'s address was just replaced by the C encoder (young_insert):
 * what the memos of found entries and serials hold for that address is forgotten, as a
 * replacement by the map itself forgets them all (entry_changes[2]). */
void
fp_forget_address(Fingerprinter *fp, const void *v)
{
    size_t slot = fp_slot_of(v, FP_ENTRY_MEMO) & ~(size_t)1;
    for (size_t way = 0; way < 2; way++) {
        if (fp->entry_memo[slot + way].addr == v) {
            fp->entry_memo[slot + way].addr = NULL;
        }
        if (fp->key_memo[slot + way].addr == v) {
            fp->key_memo[slot + way].addr = NULL;
            Py_CLEAR(fp->key_memo[slot + way].serial);
        }
    }
}

int
fp_datetime_text_in_c(PyObject *v)
{
    PyTypeObject *tp = Py_TYPE(v);
    PyObject *tz = tp == PyDateTimeAPI->DateTimeType ? PyDateTime_DATE_GET_TZINFO(v)
                   : tp == PyDateTimeAPI->TimeType   ? PyDateTime_TIME_GET_TZINFO(v)
                                                     : Py_None;
    return tz == Py_None || Py_IS_TYPE(tz, Py_TYPE(PyDateTime_TimeZone_UTC));
}

/* A date, datetime, time or timedelta (FP_DATETIME): what its C repr reads, its fields, and
 * its tzinfo (by identity: the encoder shows only the stdlib's own tz classes, whose objects do
 * not change). 2 with *out (a value: no identity), 0 for a tzinfo of another class. */
static int
datetime_content(Fingerprinter *fp, PyObject *v, uint64_t *out)
{
    (void)fp;
    PyTypeObject *tp = Py_TYPE(v);
    uint64_t h = mix(mix(0x6461746574696D65ULL, T_OPAQUE), (uintptr_t)tp);
    PyObject *tz = Py_None;
    if (tp == PyDateTimeAPI->DeltaType) {
        h = mix(mix(mix(h, (uint64_t)PyDateTime_DELTA_GET_DAYS(v)),
                    (uint64_t)PyDateTime_DELTA_GET_SECONDS(v)),
                (uint64_t)PyDateTime_DELTA_GET_MICROSECONDS(v));
    }
    else if (tp == PyDateTimeAPI->TimeType) {
        h = mix(mix(mix(mix(mix(h, (uint64_t)PyDateTime_TIME_GET_HOUR(v)),
                            (uint64_t)PyDateTime_TIME_GET_MINUTE(v)),
                        (uint64_t)PyDateTime_TIME_GET_SECOND(v)),
                    (uint64_t)PyDateTime_TIME_GET_MICROSECOND(v)),
                (uint64_t)PyDateTime_TIME_GET_FOLD(v));
        tz = PyDateTime_TIME_GET_TZINFO(v);
    }
    else {
        h = mix(mix(mix(h, (uint64_t)PyDateTime_GET_YEAR(v)), (uint64_t)PyDateTime_GET_MONTH(v)),
                (uint64_t)PyDateTime_GET_DAY(v));
        if (tp == PyDateTimeAPI->DateTimeType) {
            h = mix(mix(mix(mix(mix(h, (uint64_t)PyDateTime_DATE_GET_HOUR(v)),
                                (uint64_t)PyDateTime_DATE_GET_MINUTE(v)),
                            (uint64_t)PyDateTime_DATE_GET_SECOND(v)),
                        (uint64_t)PyDateTime_DATE_GET_MICROSECOND(v)),
                    (uint64_t)PyDateTime_DATE_GET_FOLD(v));
            tz = PyDateTime_DATE_GET_TZINFO(v);
        }
    }
    if (tz != Py_None) {
        if (!Py_IS_TYPE(tz, PyDateTimeAPI->TZInfoType) && !PyTZInfo_Check(tz)) {
            return 0;
        }
        /* Which tz classes the encoder shows is its check; their text reads the tz object. */
        h = mix(mix(h, (uintptr_t)tz), (uintptr_t)Py_TYPE(tz));
    }
    *out = h;
    return 2;
}

/* A uuid.UUID (FP_UUID): its `int` slot, the 128 bits its text shows, exactly. 2 with *out (a
 * value: no identity), 0 for anything the encoder would not show as a UUID. */
static int
uuid_content(Fingerprinter *fp, PyObject *v, uint64_t *out)
{
    const FpTypeEntry *te = fp_type_entry(fp, Py_TYPE(v));
    if (te == NULL || te->nslots != 1 || fp->int_64 == NULL) {
        return 0;
    }
    PyObject *i = *(PyObject **)((char *)v + te->slots[0].offset);
    if (i == NULL || !PyLong_CheckExact(i)) {
        return 0;
    }
    /* Exact ints: comparing and shifting them runs no Python code. */
    if (PyObject_RichCompareBool(i, fp->int_2_128, Py_LT) != 1 || _PyLong_Sign(i) < 0) {
        PyErr_Clear();
        return 0;
    }
    PyObject *high = PyNumber_Rshift(i, fp->int_64);
    if (high == NULL) {
        PyErr_Clear();
        return 0;
    }
    uint64_t lo = (uint64_t)PyLong_AsUnsignedLongLongMask(i);
    uint64_t hi = (uint64_t)PyLong_AsUnsignedLongLongMask(high);
    Py_DECREF(high);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    *out = mix(mix(mix(0x7575696400000001ULL, (uintptr_t)Py_TYPE(v)), lo), hi);
    return 2;
}

/* A path (FP_PATH): the slots `_posix_path_str` makes its text from (`_str`, `_raw_paths`,
 * `_drv`, `_root`, `_parts`... whichever this Python's pathlib has), each unset, a str or a list
 * of str, by content. 2 with *out (a value: no identity), 0 for anything else in them (the
 * encoder then decides). Two paths with the same text may differ here (one has cached its
 * `_str`): they are encoded twice, never confused. */
static int
path_content(Fingerprinter *fp, PyObject *v, uint64_t *out)
{
    const FpTypeEntry *te = fp_type_entry(fp, Py_TYPE(v));
    if (te == NULL || te->nslots < 1) {
        return 0;
    }
    uint64_t h = mix(0x7061746800000001ULL, (uintptr_t)Py_TYPE(v));
    for (Py_ssize_t k = 0; k < te->nslots; k++) {
        PyObject *o = *(PyObject **)((char *)v + te->slots[k].offset);
        h = mix(h, (uint64_t)k);
        if (o == NULL) {
            h = mix(h, 0x756e736574ULL); /* unset */
            continue;
        }
        Py_ssize_t n = 1;
        PyObject **items = &o;
        if (PyList_CheckExact(o)) {
            n = PyList_GET_SIZE(o);
            items = ((PyListObject *)o)->ob_item;
            h = mix(h, 0x6c697374ULL ^ (uint64_t)n);
        }
        for (Py_ssize_t j = 0; j < n; j++) {
            if (!PyUnicode_CheckExact(items[j])) {
                return 0;
            }
            Py_hash_t sh = PyObject_Hash(items[j]); /* an exact str: no Python code */
            if (sh == -1) {
                PyErr_Clear();
                return 0;
            }
            h = mix(mix(h, (uint64_t)sh), (uint64_t)PyUnicode_GET_LENGTH(items[j]));
        }
    }
    *out = h;
    return 2;
}

/* The class `module_name.class_name` of a module the program imported (nothing is imported
 * here), and its own dict: new references in *cls and *dict, or 0 (no exception set) when the
 * module is not imported or the name is not a class. */
static int
imported_class(const char *module_name, const char *class_name, PyObject **cls, PyObject **dict)
{
    PyObject *name = PyUnicode_FromString(module_name);
    PyObject *module = name != NULL ? PyImport_GetModule(name) : NULL; /* imported, or NULL */
    Py_XDECREF(name);
    PyObject *found = module ? PyDict_GetItemString(PyModule_GetDict(module), class_name) : NULL;
    *cls = found != NULL && PyType_Check(found) ? Py_NewRef(found) : NULL;
    *dict = *cls != NULL ? PyType_GetDict((PyTypeObject *)*cls) : NULL;
    Py_XDECREF(module);
    if (*dict == NULL) {
        Py_CLEAR(*cls);
        PyErr_Clear();
        return 0;
    }
    return 1;
}

/* A C `decimal.Decimal` as _decimal lays it out (Modules/_decimal/_decimal.c, PyDecObject, the
 * same on 3.11 to 3.13) around libmpdec's mpd_t (mpdecimal.h, unchanged since libmpdec 2.4): its
 * sign and special flags, exponent, digit count and coefficient words in base 10**19. */
typedef struct {
    uint8_t flags;
    Py_ssize_t exp, digits, len, alloc;
    uint64_t *data;
} FpMpd;

typedef struct {
    PyObject_HEAD
    Py_hash_t hash;
    FpMpd dec;
} FpDecimal;

#define FP_MPD_VALUE_FLAGS 0x0F /* MPD_NEG | MPD_INF | MPD_NAN | MPD_SNAN; the rest say where
                                 * the coefficient is stored, not what it is */

/* Whether `Decimal(text)` reads back as the given fields through FpDecimal. */
static int
decimal_reads_as(PyTypeObject *tp, const char *text, int flags, Py_ssize_t exp,
                 Py_ssize_t digits, Py_ssize_t len, uint64_t word0, uint64_t word1)
{
    PyObject *arg = PyUnicode_FromString(text);
    PyObject *d = arg != NULL ? PyObject_CallOneArg((PyObject *)tp, arg) : NULL;
    Py_XDECREF(arg);
    if (d == NULL || Py_TYPE(d) != tp) {
        Py_XDECREF(d);
        PyErr_Clear();
        return 0;
    }
    const FpMpd *m = &((FpDecimal *)d)->dec;
    int ok = (m->flags & FP_MPD_VALUE_FLAGS) == flags && m->exp == exp && m->digits == digits
             && m->len == len && m->alloc >= len && m->data != NULL
             && (len < 1 || m->data[0] == word0) && (len < 2 || m->data[1] == word1);
    Py_DECREF(d);
    return ok;
}

/* Whether the C Decimal class `tp` has the layout decimal_content reads: a few values of known
 * fields are made (by the class's own C constructor, exact: no context is consulted) and read
 * back. Anything else (another word size, a libmpdec that changed, _pydecimal) keeps the text. */
static int
decimal_layout_known(PyTypeObject *tp)
{
    if (sizeof(void *) != 8 || sizeof(Py_ssize_t) != 8 || tp->tp_basicsize < (Py_ssize_t)sizeof(FpDecimal)
        || strcmp(tp->tp_name, "decimal.Decimal") != 0) {
        return 0;
    }
    return decimal_reads_as(tp, "-12.5", 1, -1, 3, 1, 125, 0)
           && decimal_reads_as(tp, "12345678901234567890123E5", 0, 5, 23, 2, 5678901234567890123ULL, 1234)
           && decimal_reads_as(tp, "-Infinity", 1 | 2, 0, 0, 0, 0, 0)
           && decimal_reads_as(tp, "sNaN7", 8, 0, 1, 1, 7, 0);
}

/* The content of a Decimal of the checked class, from its fields: what its text is made of
 * (sign, special kind, exponent, coefficient), without making the text. Its repr also follows
 * the context's `capitals` (an exponent's `E` or `e`), which the text remembered per object did
 * not follow either: a change of it shows at the value's next encoding. */
static uint64_t
decimal_content(PyTypeObject *tp, PyObject *v)
{
    const FpMpd *m = &((FpDecimal *)v)->dec;
    uint64_t h = mix(mix(mix(mix(0x646563696D616C01ULL, (uintptr_t)tp),
                             (uint64_t)(m->flags & FP_MPD_VALUE_FLAGS)),
                         (uint64_t)m->exp),
                     (uint64_t)m->digits);
    for (Py_ssize_t i = 0; i < m->len; i++) {
        h = mix(h, m->data[i]);
    }
    return mix(h, (uint64_t)m->len);
}

/* _socket.socket and the descriptors the encoder's text of a socket reads (K_SOCKET): looked up
 * in the class's own dict once a socket was met. 1 when known, 0 when this Python's socket class
 * is not the one expected. */
static int
socket_class(Fingerprinter *fp)
{
    PyObject *cls, *dict;
    if (fp->socket_type != NULL) {
        return 1;
    }
    if (!imported_class("_socket", "socket", &cls, &dict)) {
        return 0;
    }
    PyObject *fileno = PyDict_GetItemString(dict, "fileno");
    static const char *const names[] = {"family", "type", "proto"};
    PyObject *members[3] = {NULL, NULL, NULL};
    int ok = fileno != NULL && Py_IS_TYPE(fileno, &PyMethodDescr_Type);
    for (int k = 0; ok && k < 3; k++) {
        members[k] = PyDict_GetItemString(dict, names[k]);
        ok = members[k] != NULL && Py_IS_TYPE(members[k], &PyMemberDescr_Type)
             && ((PyMemberDescrObject *)members[k])->d_member->type == FP_MEMBER_INT;
    }
    if (ok) {
        fp->socket_type = (PyTypeObject *)Py_NewRef(cls);
        fp->socket_fileno = Py_NewRef(fileno);
        for (int k = 0; k < 3; k++) {
            fp->socket_members[k] = Py_NewRef(members[k]);
        }
    }
    Py_DECREF(dict);
    Py_DECREF(cls);
    return ok;
}

/* _thread.LockType and its `locked` method descriptor, looked up once a lock is met. 1 if
 * known. */
static int
lock_class(Fingerprinter *fp)
{
    PyObject *cls, *dict;
    if (fp->lock_type != NULL) {
        return 1;
    }
    if (!imported_class("_thread", "LockType", &cls, &dict)) {
        return 0;
    }
    PyObject *locked = PyDict_GetItemString(dict, "locked");
    int ok = locked != NULL && Py_IS_TYPE(locked, &PyMethodDescr_Type);
    if (ok) {
        fp->lock_type = (PyTypeObject *)Py_NewRef(cls);
        fp->lock_locked = Py_NewRef(locked);
    }
    Py_DECREF(dict);
    Py_DECREF(cls);
    return ok;
}

/* A socket (FP_SOCKET): what its text shows, `fileno()` (C: the descriptor of _socket.socket,
 * never a subclass's method) and the family, type and proto members. 1 with *out (shown with
 * its identity), 0 if any of them cannot be read (the encoder then decides). */
static int
socket_content(Fingerprinter *fp, PyObject *v, uint64_t *out)
{
    if (fp->socket_type == NULL) {
        return 0;
    }
    PyObject *fd = PyObject_CallOneArg(fp->socket_fileno, v);
    uint64_t h = mix(0x736f636b00000001ULL, (uintptr_t)Py_TYPE(v));
    long long n = fd != NULL && PyLong_CheckExact(fd) ? PyLong_AsLongLong(fd) : -1;
    int bad = fd == NULL || !PyLong_CheckExact(fd) || (n == -1 && PyErr_Occurred());
    Py_XDECREF(fd);
    if (bad) {
        PyErr_Clear();
        return 0;
    }
    h = mix(h, (uint64_t)n);
    for (int k = 0; k < 3; k++) { /* C ints in the socket object (checked: socket_class) */
        const struct PyMemberDef *m = ((PyMemberDescrObject *)fp->socket_members[k])->d_member;
        h = mix(h, (uint64_t)(long long)*(const int *)((const char *)v + m->offset));
    }
    *out = h;
    return 1;
}

/* What the encoder's text of an opaque value reads (`_object_text`), as a hash of the objects it
 * reads them from: a function's module and qualified name, a method's function (and its name)
 * and the class of its `self`, a builtin's definition and the class of its owner, a module's
 * `__name__`, a generator's `__qualname__`, an enum member's name and (atom) value. A class shows
 * its own name, fixed when the encoder first classified it. 1 with *out, 0 for a class the
 * encoder does not call opaque or a C layout not read here, -1 for a class not classified yet. */
static int
opaque_content(Fingerprinter *fp, PyObject *v, uint64_t *out)
{
    PyTypeObject *tp = Py_TYPE(v);
    int kind = type_kind(fp, tp);
    if (kind == FP_DATETIME) {
        return datetime_content(fp, v, out);
    }
    if (kind == FP_UUID) {
        return uuid_content(fp, v, out);
    }
    if (kind == FP_PATH) {
        return path_content(fp, v, out);
    }
    if (kind == FP_SOCKET) {
        return socket_content(fp, v, out);
    }
    if (kind == FP_LOCK) {
        /* `<locked _thread.lock object>` or `<unlocked ...>`: `locked()` through LockType's own
         * method descriptor (a C method of a class that cannot be subclassed), and an identity. */
        PyObject *locked = fp->lock_type == tp ? PyObject_CallOneArg(fp->lock_locked, v) : NULL;
        if (locked == NULL || !PyBool_Check(locked)) {
            Py_XDECREF(locked);
            PyErr_Clear();
            return 0;
        }
        *out = mix(mix(mix(0x6C6F636B00000001ULL, (uintptr_t)v), (uintptr_t)tp),
                   locked == Py_True);
        Py_DECREF(locked);
        return 1;
    }
    int remembered = kind == FP_CREPR; /* not a re class: its members may be big */
    if (kind == FP_CREPR_CHECKED) {
        /* The check the encoder makes first (`_add_value_kinds`): the member the text repeats
         * (a pattern's source, a match's string) is an exact str or bytes; else it decides. */
        const FpTypeEntry *te = fp_type_entry(fp, tp);
        PyObject *m = te != NULL && te->nslots == 1
                          ? *(PyObject **)((char *)v + te->slots[0].offset)
                          : NULL;
        if (m == NULL || !(PyUnicode_CheckExact(m) || PyBytes_CheckExact(m))) {
            return 0;
        }
        kind = FP_CREPR;
    }
    if (kind == FP_CREPR) {
        if (tp == fp->decimal_type) {
            /* Read from its fields: a fresh Decimal (every sum or product is one) had its text
             * made and hashed at every walk that met it, and the remembered texts thrashed on
             * a program holding more of them than the cache has entries (orders.py: 8.7
             * million texts made in 18.7 million reads, a third of the C core's time). */
            *out = decimal_content(tp, v);
            return 2;
        }
        size_t slot = fp_slot_of(v, FP_CREPR_CACHE);
        if (remembered && fp->crepr[slot].obj == v) {
            *out = fp->crepr[slot].content;
            return 2;
        }
        /* The text the encoder shows, made by the type's C repr (no Python code): its hash. */
        PyObject *text = tp->tp_repr(v);
        Py_hash_t th = text != NULL && PyUnicode_CheckExact(text) ? PyObject_Hash(text) : -1;
        uint64_t len = th != -1 ? (uint64_t)PyUnicode_GET_LENGTH(text) : 0;
        Py_XDECREF(text);
        if (th == -1) {
            PyErr_Clear();
            return 0;
        }
        *out = mix(mix(mix(0x6372657072000001ULL, (uintptr_t)tp), (uint64_t)th), len);
        if (remembered) {
            /* Dropping the entry's object runs no Python code: an exact immutable C class. */
            Py_XSETREF(fp->crepr[slot].obj, Py_NewRef(v));
            fp->crepr[slot].content = *out;
        }
        return 2;
    }
    if (kind != FP_OPAQUE && kind != FP_OPAQUE_TYPE) {
        return kind < 0 ? -1 : 0; /* not read, or not classified yet (fp->miss_type is set) */
    }
    uint64_t h = mix(mix(mix(0x6F70617175650001ULL, T_OPAQUE), (uintptr_t)v), (uintptr_t)tp);
    if (kind == FP_OPAQUE_TYPE || PyType_Check(v)) { /* a text that names the class alone */
        *out = h;
        return 1;
    }
    if (tp == &PyFunction_Type) {
        PyFunctionObject *f = (PyFunctionObject *)v;
        *out = mix(mix(h, (uintptr_t)f->func_qualname), (uintptr_t)f->func_module);
        return 1;
    }
    if (tp == &PyMethod_Type) {
        PyObject *func = PyMethod_GET_FUNCTION(v);
        h = mix(mix(h, (uintptr_t)func), (uintptr_t)Py_TYPE(PyMethod_GET_SELF(v)));
        if (PyFunction_Check(func)) {
            h = mix(h, (uintptr_t)((PyFunctionObject *)func)->func_qualname);
        }
        *out = h;
        return 1;
    }
    if (PyCFunction_Check(v)) {
        PyObject *self = PyCFunction_GET_SELF(v);
        *out = mix(mix(h, (uintptr_t)((PyCFunctionObject *)v)->m_ml),
                   self != NULL ? (uintptr_t)Py_TYPE(self) : 0);
        return 1;
    }
    if (PyModule_Check(v)) {
        PyObject *d = PyModule_GetDict(v); /* borrowed; the module's own dict */
        PyObject *name = d != NULL && PyDict_CheckExact(d)
                             ? PyDict_GetItemWithError(d, fp->str_name) /* str key: no user code */
                             : NULL;
        if (PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        *out = mix(h, (uintptr_t)name);
        return 1;
    }
    int gen = tp == &PyGen_Type ? 0 : tp == &PyCoro_Type ? 1 : tp == &PyAsyncGen_Type ? 2 : -1;
    if (gen >= 0) {
        /* A C type that cannot be subclassed: its getset, no user code. */
        getter get = fp->gen_qualname[gen];
        PyObject *qualname = get != NULL ? get(v, NULL) : PyObject_GetAttr(v, fp->str_qualname);
        if (qualname == NULL) {
            PyErr_Clear();
            return 0;
        }
        *out = mix(h, (uintptr_t)qualname);
        Py_DECREF(qualname); /* the generator keeps it */
        return 1;
    }
    if (tp == &PyCode_Type) {
        /* `<code object QUALNAME, file "FILE", line N>`: fixed when the code object is made. */
        *out = h;
        return 1;
    }
    if (tp == &PyMethodDescr_Type || tp == &PyClassMethodDescr_Type || tp == &PyWrapperDescr_Type
        || tp == &PyGetSetDescr_Type || tp == &PyMemberDescr_Type) {
        /* `<member 'NAME' of 'CLASS' objects>`: the name and the class (d_name, d_type) are
         * fixed when the descriptor is made; the class is named as a class's own text names it
         * (by identity: a renamed class is not followed, as for the class itself). */
        *out = h;
        return 1;
    }
    if (tp == fp->method_wrapper_type) {
        /* `<method-wrapper 'NAME' of OWNER object>`: NAME is its slot's, fixed; OWNER the class
         * of the object it is bound to, read through the type's own `__self__` getset (a final
         * C type: no user code). */
        PyObject *self = PyObject_GetAttr(v, fp->str_self);
        if (self == NULL) {
            PyErr_Clear();
            return 0;
        }
        *out = mix(h, (uintptr_t)Py_TYPE(self));
        Py_DECREF(self);
        return 1;
    }
    if (PyType_HasFeature(tp, Py_TPFLAGS_HEAPTYPE)) {
        /* An enum member (`_enum`): its `_name_` and its `_value_`, read from its instance
         * dict; only an atom value (str, bytes, int, float, bool, None), whose venc does not
         * depend on where the member sits. */
        FpAttrs d;
        if (!fp_attrs_open(v, &d)) {
            return 0;
        }
        PyObject *name = fp_attrs_get(&d, fp->str_enum_name); /* str keys: no user code */
        PyObject *value = name != NULL || !PyErr_Occurred()
                              ? fp_attrs_get(&d, fp->str_enum_value)
                              : NULL;
        int ok = value != NULL && (name == NULL || PyUnicode_CheckExact(name));
        PyTypeObject *vt = ok ? Py_TYPE(value) : NULL;
        ok = ok
             && (vt == &PyUnicode_Type || vt == &PyBytes_Type || vt == &PyLong_Type
                 || vt == &PyFloat_Type || vt == &PyBool_Type || value == Py_None);
        Py_hash_t vh = ok ? PyObject_Hash(value) : -1; /* C hashes of exact atoms */
        if (ok) {
            h = mix(mix(mix(mix(h, (uintptr_t)name), (uintptr_t)vt), (uint64_t)vh),
                    (uint64_t)(vt == &PyUnicode_Type ? PyUnicode_GET_LENGTH(value)
                               : vt == &PyBytes_Type ? PyBytes_GET_SIZE(value)
                                                     : 0));
        }
        fp_attrs_close(&d);
        PyErr_Clear();
        *out = h;
        return ok && vh != -1;
    }
    return 0;
}

int
fp_opaque(Fingerprinter *fp, PyObject *v, uint64_t *out)
{
    uint64_t content;
    int r = opaque_content(fp, v, &content);
    if (r <= 0) {
        return r;
    }
    uint64_t both = r == 2 ? content : mix(content, identity_serial(fp, v));
    *out = both ? both : 1;
    return 1;
}

/* An opaque value inside a value: a leaf, its content and serial mixed in as fp_opaque does. */
static int
walk_opaque(Walk *w, PyObject *v)
{
    uint64_t content;
    int r = opaque_content(w->fp, v, &content);
    if (r <= 0) {
        return 0; /* not read, or not classified yet (fp_of classifies it, then walks again) */
    }
    w->h = mix(w->h, content);
    if (r == 1) { /* 2: a value, shown without an identity */
        w->ids = mix(w->ids, identity_serial(w->fp, v)); /* an iterator takes no weak ref */
    }
    return 1;
}

static inline int atom_inputs(const Fingerprinter *fp, PyObject *v, uint64_t in[3]);

/* The words walk_attribute mixes for (name, value) when the value is an atom, or the name is a
 * secret or not an exact str (FpOwnAttr); a->n = 0 for a value walked as it is met (in[0] is
 * then the name's hash, mixed before the walk). 0, or -1 when they cannot be told now (a name
 * not classified yet: the walk gives up and fp_of asks; an atom the walk gives up on). */
static int
own_attr(Fingerprinter *fp, PyObject *name, PyObject *value, FpOwnAttr *a)
{
    a->name = name;
    a->value = value;
    if (!PyUnicode_CheckExact(name)) {
        a->in[0] = T_CUT; /* skipped by the encoder (it marks the object truncated) */
        a->n = 1;
        return 0;
    }
    int secret = fp_name_secret(fp, name);
    if (secret < 0) {
        return -1;
    }
    a->in[0] = (uint64_t)str_hash(name);
    if (secret) {
        a->in[1] = T_SECRET;
        a->in[2] = (uintptr_t)Py_TYPE(value);
        a->n = 3;
        return 0;
    }
    int k = atom_inputs(fp, value, &a->in[1]);
    a->n = k > 0 ? k + 1 : 0;
    return k < 0 ? -1 : 0;
}

/* One attribute of an object (an instance dict item, a slot, a namedtuple field) under the exact
 * str `name`: the name, and the value unless the name looks secret (then its class alone, which
 * is all the encoder's REDACTED shows). As walk_value: 1 walk on, 0 give up (also for a name
 * the redactor was not asked about yet: fp_of asks, then walks again). */
static int
walk_attribute(Walk *w, PyObject *name, PyObject *value, int depth)
{
    FpOwnAttr a;
    if (own_attr(w->fp, name, value, &a) < 0) {
        return 0;
    }
    if (a.n == 0) {
        w->h = mix(w->h, a.in[0]); /* the name; the value is walked */
        return walk_value(w, value, depth);
    }
    for (int j = 0; j < a.n; j++) {
        w->h = mix(w->h, a.in[j]);
    }
    return 1;
}

/* A slot as walk_attribute reads an attribute: an object slot is one (None when an unset
 * Py_T_OBJECT member), a C bool or int member is hashed as the bool or int the encoder gets from
 * it, without making one. */
static int
walk_slot(Walk *w, PyObject *v, const FpSlot *slot, int depth)
{
    const char *p = (const char *)v + slot->offset;
    if (slot->type == Py_T_OBJECT_EX || slot->type == FP_MEMBER_OBJECT) {
        PyObject *x = *(PyObject *const *)p;
        return walk_attribute(w, slot->name, x != NULL ? x : Py_None, depth);
    }
    int secret = fp_name_secret(w->fp, slot->name);
    if (secret < 0) {
        return 0;
    }
    w->h = mix(w->h, (uint64_t)str_hash(slot->name));
    int is_bool = slot->type == FP_MEMBER_BOOL;
    if (secret) {
        w->h = mix(mix(w->h, T_SECRET), (uintptr_t)(is_bool ? &PyBool_Type : &PyLong_Type));
    }
    else if (is_bool) {
        w->h = mix(w->h, *p ? T_TRUE : T_FALSE);
    }
    else {
        w->h = mix(mix(w->h, T_INT), fp_slot_int(v, slot)); /* as walk_value hashes an int */
    }
    return 1;
}

/* The checks before an object's attributes (`_obj`, `_namedtuple`): the budget it needs not to
 * be cut or shortened (`needed`) is noted, then it is cut (hashed as such) at the depth limit or
 * with no budget left. 1: cut, 0: expand it, -1: give up (a path too deep to mirror). */
static int
object_cut(Walk *w, PyObject *v, int depth, Py_ssize_t needed)
{
    if (depth < w->fp->max_depth && w->budget - needed < w->min_margin) {
        w->min_margin = w->budget - needed;
    }
    if (depth >= w->fp->max_depth || w->budget <= 0) {
        hash_header(w, T_CUT, v, 0);
        return 1;
    }
    return w->npath >= FP_MAX_PATH ? -1 : 0;
}

/* `_namedtuple`: an object whose attributes are its first fields, as many as the fields, the
 * attribute limit and the budget allow (cut: truncated), names checked for secrets. */
static int
walk_namedtuple(Walk *w, PyObject *v, int depth)
{
    const FpTypeEntry *te = fp_type_entry(w->fp, Py_TYPE(v));
    if (te == NULL || te->fields == NULL) {
        return 0;
    }
    if (on_path(w, v)) {
        hash_header(w, T_REF, v, 0);
        return 1;
    }
    w->ids = mix(w->ids, identity_serial(w->fp, v));
    Py_ssize_t n = PyTuple_GET_SIZE(v), nf = PyTuple_GET_SIZE(te->fields);
    Py_ssize_t k = n < nf ? n : nf;
    k = k < w->fp->max_attrs ? k : w->fp->max_attrs;
    int cut = object_cut(w, v, depth, k > 1 ? k : 1); /* it takes k items, fewer if short */
    if (cut) {
        return cut > 0;
    }
    k = k < w->budget ? k : w->budget;
    w->budget -= k;
    hash_header(w, T_OBJ, v, (uint64_t)n);
    w->h = mix(w->h, (uint64_t)k);
    w->path[w->npath++] = v;
    int r = 1;
    for (Py_ssize_t i = 0; r > 0 && i < k; i++) {
        r = walk_attribute(w, PyTuple_GET_ITEM(te->fields, i), PyTuple_GET_ITEM(v, i), depth + 1);
    }
    w->npath--;
    return r;
}

/* The first `take` attributes of an instance dict, as walk_attribute reads them. */
static int
walk_dict_attributes(Walk *w, const FpAttrs *d, Py_ssize_t take, int depth)
{
    Py_ssize_t pos = 0, taken = 0;
    PyObject *name, *val;
    int r = 1;
    while (r > 0 && taken < take && fp_attrs_next(d, &pos, &name, &val)) {
        taken++;
        if (!PyUnicode_CheckExact(name)) {
            w->h = mix(w->h, T_CUT); /* skipped by the encoder (it marks the object truncated) */
            continue;
        }
        r = walk_attribute(w, name, val, depth + 1);
    }
    return r;
}

/* PEP 509's version tag of a dict: a new dict, and every change of one, takes the next of a
 * counter of the interpreter (deprecated since 3.12, and still so on 3.13; the field is read,
 * not the deprecated API). */
static inline uint64_t
dict_version_tag(PyObject *d)
{
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
    return ((PyDictObject *)d)->ma_version_tag;
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
}

/* The version tag as the own levels use it (walk_own_level): 0 where they are not kept (3.13
 * writes an attribute into an object's inline values without a new version of its dict). */
static inline uint64_t
dict_version(PyObject *d)
{
#if FP_DICT_VERSIONS
    return dict_version_tag(d);
#else
    (void)d;
    return 0;
#endif
}

/* An attribute's words, folded into the object's accumulator of them with its position. */
static inline uint64_t
fold_own_attr(uint64_t acc, Py_ssize_t i, const FpOwnAttr *a)
{
    acc = mix(acc, (uint64_t)i);
    for (int j = 0; j < a->n; j++) {
        acc = mix(acc, a->in[j]);
    }
    return acc;
}

#define OWN_SEED 0x243F6A8885A308D3ULL

/* Whether an inline values' entry still stands for the first `take` attributes: the same name
 * and the same value at each position (the entry holds the names and atoms: their addresses
 * are not another object's). */
static int
own_level_inline_stands(const FpOwnLevel *ol, const FpAttrs *a, Py_ssize_t take)
{
    if (!ol->owned || ol->count < take || a->size < take) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < take; i++) {
        Py_ssize_t index = a->order[i * a->step];
        if (a->values[index] != ol->attrs[i].value || a->keys[2 * index] != ol->attrs[i].name) {
            return 0;
        }
    }
    return 1;
}

/* Drop what an inline values' entry holds (its names and atoms: exact builtin atoms and strs,
 * whose release runs no Python code), leaving it empty. */
static void
own_level_release(FpOwnLevel *ol)
{
    ol->dict = NULL;
    if (!ol->owned) {
        return;
    }
    ol->owned = 0;
    for (Py_ssize_t i = 0; i < ol->count; i++) {
        Py_DECREF(ol->attrs[i].name);
        if (ol->attrs[i].n != 0) {
            Py_DECREF(ol->attrs[i].value);
        }
    }
    ol->count = 0;
}

/* Whether an inline values' entry may hold `v`, an attribute's value of n words: an atom of a
 * builtin immutable type (releasing it runs no Python code), not so big that holding it past
 * its object's life would keep much memory. */
static int
own_level_holdable(PyObject *v)
{
    PyTypeObject *tp = Py_TYPE(v);
    if (tp == &PyUnicode_Type) {
        return PyUnicode_GET_LENGTH(v) <= 256;
    }
    if (tp == &PyBytes_Type) {
        return PyBytes_GET_SIZE(v) <= 256;
    }
    return tp == &PyLong_Type || tp == &PyFloat_Type || tp == &PyBool_Type || v == Py_None
           || tp == &PyComplex_Type;
}

/* Hold the names and atoms of an inline values' entry just read: 1, or 0 (an atom it may not
 * hold: the entry is not kept). */
static int
own_level_hold(FpOwnLevel *ol, Py_ssize_t count)
{
    for (Py_ssize_t i = 0; i < count; i++) {
        if (ol->attrs[i].n != 0 && !own_level_holdable(ol->attrs[i].value)) {
            return 0;
        }
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_INCREF(ol->attrs[i].name);
        if (ol->attrs[i].n != 0) {
            Py_INCREF(ol->attrs[i].value);
        }
    }
    ol->owned = 1;
    return 1;
}

/* The first `take` attributes of a plain object. The words of its atoms (and of its secret and
 * cut names) go to an accumulator of their own, each with its position, mixed into the walk's
 * hash after the values that are walked (parts, opaque values: each with its position, then as
 * walk_attribute reads it): so the object's own level, unchanged, is one word, whatever values
 * it holds further down. Its FpOwnLevel keeps that word (while its dict's version stands, on
 * 3.11 and 3.12; while its inline values show the same names and values), and a re-check of an
 * object whose own attributes did not change walks only the values that are parts (their own
 * attributes may have changed). */
static int
walk_own_level(Walk *w, const FpAttrs *attrs_of, Py_ssize_t take, int depth)
{
    Fingerprinter *fp = w->fp;
    PyObject *d = attrs_of->dict;
    /* An instance dict's entry (by its version: 3.11, 3.12), or an inline values' one. */
    const void *key = d != NULL ? (const void *)d : (const void *)attrs_of->values;
    FpOwnLevel *ol = fp->own_levels != NULL && (d == NULL || FP_DICT_VERSIONS)
                         ? &fp->own_levels[fp_slot_of(key, FP_OWN_LEVELS)]
                         : NULL;
    if (ol != NULL && ol->busy) {
        /* The entry of an object whose walk led here (the same slot): its reading goes on
         * when this one returns, so this one keeps none. */
        ol = NULL;
    }
    uint64_t version = d != NULL ? dict_version(d) : 0;
    int r = 1;
    if (ol != NULL && ol->dict == key
        && (d != NULL ? !ol->owned && ol->version == version && ol->count >= take
                      : own_level_inline_stands(ol, attrs_of, take))) {
        fp->own_level_hits++;
        ol->busy = 1;
        uint64_t acc = OWN_SEED;
        for (Py_ssize_t i = 0; r > 0 && i < take; i++) {
            const FpOwnAttr *a = &ol->attrs[i];
            if (a->n != 0) {
                if (take < ol->count) {
                    acc = fold_own_attr(acc, i, a); /* fewer than were read: fold them again */
                }
                continue;
            }
            w->h = mix(mix(w->h, (uint64_t)i), a->in[0]);
            r = walk_value(w, a->value, depth + 1);
        }
        w->h = mix(w->h, take < ol->count ? acc : ol->atoms);
        ol->busy = 0;
        return r;
    }
    /* Read the attributes, each one's words remembered in the entry (when there is one), which
     * stands only once every attribute was read (a walk that gives up leaves none). */
    FpOwnAttr scratch, *attrs = NULL;
    if (ol != NULL) {
        own_level_release(ol);
        if (take > ol->cap) {
            FpOwnAttr *grown = PyMem_Realloc(ol->attrs, (size_t)take * sizeof *grown);
            if (grown != NULL) {
                ol->attrs = grown;
                ol->cap = take;
            }
        }
        attrs = take <= ol->cap ? ol->attrs : NULL;
        ol->busy = 1;
    }
    uint64_t acc = OWN_SEED;
    Py_ssize_t pos = 0, taken = 0;
    PyObject *name, *val;
    int kept = 1;
    while (r > 0 && taken < take && fp_attrs_next(attrs_of, &pos, &name, &val)) {
        FpOwnAttr *a = attrs != NULL ? &attrs[taken] : &scratch;
        if (own_attr(fp, name, val, a) < 0) {
            kept = 0;
            r = 0; /* as walk_attribute gives up: a name not classified, an atom not read */
            break;
        }
        if (a->n != 0) {
            acc = fold_own_attr(acc, taken, a);
        }
        else {
            w->h = mix(mix(w->h, (uint64_t)taken), a->in[0]);
            r = walk_value(w, val, depth + 1);
        }
        taken++;
    }
    w->h = mix(w->h, acc);
    /* Kept if every attribute was read and, for a dict, it did not change meanwhile (the walk
     * runs no Python code; checked all the same). */
    if (ol != NULL && attrs != NULL && r > 0 && kept && taken == take
        && (d != NULL ? dict_version(d) == version : own_level_hold(ol, taken))) {
        ol->dict = key;
        ol->version = version;
        ol->count = taken;
        ol->atoms = acc;
    }
    if (ol != NULL) {
        ol->busy = 0;
    }
    return r;
}

/* _obj for a plain object: its instance dict, names checked for secrets, within `room`
 * reserved slots of the budget (what is left is given back). Also the entry for every other
 * class the encoder classified (a subclass of list, tuple or dict goes to their walk). */
static int
walk_object(Walk *w, PyObject *v, int depth)
{
    int kind = type_kind(w->fp, Py_TYPE(v));
    if (kind <= 0) {
        return 0; /* not walked, or not classified yet (fp_of classifies it, then walks again) */
    }
    if (fp_leaf_kind(kind)) { /* a heap type: a Python class, or a C extension's (3.13's Decimal) */
        return walk_opaque(w, v);
    }
    switch (kind) {
    case FP_PLAIN:
    case FP_SLOTTED:
    case FP_EXCEPTION:
        break; /* below */
    case FP_NAMEDTUPLE:
        return walk_namedtuple(w, v, depth);
    case FP_LIST:
    case FP_TUPLE:
        return walk_sequence(w, v, depth);
    case FP_DICT:
        return walk_dict(w, v, depth);
    case FP_SET:
        return walk_set(w, v, depth);
    case FP_DEQUE:
        return walk_deque(w, v, depth);
    default:
        return 0;
    }
    /* The layout (slots, instance dict) of the kinds that have one. */
    int laid_out = kind == FP_SLOTTED || kind == FP_EXCEPTION;
    const FpTypeEntry *te = laid_out ? fp_type_entry(w->fp, Py_TYPE(v)) : NULL;
    if (laid_out && te == NULL) {
        return 0;
    }
    if (on_path(w, v)) {
        hash_header(w, T_REF, v, 0);
        return 1;
    }
    /* Its venc shows its serial, cut or not (a slotted class, or a C class with an instance
     * dict, may take no weak references). */
    w->ids = mix(w->ids, identity_serial(w->fp, v));
    /* The budget decides whether it is cut (at 0) and how much room it reserves. */
    int cut = object_cut(w, v, depth, w->fp->max_attrs > 1 ? w->fp->max_attrs : 1);
    if (cut) {
        return cut > 0;
    }
    FpAttrs attrs, *d = NULL;
    if (te == NULL || te->has_dict) {
        if (!fp_attrs_open(v, &attrs)) {
            return 0;
        }
        d = &attrs;
    }
    Py_ssize_t room = w->fp->max_attrs < w->budget ? w->fp->max_attrs : w->budget;
    w->budget -= room;
    int exc = kind == FP_EXCEPTION;
    room -= exc; /* an exception's `args` takes one unit of it, first */
    Py_ssize_t n = d ? fp_attrs_size(d) : 0;
    Py_ssize_t take = n < room ? n : room;
    room -= take;
    hash_header(w, T_OBJ, v, (uint64_t)n);
    w->path[w->npath++] = v;
    int r = 1;
    if (exc) {
        /* `BaseException.args` (its C getset: the field, None when unset), never redacted. */
        PyObject *args = ((PyBaseExceptionObject *)v)->args;
        w->h = mix(w->h, T_EXC_ARGS);
        r = walk_value(w, args != NULL ? args : Py_None, depth + 1);
    }
    if (d != NULL && r > 0) {
        r = kind == FP_PLAIN && te == NULL
                ? walk_own_level(w, d, take, depth)
                : walk_dict_attributes(w, d, take, depth);
    }
    /* Then its slots, as `_slot_attrs` reads them: unset ones skipped, one unit of room each,
     * a name the instance dict gave already not shown again. */
    for (Py_ssize_t i = 0; te != NULL && r > 0 && i < te->nslots; i++) {
        const FpSlot *slot = &te->slots[i];
        if (slot->type == Py_T_OBJECT_EX && *(PyObject **)((char *)v + slot->offset) == NULL) {
            continue;
        }
        if (room <= 0) {
            w->h = mix(w->h, T_CUT); /* the object is marked truncated */
            break;
        }
        room--;
        PyObject *name = slot->name;
        if (d != NULL && fp_attrs_find(d, take, name) != NULL) {
            w->h = mix(mix(w->h, (uint64_t)str_hash(name)), T_REF); /* shown from the dict */
            continue;
        }
        r = walk_slot(w, v, slot, depth + 1);
    }
    w->npath--;
    if (d != NULL) {
        fp_attrs_close(d);
    }
    if (room > 0) {
        w->budget += room;
    }
    return r;
}

size_t
fp_whole_int_bits(const Fingerprinter *fp, PyObject *v)
{
    size_t bits = _PyLong_NumBits(v); /* an exact int: cannot fail */
    return bits <= fp->max_int_bits ? bits : 0;
}

/* What an atom mixes into a walk's hash, in order, into in[0..2]: how many (1 to 3), 0 if `v`
 * is not an atom, -1 to give up (an int past 64 bits that the encoder shows by its leading
 * digits, which the walk does not mirror). Computed apart from the walk so that an object's
 * attributes can be remembered as these words (FpOwnLevel) and mixed again without reading them. */
static inline int
atom_inputs(const Fingerprinter *fp, PyObject *v, uint64_t in[3])
{
    PyTypeObject *tp = Py_TYPE(v);
    if (tp == &PyLong_Type) {
        in[0] = T_INT;
        if (PyUnstable_Long_IsCompact((PyLongObject *)v)) { /* most ints: no call */
            in[1] = (uint64_t)(long long)PyUnstable_Long_CompactValue((PyLongObject *)v);
            return 2;
        }
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow) {
            /* Past 64 bits: an atom while it has fewer digits than the encoder keeps (read by
             * its hash and size), else shown by its leading digits (not mirrored). */
            size_t bits = fp_whole_int_bits(fp, v);
            if (bits == 0) {
                return -1;
            }
            in[0] = T_BIGINT;
            in[1] = (uint64_t)PyLong_Type.tp_hash(v); /* an exact int's own hash: C */
            in[2] = (uint64_t)bits;
            return 3;
        }
        in[1] = (uint64_t)x;
        return 2;
    }
    if (tp == &PyUnicode_Type || tp == &PyBytes_Type) {
        Py_hash_t hv = tp == &PyUnicode_Type ? str_hash(v) : PyObject_Hash(v); /* C, cached */
        if (hv == -1) {
            PyErr_Clear();
            return -1;
        }
        in[0] = tp == &PyUnicode_Type ? T_STR : T_BYTES;
        in[1] = (uint64_t)hv;
        in[2] = (uint64_t)(tp == &PyUnicode_Type ? PyUnicode_GET_LENGTH(v) : PyBytes_GET_SIZE(v));
        return 3;
    }
    if (tp == &PyFloat_Type) {
        double d = PyFloat_AS_DOUBLE(v);
        in[0] = T_FLOAT;
        memcpy(&in[1], &d, sizeof in[1]);
        return 2;
    }
    if (v == Py_None || v == Py_True || v == Py_False) {
        in[0] = v == Py_None ? T_NONE : v == Py_True ? T_TRUE : T_FALSE;
        return 1;
    }
    return 0;
}

static int
walk_value(Walk *w, PyObject *v, int depth)
{
    uint64_t in[3];
    int k = atom_inputs(w->fp, v, in);
    if (k != 0) {
        for (int i = 0; i < k; i++) {
            w->h = mix(w->h, in[i]);
        }
        return k > 0;
    }
    if (!fp_is_part(v, w->fp->deque_type)) {
        /* Other C types: classes, functions, iterators and the like are read here, as their
         * classification says; the encoder has its own rules for the rest (give up). */
        return walk_opaque(w, v);
    }
    return walk_part(w, v, depth, NULL);
}

static inline size_t
part_memo_home(const void *v)
{
    return fp_slot_of(v, FP_PART_MEMO);
}

/* Whether the memo `e` of `v` can stand for `v` met at `depth`: met at the same depth, or at
 * another where the depth limit cuts nothing in it either way (the secret pairs it holds are
 * cut by depth too: not then). */
static inline int
part_memo_fits(const Fingerprinter *fp, const FpPartMemo *e, PyObject *v, int depth)
{
    return e->ptr == (void *)v
           && (e->depth == depth || (e->any_depth && depth + e->reach < fp->max_depth));
}

/* What tells the part `v` from another object made at its address since a walk met it, for a
 * memo carried into a later callback (fp_carry_into): the program ran between the two, and a
 * container that died may have been replaced there by a new one. A dict's version (PEP 509: a
 * new dict, or any change, gets a fresh one), a list's or tuple's size and the items a walk
 * reads (a container made since holds other objects there, or shows the same), an object's
 * identity serial (the identity map's weak reference to it, which a new object lacks; serials
 * are never reused). 0 when nothing tells (a set, a slotted object without weak references, an
 * object the map has not met): such a memo is not carried. */
static uint64_t
part_tag(Fingerprinter *fp, PyObject *v)
{
    PyTypeObject *tp = Py_TYPE(v);
    uint64_t tag;
    if (PyDict_Check(v)) {
        tag = dict_version_tag(v);
    }
    else if (PyList_Check(v) || PyTuple_Check(v)) {
        Py_ssize_t n = Py_SIZE(v);
        PyObject **items = PyList_Check(v) ? ((PyListObject *)v)->ob_item
                                           : ((PyTupleObject *)v)->ob_item;
        tag = mix(0x51ED27, (uint64_t)n);
        for (Py_ssize_t i = 0; i < n && i < fp->max_items; i++) {
            tag = mix(tag, (uint64_t)(uintptr_t)items[i]);
        }
    }
    else if (tp->tp_weaklistoffset != 0) {
        PyObject *serial = fp_serial_ref(fp, v);
        if (serial == NULL || !PyUnstable_Long_IsCompact((PyLongObject *)serial)) {
            return 0;
        }
        tag = (uint64_t)PyUnstable_Long_CompactValue((PyLongObject *)serial);
    }
    else {
        return 0;
    }
    tag = mix(tag, (uint64_t)(uintptr_t)tp);
    return tag ? tag : 1;
}

/* The tags of the memos this callback's walks made (fp->fresh): it offers to carry the log, and
 * no program code ran since they were met, so each is the object the walk met. */
void
fp_tag_fresh(Fingerprinter *fp)
{
    for (int i = 0; i < fp->nfresh; i++) {
        int at = fp->fresh[i];
        const FpPartMemo *e = &fp->part_memo[at];
        if (e->gen == fp->memo_gen && e->slot >= fp->callback_parts) {
            fp->memo_tags[at] = part_tag(fp, (PyObject *)e->ptr);
        }
    }
    fp->nfresh = 0;
}

/* The memo of `v` met earlier in this log (this walk, or another of the same callback), if its
 * copy gives what walking it again would: a part whose walk pointed back at nothing above it and
 * cut nothing for want of budget, given budget enough not to cut anything now either, met at
 * this depth or fit for it (part_memo_fits), none of whose own parts is on the path now (it
 * would be a back reference here), and room in fp->parts for its entries. */
static FpPartMemo *
part_memo_find(Walk *w, PyObject *v, int depth)
{
    Fingerprinter *fp = w->fp;
    size_t home = part_memo_home(v);
    FpPartMemo *m = NULL;
    for (size_t i = 0; i < 4; i++) {
        FpPartMemo *e = &fp->part_memo[(home + i) & (FP_PART_MEMO - 1)];
        if (e->gen != fp->memo_gen) {
            return NULL;
        }
        if (part_memo_fits(fp, e, v, depth)) {
            m = e;
            break;
        }
    }
    if (m == NULL) {
        return NULL;
    }
    if (m->slot < fp->carried_parts) {
        FpMemoTag tag = fp->memo_tags[m - fp->part_memo];
        if (tag == 0 || part_tag(fp, v) != tag) {
            return NULL; /* met before this callback: not known to be the same object */
        }
    }
    const FpPart *first = &fp->parts[m->slot];
    int count = first->next - m->slot;
    if (fp->nparts + count > FP_MAX_PARTS) {
        return NULL;
    }
    if (m->margin_rel != INT32_MAX && w->budget + m->margin_rel < 0) {
        return NULL;
    }
    for (int i = 0; i < w->npath; i++) {
        for (int k = 0; k < count; k++) {
            if (first[k].ptr == w->path[i]) {
                return NULL;
            }
        }
    }
    return m;
}

/* What walk_part would do for the part `m` remembers, met at `depth`: its hash folded in, its
 * budget taken, its entries (and its own parts') appended to fp->parts as they were, moved to
 * this budget and this depth. */
static void
part_memo_copy(Walk *w, const FpPartMemo *m, int depth, FpPart *out)
{
    Fingerprinter *fp = w->fp;
    int count = fp->parts[m->slot].next - m->slot, base = fp->nparts, shift = base - m->slot;
    int deeper = depth - m->depth;
    Py_ssize_t moved = w->budget - fp->parts[m->slot].budget_in;
    memcpy(&fp->parts[base], &fp->parts[m->slot], (size_t)count * sizeof(FpPart));
    for (int k = base; k < base + count; k++) {
        fp->parts[k].next += shift;
        fp->parts[k].depth += deeper;
        fp->parts[k].budget_in += moved;
        fp->parts[k].budget_out += moved;
    }
    if (depth + m->reach > w->deepest) {
        w->deepest = depth + m->reach;
    }
    fp->nparts += count;
    const FpPart *part = &fp->parts[base];
    w->h = mix(w->h, part->content);
    w->ids = mix(w->ids, m->ids);
    if (m->min_ref_rel != FP_MAX_PATH && w->npath + m->min_ref_rel < w->min_ref) {
        w->min_ref = w->npath + m->min_ref_rel;
    }
    if (m->margin_rel != INT32_MAX && w->budget + m->margin_rel < w->min_margin) {
        w->min_margin = w->budget + m->margin_rel;
    }
    w->budget = part->budget_out;
    fp->part_memo_hits++;
    fp->part_memo_round_hits++;
    if (out != NULL) {
        *out = *part;
    }
}

static void
part_memo_add(Walk *w, PyObject *v, int depth, int slot, int npath_in, Py_ssize_t budget_in,
              int reach, int any_depth)
{
    Fingerprinter *fp = w->fp;
    Py_ssize_t margin = w->min_margin == PY_SSIZE_T_MAX ? INT32_MAX : w->min_margin - budget_in;
    if (margin >= INT32_MAX || margin < -INT32_MAX) {
        return; /* more than a budget holds: not remembered */
    }
    size_t home = part_memo_home(v);
    for (size_t i = 0; i < 4; i++) {
        FpPartMemo *e = &fp->part_memo[(home + i) & (FP_PART_MEMO - 1)];
        if (e->gen != fp->memo_gen) {
            e->ptr = v;
            e->gen = fp->memo_gen;
            e->depth = (int8_t)depth;
            e->reach = (int8_t)reach;
            e->any_depth = (int8_t)any_depth;
            e->slot = (int16_t)slot;
            e->min_ref_rel = (int8_t)(w->min_ref == FP_MAX_PATH ? FP_MAX_PATH : w->min_ref - npath_in);
            e->margin_rel = (int32_t)margin;
            e->ids = w->ids;
            fp->memo_tags[e - fp->part_memo] = 0; /* until fp_tag_fresh */
            if (fp->nfresh < FP_FRESH_MEMOS) {
                fp->fresh[fp->nfresh++] = (int16_t)(e - fp->part_memo);
            }
            return;
        }
    }
}

static int
walk_part(Walk *w, PyObject *v, int depth, FpPart *out)
{
    /* A part is hashed on its own, from a seed, and its hash is then folded into its parent's:
     * so each part's fingerprint is known at the end of one walk (the encoder shares unchanged
     * parts by it), and equals what a walk of that part alone gives (fp_subtree). */
    Fingerprinter *fp = w->fp;
    /* Only parts with parts of their own can be worth a copy: not one whose items the depth
     * limit cuts. The value itself is one too: another value of the same callback may hold it,
     * or be held by it (`v1`, `bodies`). */
    int memo = w->memo && depth < fp->max_depth - 1;
    if (memo) {
        fp->part_memo_round_parts++;
        FpPartMemo *m = part_memo_find(w, v, depth);
        if (m != NULL) {
            part_memo_copy(w, m, depth, out);
            return 1;
        }
    }
    uint64_t h0 = w->h, ids0 = w->ids;
    int min_ref0 = w->min_ref, npath_in = w->npath;
    int deepest0 = w->deepest, secret_pairs0 = w->secret_pairs;
    w->deepest = depth;
    Py_ssize_t margin0 = w->min_margin, budget_in = w->budget;
    int slot = w->log && fp->nparts < FP_MAX_PARTS ? fp->nparts++ : -1;
    /* Seeded without the depth: the same part reads the same at any depth where the depth limit
     * cuts nothing in it (a cut is hashed as one: container_room), and is shared across depths
     * (part_at_another_depth). */
    w->h = mix(0x9E6C63D0676A9A99ULL, *(const uint64_t *)fp->rotations.buf);
    w->ids = 0;
    w->min_ref = FP_MAX_PATH;
    w->min_margin = PY_SSIZE_T_MAX;
    PyTypeObject *tp = Py_TYPE(v);
    int r = tp == &PyList_Type || tp == &PyTuple_Type ? walk_sequence(w, v, depth)
            : tp == &PyDict_Type                     ? walk_dict(w, v, depth)
                                                     : walk_object(w, v, depth);
    /* A part the budget cut nowhere is encoded alike with any budget that cuts it nowhere: the
     * same part after a sibling grew is still the same. */
    uint64_t content = mix(w->h, w->min_margin < 0 ? (uint64_t)budget_in : 0x5bd1e995ULL);
    uint64_t both = mix(content, w->ids);
    FpPart part = {
        .ptr = v,
        .depth = depth,
        .budget_in = budget_in,
        .budget_out = w->budget,
        /* Not shared: a part that refers back to a node above it depends on the path. */
        .fp = r > 0 && w->min_ref >= npath_in ? (both ? both : 1) : 0,
        .content = content,
        .next = fp->nparts,
    };
    if (slot >= 0) {
        fp->parts[slot] = part;
        /* Remembered while every one of its own parts has an entry (the log did not fill up),
         * if a copy can stand for it elsewhere in the walk (part_memo_find). */
        if (memo && part.fp != 0 && w->min_margin >= 0 && fp->nparts < FP_MAX_PARTS) {
            int any_depth = w->deepest < fp->max_depth && w->secret_pairs == secret_pairs0;
            part_memo_add(w, v, depth, slot, npath_in, budget_in, w->deepest - depth, any_depth);
        }
    }
    w->deepest = w->deepest > deepest0 ? w->deepest : deepest0;
    if (out != NULL) {
        *out = part;
    }
    w->h = mix(h0, content);
    w->ids = mix(ids0, w->ids);
    w->min_ref = w->min_ref < min_ref0 ? w->min_ref : min_ref0;
    w->min_margin = w->min_margin < margin0 ? w->min_margin : margin0;
    return r;
}

/* Whether the `__dict__` attribute the encoder reads, on the class at `i` in the MRO of `tp`,
 * is the plain one that PyObject_GenericGetDict implements, not a C extension's own getter. */
static int
plain_dict_at(Fingerprinter *fp, PyTypeObject *tp, long i)
{
    PyObject *mro = tp->tp_mro;
    if (i < 0 || mro == NULL || !PyTuple_Check(mro) || i >= PyTuple_GET_SIZE(mro)) {
        return 0;
    }
    PyObject *dict = PyType_GetDict((PyTypeObject *)PyTuple_GET_ITEM(mro, i));
    PyObject *descr = dict ? PyDict_GetItemString(dict, "__dict__") : NULL;
    /* A Python class's getter, or a C class's that is PyObject_GenericGetDict itself (io
     * objects, through _io._IOBase): both give what PyObject_GenericGetDict reads. */
    getter get = descr != NULL && Py_IS_TYPE(descr, &PyGetSetDescr_Type)
                     ? ((PyGetSetDescrObject *)descr)->d_getset->get
                     : NULL;
    int plain = get != NULL
                && ((void *)get == fp->subtype_dict_get || get == PyObject_GenericGetDict);
    Py_XDECREF(dict);
    return plain;
}

/* Py_AUDIT_READ (3.12; READ_RESTRICTED on 3.11): reading the member raises an audit event. */
#define FP_MEMBER_AUDIT_READ 2

/* `members`: which member types are read: 0 Py_T_OBJECT_EX slots only (a Python class's), 1
 * also Py_T_OBJECT, 2 also a C class's bool, int and Py_ssize_t members (FpSlot).
 * The slot layout of an FP_WALK_SLOTTED or FP_WALK_EXCEPTION class (`SnapshotEncoder.
 * walk_slots`) into *out: nslots -1 when the walk cannot read it (a slot that is not a plain
 * object slot of this class, a `__dict__` that is not the plain one). Only heap classes are
 * asked, and the builtin exceptions, whose C fields (`StopIteration.value`, `OSError.errno`...)
 * are Py_T_OBJECT members at fixed offsets. 0, or -1 with an exception set. */
static int
slot_layout(Fingerprinter *fp, PyTypeObject *tp, FpTypeEntry *out, int members)
{
    if (fp->walk_slots == NULL
        || !(PyType_HasFeature(tp, Py_TPFLAGS_HEAPTYPE)
             || PyType_FastSubclass(tp, Py_TPFLAGS_BASE_EXC_SUBCLASS))) {
        return 0;
    }
    fp->python_calls++;
    PyObject *answer = PyObject_CallOneArg(fp->walk_slots, (PyObject *)tp);
    if (answer == NULL) {
        return -1;
    }
    PyObject *slots;
    long dict_index;
    if (!PyTuple_CheckExact(answer) || PyTuple_GET_SIZE(answer) != 2
        || ((dict_index = PyLong_AsLong(PyTuple_GET_ITEM(answer, 0))) == -1
            && PyErr_Occurred())
        || !PyTuple_CheckExact(slots = PyTuple_GET_ITEM(answer, 1))) {
        PyErr_Clear();
        Py_DECREF(answer);
        return 0;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(slots);
    int ok = dict_index == -1 || plain_dict_at(fp, tp, dict_index);
    FpSlot *found = ok ? PyMem_Calloc(n ? (size_t)n : 1, sizeof *found) : NULL;
    Py_ssize_t k = 0;
    for (; found != NULL && k < n; k++) {
        PyObject *item = PyTuple_GET_ITEM(slots, k);
        PyObject *name, *descr;
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2
            || !PyUnicode_CheckExact(name = PyTuple_GET_ITEM(item, 0))
            || !Py_IS_TYPE(descr = PyTuple_GET_ITEM(item, 1), &PyMemberDescr_Type)) {
            break;
        }
        PyMemberDescrObject *md = (PyMemberDescrObject *)descr;
        const struct PyMemberDef *m = md->d_member;
        int typed = m->type == FP_MEMBER_BOOL || fp_int_member(m->type);
        if ((m->type != Py_T_OBJECT_EX && !(members >= 1 && m->type == FP_MEMBER_OBJECT)
             && !(members >= 2 && typed))
            || (m->flags & FP_MEMBER_AUDIT_READ)
            || !PyType_IsSubtype(tp, PyDescr_TYPE(descr))) {
            break;
        }
        found[k].name = Py_NewRef(name);
        found[k].offset = m->offset;
        found[k].type = m->type;
    }
    Py_DECREF(answer);
    if (found == NULL || k < n) {
        for (Py_ssize_t j = 0; found != NULL && j < k; j++) {
            Py_DECREF(found[j].name);
        }
        PyMem_Free(found);
        if (ok && found == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        return 0;
    }
    out->has_dict = dict_index != -1;
    out->nslots = n;
    out->slots = found;
    return 0;
}

/* Ask the encoder about the class the walk stopped at, and cache the answer. 0 or -1. */
static int
classify_type(Fingerprinter *fp)
{
    PyTypeObject *tp = fp->miss_type;
    fp->miss_type = NULL;
    fp->python_calls++;
    fp->classes_asked++;
    PyObject *index = PyObject_CallOneArg(fp->dict_index, (PyObject *)tp);
    long i = index == NULL ? -1 : PyLong_AsLong(index);
    Py_XDECREF(index);
    if (PyErr_Occurred()) {
        Py_DECREF(tp);
        return -1;
    }
    int kind = FP_NOT_WALKED;
    FpTypeEntry layout = {0};
    layout.nslots = -1;
    /* A container kind only where the class's C layout is that container's (its flags). */
    if (i == FP_WALK_LIST && PyType_HasFeature(tp, Py_TPFLAGS_LIST_SUBCLASS)) {
        kind = FP_LIST;
    }
    else if (i == FP_WALK_TUPLE && PyType_HasFeature(tp, Py_TPFLAGS_TUPLE_SUBCLASS)) {
        kind = FP_TUPLE;
    }
    else if (i == FP_WALK_DICT && PyType_HasFeature(tp, Py_TPFLAGS_DICT_SUBCLASS)) {
        kind = FP_DICT;
    }
    else if (i == FP_WALK_SET
             && (PyType_IsSubtype(tp, &PySet_Type) || PyType_IsSubtype(tp, &PyFrozenSet_Type))) {
        kind = FP_SET;
    }
    else if (i == FP_WALK_OPAQUE) {
        kind = FP_OPAQUE; /* fp_opaque gives up on a C layout it does not know */
    }
    else if (i == FP_WALK_OPAQUE_TYPE) {
        kind = FP_OPAQUE_TYPE;
    }
    else if (i == FP_WALK_DATETIME) {
        /* Met in a value, so the program imported datetime: importing its C API here runs no
         * module code. */
        if (PyDateTimeAPI == NULL) {
            PyDateTime_IMPORT;
            PyErr_Clear();
        }
        kind = PyDateTimeAPI != NULL
                       && (tp == PyDateTimeAPI->DateType || tp == PyDateTimeAPI->DateTimeType
                           || tp == PyDateTimeAPI->TimeType || tp == PyDateTimeAPI->DeltaType)
                   ? FP_DATETIME
                   : FP_NOT_WALKED;
    }
    else if (i == FP_WALK_CREPR) {
        /* The class itself shows its own C repr (walk_kind says so only for the classes the
         * encoder knows, never a subclass, whose repr may be Python code). */
        kind = tp->tp_repr != NULL ? FP_CREPR : FP_NOT_WALKED;
        if (kind == FP_CREPR && fp->decimal_type == NULL && decimal_layout_known(tp)) {
            fp->decimal_type = (PyTypeObject *)Py_NewRef(tp);
        }
    }
    else if (i == FP_WALK_NAMEDTUPLE && fp->walk_fields != NULL
             && PyType_HasFeature(tp, Py_TPFLAGS_TUPLE_SUBCLASS)) {
        fp->python_calls++;
        PyObject *fields = PyObject_CallOneArg(fp->walk_fields, (PyObject *)tp);
        if (fields == NULL) {
            Py_DECREF(tp);
            return -1;
        }
        int ok = PyTuple_CheckExact(fields);
        for (Py_ssize_t k = 0; ok && k < PyTuple_GET_SIZE(fields); k++) {
            ok = PyUnicode_CheckExact(PyTuple_GET_ITEM(fields, k));
        }
        if (ok) {
            layout.fields = fields;
            kind = FP_NAMEDTUPLE;
        }
        else {
            Py_DECREF(fields);
        }
    }
    else if (i == FP_WALK_UUID) {
        if (slot_layout(fp, tp, &layout, 0) < 0) {
            Py_DECREF(tp);
            return -1;
        }
        kind = layout.nslots == 1 && !layout.has_dict ? FP_UUID : FP_NOT_WALKED;
    }
    else if (i == FP_WALK_CREPR_CHECKED) {
        if (slot_layout(fp, tp, &layout, 1) < 0) {
            Py_DECREF(tp);
            return -1;
        }
        kind = layout.nslots == 1 && !layout.has_dict && tp->tp_repr != NULL ? FP_CREPR_CHECKED
                                                                               : FP_NOT_WALKED;
    }
    else if (i == FP_WALK_SOCKET) {
        kind = socket_class(fp) && PyType_IsSubtype(tp, fp->socket_type) ? FP_SOCKET
                                                                           : FP_NOT_WALKED;
    }
    else if (i == FP_WALK_LOCK) {
        kind = lock_class(fp) && tp == fp->lock_type ? FP_LOCK : FP_NOT_WALKED;
    }
    else if (i == FP_WALK_EXCEPTION) {
        /* Its instance dict through BaseException's `__dict__` (PyObject_GenericGetDict), then
         * its member slots, object members only (a C int member's value is not one). */
        int exc = tp->tp_dictoffset != 0 && PyType_FastSubclass(tp, Py_TPFLAGS_BASE_EXC_SUBCLASS);
        if (exc && slot_layout(fp, tp, &layout, 1) < 0) {
            Py_DECREF(tp);
            return -1;
        }
        kind = exc && layout.nslots >= 0 && layout.has_dict ? FP_EXCEPTION : FP_NOT_WALKED;
    }
    else if (i == FP_WALK_GENERIC_DICT) {
        /* A C class whose dict PyObject_GenericGetDict reads, as FP_PLAIN reads every dict. */
        kind = tp->tp_dictoffset != 0 ? FP_PLAIN : FP_NOT_WALKED;
    }
    else if (i == FP_WALK_DEQUE) {
        kind = fp->deque_type != NULL && PyType_IsSubtype(tp, fp->deque_type) ? FP_DEQUE
                                                                               : FP_NOT_WALKED;
    }
    else if (i == FP_WALK_PATH) {
        if (slot_layout(fp, tp, &layout, 0) < 0) {
            Py_DECREF(tp);
            return -1;
        }
        kind = layout.nslots >= 1 && !layout.has_dict ? FP_PATH : FP_NOT_WALKED;
    }
    else if (i == FP_WALK_SLOTTED) {
        if (slot_layout(fp, tp, &layout, 2) < 0) {
            Py_DECREF(tp);
            return -1;
        }
        kind = layout.nslots >= 0 ? FP_SLOTTED : FP_NOT_WALKED;
    }
    else if (i >= 0) {
        kind = plain_dict_at(fp, tp, i) ? FP_PLAIN : FP_NOT_WALKED;
    }
    PyObject *name = NULL;
    if (kind != FP_NOT_WALKED && fp->class_name != NULL) {
        name = PyObject_CallOneArg(fp->class_name, (PyObject *)tp);
        if (name == NULL) {
            type_entry_reset(&layout);
            Py_DECREF(tp);
            return -1;
        }
    }
    unsigned int version = tp->tp_version_tag;
    if (version != 0) {
        FpTypeEntry *e = type_entry_to_fill(fp, tp);
        type_entry_reset(e);
        e->type = tp;
        e->version = version;
        e->kind = kind;
        e->name = name;
        if (kind == FP_SLOTTED || kind == FP_EXCEPTION || kind == FP_UUID || kind == FP_PATH
            || kind == FP_CREPR_CHECKED) { /* the entry takes the layout */
            e->has_dict = layout.has_dict;
            e->nslots = layout.nslots;
            e->slots = layout.slots;
            layout.slots = NULL;
            layout.nslots = 0;
        }
        e->fields = layout.fields; /* FP_NAMEDTUPLE's, or NULL */
        layout.fields = NULL;
    }
    else {
        Py_XDECREF(name);
    }
    type_entry_reset(&layout);
    Py_DECREF(tp);
    return 0;
}

int
fp_type_kind(Fingerprinter *fp, PyTypeObject *tp, PyObject **name)
{
    int kind = type_kind(fp, tp);
    if (kind < 0) { /* not classified yet: ask the encoder */
        if (fp->miss_type != tp) {
            Py_CLEAR(fp->miss_type);
            return FP_NOT_WALKED;
        }
        if (classify_type(fp) < 0) {
            return FP_NOT_WALKED;
        }
        kind = type_kind(fp, tp);
        Py_CLEAR(fp->miss_type); /* the class changed meanwhile: not mine */
    }
    if (kind <= 0) {
        return FP_NOT_WALKED;
    }
    FpTypeEntry *e = type_entry(fp, tp, tp->tp_version_tag);
    *name = e != NULL ? e->name : NULL;
    return *name != NULL ? kind : FP_NOT_WALKED;
}

/* Ask the redactor about the name the walk stopped at (it caches the answer). 0 or -1. */
static int
classify_name(Fingerprinter *fp)
{
    PyObject *name = fp->miss_name;
    fp->miss_name = NULL;
    fp->python_calls++;
    PyObject *answer = PyObject_CallOneArg(fp->is_secret, name);
    Py_DECREF(name);
    Py_XDECREF(answer);
    return answer == NULL ? -1 : 0;
}

/* Rounds of the part memo's use, in walks: while on, it stays on for the next round if copies
 * were at least 1/PART_MEMO_SHARE of the parts it looked up in the round; off, it is tried for
 * a round again after PART_MEMO_REST rounds. Measured: recording richards, whose values share
 * no part, cost 3% more with the memo on at every walk; nbody 13% less, deltablue 25% less. */
#define PART_MEMO_ROUND 256
#define PART_MEMO_REST 16
#define PART_MEMO_SHARE 32

static int
part_memo_round(Fingerprinter *fp)
{
    if (--fp->part_memo_walks_left > 0) {
        return fp->part_memo_on;
    }
    if (fp->part_memo_on) {
        fp->part_memo_on = fp->part_memo_round_hits * PART_MEMO_SHARE >= fp->part_memo_round_parts
                           && fp->part_memo_round_hits > 0;
        fp->part_memo_walks_left = PART_MEMO_ROUND * (fp->part_memo_on ? 1 : PART_MEMO_REST);
    }
    else {
        fp->part_memo_on = 1;
        fp->part_memo_walks_left = PART_MEMO_ROUND;
    }
    fp->part_memo_round_parts = fp->part_memo_round_hits = 0;
    return fp->part_memo_on;
}

/* Before a walk: the log of parts goes on if this walk is in the same callback as the log's
 * first, no Python code ran since (a call into Python lets other threads run, and gives out
 * serials: the fingerprinter's own calls, fp_epoch, and the tracer's, outside_calls), and half
 * the log is free; else a new log begins, and the part memo's entries of the old one are
 * dropped with it. */
/* What must not have moved for the log to go on (log_begin, fp_carry_into): the identity map's
 * epoch, the tracer's calls into Python, and the collections' count (a finalizer is program
 * code: run by an allocation on 3.11, between two instructions since 3.12, where it matters to
 * a carried log only). *lasts: whether a log can last at all (3.11 needs the count). */
static uint64_t
log_epoch_now(const Fingerprinter *fp, int *lasts)
{
    uint64_t epoch = fp_epoch(fp) + fp->outside_calls;
    epoch += fp->gc_runs != NULL ? (uint64_t)(unsigned char)*fp->gc_runs << 56 : 0;
#if PY_VERSION_HEX < 0x030C0000
    *lasts = fp->gc_runs != NULL;
#else
    *lasts = 1;
#endif
    return epoch;
}

int
fp_carry_into(Fingerprinter *fp)
{
    int lasts;
    uint64_t epoch = log_epoch_now(fp, &lasts);
    if (!lasts || fp->in_event <= 0 || fp->log_epoch != epoch || fp->nparts > FP_MAX_PARTS / 2) {
        return 0;
    }
    fp->log_event = fp->event_gen; /* this callback's now, walks or not */
    fp->carried_parts = fp->callback_parts = fp->nparts; /* its memos are checked */
    return 1;
}

static void
log_begin(Fingerprinter *fp)
{
    int lasts;
    uint64_t epoch = log_epoch_now(fp, &lasts);
    if (lasts && fp->in_event > 0 && fp->log_event == fp->event_gen && fp->log_epoch == epoch
        && fp->nparts <= FP_MAX_PARTS / 2) {
        return;
    }
    fp->carried_parts = fp->callback_parts = 0;
    fp->nparts = 0;
    fp->memo_gen++;
    fp->log_event = fp->event_gen;
    fp->log_epoch = epoch;
}

int
fp_of(Fingerprinter *fp, PyObject *v, uint64_t *out)
{
    if (!fp->enabled) {
        return 0;
    }
    for (int attempt = 0; attempt < FP_MAX_RETRIES; attempt++) {
        Walk w;
        w.fp = fp;
        /* The identity map's rotation count: an encoding from before a rotation may hold ids
         * the map has since forgotten, so a rotation makes every fingerprint differ once (and
         * the value is encoded again, which renews its ids). */
        w.h = mix(0x2545F4914F6CDD1DULL, *(const uint64_t *)fp->rotations.buf);
        w.ids = 0;
        w.budget = fp->max_nodes;
        w.npath = 0;
        w.min_ref = FP_MAX_PATH;
        w.min_margin = PY_SSIZE_T_MAX;
        w.log = fp->parts != NULL;
        w.memo = w.log && fp->part_memo != NULL && part_memo_round(fp);
        w.deepest = 0;
        w.secret_pairs = 0;
        log_begin(fp);
        fp->parts_gen++;
        fp->parts_root = NULL;
        int root_slot = fp->nparts;
        int r = walk_value(&w, v, 0);
        if (fp->miss_type == NULL && fp->miss_name == NULL) {
            if (r > 0) {
                uint64_t both = mix(w.h, w.ids);
                *out = both ? both : 1;
                fp->last_content = w.h;
                fp->last_cost = fp->max_nodes - w.budget;
                fp->parts_root = v;
                fp->parts_root_slot = root_slot;
            }
            return r;
        }
        if (r < 0 || (fp->miss_type != NULL && classify_type(fp) < 0)
            || (fp->miss_name != NULL && classify_name(fp) < 0)) {
            Py_CLEAR(fp->miss_type);
            Py_CLEAR(fp->miss_name);
            return -1;
        }
    }
    return 0;
}

int
fp_subtree(Fingerprinter *fp, PyObject *v, int depth, Py_ssize_t budget, void *const *path,
           int npath, uint64_t *out, uint64_t *content, Py_ssize_t *after)
{
    PyTypeObject *tp = Py_TYPE(v);
    if (!fp->enabled || npath < 0 || npath > FP_MAX_PATH
        || (tp != &PyList_Type && tp != &PyTuple_Type && tp != &PyDict_Type
            && !PyType_HasFeature(tp, Py_TPFLAGS_HEAPTYPE))) {
        return 0;
    }
    Walk w;
    w.fp = fp;
    w.h = 0;
    w.ids = 0;
    w.budget = budget;
    w.npath = npath;
    w.min_ref = FP_MAX_PATH;
    w.min_margin = PY_SSIZE_T_MAX;
    w.log = 0; /* fp->parts is the last fp_of's, which the encoder may be reading */
    w.memo = 0;
    w.deepest = depth;
    w.secret_pairs = 0;
    memcpy(w.path, path, (size_t)npath * sizeof(void *));
    FpPart part;
    int r = walk_part(&w, v, depth, &part);
    if (fp->miss_type != NULL || fp->miss_name != NULL) {
        /* Something not classified yet: the encoder classifies what it meets itself. */
        Py_CLEAR(fp->miss_type);
        Py_CLEAR(fp->miss_name);
        return 0;
    }
    if (r <= 0 || part.fp == 0) {
        return 0; /* gave up, or a back reference to a node above: depends on the path */
    }
    *out = part.fp;
    *content = part.content;
    *after = part.budget_out;
    return 1;
}

/* ------------------------------------------------------------------------------------------- */
/* The value cache                                                                             */

/* The two entries `v` encoded at `depth` may sit in (a two-way set: two values whose slots
 * collide both stay). A value and a part of another value are kept apart, so that an object both
 * bound to a name and held by another object does not evict itself: at depth 0 a value's own
 * entry, under fp_of's fingerprint; at depth 1 and below a part's, under walk_part's, which does
 * not depend on the depth (a value is remembered as a part too, at depth 1's place: enc_part). */
static inline FpValueEntry *
value_set(Fingerprinter *fp, PyObject *v, int depth)
{
    return &fp->values[fp_slot_of((const char *)v + 4093 * depth, FP_VALUE_CACHE) & ~(size_t)1];
}

/* The entry holding `v` at `depth`, or NULL. */
static inline FpValueEntry *
value_entry(Fingerprinter *fp, PyObject *v, int depth)
{
    FpValueEntry *set = value_set(fp, v, depth);
    return set[0].obj == (void *)v ? &set[0] : set[1].obj == (void *)v ? &set[1] : NULL;
}

/* Where to remember `v` at `depth`: its own entry, else a free one, else the set's older entry
 * (the newer one is kept in way 0: entries move down as new ones arrive). */
static FpValueEntry *entry_for_new(Fingerprinter *fp, PyObject *v, int depth);

static void
entry_clear(Fingerprinter *fp, FpValueEntry *e)
{
    fp->cached_nodes -= e->cost;
    e->obj = NULL;
    e->type = NULL;
    e->fp = 0;
    e->cost = 0;
    Py_CLEAR(e->ref);
    Py_CLEAR(e->venc);
}

PyObject *
fp_cached(Fingerprinter *fp, PyObject *v, uint64_t f)
{
    return fp_cached_at(fp, v, f, 0);
}

/* The entry of `v` as a part at a depth other than `depth`, under the fingerprint `f`, or NULL.
 * A part's fingerprint does not depend on its depth (walk_part seeds it without it, and marks
 * what the depth limit cuts), so an equal one means an equal venc: nbody's bodies are met at
 * depth 1 in `bodies` and 2 in `pairs`, their velocity lists at 2 and 3, and each changed one
 * is encoded once per line instead of once per depth. */
static FpValueEntry *
part_at_another_depth(Fingerprinter *fp, PyObject *v, uint64_t f, int depth)
{
    for (int d = 1; d < fp->max_depth; d++) {
        FpValueEntry *e = d != depth ? value_entry(fp, v, d) : NULL;
        if (e != NULL && e->type == Py_TYPE(v) && e->fp == f) {
            fp->shared_across_depths++;
            return e;
        }
    }
    return NULL;
}

/* The venc of entry `e` if it is still `v`'s: the object the entry was made for is alive and is
 * `v` (not a new object at its address, which the identity map would give a new id). */
static PyObject *
entry_venc(FpValueEntry *e, PyObject *v)
{
    if (e->ref != NULL) {
#if PY_VERSION_HEX >= 0x030D0000
        PyObject *alive = NULL;
        if (PyWeakref_GetRef(e->ref, &alive) < 0) {
            PyErr_Clear();
            return NULL;
        }
        Py_XDECREF(alive);
#else
        PyObject *alive = PyWeakref_GET_OBJECT(e->ref);
#endif
        if (alive != v) {
            return NULL;
        }
    }
    return Py_NewRef(e->venc);
}

PyObject *
fp_cached_at(Fingerprinter *fp, PyObject *v, uint64_t f, int depth)
{
    if (fp->values == NULL || f == 0) {
        return NULL;
    }
    FpValueEntry *e = value_entry(fp, v, depth);
    if (e != NULL && e->type == Py_TYPE(v) && e->fp == f) {
        return entry_venc(e, v);
    }
    /* At depth 0 the entry is a value's own, under fp_of's fingerprint: not a part's. */
    e = depth > 0 ? part_at_another_depth(fp, v, f, depth) : NULL;
    return e != NULL ? entry_venc(e, v) : NULL;
}

PyObject *
fp_cached_part(Fingerprinter *fp, PyObject *v, uint64_t f)
{
    if (fp->values == NULL || f == 0) {
        return NULL;
    }
    FpValueEntry *e = part_at_another_depth(fp, v, f, 0);
    return e != NULL ? entry_venc(e, v) : NULL;
}

int
fp_remember(Fingerprinter *fp, PyObject *v, uint64_t f, PyObject *venc)
{
    return fp_remember_at(fp, v, f, venc, 0, fp->last_cost);
}

int
fp_remember_at(Fingerprinter *fp, PyObject *v, uint64_t f, PyObject *venc, int depth,
               Py_ssize_t nodes)
{
    PyTypeObject *tp = Py_TYPE(v);
    if (fp->values == NULL || f == 0 || tp == &PyGen_Type || tp == &PyCoro_Type
        || tp == &PyAsyncGen_Type) {
        /* Not a generator's: most are made, run and dropped within a line (`sum(x for x in
         * xs)`), and would only push long-lived entries out of the bounded cache. */
        return 0;
    }
    FpValueEntry *e = value_entry(fp, v, depth);
    Py_ssize_t cost = nodes + 1;
    if (fp->cached_nodes - (e != NULL ? e->cost : 0) + cost > FP_MAX_CACHED_NODES) {
        fp->cache_full++;
        return 0; /* the cache holds enough: keep memory bounded */
    }
    PyObject *ref = NULL;
    if (Py_TYPE(v)->tp_weaklistoffset != 0) {
        ref = PyWeakref_NewRef(v, NULL);
        if (ref == NULL) {
            PyErr_Clear();
            return 0;
        }
    }
    e = entry_for_new(fp, v, depth);
    entry_clear(fp, e);
    e->obj = v;
    e->type = Py_TYPE(v);
    e->ref = ref;
    e->fp = f;
    e->cost = cost;
    e->venc = Py_NewRef(venc);
    fp->cached_nodes += cost;
    return 0;
}

static FpValueEntry *
entry_for_new(Fingerprinter *fp, PyObject *v, int depth)
{
    FpValueEntry *set = value_set(fp, v, depth);
    FpValueEntry *own = value_entry(fp, v, depth);
    if (own != NULL) {
        return own;
    }
    if (set[0].obj == NULL) {
        return &set[0];
    }
    if (set[1].obj != NULL) {
        entry_clear(fp, &set[1]); /* the older one goes */
    }
    set[1] = set[0]; /* moved, references and all */
    memset(&set[0], 0, sizeof(set[0]));
    return &set[0];
}

/* ------------------------------------------------------------------------------------------- */
/* Set-up                                                                                      */

/* `count` counters the identity map keeps in an array('Q'), read in place through `view`. */
static int
get_counters(PyObject *array, Py_buffer *view, Py_ssize_t count, const char *what)
{
    if (PyObject_GetBuffer(array, view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    if (view->len != count * (Py_ssize_t)sizeof(uint64_t)) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_TypeError, "%s must be an array('Q') of %zd", what, count);
        return -1;
    }
    return 0;
}

static int
get_int(PyObject *rule, const char *key, Py_ssize_t *out)
{
    PyObject *x = PyDict_GetItemString(rule, key);
    if (x == NULL) {
        PyErr_Format(PyExc_KeyError, "fingerprint rule needs %s", key);
        return -1;
    }
    *out = PyLong_AsSsize_t(x);
    return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

/* Where object_serial finds serials: the identity map's weak reference class (`identity_ref`,
 * whose `serial` slot holds the serial), and the callback its references carry
 * (`identity_drop`). Without them serials are not read (0 returned); -1 on error. */
static int
serial_init(Fingerprinter *fp, PyObject *rule)
{
    PyObject *ref_type = PyDict_GetItemString(rule, "identity_ref");
    PyObject *drop = PyDict_GetItemString(rule, "identity_drop");
    PyObject *entries = PyDict_GetItemString(rule, "identity_entries");
    PyObject *changes = PyDict_GetItemString(rule, "identity_entry_changes");
    if (ref_type == NULL || drop == NULL || !PyType_Check(ref_type) || entries == NULL
        || !PyDict_CheckExact(entries) || changes == NULL) {
        return 0;
    }
    PyObject *dict = PyType_GetDict((PyTypeObject *)ref_type);
    PyObject *descr = dict ? PyDict_GetItemString(dict, "serial") : NULL;
    if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type)
        || ((PyMemberDescrObject *)descr)->d_member->type != Py_T_OBJECT_EX) {
        Py_XDECREF(dict);
        PyErr_SetString(PyExc_TypeError, "identity_ref needs a `serial` slot");
        return -1;
    }
    fp->serial_offset = ((PyMemberDescrObject *)descr)->d_member->offset;
    PyObject *oid = PyDict_GetItemString(dict, "oid");
    fp->oid_offset = oid != NULL && Py_IS_TYPE(oid, &PyMemberDescr_Type)
                             && ((PyMemberDescrObject *)oid)->d_member->type == Py_T_OBJECT_EX
                         ? ((PyMemberDescrObject *)oid)->d_member->offset
                         : 0; /* 0: new weak entries are made by the map alone */
    Py_DECREF(dict);
    if (get_counters(changes, &fp->entry_changes, 3, "identity_entry_changes") < 0) {
        return -1;
    }
    fp->entry_memo = PyMem_Calloc(FP_ENTRY_MEMO, sizeof(FpEntryMemo));
    fp->key_memo = PyMem_Calloc(FP_ENTRY_MEMO, sizeof(FpKeyMemo));
    if (fp->entry_memo == NULL || fp->key_memo == NULL) {
        PyMem_Free(fp->entry_memo);
        PyMem_Free(fp->key_memo);
        fp->entry_memo = NULL;
        fp->key_memo = NULL;
        PyBuffer_Release(&fp->entry_changes);
        PyErr_NoMemory();
        return -1;
    }
    fp->ref_type = Py_NewRef(ref_type);
    fp->ref_callback = Py_NewRef(drop);
    fp->entries = Py_NewRef(entries);
    /* Optional: the map, for new young entries made in C (young_insert, _encode.c). */
    PyObject *map = PyDict_GetItemString(rule, "identity_map");
    if (map != NULL && !fp->entry_changes.readonly) {
        PyObject *lock = PyObject_GetAttrString(map, "_lock");
        PyObject *next = lock != NULL ? PyObject_GetAttrString(map, "_next") : NULL;
        PyObject *limit = next != NULL ? PyObject_GetAttrString(map, "_limit") : NULL;
        Py_ssize_t n = limit != NULL ? PyLong_AsSsize_t(limit) : -1;
        Py_XDECREF(limit);
        if (n < 1) {
            Py_XDECREF(lock);
            Py_XDECREF(next);
            return PyErr_Occurred() ? -1 : 0;
        }
        fp->str_acquire = PyUnicode_InternFromString("acquire");
        fp->str_release = PyUnicode_InternFromString("release");
        fp->str_old = PyUnicode_InternFromString("_old");
        fp->str_young = PyUnicode_InternFromString("_young");
        if (!fp->str_acquire || !fp->str_release || !fp->str_old || !fp->str_young) {
            Py_DECREF(lock);
            Py_DECREF(next);
            return -1;
        }
        fp->identity_map = Py_NewRef(map);
        fp->identity_lock = lock;
        fp->identity_next = next;
        fp->identity_limit = n;
    }
    return 0;
}

/* What fp_encode needs from the rule: `key`, `type_name`, `class_name`, `tags` (a dict of the
 * venc tags by name) and `max_int_digits` (at least 19, so that every int the walk takes is an
 * atom). Without them fp_encode is off (0 returned); -1 on error. */
static int
encoder_init(Fingerprinter *fp, PyObject *rule)
{
    PyObject *key = PyDict_GetItemString(rule, "key");
    PyObject *type_name = PyDict_GetItemString(rule, "type_name");
    PyObject *class_name = PyDict_GetItemString(rule, "class_name");
    PyObject *encode_opaque = PyDict_GetItemString(rule, "encode_opaque");
    PyObject *tags = PyDict_GetItemString(rule, "tags");
    PyObject *digits = PyDict_GetItemString(rule, "max_int_digits");
    if (key == NULL || type_name == NULL || class_name == NULL || encode_opaque == NULL
        || tags == NULL || !PyDict_Check(tags) || digits == NULL) {
        return 0;
    }
    long max_digits = PyLong_AsLong(digits);
    if (max_digits == -1 && PyErr_Occurred()) {
        return -1;
    }
    /* An int of at most this many bits is below 10**(max_digits - 1): the encoder keeps it
     * whole (log2(10) > 3.3219; a bound on the safe side). */
    fp->max_int_bits = max_digits > 19 ? (size_t)((double)(max_digits - 1) * 3.3219) : 0;
    static const char *tag_names[] = {"V_CUT", "V_REDACTED", "V_SEQ", "V_MAP",
                                      "V_OBJ", "V_REF",      "V_OPAQUE"};
    int *tag_slots[] = {&fp->tags.cut, &fp->tags.redacted, &fp->tags.seq,   &fp->tags.map,
                        &fp->tags.obj, &fp->tags.ref,      &fp->tags.opaque};
    for (int i = 0; i < 7; i++) {
        PyObject *x = PyDict_GetItemString(tags, tag_names[i]);
        if (x == NULL) {
            PyErr_Format(PyExc_KeyError, "fingerprint rule tags need %s", tag_names[i]);
            return -1;
        }
        *tag_slots[i] = (int)PyLong_AsLong(x);
        if (PyErr_Occurred()) {
            return -1;
        }
    }
    if (!(fp->names.list = PyUnicode_InternFromString("list"))
        || !(fp->names.tuple = PyUnicode_InternFromString("tuple"))
        || !(fp->names.dict = PyUnicode_InternFromString("dict"))
        || !(fp->names.str = PyUnicode_InternFromString("str"))
        || !(fp->names.bytes = PyUnicode_InternFromString("bytes"))
        || !(fp->names.args = PyUnicode_InternFromString("args"))
        || !(fp->names.ellipsis = PyUnicode_InternFromString("..."))) {
        return -1;
    }
    fp->key = Py_NewRef(key);
    fp->type_name = Py_NewRef(type_name);
    fp->class_name = Py_NewRef(class_name);
    fp->encode_opaque = Py_NewRef(encode_opaque);
    fp->can_encode = max_digits >= 19;
    return 0;
}

int
fp_init(Fingerprinter *fp, PyObject *rule)
{
    memset(fp, 0, sizeof *fp);
    if (rule == NULL || rule == Py_None) {
        return 0; /* not a SnapshotEncoder: every check encodes */
    }
    if (!PyDict_Check(rule)) {
        PyErr_SetString(PyExc_TypeError, "fingerprint rule must be a dict");
        return -1;
    }
    Py_ssize_t depth, items, attrs, nodes, string;
    if (get_int(rule, "max_depth", &depth) < 0 || get_int(rule, "max_items", &items) < 0
        || get_int(rule, "max_attrs", &attrs) < 0 || get_int(rule, "max_nodes", &nodes) < 0
        || get_int(rule, "max_string", &string) < 0) {
        return -1;
    }
    PyObject *dict_index = PyDict_GetItemString(rule, "walk_kind");
    PyObject *secret_cache = PyDict_GetItemString(rule, "secret_cache");
    PyObject *is_secret = PyDict_GetItemString(rule, "is_secret");
    PyObject *rotations = PyDict_GetItemString(rule, "identity_rotations");
    if (dict_index == NULL || secret_cache == NULL || !PyDict_CheckExact(secret_cache)
        || is_secret == NULL || rotations == NULL) {
        PyErr_SetString(PyExc_TypeError, "fingerprint rule needs walk_kind, secret_cache "
                                         "(a dict), is_secret and identity_rotations");
        return -1;
    }

    /* The getter behind `__dict__` of a class made here, to recognise plain classes by. */
    PyObject *cls = PyObject_CallFunction((PyObject *)&PyType_Type, "s()N", "_Plain",
                                          PyDict_New());
    if (cls == NULL) {
        return -1;
    }
    PyObject *dict = PyType_GetDict((PyTypeObject *)cls);
    PyObject *descr = dict ? PyDict_GetItemString(dict, "__dict__") : NULL;
    if (descr != NULL && Py_IS_TYPE(descr, &PyGetSetDescr_Type)) {
        fp->subtype_dict_get = (void *)((PyGetSetDescrObject *)descr)->d_getset->get;
    }
    Py_XDECREF(dict);
    Py_DECREF(cls);
    if (fp->subtype_dict_get == NULL) {
        return 0;
    }
    if (get_counters(rotations, &fp->rotations, 1, "identity_rotations") < 0) {
        return -1;
    }
    fp->values = PyMem_Calloc(FP_VALUE_CACHE, sizeof(FpValueEntry));
    fp->parts = PyMem_Calloc(FP_MAX_PARTS, sizeof(FpPart));
    fp->part_memo = PyMem_Calloc(FP_PART_MEMO, sizeof(FpPartMemo));
    fp->memo_tags = PyMem_Calloc(FP_PART_MEMO, sizeof(FpMemoTag));
    fp->own_levels = PyMem_Calloc(FP_OWN_LEVELS, sizeof(FpOwnLevel)); /* NULL: none kept */
    fp->part_memo_on = 1;
    fp->part_memo_walks_left = PART_MEMO_ROUND;
    if (fp->values == NULL || fp->parts == NULL || fp->part_memo == NULL
        || fp->memo_tags == NULL) {
        PyMem_Free(fp->values);
        PyMem_Free(fp->parts);
        PyMem_Free(fp->part_memo);
        PyMem_Free(fp->memo_tags);
        fp->values = NULL;
        fp->parts = NULL;
        fp->part_memo = NULL;
        fp->memo_tags = NULL;
        PyBuffer_Release(&fp->rotations);
        PyErr_NoMemory();
        return -1;
    }
    if (encoder_init(fp, rule) < 0) {
        PyBuffer_Release(&fp->rotations);
        PyMem_Free(fp->values);
        fp->values = NULL;
        return -1;
    }
    if (serial_init(fp, rule) < 0) {
        PyBuffer_Release(&fp->rotations);
        PyMem_Free(fp->values);
        fp->values = NULL;
        return -1;
    }
    fp->dict_index = Py_NewRef(dict_index);
    fp->walk_slots = Py_XNewRef(PyDict_GetItemString(rule, "walk_slots")); /* optional */
    fp->walk_fields = Py_XNewRef(PyDict_GetItemString(rule, "walk_fields")); /* optional */
    PyObject *deque_type = PyDict_GetItemString(rule, "deque"); /* optional */
    if (deque_type != NULL && PyType_Check(deque_type)
        && ((PyTypeObject *)deque_type)->tp_as_sequence != NULL
        && ((PyTypeObject *)deque_type)->tp_as_sequence->sq_length != NULL
        && ((PyTypeObject *)deque_type)->tp_as_sequence->sq_item != NULL) {
        fp->deque_type = (PyTypeObject *)Py_NewRef(deque_type);
    }
    PyObject *one = PyLong_FromLong(1);
    fp->int_64 = PyLong_FromLong(64);
    PyObject *shift = PyLong_FromLong(128);
    fp->int_2_128 = one && shift ? PyNumber_Lshift(one, shift) : NULL;
    Py_XDECREF(one);
    Py_XDECREF(shift);
    if (fp->int_64 == NULL || fp->int_2_128 == NULL) {
        return -1;
    }
    if (!(fp->str_qualname = PyUnicode_InternFromString("__qualname__"))
        || !(fp->str_name = PyUnicode_InternFromString("__name__"))
        || !(fp->str_enum_name = PyUnicode_InternFromString("_name_"))
        || !(fp->str_enum_value = PyUnicode_InternFromString("_value_"))
        || !(fp->str_self = PyUnicode_InternFromString("__self__"))) {
        return -1;
    }
    /* The class of bound slot wrappers (`None.__repr__`): not exported on every Python. */
    PyObject *wrapper = PyObject_GetAttrString(Py_None, "__repr__");
    if (wrapper == NULL) {
        return -1;
    }
    fp->method_wrapper_type = Py_TYPE(wrapper); /* a static type: it outlives the module */
    Py_DECREF(wrapper);
    PyTypeObject *gens[3] = {&PyGen_Type, &PyCoro_Type, &PyAsyncGen_Type};
    for (int i = 0; i < 3; i++) {
        /* The static type's own dict; its descriptor outlives the module. */
        PyObject *gdict = PyType_GetDict(gens[i]);
        PyObject *descr = gdict != NULL ? PyDict_GetItemWithError(gdict, fp->str_qualname) : NULL;
        fp->gen_qualname[i] = descr != NULL && Py_IS_TYPE(descr, &PyGetSetDescr_Type)
                                  ? ((PyGetSetDescrObject *)descr)->d_getset->get
                                  : NULL;
        Py_XDECREF(gdict);
        if (PyErr_Occurred()) {
            return -1;
        }
    }
    fp->secret_cache = Py_NewRef(secret_cache);
    fp->is_secret = Py_NewRef(is_secret);
    fp->max_depth = (int)depth;
    fp->max_items = items;
    fp->max_attrs = attrs;
    fp->max_nodes = nodes;
    fp->max_string = string;
    fp->enabled = 1;
    return 0;
}

void
fp_clear(Fingerprinter *fp)
{
    if (fp->enabled) {
        PyBuffer_Release(&fp->rotations);
    }
    PyMem_Free(fp->parts);
    PyMem_Free(fp->part_memo);
    PyMem_Free(fp->memo_tags);
    fp->parts = NULL;
    fp->part_memo = NULL;
    fp->memo_tags = NULL;
    fp->parts_root = NULL;
    for (int i = 0; fp->own_levels != NULL && i < FP_OWN_LEVELS; i++) {
        own_level_release(&fp->own_levels[i]);
        PyMem_Free(fp->own_levels[i].attrs);
    }
    PyMem_Free(fp->own_levels);
    fp->own_levels = NULL;
    if (fp->values != NULL) {
        for (int i = 0; i < FP_VALUE_CACHE; i++) {
            entry_clear(fp, &fp->values[i]);
        }
        PyMem_Free(fp->values);
        fp->values = NULL;
    }
    for (int i = 0; i < FP_TYPE_CACHE; i++) {
        type_entry_reset(&fp->types[i]);
        fp->types[i].type = NULL;
    }
    for (int i = 0; i < FP_NAME_CACHE; i++) {
        Py_CLEAR(fp->secret_names[i].name);
    }
    for (int i = 0; i < FP_CREPR_CACHE; i++) {
        Py_CLEAR(fp->crepr[i].obj);
    }
    Py_CLEAR(fp->ref_type);
    Py_CLEAR(fp->ref_callback);
    if (fp->record_memo != NULL) {
        for (int i = 0; i < FP_RECORD_MEMO; i++) {
            Py_CLEAR(fp->record_memo[i].record);
        }
        PyMem_Free(fp->record_memo);
        fp->record_memo = NULL;
    }
    if (fp->filed_memo != NULL) {
        for (int i = 0; i < FP_FILED_MEMO; i++) {
            Py_CLEAR(fp->filed_memo[i].node);
            Py_CLEAR(fp->filed_memo[i].filed);
        }
        PyMem_Free(fp->filed_memo);
        fp->filed_memo = NULL;
    }
    if (fp->entries != NULL) {
        PyBuffer_Release(&fp->entry_changes);
        PyMem_Free(fp->entry_memo);
        fp->entry_memo = NULL;
        for (int i = 0; i < FP_ENTRY_MEMO; i++) {
            Py_CLEAR(fp->key_memo[i].serial);
        }
        PyMem_Free(fp->key_memo);
        fp->key_memo = NULL;
    }
    Py_CLEAR(fp->entries);
    Py_CLEAR(fp->identity_map);
    Py_CLEAR(fp->identity_lock);
    Py_CLEAR(fp->identity_next);
    Py_CLEAR(fp->str_acquire);
    Py_CLEAR(fp->str_release);
    Py_CLEAR(fp->str_old);
    Py_CLEAR(fp->str_young);
    fp->serial_offset = 0;
    fp->oid_offset = 0;
    Py_CLEAR(fp->key);
    Py_CLEAR(fp->type_name);
    Py_CLEAR(fp->class_name);
    Py_CLEAR(fp->encode_opaque);
    Py_CLEAR(fp->str_qualname);
    Py_CLEAR(fp->str_name);
    Py_CLEAR(fp->str_enum_name);
    Py_CLEAR(fp->str_self);
    Py_CLEAR(fp->str_enum_value);
    Py_CLEAR(fp->names.list);
    Py_CLEAR(fp->names.tuple);
    Py_CLEAR(fp->names.dict);
    Py_CLEAR(fp->names.str);
    Py_CLEAR(fp->names.bytes);
    Py_CLEAR(fp->names.args);
    Py_CLEAR(fp->names.ellipsis);
    fp->can_encode = 0;
    Py_CLEAR(fp->dict_index);
    Py_CLEAR(fp->walk_slots);
    Py_CLEAR(fp->walk_fields);
    Py_CLEAR(fp->deque_type);
    Py_CLEAR(fp->socket_type);
    Py_CLEAR(fp->socket_fileno);
    Py_CLEAR(fp->lock_type);
    Py_CLEAR(fp->decimal_type);
    Py_CLEAR(fp->lock_locked);
    for (int k = 0; k < 3; k++) {
        Py_CLEAR(fp->socket_members[k]);
    }
    Py_CLEAR(fp->int_64);
    Py_CLEAR(fp->int_2_128);
    Py_CLEAR(fp->secret_cache);
    Py_CLEAR(fp->is_secret);
    Py_CLEAR(fp->miss_type);
    Py_CLEAR(fp->miss_name);
    fp->enabled = 0;
}

int
fp_traverse(Fingerprinter *fp, visitproc visit, void *arg)
{
    Py_VISIT(fp->dict_index);
    Py_VISIT(fp->walk_slots);
    Py_VISIT(fp->walk_fields);
    Py_VISIT(fp->deque_type);
    Py_VISIT(fp->socket_type);
    Py_VISIT(fp->socket_fileno);
    Py_VISIT(fp->lock_type);
    Py_VISIT(fp->lock_locked);
    Py_VISIT(fp->decimal_type);
    for (int k = 0; k < 3; k++) {
        Py_VISIT(fp->socket_members[k]);
    }
    Py_VISIT(fp->secret_cache);
    Py_VISIT(fp->is_secret);
    Py_VISIT(fp->ref_type);
    Py_VISIT(fp->ref_callback);
    Py_VISIT(fp->entries);
    Py_VISIT(fp->identity_map);
    Py_VISIT(fp->identity_lock);
    Py_VISIT(fp->identity_next);
    Py_VISIT(fp->key);
    Py_VISIT(fp->type_name);
    Py_VISIT(fp->class_name);
    Py_VISIT(fp->encode_opaque);
    return 0;
}
