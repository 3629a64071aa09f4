"""The one exception type for bad input data, and where a frame came from."""

from psilearn.errors import DataError

__all__ = ["DataError", "frame_location"]


def frame_location(atoms, i: int) -> str:
    """'file.xyz, frame 7' from the 'source' that read_structures records (or 'frame 7')."""
    return str(atoms.info.get("source", f"frame {i}")).replace(":", ", frame ", 1)
