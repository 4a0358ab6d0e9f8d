#!/usr/bin/env bash
# Screenshots of the ganime editor plug-ins for the README, taken under Xvfb:
#   scripts/editor-screenshots.sh [LIBGANIME_PLUGIN.so]   (default target/release/libganime_plugin.so)
# writes docs/img/krita-inspiration-docker.jpg (the Krita docker after pick -> variations and the way to seed 9 ->
# hair=blonde +1.5) and
# docs/img/gimp-inspiration-dialog.jpg (GIMP's Filters > Render > ganime Inspiration dialog, same picks).
# Needs xvfb, imagemagick, xdotool, gimp + libgimp2.0-dev + pkg-config, krita + python3-pyqt5.
set -euo pipefail
cd "$(dirname "$0")/.."
LIB=$(realpath "${1:-target/release/libganime_plugin.so}")
TMP=$(mktemp -d)
DISPLAY_NUM=:97
Xvfb "$DISPLAY_NUM" -screen 0 1280x1400x24 >/dev/null 2>&1 &
XVFB=$!
trap 'kill $XVFB 2>/dev/null; rm -rf "$TMP"' EXIT
sleep 2
export DISPLAY=$DISPLAY_NUM RAYON_NUM_THREADS=2

# Krita: the docker, floating, driven by scripts/krita_screenshot.py.
plugins/krita/install.sh "$LIB" "$TMP/pykrita" >/dev/null
XDG_CONFIG_HOME="$TMP/config" XDG_DATA_HOME="$TMP/data" XDG_RUNTIME_DIR="$TMP/runtime" QT_QPA_PLATFORM=xcb \
    PYTHONPATH="$TMP/pykrita:$PWD/scripts" kritarunner -s krita_screenshot -f main "$TMP/krita.png" >"$TMP/krita.log" 2>&1 ||
    { cat "$TMP/krita.log"; exit 1; }
[ -f "$TMP/krita.png" ] || { cat "$TMP/krita.log"; exit 1; }
convert "$TMP/krita.png" -quality 85 docs/img/krita-inspiration-docker.jpg

# GIMP: set the dialog's values with a non-interactive run (it remembers them), then open the dialog.
plugins/gimp/install.sh "$LIB" "$TMP/gimp/plug-ins/ganime" >/dev/null
setup='(let* ((img (car (gimp-image-new 256 256 RGB))) (bg (car (gimp-layer-new img 256 256 RGB-IMAGE "bg" 100 LAYER-MODE-NORMAL))))
         (gimp-image-insert-layer img bg 0 0)
         (plug-in-ganime-inspiration RUN-NONINTERACTIVE img bg "" 3 6 3 2 2 "hair=blonde:+1.5" 96 9)
         (plug-in-ganime-inspiration RUN-INTERACTIVE img bg "" 0 0 0 0 0 "" 0 0))'
GIMP2_DIRECTORY="$TMP/gimp" gimp -d -f -s -b "$setup" >"$TMP/gimp.log" 2>&1 &
GIMP=$!
for _ in $(seq 1 120); do
    window=$(xdotool search --name "ganime: Inspiration" 2>/dev/null | head -1 || true)
    [ -n "$window" ] && break
    sleep 1
done
[ -n "${window:-}" ] || { cat "$TMP/gimp.log"; kill $GIMP; exit 1; }
sleep 3
import -window "$window" "$TMP/gimp.png"
kill $GIMP 2>/dev/null || true
convert "$TMP/gimp.png" -quality 85 docs/img/gimp-inspiration-dialog.jpg
ls -l docs/img/krita-inspiration-docker.jpg docs/img/gimp-inspiration-dialog.jpg
