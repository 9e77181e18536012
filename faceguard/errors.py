"""Errors a user can act on.

The core raises these; the CLI prints ``str(err)`` and exits 2, the UI shows it in a dialog or
the status bar. Each message says what went wrong and, where possible, what to do about it.
"""


class FaceGuardError(Exception):
    """Base class: ``str(err)`` is a complete sentence meant for the user."""


class ImageError(FaceGuardError):
    """An image file cannot be read or is not a usable picture."""


class NoFaceError(FaceGuardError):
    """No face (or not exactly one face, where one is required) was found."""


class ModelError(FaceGuardError):
    """A model file is missing, corrupt or does not match the manifest."""


class RuntimeProviderError(FaceGuardError):
    """The requested onnxruntime execution provider is not available."""


class CameraError(FaceGuardError):
    """A camera, stream or video file cannot be opened or stopped delivering frames."""


class SettingsError(FaceGuardError):
    """A setting has an invalid value; the message names the key."""


class GalleryError(FaceGuardError):
    """The gallery database or its files cannot be used as asked."""


class DoorError(FaceGuardError):
    """A door output (command, webhook, serial relay) failed."""
