"""The ganime docker (Settings > Dockers > ganime Inspiration): a grid of candidates; click one to see its
variations and, with a seed to interpolate toward, the way there (click a cell to take it instead); a slider per attribute axis; "Place" adds the character at
the chosen size as a new layer named after its recipe. Each slot is a method the headless test calls too.
"""

from krita import DockWidget, Krita

from . import abi, operations
from .inspiration import Inspiration
from .qt_compat import ALIGN_CENTER, HORIZONTAL, KEEP_ASPECT, SMOOTH, QtWidgets, QtGui, event_pos, rgba_image

# Slider steps per unit of attribute amount, and the amounts they reach (the range of `ganime sheet` rows).
SLIDER_STEPS = 10
SLIDER_RANGE = 2.5


class SheetView(QtWidgets.QLabel):
    """A sheet page scaled to fit the panel; a click calls ``on_cell`` with the cell under it."""

    def __init__(self, on_cell):
        super().__init__()
        self.on_cell, self.sheet, self.image, self.scale = on_cell, None, None, 1.0
        self.setAlignment(ALIGN_CENTER)

    def show_sheet(self, sheet, width):
        self.sheet, self.image = sheet, rgba_image(sheet.width, sheet.height, sheet.rgba)
        self.scale = min(1.0, float(width) / sheet.width) if width > 0 else 1.0
        pixmap = QtGui.QPixmap.fromImage(self.image)
        if self.scale < 1.0:
            pixmap = pixmap.scaledToWidth(int(sheet.width * self.scale), SMOOTH)
        self.setPixmap(pixmap)

    def click(self, x, y):
        """A click at widget point (x, y) (relative to the shown page)."""
        if self.sheet is not None:
            cell = self.sheet.cell_at(x / self.scale, y / self.scale)
            if cell is not None:
                self.on_cell(cell)

    def mousePressEvent(self, event):
        x, y = event_pos(event)
        pixmap = self.pixmap()
        # The page is centred in the label.
        if pixmap is not None:
            x -= (self.width() - pixmap.width()) // 2
            y -= (self.height() - pixmap.height()) // 2
        self.click(x, y)


class GanimeDocker(DockWidget):
    def __init__(self):
        super().__init__()
        self.setWindowTitle("ganime Inspiration")
        self.inspiration, self.loaded_model, self.cell = None, None, 96
        self.sliders = {}
        root = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(root)
        form = QtWidgets.QFormLayout()
        self.model = QtWidgets.QLineEdit()
        self.model.setPlaceholderText("built-in anime faces")
        self.seed = QtWidgets.QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.count = QtWidgets.QSpinBox()
        self.count.setRange(1, 64)
        self.count.setValue(6)
        self.columns = QtWidgets.QSpinBox()
        self.columns.setRange(1, 12)
        self.columns.setValue(3)
        self.toward = QtWidgets.QSpinBox()
        self.toward.setRange(-1, 2**31 - 1)
        self.toward.setValue(-1)
        self.toward.setSpecialValueText("none")
        for label, widget in (("Generator file", self.model), ("Seed", self.seed), ("Candidates", self.count),
                              ("Columns", self.columns), ("Interpolate toward seed", self.toward)):
            form.addRow(label, widget)
        layout.addLayout(form)
        show = QtWidgets.QPushButton("Show candidates")
        show.clicked.connect(lambda: self._safely(self.show_candidates))
        layout.addWidget(show)
        self.candidates = SheetView(lambda cell: self._safely(lambda: self.pick(cell)))
        layout.addWidget(self.candidates)
        layout.addWidget(QtWidgets.QLabel("Variations of the picked character, and the way to the other seed\n"
                                          "(click one to take it):"))
        self.variations = SheetView(lambda cell: self._safely(lambda: self.pick_variation(cell)))
        layout.addWidget(self.variations)
        self.recipe = QtWidgets.QLabel("Pick a candidate.")
        self.recipe.setWordWrap(True)
        layout.addWidget(self.recipe)
        self.preview = QtWidgets.QLabel()
        self.preview.setAlignment(ALIGN_CENTER)
        layout.addWidget(self.preview)
        self.attributes = QtWidgets.QFormLayout()
        box = QtWidgets.QWidget()
        box.setLayout(self.attributes)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(box)
        layout.addWidget(scroll)
        place_row = QtWidgets.QHBoxLayout()
        self.size = QtWidgets.QSpinBox()
        self.size.setRange(16, 4096)
        self.size.setValue(256)
        self.size.setSuffix(" px")
        place = QtWidgets.QPushButton("Place as layer")
        place.clicked.connect(lambda: self._safely(self.place))
        place_row.addWidget(self.size)
        place_row.addWidget(place)
        layout.addLayout(place_row)
        self.setWidget(root)

    def canvasChanged(self, canvas):
        pass

    def _safely(self, call):
        try:
            call()
        except (abi.GanimeError, OSError, ValueError) as e:
            QtWidgets.QMessageBox.warning(self, "ganime", str(e))

    def _load(self):
        model = self.model.text().strip()
        if self.inspiration is None or model != self.loaded_model:
            if self.inspiration is not None:
                self.inspiration.close()
            self.inspiration, self.loaded_model = Inspiration(model), model
            self._make_sliders()
        return self.inspiration

    def _make_sliders(self):
        while self.attributes.rowCount():
            self.attributes.removeRow(0)
        self.sliders = {}
        for axis in self.inspiration.axis_names():
            slider = QtWidgets.QSlider(HORIZONTAL)
            slider.setRange(-int(SLIDER_RANGE * SLIDER_STEPS), int(SLIDER_RANGE * SLIDER_STEPS))
            slider.valueChanged.connect(lambda value, axis=axis: self._safely(lambda: self.move_attribute(axis, value / SLIDER_STEPS)))
            self.sliders[axis] = slider
            self.attributes.addRow(axis, slider)

    def show_candidates(self):
        """The candidates grid: ``ganime sheet`` for the seed, count and columns."""
        sheet = self._load().candidates(self.seed.value(), self.count.value(), self.columns.value(), self.cell)
        self.candidates.show_sheet(sheet, self.width() - 24)
        return sheet

    def pick(self, cell):
        """Takes a candidate and shows its variations (and the interpolation toward the other seed, if set)."""
        self.inspiration.pick(cell["recipe"])
        self._reset_sliders()
        toward = self.toward.value() if self.toward.value() >= 0 else None
        sheet = self.inspiration.variations(self.columns.value(), self.cell, toward)
        self.variations.show_sheet(sheet, self.width() - 24)
        self._show_recipe()
        return sheet

    def pick_variation(self, cell):
        """Takes one of the variations (or interpolation steps) instead."""
        self.inspiration.pick(cell["recipe"])
        self._reset_sliders()
        self._show_recipe()

    def move_attribute(self, axis, amount):
        """Sets how far the character moves along an attribute axis (what its slider does)."""
        self.inspiration.set_amount(axis, amount)
        slider = self.sliders.get(axis)
        if slider is not None and slider.value() != round(amount * SLIDER_STEPS):
            slider.blockSignals(True)
            slider.setValue(int(round(amount * SLIDER_STEPS)))
            slider.blockSignals(False)
        self._show_recipe()

    def _reset_sliders(self):
        for slider in self.sliders.values():
            slider.blockSignals(True)
            slider.setValue(0)
            slider.blockSignals(False)

    def _show_recipe(self):
        rgba, recipe = self.inspiration.character(128)
        self.recipe.setText(recipe)
        self.preview.setPixmap(QtGui.QPixmap.fromImage(rgba_image(128, 128, rgba)))

    def place(self, doc=None):
        """Adds the character at the chosen size as a new layer of ``doc`` (default: the active document, or a
        new one of that size); returns the layer."""
        if self.inspiration is None or self.inspiration.picked is None:
            raise abi.GanimeError(abi.ERR_INVALID_ARGUMENT, "pick a character first")
        size = self.size.value()
        app = Krita.instance()
        doc = doc or app.activeDocument()
        if doc is None:
            doc = app.createDocument(size, size, "ganime", "RGBA", "U8", "", 72.0)
            if app.activeWindow() is not None:
                app.activeWindow().addView(doc)
        return operations.place_character(doc, self.inspiration, size)
