/* An object's instance attributes, read without making its instance dict.
 *
 * Why: on 3.11 and 3.12 an object of a Python class keeps its attributes in "inline values"
 * until something asks for its `__dict__`; PyObject_GenericGetDict then makes a dict for it,
 * for the rest of its life, and the interpreter's specialized attribute loads and stores no
 * longer apply to it (on 3.12 a loop of `o.x` loads and stores ran 2.5 times slower on such an
 * object; on 3.13 the stores, 1.2 times). Every object the recorder looked at was left so: the
 * recorded program ran slower than itself, outside the recorded code too, and each object
 * took a dict's memory more. The walk and the encoders read the attributes through this view
 * instead: the inline values where the object has them, its dict where it already has one.
 *
 * The order is the dict's (insertion order), the same as `vars(obj)` gives, so the C and Python
 * encoders agree. _attrs.c fills the view from CPython's internal layout (each version's); the
 * iteration below reads only what it filled. Borrowed references: valid while no Python code
 * runs (a caller that runs any copies the pairs first: fp_attrs_copy). */

#ifndef REPLAY_ATTRS_H
#define REPLAY_ATTRS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef struct {
    PyObject *dict;          /* the instance dict where the object has one (a new reference) */
    PyObject *const *values; /* else its inline values, by key index */
    PyObject *const *keys;   /* the class's shared keys: the name of index i at keys[2 * i] */
    const uint8_t *order;    /* the key index of the i-th attribute at order[i * step] */
    int step;
    Py_ssize_t size;         /* how many attributes */
} FpAttrs;

/* Open the view of v's instance attributes: 1, 0 when v has no instance dict of the plain kind
 * (PyObject_GenericGetDict would not give an exact dict; no exception), -1 with an exception. */
int fp_attrs_open(PyObject *v, FpAttrs *a);

static inline void
fp_attrs_close(FpAttrs *a)
{
    Py_CLEAR(a->dict);
}

static inline Py_ssize_t
fp_attrs_size(const FpAttrs *a)
{
    return a->dict != NULL ? PyDict_GET_SIZE(a->dict) : a->size;
}

/* As PyDict_Next: the next (name, value), borrowed; *pos starts at 0. */
static inline int
fp_attrs_next(const FpAttrs *a, Py_ssize_t *pos, PyObject **name, PyObject **value)
{
    if (a->dict != NULL) {
        return PyDict_Next(a->dict, pos, name, value);
    }
    while (*pos < a->size) {
        Py_ssize_t index = a->order[*pos * a->step];
        (*pos)++;
        PyObject *v = a->values[index];
        if (v != NULL) { /* present in the order: set (a deleted one leaves the order) */
            *name = a->keys[2 * index];
            *value = v;
            return 1;
        }
    }
    return 0;
}

/* The first `k` (name, value) pairs, as owned references, 2 * *got of them (PyMem_Free the
 * array after releasing them); NULL with an exception. */
PyObject **fp_attrs_copy(const FpAttrs *a, Py_ssize_t k, Py_ssize_t *got);

/* The value of the exact str `name` among the first `limit` attributes (borrowed), NULL when it
 * is not there; compared by identity, then as strs (no Python code). */
PyObject *fp_attrs_find(const FpAttrs *a, Py_ssize_t limit, PyObject *name);

/* The value of the exact str `name` (borrowed), NULL when it is not there; no exception unless
 * the dict's lookup raised one (a key that is not an exact str). */
PyObject *fp_attrs_get(const FpAttrs *a, PyObject *name);

#endif
