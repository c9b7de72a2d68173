/* format.h: the byte layout constants of spec/FORMAT.md, shared by the reader and the writer.
 * Any change here is a change of the specification. Never installed. */
#ifndef EMBT_FORMAT_H
#define EMBT_FORMAT_H

#include <stdint.h>

/* 3.1 header */
#define EMBT__MAGIC                                                                                \
    "\x89"                                                                                         \
    "EMBT\r\n\x1a\n"
#define EMBT__MAGIC_LEN 9
#define EMBT__HEADER_SIZE 128u
#define EMBT__HEADER_SIZE_MAX 4096u
#define EMBT__H_ZERO 9
#define EMBT__H_BYTE_ORDER 10
#define EMBT__H_MAJOR 12
#define EMBT__H_MINOR 14
#define EMBT__H_HEADER_SIZE 16
#define EMBT__H_ALIGNMENT 20
#define EMBT__H_FILE_LENGTH 24
#define EMBT__H_DIR_OFFSET 32
#define EMBT__H_DIR_LENGTH 40
#define EMBT__H_DIR_CRC 48
#define EMBT__H_FLAGS 52
#define EMBT__H_RESERVED 56
#define EMBT__H_RESERVED_LEN 68
#define EMBT__H_HEADER_CRC 124
#define EMBT__BYTE_ORDER_MARK 0xFEFFu
#define EMBT__ALIGN_MIN 64u
#define EMBT__ALIGN_MAX 65536u

/* 3.2 directory */
#define EMBT__DIR_HEAD 16u
#define EMBT__DIR_LENGTH_MAX (16u << 20)
#define EMBT__DIR_ENTRIES_MAX 65536u
#define EMBT__ENTRY_SIZE 96u
#define EMBT__ENTRY_SIZE_MAX 1024u

/* 3.3 entry */
#define EMBT__E_TYPE 0
#define EMBT__E_FLAGS 2
#define EMBT__E_CODEC 4
#define EMBT__E_FILTER 5
#define EMBT__E_RESERVED 6
#define EMBT__E_OFFSET 8
#define EMBT__E_STORED 16
#define EMBT__E_DECODED 24
#define EMBT__E_CRC 32
#define EMBT__E_LINK 36
#define EMBT__E_NAME_OFFSET 40
#define EMBT__E_NAME_LENGTH 44
#define EMBT__E_PARAMS 48
#define EMBT__E_PARAMS_LEN 48
#define EMBT__ENTRY_REQUIRED 0x1u
#define EMBT__NAME_MAX 256u

#define EMBT__CODEC_NONE 0
#define EMBT__CODEC_DEFLATE 1
#define EMBT__FILTER_NONE 0
#define EMBT__FILTER_SHUFFLE 1
#define EMBT__SHUFFLE_BLOCK 65536u
/* 5: deflate never expands more than 1032:1 */
#define EMBT__DEFLATE_RATIO 1032u
#define EMBT__DEFLATE_SLACK 64u

/* 4.1 VOCAB params (offsets within params) */
#define EMBT__V_N_TOKENS 0
#define EMBT__V_BLOB_LENGTH 8
#define EMBT__V_UNK 16
#define EMBT__V_PAD 20
#define EMBT__V_BOS 24
#define EMBT__V_EOS 28
#define EMBT__V_FLAGS 32
#define EMBT__V_USED 36
#define EMBT__TOKENS_MAX 0xFFFFFFFEu
#define EMBT__TOKEN_LEN_MAX 65535u

/* 4.2 VOCAB_INDEX params */
#define EMBT__I_N_SLOTS 0
#define EMBT__I_HASH 8
#define EMBT__I_USED 12
#define EMBT__HASH_FNV1A64 1u
#define EMBT__SLOT_SIZE 8u

/* 4.3 TABLE params */
#define EMBT__T_DTYPE 0
#define EMBT__T_RANK 4
#define EMBT__T_ROWS 8
#define EMBT__T_COLS 16
#define EMBT__T_USED 24
#define EMBT__ROWS_MAX (1ull << 40)
#define EMBT__COLS_MAX 0x7FFFFFFFull

/* 4.5 metadata */
#define EMBT__METADATA_MAX (16u << 20)

#define EMBT__NONE 0xFFFFFFFFu

#endif
