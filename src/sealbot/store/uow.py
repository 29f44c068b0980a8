"""The unit of work: one session, one transaction, every repository on it.

    with UnitOfWork(session_factory) as uow:
        account = uow.accounts.add(owner_id, "binance", "main")
        uow.credentials.add(owner_id, account.id, ...)
        audit.record(uow.session, actor=f"user:{owner_id}", action="account.linked", subject=f"account:{account.id}")

Leaving the block commits; an exception rolls everything back (the audit record
included, so the log never claims a change that did not happen). ``commit()`` inside
the block commits early (e.g. per batch of a KEK rotation) and keeps the unit open.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.orm import Session, sessionmaker

from sealbot.store.repositories import (
    AccountRepository,
    AlertRepository,
    AuditRepository,
    BotRepository,
    CredentialRepository,
    DealRepository,
    FillRepository,
    KekRotationRepository,
    OrderRepository,
    SignalRepository,
    UserRepository,
)


class UnitOfWork:
    session: Session
    users: UserRepository
    accounts: AccountRepository
    credentials: CredentialRepository
    kek_rotations: KekRotationRepository
    bots: BotRepository
    deals: DealRepository
    orders: OrderRepository
    fills: FillRepository
    alerts: AlertRepository
    signals: SignalRepository
    audit_rows: AuditRepository

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._factory = session_factory
        self._open = False

    def __enter__(self) -> UnitOfWork:
        if self._open:
            raise RuntimeError("unit of work is already open; units of work do not nest")
        self.session = self._factory()
        s = self.session
        self.users, self.accounts, self.credentials = UserRepository(s), AccountRepository(s), CredentialRepository(s)
        self.kek_rotations, self.bots, self.deals = KekRotationRepository(s), BotRepository(s), DealRepository(s)
        self.orders, self.fills, self.alerts = OrderRepository(s), FillRepository(s), AlertRepository(s)
        self.signals, self.audit_rows = SignalRepository(s), AuditRepository(s)
        self._open = True
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if exc_type is None:
                self.session.commit()
            else:
                self.session.rollback()
        finally:
            self.session.close()
            self._open = False

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()
