"""What the Krita actions do, as functions the headless test (and scripts) can call.

Krita's 8-bit RGBA layers store pixels as BGRA; the ganime ABI speaks RGBA, so rows are swizzled on the way in
and out.
"""

import math

from krita import Krita

from . import abi


def _bgra_to_rgba(data):
    out = bytearray(data)
    out[0::4], out[2::4] = data[2::4], data[0::4]
    return out


_rgba_to_bgra = _bgra_to_rgba


def _check_rgba8(doc):
    if doc.colorModel() != "RGBA" or doc.colorDepth() != "U8":
        raise abi.GanimeError(abi.ERR_UNKNOWN_FORMAT, "ganime needs an 8-bit RGBA document, not %s/%s"
                              % (doc.colorModel(), doc.colorDepth()))


def add_characters_layer(doc, model="", seed=0, count=16, columns=0, plugin=None, progress=None):
    """Generates a sheet of characters into a new paint layer at the top-left of ``doc``; returns the layer."""
    _check_rgba8(doc)
    plugin = plugin or abi.Plugin()
    with plugin.load(model, abi.ROLE_GENERATOR) as generator:
        width, height, rgba = generator.sheet(seed, count, columns, abi.FORMAT_RGBA8, progress)
    layer = doc.createNode("ganime seed %d" % seed, "paintlayer")
    doc.rootNode().addChildNode(layer, None)
    layer.setPixelData(bytes(_rgba_to_bgra(rgba)), 0, 0, width, height)
    doc.refreshProjection()
    return layer


def new_characters_document(model="", seed=0, count=16, columns=0, plugin=None, progress=None):
    """A new document exactly the size of the sheet, holding it in one layer; returns the document."""
    plugin = plugin or abi.Plugin()
    with plugin.load(model, abi.ROLE_GENERATOR) as generator:
        info = generator.info()
    # The sheet layout of `ganime generate --out`: square-ish by default, 2-pixel borders.
    cols = min(columns or math.ceil(math.sqrt(count)), count)
    rows = math.ceil(count / cols)
    doc = Krita.instance().createDocument(cols * (info.width + 2) + 2, rows * (info.height + 2) + 2,
                                          "ganime seed %d" % seed, "RGBA", "U8", "", 72.0)
    add_characters_layer(doc, model, seed, count, columns, plugin, progress)
    return doc


def filter_names(plugin=None):
    """The built-in filter names the plug-in library lists in its description (toon, style00 … style25, matta, …)."""
    import json
    plugin = plugin or abi.Plugin()
    return list(json.loads(plugin.describe()).get("filters", []))


def stylize_node(doc, node, spec, strength=1.0, plugin=None, progress=None):
    """Applies the ganime filter ``spec`` to the node's pixels inside the document bounds."""
    _check_rgba8(doc)
    plugin = plugin or abi.Plugin()
    width, height = doc.width(), doc.height()
    pixels = _bgra_to_rgba(node.pixelData(0, 0, width, height))
    with plugin.load(spec, abi.ROLE_FILTER) as filt:
        filt.stylize_in_place(width, height, pixels, strength, abi.FORMAT_RGBA8, progress)
    node.setPixelData(bytes(_rgba_to_bgra(pixels)), 0, 0, width, height)
    doc.refreshProjection()


def place_character(doc, inspiration, size):
    """Adds the inspiration's current character, ``size`` pixels square, as a new layer centred in ``doc``,
    named ``ganime RECIPE | SIZEpx`` (the recipe regenerates it: ``ganime generate --recipe RECIPE --size SIZE``)."""
    _check_rgba8(doc)
    rgba, recipe = inspiration.character(size)
    layer = doc.createNode("ganime %s | %dpx" % (recipe, size), "paintlayer")
    doc.rootNode().addChildNode(layer, None)
    x, y = max(0, (doc.width() - size) // 2), max(0, (doc.height() - size) // 2)
    layer.setPixelData(bytes(_rgba_to_bgra(rgba)), x, y, size, size)
    doc.refreshProjection()
    return layer
