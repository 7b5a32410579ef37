"""Errors that clbench expects and reports to the user without a traceback."""


class ClbenchError(Exception):
    """An expected, user-facing error; the CLI prints its message as one line and exits non-zero."""


class MissingDataError(ClbenchError):
    """Dataset files are absent, cannot be downloaded, or do not have the expected format."""


class ConfigError(ClbenchError):
    """A bad name or value in a run spec, preset, suite or `--set` override."""


class TrainingDiverged(ClbenchError):
    """The loss became NaN or infinite; the message names the task, epoch and iteration."""
