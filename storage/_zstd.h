/* libzstd's stable compression API, found at run time (storage/_zstd.c), for compressing chunks
 * in the same release of the GIL that writes their values (storage/_dumps.c, `chunks`). */
#ifndef REPLAY_STORAGE_ZSTD_H
#define REPLAY_STORAGE_ZSTD_H

#include <stddef.h>

/* One part of a frame: its bytes, and whether a block ends after them. */
typedef struct {
    const void *data;
    size_t size;
    int ends_block;
} ZstdPart;

/* Whether libzstd (1.4 or later) was found; loads it on the first call (hold the GIL). */
int zstd_available(void);

/* The version of the libzstd found (ZSTD_versionNumber: 10504 for 1.5.4), or 0. */
unsigned zstd_version(void);

/* The largest frame `zstd_frame` can make of `size` input bytes. */
size_t zstd_bound(size_t size);

/* One zstd frame of `parts` (checksum and content size written, as the codec's python-zstandard
 * compressor writes them; a block ends after each part that says so, and the frame after the
 * last), written to `out` (`capacity` bytes, at least zstd_bound of their total). Returns the
 * frame's size, or 0 on failure. Needs no GIL. */
size_t zstd_frame(int level, const ZstdPart *parts, int nparts, void *out, size_t capacity);

#endif
