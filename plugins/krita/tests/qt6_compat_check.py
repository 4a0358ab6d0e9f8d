"""Checks that the Krita plug-in runs on PyQt6 (Krita 6) without Krita 6 installed:
    python3 qt6_compat_check.py PLUGIN_DIR
Stub PyQt6 and krita modules stand in: their enums exist only in PyQt6's scoped form (Qt.AlignmentFlag.AlignCenter,
never Qt.AlignCenter) and mouse events have only position(), so a flat enum or a Qt 5-only call anywhere in
the docker's construction or its click handling fails here. Prints "ok" when everything passed.
"""

import sys
import types


class Anything:
    """Accepts any call and attribute: stands in for widgets, whose behaviour is Qt's, not ours."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return Anything()

    def __getattr__(self, name):
        return Anything()

    def __int__(self):
        return 0

    def __sub__(self, other):
        return 0

    __rsub__ = __sub__

    def rowCount(self):
        return 0


def scoped(**enums):
    """A Qt class whose enums exist only as scoped members."""
    return type("Scoped", (), {name: type(name, (), {m: m for m in members}) for name, members in enums.items()})


qt6 = types.ModuleType("PyQt6")
core = types.ModuleType("PyQt6.QtCore")
core.QT_VERSION_STR = "6.5.0"
core.Qt = scoped(AlignmentFlag=["AlignCenter"], Orientation=["Horizontal"], AspectRatioMode=["KeepAspectRatio"],
                 TransformationMode=["SmoothTransformation"])
gui = types.ModuleType("PyQt6.QtGui")


class QImage(Anything):
    Format = type("Format", (), {"Format_RGBA8888": "Format_RGBA8888"})


gui.QImage = QImage
gui.QPixmap = Anything()
widgets = types.ModuleType("PyQt6.QtWidgets")
widgets.__getattr__ = lambda name: type(name, (Anything,), {})
qt6.QtCore, qt6.QtGui, qt6.QtWidgets = core, gui, widgets
krita = types.ModuleType("krita")
krita.DockWidget = type("DockWidget", (Anything,), {})
krita.Extension = type("Extension", (Anything,), {})
krita.DockWidgetFactory = krita.DockWidgetFactoryBase = krita.Krita = krita.InfoObject = Anything()
for name, module in (("PyQt6", qt6), ("PyQt6.QtCore", core), ("PyQt6.QtGui", gui), ("PyQt6.QtWidgets", widgets),
                     ("krita", krita)):
    sys.modules[name] = module

sys.path.insert(0, sys.argv[1])
from ganime import qt_compat  # noqa: E402
from ganime.docker import GanimeDocker, SheetView  # noqa: E402

assert qt_compat.QT_MAJOR == 6
assert qt_compat.ALIGN_CENTER == "AlignCenter" and qt_compat.FORMAT_RGBA8888 == "Format_RGBA8888"
GanimeDocker()


class Event:
    def position(self):
        return types.SimpleNamespace(x=lambda: 5.0, y=lambda: 7.0)


assert qt_compat.event_pos(Event()) == (5, 7)
clicked = []
view = SheetView(clicked.append)
view.sheet = types.SimpleNamespace(cell_at=lambda x, y: {"recipe": "seed=%d" % x})
view.pixmap = lambda: None
view.mousePressEvent(Event())
assert clicked == [{"recipe": "seed=5"}], clicked
print("ok")
