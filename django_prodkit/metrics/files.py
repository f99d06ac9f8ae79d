"""Our files in the multiprocess directory: their names, and reading them safely while they grow.

Each process writes our metric families to files of its own, ``prodkit-<type>-<pid>-<start>-<namespace>.mmap`` (see
``writers`` for the writer's name), in prometheus_client's layout: a native int of bytes used, four bytes of
padding, then entries of a length, a UTF-8 key padded to eight bytes, and two native doubles (value,
timestamp). A file is created empty and then resized, so a reader may find it zero-length or with ``used``
still 0: both mean "nothing counted yet".

The names do not end in ``.db``: prometheus_client's own collector, ``mark_process_dead`` and anything else that
globs ``*.db`` never see them, and we never touch the ``*.db`` files of other libraries.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterator
from typing import NamedTuple

#: The types we write; both are summed over processes, so a dead writer's values fold into one total.
SUMMED_TYPES = ("counter", "histogram")
PREFIX = "prodkit-"
SUFFIX = ".mmap"

_INTEGER = struct.Struct("i")
_DOUBLE = struct.Struct("d")
_HEADER = 8


class WorkerFile(NamedTuple):
    """One file of one process: its type, the writer's name (``<pid>-<start>-<namespace>``), and its path."""

    type: str
    writer: str
    path: str


def file_name(kind: str, writer: str) -> str:
    """The name of ``writer``'s file of type ``kind``."""
    return f"{PREFIX}{kind}-{writer}{SUFFIX}"


def parse_name(directory: str, name: str) -> WorkerFile | None:
    """The file ``name`` stands for, or ``None`` for a file that is not one of ours."""
    if not (name.startswith(PREFIX) and name.endswith(SUFFIX)):
        return None
    kind, _, writer = name[len(PREFIX) : -len(SUFFIX)].partition("-")
    if kind not in SUMMED_TYPES or not writer:
        return None
    return WorkerFile(kind, writer, os.path.join(directory, name))


def summed_files(directory: str) -> list[WorkerFile]:
    """Every one of our files in ``directory`` (regular files only, links are skipped)."""
    found = []
    try:
        entries = os.scandir(directory)
    except FileNotFoundError:
        return []
    with entries:
        for entry in entries:
            parsed = parse_name(directory, entry.name)
            if parsed is not None and entry.is_file(follow_symlinks=False):
                found.append(parsed)
    return found


def files_of(directory: str, writer: str) -> list[WorkerFile]:
    """The files of ``writer`` that exist in ``directory``."""
    return [worker_file for worker_file in summed_files(directory) if worker_file.writer == writer]


def read_used(path: str) -> tuple[bytes, int, int]:
    """The file's used bytes (``b""`` when it is still empty or being born), the used count, and its inode.

    Opened with ``O_NOFOLLOW``: a link planted in the directory is not followed. Raises
    ``FileNotFoundError`` when the file went away, which callers treat as "already folded".
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        inode = os.fstat(handle.fileno()).st_ino
        data = handle.read(mmap.PAGESIZE)
        if len(data) < _HEADER:
            return b"", 0, inode
        used = _INTEGER.unpack_from(data, 0)[0]
        if used > len(data):
            data += handle.read(used - len(data))
    # A file resized but not yet written (``used`` 0) or one whose growth the read did not see holds no
    # complete entry past ``len(data)``: read only what is there.
    used = min(used, len(data))
    if used <= _HEADER:
        return b"", 0, inode
    return data, used, inode


def iter_values(data: bytes, used: int) -> Iterator[tuple[str, float, int]]:
    """``(key, value, position of the value)`` for each complete entry of ``data`` (prometheus_client's layout)."""
    position = _HEADER
    while position < used:
        length = _INTEGER.unpack_from(data, position)[0]
        if length <= 0 or position + _INTEGER.size + length > used:
            return
        position += _INTEGER.size
        key = data[position : position + length].decode("utf-8")
        # The key and its length are padded to a multiple of eight bytes.
        position += length + (8 - (length + _INTEGER.size) % 8)
        if position + _DOUBLE.size > len(data):
            return
        yield key, _DOUBLE.unpack_from(data, position)[0], position
        position += 2 * _DOUBLE.size


def read_values(path: str) -> dict[str, float]:
    """Every key of one file with its value; empty for a file that is being born."""
    data, used, _inode = read_used(path)
    return {key: value for key, value, _position in iter_values(data, used)}
