"""psilearn's exceptions for bad input (the lowest layer: every package may raise them)."""


class DataError(ValueError):
    """Bad input data: the message names the file, the frame and the key where possible."""


class ConfigError(ValueError):
    """Bad options (YAML options file or keyword options): the message names the file (when
    known), the section and the key, e.g. ``nn.yaml: soap.cutoff: expected a number, got 'five'``."""


class MemoryBudgetError(ConfigError):
    """A step would need more memory than is available (``psilearn.data.memory.check_allocation``).

    A ConfigError because the remedy is a setting (descriptor sizes, sparse points, batch sizes) or
    a smaller problem, not broken input; like every ValueError the CLI prints it as one line."""
