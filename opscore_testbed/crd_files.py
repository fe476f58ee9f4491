"""`make crds`: write the CRD manifests (`crds/`) and `docs/crd-reference.md`.

What goes into them is `opscore_logic.crdgen`'s, generated from the pydantic models and
pure like the rest of the core; this command only puts it into the checked-in files. A
unit test (`tests/unit/resources/test_crds.py`) compares the files with the generator and
fails when they drift, so run this after changing a model.

    python -m opscore_testbed.crd_files [DIR]

DIR defaults to the repository's `crds/`. An unwritable path fails with Python's own error
(nothing is half-written: each file is written whole, one after the other).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from opscore_logic.crdgen import GROUP, KINDS, Kind, render, render_reference

REPO = Path(__file__).resolve().parent.parent
CRDS = REPO / "crds"
REFERENCE = REPO / "docs" / "crd-reference.md"


def crd_file(directory: Path, kind: Kind) -> Path:
    """Where a kind's CRD lives: `<group>_<plural>.yaml`, the name `kubectl` tools expect."""
    return directory / f"{GROUP}_{kind.plural}.yaml"


def write_crds(directory: Path, reference: Path) -> list[Path]:
    """Write every kind's CRD into `directory` and the field reference to `reference`."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS:
        path = crd_file(directory, kind)
        path.write_text(render(kind))
        written.append(path)
    reference.parent.mkdir(parents=True, exist_ok=True)
    reference.write_text(render_reference())
    written.append(reference)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    directory = Path(args[0]) if args else CRDS
    for path in write_crds(directory, REFERENCE):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
