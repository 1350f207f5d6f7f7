"""The OpenAPI 3.1 document of `/api/v1`. Tests validate real responses against these schemas, so
the document cannot drift from what is served."""

from django.http import HttpRequest

from playground.generations.models import Status
from playground.generations.outputs import public_base

NULLABLE_NUMBER = {"type": ["number", "null"]}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "field", "request_id"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "field": {"type": ["string", "null"], "description": "e.g. `input.size`"},
                    "request_id": {"type": ["string", "null"]},
                    "errors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["field", "message", "code"],
                            "properties": {
                                "field": {"type": "string"},
                                "message": {"type": "string"},
                                "code": {"type": "string"},
                            },
                        },
                    },
                },
            }
        },
    },
    "OutputFile": {
        "type": "object",
        "required": ["url"],
        "properties": {
            "url": {"type": "string", "format": "uri", "description": "Signed; valid for a week."},
            "content_type": {"type": "string"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "duration": {"type": "number"},
            "frames": {"type": "integer"},
        },
    },
    "Task": {
        "type": "object",
        "required": ["request_id", "task_id", "status", "cost_estimate", "cost_actual", "output"],
        "properties": {
            "request_id": {"type": "string"},
            "task_id": {"type": "string"},
            "status": {"type": "string", "enum": list(Status.values)},
            "model": {"type": "string"},
            "cost_estimate": {"type": "number"},
            "cost_actual": {
                **NULLABLE_NUMBER,
                "description": (
                    "What the task was charged, set when it ends: the model's charge, which stands "
                    "even if the task is then cancelled or fails (say, a platform had finished it "
                    "before a cancel arrived); 0 when nothing was billed. Null before it ends, and "
                    "for a task cancelled or failed while an upstream platform had it until that "
                    "platform's charge is known (its events say why); meanwhile it counts against "
                    "budgets at `cost_estimate`."
                ),
            },
            "output": {
                "type": ["object", "null"],
                "description": "`images` for image models, `videos` for video models.",
                "additionalProperties": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/OutputFile"},
                },
            },
            "error": {
                "type": ["object", "null"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            },
            "created_at": {"type": "string", "format": "date-time"},
            "started_at": NULLABLE_TIME,
            "finished_at": NULLABLE_TIME,
            "created_by": {
                "type": "string",
                "description": "Not in MindVideo's API (its clients ignore it): the username of the "
                "person who ran the task, which tells a team's tasks apart.",
            },
            "progress": {
                "type": ["number", "null"],
                "minimum": 0,
                "maximum": 1,
                "description": (
                    "Not in MindVideo's API (its clients ignore it): how far the task is, from 0 to 1. "
                    "While it is `processing`, what its engine reports (the local engine: per image "
                    "and per video frame; `mindvideo`: the platform's own figure when it gives one), "
                    "or null when the engine cannot tell; it only rises, until a retry starts the "
                    "work again. 1 once it `succeeded`; null while `queued` (see `queue_position`) "
                    "and once it failed or was cancelled."
                ),
            },
            "queue_position": {
                "type": ["integer", "null"],
                "minimum": 1,
                "description": (
                    "Not in MindVideo's API (its clients ignore it): while the task is `queued`, its "
                    "place in line, in the order workers start tasks (1: it starts next, when a "
                    "worker and a slot of its account are free); null once it is not queued."
                ),
            },
            "batch_id": {
                "type": ["string", "null"],
                "description": "Not in MindVideo's API (its clients ignore it): the batch the task was "
                "submitted in (POST /api/v1/batches), or null for a task submitted on its own.",
            },
        },
    },
    "TaskList": {
        "type": "object",
        "required": ["data", "next_cursor"],
        "properties": {
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}},
            "next_cursor": {"type": ["string", "null"]},
        },
    },
    "Event": {
        "type": "object",
        "required": ["id", "type", "status", "message", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "type": {"type": "string", "enum": ["status", "message"]},
            "status": {"type": "string", "enum": list(Status.values)},
            "message": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "EventList": {
        "type": "object",
        "required": ["data"],
        "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}},
    },
    "Model": {
        "type": "object",
        "required": ["slug", "title", "kind", "output_key", "pricing"],
        "properties": {
            "slug": {"type": "string"},
            "title": {"type": "string"},
            "kind": {"type": "string", "enum": ["image", "video"]},
            "output_key": {"type": "string"},
            "pricing": {"type": "object"},
            "updated_at": {"type": "string", "format": "date-time"},
            "input_schema": {"type": "object"},
            "example_input": {"type": "object"},
            "roles": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "ModelList": {
        "type": "object",
        "required": ["data"],
        "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}}},
    },
    "Share": {
        "type": "object",
        "required": ["url", "created", "show_parameters"],
        "properties": {
            "url": {
                "type": "string",
                "format": "uri",
                "description": "The task's public page: anyone with it sees the outputs (and the prompt "
                "and parameters, if shown) without an account, until the task is unshared.",
            },
            "created": {"type": "string", "format": "date-time", "description": "When it was shared."},
            "show_parameters": {
                "type": "boolean",
                "description": "Whether the page shows the prompt and parameters.",
            },
        },
    },
    "ShareOptions": {
        "type": "object",
        "properties": {
            "show_parameters": {
                "type": "boolean",
                "description": "Show the prompt and parameters on the page (default true). Given again "
                "for a shared task, it changes the page in place; its URL stays.",
            }
        },
    },
    "CreateTask": {
        "type": "object",
        "required": ["model", "input"],
        "examples": [
            {
                "model": "gemini-3-pro-image-preview-official",
                "input": {"prompt": "月光下的竹林小径", "size": "1:1", "resolution": "1K", "n": 1},
            }
        ],
        "properties": {
            "model": {"type": "string", "description": "A slug from GET /api/v1/models."},
            "input": {"type": "object", "description": "Valid against the model's input_schema."},
            "webhook_url": {
                "type": "string",
                "format": "uri",
                "maxLength": 2000,
                "description": "Optional. When the task ends, its final state (the body of GET "
                "/api/v1/tasks/{task_id}) is POSTed here, signed the Standard Webhooks way "
                "(https://www.standardwebhooks.com: headers `webhook-id`, `webhook-timestamp`, "
                "`webhook-signature`) with the task owner's webhook signing secret (`whsec_…`, on the "
                "Keys page); retried with backoff up to 5 attempts, with the same `webhook-id`. Must be "
                "a public http(s) address on port 80/443.",
            },
        },
    },
}

AXES = {
    "type": "array",
    "description": "The grid, in order: first `model` (the models chosen), then each varied field with its "
    "values. `task_ids` and `cells` go row by row, the last axis fastest.",
    "items": {
        "type": "object",
        "required": ["field", "values"],
        "properties": {"field": {"type": "string"}, "values": {"type": "array", "minItems": 1}},
    },
}
LEFT_OUT = {
    "type": "object",
    "description": "Per model, the input fields its tasks went without because that model has no such "
    "field (another chosen model has): empty for a batch of one model.",
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}
BATCH_SCHEMAS = {
    "CreateBatch": {
        "type": "object",
        "description": "One task per cell: the models times the values of each varied field (up to two "
        "fields, at most PLAYGROUND_MAX_BATCH_TASKS cells, 16 by default). Every cell is checked against "
        "its model's schema and the whole batch's estimate against every budget before any task is "
        "created: all are created, or none.",
        "examples": [
            {
                "model": "gemini-3-pro-image-preview-official",
                "input": {"prompt": "月光下的竹林小径", "resolution": "1K", "n": 1},
                "vary": {"size": ["1:1", "16:9", "9:16"]},
            },
            {
                "models": ["gemini-3-pro-image-preview-official", "gpt-image-2"],
                "input": {"prompt": "a lighthouse at dusk", "n": 1},
                "vary": {"size": ["1:1", "16:9"]},
            },
        ],
        "properties": {
            "model": {"type": "string", "description": "A slug from GET /api/v1/models (or give `models`)."},
            "models": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string"},
                "description": "Several models: each gets the input fields it has; the others are left out "
                "of its tasks (see `left_out` in the answer).",
            },
            "input": {"type": "object", "description": "The input every cell shares."},
            "vary": {
                "type": "object",
                "maxProperties": 2,
                "description": "Input fields to vary, each with its values (a varied value replaces the "
                "field's value in `input`). Each must be a field every chosen model has.",
                "additionalProperties": {"type": "array", "minItems": 1},
            },
        },
    },
    "Batch": {
        "type": "object",
        "required": ["batch_id", "task_ids", "cost_estimate", "axes", "left_out", "created_at"],
        "properties": {
            "batch_id": {"type": "string"},
            "task_ids": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Ordinary tasks (GET /api/v1/tasks/{task_id}), in cell order.",
            },
            "cost_estimate": {"type": "number", "description": "The estimates of all its tasks together."},
            "axes": AXES,
            "left_out": LEFT_OUT,
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "BatchDetail": {
        "allOf": [{"$ref": "#/components/schemas/Batch"}],
        "type": "object",
        "required": ["counts", "cells"],
        "properties": {
            "counts": {
                "type": "object",
                "description": "How many of its tasks are in each status.",
                "additionalProperties": {"type": "integer", "minimum": 0},
            },
            "cells": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["model", "values", "task"],
                    "properties": {
                        "model": {"type": "string"},
                        "values": {
                            "type": "object",
                            "description": "The varied fields' values in this cell.",
                        },
                        "task": {"$ref": "#/components/schemas/Task"},
                    },
                },
            },
        },
    },
}
SCHEMAS.update(BATCH_SCHEMAS)


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _errors(*statuses: int) -> dict:
    words = {
        400: "Malformed JSON, JSON nested too deep, or a bad parameter (any URL holding a control character)",
        401: "Missing, unknown, disabled, deleted or expired key",
        402: "A budget does not cover this task (code budget_exceeded); the message names which, e.g. "
        "the key's monthly budget, and what is left of it",
        403: "This key may not use that model (code model_not_allowed, field model), or its owner has "
        "just left the key's team (not_a_member)",
        404: "No such task, batch or model (including another owner's)",
        409: "Conflict",
        413: "Body too large",
        422: "Input does not match the model's schema, or a refused URL (e.g. `webhook_url`)",
        429: "Too many requests with this key; wait Retry-After seconds",
        503: "The database or the file store is not answering (code database_unavailable or "
        "file_store_unavailable); try again after Retry-After seconds",
    }
    # Any request may be refused 400 (a control character in its URL) or 429, and answered 503
    # while a shared part is down (api.errors.handler500).
    return {str(s): _json("Error", words[s]) for s in sorted({*statuses, 400, 429, 503})}


TASK_ID = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}
BATCH_ID = {"name": "batch_id", "in": "path", "required": True, "schema": {"type": "string"}}
IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "The ETag of the copy the client has.",
    "schema": {"type": "string"},
}
ETAG = {"description": "The version of the task as shown", "schema": {"type": "string"}}


def openapi_document(request: HttpRequest | None = None) -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "playground task API",
            "version": "1.0.0",
            "description": "Wire-compatible with the MindVideo task API: submit a task, poll it until "
            "it is succeeded, failed or cancelled.",
        },
        "servers": [{"url": public_base(request) or "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "pg_live_…"}},
            "schemas": SCHEMAS,
        },
        "paths": {
            "/api/v1/tasks": {
                "post": {
                    "operationId": "createTask",
                    "summary": "Create a task",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                            "description": "Same key + same body returns the original task (200); "
                            "same key + another body is 409.",
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("CreateTask")}},
                    },
                    "responses": {
                        "201": _json("Task", "Created"),
                        "200": _json("Task", "Idempotent replay: the original task, as it is now"),
                        **_errors(400, 401, 402, 403, 409, 413, 422),
                    },
                },
                "get": {
                    "operationId": "listTasks",
                    "summary": "Your tasks, newest first",
                    "parameters": [
                        {
                            "name": "status",
                            "in": "query",
                            "schema": {"type": "string", "enum": list(Status.values)},
                        },
                        {"name": "model", "in": "query", "schema": {"type": "string"}},
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                        },
                    ],
                    "responses": {"200": _json("TaskList", "A page of tasks"), **_errors(400, 401, 422)},
                },
            },
            "/api/v1/tasks/{task_id}": {
                "get": {
                    "operationId": "getTask",
                    "summary": "Get a task (poll it until it ends)",
                    "description": "Poll with the ETag of the last answer in If-None-Match: while the "
                    "task is unchanged (its status, cost, output, error, `progress` and "
                    "`queue_position`) the answer is 304 with no body.",
                    "parameters": [TASK_ID, IF_NONE_MATCH],
                    "responses": {
                        "200": {**_json("Task", "The task"), "headers": {"ETag": ETAG}},
                        "304": {"description": "Unchanged since the ETag given", "headers": {"ETag": ETAG}},
                        **_errors(401, 404),
                    },
                }
            },
            "/api/v1/tasks/{task_id}/events": {
                "get": {
                    "operationId": "getTaskEvents",
                    "summary": "A task's events, oldest first",
                    "parameters": [TASK_ID],
                    "responses": {"200": _json("EventList", "Events in order"), **_errors(401, 404)},
                }
            },
            "/api/v1/tasks/{task_id}/cancel": {
                "post": {
                    "operationId": "cancelTask",
                    "summary": "Cancel a queued or running task",
                    "parameters": [TASK_ID],
                    "responses": {
                        "200": _json("Task", "Cancelled"),
                        **_errors(401, 404),
                        "409": _json("Error", "The task already ended"),
                    },
                }
            },
            "/api/v1/tasks/{task_id}/share": {
                "post": {
                    "operationId": "shareTask",
                    "summary": "Share a task that succeeded on a public page",
                    "description": "Makes an unguessable public page of the task's outputs, the model's "
                    "title and (unless `show_parameters` is false) its prompt and parameters. It works "
                    "without an account or cookies and never expires until the task is unshared. "
                    "Idempotent: a task shared already answers 200 with the same URL. The body is "
                    "optional.",
                    "parameters": [TASK_ID],
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": _ref("ShareOptions")}},
                    },
                    "responses": {
                        "201": _json("Share", "Shared now"),
                        "200": _json("Share", "Shared already: the same URL"),
                        **_errors(401, 403, 404, 413, 422),
                        "403": _json("Error", "This caller may not share (code sharing_not_allowed)"),
                        "409": _json("Error", "The task has not succeeded (code task_not_shareable)"),
                    },
                },
                "delete": {
                    "operationId": "unshareTask",
                    "summary": "Unshare a task",
                    "description": "Its public page and the page's files answer 404 from now on. 204 "
                    "whether or not the task was shared; sharing it again makes a new URL.",
                    "parameters": [TASK_ID],
                    "responses": {"204": {"description": "Not shared (any more)"}, **_errors(401, 404)},
                },
            },
            "/api/v1/batches": {
                "post": {
                    "operationId": "createBatch",
                    "summary": "Create a batch: a task per cell of models x varied values, all or none",
                    "description": "A refusal creates no task and names the cell that stopped it, e.g. "
                    "`vary.size[2]` (that value of the varied field), `models[1]`, or a field of `input`; "
                    "402 names the budget the whole batch's estimate does not fit; 422 `batch_too_large` "
                    "says how many tasks it would make and the most allowed.",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                            "description": "Same key + same body returns the original batch (200); "
                            "same key + another body is 409.",
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("CreateBatch")}},
                    },
                    "responses": {
                        "201": _json("Batch", "Created: every task of the batch"),
                        "200": _json("Batch", "Idempotent replay: the original batch"),
                        **_errors(400, 401, 402, 403, 409, 413, 422),
                    },
                }
            },
            "/api/v1/batches/{batch_id}": {
                "get": {
                    "operationId": "getBatch",
                    "summary": "A batch, with each cell's task (status, output)",
                    "parameters": [BATCH_ID],
                    "responses": {"200": _json("BatchDetail", "The batch"), **_errors(401, 404)},
                }
            },
            "/api/v1/models": {
                "get": {
                    "operationId": "listModels",
                    "summary": "Models on offer",
                    "parameters": [
                        {
                            "name": "kind",
                            "in": "query",
                            "schema": {"type": "string", "enum": ["image", "video"]},
                        }
                    ],
                    "responses": {"200": _json("ModelList", "Models on offer"), **_errors(401, 422)},
                }
            },
            "/api/v1/models/{slug}": {
                "get": {
                    "operationId": "getModel",
                    "summary": "One model: its input schema, an example input and pricing",
                    "parameters": [
                        {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {"200": _json("Model", "Schema and pricing"), **_errors(401, 404)},
                }
            },
        },
    }
