/* One ended call as storage's codec.CALL_RECORD packs it (codec.CallRecords): the layout the
 * store's call blocks are cut from (storage/_columns.c, call_blocks) and the recorder's index scan
 * writes (replay/recorder/_scan.c). Little-endian, as the struct module's "<7q2B6x". */
#ifndef REPLAY_STORAGE_CALLRECORD_H
#define REPLAY_STORAGE_CALLRECORD_H

#include <stdint.h>

typedef struct {
    int64_t call, parent, function, thread, depth, first, last; /* parent 0: none */
    uint8_t exception, generator;                               /* 0 or 1 */
    uint8_t pad[6];
} CallRecord;

_Static_assert(sizeof(CallRecord) == 64, "codec.CALL_RECORD is 64 bytes");

#endif
