"""A user's input file checked before it is read: what it is, how big, and whether it is text.

`Path.is_file()` is False for a directory, a dangling symlink and a symlink loop alike, and the
callers used to say "does not exist" for all three; a FIFO or /dev/zero would be read forever; a
2 GB file was read whole before anything refused it; a non-UTF-8 file raised a decode error
naming no file. Here each case is one ValueError line naming the file: `check_file` looks at
the file without reading it, `sniff_binary` reads only its first bytes, `read_text` does both
and decodes. Standard library only: the numeric core's table reader uses it too.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

SNIFF_BYTES = 65536


def check_file(path: Path, what: str, max_bytes: int, how_to_raise: str = "") -> int:
    """The size of `path` in bytes, or a ValueError saying why it is not a readable file of at
    most `max_bytes` (no byte of it is read); `how_to_raise` tells how to change the limit."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ValueError(f"{what} {path} {_missing(path, exc)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{what} {path} is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{what} {path} is not a regular file (a device, FIFO or socket)")
    if st.st_size > max_bytes:
        raise ValueError(f"{what} {path} is {st.st_size} bytes, larger than the limit of "
                         f"{max_bytes} bytes{how_to_raise}")
    return st.st_size


def _missing(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "is a symlink loop"
    if exc.errno == errno.ENOENT and os.path.islink(path):
        return f"is a symlink to {os.readlink(path)}, which does not exist"
    if exc.errno == errno.ENOENT:
        return "does not exist"
    return f"cannot be opened: {exc.strerror}"


def sniff_binary(path: Path, what: str, kind: str = "text") -> None:
    """Refuse a file whose first bytes hold a NUL: binary data, not `kind` (the NUL bytes stay
    out of the message, which a terminal or a log would otherwise carry)."""
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    at = head.find(b"\0")
    if at >= 0:
        raise ValueError(f"{what} {path} is binary (a NUL byte at offset {at}), not {kind}")


def read_text(path: Path, what: str, max_bytes: int) -> str:
    """The file's text, after `check_file` and `sniff_binary`; not UTF-8 is one line too."""
    check_file(path, what, max_bytes)
    sniff_binary(path, what)
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what} {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at "
                         f"offset {exc.start})") from None


def printable(text: str) -> str:
    """`text` with control characters (NUL, escape sequences) escaped, for one error line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
