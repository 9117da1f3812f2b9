"""One router per resource, gathered here."""

from fastapi import APIRouter

from app.routes import accounts, drafts, health, lessons, pages, runs

api = APIRouter()
for module in (accounts, drafts, health, lessons, pages, runs):
    api.include_router(module.router)
