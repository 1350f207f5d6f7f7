def test_events_list_the_lifecycle_in_order(api):
    task_id = api.submit(n=2).json()["task_id"]
    events = api.get(f"/api/v1/tasks/{task_id}/events").json()["data"]
    statuses = [e["status"] for e in events if e["type"] == "status"]
    assert statuses == ["queued", "processing", "succeeded"]
    messages = [e["message"] for e in events if e["type"] == "message"]
    assert messages == ["Rendering image 1 of 2 at 1024x1024.", "Rendering image 2 of 2 at 1024x1024."]
    ids = [e["id"] for e in events]
    assert ids == sorted(ids)


def test_a_queued_task_has_one_event(api, queue_only):
    task_id = api.submit().json()["task_id"]
    events = api.get(f"/api/v1/tasks/{task_id}/events").json()["data"]
    assert [(e["type"], e["status"]) for e in events] == [("status", "queued")]
