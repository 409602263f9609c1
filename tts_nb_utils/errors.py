"""The exception types every layer shares. The lowest layer: it imports nothing from the package.

``UsageError`` is a mistake in what was asked for (a folder that does not exist, a value out of range, an
unknown notebook or parameter, an output path that would overwrite an input: ``OutputPathError``): the ``tts-nb``
command prints its message and exits 2. Tools raise it, or a
subclass, so a notebook user and a command-line user get the same message. Errors about the *content* of an
upstream artefact (a config, a log, a checkpoint) have their own types beside the readers that raise them.
"""

from __future__ import annotations


class UsageError(ValueError):
    """A mistake in what was asked for: the message names the file, key or value and what to do instead."""


class OutputPathError(UsageError):
    """An output path that must not be written: an input, inside an input folder, a folder, a device, a pipe or
    a link (the rename of an atomic write would replace it with a regular file). Refused before any work."""
