/* fp_attrs_open and the rest of _attrs.h: the inline values of 3.11, 3.12 and 3.13, read from
 * CPython's internal layout of each (Include/internal/pycore_object.h, pycore_dict.h), which is
 * why this is a file of its own, built with Py_BUILD_CORE. */

/* Py_BUILD_CORE before Python.h: the internal headers need the whole build to be the core's.
 * (pycore_dict.h reads a field deprecated since 3.12 in its own inline functions.) */
#define Py_BUILD_CORE 1
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
#include "internal/pycore_dict.h"
#include "internal/pycore_object.h"
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include "_attrs.h"

/* _attrs.h reads a shared key's name at keys[2 * i]. */
_Static_assert(sizeof(PyDictUnicodeEntry) == 2 * sizeof(PyObject *), "a unicode entry's size");
_Static_assert(offsetof(PyDictUnicodeEntry, me_key) == 0, "a unicode entry's key");

/* The inline values of v, if it has them and no dict (NULL otherwise), with their size and
 * the insertion order as _attrs.h reads it. */
static PyDictValues *
inline_values(PyObject *v, Py_ssize_t *size, const uint8_t **order, int *step)
{
    PyTypeObject *tp = Py_TYPE(v);
#if PY_VERSION_HEX >= 0x030D0000
    if (!PyType_HasFeature(tp, Py_TPFLAGS_INLINE_VALUES) || _PyObject_GetManagedDict(v) != NULL) {
        return NULL;
    }
    PyDictValues *values = _PyObject_InlineValues(v);
    if (!values->valid) {
        return NULL;
    }
    *size = values->size;
    *order = get_insertion_order_array(values);
    *step = 1;
    return values;
#else
    if (!PyType_HasFeature(tp, Py_TPFLAGS_MANAGED_DICT)) {
        return NULL;
    }
#if PY_VERSION_HEX >= 0x030C0000
    PyDictOrValues dorv = *_PyObject_DictOrValuesPointer(v);
    if (!_PyDictOrValues_IsValues(dorv)) {
        return NULL;
    }
    PyDictValues *values = _PyDictOrValues_GetValues(dorv);
#else
    if (*_PyObject_ManagedDictPointer(v) != NULL) {
        return NULL;
    }
    PyDictValues *values = *_PyObject_ValuesPointer(v);
    if (values == NULL) {
        return NULL;
    }
#endif
    /* The bytes before the values: [-1] the prefix's size, [-2] how many are set, then the
     * insertion order backwards from [-3] (dictobject.c, get_index_from_order). */
    const uint8_t *prefix = (const uint8_t *)values;
    *size = prefix[-2];
    *order = prefix - 3;
    *step = -1;
    return values;
#endif
}

int
fp_attrs_open(PyObject *v, FpAttrs *a)
{
    a->dict = NULL;
    a->size = 0;
    Py_ssize_t size;
    const uint8_t *order;
    int step;
    PyDictValues *values = inline_values(v, &size, &order, &step);
    PyDictKeysObject *keys = values != NULL ? ((PyHeapTypeObject *)Py_TYPE(v))->ht_cached_keys
                                            : NULL;
    /* Each key index the order gives is below the keys' count (dk_nentries): the interpreter
     * adds a key to the class's shared keys before any object stores under it. */
    if (keys != NULL && keys->dk_kind == DICT_KEYS_SPLIT) {
        a->values = (PyObject *const *)values->values;
        a->keys = (PyObject *const *)DK_UNICODE_ENTRIES(keys);
        a->order = order;
        a->step = step;
        a->size = size;
        return 1;
    }
    /* A dict it already has (or a class whose instances keep theirs elsewhere): as before. */
    PyObject *d = PyObject_GenericGetDict(v, NULL);
    if (d == NULL || !PyDict_CheckExact(d)) {
        PyErr_Clear();
        Py_XDECREF(d);
        return 0;
    }
    a->dict = d;
    return 1;
}

PyObject **
fp_attrs_copy(const FpAttrs *a, Py_ssize_t k, Py_ssize_t *got)
{
    PyObject **pairs = PyMem_Malloc((size_t)(k > 0 ? 2 * k : 1) * sizeof(PyObject *));
    if (pairs == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    Py_ssize_t pos = 0, i = 0;
    PyObject *name, *value;
    while (i < k && fp_attrs_next(a, &pos, &name, &value)) {
        pairs[2 * i] = Py_NewRef(name);
        pairs[2 * i + 1] = Py_NewRef(value);
        i++;
    }
    *got = i;
    return pairs;
}

PyObject *
fp_attrs_find(const FpAttrs *a, Py_ssize_t limit, PyObject *name)
{
    Py_ssize_t pos = 0, seen = 0;
    PyObject *key, *value;
    while (seen < limit && fp_attrs_next(a, &pos, &key, &value)) {
        seen++;
        if (key == name || (PyUnicode_CheckExact(key) && PyUnicode_Compare(key, name) == 0)) {
            return value;
        }
    }
    return NULL;
}

PyObject *
fp_attrs_get(const FpAttrs *a, PyObject *name)
{
    return a->dict != NULL ? PyDict_GetItemWithError(a->dict, name)
                           : fp_attrs_find(a, a->size, name);
}
