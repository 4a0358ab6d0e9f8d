#!/bin/sh
# Installs the Krita 5 plug-in with the ganime library:
#   plugins/krita/install.sh LIBGANIME_PLUGIN.so [DEST]
# DEST defaults to Krita's per-user Python plug-in folder, ${XDG_DATA_HOME:-~/.local/share}/krita/pykrita.
# Then enable it once: Settings > Configure Krita > Python Plugin Manager > tick "ganime", restart Krita.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
lib=${1:?usage: install.sh LIBGANIME_PLUGIN.so [DEST]}
dest=${2:-${XDG_DATA_HOME:-$HOME/.local/share}/krita/pykrita}
[ -f "$lib" ] || { echo "install.sh: $lib does not exist (build it: cargo build --release -p ganime-plugins)" >&2; exit 1; }
mkdir -p "$dest/ganime"
cp "$here/ganime.desktop" "$dest/"
cp "$here"/ganime/*.py "$here"/ganime/Manual.html "$dest/ganime/"
cp "$lib" "$dest/ganime/libganime_plugin.so"
echo "installed $dest/ganime (enable it in Settings > Configure Krita > Python Plugin Manager)"
