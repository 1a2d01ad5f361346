"""What every handler needs, built once per Application (nothing is built at import time)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.clock import Clock
from bot.config import Config
from bot.i18n import Catalogs, Translator
from bot.metrics import Metrics
from bot.services.grids import GridDirectory
from storage.db import Database
from storage.uow import UnitOfWork


@dataclass
class Runtime:
    config: Config
    db: Database
    clock: Clock
    catalogs: Catalogs
    grids: GridDirectory = field(default_factory=GridDirectory)
    metrics: Metrics = field(default_factory=Metrics)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.db)

    def translator(self, language: str) -> Translator:
        return self.catalogs[language]

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.config.admins
