"""sealbot: self-hosted trading bots for your exchange accounts, built around key custody."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sealbot")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+local"
