"""ganime for Krita 5: generate characters into a new layer and stylise the current layer through the ganime
C ABI (libganime_plugin.so beside this file, or $GANIME_PLUGIN_LIB)."""

from krita import Krita

from .extension import GanimeExtension

Krita.instance().addExtension(GanimeExtension(Krita.instance()))
