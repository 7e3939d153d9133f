/* Content fingerprints and the value cache: the C core's "has this value changed since it was
 * encoded?" and "this object, unchanged, was encoded before" without running the encoder.
 *
 * See _fingerprint.c for the rules and docs/internals.md ("Change detection") for what a
 * fingerprint can and cannot see. Used by _ctracer.c only. */

#ifndef REPLAY_FINGERPRINT_H
#define REPLAY_FINGERPRINT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "_attrs.h"

#if PY_VERSION_HEX < 0x030C0000
/* 3.11 has no "compact" ints (3.12's one-digit ints); these mirror 3.12's definitions on 3.11's
 * representation (a sign-magnitude digit array, the sign in ob_size). */
static inline int
PyUnstable_Long_IsCompact(const PyLongObject *op)
{
    return Py_ABS(Py_SIZE(op)) <= 1;
}

static inline Py_ssize_t
PyUnstable_Long_CompactValue(const PyLongObject *op)
{
    Py_ssize_t size = Py_SIZE(op);
    return size == 0 ? 0 : size * (Py_ssize_t)op->ob_digit[0];
}

/* 3.12's PyType_GetDict: a new reference to the type's own dict. */
static inline PyObject *
PyType_GetDict(PyTypeObject *tp)
{
    return Py_XNewRef(tp->tp_dict);
}

/* 3.12's PyUnstable_Type_AssignVersionTag: on 3.11 a method cache lookup assigns the tag (it
 * reads the dicts of the MRO, whose keys are str: no Python code runs). */
static inline int
PyUnstable_Type_AssignVersionTag(PyTypeObject *tp)
{
    static PyObject *name = NULL;
    if (name == NULL) {
        name = PyUnicode_InternFromString("__dict__");
        if (name == NULL) {
            PyErr_Clear();
            return 0;
        }
    }
    (void)_PyType_Lookup(tp, name);
    return tp->tp_version_tag != 0;
}

/* PyMemberDef's fields (3.11 declares them in structmember.h, whose T_* names clash with ours)
 * and the member type of an object slot. */
struct PyMemberDef {
    const char *name;
    int type;
    Py_ssize_t offset;
    int flags;
    const char *doc;
};
#define Py_T_OBJECT_EX 16
#endif
#define FP_MEMBER_INT 1     /* Py_T_INT (T_INT on 3.11): a member that is a C int */
#define FP_MEMBER_OBJECT 6  /* Py_T_OBJECT (T_OBJECT): an object member, None when unset */
#define FP_MEMBER_BOOL 14   /* Py_T_BOOL: a C char, shown as a bool */
/* C integer members, shown as ints: Py_T_LONG, Py_T_UINT, Py_T_ULONG, Py_T_LONGLONG,
 * Py_T_ULONGLONG, Py_T_PYSSIZET (and FP_MEMBER_INT above). */
#define FP_MEMBER_LONG 2
#define FP_MEMBER_UINT 11
#define FP_MEMBER_ULONG 12
#define FP_MEMBER_LONGLONG 17
#define FP_MEMBER_ULONGLONG 18
#define FP_MEMBER_PYSSIZET 19

/* Whether a member of this type is a C integer read by fp_slot_int. */
static inline int
fp_int_member(int type)
{
    return type == FP_MEMBER_INT || type == FP_MEMBER_LONG || type == FP_MEMBER_UINT
           || type == FP_MEMBER_ULONG || type == FP_MEMBER_LONGLONG
           || type == FP_MEMBER_ULONGLONG || type == FP_MEMBER_PYSSIZET;
}

/* Cache of "how are instances of this class read" answers, keyed by the class's address and
 * checked against its version tag (which changes whenever the class does, and is never given to
 * another class), so no reference to the class is kept. Open addressing: a class is looked for
 * in the FP_TYPE_PROBES entries from its home slot, so that classes in use together do not
 * push each other out (with 1,024 entries and 16 probes, 400 classes filled a window now and
 * then; with 4,096 and 32 a program would need thousands of classes in use for that). (A direct-mapped cache did, in about one run of richards.py in ten,
 * depending on where the classes were allocated: each walk then missed a class, asked the
 * encoder about it and pushed the other out, and the recording ran 17 times slower.) */
#define FP_TYPE_CACHE 4096
#define FP_TYPE_PROBES 32

/* Direct-mapped cache of encoded values by object (a bounded memory of the last venc of up to
 * this many objects). */
#define FP_VALUE_CACHE 4096

/* Cache of the redactor's answers by name object, in sets of two (the newest answer first):
 * attribute names are few and interned, and a pointer comparison is much cheaper than the dict
 * lookup it replaces (one per attribute of every object walked). Two names in use together that
 * map to one set both stay. */
#define FP_NAME_CACHE 1024
/* Values read by their C repr (FP_CREPR) whose content is remembered, by object. */
#define FP_CREPR_CACHE 1024

/* At most this many encoder nodes held by the value cache (about 100 bytes each). */
#define FP_MAX_CACHED_NODES 131072

/* Object records made by fp_records, by object (direct-mapped): the record of an object whose
 * own level has not changed (the same items, by identity) is the one made before, so a name's
 * reach is not recorded again only to be found equal, and the list's table finds it by
 * identity. Valid while the identity map's entries stand (entry_changes[1]): a record holds
 * its items' serials. */
#define FP_RECORD_MEMO 4096
typedef struct {
    void *obj;          /* the object (not held: `own` covers all its record depends on) */
    uint64_t own;       /* its own level: type, length, its items' identities */
    uint64_t changes;   /* entry_changes[1] when it was made */
    PyObject *record;   /* strong */
} FpRecordMemo;

/* Subtrees whose records a thread's list already holds (fp_records), by tree node
 * (direct-mapped). The C encoder shares a node between versions of a value only while every
 * object it shows reads the same, so when the list's table (`ThreadState.written`) still holds
 * each record filed for that node, walking it again would file nothing: one lookup per record
 * stands for the walk. The records are checked, not trusted, because the table may have moved on
 * (a newer version filed through another name, the table forgotten at a hand-off): any record
 * not found identical there and the node is walked as before. Nodes and records are held; a
 * subtree of more than FP_FILED_MAX records is not kept, which bounds what the memo keeps alive. */
#define FP_FILED_MEMO 1024
#define FP_FILED_MAX 64
typedef struct {
    PyObject *node;  /* strong: a venc tree node (a container's or an object's 5-tuple) */
    PyObject *filed; /* strong: (serial, record, serial, record, ...) of the node's subtree */
} FpFiledMemo;

/* How the walk and the C encoder read instances of a class. */
enum {
    FP_NOT_WALKED = 0, /* the Python encoder's rules only */
    FP_PLAIN,          /* a plain object: its instance __dict__ alone */
    FP_LIST,           /* list, tuple, dict and their subclasses, read as the container */
    FP_TUPLE,          /* (`_seq`, `_map`) */
    FP_DICT,
    FP_SET,            /* a set or frozenset, or a subclass of one */
    FP_OPAQUE,         /* a class, function, method, builtin, module or generator, a code
                        * object, a descriptor or a bound slot wrapper: a text and an
                        * identity; an enum member (fp_opaque) */
    FP_OPAQUE_TYPE,    /* any other object without an instance dict or slots (an iterator,
                        * `map`, a dict view): a text naming its class, and an identity */
    FP_SLOTTED,        /* an instance of a Python class with `__slots__`: its instance dict
                        * if it has one, then its slots (FpTypeEntry.slots) */
    FP_DATETIME,       /* an exact date, datetime, time or timedelta: a value read by its
                        * fields (no identity), its text from the encoder (`encode_opaque`) */
    FP_NAMEDTUPLE,     /* a namedtuple: an object whose attributes are its fields
                        * (FpTypeEntry.fields) */
    FP_CREPR,          /* a value of a C type shown by its C repr (a Decimal): read by that
                        * repr (no identity), its venc from the encoder (`encode_opaque`) */
    FP_UUID,           /* a uuid.UUID: a value read by its `int` slot (FpTypeEntry.slots[0]) */
    FP_PATH,           /* a pathlib.PurePosixPath or a subclass: a value read by the slots its
                        * text is made of (FpTypeEntry.slots), its text from the encoder */
    FP_DEQUE,          /* a collections.deque or a subclass: its items through deque's own
                        * iterator (`_take_deque`) */
    FP_SOCKET,         /* a _socket.socket or a subclass: a text (fd, family, type, proto)
                        * and an identity */
    FP_CREPR_CHECKED,  /* a re.Pattern or re.Match: FP_CREPR once its one checked member
                        * (FpTypeEntry.slots[0]) is an exact str or bytes */
    FP_EXCEPTION,      /* an exception: its `args` (BaseException's C field), then its
                        * instance dict, as a plain object's, then its object member slots
                        * (builtin C fields such as `StopIteration.value`, or `__slots__`) */
    FP_LOCK,           /* a _thread.lock: a text saying whether it is locked, and an identity */
};

/* Whether instances of a class of this kind are leaves that fp_opaque reads (a text the encoder
 * makes, `encode_opaque`, and an identity or a value): the walk and the C encoder treat every
 * such kind alike (walk_opaque, enc_opaque), whatever reads its content (opaque_content). */
static inline int
fp_leaf_kind(int kind)
{
    return kind == FP_OPAQUE || kind == FP_OPAQUE_TYPE || kind == FP_DATETIME || kind == FP_CREPR
           || kind == FP_UUID || kind == FP_PATH || kind == FP_SOCKET || kind == FP_CREPR_CHECKED
           || kind == FP_LOCK;
}

/* SnapshotEncoder.walk_kind's answers for the kinds above but FP_PLAIN (snapshot.WALK_*; for
 * a plain object it answers an index into the class's MRO). */
#define FP_WALK_LIST (-2)
#define FP_WALK_TUPLE (-3)
#define FP_WALK_DICT (-4)
#define FP_WALK_SET (-5)
#define FP_WALK_OPAQUE (-6)
#define FP_WALK_OPAQUE_TYPE (-7)
#define FP_WALK_SLOTTED (-8)
#define FP_WALK_DATETIME (-9)
#define FP_WALK_NAMEDTUPLE (-10)
#define FP_WALK_CREPR (-11)
#define FP_WALK_UUID (-12)
#define FP_WALK_PATH (-13)
#define FP_WALK_DEQUE (-14)
#define FP_WALK_GENERIC_DICT (-15)
#define FP_WALK_SOCKET (-16)
#define FP_WALK_CREPR_CHECKED (-17)
#define FP_WALK_EXCEPTION (-18)
#define FP_WALK_LOCK (-19)

/* Classes whose instances may be such a container even when the class is not a heap type (a
 * defaultdict; sets have no flag: PyAnySet_Check). */
#define FP_CONTAINER_FLAGS \
    (Py_TPFLAGS_LIST_SUBCLASS | Py_TPFLAGS_TUPLE_SUBCLASS | Py_TPFLAGS_DICT_SUBCLASS)

/* `deque.__len__(v)`, and its item `i` (a new reference) as `deque.__iter__(v)` gives it, for
 * `v` a deque or an instance of a subclass: through the deque class's own C slots (a subclass's
 * Python __len__ or __getitem__ is never called), in place: no iterator is allocated, and no
 * Python code runs. Items near the ends are found at once (the walk reads at most max_items
 * from the left). */
static inline Py_ssize_t
fp_deque_len(PyTypeObject *deque_type, PyObject *v)
{
    return deque_type->tp_as_sequence->sq_length(v);
}

static inline PyObject *
fp_deque_item(PyTypeObject *deque_type, PyObject *v, Py_ssize_t i)
{
    return deque_type->tp_as_sequence->sq_item(v, i);
}

/* Whether the walk reads `v` as a part (walk_part: a list, tuple, dict, set or deque, a
 * subclass of one, an instance of a Python class, an exception) rather than as a leaf. The
 * walk and the C encoder decide with this one test, so that they meet the same parts.
 * `deque_type`: the Fingerprinter's (a static type on 3.11, a heap type since). */
static inline int
fp_is_part(PyObject *v, PyTypeObject *deque_type)
{
    PyTypeObject *tp = Py_TYPE(v);
    return tp == &PyList_Type || tp == &PyTuple_Type || tp == &PyDict_Type
           || PyAnySet_CheckExact(v) || tp == deque_type
           || PyType_HasFeature(tp, Py_TPFLAGS_HEAPTYPE | FP_CONTAINER_FLAGS)
           || PyExceptionInstance_Check(v); /* builtin exceptions are static types */
}

/* One slot of an FP_SLOTTED class, where `_slot_attrs` reads it: a member descriptor of type
 * Py_T_OBJECT_EX (NULL when unset: not shown), or, for a C class's own members (an io object's
 * `raw`, `_finalizing`...), FP_MEMBER_OBJECT, FP_MEMBER_BOOL, FP_MEMBER_INT or
 * FP_MEMBER_PYSSIZET. */
typedef struct {
    PyObject *name;       /* an exact str, strong */
    Py_ssize_t offset;    /* of its value in the instance */
    int type;             /* the member's type (Py_T_OBJECT_EX or an FP_MEMBER_*) */
} FpSlot;

/* A slot's value as `_member_get` gives it: a new reference, or NULL (no exception set) for an
 * unset Py_T_OBJECT_EX slot, which is not shown. NULL with an exception: out of memory. */
static inline PyObject *
fp_slot_get(PyObject *v, const FpSlot *slot)
{
    char *p = (char *)v + slot->offset;
    switch (slot->type) {
    case FP_MEMBER_BOOL:
        return Py_NewRef(*p ? Py_True : Py_False);
    case FP_MEMBER_INT:
        return PyLong_FromLong(*(int *)p);
    case FP_MEMBER_LONG:
        return PyLong_FromLong(*(long *)p);
    case FP_MEMBER_UINT:
        return PyLong_FromUnsignedLong(*(unsigned int *)p);
    case FP_MEMBER_ULONG:
        return PyLong_FromUnsignedLong(*(unsigned long *)p);
    case FP_MEMBER_LONGLONG:
        return PyLong_FromLongLong(*(long long *)p);
    case FP_MEMBER_ULONGLONG:
        return PyLong_FromUnsignedLongLong(*(unsigned long long *)p);
    case FP_MEMBER_PYSSIZET:
        return PyLong_FromSsize_t(*(Py_ssize_t *)p);
    case FP_MEMBER_OBJECT: {
        PyObject *x = *(PyObject **)p;
        return Py_NewRef(x != NULL ? x : Py_None);
    }
    default:
        return Py_XNewRef(*(PyObject **)p);
    }
}

/* An integer member's 64 bits, for the walk (which hashes them without making the int). */
static inline uint64_t
fp_slot_int(PyObject *v, const FpSlot *slot)
{
    const char *p = (const char *)v + slot->offset;
    switch (slot->type) {
    case FP_MEMBER_INT:
        return (uint64_t)(long long)*(const int *)p;
    case FP_MEMBER_LONG:
        return (uint64_t)(long long)*(const long *)p;
    case FP_MEMBER_UINT:
        return (uint64_t)*(const unsigned int *)p;
    case FP_MEMBER_ULONG:
        return (uint64_t)*(const unsigned long *)p;
    case FP_MEMBER_LONGLONG:
        return (uint64_t)*(const long long *)p;
    case FP_MEMBER_ULONGLONG:
        return (uint64_t)*(const unsigned long long *)p;
    default:
        return (uint64_t)(long long)*(const Py_ssize_t *)p;
    }
}

typedef struct {
    PyTypeObject *type;   /* never dereferenced after the entry is made */
    unsigned int version; /* tp_version_tag when the answer was given */
    int kind;             /* FP_* */
    PyObject *name;       /* its name in a venc (SnapshotEncoder.class_name), strong; walked
                           * kinds only */
    int has_dict;         /* FP_SLOTTED: instances have the plain instance dict, read first
                           * (FP_EXCEPTION: always) */
    Py_ssize_t nslots;    /* FP_SLOTTED, FP_EXCEPTION: its slots, in the encoder's order
                           * (walk_slots) */
    FpSlot *slots;        /* PyMem, owned */
    PyObject *fields;     /* FP_NAMEDTUPLE: its field names, a tuple of exact str (strong) */
} FpTypeEntry;

/* Memo of container_serial's answers by address, two ways per slot (looking an entry up costs
 * an int and a dict lookup): an entry found is valid while the identity map's entry_changes[2]
 * stands still and the C encoder replaces no entry at that address (fp_forget_address), "no
 * entry" while entry_changes[0] does (entry_memo_stands). */
#define FP_ENTRY_MEMO 4096

typedef struct {
    void *addr;           /* never dereferenced */
    uint64_t changes;     /* entry_changes[2] (found) or [0] (none) when it was read */
    uint64_t serial;      /* the answer */
} FpEntryMemo;

/* The C encoder's memo of the identity map's answers for objects that take no weak references,
 * by address, two ways per slot: valid while the map replaces no entry and the generations do
 * not rotate (entry_changes[2]; an entry the C encoder replaces clears this memo of its address
 * alone, fp_forget_address) and the object there is of the same type (a tuple: same size, first
 * and last items), which is what the map's entry is checked against. Entries added at other
 * addresses do not matter: until 2026-11-28 every addition (entry_changes[0]) emptied the memo,
 * and orders.py, which makes a tuple at every step of an order's history, asked the map for its
 * lists, dicts and slotted orders 110,000 times. */
typedef struct {
    void *addr;           /* never dereferenced, nor are type, first and last */
    uint64_t changes;
    PyTypeObject *type;
    Py_ssize_t size;
    void *first;
    void *last;
    PyObject *serial;     /* strong */
} FpKeyMemo;

/* The parts fp_of's walks met (lists, tuples, dicts, objects), in walk order, each with its own
 * fingerprint: the C encoder reads them instead of walking each part again (_encode.c). */
#define FP_MAX_PARTS 4096

typedef struct {
    void *ptr;              /* the part (never dereferenced) */
    int depth;
    int next;               /* index of the first entry after this part's own parts */
    Py_ssize_t budget_in;   /* the encoder's budget before and after the part */
    Py_ssize_t budget_out;
    uint64_t fp;            /* its fingerprint as fp_subtree gives it, or 0: not to be shared */
    uint64_t content;       /* the content half of fp */
} FpPart;

/* A part a walk met, remembered for the rest of the log (that walk, and the others of the same
 * callback): met again (a body held by several pairs, an item by several orders, a constraint
 * by several variables, `v1` held by `bodies`), it is not walked again but its hash and its
 * entries in fp->parts are copied (walk_part), at its depth or at another where the depth
 * limit cuts nothing in it (part_memo_fits). */
#define FP_PART_MEMO 1024
#define FP_FRESH_MEMOS 256

typedef struct {
    void *ptr;              /* the part (never dereferenced) */
    uint64_t ids;           /* its walk's identity serials, before they fold into its parent's */
    uint32_t gen;           /* fp->memo_gen of the log that holds it (another: a free entry) */
    int32_t margin_rel;     /* its walk's least budget margin, less the budget it was given
                             * (INT32_MAX: none, or more than a budget holds) */
    int16_t slot;           /* its entry in fp->parts; its own parts follow, up to its `next` */
    int8_t depth;
    int8_t min_ref_rel;     /* its walk's lowest back reference, above its own path index
                             * (FP_MAX_PATH: none) */
    int8_t reach;           /* how far below it its deepest part is (0: no part of its own) */
    int8_t any_depth;       /* the depth limit cut nothing in it and it holds no secret pair:
                             * a copy stands at any depth where its reach is cut nowhere either */
} FpPartMemo;

/* Beside each memo (apart, to keep the memo's lines as they were): what tells its object from
 * another later made at its address (part_tag; 0: untold), taken when the callback whose walk
 * met it offers to carry the log (fp_carry_from), read when a later one copies it. */
typedef uint64_t FpMemoTag;

/* An attribute of a plain object as the walk mixes it: `n` words (its name's hash, then what
 * walk_value mixes for an atom, or a secret name's marker and the value's class, or the cut of
 * a name that is not an exact str), or n = 0: a value walked as it is met (a part, an opaque
 * value). `name` and `value` are borrowed from the instance dict, which holds them while its
 * version stands; for inline values, the entry holds the name and each value of n words
 * (FpOwnLevel.owned). */
typedef struct {
    PyObject *name, *value;
    int n;
    uint64_t in[4];
} FpOwnAttr;

/* The first `count` attributes of a plain object as the walk read them. A re-check of an
 * object whose own attributes did not change takes their words from here instead of reading
 * them, and walks only the values that are parts (richards.py: 98% of the 15 million objects
 * its walks meet had not changed since the last walk that met them). Two kinds of entry:
 * - an instance dict's, kept while its version tag (PEP 509: every change of a dict gives it a
 *   new one, unique in the process) is `version`; 3.11 and 3.12 only: 3.13 writes an attribute
 *   into the object's inline values without a new version, even when the dict exists;
 * - inline values' (the object has no dict, _attrs.h), which have no version: kept while each
 *   of the first `count` attributes still has the same name and the same value (pointers). The
 *   entry holds those names and the values of n words (atoms of the builtin immutable types
 *   only), so that neither address is reused meanwhile by another object; a value walked as a
 *   part is read again as it is now anyway. */
typedef struct {
    const void *dict; /* the dict or the inline values: compared, never dereferenced */
    uint64_t version;
    Py_ssize_t count, cap;
    FpOwnAttr *attrs;
    uint64_t atoms; /* the words of the `count` attributes that are not walked, folded */
    int owned;      /* an inline values' entry: it holds its names and atoms */
    int busy;       /* read or written by a walk now: a walk it calls leaves it alone */
} FpOwnLevel;

#define FP_OWN_LEVELS 1024 /* direct-mapped by the dict's or the values' address */
#if PY_VERSION_HEX < 0x030D0000
#define FP_DICT_VERSIONS 1 /* an instance dict's entries are kept by its version */
#else
#define FP_DICT_VERSIONS 0
#endif

typedef struct {
    PyObject *name;       /* an exact str (strong: its address is not reused meanwhile) */
    int secret;           /* the redactor's answer for it */
} FpNameEntry;

typedef struct {
    void *obj;            /* the object (never dereferenced) */
    PyTypeObject *type;   /* its class then (never dereferenced) */
    PyObject *ref;        /* a weak reference to it (strong), or NULL if it takes none */
    uint64_t fp;          /* its fingerprint when venc was confirmed */
    Py_ssize_t cost;      /* encoder nodes in venc (about) */
    PyObject *venc;       /* strong */
} FpValueEntry;

/* The longest recursion path a walk or an encoding follows (deeper: not mirrored). */
#define FP_MAX_PATH 64

typedef struct {
    int enabled;
    int can_encode;          /* fp_encode may build vencs (the rule gave what it needs) */
    /* CaptureLimits, mirrored: the walk reads exactly what the encoder would. */
    int max_depth;
    Py_ssize_t max_items;
    Py_ssize_t max_attrs;
    Py_ssize_t max_nodes;
    Py_ssize_t max_string;
    Py_ssize_t last_cost;    /* nodes of the budget the last successful walk used */
    uint64_t last_content;   /* the content half of fp_of's last fingerprint (no serials) */
    PyObject *ref_type;      /* identity._Ref (strong), or NULL: serials are not read */
    PyObject *ref_callback;  /* the callback of the identity map's references (strong) */
    Py_ssize_t serial_offset; /* where a _Ref keeps its serial */
    Py_ssize_t oid_offset;    /* and its object's id (weak_insert, _encode.c) */
    PyObject *entries;       /* the identity map's young entries by id (strong), or NULL */
    /* The map itself and what its insert of a young entry uses (fp_young_insert), all strong,
     * or NULL: its lock, its serial counter (`_next`), its young generation's size. */
    PyObject *identity_map, *identity_lock, *identity_next;
    PyObject *str_acquire, *str_release, *str_old, *str_young; /* interned names it uses */
    Py_ssize_t identity_limit;
    Py_buffer entry_changes; /* IdentityMap.entry_changes, two uint64 (held if entries is set) */
    FpEntryMemo *entry_memo; /* FP_ENTRY_MEMO entries, or NULL */
    FpKeyMemo *key_memo;     /* FP_ENTRY_MEMO entries, or NULL */
    FpRecordMemo *record_memo; /* FP_RECORD_MEMO entries (fp_records), or NULL until needed */
    FpFiledMemo *filed_memo;   /* FP_FILED_MEMO entries (fp_records), or NULL until needed */
    uint64_t filed_hits;       /* subtrees fp_records did not walk again (counted: tests) */
    uint64_t nodes_built;    /* lists, tuples, dicts and objects the C encoder built, counted */
    uint64_t python_calls;   /* calls into Python made by the walk and the C encoder, counted */
    uint64_t map_entries;    /* entries the C encoder made in the identity map (young_insert) */
    uint64_t classes_asked;  /* of which classifications of a class (tests: each class in use is
                              * asked about once per version of it) */
    Py_ssize_t cached_nodes; /* sum of the value cache's costs */
    PyObject *dict_index;    /* SnapshotEncoder.walk_kind (strong) */
    PyObject *walk_slots;    /* SnapshotEncoder.walk_slots (strong), or NULL: slots not read */
    PyObject *walk_fields;   /* SnapshotEncoder.walk_fields (strong), or NULL: namedtuples
                              * not read */
    PyObject *int_64, *int_2_128; /* 64 and 2**128 (UUIDs), strong */
    PyTypeObject *deque_type; /* collections.deque (strong), or NULL: deques not read */
    PyTypeObject *socket_type; /* _socket.socket (strong) once a socket was met, or NULL */
    PyObject *socket_fileno;   /* its `fileno` method descriptor (strong) */
    PyObject *socket_members[3]; /* its `family`, `type` and `proto` member descriptors */
    PyTypeObject *lock_type; /* _thread.LockType (strong) once a lock was met, or NULL */
    PyTypeObject *decimal_type; /* the C decimal.Decimal (strong) once met, if its layout is the
                                 * one decimal_content reads (checked then), or NULL */
    PyObject *lock_locked;   /* its `locked` method descriptor (strong) */
    PyObject *secret_cache;  /* the Redactor's name -> bool dict (strong) */
    PyObject *is_secret;     /* Redactor.is_secret (strong), fills secret_cache */
    void *subtype_dict_get;  /* the C getter of a plain class's `__dict__` attribute */
    Py_buffer rotations;     /* IdentityMap.rotations, one uint64 (held for the buffer) */
    /* During fp_of: what the walk met and could not answer without Python code (strong). */
    PyTypeObject *miss_type;
    PyObject *miss_name;
    /* For fp_encode (_encode.c), all strong: the identity map's `key`, the encoder's
     * `type_name` (of a value) and `class_name` (of a class), the venc tags (replay.events)
     * and the type names a venc gives the builtin containers. */
    PyObject *key;
    PyObject *type_name;
    PyObject *class_name;
    PyObject *encode_opaque; /* SnapshotEncoder.encode_opaque */
    PyObject *str_qualname, *str_name; /* "__qualname__", "__name__" */
    PyObject *str_enum_name, *str_enum_value; /* "_name_", "_value_" */
    PyObject *str_self;      /* "__self__" */
    PyTypeObject *method_wrapper_type; /* types.MethodWrapperType (a static type) */
    /* The C getters of `__qualname__` on generators, coroutines and async generators (in that
     * order; NULL where the type's attribute is not a getset): called directly, not through
     * PyObject_GetAttr's lookup along the class's MRO (a generator is re-checked at every line
     * of a loop over it: half a million times on the generators workload). */
    getter gen_qualname[3];
    size_t max_int_bits;     /* ints past 64 bits up to this size are atoms (0: none) */
    struct {
        int cut, redacted, seq, map, obj, ref, opaque;
    } tags;
    struct {
        PyObject *list, *tuple, *dict, *str, *bytes, *args; /* `args`: an exception's */
        PyObject *ellipsis; /* "...", which ends a C repr's text cut at max_string */
    } names;
    FpTypeEntry types[FP_TYPE_CACHE];
    FpNameEntry secret_names[FP_NAME_CACHE];
    /* The content of FP_CREPR values by object (direct-mapped): a Decimal's text is otherwise
     * made again at every walk that meets it (formatting, a new str, its hash: a fifth of the
     * C core's time on orders.py, whose items hold Decimal prices). The objects are held, so
     * that an address is not reused while its entry stands; FP_CREPR classes are immutable
     * (Decimal, complex, range, timezone), and the re classes, whose members may be big, are
     * not kept. */
    struct {
        PyObject *obj; /* strong */
        uint64_t content;
    } crepr[FP_CREPR_CACHE];
    FpValueEntry *values;    /* FP_VALUE_CACHE entries */
    FpPart *parts;           /* FP_MAX_PARTS entries, or NULL */
    FpPartMemo *part_memo;   /* FP_PART_MEMO entries (with parts), or NULL */
    FpMemoTag *memo_tags;    /* FP_PART_MEMO entries, beside part_memo's */
    FpOwnLevel *own_levels;  /* FP_OWN_LEVELS entries, or NULL (none kept) */
    uint64_t own_level_hits; /* objects whose attributes were mixed from an FpOwnLevel */
    uint64_t part_memo_hits; /* parts copied rather than walked again, counted */
    uint64_t shared_across_depths; /* parts' vencs found at another depth, counted */
    uint64_t cache_full; /* vencs the value cache did not take: it held FP_MAX_CACHED_NODES */
    /* Whether fp_of's walks use the memo now: it is measured over a round of walks, and kept
     * while copies are a fair share of the parts met; off, it is tried again now and then
     * (fp_of). A program whose values share no parts then pays nothing for it. */
    int part_memo_on, part_memo_walks_left;
    uint64_t part_memo_round_parts, part_memo_round_hits;
    /* The log of parts lasts for one callback of the tracer (see fp_event_begin): the values
     * a line's check walks one after the other (`bodies`, then `pairs`, which holds the same
     * bodies) share their parts' entries and memos, while nothing can change them: no program
     * code runs inside a callback, and a call into Python code (fp_epoch) starts a new log. It
     * may last into the next callback too, where the program ran only a quiet line between
     * them (fp_carry_into). */
    int nparts;              /* entries in the log */
    uint64_t parts_gen;      /* fp_of walks so far: a reader checks its entries are still its */
    PyObject *parts_root;    /* the value of the last fp_of (never dereferenced), or NULL */
    int parts_root_slot;     /* where its entries begin */
    uint32_t memo_gen;       /* logs so far: the part memo's entries of this one are in use */
    uint64_t event_gen;      /* callbacks begun (fp_event_begin) */
    int in_event;            /* callbacks open now: outside one, each fp_of starts a new log */
    uint64_t outside_calls;  /* calls into Python made by the tracer (CALL_PYTHON, _ctracer.c) */
    /* Garbage collections begun, modulo 128 (state.collecting[1], kept by a gc callback), or
     * NULL: on 3.11 an allocation may run one, and its finalizers are program code. */
    const volatile char *gc_runs;
    uint64_t log_event, log_epoch; /* the callback, and fp_epoch and outside_calls, at the log's
                                    * beginning */
    /* The log may also outlast a callback, into the next one of the same thread, when nothing
     * between the two could have changed or made an object a value shows (fp_carry_into). */
    const void *carry_frame; /* the frame the next callback may carry the log into, or NULL */
    const void *carried;     /* this callback's: carry_frame if it follows the last at once */
    uint64_t carry_gen;      /* event_gen when the last callback ended */
    uint64_t carries;        /* callbacks that took the log for their walks, counted */
    /* Where in the log this callback's walks began (its memos are tagged, part_tag, only if
     * it offers to carry the log: a program whose lines never let it pays nothing for tags),
     * and where the entries of earlier callbacks end (their memos are checked by their tags). */
    int callback_parts, carried_parts;
    int16_t fresh[FP_FRESH_MEMOS]; /* the memos this callback made, by index (FP_FRESH_MEMOS
                                    * at most: the rest are not carried) */
    int nfresh;
} Fingerprinter;

/* `_cut` (snapshot.py) of an exact str: itself up to max_string characters, else its first
 * max_string followed by "...". Steals `text`; NULL with an exception on failure (_encode.c). */
PyObject *fp_cut_text(Fingerprinter *fp, PyObject *text);

/* Whether a value of kind FP_DATETIME is shown by its C repr in C (_encode.c): its tzinfo, if
 * any, is a `datetime.timezone`, whose repr is C too. The Python encoder shows a
 * `zoneinfo.ZoneInfo` that way as well, decided there; any other tzinfo makes an `<... object>`. */
int fp_datetime_text_in_c(PyObject *v);

/* Moves whenever something may have changed since: Python code ran (the walk's or the C
 * encoder's calls) or the C encoder gave out a serial (a new identity map entry). While it stands
 * still, what a walk saw still holds and no serial was given out. */
static inline uint64_t
fp_epoch(const Fingerprinter *fp)
{
    return fp->python_calls + fp->map_entries;
}

/* A slot of a direct-mapped cache of `size` (a power of two) entries for an address: addresses
 * cluster (allocator pools), so they are spread by a multiplicative hash first. */
static inline size_t
fp_slot_of(const void *p, size_t size)
{
    return (size_t)(((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ULL) >> 32) & (size - 1);
}

/* The encoder's inline atom test (_items, _pairs, _obj): such values are stored as themselves. */
static inline int
fp_inline_atom(Fingerprinter *fp, PyObject *x)
{
    PyTypeObject *tp = Py_TYPE(x);
    return tp == &PyFloat_Type || tp == &PyBool_Type || x == Py_None
           || (tp == &PyUnicode_Type && PyUnicode_GET_LENGTH(x) <= fp->max_string)
           || (tp == &PyLong_Type && PyUnstable_Long_IsCompact((PyLongObject *)x));
}

/* Set up from the encoder's rule, a dict (csysmon._encoder_rule): its limits (max_depth,
 * max_items, max_attrs, max_nodes, max_string), `walk_kind(cls) -> int` (the MRO index of the
 * `__dict__` getset when instances of cls are encoded from their instance dict alone, FP_WALK_*
 * for the other kinds the walk reads, else -1), its redactor's `secret_cache` dict and
 * `is_secret`, and its identity map's `rotations` (an array('Q') of one item, mixed into every
 * fingerprint). None disables fingerprints.
 * 0 on success, -1 with an exception set. */
int fp_init(Fingerprinter *fp, PyObject *rule);

void fp_clear(Fingerprinter *fp);

int fp_traverse(Fingerprinter *fp, visitproc visit, void *arg);

/* The fingerprint of `v` into *out (never 0): 1. 0 when `v` holds something the walk does not
 * mirror, or is too big: the caller must encode (and compare). -1 with an exception set.
 * The walk itself runs no Python code (it reads through borrowed references); a class or a name
 * not yet classified is asked about after the walk, and the walk is retried.
 * A fingerprint mixes the content (alone in fp->last_content) with the identity map's serials of
 * the objects in it, which encoding `v` may assign: whether the content changed while it was
 * encoded is told by the content halves. */
int fp_of(Fingerprinter *fp, PyObject *v, uint64_t *out);

/* A callback of the tracer begins and ends: the walks between share one log of parts. On 3.11
 * an allocation (the encoder's, between two walks) may run a garbage collection, and with it
 * finalizers, which are program code, so there the log lasts only while the count of
 * collections (gc_runs) stays the same, and not at all without it; since 3.12 an allocation
 * only schedules a collection, which runs between two instructions of the program: a log
 * carried into the next callback is then dropped (log_begin). */
static inline void
fp_event_begin(Fingerprinter *fp)
{
    fp->event_gen++;
    fp->in_event++;
    /* No callback of any thread began or ended since the last one ended, and the log was that
     * one's (begun or taken there: log_event): what it offered (fp_carry_from) is this one's
     * to take. */
    fp->carried = fp->in_event == 1 && fp->event_gen == fp->carry_gen + 1
                          && fp->log_event + 2 == fp->event_gen
                      ? fp->carry_frame
                      : NULL;
    fp->carry_frame = NULL; /* unless this callback offers one too, the next starts anew */
    fp->nfresh = 0;
}

static inline void
fp_event_end(Fingerprinter *fp)
{
    fp->event_gen++;
    fp->in_event--;
    fp->carry_gen = fp->event_gen;
}

/* Carrying the log from one callback into the next (fp_of's walks then copy parts met by the
 * walks of the one before, as they copy those of the same callback). A callback offers it for
 * `frame` when the program, until its next event, runs only code that changes no object in
 * place, in that frame (the rest of a quiet line, state.quiet_lines, the prologue of a call);
 * the next callback takes it when it follows at once, for that frame (fp_carry_into), with no
 * other thread of the program that could have run meanwhile (_ctracer.c checks, and that the
 * caller of a PY_START, or the frame a RETURN goes back to, is the frame that offered it: not
 * code out of scope in between). The identity map's epoch and the collections' count are checked
 * as within a callback (log_begin). What a quiet line may still have done is make a container
 * where one died: a memo met in an earlier callback is copied only while its object reads as the
 * same one (its tag, part_tag, taken when the log is offered: fp_tag_fresh). */
void fp_tag_fresh(Fingerprinter *fp);

static inline void
fp_carry_from(Fingerprinter *fp, const void *frame)
{
    if (frame != NULL && fp->nfresh > 0) {
        fp_tag_fresh(fp);
    }
    fp->carry_frame = frame;
}

/* Take the log offered for `frame` (the caller checked it is `fp->carried`), if the identity
 * map's epoch and the collections' count still stand: this callback's walks go on with it.
 * 1 if taken. */
int fp_carry_into(Fingerprinter *fp);

/* A callback that only passes the offer on (a CALL of in-scope code: its PY_START follows),
 * taking the log on the way (so that it is the last callback's for the next one). */
static inline void
fp_carry_through(Fingerprinter *fp)
{
    if (fp->carried != NULL && fp_carry_into(fp)) {
        fp->carry_frame = fp->carried;
    }
}

/* Take the log offered for `frame` (the caller checked it is `fp->carried`), if the identity
 * map's epoch and the collections' count still stand: this callback's walks go on with it. */

/* The fingerprint of an opaque value (FP_OPAQUE: what its text reads, and its serial): 1 with
 * *out, 0 when it is not one the walk reads, -1 (no exception) when its class is not classified
 * yet (fp->miss_type is set). */

/* The bit length of an exact int past 64 bits that the encoder keeps whole (an atom: fewer
 * digits than max_int_digits), or 0 when it shows it by its leading digits. */
size_t fp_whole_int_bits(const Fingerprinter *fp, PyObject *v);

int fp_opaque(Fingerprinter *fp, PyObject *v, uint64_t *out);

/* The fingerprint of `v` as a part of a value being encoded: at `depth`, with `budget` nodes
 * left and `path` (npath nodes) above it. 1 with *out (never 0) and *after, the budget left once
 * the subtree is encoded; 0 when the walk gives up, meets something not classified yet, or
 * finds a back reference to a node above `v` (then its encoding depends on more than itself). */
int fp_subtree(Fingerprinter *fp, PyObject *v, int depth, Py_ssize_t budget, void *const *path,
               int npath, uint64_t *out, uint64_t *content, Py_ssize_t *after);
/* (*content: the content half of *out, as fp->last_content for fp_of.) */

/* The venc remembered for `v` if `v` is the same object with the same fingerprint `f` (a new
 * reference), else NULL (no exception is set). */
PyObject *fp_cached(Fingerprinter *fp, PyObject *v, uint64_t f);

/* Whether the exact str `name` looks secret to the redactor: 1/0, or -1 (no exception) when it
 * has not been asked yet (then fp->miss_name is set, if it was free). Inline for the cache hit,
 * which is almost every call: the walk asks once per attribute it meets. */
int fp_name_secret_slow(Fingerprinter *fp, PyObject *name);

static inline int
fp_name_secret(Fingerprinter *fp, PyObject *name)
{
    FpNameEntry *e = &fp->secret_names[fp_slot_of(name, FP_NAME_CACHE) & ~(size_t)1];
    return e[0].name == name   ? e[0].secret
           : e[1].name == name ? e[1].secret
                               : fp_name_secret_slow(fp, name);
}

/* The serial the identity map gave `v` (borrowed), read from the weak reference the map holds
 * to it, or NULL (no exception) if the map holds none. */
PyObject *fp_serial_ref(Fingerprinter *fp, PyObject *v);

/* The identity map's young entry for the object at `v`'s address (`serial << 64 | check`, an
 * exact int, borrowed from the map's dict: use it before anything can run), or NULL with no
 * exception when it has none. */
PyObject *fp_young_entry(Fingerprinter *fp, PyObject *v);
void fp_forget_address(Fingerprinter *fp, const void *v);

/* The FP_* kind of a class (classifying it first if needed) and, for a walked kind, its name in
 * a venc (borrowed). FP_NOT_WALKED (possibly with an exception set) when it is not mine. */
int fp_type_kind(Fingerprinter *fp, PyTypeObject *tp, PyObject **name);

/* The cache entry of a class classified at its current version (after fp_type_kind), or NULL. */
const FpTypeEntry *fp_type_entry(Fingerprinter *fp, PyTypeObject *tp);


/* `SnapshotEncoder._enc(v, 0, [max_nodes, []])` built in C (_encode.c): a new reference, or NULL
 * with no exception when `v` holds something only the Python encoder knows (the caller runs it),
 * or NULL with an exception that must reach the program (KeyboardInterrupt). */
PyObject *fp_encode(Fingerprinter *fp, PyObject *v);
/* A recording of object records: the entry of a value whose tree the core just made, and the
 * records of the objects the tree shows, into `made` (serial -> record). 1 done, 0 not mine
 * (the Python record encoder's), -1 error. (_encode.c) */
/* The tags of object records (replay/object_records.py). */
enum {
    R_TAG_ENUM = 10,
    R_TAG_OREF = 12,
    R_TAG_SEQ = 20,
    R_TAG_MAP = 21,
    R_TAG_OBJ = 22,
    R_TAG_NT = 23,
    R_TAG_GROWN = 25,
};

int fp_records(Fingerprinter *fp, PyObject *v, PyObject *tree, PyObject **entry, PyObject *made,
               PyObject *written);

/* Remember `venc` as the encoding of `v` with fingerprint `f` (nothing if f is 0). 0 or -1. */
int fp_remember(Fingerprinter *fp, PyObject *v, uint64_t f, PyObject *venc);

/* fp_cached and fp_remember for `v` as a part of a value, encoded at `depth` (fp_subtree's
 * fingerprint), its venc `nodes` encoder nodes big. A part's fingerprint does not depend on its
 * depth: fp_cached_at finds a venc remembered at another depth under the same one. */
PyObject *fp_cached_at(Fingerprinter *fp, PyObject *v, uint64_t f, int depth);
int fp_remember_at(Fingerprinter *fp, PyObject *v, uint64_t f, PyObject *venc, int depth,
                   Py_ssize_t nodes);

/* The venc of `v` as a part of another value, found by the fingerprint `f` it has as a part
 * (walk_part's, at any depth: a value bound to a name and held by another value encodes alike
 * wherever the depth limit cuts nothing in it), or NULL. */
PyObject *fp_cached_part(Fingerprinter *fp, PyObject *v, uint64_t f);

#endif
