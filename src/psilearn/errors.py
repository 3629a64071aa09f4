"""psilearn's exceptions for bad input (the lowest layer: every package may raise them)."""


class DataError(ValueError):
    """Bad input data: the message names the file, the frame and the key where possible."""


class ConfigError(ValueError):
    """Bad options (YAML options file or keyword options): the message names the file (when
    known), the section and the key, e.g. ``nn.yaml: soap.cutoff: expected a number, got 'five'``."""
