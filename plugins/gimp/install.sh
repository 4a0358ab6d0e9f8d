#!/bin/sh
# Builds the GIMP 2.10 plug-in and installs it with the ganime library:
#   plugins/gimp/install.sh LIBGANIME_PLUGIN.so [DEST]
# DEST defaults to GIMP's per-user plug-in folder ($GIMP2_DIRECTORY or ~/.config/GIMP/2.10)/plug-ins/ganime.
# Needs gcc, pkg-config and libgimp2.0-dev (Debian: apt-get install gimp libgimp2.0-dev pkg-config).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
lib=${1:?usage: install.sh LIBGANIME_PLUGIN.so [DEST]}
dest=${2:-${GIMP2_DIRECTORY:-$HOME/.config/GIMP/2.10}/plug-ins/ganime}
[ -f "$lib" ] || { echo "install.sh: $lib does not exist (build it: cargo build --release -p ganime-plugins)" >&2; exit 1; }
mkdir -p "$dest"
# GIMP 2.10 runs plug-ins/NAME/NAME; the library sits beside it. (GTK 2 headers use deprecated GLib types.)
${CC:-cc} -O2 -Wall -Werror -Wno-deprecated-declarations -o "$dest/ganime" "$here/ganime-gimp.c" -I"$here/../../plugin-abi/include" \
    $(pkg-config --cflags --libs gimpui-2.0) -ldl
cp "$lib" "$dest/libganime_plugin.so"
echo "installed $dest/ganime and $dest/libganime_plugin.so"
