"""What every handler needs, built once per Application (nothing is built at import time).

The Runtime also holds the process's caches of what is read on nearly every update and
changes rarely: the org tree (``tree``, storage.repositories.nodes) and each person's language
(``languages``, storage.repositories.users). The units of work it opens (``uow()``) read
through them; how each is kept in step with the database, across instances too, is said
where it is defined. Nothing that must survive a crash is only in them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.clock import Clock
from bot.config import Config
from bot.i18n import Catalogs, Translator
from bot.metrics import Metrics
from bot.services.grids import GridDirectory
from storage.db import Database
from storage.repositories.drafts import DraftRepository, FirstCheck
from storage.repositories.nodes import NodeRepository, TreeCache
from storage.repositories.users import LanguageCache, UserRepository
from storage.uow import UnitOfWork


class CachedUnitOfWork(UnitOfWork):
    """A unit of work whose org tree and language reads go through the Runtime's caches,
    and whose new drafts' idle checks are set for the configured times (no task run at the
    next tick only to set itself for later)."""

    def __init__(self, db: Database, tree: TreeCache, languages: LanguageCache,
                 first_check: FirstCheck) -> None:
        super().__init__(db)
        self._tree = tree
        self._languages = languages
        self._first_check = first_check

    async def __aenter__(self) -> CachedUnitOfWork:
        await super().__aenter__()
        self.nodes = NodeRepository(self.session, tree=self._tree)
        self.users = UserRepository(self.session, languages=self._languages)
        self.drafts = DraftRepository(self.session, self._first_check)
        return self


@dataclass
class Runtime:
    config: Config
    db: Database
    clock: Clock
    catalogs: Catalogs
    grids: GridDirectory = field(default_factory=GridDirectory)
    metrics: Metrics = field(default_factory=Metrics)
    tree: TreeCache = field(default_factory=TreeCache)
    languages: LanguageCache = field(default_factory=LanguageCache)

    def uow(self) -> UnitOfWork:
        timings = self.config.timings.drafts
        return CachedUnitOfWork(self.db, self.tree, self.languages,
                                FirstCheck(timings.remind_after, timings.expire_after))

    def translator(self, language: str) -> Translator:
        return self.catalogs[language]

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.config.admins
