"""The HTTPS servers: login + Graph on one port, the download/upload host on another, the
admin API on a third. Plain ThreadingHTTPServer over TLS, HTTP/1.1 keep-alive.

The code lives in these modules; this one re-exports their main names:

  http_base      HTTP plumbing: Handler, Server, BaseApp, Reply, graph_error, helpers
  graph          GraphApp: login + Graph routing, authentication, faults and roles
  login          LoginMixin: Entra ID discovery, keys and tokens
  graph_users    UsersMixin: users, users delta, user
  graph_drives   DrivesMixin: drive, drive delta, items, children, content redirect
  graph_uploads  UploadsMixin: uploads, upload sessions, new folders, deletes, renames, moves
  graph_batch    BatchMixin: JSON batching
  download       DownloadApp: the download and upload host
  admin          AdminApp: the admin API
  running        Running: starts and stops the three servers
"""

from .admin import ADMIN_METHODS, AdminApp
from .download import DownloadApp
from .graph import GraphApp
from .http_base import Aborted, BaseApp, Handler, Reply, Server, graph_error, iso
from .running import Running, write_json_atomic

__all__ = [
    "ADMIN_METHODS",
    "Aborted",
    "AdminApp",
    "BaseApp",
    "DownloadApp",
    "GraphApp",
    "Handler",
    "Reply",
    "Running",
    "Server",
    "graph_error",
    "iso",
    "write_json_atomic",
]
