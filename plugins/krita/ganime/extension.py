"""The Krita extension: Tools > Scripts > ganime: Generate Characters / ganime: Stylize Layer."""

from krita import Extension, Krita

from . import abi, operations
from .qt_compat import QtWidgets

QInputDialog, QMessageBox = QtWidgets.QInputDialog, QtWidgets.QMessageBox


class GanimeExtension(Extension):
    def __init__(self, parent):
        super().__init__(parent)

    def setup(self):
        pass

    def createActions(self, window):
        generate = window.createAction("ganime_generate", "ganime: Generate Characters...", "tools/scripts")
        generate.triggered.connect(self.generate)
        stylize = window.createAction("ganime_stylize", "ganime: Stylize Layer...", "tools/scripts")
        stylize.triggered.connect(self.stylize)

    def _setting(self, key, default):
        return Krita.instance().readSetting("ganime", key, default)

    def generate(self):
        app = Krita.instance()
        parent = app.activeWindow().qwindow()
        model, ok = QInputDialog.getText(parent, "ganime", "Generator file (empty: built-in model):",
                                         text=self._setting("model", ""))
        if not ok:
            return
        seed, ok = QInputDialog.getInt(parent, "ganime", "Seed:", int(self._setting("seed", "0")), 0, 2**31 - 1)
        if not ok:
            return
        count, ok = QInputDialog.getInt(parent, "ganime", "Characters:", int(self._setting("count", "16")), 1, 1024)
        if not ok:
            return
        for key, value in (("model", model), ("seed", seed), ("count", count)):
            app.writeSetting("ganime", key, str(value))
        try:
            doc = app.activeDocument()
            if doc is None:
                doc = operations.new_characters_document(model, seed, count)
                app.activeWindow().addView(doc)
            else:
                operations.add_characters_layer(doc, model, seed, count)
        except (abi.GanimeError, OSError) as e:
            QMessageBox.warning(parent, "ganime", str(e))

    def stylize(self):
        app = Krita.instance()
        parent = app.activeWindow().qwindow()
        doc = app.activeDocument()
        if doc is None or doc.activeNode() is None:
            QMessageBox.information(parent, "ganime", "Open a document and select a paint layer first.")
            return
        # The built-in filters from the library's own list; the box stays editable for KIND:PATH specs.
        try:
            names = operations.filter_names()
        except (abi.GanimeError, OSError, ValueError):
            names = []
        last = self._setting("filter", "passthrough")
        items = [last] + [n for n in names if n != last]
        spec, ok = QInputDialog.getItem(parent, "ganime", "Filter (built-in name, or KIND:PATH, e.g. animegan:paprika.pt):",
                                        items, 0, True)
        if not ok:
            return
        strength, ok = QInputDialog.getDouble(parent, "ganime", "Strength (0..1):",
                                              float(self._setting("strength", "1.0")), 0.0, 1.0, 2)
        if not ok:
            return
        app.writeSetting("ganime", "filter", spec)
        app.writeSetting("ganime", "strength", str(strength))
        try:
            operations.stylize_node(doc, doc.activeNode(), spec, strength)
        except (abi.GanimeError, OSError) as e:
            QMessageBox.warning(parent, "ganime", str(e))
