"""Provisioning a OneDrive later for a user who has none."""

import pytest


def user_without_drive(sim):
    return next(u for u in sim.list_users() if u["drive_id"] is None)


def test_a_user_without_a_onedrive_gets_one_when_provisioned(sim, client):
    user = user_without_drive(sim)
    assert client.get(f"/users/{user['id']}/drive").status_code in (400, 404)
    provisioned = sim.provision_drive(user["id"])
    assert provisioned["drive_id"] and provisioned["licensed"]
    drive = client.get(f"/users/{user['id']}/drive")
    assert drive.status_code == 200 and drive.json()["id"] == provisioned["drive_id"]
    sim.add_file(user["id"], "/first.txt", content=b"hello")
    names = [i["name"] for i in client.collect(f"/drives/{provisioned['drive_id']}/root/delta")[0]]
    assert "first.txt" in names
    with pytest.raises(ValueError):
        sim.provision_drive(user["id"])


def test_the_admin_api_provisions_a_onedrive(sim, client):
    user = user_without_drive(sim)
    result = client.admin("provision_drive", user=user["userPrincipalName"])
    assert result["drive_id"]
    assert client.get(f"/users/{user['id']}/drive").status_code == 200
    again = client.session.post(
        f"{client.info['admin_base']}/provision_drive", json={"user": user["id"]}
    )
    assert again.status_code == 400 and "already has a OneDrive" in again.json()["error"]
