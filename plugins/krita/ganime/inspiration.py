"""The inspiration loop without any widget, so the docker and scripts (and the headless test) share it:
candidates (a ``ganime sheet`` page), a picked character, its variations, attribute amounts, and the recipe of
the result. Every picture comes from the plug-in library, so each equals what the CLI makes for the same recipe.
"""

from . import abi


class Sheet:
    """A rendered page: its size, packed RGBA pixels and ``ganime sheet`` metadata (cells with recipes)."""

    def __init__(self, width, height, rgba, metadata):
        self.width, self.height, self.rgba, self.metadata = width, height, rgba, metadata

    def cells(self):
        return self.metadata["cells"]

    def cell_at(self, x, y):
        """The cell whose picture holds page point (x, y), or None."""
        for cell in self.cells():
            if cell["x"] <= x < cell["x"] + cell["size"] and cell["y"] <= y < cell["y"] + cell["size"]:
                return cell
        return None


class Inspiration:
    """One generator (``model`` "" is the built-in one) and the character being worked on."""

    def __init__(self, model="", plugin=None):
        self.plugin = plugin or abi.Plugin()
        self.generator = self.plugin.load(model, abi.ROLE_GENERATOR)
        self.axes = self.generator.axes()
        self.picked = None
        self.amounts = {}

    def close(self):
        self.generator.close()

    def axis_names(self):
        return list(self.axes["axes"])

    def candidates(self, seed, count, columns, cell):
        """``ganime sheet --seed SEED --count COUNT --columns COLUMNS --cell CELL --title ""``."""
        return self._sheet({"seed": seed, "count": count, "columns": columns, "cell": cell, "title": ""})

    def variations(self, columns, cell, toward=None):
        """A row of variations of the picked character's seed, and a row interpolating from it to seed ``toward``
        when given: ``ganime sheet --count 0 --variations SEED [--interpolate SEED:TOWARD]``."""
        if self.picked is None:
            raise abi.GanimeError(abi.ERR_INVALID_ARGUMENT, "pick a character first")
        seed = self.picked_seed()
        request = {"count": 0, "variations": [seed], "columns": columns, "cell": cell, "title": ""}
        if toward is not None:
            request["interpolate"] = ["%d:%d" % (seed, toward)]
        return self._sheet(request)

    def _sheet(self, request):
        return Sheet(*self.generator.render_sheet(request, abi.FORMAT_RGBA8))

    def pick(self, recipe):
        """Makes ``recipe`` (a cell's) the character worked on; attribute amounts start at 0."""
        self.picked = recipe
        self.amounts = {}

    def picked_seed(self):
        return int(self.picked.split()[0].split("=", 1)[1])

    def set_amount(self, axis, amount):
        if axis not in self.axes["axes"]:
            raise abi.GanimeError(abi.ERR_INVALID_ARGUMENT, "no attribute axis %r; known: %s"
                                  % (axis, ", ".join(self.axes["axes"])))
        self.amounts[axis] = float(amount)

    def recipe(self):
        """The picked character with the attribute moves: ``seed=4 variation=1@0.75 set=hair=blonde:+1.5``."""
        if self.picked is None:
            raise abi.GanimeError(abi.ERR_INVALID_ARGUMENT, "pick a character first")
        moves = ["set=%s:%+g" % (axis, amount) for axis, amount in sorted(self.amounts.items()) if amount != 0]
        return " ".join([self.picked] + moves)

    def character(self, size):
        """(RGBA bytes of the current recipe at size x size, its canonical recipe)."""
        return self.generator.character(self.recipe(), size, size, abi.FORMAT_RGBA8)
