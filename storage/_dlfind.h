/* Functions of a library opened at run time (storage/_zstd.c, storage/_sqlite.c). */
#ifndef REPLAY_STORAGE_DLFIND_H
#define REPLAY_STORAGE_DLFIND_H

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#define HAVE_DLOPEN 1

/* `target` (a function pointer) set to the function `symbol` of the library `lib` (NULL if it
 * has none): through a union, since ISO C has no cast from an object pointer to a function
 * pointer. */
#define DL_FIND(lib, target, symbol)                                                             \
    do {                                                                                         \
        union {                                                                                  \
            void *p;                                                                             \
            __typeof__(target) f;                                                                \
        } dl_found_ = {dlsym((lib), (symbol))};                                                  \
        (target) = dl_found_.f;                                                                  \
    } while (0)
#endif

#endif
