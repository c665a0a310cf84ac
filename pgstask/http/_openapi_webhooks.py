"""What the webhook endpoints take and answer, for the OpenAPI document: one ``Operation`` per
handler and method, as ``_openapi_presets.py`` has them for the preset endpoints."""

from __future__ import annotations

from pgstask import webhooks as rules
from pgstask.http._openapi_inputs import closed, json_body
from pgstask.http._openapi_operations import Key, Operation
from pgstask.http._openapi_schemas import (
    BOOL,
    COUNT,
    TEXT,
    TIME,
    Schema,
    json_answer,
    nullable,
    record,
    success,
)
from pgstask.http.routes import webhooks

_EVENTS: Schema = {
    "type": "array",
    "items": {"enum": list(rules.EVENTS)},
    "minItems": 1,
    "description": "The outcomes it takes",
}
_URL: Schema = {
    "type": "string",
    "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://",
    "maxLength": rules.MAX_URL,
    "description": "Where deliveries are POSTed: http or https",
}
_NAME: Schema = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]*$", "maxLength": 100}
_SECRET: Schema = {
    "type": "string",
    "minLength": rules.MIN_SECRET,
    "maxLength": rules.MAX_SECRET,
    "description": "The signing secret (HMAC-SHA256 of '<timestamp>.<body>')",
}

#: A row of s_webhooks as the API answers it: never its secret, but in the answer of the write
#: that set it.
WEBHOOK: Schema = {
    **record(
        name=TEXT,
        url=TEXT,
        events=_EVENTS,
        active=BOOL,
        description=TEXT,
        created_at=TIME,
        updated_at=TIME,
        optional={
            "secret": {
                **_SECRET,
                "description": "Only in the answer of the write that "
                "set it: a new webhook, a secret given, or rotate_secret",
            }
        },
    ),
    "description": "A row of s_webhooks",
}


def webhook_body(*, named: bool) -> Schema:
    """A webhook to add or replace (``webhooks.check``'s rules); ``named``: the body has its
    name (``POST /stask/webhooks``), else the path does."""
    optional: dict[str, Schema] = {
        "events": {**nullable(_EVENTS), "default": list(rules.EVENTS)},
        "secret": {
            **nullable(_SECRET),
            "description": "Default: a new random one (or, when replacing, the stored one)",
        },
        "rotate_secret": {**BOOL, "default": False, "description": "A new random secret"},
        "active": {**BOOL, "default": True},
        "description": {**nullable({**TEXT, "maxLength": 1000}), "default": ""},
    }
    fields = {"name": _NAME} if named else {}
    example = {"url": "https://hooks.example.com/pgstask", "events": ["failed"]}
    return json_body(
        closed(record(**fields, url=_URL, optional=optional)),
        required=True,
        example={"name": "ops", **example} if named else example,
    )


def _operations() -> dict[Key, Operation]:
    location = {"description": "The webhook's path", "schema": TEXT}
    written = success(message=TEXT, webhook=WEBHOOK)
    answers = {
        200: json_answer("Replaced", written, Location=location),
        201: json_answer(
            "Added; `webhook.secret` is its secret, shown once", written, Location=location
        ),
    }
    checked = (
        "422 for a bad field, the message naming it (a URL that is not http or https, an "
        "unknown event, a secret of fewer than 16 characters). The secret is in the answer "
        "only when this call set it."
    )
    return {
        (webhooks.list_webhooks, "GET"): Operation(
            "Webhooks, by name",
            "webhooks",
            {
                200: json_answer(
                    "The webhooks, without their secrets",
                    success(webhooks={"type": "array", "items": WEBHOOK}, count=COUNT),
                )
            },
            frozenset({422}),
        ),
        (webhooks.add_webhook, "POST"): Operation(
            "Add a webhook, or replace the one of that name",
            "webhooks",
            answers,
            frozenset({422}),
            body=webhook_body(named=True),
            description=checked,
        ),
        (webhooks.put_webhook, "PUT"): Operation(
            "Add or replace the webhook of this name",
            "webhooks",
            answers,
            frozenset({422}),
            body=webhook_body(named=False),
            description=checked,
        ),
        (webhooks.show_webhook, "GET"): Operation(
            "A webhook, without its secret",
            "webhooks",
            {200: json_answer("The webhook", success(webhook=WEBHOOK))},
            frozenset({404}),
        ),
        (webhooks.remove_webhook, "DELETE"): Operation(
            "Remove a webhook",
            "webhooks",
            {200: json_answer("Removed", success(message=TEXT))},
            frozenset({404}),
            description="Deliveries queued for it fail, saying it no longer exists.",
        ),
    }


#: The webhook endpoints' descriptions.
WEBHOOK_OPERATIONS: dict[Key, Operation] = _operations()
