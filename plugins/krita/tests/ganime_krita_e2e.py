"""Run by tests/tests/plugins.rs through kritarunner (headless):
    kritarunner -s ganime_krita_e2e -f main GENERATOR FILTER OUT_DIR
Generates a sheet (seed 3, 6 characters, 3 columns) into a new document through the ganime plug-in, exports it,
stylises the layer with FILTER, exports again, checks that bad input raises GanimeError, and writes "ok" to
OUT_DIR/krita-result.txt when everything ran (kritarunner's exit status does not tell).
"""

import os
import traceback

from krita import InfoObject, Krita

from ganime import abi, operations


def export(doc, path):
    doc.refreshProjection()
    doc.waitForDone()
    if not doc.exportImage(path, InfoObject()):
        raise RuntimeError("Krita could not export %s" % path)


def expect_error(status, call):
    try:
        call()
    except abi.GanimeError as e:
        if e.status != status:
            raise RuntimeError("expected status %d, got %s" % (status, e))
        print("ok error:", e)
        return
    raise RuntimeError("expected a GanimeError with status %d" % status)


def run_and_report(path, body):
    """Runs ``body`` and writes "ok" or the traceback to ``path`` (kritarunner's exit status does not tell)."""
    try:
        body()
        result = "ok"
    except Exception:
        traceback.print_exc()
        result = traceback.format_exc()
    with open(path, "w") as f:
        f.write(result + "\n")


def main(args):
    generator, spec, out = args[0], args[1], args[2]
    run_and_report(os.path.join(out, "krita-result.txt"), lambda: generate_and_stylize(generator, spec, out))


def generate_and_stylize(generator, spec, out):
    plugin = abi.Plugin()
    doc = operations.new_characters_document(generator, seed=3, count=6, columns=3, plugin=plugin)
    doc.setBatchmode(True)
    export(doc, os.path.join(out, "krita-generated.png"))
    layer = doc.rootNode().childNodes()[-1]
    operations.stylize_node(doc, layer, spec, 1.0, plugin)
    export(doc, os.path.join(out, "krita-styled.png"))

    names = operations.filter_names(plugin)
    if not {"toon", "style00", "style25", "matta"} <= set(names):
        raise AssertionError("the filter list misses built-ins: %s" % names)
    expect_error(abi.ERR_LOAD_FAILED, lambda: plugin.load("sparkles", abi.ROLE_FILTER))
    with plugin.load("passthrough", abi.ROLE_FILTER) as filt:
        expect_error(abi.ERR_INVALID_ARGUMENT, lambda: filt.stylize_in_place(4, 4, bytearray(16 * 4), 2.0))
        expect_error(abi.ERR_UNKNOWN_FORMAT, lambda: filt.stylize_in_place(4, 4, bytearray(16 * 4), 1.0, 9))
    with plugin.load(generator, abi.ROLE_GENERATOR) as gen:
        expect_error(abi.ERR_WRONG_MODEL_KIND, lambda: gen.stylize_in_place(4, 4, bytearray(16 * 4)))
    doc.close()
