from .helpers import SEED


def test_it_lists_every_catalog_model(api, catalog):
    data = api.get("/api/v1/models").json()["data"]
    assert {m["slug"] for m in data} == set(catalog)
    assert {m["kind"] for m in data} == {"image", "video"}


def test_it_filters_models_by_kind(api):
    videos = api.get("/api/v1/models", {"kind": "video"}).json()["data"]
    assert videos and all(m["output_key"] == "videos" for m in videos)


def test_an_unknown_kind_is_refused_naming_the_parameter(api):
    """Found by schemathesis: an unknown kind used to answer 200 with an empty list."""
    response = api.get("/api/v1/models", {"kind": "audio"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_filter", "kind")
    assert error["message"] == "kind must be one of: image, video."


def test_it_shows_a_models_schema_and_pricing(api):
    body = api.get(f"/api/v1/models/{SEED}").json()
    assert body["input_schema"]["required"] == ["prompt"]
    assert body["input_schema"]["properties"]["image_urls"]["maxItems"] == 14
    assert body["pricing"]["unit"] == "image"
    assert body["pricing"]["unit_price_by"]["resolution"]["4k"] == 0.216


def test_an_unknown_model_is_404(api):
    response = api.get("/api/v1/models/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
