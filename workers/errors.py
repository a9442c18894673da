"""The project's one exception base."""


class LineguardError(Exception):
    """Base of every error lineguard raises on purpose."""


class PolicyError(LineguardError):
    """The policy file cannot be read or does not validate."""


class InputError(LineguardError):
    """An input file cannot be read."""
