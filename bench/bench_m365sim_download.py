"""Download throughput of m365sim's download host, measured with curl.

    .venv/bin/python bench/bench_m365sim_download.py [--size-mb 1024] [--runs 3]

Starts an in-process simulator with one large file, asks Graph for its download URL and
downloads it with curl to /dev/null; prints MB/s (10^6 bytes per second) for each run.
"""

import argparse
import json
import ssl
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from m365sim import Simulator  # noqa: E402


def token(info, ctx):
    tenant = info["tenants"][0]
    app = tenant["apps"][0]
    body = (
        f"client_id={app['client_id']}&client_secret={urllib.request.quote(app['client_secret'])}"
        f"&grant_type=client_credentials&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
    ).encode()
    request = urllib.request.Request(
        f"{info['authority_host']}/{tenant['tenant_id']}/oauth2/v2.0/token", body
    )
    with urllib.request.urlopen(request, context=ctx) as response:
        return json.load(response)["access_token"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mb * 1024 * 1024
    sim = Simulator.generate(seed=7, users=1, files_per_user=0, users_without_drive=0)
    user = sim.list_users()[0]["id"]
    item = sim.add_file(user, "/big.bin", size=size)
    with tempfile.TemporaryDirectory() as state, sim.serve(state_dir=state) as running:
        info = running.info
        ctx = ssl.create_default_context(cafile=info["ca_file"])
        access = token(info, ctx)
        request = urllib.request.Request(
            f"{info['graph_base']}/users/{user}/drive/items/{item['id']}",
            headers={"Authorization": f"Bearer {access}"},
        )
        with urllib.request.urlopen(request, context=ctx) as response:
            url = json.load(response)["@microsoft.graph.downloadUrl"]
        speeds = []
        for run in range(args.runs):
            out = subprocess.run(
                [
                    "curl",
                    "-s",
                    "--cacert",
                    info["ca_file"],
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{speed_download} %{size_download}",
                    url,
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
            speed, downloaded = float(out[0]), int(out[1])
            assert downloaded == size, (downloaded, size)
            speeds.append(speed / 1e6)
            print(f"run {run + 1}: {downloaded / 1e6:.0f} MB at {speeds[-1]:.0f} MB/s")
        curl = subprocess.run(["curl", "--version"], capture_output=True, text=True)
        print(
            f"best {max(speeds):.0f} MB/s, median {sorted(speeds)[len(speeds) // 2]:.0f} MB/s "
            f"({args.size_mb} MiB file, curl {curl.stdout.split()[1]})"
        )


if __name__ == "__main__":
    main()
