"""One Qt for the plug-in: PyQt6 under Krita 6, PyQt5 under Krita 5, with the names that differ between them.

Krita has already imported its own PyQt when a plug-in loads, so that one is used; outside Krita PyQt5 is
tried first, then PyQt6. PyQt6 only has scoped enums (``QImage.Format.Format_RGBA8888``); PyQt5 has both
forms on recent versions but only the flat one on old ones, so ``enum`` looks the scoped name up first.
"""

import sys

if "PyQt6" in sys.modules:
    from PyQt6 import QtCore, QtGui, QtWidgets
elif "PyQt5" in sys.modules:
    from PyQt5 import QtCore, QtGui, QtWidgets
else:
    try:
        from PyQt5 import QtCore, QtGui, QtWidgets
    except ImportError:
        from PyQt6 import QtCore, QtGui, QtWidgets

QT_MAJOR = int(QtCore.QT_VERSION_STR.split(".")[0])


def enum(owner, scoped):
    """``enum(QtGui.QImage, "Format.Format_RGBA8888")``: the scoped member, or the flat one on old PyQt5."""
    scope, name = scoped.split(".")
    try:
        return getattr(getattr(owner, scope), name)
    except AttributeError:
        return getattr(owner, name)


FORMAT_RGBA8888 = enum(QtGui.QImage, "Format.Format_RGBA8888")
ALIGN_CENTER = enum(QtCore.Qt, "AlignmentFlag.AlignCenter")
HORIZONTAL = enum(QtCore.Qt, "Orientation.Horizontal")
KEEP_ASPECT = enum(QtCore.Qt, "AspectRatioMode.KeepAspectRatio")
SMOOTH = enum(QtCore.Qt, "TransformationMode.SmoothTransformation")


def rgba_image(width, height, rgba):
    """A QImage owning a copy of packed RGBA bytes."""
    return QtGui.QImage(bytes(rgba), width, height, width * 4, FORMAT_RGBA8888).copy()


def event_pos(event):
    """A mouse event's position in the widget (``position()`` in Qt 6, ``pos()`` in Qt 5)."""
    if hasattr(event, "position"):
        p = event.position()
        return int(p.x()), int(p.y())
    return event.pos().x(), event.pos().y()
