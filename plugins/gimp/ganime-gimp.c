/*
 * ganime for GIMP 2.10: a thin C plug-in over the ganime C ABI (libganime_plugin.so, installed beside this
 * executable or named by $GANIME_PLUGIN_LIB). C rather than Python-Fu because GIMP 2.10's Python-Fu needs
 * Python 2, which current distributions no longer ship.
 *
 * Procedures:
 *   plug-in-ganime-generate (run-mode, model, seed, count, columns) -> image
 *       A new image holding a sheet of `count` generated characters (the same pixels as
 *       `ganime generate --checkpoint MODEL --seed SEED --count COUNT --columns COLUMNS --out ...`).
 *       MODEL "" is the built-in anime-face model. File > Create > ganime Characters.
 *   plug-in-ganime-stylize (run-mode, image, drawable, filter, strength)
 *       Applies a ganime filter (a built-in name or `KIND:PATH`, e.g. `animegan:paprika.pt`) to the
 *       drawable (within the selection), blended with `strength` in [0, 1]. Filters > Artistic > ganime Stylize.
 *   plug-in-ganime-sheet (run-mode, model, request) -> image, metadata
 *       A new image holding the page `ganime sheet` makes: REQUEST is a JSON object with its flag names
 *       ({"seed": 3, "count": 6, "columns": 3, "variations": [4], "interpolate": ["3:5"], "attribute":
 *       ["3:hair=blonde"], "cell": 96, "title": ""}); METADATA is the JSON with every cell's caption, recipe and
 *       place on the page.
 *   plug-in-ganime-axes (run-mode, model) -> axes
 *       The generator's attribute axes as JSON ({"axes": ["hair=blonde", ...], ...}).
 *   plug-in-ganime-place (run-mode, image, model, recipe, size) -> layer
 *       Adds the character of RECIPE (e.g. "seed=4 variation=1@0.75 set=hair=blonde:+1.5"), SIZE pixels
 *       square, as a new layer named "ganime RECIPE | SIZEpx" centred in IMAGE: the same pixels as
 *       `ganime generate --recipe RECIPE --size SIZE`.
 *   plug-in-ganime-inspiration (run-mode, image, drawable, model, seed, count, columns, candidate, variation,
 *                               moves, size, toward) -> layer
 *       The inspiration loop in one dialog (Filters > Render > ganime Inspiration): a sheet of COUNT candidates
 *       from SEED in COLUMNS columns with a row of variations of candidate CANDIDATE (1-based) and, when TOWARD
 *       is a seed (-1: none), a row interpolating from it to TOWARD (click a cell to pick it), a slider per
 *       attribute axis, and the size; OK places candidate CANDIDATE (or cell VARIATION of the rows under it,
 *       1-based: variations 1..COLUMNS, then the interpolation steps; 0: none) moved by MOVES ("hair=blonde:+1.5,eyes=red:-1") like plug-in-ganime-place.
 * Run from a menu, each asks for its values in a dialog (prefilled with the last ones used); run with
 * RUN-WITH-LAST-VALS it reuses them (defaults: built-in model, seed 0, 16 images; filter "passthrough", strength 1).
 */
#include <dlfcn.h>
#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>
#include <stdlib.h>
#include <string.h>

#include "ganime_plugin.h"

#define GENERATE_PROC "plug-in-ganime-generate"
#define STYLIZE_PROC "plug-in-ganime-stylize"
#define SHEET_PROC "plug-in-ganime-sheet"
#define AXES_PROC "plug-in-ganime-axes"
#define PLACE_PROC "plug-in-ganime-place"
#define INSPIRATION_PROC "plug-in-ganime-inspiration"
/* Cells of the dialog's sheet preview, in pixels. */
#define PREVIEW_CELL 64
#define MAX_AXES 64
#define MAX_CELLS 256

static gchar *plugin_dir;

typedef struct {
    gchar model[1024];
    gint32 seed, count, columns;
} GenerateValues;

typedef struct {
    gchar filter[1024];
    gdouble strength;
} StylizeValues;

typedef struct {
    gchar model[1024];
    gint32 seed, count, columns, candidate, variation;
    gchar moves[2048];
    gint32 size, toward;
} InspirationValues;

/* gimp_install_procedure with ganime's author, licence and date. */
static void install(const gchar *name, const gchar *blurb, const gchar *help, const gchar *menu_label, const gchar *image_types, gint n_args,
                    gint n_returns, const GimpParamDef *args, const GimpParamDef *returns) {
    gimp_install_procedure(name, blurb, help, "ganime", "MIT OR Apache-2.0", "2026", menu_label, image_types, GIMP_PLUGIN, n_args, n_returns,
                           args, returns);
}

#define RUN_MODE_ARG {GIMP_PDB_INT32, "run-mode", "The run mode { RUN-INTERACTIVE (0), RUN-NONINTERACTIVE (1) }"}
#define SCRIPT_RUN_MODE_ARG {GIMP_PDB_INT32, "run-mode", "The run mode { RUN-NONINTERACTIVE (1) }"}
#define MODEL_ARG {GIMP_PDB_STRING, "model", "Generator file, or \"\" for the built-in model"}

static void query(void) {
    static const GimpParamDef generate_args[] = {
        RUN_MODE_ARG,
        {GIMP_PDB_STRING, "model", "Generator: a ganime checkpoint or exported .safetensors, a pytorch/examples netG .pth, or \"\" for the built-in model"},
        {GIMP_PDB_INT32, "seed", "Seed of the latents (the same seed gives the same characters)"},
        {GIMP_PDB_INT32, "count", "Number of characters (1..1024)"},
        {GIMP_PDB_INT32, "columns", "Characters per row (0: square-ish)"},
    };
    static const GimpParamDef generate_returns[] = {{GIMP_PDB_IMAGE, "image", "The new image"}};
    static const GimpParamDef stylize_args[] = {
        RUN_MODE_ARG,
        {GIMP_PDB_IMAGE, "image", "Input image"},
        {GIMP_PDB_DRAWABLE, "drawable", "Drawable to stylise"},
        {GIMP_PDB_STRING, "filter", "A ganime filter: a built-in name (passthrough, ...) or KIND:PATH of a model file (animegan:FILE.pt, cyclegan:FILE.pth, ...)"},
        {GIMP_PDB_FLOAT, "strength", "Blend with the original, 0..1 (1: fully stylised)"},
    };
    install(GENERATE_PROC, "Generate anime characters with ganime",
            "Creates a new image with a sheet of characters drawn by a ganime generator.",
            "ganime _Characters...", "", G_N_ELEMENTS(generate_args), G_N_ELEMENTS(generate_returns), generate_args, generate_returns);
    gimp_plugin_menu_register(GENERATE_PROC, "<Image>/File/Create");
    install(STYLIZE_PROC, "Stylise with a ganime filter",
            "Applies a ganime filter (AnimeGANv2, CycleGAN, style networks, built-in effects) to the drawable.",
            "ganime _Stylize...", "RGB*, GRAY*", G_N_ELEMENTS(stylize_args), 0, stylize_args, NULL);
    gimp_plugin_menu_register(STYLIZE_PROC, "<Image>/Filters/Artistic");

    static const GimpParamDef sheet_args[] = {
        SCRIPT_RUN_MODE_ARG,
        MODEL_ARG,
        {GIMP_PDB_STRING, "request", "JSON object with `ganime sheet`'s flag names, e.g. {\"seed\": 3, \"count\": 6, \"variations\": [4]}"},
    };
    static const GimpParamDef sheet_returns[] = {
        {GIMP_PDB_IMAGE, "image", "The new image holding the page"},
        {GIMP_PDB_STRING, "metadata", "JSON: every cell's caption, recipe and place (x, y, size) on the page"},
    };
    install(SHEET_PROC, "A ganime inspiration sheet", "Creates a new image with the page `ganime sheet` makes for the request.",
            NULL, "", G_N_ELEMENTS(sheet_args), G_N_ELEMENTS(sheet_returns), sheet_args, sheet_returns);
    static const GimpParamDef axes_args[] = {
        SCRIPT_RUN_MODE_ARG,
        MODEL_ARG,
    };
    static const GimpParamDef axes_returns[] = {{GIMP_PDB_STRING, "axes", "JSON: {\"axes\": [\"hair=blonde\", ...], \"attributes\": [...]}"}};
    install(AXES_PROC, "The attribute axes of a ganime generator", "Lists the axes that recipes can move along (set=AXIS:AMOUNT).",
            NULL, "", G_N_ELEMENTS(axes_args), G_N_ELEMENTS(axes_returns), axes_args, axes_returns);
    static const GimpParamDef place_args[] = {
        SCRIPT_RUN_MODE_ARG,
        {GIMP_PDB_IMAGE, "image", "Image to add the layer to"},
        MODEL_ARG,
        {GIMP_PDB_STRING, "recipe", "A character recipe, e.g. \"seed=4 variation=1@0.75 set=hair=blonde:+1.5\""},
        {GIMP_PDB_INT32, "size", "Side of the character in pixels (upscaled with Lanczos3)"},
    };
    static const GimpParamDef layer_returns[] = {{GIMP_PDB_LAYER, "layer", "The new layer, named \"ganime RECIPE | SIZEpx\""}};
    install(PLACE_PROC, "Place a ganime character", "Adds the character of a recipe as a new layer named after the recipe.",
            NULL, "", G_N_ELEMENTS(place_args), G_N_ELEMENTS(layer_returns), place_args, layer_returns);
    static const GimpParamDef inspiration_args[] = {
        RUN_MODE_ARG,
        {GIMP_PDB_IMAGE, "image", "Image to place the character in"},
        {GIMP_PDB_DRAWABLE, "drawable", "Unused (the character goes into a new layer)"},
        MODEL_ARG,
        {GIMP_PDB_INT32, "seed", "Seed of the first candidate"},
        {GIMP_PDB_INT32, "count", "Number of candidates (seeds SEED, SEED+1, ...)"},
        {GIMP_PDB_INT32, "columns", "Cells per row of the sheet (and variations shown)"},
        {GIMP_PDB_INT32, "candidate", "The picked candidate, 1..COUNT"},
        {GIMP_PDB_INT32, "variation", "The picked cell under it: 1..COLUMNS a variation, then the interpolation steps; 0 for the candidate itself"},
        {GIMP_PDB_STRING, "moves", "Attribute moves, comma-separated AXIS:AMOUNT (hair=blonde:+1.5,eyes=red:-1), or \"\""},
        {GIMP_PDB_INT32, "size", "Side of the placed character in pixels"},
        {GIMP_PDB_INT32, "toward", "A seed to interpolate toward from the candidate (a row of COLUMNS steps), or -1 for none"},
    };
    install(INSPIRATION_PROC, "ganime inspiration: pick, vary, move attributes, place",
            "Shows candidates and variations, a slider per attribute, and places the chosen character as a new layer.",
            "ganime _Inspiration...", "*", G_N_ELEMENTS(inspiration_args), G_N_ELEMENTS(layer_returns), inspiration_args, layer_returns);
    gimp_plugin_menu_register(INSPIRATION_PROC, "<Image>/Filters/Render");
}

/* Opens the ganime library once (ABI version 2; `->base` is version 1's table); on failure sets *error. */
static const GanimePluginV2 *plugin(gchar **error) {
    static const GanimePluginV2 *table;
    if (table) return table;
    const gchar *env = g_getenv("GANIME_PLUGIN_LIB");
    gchar *path = env && *env ? g_strdup(env) : g_build_filename(plugin_dir, "libganime_plugin.so", NULL);
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        *error = g_strdup_printf("cannot load the ganime library %s: %s", path, dlerror());
        g_free(path);
        return NULL;
    }
    GanimePluginEntryFn entry = (GanimePluginEntryFn)dlsym(lib, "ganime_plugin_entry");
    GanimeLastErrorFn last_error = (GanimeLastErrorFn)dlsym(lib, "ganime_plugin_last_error");
    if (!entry || !last_error) {
        *error = g_strdup_printf("%s is not a ganime plug-in library", path);
    } else if (!(table = (const GanimePluginV2 *)entry(GANIME_ABI_VERSION))) {
        *error = g_strdup_printf("%s: %s", path, last_error());
    }
    g_free(path);
    return table;
}

static int32_t report_progress(void *user_data, uint32_t done, uint32_t total) {
    (void)user_data;
    gimp_progress_update(total ? (gdouble)done / total : 1.0);
    return 0;
}

static gint32 generate(const GenerateValues *v, gboolean interactive, gchar **error) {
    const GanimePluginV2 *v2 = plugin(error);
    if (!v2) return -1;
    const GanimePluginV1 *p = &v2->base;
    GanimeModel *model = NULL;
    if (p->load_model(v->model, GANIME_ROLE_GENERATOR, &model) != GANIME_OK) {
        *error = g_strdup(p->last_error());
        return -1;
    }
    gimp_progress_init("ganime: generating");
    GanimeProgress progress = {report_progress, NULL};
    GanimeImage sheet = {0};
    gint32 image = -1;
    if (v->seed < 0 || v->count < 1 || v->columns < 0) {
        *error = g_strdup_printf("seed must be >= 0, count >= 1 and columns >= 0 (got %d, %d, %d)", v->seed, v->count, v->columns);
    } else if (p->generate_sheet(model, (uint64_t)v->seed, (uint32_t)v->count, (uint32_t)v->columns, NULL,
                                 GANIME_FORMAT_RGB8, &sheet, &progress) != GANIME_OK) {
        *error = g_strdup(p->last_error());
    } else {
        image = gimp_image_new(sheet.width, sheet.height, GIMP_RGB);
        gchar *name = g_strdup_printf("ganime seed %d", v->seed);
        gint32 layer = gimp_layer_new(image, name, sheet.width, sheet.height, GIMP_RGB_IMAGE, 100.0, GIMP_LAYER_MODE_NORMAL);
        g_free(name);
        gimp_image_insert_layer(image, layer, 0, 0);
        GeglBuffer *buffer = gimp_drawable_get_buffer(layer);
        gegl_buffer_set(buffer, GEGL_RECTANGLE(0, 0, sheet.width, sheet.height), 0, babl_format("R'G'B' u8"),
                        sheet.data, sheet.stride);
        g_object_unref(buffer);
        p->free_image(&sheet);
        if (interactive) gimp_display_new(image);
    }
    p->free_model(model);
    return image;
}

static gboolean stylize(gint32 drawable, const StylizeValues *v, gchar **error) {
    const GanimePluginV2 *v2 = plugin(error);
    if (!v2) return FALSE;
    const GanimePluginV1 *p = &v2->base;
    gint x, y, w, h;
    if (!gimp_drawable_mask_intersect(drawable, &x, &y, &w, &h)) return TRUE; /* empty selection: nothing to do */
    GanimeModel *model = NULL;
    if (p->load_model(v->filter, GANIME_ROLE_FILTER, &model) != GANIME_OK) {
        *error = g_strdup(p->last_error());
        return FALSE;
    }
    gimp_progress_init("ganime: stylising");
    /* The selection's bounding box as RGBA (babl converts from and to the drawable's own format). */
    const Babl *format = babl_format("R'G'B'A u8");
    GanimeImage pixels = {g_malloc((gsize)w * h * 4), (uint32_t)w, (uint32_t)h, (size_t)w * 4, GANIME_FORMAT_RGBA8};
    GeglBuffer *source = gimp_drawable_get_buffer(drawable);
    gegl_buffer_get(source, GEGL_RECTANGLE(x, y, w, h), 1.0, format, pixels.data, GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
    GanimeProgress progress = {report_progress, NULL};
    gboolean ok = p->stylize(model, &pixels, &pixels, (float)v->strength, &progress) == GANIME_OK;
    if (!ok) {
        *error = g_strdup(p->last_error());
    } else {
        /* Through the shadow buffer, so the selection mask and undo apply. */
        GeglBuffer *shadow = gimp_drawable_get_shadow_buffer(drawable);
        gegl_buffer_set(shadow, GEGL_RECTANGLE(x, y, w, h), 0, format, pixels.data, GEGL_AUTO_ROWSTRIDE);
        g_object_unref(shadow);
        gimp_drawable_merge_shadow(drawable, TRUE);
        gimp_drawable_update(drawable, x, y, w, h);
    }
    g_object_unref(source);
    g_free(pixels.data);
    p->free_model(model);
    return ok;
}

/* A loaded generator, or NULL with *error set. */
static GanimeModel *load_generator(const GanimePluginV2 *p, const gchar *model, gchar **error) {
    GanimeModel *handle = NULL;
    if (p->base.load_model(model, GANIME_ROLE_GENERATOR, &handle) != GANIME_OK) {
        *error = g_strdup(p->base.last_error());
        return NULL;
    }
    return handle;
}

/* The page `ganime sheet` makes for `request` (RGBA, to free_image) and its metadata (g_free), or FALSE. */
static gboolean render_sheet(const GanimePluginV2 *p, GanimeModel *model, const gchar *request, GanimeImage *page, gchar **metadata,
                             gchar **error) {
    const char *meta = NULL;
    if (p->render_sheet(model, request, GANIME_FORMAT_RGBA8, page, &meta, NULL) != GANIME_OK) {
        *error = g_strdup(p->base.last_error());
        return FALSE;
    }
    *metadata = g_strdup(meta);
    return TRUE;
}

/* The cells of sheet metadata, in page order. The metadata is ganime's own JSON: recipes and captions hold no
 * quotes or braces, and each cell is one flat object with "recipe", "x", "y" and "size" in some order. */
typedef struct {
    gchar recipe[512];
    gint x, y, size;
} Cell;

/* The integer after `"key":` inside [from, to), or -1. */
static gint cell_field(const gchar *from, const gchar *to, const gchar *key) {
    gchar *pattern = g_strdup_printf("\"%s\":", key);
    const gchar *at = g_strstr_len(from, to - from, pattern);
    gint value = at ? atoi(at + strlen(pattern)) : -1;
    g_free(pattern);
    return value;
}

static gint parse_cells(const gchar *metadata, Cell *cells, gint max) {
    gint n = 0;
    const gchar *at = strstr(metadata, "\"cells\":[");
    while (at && n < max && (at = strchr(at, '{'))) {
        const gchar *end = strchr(at, '}');
        const gchar *recipe = end ? g_strstr_len(at, end - at, "\"recipe\":\"") : NULL;
        if (!recipe) break;
        recipe += strlen("\"recipe\":\"");
        g_strlcpy(cells[n].recipe, recipe, MIN((gsize)(strchr(recipe, '"') - recipe) + 1, sizeof cells[n].recipe));
        cells[n].x = cell_field(at, end, "x");
        cells[n].y = cell_field(at, end, "y");
        cells[n].size = cell_field(at, end, "size");
        n++;
        at = end;
        /* The cells array ends at the first `]` after a cell. */
        while (*at == '}' || *at == ',' || *at == ' ') at++;
        if (*at == ']') break;
    }
    return n;
}

/* The axis names of a generator (g_strfreev), from plug-in-ganime-axes' JSON. */
static gchar **axis_names(const GanimePluginV2 *p, GanimeModel *model, gchar **error) {
    const char *json = NULL;
    if (p->model_axes(model, &json) != GANIME_OK) {
        *error = g_strdup(p->base.last_error());
        return NULL;
    }
    GPtrArray *names = g_ptr_array_new();
    const gchar *at = strstr(json, "\"axes\":[");
    const gchar *stop = at ? strchr(at, ']') : NULL;
    for (at = at ? at + strlen("\"axes\":[") : NULL; at && (at = strchr(at, '"')) && at < stop;) {
        const gchar *end = strchr(at + 1, '"');
        g_ptr_array_add(names, g_strndup(at + 1, end - at - 1));
        at = end + 1;
    }
    g_ptr_array_add(names, NULL);
    return (gchar **)g_ptr_array_free(names, FALSE);
}

/* Adds the character of `recipe`, size x size, as a new layer centred in `image`; the layer or -1. */
static gint32 place(const GanimePluginV2 *p, GanimeModel *model, gint32 image, const gchar *recipe, gint32 size, gchar **error) {
    if (size < 1 || size > GANIME_MAX_DIMENSION) {
        *error = g_strdup_printf("size %d is outside 1..%d pixels", size, GANIME_MAX_DIMENSION);
        return -1;
    }
    GanimeImage pixels = {g_malloc((gsize)size * size * 3), (uint32_t)size, (uint32_t)size, (size_t)size * 3, GANIME_FORMAT_RGB8};
    const char *canonical = NULL;
    gint32 layer = -1;
    if (p->generate_character(model, recipe, &pixels, &canonical, NULL) != GANIME_OK) {
        *error = g_strdup(p->base.last_error());
    } else {
        gchar *name = g_strdup_printf("ganime %s | %dpx", canonical, size);
        layer = gimp_layer_new(image, name, size, size, GIMP_RGB_IMAGE, 100.0, GIMP_LAYER_MODE_NORMAL);
        g_free(name);
        gimp_image_insert_layer(image, layer, 0, 0);
        gimp_layer_set_offsets(layer, MAX(0, (gimp_image_width(image) - size) / 2), MAX(0, (gimp_image_height(image) - size) / 2));
        GeglBuffer *buffer = gimp_drawable_get_buffer(layer);
        gegl_buffer_set(buffer, GEGL_RECTANGLE(0, 0, size, size), 0, babl_format("R'G'B' u8"), pixels.data, pixels.stride);
        g_object_unref(buffer);
    }
    g_free(pixels.data);
    return layer;
}

/* A new image holding a sheet page (RGBA from the plug-in). */
static gint32 sheet_image(const GanimeImage *page) {
    gint32 image = gimp_image_new(page->width, page->height, GIMP_RGB);
    gint32 layer = gimp_layer_new(image, "ganime sheet", page->width, page->height, GIMP_RGBA_IMAGE, 100.0, GIMP_LAYER_MODE_NORMAL);
    gimp_image_insert_layer(image, layer, 0, 0);
    GeglBuffer *buffer = gimp_drawable_get_buffer(layer);
    gegl_buffer_set(buffer, GEGL_RECTANGLE(0, 0, page->width, page->height), 0, babl_format("R'G'B'A u8"), page->data, page->stride);
    g_object_unref(buffer);
    return image;
}

/* The inspiration sheet request: the candidates, a row of variations of the picked one and, with a seed to go
 * toward, the interpolation row. */
static gchar *inspiration_request(const InspirationValues *v, gint cell) {
    gint picked = v->seed + v->candidate - 1;
    gchar *toward = v->toward >= 0 ? g_strdup_printf(", \"interpolate\": [\"%d:%d\"]", picked, v->toward) : g_strdup("");
    gchar *request = g_strdup_printf("{\"seed\": %d, \"count\": %d, \"columns\": %d, \"cell\": %d, \"title\": \"\", \"variations\": [%d]%s}", v->seed,
                                     v->count, v->columns, cell, picked, toward);
    g_free(toward);
    return request;
}

/* How many cells the rows under the candidates hold. */
static gint inspiration_rows_cells(const InspirationValues *v) {
    return v->toward >= 0 ? v->columns + MAX(v->columns, 2) : v->columns; /* as `ganime sheet` lays the rows out */
}

/* The recipe the values pick: the cell of the candidate or its variation, plus the moves. */
static gchar *inspiration_recipe(const InspirationValues *v, const Cell *cells, gint n, gchar **error) {
    gint index = v->variation > 0 ? v->count + v->variation - 1 : v->candidate - 1;
    gint below = inspiration_rows_cells(v);
    if (v->candidate < 1 || v->candidate > v->count || v->variation < 0 || v->variation > below || index >= n) {
        *error = g_strdup_printf("candidate %d must be in 1..%d (count) and variation %d in 0..%d (the cells under the candidates)", v->candidate,
                                 v->count, v->variation, below);
        return NULL;
    }
    GString *recipe = g_string_new(cells[index].recipe);
    gchar **moves = g_strsplit(v->moves, ",", -1);
    for (gchar **m = moves; *m; m++) {
        gchar *move = g_strstrip(*m);
        if (*move) g_string_append_printf(recipe, " set=%s", move);
    }
    g_strfreev(moves);
    return g_string_free(recipe, FALSE);
}

static gboolean inspiration_dialog(const GanimePluginV2 *p, InspirationValues *v);

static gint32 inspiration(gint32 image, InspirationValues *v, gboolean interactive, gchar **error) {
    const GanimePluginV2 *p = plugin(error);
    if (!p) return -1;
    if (interactive && !inspiration_dialog(p, v)) return -2;
    GanimeModel *model = load_generator(p, v->model, error);
    if (!model) return -1;
    gint32 layer = -1;
    gchar *request = inspiration_request(v, PREVIEW_CELL), *metadata = NULL;
    GanimeImage page = {0};
    if (v->count < 1 || v->columns < 1 || v->seed < 0) {
        *error = g_strdup_printf("seed must be >= 0, count and columns >= 1 (got %d, %d, %d)", v->seed, v->count, v->columns);
    } else if (render_sheet(p, model, request, &page, &metadata, error)) {
        p->base.free_image(&page);
        Cell cells[MAX_CELLS];
        gint n = parse_cells(metadata, cells, MAX_CELLS);
        gchar *recipe = inspiration_recipe(v, cells, n, error);
        if (recipe) layer = place(p, model, image, recipe, v->size, error);
        g_free(recipe);
    }
    g_free(request);
    g_free(metadata);
    p->base.free_model(model);
    return layer;
}

static GtkWidget *dialog_new(const gchar *title, const gchar *proc, GtkWidget **table, gint rows) {
    gimp_ui_init("ganime", FALSE);
    GtkWidget *dialog = gimp_dialog_new(title, "ganime", NULL, 0, gimp_standard_help_func, proc, "_Cancel",
                                        GTK_RESPONSE_CANCEL, "_OK", GTK_RESPONSE_OK, NULL);
    *table = gtk_table_new(rows, 2, FALSE);
    gtk_table_set_row_spacings(GTK_TABLE(*table), 6);
    gtk_table_set_col_spacings(GTK_TABLE(*table), 6);
    gtk_container_set_border_width(GTK_CONTAINER(*table), 12);
    gtk_box_pack_start(GTK_BOX(gtk_dialog_get_content_area(GTK_DIALOG(dialog))), *table, TRUE, TRUE, 0);
    return dialog;
}

static GtkWidget *spin_row(GtkWidget *table, gint row, const gchar *label, gdouble lo, gdouble hi, gdouble step,
                           gint digits, gdouble value) {
    GtkWidget *spin = gtk_spin_button_new_with_range(lo, hi, step);
    gtk_spin_button_set_digits(GTK_SPIN_BUTTON(spin), digits);
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(spin), value);
    gimp_table_attach_aligned(GTK_TABLE(table), 0, row, label, 0.0, 0.5, spin, 1, FALSE);
    return spin;
}

static GtkWidget *entry_row(GtkWidget *table, gint row, const gchar *label, const gchar *text) {
    GtkWidget *entry = gtk_entry_new();
    gtk_entry_set_text(GTK_ENTRY(entry), text);
    gtk_entry_set_width_chars(GTK_ENTRY(entry), 40);
    gimp_table_attach_aligned(GTK_TABLE(table), 0, row, label, 0.0, 0.5, entry, 1, FALSE);
    return entry;
}

/* Asks for the generation values; FALSE when cancelled. */
static gboolean generate_dialog(GenerateValues *v) {
    GtkWidget *table, *dialog = dialog_new("ganime: Generate Characters", GENERATE_PROC, &table, 4);
    GtkWidget *model = entry_row(table, 0, "_Model file (empty: built-in):", v->model);
    GtkWidget *seed = spin_row(table, 1, "_Seed:", 0, G_MAXINT32, 1, 0, v->seed);
    GtkWidget *count = spin_row(table, 2, "C_haracters:", 1, GANIME_MAX_COUNT, 1, 0, v->count);
    GtkWidget *columns = spin_row(table, 3, "C_olumns (0: square-ish):", 0, GANIME_MAX_COUNT, 1, 0, v->columns);
    gtk_widget_show_all(dialog);
    gboolean ok = gimp_dialog_run(GIMP_DIALOG(dialog)) == GTK_RESPONSE_OK;
    if (ok) {
        g_strlcpy(v->model, gtk_entry_get_text(GTK_ENTRY(model)), sizeof v->model);
        v->seed = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(seed));
        v->count = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(count));
        v->columns = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(columns));
    }
    gtk_widget_destroy(dialog);
    return ok;
}

/* Asks for the filter and strength; FALSE when cancelled. */
static gboolean stylize_dialog(StylizeValues *v) {
    GtkWidget *table, *dialog = dialog_new("ganime: Stylize", STYLIZE_PROC, &table, 2);
    GtkWidget *filter = entry_row(table, 0, "_Filter (name or KIND:PATH, e.g. animegan:paprika.pt):", v->filter);
    GtkWidget *strength = spin_row(table, 1, "_Strength:", 0.0, 1.0, 0.05, 2, v->strength);
    gtk_widget_show_all(dialog);
    gboolean ok = gimp_dialog_run(GIMP_DIALOG(dialog)) == GTK_RESPONSE_OK;
    if (ok) {
        g_strlcpy(v->filter, gtk_entry_get_text(GTK_ENTRY(filter)), sizeof v->filter);
        v->strength = gtk_spin_button_get_value(GTK_SPIN_BUTTON(strength));
    }
    gtk_widget_destroy(dialog);
    return ok;
}

/* The inspiration dialog's widgets and what they show. */
typedef struct {
    const GanimePluginV2 *p;
    GanimeModel *model;
    InspirationValues *v;
    GtkWidget *seed, *count, *columns, *toward, *candidate, *variation, *size, *sheet, *character, *recipe;
    gchar **axes;
    GtkObject *amounts[MAX_AXES];
    Cell cells[MAX_CELLS];
    gint n_cells;
} Inspiration;

static GdkPixbuf *pixbuf_of(const GanimeImage *image) {
    GdkPixbuf *view = gdk_pixbuf_new_from_data(image->data, GDK_COLORSPACE_RGB, image->format == GANIME_FORMAT_RGBA8, 8, image->width,
                                               image->height, image->stride, NULL, NULL);
    GdkPixbuf *copy = gdk_pixbuf_copy(view);
    g_object_unref(view);
    return copy;
}

/* Reads the widgets into the values. */
static void inspiration_read(Inspiration *ui) {
    InspirationValues *v = ui->v;
    v->seed = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(ui->seed));
    v->count = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(ui->count));
    v->columns = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(ui->columns));
    v->candidate = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(ui->candidate));
    v->variation = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(ui->variation));
    v->toward = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(ui->toward));
    v->size = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(ui->size));
    GString *moves = g_string_new("");
    for (gint i = 0; ui->axes && ui->axes[i] && i < MAX_AXES; i++) {
        gdouble amount = gtk_adjustment_get_value(GTK_ADJUSTMENT(ui->amounts[i]));
        if (amount != 0.0) g_string_append_printf(moves, "%s%s:%+g", moves->len ? "," : "", ui->axes[i], amount);
    }
    g_strlcpy(v->moves, moves->str, sizeof v->moves);
    g_string_free(moves, TRUE);
}

/* Re-renders the sheet preview and the character preview from the widgets. */
static void inspiration_refresh(GtkWidget *widget, Inspiration *ui) {
    (void)widget;
    gchar *error = NULL, *metadata = NULL;
    inspiration_read(ui);
    gtk_spin_button_set_range(GTK_SPIN_BUTTON(ui->candidate), 1, ui->v->count);
    gtk_spin_button_set_range(GTK_SPIN_BUTTON(ui->variation), 0, inspiration_rows_cells(ui->v));
    inspiration_read(ui);
    gchar *request = inspiration_request(ui->v, PREVIEW_CELL);
    GanimeImage page = {0};
    if (render_sheet(ui->p, ui->model, request, &page, &metadata, &error)) {
        GdkPixbuf *pixbuf = pixbuf_of(&page);
        gtk_image_set_from_pixbuf(GTK_IMAGE(ui->sheet), pixbuf);
        g_object_unref(pixbuf);
        ui->p->base.free_image(&page);
        ui->n_cells = parse_cells(metadata, ui->cells, MAX_CELLS);
        gchar *recipe = inspiration_recipe(ui->v, ui->cells, ui->n_cells, &error);
        GanimeImage preview = {g_malloc(128 * 128 * 3), 128, 128, 128 * 3, GANIME_FORMAT_RGB8};
        const char *canonical = NULL;
        if (recipe && ui->p->generate_character(ui->model, recipe, &preview, &canonical, NULL) == GANIME_OK) {
            GdkPixbuf *character = pixbuf_of(&preview);
            gtk_image_set_from_pixbuf(GTK_IMAGE(ui->character), character);
            g_object_unref(character);
            gtk_label_set_text(GTK_LABEL(ui->recipe), canonical);
        } else if (!error) {
            error = g_strdup(ui->p->base.last_error());
        }
        g_free(preview.data);
        g_free(recipe);
    }
    if (error) gtk_label_set_text(GTK_LABEL(ui->recipe), error);
    g_free(error);
    g_free(request);
    g_free(metadata);
}

/* A click on the sheet preview picks the candidate or variation under it. */
static gboolean inspiration_click(GtkWidget *box, GdkEventButton *event, Inspiration *ui) {
    (void)box;
    for (gint i = 0; i < ui->n_cells; i++) {
        const Cell *c = &ui->cells[i];
        if (event->x >= c->x && event->x < c->x + c->size && event->y >= c->y && event->y < c->y + c->size) {
            if (i < ui->v->count) {
                gtk_spin_button_set_value(GTK_SPIN_BUTTON(ui->variation), 0);
                gtk_spin_button_set_value(GTK_SPIN_BUTTON(ui->candidate), i + 1);
            } else {
                gtk_spin_button_set_value(GTK_SPIN_BUTTON(ui->variation), i - ui->v->count + 1);
            }
            return TRUE;
        }
    }
    return FALSE;
}

/* Asks for the inspiration values; FALSE when cancelled or the generator cannot load. */
static gboolean inspiration_dialog(const GanimePluginV2 *p, InspirationValues *v) {
    gchar *error = NULL;
    Inspiration ui = {p, load_generator(p, v->model, &error), v};
    if (!ui.model) {
        g_message("%s", error);
        g_free(error);
        return FALSE;
    }
    ui.axes = axis_names(p, ui.model, &error);
    g_free(error);
    GtkWidget *table, *dialog = dialog_new("ganime: Inspiration", INSPIRATION_PROC, &table, 8);
    ui.seed = spin_row(table, 0, "_Seed:", 0, G_MAXINT32, 1, 0, v->seed);
    ui.count = spin_row(table, 1, "C_andidates:", 1, 64, 1, 0, v->count);
    ui.columns = spin_row(table, 2, "C_olumns (and variations):", 1, 12, 1, 0, v->columns);
    ui.toward = spin_row(table, 3, "Interpolate _toward seed (-1: none):", -1, G_MAXINT32, 1, 0, v->toward);
    ui.candidate = spin_row(table, 4, "_Picked candidate:", 1, v->count, 1, 0, v->candidate);
    ui.variation = spin_row(table, 5, "_Variation or step (0: none):", 0, inspiration_rows_cells(v), 1, 0, v->variation);
    ui.size = spin_row(table, 6, "Si_ze (pixels):", 16, 4096, 16, 0, v->size);
    GtkWidget *previews = gtk_hbox_new(FALSE, 12);
    GtkWidget *click = gtk_event_box_new();
    ui.sheet = gtk_image_new();
    gtk_container_add(GTK_CONTAINER(click), ui.sheet);
    g_signal_connect(click, "button-press-event", G_CALLBACK(inspiration_click), &ui);
    gtk_box_pack_start(GTK_BOX(previews), click, FALSE, FALSE, 0);
    GtkWidget *right = gtk_vbox_new(FALSE, 6);
    ui.character = gtk_image_new();
    ui.recipe = gtk_label_new("");
    gtk_label_set_line_wrap(GTK_LABEL(ui.recipe), TRUE);
    gtk_label_set_selectable(GTK_LABEL(ui.recipe), TRUE);
    gtk_box_pack_start(GTK_BOX(right), ui.character, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(right), ui.recipe, FALSE, FALSE, 0);
    GtkWidget *sliders = gtk_table_new(1, 3, FALSE);
    for (gint i = 0; ui.axes && ui.axes[i] && i < MAX_AXES; i++) {
        /* The prefilled amount of this axis from the last moves ("axis:amount,..."). */
        gdouble amount = 0.0;
        gchar *key = g_strdup_printf("%s:", ui.axes[i]);
        const gchar *at = strstr(v->moves, key);
        if (at) amount = g_ascii_strtod(at + strlen(key), NULL);
        g_free(key);
        ui.amounts[i] = gimp_scale_entry_new(GTK_TABLE(sliders), 0, i, ui.axes[i], 160, 6, amount, -2.5, 2.5, 0.1, 0.5, 1, TRUE, 0, 0, NULL, NULL);
        g_signal_connect(ui.amounts[i], "value-changed", G_CALLBACK(inspiration_refresh), &ui);
    }
    gtk_box_pack_start(GTK_BOX(right), sliders, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(previews), right, TRUE, TRUE, 0);
    gtk_table_attach_defaults(GTK_TABLE(table), previews, 0, 2, 7, 8);
    GtkWidget *spins[] = {ui.seed, ui.count, ui.columns, ui.toward, ui.candidate, ui.variation};
    for (gsize i = 0; i < G_N_ELEMENTS(spins); i++) g_signal_connect(spins[i], "value-changed", G_CALLBACK(inspiration_refresh), &ui);
    inspiration_refresh(NULL, &ui);
    gtk_widget_show_all(dialog);
    gboolean ok = gimp_dialog_run(GIMP_DIALOG(dialog)) == GTK_RESPONSE_OK;
    if (ok) inspiration_read(&ui);
    gtk_widget_destroy(dialog);
    g_strfreev(ui.axes);
    p->base.free_model(ui.model);
    return ok;
}

/* The three script-only procedures: sheet, axes, place. */
static void run_script_procedure(const gchar *name, gint nparams, const GimpParam *param, gint *nreturn_vals, GimpParam *values, gchar **error) {
    const GanimePluginV2 *p = plugin(error);
    if (!p) return;
    gboolean sheet = strcmp(name, SHEET_PROC) == 0, axes = strcmp(name, AXES_PROC) == 0;
    if (nparams != (sheet ? 3 : axes ? 2 : 5)) {
        values[0].data.d_status = GIMP_PDB_CALLING_ERROR;
        return;
    }
    const gchar *model_spec = sheet || axes ? param[1].data.d_string : param[2].data.d_string;
    GanimeModel *model = load_generator(p, model_spec ? model_spec : "", error);
    if (!model) return;
    if (sheet) {
        GanimeImage page = {0};
        gchar *metadata = NULL;
        if (render_sheet(p, model, param[2].data.d_string ? param[2].data.d_string : "", &page, &metadata, error)) {
            *nreturn_vals = 3;
            values[1].type = GIMP_PDB_IMAGE;
            values[1].data.d_image = sheet_image(&page);
            values[2].type = GIMP_PDB_STRING;
            values[2].data.d_string = metadata;
            p->base.free_image(&page);
        }
    } else if (axes) {
        const char *json = NULL;
        if (p->model_axes(model, &json) != GANIME_OK) {
            *error = g_strdup(p->base.last_error());
        } else {
            *nreturn_vals = 2;
            values[1].type = GIMP_PDB_STRING;
            values[1].data.d_string = g_strdup(json);
        }
    } else {
        gint32 layer = place(p, model, param[1].data.d_image, param[3].data.d_string ? param[3].data.d_string : "", param[4].data.d_int32, error);
        if (layer >= 0) {
            *nreturn_vals = 2;
            values[1].type = GIMP_PDB_LAYER;
            values[1].data.d_layer = layer;
        }
    }
    p->base.free_model(model);
}

static void run(const gchar *name, gint nparams, const GimpParam *param, gint *nreturn_vals, GimpParam **return_vals) {
    static GimpParam values[3];
    GimpRunMode mode = param[0].data.d_int32;
    gchar *error = NULL;
    gegl_init(NULL, NULL);
    *nreturn_vals = 1;
    *return_vals = values;
    values[0].type = GIMP_PDB_STATUS;
    values[0].data.d_status = GIMP_PDB_SUCCESS;

    if (strcmp(name, GENERATE_PROC) == 0) {
        GenerateValues v = {"", 0, 16, 0};
        if (mode == GIMP_RUN_NONINTERACTIVE) {
            if (nparams != 5) {
                values[0].data.d_status = GIMP_PDB_CALLING_ERROR;
                return;
            }
            g_strlcpy(v.model, param[1].data.d_string ? param[1].data.d_string : "", sizeof v.model);
            v.seed = param[2].data.d_int32;
            v.count = param[3].data.d_int32;
            v.columns = param[4].data.d_int32;
        } else {
            gimp_get_data(GENERATE_PROC, &v);
            if (mode == GIMP_RUN_INTERACTIVE && !generate_dialog(&v)) {
                values[0].data.d_status = GIMP_PDB_CANCEL;
                return;
            }
        }
        gint32 image = generate(&v, mode == GIMP_RUN_INTERACTIVE, &error);
        if (image >= 0) {
            gimp_set_data(GENERATE_PROC, &v, sizeof v);
            *nreturn_vals = 2;
            values[1].type = GIMP_PDB_IMAGE;
            values[1].data.d_image = image;
        }
    } else if (strcmp(name, STYLIZE_PROC) == 0) {
        StylizeValues v = {"passthrough", 1.0};
        if (mode == GIMP_RUN_NONINTERACTIVE) {
            if (nparams != 5) {
                values[0].data.d_status = GIMP_PDB_CALLING_ERROR;
                return;
            }
            g_strlcpy(v.filter, param[3].data.d_string ? param[3].data.d_string : "", sizeof v.filter);
            v.strength = param[4].data.d_float;
        } else {
            gimp_get_data(STYLIZE_PROC, &v);
            if (mode == GIMP_RUN_INTERACTIVE && !stylize_dialog(&v)) {
                values[0].data.d_status = GIMP_PDB_CANCEL;
                return;
            }
        }
        if (stylize(param[2].data.d_drawable, &v, &error)) {
            gimp_set_data(STYLIZE_PROC, &v, sizeof v);
            if (mode != GIMP_RUN_NONINTERACTIVE) gimp_displays_flush();
        }
    } else if (strcmp(name, SHEET_PROC) == 0 || strcmp(name, AXES_PROC) == 0 || strcmp(name, PLACE_PROC) == 0) {
        run_script_procedure(name, nparams, param, nreturn_vals, values, &error);
    } else if (strcmp(name, INSPIRATION_PROC) == 0) {
        InspirationValues v = {"", 0, 6, 3, 1, 0, "", 256, -1};
        if (mode == GIMP_RUN_NONINTERACTIVE) {
            if (nparams != 12) {
                values[0].data.d_status = GIMP_PDB_CALLING_ERROR;
                return;
            }
            g_strlcpy(v.model, param[3].data.d_string ? param[3].data.d_string : "", sizeof v.model);
            v.seed = param[4].data.d_int32;
            v.count = param[5].data.d_int32;
            v.columns = param[6].data.d_int32;
            v.candidate = param[7].data.d_int32;
            v.variation = param[8].data.d_int32;
            g_strlcpy(v.moves, param[9].data.d_string ? param[9].data.d_string : "", sizeof v.moves);
            v.size = param[10].data.d_int32;
            v.toward = param[11].data.d_int32;
        } else {
            gimp_get_data(INSPIRATION_PROC, &v);
        }
        gint32 layer = inspiration(param[1].data.d_image, &v, mode == GIMP_RUN_INTERACTIVE, &error);
        if (layer == -2) {
            values[0].data.d_status = GIMP_PDB_CANCEL;
            return;
        }
        if (layer >= 0) {
            gimp_set_data(INSPIRATION_PROC, &v, sizeof v);
            *nreturn_vals = 2;
            values[1].type = GIMP_PDB_LAYER;
            values[1].data.d_layer = layer;
            if (mode != GIMP_RUN_NONINTERACTIVE) gimp_displays_flush();
        }
    } else {
        values[0].data.d_status = GIMP_PDB_CALLING_ERROR;
        return;
    }
    if (error) {
        /* The message reaches Script-Fu's error and GIMP's error console. */
        values[0].data.d_status = GIMP_PDB_EXECUTION_ERROR;
        *nreturn_vals = 2;
        values[1].type = GIMP_PDB_STRING;
        values[1].data.d_string = error;
    }
}

const GimpPlugInInfo PLUG_IN_INFO = {NULL, NULL, query, run};

int main(int argc, char *argv[]) {
    /* The ganime library is looked for beside this executable. */
    plugin_dir = g_path_get_dirname(argv[0]);
    return gimp_main(&PLUG_IN_INFO, argc, argv);
}
