"""Repositories: every read or write of a user-owned row takes the owner id."""

from sealbot.store.repositories.accounts import AccountRepository
from sealbot.store.repositories.alerts import AlertRepository
from sealbot.store.repositories.audit import AuditRepository
from sealbot.store.repositories.bots import BotRepository
from sealbot.store.repositories.credentials import CredentialRepository
from sealbot.store.repositories.deals import DealRepository
from sealbot.store.repositories.fills import FillRepository
from sealbot.store.repositories.kek_rotations import KekRotationRepository
from sealbot.store.repositories.orders import OrderRepository
from sealbot.store.repositories.signals import SignalRepository
from sealbot.store.repositories.users import UserRepository

__all__ = ["AccountRepository", "AlertRepository", "AuditRepository", "BotRepository", "CredentialRepository",
           "DealRepository", "FillRepository", "KekRotationRepository", "OrderRepository", "SignalRepository",
           "UserRepository"]
