"""Which files in a master's key folders are keys: Salt 3008 writes each key to a temporary
file beside the others and renames it into place, and that file is no minion's key."""

from __future__ import annotations

import os
import time
from pathlib import Path

from phoenix_salt import _core


def test_a_key_file_salt_is_still_writing_is_in_flight_until_it_ages(tmp_path: Path) -> None:
    temp = tmp_path / "tmpf8wdsmi0"  # tempfile.mkstemp's name, as Salt's key store uses it
    assert _core.salt_write_in_flight(temp)  # gone: renamed into place already
    temp.write_text("-----BEGIN PUBLIC KEY-----\n")
    assert _core.salt_write_in_flight(temp)
    # Still there well after the write: not a write in flight, a file like any other.
    old = time.time() - 11
    os.utime(temp, (old, old))
    assert not _core.salt_write_in_flight(temp)


def test_no_other_name_is_in_flight(tmp_path: Path) -> None:
    for name in ("i-0123456789abcdef0", "tmp1234567", "tmpABCDEFGH", "web1"):
        path = tmp_path / name
        path.write_text("key")
        assert not _core.salt_write_in_flight(path), name
        assert not _core.salt_write_in_flight(tmp_path / f"{name}-gone"), name
