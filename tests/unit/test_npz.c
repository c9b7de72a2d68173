/* test_npz.c: .npz import and export: np.savez, np.savez_compressed and zip64 archives import every
 * member as a table with numpy's values, the tied table and --vocab, every malformed zip class
 * (CRC, method, encryption, zip bomb declaration, truncation) with status and offset and no
 * output, and export that imports back bit for bit and lays out members as numpy does. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "fixtures/numpy/expected.h"
#include "internal.h"
#include "npy.h"
#include "test_util.h"

TestSuite(npz, .init = tu_setup, .fini = tu_teardown);

#define ANY_OFFSET (EMBT_NO_OFFSET - 1)

typedef struct name_param {
    char name[32];
} name_param;

static embt_status import_file(const char *in, const embt_convert_options *o)
{
    embt_convert_options d = EMBT_CONVERT_OPTIONS_INIT;
    return embt_convert_file(in, tu_path("out.embt"), o ? o : &d);
}

static embt_file *open_path(const char *path)
{
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, path, NULL));
    return f;
}

static void expect_table(const embt_file *f, size_t index, const char *name, embt_dtype dtype,
                         unsigned rank, uint64_t rows, uint64_t cols, const void *want)
{
    cr_assert_gt(embt_file_table_count(f), index);
    const embt_table *t = embt_file_table_at(f, index);
    cr_assert_str_eq(embt_table_name(t), name);
    cr_assert_eq(embt_table_dtype(t), dtype);
    cr_assert_eq(embt_table_rank(t), rank);
    cr_assert_eq(embt_table_rows(t), rows);
    cr_assert_eq(embt_table_cols(t), cols);
    cr_assert(memcmp(embt_table_data(t), want, rows * cols * embt_dtype_size(dtype)) == 0,
              "table %s differs from numpy's values", name);
}

/* The three arrays of make_fixtures.py, in file order. */
static void expect_savez_tables(const char *path, const embt_vocab **tied_vocab)
{
    embt_file *f = open_path(path);
    cr_assert_eq(embt_file_table_count(f), 3);
    expect_table(f, 0, "embedding", EMBT_DTYPE_F32, 2, 3, 4, exp_e_f32);
    expect_table(f, 1, "linear_weight", EMBT_DTYPE_F64, 2, 2, 3, exp_w_f64);
    expect_table(f, 2, "bias", EMBT_DTYPE_F32, 1, 5, 1, exp_b_f32);
    if (tied_vocab)
        *tied_vocab = embt_table_vocab(embt_file_table_at(f, 0));
    embt_file_close(f);
}

static void expect_failure(const char *in, const embt_convert_options *o, embt_status code,
                           uint64_t offset)
{
    size_t before = tu_count_entries();
    TU_STATUS(import_file(in, o), code);
    if (offset != ANY_OFFSET)
        cr_assert_eq(embt_error_last()->offset, offset, "offset %llu, expected %llu (%s)",
                     (unsigned long long)embt_error_last()->offset, (unsigned long long)offset,
                     embt_error_last()->message);
    cr_assert_not(tu_exists(tu_path("out.embt")));
    cr_assert_eq(tu_count_entries(), before, "a file was left behind");
}

/* ---- numpy's archives ------------------------------------------------------------------------ */

ParameterizedTestParameters(npz, savez_savez_compressed_and_zip64_import_every_array)
{
    static name_param names[] = {{"savez.npz"}, {"savez_compressed.npz"}, {"zip64.npz"}};
    return cr_make_param_array(name_param, names, sizeof names / sizeof names[0]);
}

ParameterizedTest(name_param *p, npz, savez_savez_compressed_and_zip64_import_every_array)
{
    TU_OK(import_file(tu_fixture("numpy", p->name), NULL));
    expect_savez_tables(tu_path("out.embt"), NULL);
    embt_file *f = open_path(tu_path("out.embt"));
    size_t len;
    const char *meta = embt_file_metadata(f, &len);
    char *m = strndup(meta, len);
    cr_assert_not_null(strstr(m, "format: npz"), "%s", m);
    cr_assert_not_null(strstr(m, "name: \"linear_weight\""), "%s", m);
    free(m);
    embt_file_close(f);
}

Test(npz, vocabulary_ties_embedding_or_the_named_array)
{
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    const embt_vocab *v = NULL;
    tu_write_file(tu_path("v3.txt"), "a\nb\nc\n", 6);
    o.vocab_path = tu_path("v3.txt");
    TU_OK(import_file(tu_fixture("numpy", "savez_compressed.npz"), &o));
    expect_savez_tables(tu_path("out.embt"), &v);
    unlink(tu_path("out.embt"));

    tu_write_file(tu_path("v5.txt"), "a\nb\nc\nd\ne\n", 10);
    o.vocab_path = tu_path("v5.txt");
    o.table_name = "bias";
    TU_OK(import_file(tu_fixture("numpy", "savez.npz"), &o));
    embt_file *f = open_path(tu_path("out.embt"));
    cr_assert_not_null(embt_table_vocab(embt_file_table_at(f, 2)));
    cr_assert_null(embt_table_vocab(embt_file_table_at(f, 0)));
    embt_file_close(f);
    unlink(tu_path("out.embt"));

    o.table_name = "embedding"; /* 5 tokens for 3 rows */
    expect_failure(tu_fixture("numpy", "savez.npz"), &o, EMBT_EPARSE, EMBT_NO_OFFSET);
    o.table_name = "missing";
    expect_failure(tu_fixture("numpy", "savez.npz"), &o, EMBT_EINVAL, EMBT_NO_OFFSET);
    o.table_name = NULL; /* arr_0, arr_1: nothing to tie to */
    expect_failure(tu_fixture("numpy", "positional.npz"), &o, EMBT_EINVAL, EMBT_NO_OFFSET);
}

Test(npz, limit_applies_to_the_tied_array)
{
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.limit = 2;
    TU_OK(import_file(tu_fixture("numpy", "savez.npz"), &o));
    embt_file *f = open_path(tu_path("out.embt"));
    expect_table(f, 0, "embedding", EMBT_DTYPE_F32, 2, 2, 4, exp_e_f32);
    expect_table(f, 1, "linear_weight", EMBT_DTYPE_F64, 2, 2, 3, exp_w_f64);
    expect_table(f, 2, "bias", EMBT_DTYPE_F32, 1, 5, 1, exp_b_f32);
    embt_file_close(f);
}

Test(npz, sniffing_detects_npz)
{
    size_t n;
    uint8_t *b = tu_read_file(tu_fixture("numpy", "savez_compressed.npz"), &n);
    cr_assert(embt__sniff_npz(b, n));
    cr_assert_not(embt__sniff_npz((const uint8_t *)"PK\x03\x04", 4));
    free(b);
    TU_OK(
        import_file(tu_fixture("numpy", "savez_compressed.npz"), NULL)); /* from EMBT_FORMAT_AUTO */
}

/* ---- malformed archives ----------------------------------------------------------------------- */

/* Offsets of the savez fixtures' structures, read the way a zip reader does. */
typedef struct zip_map {
    uint8_t *b;
    size_t n;
    size_t eocd, cd, data0; /* the end record, the first central entry, member 0's data */
} zip_map;

static zip_map load_zip(const char *name)
{
    zip_map z;
    z.b = tu_read_file(tu_fixture("numpy", name), &z.n);
    z.eocd = z.n - 22;
    cr_assert_eq(embt__le32(z.b + z.eocd), 0x06054b50u);
    z.cd = embt__le32(z.b + z.eocd + 16);
    z.data0 = 30 + embt__le16(z.b + 26) + embt__le16(z.b + 28);
    return z;
}

static void expect_patched_failure(const zip_map *z, embt_status code, uint64_t offset)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", tu_path("bad.npz"));
    tu_write_file(p, z->b, z->n);
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.from = EMBT_FORMAT_NPZ;
    expect_failure(p, &o, code, offset);
}

Test(npz, bad_crc_fails_at_the_member_data)
{
    zip_map z = load_zip("savez.npz");
    z.b[z.data0 + 140] ^= 1; /* a data byte of embedding.npy */
    expect_patched_failure(&z, EMBT_EPARSE, z.data0);
    free(z.b);
    z = load_zip("savez_compressed.npz");
    z.b[z.cd + 16] ^= 1; /* the central CRC of a deflated member */
    expect_patched_failure(&z, EMBT_EPARSE, z.data0);
    free(z.b);
}

Test(npz, unsupported_method_and_encryption_are_refused)
{
    zip_map z = load_zip("savez.npz");
    embt__put16(z.b + z.cd + 10, 12); /* bzip2 */
    expect_patched_failure(&z, EMBT_ELIMIT, z.cd + 10);
    embt__put16(z.b + z.cd + 10, 0);
    embt__put16(z.b + z.cd + 8, 1); /* encrypted */
    expect_patched_failure(&z, EMBT_ELIMIT, z.cd + 8);
    free(z.b);
}

Test(npz, zip_bomb_declaration_fails_before_allocating)
{
    zip_map z = load_zip("savez_compressed.npz");
    embt__put32(z.b + z.cd + 24, 0x7ffffff0u); /* 2 GiB from ~100 compressed bytes */
    expect_patched_failure(&z, EMBT_ELIMIT, z.cd + 24);
    free(z.b);
    z = load_zip("savez_compressed.npz");
    embt__put32(z.b + z.cd + 24, embt__le32(z.b + z.cd + 24) - 1); /* inflates past its size */
    expect_patched_failure(&z, EMBT_EPARSE, z.data0);
    free(z.b);
}

Test(npz, truncated_or_inconsistent_central_directory_fails)
{
    zip_map z = load_zip("savez.npz");
    embt__put32(z.b + z.eocd + 12, embt__le32(z.b + z.eocd + 12) + 1); /* size past the EOCD */
    expect_patched_failure(&z, EMBT_EPARSE, z.eocd);
    free(z.b);
    z = load_zip("savez.npz");
    embt__put16(z.b + z.eocd + 8, 200); /* more entries than the directory holds */
    embt__put16(z.b + z.eocd + 10, 200);
    expect_patched_failure(&z, EMBT_EPARSE, z.cd);
    free(z.b);
    z = load_zip("savez.npz");
    z.b[z.cd + 46 + 9] = 'x'; /* embedding.npx */
    expect_patched_failure(&z, EMBT_EPARSE, 30);
    free(z.b);
    z = load_zip("savez.npz");
    memcpy(z.b + z.cd + 46 + 9, "npx", 3);
    memcpy(z.b + 30 + 9, "npx", 3);
    expect_patched_failure(&z, EMBT_ELIMIT, z.cd + 46);
    free(z.b);
}

Test(npz, every_truncation_fails_cleanly)
{
    zip_map z = load_zip("savez_compressed.npz");
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", tu_path("cut.npz"));
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.from = EMBT_FORMAT_NPZ;
    for (size_t k = 0; k < z.n; k++) {
        tu_write_file(p, z.b, k);
        embt_status rc = import_file(p, &o);
        cr_assert(rc == EMBT_EPARSE || rc == EMBT_EFORMAT || rc == EMBT_ELIMIT,
                  "prefix %zu gave %s", k, embt_status_name(rc));
        cr_assert_not(tu_exists(tu_path("out.embt")));
    }
    free(z.b);
}

Test(npz, every_single_byte_flip_fails_cleanly_or_imports)
{
    zip_map z = load_zip("savez_compressed.npz");
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", tu_path("flip.npz"));
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.from = EMBT_FORMAT_NPZ;
    for (size_t k = 0; k < z.n; k++) {
        z.b[k] ^= 0x5a;
        tu_write_file(p, z.b, z.n);
        embt_status rc = import_file(p, &o);
        z.b[k] ^= 0x5a;
        cr_assert(rc == EMBT_OK || rc == EMBT_EPARSE || rc == EMBT_EFORMAT || rc == EMBT_ELIMIT,
                  "flip at %zu gave %s", k, embt_status_name(rc));
        cr_assert_eq(tu_exists(tu_path("out.embt")), rc == EMBT_OK);
        unlink(tu_path("out.embt"));
    }
    free(z.b);
}

/* ---- export ------------------------------------------------------------------------------------ */

ParameterizedTestParameters(npz, export_imports_back_bit_for_bit)
{
    static unsigned flags[] = {0, EMBT_CONVERT_COMPRESS};
    return cr_make_param_array(unsigned, flags, 2);
}

ParameterizedTest(unsigned *flags, npz, export_imports_back_bit_for_bit)
{
    TU_OK(import_file(tu_fixture("numpy", "savez.npz"), NULL));
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.to = EMBT_FORMAT_NPZ;
    o.flags = *flags;
    TU_OK(embt_convert_file(tu_path("out.embt"), tu_path("back.npz"), &o));
    embt_convert_options i = EMBT_CONVERT_OPTIONS_INIT;
    TU_OK(embt_convert_file(tu_path("back.npz"), tu_path("again.embt"), &i));
    expect_savez_tables(tu_path("again.embt"), NULL);
    /* deterministic: the same input gives the same bytes */
    TU_OK(embt_convert_file(tu_path("out.embt"), tu_path("twice.npz"), &o));
    cr_assert(tu_same_file(tu_path("back.npz"), tu_path("twice.npz")));
}

Test(npz, stored_export_is_byte_identical_to_np_savez)
{
    /* numpy 1.24 on CPython 3.11 stamps 1980-01-01 and keeps real 32-bit sizes next to the zip64
     * extra, so the whole archive can match */
    TU_OK(import_file(tu_fixture("numpy", "savez.npz"), NULL));
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.to = EMBT_FORMAT_NPZ;
    TU_OK(embt_convert_file(tu_path("out.embt"), tu_path("back.npz"), &o));
    cr_assert(tu_same_file(tu_path("back.npz"), tu_fixture("numpy", "savez.npz")));
}
