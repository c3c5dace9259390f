"""The annotation web app (FastAPI + Uvicorn, server-rendered pages): ``create_app``."""

from anchoral.serve.app import create_app, new_token

__all__ = ["create_app", "new_token"]
