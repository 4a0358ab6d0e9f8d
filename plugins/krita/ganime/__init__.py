"""ganime for Krita 5 (and 6): generate characters into a new layer, stylise the current layer, and the
inspiration docker (candidates, variations, attribute sliders, place), all through the ganime C ABI
(libganime_plugin.so beside this file, or $GANIME_PLUGIN_LIB)."""

from krita import DockWidgetFactory, DockWidgetFactoryBase, Krita

from .docker import GanimeDocker
from .extension import GanimeExtension

Krita.instance().addExtension(GanimeExtension(Krita.instance()))
Krita.instance().addDockWidgetFactory(DockWidgetFactory("ganime_inspiration", DockWidgetFactoryBase.DockRight, GanimeDocker))
