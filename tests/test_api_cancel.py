from playground.generations.jobs import run_task
from playground.generations.models import Task


def test_it_cancels_a_queued_task_and_charges_nothing(api, queue_only):
    task_id = api.submit().json()["task_id"]
    response = api.post(f"/api/v1/tasks/{task_id}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["cost_actual"] == 0
    events = api.get(f"/api/v1/tasks/{task_id}/events").json()["data"]
    assert [e["status"] for e in events] == ["queued", "cancelled"]


def test_a_cancelled_task_is_never_run(api, queue_only):
    task_id = api.submit().json()["task_id"]
    api.post(f"/api/v1/tasks/{task_id}/cancel")
    assert run_task.call(task_id) == "skipped"
    task = Task.objects.get(pk=task_id)
    assert task.status == "cancelled"
    assert task.output is None


def test_cancelling_a_finished_task_is_409(api):
    task_id = api.submit().json()["task_id"]
    response = api.post(f"/api/v1/tasks/{task_id}/cancel")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "task_not_cancellable"
    assert "succeeded" in response.json()["error"]["message"]
    assert api.get(f"/api/v1/tasks/{task_id}").json()["status"] == "succeeded"


def test_cancel_needs_post(api):
    task_id = api.submit().json()["task_id"]
    assert api.client.get(f"/api/v1/tasks/{task_id}/cancel", headers=api.headers({})).status_code == 405
