"""JSON batching: POST /v1.0/$batch runs each request as if it were sent alone."""

import base64
import time

from conftest import GraphClient


def batch(client, requests, **kwargs):
    return client.send("POST", "/$batch", json={"requests": requests}, **kwargs)


def drive_requests(sim):
    return [
        {"id": str(k), "method": "GET", "url": f"/users/{u['id']}/drive"}
        for k, u in enumerate(sim.list_users(), 1)
    ]


def by_id(response):
    assert response.status_code == 200, response.text
    return {r["id"]: r for r in response.json()["responses"]}


def test_a_batch_answers_every_request_by_id(sim, client):
    users = sim.list_users()
    client.token()
    sim.reset_stats()
    answers = by_id(batch(client, drive_requests(sim)))
    assert set(answers) == {str(k) for k in range(1, len(users) + 1)}
    for k, user in enumerate(users, 1):
        direct = client.get(f"/users/{user['id']}/drive")
        answer = answers[str(k)]
        assert answer["status"] == direct.status_code
        if direct.status_code == 200:
            assert answer["body"]["id"] == direct.json()["id"]
            assert answer["headers"]["Content-Type"] == "application/json"
        else:
            error = answer["body"]["error"]
            assert (error["code"], error["message"]) == (
                direct.json()["error"]["code"],
                direct.json()["error"]["message"],
            )
            assert error["innerError"]["request-id"]
    statuses = sorted(a["status"] for a in answers.values())
    assert statuses.count(200) == 5 and len(statuses) == 8  # 3 users have no OneDrive
    stats = sim.stats()
    # each request of the batch is counted as its kind, like the direct requests after it
    assert stats["requests"] == {"batch": 1, "drive": 16}
    assert stats["batch_subrequests"] == 8


def test_the_answers_are_not_in_request_order(sim, client):
    requests = drive_requests(sim)
    ids = [r["id"] for r in batch(client, requests).json()["responses"]]
    assert sorted(ids) == sorted(r["id"] for r in requests) and ids != [r["id"] for r in requests]


def test_query_strings_and_users(sim, client):
    user = sim.list_users()[0]
    answers = by_id(
        batch(
            client,
            [
                {
                    "id": "u",
                    "method": "GET",
                    "url": f"/users/{user['id']}?$select=id,accountEnabled",
                },
                {
                    "id": "list",
                    "method": "GET",
                    "url": "users?$top=2&$select=id",
                },  # no leading slash
                {"id": "missing", "method": "GET", "url": "/users/nobody@nowhere.example"},
            ],
        )
    )
    assert answers["u"]["body"] == {
        "id": user["id"],
        "accountEnabled": user["accountEnabled"],
        "@odata.context": answers["u"]["body"]["@odata.context"],
    }
    assert len(answers["list"]["body"]["value"]) == 2
    assert "@odata.nextLink" in answers["list"]["body"]
    assert answers["missing"]["status"] == 404
    assert answers["missing"]["body"]["error"]["code"] == "Request_ResourceNotFound"


def test_more_than_twenty_requests_are_refused(sim, client):
    user = sim.list_users()[0]["id"]
    requests = [{"id": str(k), "method": "GET", "url": f"/users/{user}/drive"} for k in range(21)]
    client.token()
    sim.reset_stats()
    response = batch(client, requests)
    assert response.status_code == 400
    assert response.json()["error"] == {
        **response.json()["error"],
        "code": "BadRequest",
        "message": "Number of requests exceeds limit.",
    }
    assert sim.stats()["requests"] == {"batch": 1}
    assert batch(client, requests[:20]).status_code == 200


def test_malformed_batches_are_refused_whole(client):
    for payload in (
        {},
        {"requests": []},
        {"requests": [{"id": "1", "method": "GET"}]},
        {
            "requests": [
                {"id": "1", "method": "GET", "url": "/users"},
                {"id": "1", "method": "GET", "url": "/users"},
            ]
        },
        {
            "requests": [
                {"id": "1", "method": "GET", "url": "/users", "dependsOn": ["2"]},
                {"id": "2", "method": "GET", "url": "/users"},
            ]
        },
    ):
        response = client.send("POST", "/$batch", json=payload)
        assert response.status_code == 400, payload
        assert response.json()["error"]["code"] == "BadRequest"
    assert client.send("GET", "/$batch").status_code == 405


def test_the_batch_needs_a_token(sim, client):
    response = client.session.post(client.url("/$batch"), json={"requests": drive_requests(sim)})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_urls_must_be_relative_to_the_version(sim, client):
    user = sim.list_users()[0]["id"]
    answers = by_id(
        batch(
            client,
            [
                {"id": "abs", "method": "GET", "url": f"{client.base}/users/{user}"},
                {"id": "versioned", "method": "GET", "url": f"/v1.0/users/{user}"},
                {"id": "nested", "method": "POST", "url": "/$batch"},
                {"id": "unknown", "method": "GET", "url": "/groups"},
                {"id": "ok", "method": "GET", "url": f"/users/{user}"},
            ],
        )
    )
    assert {k: a["status"] for k, a in answers.items()} == {
        "abs": 400,
        "versioned": 400,
        "nested": 400,
        "unknown": 400,
        "ok": 200,
    }


def test_roles_are_checked_per_request(sim, running):
    no_files = GraphClient(running.info, app_index=1)
    user = sim.list_users()[0]["id"]
    answers = by_id(
        batch(
            no_files,
            [
                {"id": "user", "method": "GET", "url": f"/users/{user}"},
                {"id": "drive", "method": "GET", "url": f"/users/{user}/drive"},
            ],
        )
    )
    assert answers["user"]["status"] == 200
    assert answers["drive"]["status"] == 403
    assert answers["drive"]["body"]["error"]["code"] == "accessDenied"


def test_a_throttled_request_carries_retry_after(sim, client):
    requests = drive_requests(sim)
    sim.set_fault("drive", "429", max_count=1, retry_after=0.3)
    answers = by_id(batch(client, requests))
    throttled = [a for a in answers.values() if a["status"] == 429]
    # the first is the fault; the others came back within its Retry-After: throttled too
    assert len(throttled) == len(requests)
    assert all(a["headers"]["Retry-After"] == "0.3" for a in throttled)
    assert throttled[0]["body"]["error"]["code"] == "activityLimitReached"
    stats = sim.stats()
    assert stats["faults"]["drive"]["429"] == len(requests)
    assert stats["throttle_penalties"] == len(requests) - 1
    time.sleep(0.35)  # honour Retry-After
    assert all(a["status"] != 429 for a in by_id(batch(client, requests)).values())


def test_some_requests_of_a_batch_can_fail_alone(sim, client):
    requests = drive_requests(sim)
    sim.set_fault("drive", "429", rate=0.5, seed=2, retry_after=0)  # 0: no penalty
    sim.set_fault("user", "503", max_count=1, retry_after=None)
    answers = by_id(
        batch(
            client,
            requests + [{"id": "u", "method": "GET", "url": f"/users/{sim.list_users()[0]['id']}"}],
        )
    )
    statuses = [a["status"] for a in answers.values()]
    assert 0 < statuses.count(429) < len(requests)
    assert answers["u"]["status"] == 503 and "Retry-After" not in answers["u"]["headers"]
    assert all(a["headers"]["Retry-After"] == "0" for a in answers.values() if a["status"] == 429)


def test_faults_on_the_batch_itself(sim, client):
    requests = drive_requests(sim)
    sim.set_fault("batch", "429", max_count=1, retry_after=0)
    response = batch(client, requests)
    assert response.status_code == 429 and response.headers["Retry-After"] == "0"
    sim.set_fault("batch", "503", max_count=1)
    assert batch(client, requests).status_code == 503
    assert sim.stats()["requests"].get("drive", 0) == 0  # nothing ran
    assert batch(client, requests).status_code == 200


def test_writes_redirects_and_dependencies(sim, client, first_user):
    answers = by_id(
        batch(
            client,
            [
                {
                    "id": "folder",
                    "method": "POST",
                    "url": f"/users/{first_user}/drive/root/children",
                    "headers": {"Content-Type": "application/json"},
                    "body": {"name": "Batched", "folder": {}},
                },
                {
                    "id": "file",
                    "method": "PUT",
                    "dependsOn": ["folder"],
                    "url": f"/users/{first_user}/drive/root:/Batched/a.txt:/content",
                    "headers": {"Content-Type": "text/plain"},
                    "body": base64.b64encode(b"hello").decode(),
                },
                {
                    "id": "again",
                    "method": "POST",
                    "url": f"/users/{first_user}/drive/root/children",
                    "headers": {"Content-Type": "application/json"},
                    "body": {"name": "Batched", "folder": {}},
                },
                {
                    "id": "after",
                    "method": "GET",
                    "dependsOn": ["again"],
                    "url": f"/users/{first_user}/drive/root:/Batched",
                },
            ],
        )
    )
    assert answers["folder"]["status"] == 201
    assert answers["file"]["status"] == 201 and answers["file"]["body"]["size"] == 5
    assert answers["again"]["status"] == 409
    assert answers["after"]["status"] == 424
    assert sim.file_bytes(first_user, "/Batched/a.txt") == b"hello"
    file_id = answers["file"]["body"]["id"]
    content = by_id(
        batch(
            client,
            [
                {
                    "id": "c",
                    "method": "GET",
                    "url": f"/users/{first_user}/drive/items/{file_id}/content",
                }
            ],
        )
    )
    assert content["c"]["status"] == 302
    assert client.session.get(content["c"]["headers"]["Location"]).content == b"hello"
