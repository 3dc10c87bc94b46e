"""The OpenAPI document at /api/v1/openapi.json is a document a client generator can use:
every reference resolves, every answer has its own schema, uploads say what they take."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aiohttp.test_utils import TestClient


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


async def _document(client: TestClient[Any, Any]) -> dict[str, Any]:
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200
    doc: dict[str, Any] = await resp.json()
    return doc


async def test_every_reference_in_the_document_resolves(client: TestClient[Any, Any]) -> None:
    doc = await _document(client)
    refs = set(_refs(doc))
    assert "#/components/schemas/ComplaintStatus" in refs  # the status query parameter's enum
    for ref in refs:
        _resolve(doc, ref)


async def test_a_success_answer_is_never_described_as_an_error(
    client: TestClient[Any, Any],
) -> None:
    doc = await _document(client)
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            for status, answer in op["responses"].items():
                schema = answer.get("content", {}).get("application/json", {}).get("schema")
                if status.startswith("2") and schema is not None:
                    assert schema != {"$ref": "#/components/schemas/Error"}, (path, method, status)
    register = doc["paths"]["/api/v1/complaints"]["post"]["responses"]
    assert register["200"]["content"] == register["201"]["content"]


async def test_the_numbers_upload_takes_a_csv_body(client: TestClient[Any, Any]) -> None:
    doc = await _document(client)
    upload = doc["paths"]["/api/v1/campaigns/{id}/numbers"]["post"]
    assert set(upload["requestBody"]["content"]) == {"text/csv"}
    answer = upload["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/CampaignOut"}
