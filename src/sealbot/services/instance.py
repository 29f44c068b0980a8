"""Setting an instance up: directories, the key-encryption key, the database schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sealbot.config import KekProvider, Settings, masked_view
from sealbot.custody.kek_file import create_kek_file, load_file_kek
from sealbot.store import migrate


@dataclass
class InitReport:
    """What ``init`` did, for the CLI to print."""

    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    database_url: str = ""

    def lines(self) -> list[str]:
        return (
            [f"created {item}" for item in self.created]
            + [f"kept existing {item}" for item in self.kept]
            + [f"database ready: {self.database_url}"]
        )


def init_instance(settings: Settings) -> InitReport:
    """Create what a fresh instance needs; keep (never overwrite) what already exists.

    The KEK goes to the config directory, apart from the data directory, so a backup
    of the data directory holds nothing that opens a sealed credential.
    """
    report = InitReport(database_url=masked_view(settings)["database_url"])
    for directory in (settings.data_dir, settings.config_dir):
        if directory.exists():
            report.kept.append(f"directory {directory}")
        else:
            directory.mkdir(parents=True, mode=0o700)
            report.created.append(f"directory {directory}")
    if settings.kek_provider is KekProvider.FILE:
        kek = settings.effective_kek_file
        if kek.exists():
            load_file_kek(kek)  # refuses a loose mode or a foreign file now, not at first use
            report.kept.append(f"key-encryption key {kek}")
        else:
            create_kek_file(kek)
            report.created.append(f"key-encryption key {kek} (mode 0600)")
    upgrade_database(settings)
    return report


def upgrade_database(settings: Settings, revision: str = "head") -> None:
    """Migrate the configured database to ``revision``."""
    url = settings.effective_database_url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(url, revision)
