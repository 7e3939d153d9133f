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

/* Direct-mapped cache of "how are instances of this class read" answers, keyed by the class's
 * address and checked against its version tag (which changes whenever the class does, and is
 * never given to another class), so no reference to the class is kept. */
#define FP_TYPE_CACHE 512

/* Direct-mapped cache of encoded values by object (a bounded memory of the last venc of up to
 * this many objects). */
#define FP_VALUE_CACHE 4096

/* At most this many encoder nodes held by the value cache (about 100 bytes each). */
#define FP_MAX_CACHED_NODES 131072

typedef struct {
    PyTypeObject *type;   /* never dereferenced after the entry is made */
    unsigned int version; /* tp_version_tag when the answer was given */
    int plain;            /* 1: read from its instance __dict__ alone; 0: not walked */
} FpTypeEntry;

typedef struct {
    void *obj;            /* the object (never dereferenced) */
    PyTypeObject *type;   /* its class then (never dereferenced) */
    PyObject *ref;        /* a weak reference to it (strong), or NULL if it takes none */
    uint64_t fp;          /* its fingerprint when venc was confirmed */
    Py_ssize_t cost;      /* encoder nodes in venc (about) */
    PyObject *venc;       /* strong */
} FpValueEntry;

typedef struct {
    int enabled;
    /* CaptureLimits, mirrored: the walk reads exactly what the encoder would. */
    int max_depth;
    Py_ssize_t max_items;
    Py_ssize_t max_attrs;
    Py_ssize_t max_nodes;
    Py_ssize_t max_string;
    Py_ssize_t last_cost;    /* nodes of the budget the last successful walk used */
    Py_ssize_t cached_nodes; /* sum of the value cache's costs */
    PyObject *dict_index;    /* SnapshotEncoder.dict_only_index (strong) */
    PyObject *secret_cache;  /* the Redactor's name -> bool dict (strong) */
    PyObject *is_secret;     /* Redactor.is_secret (strong), fills secret_cache */
    void *subtype_dict_get;  /* the C getter of a plain class's `__dict__` attribute */
    Py_buffer rotations;     /* IdentityMap.rotations, one uint64 (held for the buffer) */
    /* During fp_of: what the walk met and could not answer without Python code (strong). */
    PyTypeObject *miss_type;
    PyObject *miss_name;
    FpTypeEntry types[FP_TYPE_CACHE];
    FpValueEntry *values;    /* FP_VALUE_CACHE entries */
} Fingerprinter;

/* Set up from the encoder's rule, a dict (csysmon._encoder_rule): its limits (max_depth,
 * max_items, max_attrs, max_nodes, max_string), `dict_only_index(cls) -> int` (the MRO index of
 * the `__dict__` getset when instances of cls are encoded from their instance dict alone, else
 * -1), its redactor's `secret_cache` dict and `is_secret`, and its identity map's `rotations`
 * (an array('Q') of one item, mixed into every fingerprint). None disables fingerprints.
 * 0 on success, -1 with an exception set. */
int fp_init(Fingerprinter *fp, PyObject *rule);

void fp_clear(Fingerprinter *fp);

int fp_traverse(Fingerprinter *fp, visitproc visit, void *arg);

/* The fingerprint of `v` into *out (never 0): 1. 0 when `v` holds something the walk does not
 * mirror, or is too big: the caller must encode (and compare). -1 with an exception set.
 * The walk itself runs no Python code (it reads through borrowed references); a class or a name
 * not yet classified is asked about after the walk, and the walk is retried. */
int fp_of(Fingerprinter *fp, PyObject *v, uint64_t *out);

/* The venc remembered for `v` if `v` is the same object with the same fingerprint `f` (a new
 * reference), else NULL (no exception is set). */
PyObject *fp_cached(Fingerprinter *fp, PyObject *v, uint64_t f);

/* Remember `venc` as the encoding of `v` with fingerprint `f` (nothing if f is 0). 0 or -1. */
int fp_remember(Fingerprinter *fp, PyObject *v, uint64_t f, PyObject *venc);

#endif
