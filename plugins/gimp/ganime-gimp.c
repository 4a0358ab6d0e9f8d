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
 * Run from a menu, each asks for its values in a dialog (prefilled with the last ones used); run with
 * RUN-WITH-LAST-VALS it reuses them (defaults: built-in model, seed 0, 16 images; filter "passthrough", strength 1).
 */
#include <dlfcn.h>
#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>
#include <string.h>

#include "ganime_plugin.h"

#define GENERATE_PROC "plug-in-ganime-generate"
#define STYLIZE_PROC "plug-in-ganime-stylize"

static gchar *plugin_dir;

typedef struct {
    gchar model[1024];
    gint32 seed, count, columns;
} GenerateValues;

typedef struct {
    gchar filter[1024];
    gdouble strength;
} StylizeValues;

static void query(void) {
    static const GimpParamDef generate_args[] = {
        {GIMP_PDB_INT32, "run-mode", "The run mode { RUN-INTERACTIVE (0), RUN-NONINTERACTIVE (1) }"},
        {GIMP_PDB_STRING, "model", "Generator: a ganime checkpoint or exported .safetensors, a pytorch/examples netG .pth, or \"\" for the built-in model"},
        {GIMP_PDB_INT32, "seed", "Seed of the latents (the same seed gives the same characters)"},
        {GIMP_PDB_INT32, "count", "Number of characters (1..1024)"},
        {GIMP_PDB_INT32, "columns", "Characters per row (0: square-ish)"},
    };
    static const GimpParamDef generate_returns[] = {{GIMP_PDB_IMAGE, "image", "The new image"}};
    static const GimpParamDef stylize_args[] = {
        {GIMP_PDB_INT32, "run-mode", "The run mode { RUN-INTERACTIVE (0), RUN-NONINTERACTIVE (1) }"},
        {GIMP_PDB_IMAGE, "image", "Input image"},
        {GIMP_PDB_DRAWABLE, "drawable", "Drawable to stylise"},
        {GIMP_PDB_STRING, "filter", "A ganime filter: a built-in name (passthrough, ...) or KIND:PATH of a model file (animegan:FILE.pt, cyclegan:FILE.pth, ...)"},
        {GIMP_PDB_FLOAT, "strength", "Blend with the original, 0..1 (1: fully stylised)"},
    };
    gimp_install_procedure(GENERATE_PROC, "Generate anime characters with ganime",
                           "Creates a new image with a sheet of characters drawn by a ganime generator.",
                           "ganime", "MIT OR Apache-2.0", "2026", "ganime _Characters...", "", GIMP_PLUGIN,
                           G_N_ELEMENTS(generate_args), G_N_ELEMENTS(generate_returns), generate_args, generate_returns);
    gimp_plugin_menu_register(GENERATE_PROC, "<Image>/File/Create");
    gimp_install_procedure(STYLIZE_PROC, "Stylise with a ganime filter",
                           "Applies a ganime filter (AnimeGANv2, CycleGAN, style networks, built-in effects) to the drawable.",
                           "ganime", "MIT OR Apache-2.0", "2026", "ganime _Stylize...", "RGB*, GRAY*", GIMP_PLUGIN,
                           G_N_ELEMENTS(stylize_args), 0, stylize_args, NULL);
    gimp_plugin_menu_register(STYLIZE_PROC, "<Image>/Filters/Artistic");
}

/* Opens the ganime library once; on failure sets *error. */
static const GanimePluginV1 *plugin(gchar **error) {
    static const GanimePluginV1 *table;
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
    } else if (!(table = entry(GANIME_ABI_VERSION))) {
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
    const GanimePluginV1 *p = plugin(error);
    if (!p) return -1;
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
    const GanimePluginV1 *p = plugin(error);
    if (!p) return FALSE;
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

static void run(const gchar *name, gint nparams, const GimpParam *param, gint *nreturn_vals, GimpParam **return_vals) {
    static GimpParam values[2];
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
