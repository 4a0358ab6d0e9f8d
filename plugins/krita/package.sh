#!/bin/sh
# Packs the Krita plug-in with the ganime library into one zip for Krita's
# Tools > Scripts > Import Python Plugin from File...:
#   plugins/krita/package.sh LIBGANIME_PLUGIN.so OUT.zip
# Layout (what Krita's importer looks for): ganime.desktop at the top, beside the ganime/ module folder (with its
# own entry) holding the Python files, Manual.html and libganime_plugin.so. Needs python3 (Krita ships one).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
lib=${1:?usage: package.sh LIBGANIME_PLUGIN.so OUT.zip}
out=${2:?usage: package.sh LIBGANIME_PLUGIN.so OUT.zip}
[ -f "$lib" ] || { echo "package.sh: $lib does not exist (build it: cargo build --release -p ganime-plugins)" >&2; exit 1; }
python3 - "$here" "$lib" "$out" <<'PY'
import os
import sys
import zipfile

here, lib, out = sys.argv[1:]
module = os.path.join(here, "ganime")
with zipfile.ZipFile(out + ".part", "w", zipfile.ZIP_DEFLATED) as z:
    z.write(os.path.join(here, "ganime.desktop"), "ganime.desktop")
    # Krita's importer finds the module by the folder's own entry.
    z.writestr("ganime/", "")
    for name in sorted(os.listdir(module)):
        if name.endswith(".py") or name == "Manual.html":
            z.write(os.path.join(module, name), "ganime/" + name)
    z.write(lib, "ganime/libganime_plugin.so")
os.replace(out + ".part", out)
PY
echo "wrote $out (Krita: Tools > Scripts > Import Python Plugin from File..., then restart Krita)"
