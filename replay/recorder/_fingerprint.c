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
 * str, bytes, bool, None); exact list, tuple and dict by identity (their address, which is what
 * their recorded `id` is keyed by), length and items; instances of plain Python classes (whose
 * content is their instance `__dict__` alone, as the encoder decides) by identity, class and
 * attributes. Anything else (sets, slots, exceptions, subclasses of builtins, stdlib values, big
 * ints) makes the walk give up, and the value is encoded.
 *
 * What a fingerprint cannot see: an object freed and replaced, between two checks, by a new
 * object of the same class at the same address with the same content, inside a value (the encoder
 * would give it a new `id`). docs/internals.md, "Change detection", says so.
 *
 * Safety: the walk reads through borrowed references and never runs Python code, so nothing can
 * change or free what it is reading. Reading an instance dict may create it (the encoder does the
 * same); since 3.12 an allocation only schedules a garbage collection, it never runs one. A class
 * or a name met for the first time is classified by the encoder (Python) after the walk, which is
 * then retried.
 */

#include "_fingerprint.h"

#include <string.h>

#define FP_MAX_RETRIES 8
#define FP_MAX_PATH 64

/* A slot of a direct-mapped cache of `size` (a power of two) entries for an address: addresses
 * cluster (allocator pools), so they are spread by a multiplicative hash first. */
static inline size_t
slot_of(const void *p, size_t size)
{
    return (size_t)(((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ULL) >> 32) & (size - 1);
}

static inline uint64_t
mix(uint64_t h, uint64_t x)
{
    /* One multiply-xorshift round per word (as in splitmix64): cheap and well spread. */
    h = (h ^ x) * 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 31);
}

enum { T_INT = 1, T_FLOAT, T_STR, T_BYTES, T_TRUE, T_FALSE, T_NONE, T_LIST, T_TUPLE, T_DICT,
       T_OBJ, T_REF, T_CUT, T_SECRET, T_SECRET_PAIR };

/* One walk: the encoder's per-value state (`[budget, path]` in snapshot.py) and the hash. */
typedef struct {
    Fingerprinter *fp;
    uint64_t h;
    Py_ssize_t budget;
    int npath;
    void *path[FP_MAX_PATH];
} Walk;

/* 1 walk on, 0 give up, -1 error. */
static int walk_value(Walk *w, PyObject *v, int depth);

/* 1 plain, 0 not walked, -1 not classified yet (fp->miss_type is set). */
static int
type_plain(Fingerprinter *fp, PyTypeObject *tp)
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
    FpTypeEntry *e = &fp->types[slot_of(tp, FP_TYPE_CACHE)];
    if (e->type == tp && e->version == version) {
        return e->plain;
    }
    if (fp->miss_type == NULL) {
        fp->miss_type = (PyTypeObject *)Py_NewRef((PyObject *)tp);
    }
    return -1;
}

/* Whether the str `name` looks secret, from the redactor's cache: 1/0, -1 when not cached yet
 * (fp->miss_name is set). */
static int
name_secret(Fingerprinter *fp, PyObject *name)
{
    PyObject *hit = PyDict_GetItemWithError(fp->secret_cache, name); /* exact str: no user code */
    if (hit != NULL) {
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

static inline int
is_plain_atom(Fingerprinter *fp, PyObject *x)
{
    /* The encoder's inline atom test (_items, _pairs): such values are stored as themselves. */
    PyTypeObject *tp = Py_TYPE(x);
    return tp == &PyFloat_Type || tp == &PyBool_Type || x == Py_None
           || (tp == &PyUnicode_Type && PyUnicode_GET_LENGTH(x) <= fp->max_string)
           || (tp == &PyLong_Type && PyUnstable_Long_IsCompact((PyLongObject *)x));
}

static int
on_path(Walk *w, void *p)
{
    for (int i = 0; i < w->npath; i++) {
        if (w->path[i] == p) {
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
    if (room > w->budget) {
        room = w->budget;
    }
    if (depth >= fp->max_depth || (n && room <= 0)) {
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

/* The encoder's `_is_secret_key`: 1/0, -1 not cached yet (fp->miss_name is set), -2 give up (a
 * bytes name, which the encoder decodes first). */
static int
key_secret(Fingerprinter *fp, PyObject *k)
{
    if (PyUnicode_CheckExact(k)) {
        return name_secret(fp, k);
    }
    return PyBytes_CheckExact(k) ? -2 : 0;
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
            hash_header(w, T_SECRET_PAIR, x, 2);
            if (depth >= w->fp->max_depth) {
                return 1;
            }
            w->budget -= 2;
            w->h = mix(w->h, (uintptr_t)Py_TYPE(second));
            return walk_value(w, first, depth + 1);
        }
    }
    return walk_value(w, x, depth);
}

/* _list and _tuple (and the tuple's item identities, which the identity map's tuple
 * fingerprint reads). */
static int
walk_sequence(Walk *w, PyObject *v, int depth)
{
    int is_tuple = Py_IS_TYPE(v, &PyTuple_Type);
    if (on_path(w, v)) {
        hash_header(w, T_REF, v, 0);
        return 1;
    }
    Py_ssize_t n = Py_SIZE(v), k = 0;
    hash_header(w, is_tuple ? T_TUPLE : T_LIST, v, (uint64_t)n);
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
        r = is_plain_atom(w->fp, x) ? walk_value(w, x, depth + 1) : walk_item(w, x, depth + 1);
    }
    w->npath--;
    return r;
}

/* _dict and _pairs: keys inline if atoms else encoded; a str key that looks secret hides its
 * value (only the value's class shows). */
static int
walk_dict(Walk *w, PyObject *v, int depth)
{
    if (on_path(w, v)) {
        hash_header(w, T_REF, v, 0);
        return 1;
    }
    Py_ssize_t n = PyDict_GET_SIZE(v), k = 0;
    hash_header(w, T_DICT, v, (uint64_t)n);
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

/* _obj for a plain object: its instance dict, names checked for secrets, within `room`
 * reserved slots of the budget (what is left is given back). */
static int
walk_object(Walk *w, PyObject *v, int depth)
{
    if (type_plain(w->fp, Py_TYPE(v)) <= 0) {
        return 0; /* not walked, or not classified yet (fp_of classifies it, then walks again) */
    }
    if (on_path(w, v)) {
        hash_header(w, T_REF, v, 0);
        return 1;
    }
    if (depth >= w->fp->max_depth || w->budget <= 0) {
        hash_header(w, T_CUT, v, 0);
        return 1;
    }
    if (w->npath >= FP_MAX_PATH) {
        return 0;
    }
    PyObject *d = PyObject_GenericGetDict(v, NULL);
    if (d == NULL) {
        PyErr_Clear();
        return 0;
    }
    if (!PyDict_CheckExact(d)) {
        Py_DECREF(d);
        return 0;
    }
    Py_ssize_t room = w->fp->max_attrs < w->budget ? w->fp->max_attrs : w->budget;
    w->budget -= room;
    Py_ssize_t n = PyDict_GET_SIZE(d);
    Py_ssize_t take = n < room ? n : room;
    room -= take;
    hash_header(w, T_OBJ, v, (uint64_t)n);
    w->path[w->npath++] = v;
    Py_ssize_t pos = 0, taken = 0;
    PyObject *name, *val;
    int r = 1;
    while (r > 0 && taken < take && PyDict_Next(d, &pos, &name, &val)) {
        taken++;
        if (!PyUnicode_CheckExact(name)) {
            w->h = mix(w->h, T_CUT); /* skipped by the encoder (it marks the object truncated) */
            continue;
        }
        int secret = name_secret(w->fp, name);
        if (secret < 0) {
            r = 0;
            break;
        }
        w->h = mix(w->h, (uint64_t)PyObject_Hash(name)); /* exact str: C, cached */
        if (secret) {
            w->h = mix(mix(w->h, T_SECRET), (uintptr_t)Py_TYPE(val));
        }
        else {
            r = walk_value(w, val, depth + 1);
        }
    }
    w->npath--;
    Py_DECREF(d);
    if (room > 0) {
        w->budget += room;
    }
    return r;
}

static int
walk_value(Walk *w, PyObject *v, int depth)
{
    PyTypeObject *tp = Py_TYPE(v);
    if (tp == &PyLong_Type) {
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow) {
            return 0; /* a big int: the encoder shows its leading digits; not mirrored */
        }
        w->h = mix(mix(w->h, T_INT), (uint64_t)x);
        return 1;
    }
    if (tp == &PyUnicode_Type || tp == &PyBytes_Type) {
        Py_hash_t hv = PyObject_Hash(v); /* C, cached in the object */
        if (hv == -1) {
            PyErr_Clear();
            return 0;
        }
        Py_ssize_t n = tp == &PyUnicode_Type ? PyUnicode_GET_LENGTH(v) : PyBytes_GET_SIZE(v);
        w->h = mix(mix(mix(w->h, tp == &PyUnicode_Type ? T_STR : T_BYTES), (uint64_t)hv),
                   (uint64_t)n);
        return 1;
    }
    if (tp == &PyFloat_Type) {
        double d = PyFloat_AS_DOUBLE(v);
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        w->h = mix(mix(w->h, T_FLOAT), bits);
        return 1;
    }
    if (v == Py_None || v == Py_True || v == Py_False) {
        w->h = mix(w->h, v == Py_None ? T_NONE : v == Py_True ? T_TRUE : T_FALSE);
        return 1;
    }
    if (tp == &PyList_Type || tp == &PyTuple_Type) {
        return walk_sequence(w, v, depth);
    }
    if (tp == &PyDict_Type) {
        return walk_dict(w, v, depth);
    }
    if (!PyType_HasFeature(tp, Py_TPFLAGS_HEAPTYPE)) {
        return 0; /* builtin and C types: the encoder has its own rules for them */
    }
    return walk_object(w, v, depth);
}

/* Ask the encoder about the class the walk stopped at, and cache the answer. 0 or -1. */
static int
classify_type(Fingerprinter *fp)
{
    PyTypeObject *tp = fp->miss_type;
    fp->miss_type = NULL;
    PyObject *index = PyObject_CallOneArg(fp->dict_index, (PyObject *)tp);
    long i = index == NULL ? -1 : PyLong_AsLong(index);
    Py_XDECREF(index);
    if (PyErr_Occurred()) {
        Py_DECREF(tp);
        return -1;
    }
    int plain = 0;
    PyObject *mro = tp->tp_mro;
    if (i >= 0 && mro != NULL && PyTuple_Check(mro) && i < PyTuple_GET_SIZE(mro)) {
        /* The `__dict__` attribute the encoder reads must be the plain one that
         * PyObject_GenericGetDict implements, not a C extension's own getter. */
        PyObject *dict = PyType_GetDict((PyTypeObject *)PyTuple_GET_ITEM(mro, i));
        PyObject *descr = dict ? PyDict_GetItemString(dict, "__dict__") : NULL;
        plain = descr != NULL && Py_IS_TYPE(descr, &PyGetSetDescr_Type)
                && (void *)((PyGetSetDescrObject *)descr)->d_getset->get == fp->subtype_dict_get;
        Py_XDECREF(dict);
    }
    unsigned int version = tp->tp_version_tag;
    if (version != 0) {
        FpTypeEntry *e = &fp->types[slot_of(tp, FP_TYPE_CACHE)];
        e->type = tp;
        e->version = version;
        e->plain = plain;
    }
    Py_DECREF(tp);
    return 0;
}

/* Ask the redactor about the name the walk stopped at (it caches the answer). 0 or -1. */
static int
classify_name(Fingerprinter *fp)
{
    PyObject *name = fp->miss_name;
    fp->miss_name = NULL;
    PyObject *answer = PyObject_CallOneArg(fp->is_secret, name);
    Py_DECREF(name);
    Py_XDECREF(answer);
    return answer == NULL ? -1 : 0;
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
        w.budget = fp->max_nodes;
        w.npath = 0;
        int r = walk_value(&w, v, 0);
        if (fp->miss_type == NULL && fp->miss_name == NULL) {
            if (r > 0) {
                *out = w.h ? w.h : 1;
                fp->last_cost = fp->max_nodes - w.budget;
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

/* ------------------------------------------------------------------------------------------- */
/* The value cache                                                                             */

static inline FpValueEntry *
value_entry(Fingerprinter *fp, PyObject *v)
{
    return &fp->values[slot_of(v, FP_VALUE_CACHE)];
}

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
    if (fp->values == NULL || f == 0) {
        return NULL;
    }
    FpValueEntry *e = value_entry(fp, v);
    if (e->obj != (void *)v || e->type != Py_TYPE(v) || e->fp != f) {
        return NULL;
    }
    if (e->ref != NULL) {
        /* The object the entry was made for is alive and is `v` (not a new object at its
         * address, which the identity map would give a new id). */
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

int
fp_remember(Fingerprinter *fp, PyObject *v, uint64_t f, PyObject *venc)
{
    if (fp->values == NULL || f == 0) {
        return 0;
    }
    FpValueEntry *e = value_entry(fp, v);
    Py_ssize_t cost = fp->last_cost + 1;
    if (fp->cached_nodes - (e->obj ? e->cost : 0) + cost > FP_MAX_CACHED_NODES) {
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

/* ------------------------------------------------------------------------------------------- */
/* Set-up                                                                                      */

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
    PyObject *dict_index = PyDict_GetItemString(rule, "dict_only_index");
    PyObject *secret_cache = PyDict_GetItemString(rule, "secret_cache");
    PyObject *is_secret = PyDict_GetItemString(rule, "is_secret");
    PyObject *rotations = PyDict_GetItemString(rule, "identity_rotations");
    if (dict_index == NULL || secret_cache == NULL || !PyDict_CheckExact(secret_cache)
        || is_secret == NULL || rotations == NULL) {
        PyErr_SetString(PyExc_TypeError, "fingerprint rule needs dict_only_index, secret_cache "
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
    if (PyObject_GetBuffer(rotations, &fp->rotations, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    if (fp->rotations.len != sizeof(uint64_t)) {
        PyBuffer_Release(&fp->rotations);
        PyErr_SetString(PyExc_TypeError, "identity_rotations must be array('Q', [n])");
        return -1;
    }
    fp->values = PyMem_Calloc(FP_VALUE_CACHE, sizeof(FpValueEntry));
    if (fp->values == NULL) {
        PyBuffer_Release(&fp->rotations);
        PyErr_NoMemory();
        return -1;
    }
    fp->dict_index = Py_NewRef(dict_index);
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
    if (fp->values != NULL) {
        for (int i = 0; i < FP_VALUE_CACHE; i++) {
            entry_clear(fp, &fp->values[i]);
        }
        PyMem_Free(fp->values);
        fp->values = NULL;
    }
    Py_CLEAR(fp->dict_index);
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
    Py_VISIT(fp->secret_cache);
    Py_VISIT(fp->is_secret);
    return 0;
}
