"""Zip a directory so that the same files give the same bytes: entries sorted by path, every time stamp
1980-01-01 00:00 (the earliest a zip can hold), mode 0644, deflate at level 9, no extra fields.

    python scripts/zip-deterministic.py DIR OUT.zip
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def zip_dir(source: Path, out: Path) -> int:
    files = sorted(p for p in source.rglob("*") if p.is_file())
    names = [p.relative_to(source).as_posix() for p in files]
    order = sorted(range(len(files)), key=lambda i: names[i].encode())
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as archive:
        for i in order:
            info = zipfile.ZipInfo(names[i], date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            info.create_system = 3  # Unix, so the mode above is read as one
            archive.writestr(info, files[i].read_bytes(), compresslevel=9)
    tmp.replace(out)
    return len(files)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    count = zip_dir(Path(argv[0]), Path(argv[1]))
    print(f"{argv[1]}: {count} files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
