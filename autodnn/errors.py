"""Exceptions of autodnn and the exit codes the command line maps them to."""

from __future__ import annotations


class AutodnnError(Exception):
    """Base class of every error autodnn raises on purpose; the CLI exits with 1."""

    exit_code = 1


class UsageError(AutodnnError):
    """The user asked for something that cannot work as given; the CLI exits with 2."""

    exit_code = 2


class ConfigError(UsageError):
    """A search space, a configuration or a flag value is invalid."""


class DatasetError(UsageError):
    """A dataset cannot be found, read or used as asked."""


class StudyError(UsageError):
    """A study or its storage cannot be used as asked (wrong URL, mismatched study, ...)."""


class SearchFailed(AutodnnError):
    """The search ran but failed: trials failed in a row (a broken setup), or none completed; the CLI exits
    with 1, since nothing the user typed was wrong."""


class TrialFailed(AutodnnError):
    """A single trial could not finish; the search goes on with the next one."""
