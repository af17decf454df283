"""Fixtures for the simulator's own tests: plain pytest, no Django."""

import pytest
import requests

from m365sim import Simulator

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
FRAGMENT = 320 * 1024


class GraphClient:
    """A small Graph client for the tests: one token per app, absolute or relative URLs."""

    def __init__(self, info, app_index=0, tenant_index=0):
        self.info = info
        self.tenant = info["tenants"][tenant_index]
        self.app = self.tenant["apps"][app_index]
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = info["ca_file"]
        self.base = info["graph_base"]
        self._token = None

    @property
    def token_url(self):
        return f"{self.info['authority_host']}/{self.tenant['tenant_id']}/oauth2/v2.0/token"

    def request_token(self, **overrides):
        form = {
            "client_id": self.app["client_id"],
            "client_secret": self.app["client_secret"],
            "grant_type": "client_credentials",
            "scope": GRAPH_SCOPE,
            **overrides,
        }
        return self.session.post(self.token_url, data=form)

    def token(self, fresh=False):
        if self._token is None or fresh:
            response = self.request_token()
            assert response.status_code == 200, response.text
            self._token = response.json()["access_token"]
        return self._token

    def url(self, path):
        return path if path.startswith("https://") else self.base + path

    def get(self, path, **kwargs):
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        return self.session.get(self.url(path), headers=headers, **kwargs)

    def send(self, method, path, **kwargs):
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        return self.session.request(method, self.url(path), headers=headers, **kwargs)

    def collect(self, path):
        """Every value of a paged collection, the number of pages and the final link."""
        values, pages, url = [], 0, path
        while True:
            response = self.get(url)
            assert response.status_code == 200, response.text
            body = response.json()
            values.extend(body["value"])
            pages += 1
            if "@odata.nextLink" in body:
                url = body["@odata.nextLink"]
                continue
            return values, pages, body.get("@odata.deltaLink")

    def create_session(self, path, **item):
        """POST .../createUploadSession with {"item": item}; the response."""
        return self.send("POST", path, json={"item": item})

    def put_fragment(self, upload_url, data, first, total, **headers):
        """PUT bytes first..first+len(data)-1 of `total` to an upload URL, without a token
        (the upload URL is pre-authenticated)."""
        content_range = f"bytes {first}-{first + len(data) - 1}/{total}"
        return self.session.put(
            upload_url, data=data, headers={"Content-Range": content_range, **headers}
        )

    def upload(self, upload_url, data, fragment=FRAGMENT):
        """Every fragment of data in order; the last response."""
        for first in range(0, len(data), fragment):
            response = self.put_fragment(
                upload_url, data[first : first + fragment], first, len(data)
            )
            if first + fragment < len(data):
                assert response.status_code == 202, response.text
        return response

    def admin(self, method, **kwargs):
        response = self.session.post(f"{self.info['admin_base']}/{method}", json=kwargs)
        assert response.status_code == 200, response.text
        return response.json()["result"]


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("m365sim-state")


@pytest.fixture
def sim():
    return Simulator.generate(
        seed=3,
        users=8,
        files_per_user=30,
        size_mix="small",
        users_without_drive=3,
        delta_page_size=20,
        users_delta_page_size=3,
        apps=[
            {
                "name": "Kodo Backup",
                "roles": [
                    "User.Read.All",
                    "Files.ReadWrite.All",
                    "Files.Read.All",
                    "Sites.Read.All",
                ],
            },
            {"name": "Kodo Backup (no files)", "roles": ["User.Read.All"]},
        ],
    )


@pytest.fixture
def running(sim, state_dir):
    with sim.serve(state_dir=state_dir) as running:
        yield running


@pytest.fixture
def client(running):
    return GraphClient(running.info)


@pytest.fixture
def first_user(sim):
    """The first user with a OneDrive (it holds the malware file and the OneNote package)."""
    return sim.tenants[0].users[0].id
