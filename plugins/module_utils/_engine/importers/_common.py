# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: input handling shared by the importers.

Importers accept a path or the content itself (tests and callers that already hold the text), read gzip
transparently (exports are often compressed) and turn unreadable input into InvalidInput, never a traceback.
"""

from __future__ import annotations

import gzip
import os

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

_GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path_or_data):
    """Raw bytes of a path (str / PathLike of an existing file) or of the data itself (bytes or text)."""
    if isinstance(path_or_data, (bytes, bytearray)):
        data = bytes(path_or_data)
    elif isinstance(path_or_data, os.PathLike) or (
            isinstance(path_or_data, str) and "\n" not in path_or_data and os.path.isfile(path_or_data)):
        try:
            with open(path_or_data, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise InvalidInput("Cannot read %s: %s" % (path_or_data, exc.strerror or exc)) from None
    elif isinstance(path_or_data, str):
        if "\n" not in path_or_data and len(path_or_data) < 4096 and (os.sep in path_or_data):
            raise InvalidInput("History source %s does not exist or is not a file" % path_or_data)
        data = path_or_data.encode("utf-8")
    else:
        raise InvalidInput("History source must be a path, text or bytes, not %s" % type(path_or_data).__name__)
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise InvalidInput("Corrupt gzip data: %s" % exc) from None
    return data


def read_text(path_or_data):
    data = read_bytes(path_or_data)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput("Source is not UTF-8 text (byte %d); is this the right kind?" % exc.start) from None


def map_name(mapping, key, default=None):
    """Look a source name up in a user-given map (keys compared as strings: YAML may give ints for vmids)."""
    if mapping and key is not None:
        if key in mapping:
            return mapping[key]
        wanted = str(key)
        for k, value in mapping.items():
            if str(k) == wanted:
                return value
    return default
