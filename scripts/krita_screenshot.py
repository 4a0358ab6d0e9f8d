"""Run by scripts/editor-screenshots.sh through kritarunner on an X display (Xvfb):
    kritarunner -s krita_screenshot -f main OUT.png
Shows the ganime docker after pick -> variations (and the way to seed 9) -> attribute move on the built-in model and takes a
screenshot of the display with ImageMagick's `import`.
"""

import subprocess

from ganime.docker import GanimeDocker
from ganime.qt_compat import QtWidgets


def settle():
    for _ in range(20):
        QtWidgets.QApplication.processEvents()


def main(args):
    out = args[0]
    docker = GanimeDocker()
    docker.setFloating(True)
    docker.resize(460, 1300)
    docker.move(0, 0)
    docker.show()
    docker.cell = 64
    docker.seed.setValue(3)
    docker.count.setValue(6)
    docker.columns.setValue(3)
    docker.toward.setValue(9)
    settle()
    candidates = docker.show_candidates()
    docker.pick(candidates.cells()[1])
    docker.pick_variation(docker.variations.sheet.cells()[1])
    docker.sliders["hair=blonde"].setValue(15)
    settle()
    subprocess.run(["import", "-window", "root", "-crop", "460x1300+0+0", out], check=True)
