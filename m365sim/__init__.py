"""m365sim: a Microsoft 365 simulator (Entra ID client credentials + a Graph subset + the
OneDrive download host) over HTTPS on loopback. It imports nothing from Kodo.

Run it:  python -m m365sim --demo --kodo-settings var/KodoADSettings.json \
--info-file var/m365sim.json

Python API (in-process, servers run in threads)::

    from m365sim import Simulator
    sim = Simulator.generate(seed=1, users=25, files_per_user=10, size_mix="small")
    # or Simulator.demo(), Simulator.from_tenant_file(path)
    with sim.serve(state_dir=tmp_path) as running:   # ports 0 = free ports
        info = running.info      # same dict as the info file: authority_host, graph_base,
                                 # download_base, admin_base, ca_file, tenants[apps[credentials]]
        user = sim.list_users()[0]["id"]
        sim.add_file(user, "/Reports/q1.xlsx", size=10_000)     # or content=b"..."
        sim.modify_file(user, "/Reports/q1.xlsx", size=20_000)  # items: id or "/path"
        sim.rename_item(user, item, "new name.xlsx"); sim.move_item(user, item, "/Archive")
        sim.delete_item(user, item)
        sim.add_user(upn="new.person"); sim.update_user(u, display_name=...)
        sim.rename_user(u, display_name=None, upn=None); sim.delete_user(u, permanent=False)
        sim.restore_user(u); sim.add_folder(u, "/A/B")
        sim.set_app_roles(client_id, ["User.Read.All"]); sim.revoke_tokens(client_id=None)
        sim.set_fault("download", "429", rate=0.1, seed=7, retry_after=0.5)  # -> fault id
        sim.clear_faults(endpoint=None); sim.list_faults()
        sim.expire_delta_tokens(user)            # next delta on an old token: 410
        sim.configure(token_lifetime=60, download_url_lifetime=5, delta_page_size=50, ...)
        sim.stats(); sim.reset_stats()
        sim.list_items(user), sim.get_item(user, item), sim.file_bytes(user, item)

Fault endpoint kinds: token, users, users_delta, user, drive, drive_delta, item, children,
content (the 302), download (the download host), upload. Fault kinds: 429, 500, 502, 503,
504 (params: retry_after int/float/None), reset, truncate, stall (after_bytes,
stall_seconds), corrupt (corrupt_at), resync (410 on a request carrying a delta token),
revoke (revokes the app's tokens and answers 401). Faults fire deterministically from
(seed, per-fault request counter) at the given rate; max_count caps them.

Admin HTTP API (admin_base in the info file): POST /<method> with the keyword arguments
as a JSON object (bytes as "content_b64"), GET /<method>?arg=value for read-only ones,
GET /info. Answers {"result": ...} or {"error": "..."} with 400/404.
"""

from .quickxor import QuickXorHash, quickxorhash
from .simulator import BACKUP_ROLES, Simulator

__all__ = ["Simulator", "QuickXorHash", "quickxorhash", "BACKUP_ROLES"]
