"""Exceptions raised by anchoral. Every message names the argument, what was
expected and what was given, and where it helps, what to do next."""


class AnchoralError(Exception):
    """Base class of every error anchoral raises on purpose."""


class ValidationError(AnchoralError, ValueError):
    """An argument has the wrong value, type or shape."""


class UnknownNameError(ValidationError, KeyError):
    """A dataset, benchmark or strategy name is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message; keep it readable
        return str(self.args[0]) if self.args else ""


class DownloadError(AnchoralError, RuntimeError):
    """A pinned archive could not be fetched or failed its checksum."""


def unknown_name(kind: str, given: str, valid) -> UnknownNameError:
    valid = sorted(valid)
    return UnknownNameError(
        f"unknown {kind} {given!r}; expected one of: {', '.join(valid)}"
    )
