/*
 * A C host for the ganime plug-in, run by tests/tests/plugins.rs:
 *   test_host PLUGIN.so GENERATOR FILTER_SPEC OUT_DIR
 * dlopens the plug-in, refuses an unknown ABI version, checks the version-2 table, then works as a host built for
 * ABI version 1 (asks for 1, uses only GanimePluginV1): generates a sheet (seed 3, 6 images, 3 columns) and two
 * single images (seed 3) into padded RGBA buffers, stylises the sheet with passthrough (in place) and with
 * FILTER_SPEC (into a new buffer), writing PPM files the Rust test compares with the CLI's output; then feeds
 * every kind of bad input and checks the status, the message and that no byte outside the buffers changed.
 */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ganime_plugin.h"

static int checks, failures;
static const GanimePluginV1 *P;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        checks++;                                                          \
        if (!(cond)) {                                                     \
            failures++;                                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);           \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, "\n");                                         \
        }                                                                  \
    } while (0)

/* Calls that must fail with `want` and leave a message. */
#define EXPECT_STATUS(call, want, what)                                                            \
    do {                                                                                           \
        GanimeStatus s_ = (call);                                                                  \
        const char *m_ = P->last_error();                                                          \
        CHECK(s_ == (want), "%s: status %d, expected %d (%s)", what, s_, want, m_);                \
        CHECK(m_ != NULL && strlen(m_) > 0, "%s: empty last_error", what);                         \
        if (s_ == (want)) printf("  ok %-34s -> %d: %s\n", what, s_, m_);                          \
    } while (0)

/* A buffer with guard bytes before and after, to catch out-of-bounds writes. */
enum { GUARD = 64 };
typedef struct {
    unsigned char *block;
    size_t len;
    GanimeImage img;
} Guarded;

static Guarded guarded(uint32_t w, uint32_t h, size_t stride, GanimePixelFormat fmt) {
    Guarded g;
    g.len = stride * h;
    g.block = malloc(g.len + 2 * GUARD);
    memset(g.block, 0xA5, g.len + 2 * GUARD);
    g.img.data = g.block + GUARD;
    g.img.width = w;
    g.img.height = h;
    g.img.stride = stride;
    g.img.format = fmt;
    return g;
}

static int guards_intact(const Guarded *g) {
    for (size_t i = 0; i < GUARD; i++)
        if (g->block[i] != 0xA5 || g->block[GUARD + g->len + i] != 0xA5) return 0;
    return 1;
}

static int untouched(const Guarded *g) {
    for (size_t i = 0; i < g->len + 2 * GUARD; i++)
        if (g->block[i] != 0xA5) return 0;
    return 1;
}

static void write_ppm(const char *dir, const char *name, const GanimeImage *img) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(2); }
    fprintf(f, "P6\n%u %u\n255\n", img->width, img->height);
    size_t bpp = img->format == GANIME_FORMAT_RGBA8 ? 4 : img->format == GANIME_FORMAT_RGB8 ? 3 : 0;
    if (bpp == 0) { fprintf(stderr, "write_ppm: RGB(A) only\n"); exit(2); }
    for (uint32_t y = 0; y < img->height; y++)
        for (uint32_t x = 0; x < img->width; x++) fwrite(img->data + y * img->stride + x * bpp, 1, 3, f);
    fclose(f);
}

static int progress_calls;
static int32_t count_progress(void *user, uint32_t done, uint32_t total) {
    (void)user;
    progress_calls++;
    return done > total; /* never cancel */
}
static int32_t cancel_at_once(void *user, uint32_t done, uint32_t total) {
    (void)user; (void)done; (void)total;
    return 1;
}

/* Another thread's failure must not change this thread's message. */
static void *fail_elsewhere(void *arg) {
    (void)arg;
    GanimeModel *m = NULL;
    P->load_model(NULL, GANIME_ROLE_FILTER, &m);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s PLUGIN.so GENERATOR FILTER_SPEC OUT_DIR\n", argv[0]);
        return 2;
    }
    const char *lib_path = argv[1], *gen_path = argv[2], *filter_spec = argv[3], *out = argv[4];
    void *lib = dlopen(lib_path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 2; }
    GanimePluginEntryFn entry = (GanimePluginEntryFn)dlsym(lib, "ganime_plugin_entry");
    GanimeLastErrorFn last_error = (GanimeLastErrorFn)dlsym(lib, "ganime_plugin_last_error");
    CHECK(entry && last_error, "missing exported symbols");
    if (!entry || !last_error) return 1;

    /* Unknown ABI version: NULL and a reason. */
    CHECK(entry(GANIME_ABI_VERSION + 1) == NULL, "ABI version %u accepted", GANIME_ABI_VERSION + 1);
    CHECK(strstr(last_error(), "ABI version") != NULL, "version refusal message: '%s'", last_error());
    printf("  ok unknown ABI version refused: %s\n", last_error());
    /* The current version's table begins with the version-1 table. */
    const GanimePluginV2 *v2 = (const GanimePluginV2 *)entry(GANIME_ABI_VERSION);
    CHECK(v2 && v2->base.abi_version == GANIME_ABI_VERSION && v2->base.struct_size == sizeof(GanimePluginV2), "bad version-2 table");
    CHECK(v2 && strstr(v2->base.describe(), "\"abi_version\":2") != NULL, "describe: %s", v2 ? v2->base.describe() : "");
    /* Everything below runs as a host built for version 1: it asks for 1 and uses only GanimePluginV1. */
    P = entry(1);
    CHECK(P && P->abi_version == 1 && P->struct_size == sizeof(GanimePluginV1), "bad version-1 table");
    if (!P) return 1;

    /* Generator. */
    GanimeModel *gen = NULL, *filter = NULL, *pass = NULL;
    GanimeStatus s = P->load_model(gen_path, GANIME_ROLE_AUTO, &gen);
    CHECK(s == GANIME_OK && gen, "load generator %s: %d %s", gen_path, s, P->last_error());
    if (!gen) return 1;
    GanimeModelInfo info;
    CHECK(P->model_info(gen, &info) == GANIME_OK && info.role == GANIME_ROLE_GENERATOR && info.width > 0, "model_info");
    printf("  generator: %s, %ux%u, latent %u\n", info.name, info.width, info.height, info.latent_dim);

    GanimeImage sheet = {0};
    progress_calls = 0;
    GanimeProgress counting = {count_progress, NULL};
    s = P->generate_sheet(gen, 3, 6, 3, NULL, GANIME_FORMAT_RGB8, &sheet, &counting);
    CHECK(s == GANIME_OK, "generate_sheet: %d %s", s, P->last_error());
    CHECK(progress_calls >= 2, "progress called %d times", progress_calls);
    write_ppm(out, "sheet.ppm", &sheet);

    /* Two images into padded RGBA buffers (stride = row + 12 bytes). */
    Guarded singles[2];
    GanimeImage imgs[2];
    for (int i = 0; i < 2; i++) {
        singles[i] = guarded(info.width, info.height, info.width * 4 + 12, GANIME_FORMAT_RGBA8);
        imgs[i] = singles[i].img;
    }
    s = P->generate(gen, 3, 2, NULL, imgs, NULL);
    CHECK(s == GANIME_OK, "generate: %d %s", s, P->last_error());
    for (int i = 0; i < 2; i++) {
        CHECK(guards_intact(&singles[i]), "generate wrote outside image %d", i);
        CHECK(imgs[i].data[3] == 255 && imgs[i].data[info.width * 4] == 0xA5 && imgs[i].data[info.width * 4 + 11] == 0xA5,
              "alpha or stride padding of image %d", i);
        char name[32];
        snprintf(name, sizeof name, "single%d.ppm", i);
        write_ppm(out, name, &imgs[i]);
    }

    /* Stylise: passthrough in place leaves the pixels; FILTER_SPEC into a new RGBA buffer. */
    s = P->load_model("passthrough", GANIME_ROLE_FILTER, &pass);
    CHECK(s == GANIME_OK, "load passthrough: %s", P->last_error());
    size_t sheet_len = sheet.stride * sheet.height;
    unsigned char *before = malloc(sheet_len);
    memcpy(before, sheet.data, sheet_len);
    s = P->stylize(pass, &sheet, &sheet, 0.7f, &counting);
    CHECK(s == GANIME_OK && memcmp(before, sheet.data, sheet_len) == 0, "passthrough in place changed pixels (%d)", s);
    s = P->load_model(filter_spec, GANIME_ROLE_AUTO, &filter);
    CHECK(s == GANIME_OK, "load filter %s: %s", filter_spec, P->last_error());
    Guarded styled = guarded(sheet.width, sheet.height, sheet.width * 4, GANIME_FORMAT_RGBA8);
    s = P->stylize(filter, &sheet, &styled.img, 1.0f, NULL);
    CHECK(s == GANIME_OK && guards_intact(&styled), "stylize %s: %d %s", filter_spec, s, P->last_error());
    write_ppm(out, "styled.ppm", &styled.img);

    /* Bad input: each fails cleanly and leaves the destination untouched. */
    GanimeModel *none = NULL;
    EXPECT_STATUS(P->load_model(NULL, GANIME_ROLE_AUTO, &none), GANIME_ERR_NULL_POINTER, "load_model(NULL spec)");
    EXPECT_STATUS(P->load_model("passthrough", GANIME_ROLE_FILTER, NULL), GANIME_ERR_NULL_POINTER, "load_model(NULL out)");
    EXPECT_STATUS(P->load_model("/no/such/model.safetensors", GANIME_ROLE_GENERATOR, &none), GANIME_ERR_LOAD_FAILED, "load_model(missing file)");
    EXPECT_STATUS(P->load_model("sparkles", GANIME_ROLE_FILTER, &none), GANIME_ERR_LOAD_FAILED, "load_model(unknown filter)");
    EXPECT_STATUS(P->load_model("nosuchkind:/x.pth", GANIME_ROLE_FILTER, &none), GANIME_ERR_LOAD_FAILED, "load_model(unknown kind)");
    EXPECT_STATUS(P->load_model(argv[0], GANIME_ROLE_AUTO, &none), GANIME_ERR_LOAD_FAILED, "load_model(file, not a model)");
    CHECK(strstr(P->last_error(), "neither a generator") != NULL, "auto-detection message: %s", P->last_error());
    EXPECT_STATUS(P->load_model("passthrough", 77, &none), GANIME_ERR_INVALID_ARGUMENT, "load_model(role 77)");
    EXPECT_STATUS(P->load_model("\xff\xfe", GANIME_ROLE_FILTER, &none), GANIME_ERR_INVALID_ARGUMENT, "load_model(non-UTF-8)");
    CHECK(none == NULL, "failed load_model left a handle");
    EXPECT_STATUS(P->model_info(NULL, &info), GANIME_ERR_NULL_POINTER, "model_info(NULL model)");
    EXPECT_STATUS(P->model_info(gen, NULL), GANIME_ERR_NULL_POINTER, "model_info(NULL out)");

    Guarded dst = guarded(info.width, info.height, info.width * 3, GANIME_FORMAT_RGB8);
    GanimeImage d = dst.img;
    EXPECT_STATUS(P->generate(NULL, 0, 1, NULL, &d, NULL), GANIME_ERR_NULL_POINTER, "generate(NULL model)");
    EXPECT_STATUS(P->generate(gen, 0, 1, NULL, NULL, NULL), GANIME_ERR_NULL_POINTER, "generate(NULL images)");
    EXPECT_STATUS(P->generate(pass, 0, 1, NULL, &d, NULL), GANIME_ERR_WRONG_MODEL_KIND, "generate(filter model)");
    EXPECT_STATUS(P->generate(gen, 0, 0, NULL, &d, NULL), GANIME_ERR_INVALID_ARGUMENT, "generate(count 0)");
    EXPECT_STATUS(P->generate(gen, 0, 0x40000000u, NULL, &d, NULL), GANIME_ERR_INVALID_ARGUMENT, "generate(count 2^30)");
    GanimeImage bad = d;
    bad.data = NULL;
    EXPECT_STATUS(P->generate(gen, 0, 1, NULL, &bad, NULL), GANIME_ERR_NULL_POINTER, "generate(NULL data)");
    bad = d; bad.width = 0;
    EXPECT_STATUS(P->generate(gen, 0, 1, NULL, &bad, NULL), GANIME_ERR_INVALID_ARGUMENT, "generate(width 0)");
    bad = d; bad.width = info.width * 2; bad.stride = bad.width * 3;
    EXPECT_STATUS(P->generate(gen, 0, 1, NULL, &bad, NULL), GANIME_ERR_INVALID_ARGUMENT, "generate(wrong size)");
    bad = d; bad.stride = info.width * 3 - 1;
    EXPECT_STATUS(P->generate(gen, 0, 1, NULL, &bad, NULL), GANIME_ERR_INVALID_ARGUMENT, "generate(short stride)");
    bad = d; bad.format = 99;
    EXPECT_STATUS(P->generate(gen, 0, 1, NULL, &bad, NULL), GANIME_ERR_UNKNOWN_FORMAT, "generate(format 99)");
    bad = d; bad.stride = (size_t)-1 / 2;
    EXPECT_STATUS(P->generate(gen, 0, 1, NULL, &bad, NULL), GANIME_ERR_INVALID_ARGUMENT, "generate(huge stride)");
    GanimeProgress cancel = {cancel_at_once, NULL};
    EXPECT_STATUS(P->generate(gen, 0, 1, NULL, &d, &cancel), GANIME_ERR_CANCELLED, "generate(cancelled)");
    CHECK(untouched(&dst), "a failed generate wrote into the buffer");

    GanimeImage none_img = {0};
    EXPECT_STATUS(P->generate_sheet(gen, 0, 1024, 1, NULL, GANIME_FORMAT_RGB8, &none_img, NULL), GANIME_ERR_INVALID_ARGUMENT, "generate_sheet(too tall)");
    EXPECT_STATUS(P->generate_sheet(gen, 0, 2, 0, NULL, 0, &none_img, NULL), GANIME_ERR_UNKNOWN_FORMAT, "generate_sheet(format 0)");
    EXPECT_STATUS(P->generate_sheet(gen, 0, 2, 0, NULL, GANIME_FORMAT_RGB8, NULL, NULL), GANIME_ERR_NULL_POINTER, "generate_sheet(NULL out)");
    EXPECT_STATUS(P->generate_sheet(filter, 0, 2, 0, NULL, GANIME_FORMAT_RGB8, &none_img, NULL), GANIME_ERR_WRONG_MODEL_KIND, "generate_sheet(filter model)");
    CHECK(none_img.data == NULL, "failed generate_sheet returned data");

    /* Stylise: the source is the guarded RGB buffer `d` (still 0xA5), so any write shows. */
    Guarded big = guarded(info.width + 1, info.height, (info.width + 1) * 3, GANIME_FORMAT_RGB8);
    EXPECT_STATUS(P->stylize(gen, &d, &d, 1.0f, NULL), GANIME_ERR_WRONG_MODEL_KIND, "stylize(generator model)");
    EXPECT_STATUS(P->stylize(NULL, &d, &d, 1.0f, NULL), GANIME_ERR_NULL_POINTER, "stylize(NULL model)");
    EXPECT_STATUS(P->stylize(pass, NULL, &d, 1.0f, NULL), GANIME_ERR_NULL_POINTER, "stylize(NULL src)");
    EXPECT_STATUS(P->stylize(pass, &d, NULL, 1.0f, NULL), GANIME_ERR_NULL_POINTER, "stylize(NULL dst)");
    EXPECT_STATUS(P->stylize(pass, &d, &big.img, 1.0f, NULL), GANIME_ERR_INVALID_ARGUMENT, "stylize(size mismatch)");
    EXPECT_STATUS(P->stylize(pass, &d, &d, NAN, NULL), GANIME_ERR_INVALID_ARGUMENT, "stylize(strength NaN)");
    EXPECT_STATUS(P->stylize(pass, &d, &d, 1.5f, NULL), GANIME_ERR_INVALID_ARGUMENT, "stylize(strength 1.5)");
    bad = d; bad.stride = 1;
    EXPECT_STATUS(P->stylize(pass, &bad, &d, 1.0f, NULL), GANIME_ERR_INVALID_ARGUMENT, "stylize(short src stride)");
    bad = d; bad.format = 5;
    EXPECT_STATUS(P->stylize(pass, &d, &bad, 1.0f, NULL), GANIME_ERR_UNKNOWN_FORMAT, "stylize(dst format 5)");
    bad = d; bad.height = 0x7fffffffu;
    EXPECT_STATUS(P->stylize(pass, &bad, &bad, 1.0f, NULL), GANIME_ERR_INVALID_ARGUMENT, "stylize(huge height)");
    EXPECT_STATUS(P->stylize(pass, &d, &d, 1.0f, &cancel), GANIME_ERR_CANCELLED, "stylize(cancelled)");
    CHECK(untouched(&dst) && untouched(&big), "a failed stylize wrote into a buffer");

    /* The last error is per thread. */
    P->load_model("sparkles", GANIME_ROLE_FILTER, &none);
    char mine[512];
    snprintf(mine, sizeof mine, "%s", P->last_error());
    pthread_t t;
    pthread_create(&t, NULL, fail_elsewhere, NULL);
    pthread_join(t, NULL);
    CHECK(strcmp(mine, P->last_error()) == 0, "another thread's failure replaced this thread's message");

    /* Releasing: NULLs are no-ops; free_image zeroes the descriptor. */
    P->free_image(NULL);
    P->free_model(NULL);
    P->free_image(&sheet);
    CHECK(sheet.data == NULL && sheet.width == 0, "free_image did not clear the image");
    P->free_image(&sheet);
    P->free_model(gen);
    P->free_model(filter);
    P->free_model(pass);
    free(before);
    dlclose(lib);
    printf("C host: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
