"""The one exception type for bad input data."""


class DataError(ValueError):
    """Bad input data: the message names the file, the frame and the key where possible."""


def frame_location(atoms, i: int) -> str:
    """'file.xyz, frame 7' from the 'source' that read_structures records (or 'frame 7')."""
    return str(atoms.info.get("source", f"frame {i}")).replace(":", ", frame ", 1)
