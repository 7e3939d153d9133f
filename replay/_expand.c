/* replay._expand: a name's entry expanded over object records into its tree, in C.
 *
 * Why: a reader of a recording of object records (format 2) expands every changed name's entry
 * into the tree a recording of trees would hold (replay/object_records.py, `_Expansion`), and in
 * Python that cost 5 to 11 times the chunk's decode. This is the same walk, rule for rule: the
 * encoder's depth cut and node budget (the room an object reserves for its attributes and gives
 * back), back references along the path, secret-looking pairs, enum members. It handles the
 * names whose expansion goes the ordinary way and declines the rest (NotImplemented, no
 * exception): a record the table lacks, a record or form of a shape it does not know, and the
 * places where the Python walk replays one of the encoder's own faults. The Python walk then
 * expands that name, so the trees are the same either way (tests/recorder/test_object_records.py
 * compares both on every value it expands).
 *
 * Public C API only; optional (setup.py): without it object_records.py expands every name.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

/* The tags of replay/events.py and replay/object_records.py (the module exports them as TAGS,
 * and a test compares). */
enum {
    V_REDACTED = 4,
    V_SEQ = 5,
    V_MAP = 6,
    V_OBJ = 7,
    V_REF = 8,
    V_ENUM = 10,
    V_ERROR = 11,
    V_OREF = 12,
    R_SEQ = 20,
    R_MAP = 21,
    R_OBJ = 22,
    R_NAMEDTUPLE = 23,
    R_PAIR = 24,
    R_GROWN = 25,
};

#define MAX_PATH 64
#define UNBOUNDED ((Py_ssize_t)1 << 62)

/* What an object being expanded depends on (`_Expansion.track`): the objects it reached and
 * its least slack, how far the budget could fall before one of its cuts would change. */
typedef struct {
    PyObject *reach; /* a set of obj_ids (strong) */
    Py_ssize_t slack;
} Track;

typedef struct {
    PyObject *records; /* obj_id -> record (a dict) */
    Py_ssize_t max_depth, max_items, max_attrs;
    Py_ssize_t budget;
    int npath;
    long long path[MAX_PATH];
    PyObject *path_ids[MAX_PATH]; /* the same, as the int objects (borrowed from the forms) */
    int declined; /* set where the Python walk must decide: the result is then dropped */
    /* The ExpansionMemo's dicts (borrowed), or NULL: no memo. */
    PyObject *trees, *dependents;
    Py_ssize_t hits;
    int ntrack;
    Track track[MAX_PATH];
} Expansion;

static PyObject *form(Expansion *x, PyObject *f, Py_ssize_t depth);

/* NULL with no exception: the Python walk decides this name. */
static PyObject *
decline(Expansion *x)
{
    x->declined = 1;
    return NULL;
}

/* An exact int tag at `i` of tuple `t`, or -1. */
static long
tag_at(PyObject *t, Py_ssize_t i)
{
    PyObject *v = PyTuple_GET_ITEM(t, i);
    if (!PyLong_CheckExact(v)) {
        return -1;
    }
    long tag = PyLong_AsLong(v);
    if (tag == -1 && PyErr_Occurred()) {
        PyErr_Clear();
    }
    return tag;
}

/* Whether `record` has the layout its kind says: `layout` gives each field, '.' anything, 'i'
 * an exact int, 'l' an exact list (object_records.py's module docstring has the layouts). */
static int
has_layout(PyObject *record, const char *layout)
{
    Py_ssize_t n = (Py_ssize_t)strlen(layout);
    if (PyTuple_GET_SIZE(record) != n) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *field = PyTuple_GET_ITEM(record, i);
        if ((layout[i] == 'i' && !PyLong_CheckExact(field))
            || (layout[i] == 'l' && !PyList_CheckExact(field))) {
            return 0;
        }
    }
    return 1;
}

/* `_Expansion.room`. */
static Py_ssize_t
room_for(Expansion *x, Py_ssize_t n)
{
    if (n == 0) {
        return 0;
    }
    Py_ssize_t k = n < x->max_items ? n : x->max_items;
    return k < x->budget ? k : x->budget;
}

static int
path_push(Expansion *x, long long oid, PyObject *oid_obj)
{
    if (x->npath >= MAX_PATH) {
        return 0;
    }
    x->path_ids[x->npath] = oid_obj;
    x->path[x->npath++] = oid;
    return 1;
}

/* `_Expansion.slack`: a cut that holds as long as the budget here is at least `least`. */
static inline void
slack(Expansion *x, Py_ssize_t least)
{
    if (x->ntrack > 0) {
        Track *top = &x->track[x->ntrack - 1];
        Py_ssize_t s = x->budget - least;
        top->slack = s < top->slack ? s : top->slack;
    }
}

/* set |= other. 0, or -1. */
static int
set_update(PyObject *set, PyObject *other)
{
    PyObject *it = PyObject_GetIter(other), *key;
    if (it == NULL) {
        return -1;
    }
    while ((key = PyIter_Next(it)) != NULL) {
        int rc = PySet_Add(set, key);
        Py_DECREF(key);
        if (rc < 0) {
            Py_DECREF(it);
            return -1;
        }
    }
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : 0;
}

/* Whether no object of `reach` is on the path. 1/0, -1. */
static int
off_path(Expansion *x, PyObject *reach)
{
    for (int i = 0; i < x->npath; i++) {
        int in = PySet_Contains(reach, x->path_ids[i]);
        if (in != 0) {
            return in < 0 ? -1 : 0;
        }
    }
    return 1;
}

/* `ExpansionMemo.keep`: the tree of (obj_id, depth) `key`, what it spent, the least budget it
 * needs and the objects it reached (a frozenset), each of which lists `key` as its dependent.
 * 0, or -1. */
static int
memo_keep(Expansion *x, PyObject *key, PyObject *tree, Py_ssize_t spent, Py_ssize_t need,
          PyObject *reached)
{
    PyObject *reach = PyFrozenSet_New(reached);
    PyObject *entry = reach != NULL ? Py_BuildValue("(OnnN)", tree, spent, need, reach) : NULL;
    if (entry == NULL || PyDict_SetItem(x->trees, key, entry) < 0) {
        Py_XDECREF(entry);
        return -1;
    }
    Py_DECREF(entry);
    PyObject *it = PyObject_GetIter(reach), *oid;
    if (it == NULL) {
        return -1;
    }
    int rc = 0;
    while (rc == 0 && (oid = PyIter_Next(it)) != NULL) {
        PyObject *keys = PyDict_GetItemWithError(x->dependents, oid);
        if (keys == NULL && !PyErr_Occurred()) {
            keys = PyList_New(0);
            rc = keys == NULL || PyDict_SetItem(x->dependents, oid, keys) < 0 ? -1 : 0;
            Py_XDECREF(keys); /* the dict holds it */
        }
        rc = rc < 0 || keys == NULL || !PyList_Check(keys) || PyList_Append(keys, key) < 0 ? -1 : 0;
        Py_DECREF(oid);
    }
    Py_DECREF(it);
    return rc < 0 || PyErr_Occurred() ? -1 : 0;
}

/* `_Expansion.container`: `_list`, `_tuple`, `_dict`, `_seq`, `_map`, `_odict`. */
static PyObject *
container(Expansion *x, PyObject *oid, long long id, PyObject *record, long kind, Py_ssize_t depth)
{
    if (!has_layout(record, "..il")) { /* (kind, type_name, length, forms) */
        return decline(x);
    }
    PyObject *type_name = PyTuple_GET_ITEM(record, 1), *parts = PyTuple_GET_ITEM(record, 3);
    Py_ssize_t n = PyLong_AsSsize_t(PyTuple_GET_ITEM(record, 2));
    if (n < 0) {
        PyErr_Clear();
        return decline(x);
    }
    int tag = kind == R_SEQ ? V_SEQ : V_MAP;
    Py_ssize_t k = room_for(x, n);
    if (depth >= x->max_depth) {
        return Py_BuildValue("(iOOnO)", tag, oid, type_name, n, Py_None);
    }
    if (n) {
        slack(x, n < x->max_items ? n : x->max_items);
        if (k <= 0) {
            return Py_BuildValue("(iOOnO)", tag, oid, type_name, n, Py_None);
        }
    }
    x->budget -= k;
    Py_ssize_t take = k < PyList_GET_SIZE(parts) ? k : PyList_GET_SIZE(parts);
    PyObject *items = PyList_New(take);
    if (items == NULL || !path_push(x, id, oid)) {
        Py_XDECREF(items);
        return items == NULL ? NULL : decline(x);
    }
    for (Py_ssize_t i = 0; i < take; i++) {
        PyObject *part = PyList_GET_ITEM(parts, i), *item;
        if (kind == R_SEQ) {
            item = form(x, part, depth + 1);
        }
        else if (!PyTuple_CheckExact(part) || PyTuple_GET_SIZE(part) != 2) {
            item = decline(x);
        }
        else {
            PyObject *kt = form(x, PyTuple_GET_ITEM(part, 0), depth + 1);
            PyObject *vt = kt != NULL ? form(x, PyTuple_GET_ITEM(part, 1), depth + 1) : NULL;
            item = vt != NULL ? PyTuple_Pack(2, kt, vt) : NULL;
            Py_XDECREF(kt);
            Py_XDECREF(vt);
        }
        if (item == NULL) {
            x->npath--;
            Py_DECREF(items);
            return NULL;
        }
        PyList_SET_ITEM(items, i, item);
    }
    x->npath--;
    return Py_BuildValue("(iOOnN)", tag, oid, type_name, n, items);
}

/* An object shown by its header alone (cut by the depth or the budget). */
static PyObject *
obj_header(PyObject *oid, PyObject *type_name)
{
    return Py_BuildValue("(iOOOO)", V_OBJ, oid, type_name, Py_None, Py_True);
}

/* `_Expansion.namedtuple`. */
static PyObject *
namedtuple(Expansion *x, PyObject *oid, long long id, PyObject *record, Py_ssize_t depth)
{
    if (!has_layout(record, "..iil")) { /* (kind, type_name, length, field_count, fields) */
        return decline(x);
    }
    PyObject *type_name = PyTuple_GET_ITEM(record, 1), *fields = PyTuple_GET_ITEM(record, 4);
    if (depth >= x->max_depth) {
        return obj_header(oid, type_name);
    }
    Py_ssize_t n = PyLong_AsSsize_t(PyTuple_GET_ITEM(record, 2));
    Py_ssize_t count = PyLong_AsSsize_t(PyTuple_GET_ITEM(record, 3));
    if (n < 0 || count < 0) {
        PyErr_Clear();
        return decline(x);
    }
    Py_ssize_t k = n < count ? n : count;
    k = k < x->max_attrs ? k : x->max_attrs;
    slack(x, k > 1 ? k : 1);
    if (x->budget <= 0) {
        return obj_header(oid, type_name);
    }
    k = k < x->budget ? k : x->budget;
    x->budget -= k;
    Py_ssize_t take = k < PyList_GET_SIZE(fields) ? k : PyList_GET_SIZE(fields);
    PyObject *attrs = PyDict_New();
    if (attrs == NULL || !path_push(x, id, oid)) {
        Py_XDECREF(attrs);
        return attrs == NULL ? NULL : decline(x);
    }
    for (Py_ssize_t i = 0; i < take; i++) {
        PyObject *pair = PyList_GET_ITEM(fields, i);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) {
            x->npath--;
            Py_DECREF(attrs);
            return decline(x);
        }
        PyObject *vt = form(x, PyTuple_GET_ITEM(pair, 1), depth + 1);
        if (vt == NULL || PyDict_SetItem(attrs, PyTuple_GET_ITEM(pair, 0), vt) < 0) {
            Py_XDECREF(vt);
            x->npath--;
            Py_DECREF(attrs);
            return NULL;
        }
        Py_DECREF(vt);
    }
    x->npath--;
    return Py_BuildValue("(iOONO)", V_OBJ, oid, type_name, attrs, k < n ? Py_True : Py_False);
}

/* Whether `args` is NO_ARGS, `(R_OBJ, "no args")`, compared by value. */
static int
is_no_args(PyObject *args)
{
    return PyTuple_CheckExact(args) && PyTuple_GET_SIZE(args) == 2 && tag_at(args, 0) == R_OBJ
           && PyUnicode_CheckExact(PyTuple_GET_ITEM(args, 1))
           && PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(args, 1), "no args") == 0;
}

/* Put `name: form(vf)` in attrs. 0, or -1 (NULL from form: error or declined). */
static int
put_attr(Expansion *x, PyObject *attrs, PyObject *name, PyObject *vf, Py_ssize_t depth)
{
    PyObject *vt = form(x, vf, depth);
    int rc = vt != NULL ? PyDict_SetItem(attrs, name, vt) : -1;
    Py_XDECREF(vt);
    return rc;
}

static PyObject *str_args; /* "args", interned */

/* `_Expansion.obj`: `_obj` with `_slot_attrs`, attributes reserved from the budget and the rest
 * given back. */
static PyObject *
obj(Expansion *x, PyObject *oid, long long id, PyObject *record, Py_ssize_t depth)
{
    if (!has_layout(record, "...ill")) { /* (kind, type_name, args, dict_length, pairs, slots) */
        return decline(x);
    }
    PyObject *type_name = PyTuple_GET_ITEM(record, 1), *args = PyTuple_GET_ITEM(record, 2);
    PyObject *dict_pairs = PyTuple_GET_ITEM(record, 4), *slots = PyTuple_GET_ITEM(record, 5);
    Py_ssize_t budget = x->budget;
    if (depth >= x->max_depth) {
        return obj_header(oid, type_name);
    }
    slack(x, x->max_attrs > 1 ? x->max_attrs : 1);
    if (budget <= 0) {
        return obj_header(oid, type_name);
    }
    Py_ssize_t dict_length = PyLong_AsSsize_t(PyTuple_GET_ITEM(record, 3));
    if (dict_length == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return decline(x);
    }
    Py_ssize_t room = x->max_attrs < budget ? x->max_attrs : budget;
    x->budget = budget - room;
    depth += 1;
    int truncated = 0;
    PyObject *attrs = PyDict_New();
    if (attrs == NULL || !path_push(x, id, oid)) {
        Py_XDECREF(attrs);
        return attrs == NULL ? NULL : decline(x);
    }
    int rc = 0;
    if (!is_no_args(args)) {
        rc = put_attr(x, attrs, str_args, args, depth);
        room -= 1;
    }
    if (rc == 0 && dict_length >= 0) {
        Py_ssize_t have = PyList_GET_SIZE(dict_pairs), take;
        if (dict_length <= room) {
            take = dict_length < have ? dict_length : have;
        }
        else if (room < 0) {
            rc = -1; /* islice refuses a negative stop: the encoder's fault, replayed in Python */
            decline(x);
            take = 0;
        }
        else {
            take = room < have ? room : have;
        }
        truncated = dict_length > take;
        room -= take;
        for (Py_ssize_t i = 0; rc == 0 && i < take; i++) {
            PyObject *pair = PyList_GET_ITEM(dict_pairs, i);
            if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) {
                rc = -1;
                decline(x);
                break;
            }
            PyObject *name = PyTuple_GET_ITEM(pair, 0);
            if (name == Py_None) {
                truncated = 1; /* a key that is not an exact str: a node, not shown */
                continue;
            }
            rc = put_attr(x, attrs, name, PyTuple_GET_ITEM(pair, 1), depth);
        }
    }
    for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(slots); i++) {
        PyObject *pair = PyList_GET_ITEM(slots, i);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) {
            rc = -1;
            decline(x);
            break;
        }
        if (room <= 0) {
            truncated = 1;
            break;
        }
        room -= 1;
        PyObject *name = PyTuple_GET_ITEM(pair, 0);
        int has = PyDict_Contains(attrs, name);
        rc = has < 0 ? -1 : has ? 0 : put_attr(x, attrs, name, PyTuple_GET_ITEM(pair, 1), depth);
    }
    x->npath--;
    if (rc < 0) {
        Py_DECREF(attrs);
        return NULL;
    }
    if (room > 0) {
        x->budget += room;
    }
    return Py_BuildValue("(iOONO)", V_OBJ, oid, type_name, attrs, truncated ? Py_True : Py_False);
}

/* `_Expansion._object`: the record's tree by its kind. */
static PyObject *
object_tree(Expansion *x, PyObject *oid, long long id, PyObject *record, Py_ssize_t depth)
{
    long kind = tag_at(record, 0);
    Py_INCREF(record); /* held while the walk reads it */
    PyObject *tree = kind == V_ERROR                   ? Py_NewRef(record)
                     : kind == R_SEQ || kind == R_MAP ? container(x, oid, id, record, kind, depth)
                     : kind == R_OBJ                  ? obj(x, oid, id, record, depth)
                     : kind == R_NAMEDTUPLE           ? namedtuple(x, oid, id, record, depth)
                                                      : decline(x);
    Py_DECREF(record);
    return tree;
}

/* The memo's tree for `key`, if it holds here (`_Expansion.object`): its budget spent and
 * what it depends on added to the object being expanded. A new reference, NULL (not kept, or
 * not here; or an error, set). */
static PyObject *
memo_use(Expansion *x, PyObject *key)
{
    PyObject *kept = PyDict_GetItemWithError(x->trees, key);
    if (kept == NULL || !PyTuple_CheckExact(kept) || PyTuple_GET_SIZE(kept) != 4) {
        return NULL;
    }
    Py_ssize_t spent = PyLong_AsSsize_t(PyTuple_GET_ITEM(kept, 1));
    Py_ssize_t need = PyLong_AsSsize_t(PyTuple_GET_ITEM(kept, 2));
    PyObject *reach = PyTuple_GET_ITEM(kept, 3);
    if (PyErr_Occurred() || !PyAnySet_Check(reach)) {
        return NULL;
    }
    Py_ssize_t budget = x->budget;
    int off = budget >= need ? off_path(x, reach) : 0;
    if (off <= 0) {
        return NULL;
    }
    x->hits++;
    x->budget = budget - spent;
    if (x->ntrack > 0) {
        Track *top = &x->track[x->ntrack - 1];
        if (set_update(top->reach, reach) < 0) {
            return NULL;
        }
        top->slack = budget - need < top->slack ? budget - need : top->slack;
    }
    return Py_NewRef(PyTuple_GET_ITEM(kept, 0));
}

/* `_Expansion.object`: the record filed under `oid`, or a back reference to it; through the
 * memo where there is one. */
static PyObject *
object(Expansion *x, PyObject *oid, Py_ssize_t depth)
{
    long long id = PyLong_AsLongLong(oid);
    if (id == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return decline(x);
    }
    PyObject *record = PyDict_GetItemWithError(x->records, oid);
    if (record == NULL) {
        return PyErr_Occurred() ? NULL : decline(x); /* lost: the Python walk says so */
    }
    if (!PyTuple_CheckExact(record) || PyTuple_GET_SIZE(record) < 2) {
        return decline(x);
    }
    for (int i = 0; i < x->npath; i++) {
        if (x->path[i] == id) {
            if (x->ntrack > 0 && PySet_Add(x->track[x->ntrack - 1].reach, oid) < 0) {
                return NULL;
            }
            return Py_BuildValue("(iOO)", V_REF, oid, PyTuple_GET_ITEM(record, 1));
        }
    }
    if (x->trees == NULL) {
        return object_tree(x, oid, id, record, depth);
    }
    PyObject *key = Py_BuildValue("(On)", oid, depth);
    if (key == NULL) {
        return NULL;
    }
    PyObject *tree = memo_use(x, key);
    if (tree != NULL || PyErr_Occurred()) {
        Py_DECREF(key);
        return tree;
    }
    if (x->ntrack >= MAX_PATH) {
        Py_DECREF(key);
        return decline(x);
    }
    Py_ssize_t budget = x->budget;
    Track *mine = &x->track[x->ntrack];
    mine->reach = PySet_New(NULL);
    mine->slack = UNBOUNDED;
    if (mine->reach == NULL || PySet_Add(mine->reach, oid) < 0) {
        Py_XDECREF(mine->reach);
        Py_DECREF(key);
        return NULL;
    }
    x->ntrack++;
    tree = object_tree(x, oid, id, record, depth);
    x->ntrack--;
    PyObject *reach = mine->reach;
    Py_ssize_t least = mine->slack;
    int rc = 0;
    if (x->ntrack > 0) {
        Track *top = &x->track[x->ntrack - 1];
        rc = set_update(top->reach, reach);
        top->slack = least < top->slack ? least : top->slack;
    }
    if (rc == 0 && tree != NULL && least >= 0) {
        int off = off_path(x, reach);
        rc = off < 0 ? -1 : off ? memo_keep(x, key, tree, budget - x->budget, budget - least, reach)
                                : 0;
    }
    Py_DECREF(reach);
    Py_DECREF(key);
    if (rc < 0) {
        Py_XDECREF(tree);
        return NULL;
    }
    return tree;
}

/* `_Expansion.secret_pair`: no path check, two nodes, even past the budget. */
static PyObject *
secret_pair(Expansion *x, PyObject *f, Py_ssize_t depth)
{
    if (PyTuple_GET_SIZE(f) != 5) {
        return decline(x);
    }
    PyObject *oid = PyTuple_GET_ITEM(f, 1), *type_name = PyTuple_GET_ITEM(f, 2);
    if (depth >= x->max_depth) {
        return Py_BuildValue("(iOOiO)", V_SEQ, oid, type_name, 2, Py_None);
    }
    x->budget -= 2;
    PyObject *key = form(x, PyTuple_GET_ITEM(f, 3), depth + 1);
    if (key == NULL) {
        return NULL;
    }
    return Py_BuildValue("(iOOi[N(iO)])", V_SEQ, oid, type_name, 2, key, V_REDACTED,
                         PyTuple_GET_ITEM(f, 4));
}

/* `_Expansion.form`: an atom or a leaf as it is, a reference expanded. */
static PyObject *
form(Expansion *x, PyObject *f, Py_ssize_t depth)
{
    if (!PyTuple_CheckExact(f)) {
        return Py_NewRef(f); /* an atom */
    }
    if (PyTuple_GET_SIZE(f) == 0) {
        return decline(x);
    }
    long tag = tag_at(f, 0);
    if (tag < 0) {
        return decline(x); /* every venc and form starts with an int tag */
    }
    if (tag == V_OREF) {
        return PyTuple_GET_SIZE(f) == 2 && PyLong_CheckExact(PyTuple_GET_ITEM(f, 1))
                   ? object(x, PyTuple_GET_ITEM(f, 1), depth)
                   : decline(x);
    }
    if (tag == V_ENUM) {
        if (PyTuple_GET_SIZE(f) < 4) {
            return decline(x);
        }
        PyObject *value = form(x, PyTuple_GET_ITEM(f, 3), depth + 1);
        return value != NULL ? Py_BuildValue("(iOON)", V_ENUM, PyTuple_GET_ITEM(f, 1),
                                             PyTuple_GET_ITEM(f, 2), value)
                             : NULL;
    }
    if (tag == R_PAIR) {
        return secret_pair(x, f, depth);
    }
    return Py_NewRef(f); /* a leaf venc */
}

/* The walk's state for one recording's limits and memo (None: no memo). 0, or -1. */
static int
expansion_init(Expansion *x, PyObject *records, PyObject *memo)
{
    x->records = records;
    x->ntrack = 0;
    x->hits = 0;
    x->trees = x->dependents = NULL;
    if (memo == Py_None) {
        return 0;
    }
    x->trees = PyObject_GetAttrString(memo, "trees");
    x->dependents = x->trees != NULL ? PyObject_GetAttrString(memo, "dependents") : NULL;
    if (x->dependents == NULL || !PyDict_CheckExact(x->trees)
        || !PyDict_CheckExact(x->dependents)) {
        Py_CLEAR(x->trees);
        Py_CLEAR(x->dependents);
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "the memo's trees and dependents must be dicts");
        }
        return -1;
    }
    return 0;
}

/* Count the memo's hits on the memo (`ExpansionMemo.hits`) and let go of its dicts. 0, or -1. */
static int
expansion_done(Expansion *x, PyObject *memo)
{
    int rc = 0;
    if (x->hits > 0) {
        PyObject *hits = PyObject_GetAttrString(memo, "hits");
        PyObject *add = hits != NULL ? PyLong_FromSsize_t(x->hits) : NULL;
        PyObject *more = add != NULL ? PyNumber_Add(hits, add) : NULL;
        rc = more == NULL || PyObject_SetAttrString(memo, "hits", more) < 0 ? -1 : 0;
        Py_XDECREF(hits);
        Py_XDECREF(add);
        Py_XDECREF(more);
    }
    Py_CLEAR(x->trees);
    Py_CLEAR(x->dependents);
    return rc;
}

/* One name's tree from its entry, or NotImplemented (declined; a new reference either way),
 * or NULL on error. */
static PyObject *
expand_one(Expansion *x, PyObject *f, Py_ssize_t max_nodes)
{
    x->budget = max_nodes;
    x->npath = 0;
    x->declined = 0;
    PyObject *tree = form(x, f, 0);
    if (x->declined) {
        Py_XDECREF(tree);
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_NotImplemented);
    }
    return tree;
}

/* expand(form, records, max_depth, max_items, max_attrs, max_nodes, memo=None): the tree, or
 * NotImplemented where the Python walk must decide. */
static PyObject *
expand(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *f, *records, *memo = Py_None;
    Py_ssize_t max_nodes;
    Expansion x;
    if (!PyArg_ParseTuple(args, "OO!nnnn|O:expand", &f, &PyDict_Type, &records, &x.max_depth,
                          &x.max_items, &x.max_attrs, &max_nodes, &memo)
        || expansion_init(&x, records, memo) < 0) {
        return NULL;
    }
    PyObject *tree = expand_one(&x, f, max_nodes);
    if (expansion_done(&x, memo) < 0) {
        Py_CLEAR(tree);
    }
    return tree;
}

/* `apply_record`: file an event's record (or R_GROWN change of one) for `oid` in `table`; a
 * growth of a record the table does not hold drops the object instead. 0, or -1. */
static int
apply_record(PyObject *table, PyObject *oid, PyObject *value)
{
    int growth = PyTuple_CheckExact(value) && PyTuple_GET_SIZE(value) > 0
                 && tag_at(value, 0) == R_GROWN;
    if (!growth) {
        return PyDict_SetItem(table, oid, value);
    }
    PyObject *base = PyDict_GetItemWithError(table, oid);
    if (base == NULL && PyErr_Occurred()) {
        return -1;
    }
    long kind = base != NULL && PyTuple_CheckExact(base) && PyTuple_GET_SIZE(base) >= 4
                    ? tag_at(base, 0)
                    : -1;
    if ((kind != R_SEQ && kind != R_MAP) || PyTuple_GET_SIZE(value) != 3) {
        if (base == NULL) {
            return 0;
        }
        return PyDict_DelItem(table, oid);
    }
    /* [*base[3], *value[2]] */
    PyObject *forms = PySequence_List(PyTuple_GET_ITEM(base, 3));
    PyObject *more = forms != NULL ? PySequence_Fast(PyTuple_GET_ITEM(value, 2), "forms") : NULL;
    int rc = more != NULL ? 0 : -1;
    for (Py_ssize_t i = 0; rc == 0 && i < PySequence_Fast_GET_SIZE(more); i++) {
        rc = PyList_Append(forms, PySequence_Fast_GET_ITEM(more, i));
    }
    Py_XDECREF(more);
    PyObject *grown = rc == 0 ? PyTuple_Pack(4, PyTuple_GET_ITEM(base, 0),
                                             PyTuple_GET_ITEM(base, 1), PyTuple_GET_ITEM(value, 1),
                                             forms)
                              : NULL;
    Py_XDECREF(forms);
    rc = grown != NULL ? PyDict_SetItem(table, oid, grown) : -1;
    Py_XDECREF(grown);
    return rc;
}

/* `ExpansionMemo.forget`: `oid` has a new record, so every tree that reached it goes. */
static int
memo_forget(Expansion *x, PyObject *oid)
{
    if (x->dependents == NULL) {
        return 0;
    }
    PyObject *keys = PyDict_GetItemWithError(x->dependents, oid);
    if (keys == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    Py_INCREF(keys);
    int rc = PyDict_DelItem(x->dependents, oid);
    for (Py_ssize_t i = 0; rc == 0 && PyList_Check(keys) && i < PyList_GET_SIZE(keys); i++) {
        PyObject *key = PyList_GET_ITEM(keys, i);
        int has = PyDict_Contains(x->trees, key);
        rc = has < 0 ? -1 : has ? PyDict_DelItem(x->trees, key) : 0;
    }
    Py_DECREF(keys);
    return rc;
}

/* expand_events(events, max_depth, max_items, max_attrs, max_nodes, memo, fallback):
 * object_records.expand_events in C; `fallback(entry, table)` expands a name this walk
 * declines (the Python walk, with its answer for a lost record). */
static PyObject *
expand_events(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *events, *memo, *fallback;
    Py_ssize_t max_nodes;
    Expansion x;
    if (!PyArg_ParseTuple(args, "O!nnnnOO:expand_events", &PyList_Type, &events, &x.max_depth,
                          &x.max_items, &x.max_attrs, &max_nodes, &memo, &fallback)) {
        return NULL;
    }
    PyObject *table = PyDict_New();
    if (table == NULL || expansion_init(&x, table, memo) < 0) {
        Py_XDECREF(table);
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(events);
    PyObject *out = PyList_New(count);
    for (Py_ssize_t i = 0; out != NULL && i < count; i++) {
        PyObject *event = PyList_GET_ITEM(events, i);
        PyObject *changes = PyTuple_CheckExact(event) && PyTuple_GET_SIZE(event) == 8
                                ? PyTuple_GET_ITEM(event, 6)
                                : NULL;
        if (changes == NULL || !PyTuple_CheckExact(changes) || PyTuple_GET_SIZE(changes) == 0) {
            if (changes != NULL && changes != Py_None && !PyTuple_CheckExact(changes)) {
                PyErr_SetString(PyExc_TypeError, "an event's changes must be a tuple or None");
                Py_CLEAR(out);
                break;
            }
            PyList_SET_ITEM(out, i, Py_NewRef(event));
            continue;
        }
        Py_ssize_t n = PyTuple_GET_SIZE(changes), named = 0;
        PyObject *trees = PyTuple_New(n);
        int rc = trees != NULL ? 0 : -1;
        for (Py_ssize_t k = 0; rc == 0 && k < n; k++) {
            PyObject *pair = PyTuple_GET_ITEM(changes, k);
            if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) {
                PyErr_SetString(PyExc_TypeError, "a change must be a (key, value) pair");
                rc = -1;
                break;
            }
            PyObject *key = PyTuple_GET_ITEM(pair, 0), *value = PyTuple_GET_ITEM(pair, 1);
            if (PyLong_CheckExact(key)) {
                rc = apply_record(table, key, value) < 0 || memo_forget(&x, key) < 0 ? -1 : 0;
                continue;
            }
            PyObject *tree = PyTuple_CheckExact(value) ? expand_one(&x, value, max_nodes)
                                                       : Py_NewRef(value); /* an atom */
            if (tree == Py_NotImplemented) {
                Py_DECREF(tree);
                tree = PyObject_CallFunctionObjArgs(fallback, value, table, NULL);
            }
            PyObject *one = tree != NULL ? PyTuple_Pack(2, key, tree) : NULL;
            Py_XDECREF(tree);
            if (one == NULL) {
                rc = -1;
                break;
            }
            PyTuple_SET_ITEM(trees, named++, one);
        }
        PyObject *result = NULL;
        if (rc == 0) {
            PyObject *shown = named > 0 ? PyTuple_GetSlice(trees, 0, named) : Py_NewRef(Py_None);
            result = shown != NULL ? PyTuple_New(8) : NULL;
            for (int f = 0; result != NULL && f < 8; f++) {
                PyTuple_SET_ITEM(result, f,
                                 Py_NewRef(f == 6 ? shown : PyTuple_GET_ITEM(event, f)));
            }
            Py_XDECREF(shown);
        }
        Py_XDECREF(trees);
        if (result == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, i, result);
    }
    if (expansion_done(&x, memo) < 0) {
        Py_CLEAR(out);
    }
    Py_DECREF(table);
    return out;
}

static PyMethodDef methods[] = {
    {"expand_events", expand_events, METH_VARARGS,
     "expand_events(events, max_depth, max_items, max_attrs, max_nodes, memo, fallback): "
     "object_records.expand_events, with fallback(entry, table) for the names it declines."},
    {"expand", expand, METH_VARARGS,
     "expand(form, records, max_depth, max_items, max_attrs, max_nodes): the tree of a name's "
     "entry, as object_records.expand gives it, or NotImplemented where that one must decide."},
    {NULL, NULL, 0, NULL},
};

static int
exec_module(PyObject *module)
{
    str_args = PyUnicode_InternFromString("args");
    if (str_args == NULL) {
        return -1;
    }
    PyObject *tags = Py_BuildValue(
        "{sisisisisisisisisisisisisi}", "V_REDACTED", V_REDACTED, "V_SEQ", V_SEQ, "V_MAP", V_MAP,
        "V_OBJ", V_OBJ, "V_REF", V_REF, "V_ENUM", V_ENUM, "V_ERROR", V_ERROR, "V_OREF", V_OREF,
        "R_SEQ", R_SEQ, "R_MAP", R_MAP, "R_OBJ", R_OBJ, "R_NAMEDTUPLE", R_NAMEDTUPLE, "R_PAIR",
        R_PAIR);
    if (tags == NULL || PyModule_AddObject(module, "TAGS", tags) < 0) {
        Py_XDECREF(tags);
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, exec_module},
    {0, NULL},
};

static struct PyModuleDef expand_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "replay._expand",
    .m_doc = "A name's entry expanded over object records (replay/object_records.py), in C.",
    .m_size = 0,
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC
PyInit__expand(void)
{
    return PyModuleDef_Init(&expand_module);
}
