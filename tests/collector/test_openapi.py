"""The OpenAPI document is true: it lists exactly the routes served, and the
server's answers validate against its response schemas."""

from __future__ import annotations

import jsonschema
import pytest

from sensor.collector.api_schema import Invalid, openapi, validate_batch
from sensor.collector.app import build_app
from sensor.collector.config import CollectorConfig
from sensor.collector.store import Store
from tests.collector.harness import Collector
from tests.collector.test_api import UNIT, batch


def _response_schema(document: dict, path: str, method: str, status: int) -> dict:
    answer = document["paths"][path][method]["responses"][str(status)]
    schema = answer["content"]["application/json"]["schema"]
    return {**schema, "components": document["components"]}


def test_the_document_lists_exactly_the_served_routes(tmp_path) -> None:
    config = CollectorConfig(database=f"sqlite:///{tmp_path / 'c.db'}")
    app = build_app(config, Store(config.database, config.tz))
    served = {(route.method.lower(), route.resource.canonical) for route in app.router.routes()
              if route.method != "HEAD" and route.resource.canonical.startswith("/api/")}
    documented = {(method, path) for path, ops in openapi()["paths"].items() for method in ops}
    assert served == documented


def test_answers_validate_against_the_document(collector: Collector) -> None:
    document = collector.get("/api/v1/openapi.json")[1]
    jsonschema.Draft202012Validator.check_schema(document["components"]["schemas"]["Host"])
    token, admin = collector.sensor_token("gw1", UNIT), collector.admin_token
    status, answer = collector.post("/api/v1/events", token, batch("gw1", 1))
    checks = [("/api/v1/events", "post", status, answer)]
    host_id = collector.get("/api/v1/hosts", admin)[1]["hosts"][0]["id"]
    for path, template in (("/api/v1/sensors", None), ("/api/v1/hosts", None),
                           (f"/api/v1/hosts/{host_id}", "/api/v1/hosts/{id}"),
                           ("/api/v1/indicators/top", None), ("/api/v1/healthz", None),
                           ("/api/v1/identity", None), ("/api/v1/report", None),
                           ("/api/v1/report?week=2022-W38", "/api/v1/report")):
        status, answer = collector.get(path, token if "identity" in path else admin)
        checks.append((template or path, "get", status, answer))
    status, answer = collector.post(f"/api/v1/hosts/{host_id}/handled", admin)
    checks.append(("/api/v1/hosts/{id}/handled", "post", status, answer))
    status, answer = collector.get("/api/v1/hosts?status=nonsense", admin)
    checks.append(("/api/v1/hosts", "get", status, answer))
    for path, method, status, answer in checks:
        jsonschema.validate(answer, _response_schema(document, path, method, status),
                            format_checker=jsonschema.FormatChecker())


def test_the_request_schema_and_the_validator_agree() -> None:
    schema = {**openapi()["components"]["schemas"]["Batch"],
              "components": openapi()["components"]}
    good = batch("gw1", 1)
    jsonschema.validate(good, schema)
    validate_batch(good)
    for field, value in (("sequence", "1"), ("alerts", {}), ("dropped_alerts", 1.5)):
        bad = {**good, field: value}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
        with pytest.raises(Invalid):
            validate_batch(bad)
