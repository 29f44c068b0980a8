"""Dashboard pages (placeholder until the templates land)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
