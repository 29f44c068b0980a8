"""schemathesis against the app's own OpenAPI description: generated requests (valid
and invalid) to every operation, authenticated with a personal token of all scopes,
never get a server error and always get a response that matches the schema."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from sealbot.config import load_settings
from sealbot.services import auth
from sealbot.services.instance import init_instance
from sealbot.services.platform import open_platform
from sealbot.web.app import create_app

from .webkit import PASSWORD


def _app_and_token() -> tuple[Any, str]:
    """An instance in a throwaway directory with one user and a token of every scope.
    (Built at import: schemathesis parametrizes from a schema object.)"""
    root = Path(tempfile.mkdtemp(prefix="sealbot-schemathesis-"))
    atexit.register(shutil.rmtree, root, True)
    cfg = load_settings(data_dir=root / "data", config_dir=root / "config",
                        database_url=f"sqlite:///{root / 'sealbot.db'}")
    init_instance(cfg)
    platform = open_platform(cfg)
    auth.register(platform, "fuzz@example.org", PASSWORD)
    who = auth.login(platform, "fuzz@example.org", PASSWORD).principal
    for n in range(3):  # decoys: the generator likes id 1, and our own token must survive DELETE /tokens/{id}
        auth.create_token(platform, who, f"decoy {n}", ["bots:read"])
    return create_app(platform), auth.create_token(platform, who, "fuzz", auth.SCOPES).token


APP, TOKEN = _app_and_token()
schema = schemathesis.openapi.from_asgi("/api/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_responses_match_the_schema(case: Any) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"},
                           checks=[not_a_server_error, response_schema_conformance, status_code_conformance])
