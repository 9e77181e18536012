"""FaceGuard: face-recognition door check for small offices."""

__version__ = "0.1.0"
