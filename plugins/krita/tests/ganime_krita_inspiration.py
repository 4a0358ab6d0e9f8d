"""Run by tests/tests/plugins.rs through kritarunner (headless):
    kritarunner -s ganime_krita_inspiration -f main OUT_DIR
Drives the ganime docker on the built-in model through the inspiration loop, as its buttons and clicks do:
candidates (seed 3, 6 in 3 columns, 64-pixel cells) -> pick the second -> its variations and the way to seed 9
-> take variation 2 -> move hair=blonde to +1.5 -> place at 96 pixels in a 128x128 document. Writes the pages it showed
(krita-candidates.png, krita-variations.png), the placed layer's pixels (krita-placed.png), the layer's name
(krita-layer-name.txt) and "ok" to OUT_DIR/krita-inspiration.txt when everything ran.
"""

import os

from krita import Krita

from ganime import abi
from ganime.docker import GanimeDocker
from ganime.qt_compat import QtWidgets, rgba_image
from ganime_krita_e2e import run_and_report


def save_sheet(view, path):
    if not view.image.save(path):
        raise RuntimeError("could not save %s" % path)


def centre(cell):
    return cell["x"] + cell["size"] // 2, cell["y"] + cell["size"] // 2


def main(args):
    out = args[0]
    run_and_report(os.path.join(out, "krita-inspiration.txt"), lambda: inspiration_loop(out))


def inspiration_loop(out):
    # A docker method named like a QDockWidget one (move, show, ...) would be called by Krita's docking.
    own = set(vars(GanimeDocker)) - {"__init__", "__module__", "__doc__", "__qualname__", "canvasChanged"}
    shadowed = sorted(n for n in own if hasattr(QtWidgets.QDockWidget, n))
    if shadowed:
        raise AssertionError("GanimeDocker shadows QDockWidget's %s" % shadowed)
    docker = GanimeDocker()
    docker.cell = 64
    docker.seed.setValue(3)
    docker.count.setValue(6)
    docker.columns.setValue(3)
    docker.toward.setValue(9)
    candidates = docker.show_candidates()
    save_sheet(docker.candidates, os.path.join(out, "krita-candidates.png"))
    # A click on the second candidate (through the view's scale) picks it and shows its variations.
    x, y = centre(candidates.cells()[1])
    docker.candidates.click(x * docker.candidates.scale, y * docker.candidates.scale)
    if docker.inspiration.picked != "seed=4":
        raise AssertionError("clicking the second candidate picked %r" % docker.inspiration.picked)
    save_sheet(docker.variations, os.path.join(out, "krita-variations.png"))
    steps = [c["recipe"] for c in docker.variations.sheet.cells()[3:]]
    if len(steps) != 3 or not all(r.startswith("seed=4 toward=9@") for r in steps):
        raise AssertionError("the interpolation row toward seed 9 holds %s" % steps)
    variation = docker.variations.sheet.cells()[1]
    x, y = centre(variation)
    docker.variations.click(x * docker.variations.scale, y * docker.variations.scale)
    if docker.inspiration.picked != variation["recipe"] or "variation=1@" not in variation["recipe"]:
        raise AssertionError("clicking variation 2 picked %r" % docker.inspiration.picked)
    if "hair=blonde" not in docker.sliders:
        raise AssertionError("no hair=blonde slider among %s" % sorted(docker.sliders))
    docker.sliders["hair=blonde"].setValue(15)
    if docker.inspiration.amounts.get("hair=blonde") != 1.5:
        raise AssertionError("the hair=blonde slider set %r" % docker.inspiration.amounts)
    docker.size.setValue(96)
    doc = Krita.instance().createDocument(128, 128, "inspiration", "RGBA", "U8", "", 72.0)
    layer = docker.place(doc)
    doc.waitForDone()
    bgra = bytearray(layer.pixelData(16, 16, 96, 96))
    bgra[0::4], bgra[2::4] = bgra[2::4], bgra[0::4]
    if not rgba_image(96, 96, bgra).save(os.path.join(out, "krita-placed.png")):
        raise RuntimeError("could not save the placed layer")
    with open(os.path.join(out, "krita-layer-name.txt"), "w") as f:
        f.write(layer.name())

    # Bad input is refused with the plug-in's message, not a crash.
    try:
        docker.inspiration.set_amount("hair=plaid", 1.0)
        raise AssertionError("an unknown axis was accepted")
    except abi.GanimeError as e:
        print("ok error:", e)
    try:
        docker.inspiration.generator.character("seed=1 variation=x@1", 8, 8)
        raise AssertionError("a malformed recipe was accepted")
    except abi.GanimeError as e:
        if e.status != abi.ERR_INVALID_ARGUMENT or "variation index" not in str(e):
            raise
        print("ok error:", e)
    doc.close()
