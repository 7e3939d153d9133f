/* libzstd's stable streaming compression, found at run time.
 *
 * Why: the recorder's writer shares the GIL with the traced program, and every call that lets
 * go of the GIL costs it the wait to get it back (up to the interpreter's switch interval, 5
 * ms, while the program runs). Writing a chunk took three such calls or more: the values
 * (storage/_dumps.c, one release for all the chunks of a write) and then python-zstandard's
 * compression, which releases the GIL in each of its calls. On richards.py the writer waited
 * 1.3 s for the GIL inside those calls, for 0.9 s of work, and the program waited for the
 * writer (docs/internals.md, "Where the time goes"). With libzstd's own API the values and the
 * compression of every chunk of a write run in one release.
 *
 * How: python-zstandard links zstd statically and exports none of it, and the headers of a
 * system libzstd may be absent where its library is present (Debian's libzstd1 without
 * libzstd-dev), so the library is opened with dlopen and the few functions of its stable API
 * used here (unchanged since 1.4.0, 2019) are declared below. Where there is none, or it is
 * older, `zstd_available` says so and the codec compresses with python-zstandard as before:
 * the chunks are zstd frames either way, read by the same decoder.
 */

#include "_zstd.h"

#include <stdint.h>

#include "_dlfind.h"

/* From zstd.h (stable API). */
typedef struct ZSTD_CCtx_s ZSTD_CCtx;
typedef struct {
    const void *src;
    size_t size;
    size_t pos;
} ZSTD_inBuffer;
typedef struct {
    void *dst;
    size_t size;
    size_t pos;
} ZSTD_outBuffer;
enum { ZSTD_c_compressionLevel = 100, ZSTD_c_contentSizeFlag = 200, ZSTD_c_checksumFlag = 201 };
enum { ZSTD_e_continue = 0, ZSTD_e_flush = 1, ZSTD_e_end = 2 };
#define ZSTD_MIN_VERSION 10400 /* 1.4.0: ZSTD_compressStream2 and the parameters API stable */

static struct {
    int tried, ok;
    unsigned (*versionNumber)(void);
    size_t (*compressBound)(size_t);
    ZSTD_CCtx *(*createCCtx)(void);
    size_t (*freeCCtx)(ZSTD_CCtx *);
    size_t (*setParameter)(ZSTD_CCtx *, int, int);
    size_t (*setPledgedSrcSize)(ZSTD_CCtx *, unsigned long long);
    size_t (*compressStream2)(ZSTD_CCtx *, ZSTD_outBuffer *, ZSTD_inBuffer *, int);
    unsigned (*isError)(size_t);
} z;

int
zstd_available(void)
{
    if (z.tried) {
        return z.ok;
    }
    z.tried = 1;
#ifdef HAVE_DLOPEN
    static const char *const names[] = {"libzstd.so.1", "libzstd.1.dylib", "libzstd.so"};
    void *lib = NULL;
    for (size_t i = 0; lib == NULL && i < sizeof names / sizeof names[0]; i++) {
        lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    }
    if (lib == NULL) {
        return 0;
    }
#define FIND(field, symbol) DL_FIND(lib, z.field, symbol)
    FIND(versionNumber, "ZSTD_versionNumber");
    FIND(compressBound, "ZSTD_compressBound");
    FIND(createCCtx, "ZSTD_createCCtx");
    FIND(freeCCtx, "ZSTD_freeCCtx");
    FIND(setParameter, "ZSTD_CCtx_setParameter");
    FIND(setPledgedSrcSize, "ZSTD_CCtx_setPledgedSrcSize");
    FIND(compressStream2, "ZSTD_compressStream2");
    FIND(isError, "ZSTD_isError");
#undef FIND
    z.ok = z.versionNumber && z.compressBound && z.createCCtx && z.freeCCtx && z.setParameter
           && z.setPledgedSrcSize && z.compressStream2 && z.isError
           && z.versionNumber() >= ZSTD_MIN_VERSION;
    if (!z.ok) {
        dlclose(lib);
    }
    /* Else the library stays loaded for the life of the process, as an extension module does. */
#endif
    return z.ok;
}

unsigned
zstd_version(void)
{
    return zstd_available() ? z.versionNumber() : 0;
}

size_t
zstd_bound(size_t size)
{
    return z.compressBound(size) + 64; /* block ends add a few bytes each */
}

size_t
zstd_frame(int level, const ZstdPart *parts, int nparts, void *out, size_t capacity)
{
    ZSTD_CCtx *ctx = z.createCCtx();
    if (ctx == NULL) {
        return 0;
    }
    unsigned long long total = 0;
    for (int i = 0; i < nparts; i++) {
        total += parts[i].size;
    }
    ZSTD_outBuffer output = {out, capacity, 0};
    int ok = !z.isError(z.setParameter(ctx, ZSTD_c_compressionLevel, level))
             && !z.isError(z.setParameter(ctx, ZSTD_c_checksumFlag, 1))
             && !z.isError(z.setParameter(ctx, ZSTD_c_contentSizeFlag, 1))
             && !z.isError(z.setPledgedSrcSize(ctx, total));
    for (int i = 0; ok && i < nparts; i++) {
        ZSTD_inBuffer input = {parts[i].data, parts[i].size, 0};
        int mode = i == nparts - 1      ? ZSTD_e_end
                   : parts[i].ends_block ? ZSTD_e_flush
                                         : ZSTD_e_continue;
        /* With room for the whole frame, one call takes everything; looping covers the rest.
         * What a call returns: for a flush or the end, what is still to be written (0: done);
         * when continuing, a size hint, and done means all the input taken. */
        size_t left;
        int done;
        do {
            left = z.compressStream2(ctx, &output, &input, mode);
            ok = !z.isError(left);
            done = mode == ZSTD_e_continue ? input.pos == input.size : left == 0;
        } while (ok && !done && output.pos < output.size);
        ok = ok && done && input.pos == input.size;
    }
    z.freeCCtx(ctx);
    return ok ? output.pos : 0;
}
