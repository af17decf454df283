"""python -m m365sim: start the simulator and run until SIGINT/SIGTERM."""

import argparse
import signal
import sys
import threading
import time

from .simulator import SIZE_MIXES, Simulator


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m m365sim", description="A Microsoft 365 simulator."
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--demo", action="store_true", help="a demo tenant: ~25 users, a few hundred files"
    )
    source.add_argument(
        "--tenant-file", help="a JSON tenant description (see Simulator.from_tenant_file)"
    )
    source.add_argument("--seed", type=int, help="generate a tenant from this seed")
    parser.add_argument("--users", type=int, default=25)
    parser.add_argument("--files-per-user", type=int, default=10)
    parser.add_argument("--size-mix", choices=sorted(SIZE_MIXES), default="small")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="login + Graph port (0: any free port)")
    parser.add_argument("--download-port", type=int, default=0)
    parser.add_argument("--admin-port", type=int, default=0)
    parser.add_argument(
        "--state-dir", default="var/m365sim", help="CA, server and app certificates"
    )
    parser.add_argument("--info-file", help="write the endpoints, CA file and app credentials here")
    parser.add_argument("--kodo-settings", help="write KodoADSettings.json for the first app here")
    parser.add_argument(
        "--token-lifetime", type=int, default=3599, help="access token lifetime, seconds"
    )
    parser.add_argument("--download-url-lifetime", type=float, default=900)
    parser.add_argument(
        "--upload-session-lifetime",
        type=float,
        default=3600,
        help="seconds an upload session lives after its creation or its latest fragment",
    )
    parser.add_argument(
        "--allow-assertion-replay",
        action="store_true",
        help="accept a client assertion jti seen before (MSAL reuses one for ~9 minutes)",
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    settings = {
        "token_lifetime": args.token_lifetime,
        "download_url_lifetime": args.download_url_lifetime,
        "upload_session_lifetime": args.upload_session_lifetime,
        "refuse_replayed_jti": not args.allow_assertion_replay,
    }
    started = time.monotonic()
    if args.tenant_file:
        sim = Simulator.from_tenant_file(args.tenant_file, **settings)
    elif args.demo:
        sim = Simulator.demo(**settings)
    else:
        sim = Simulator.generate(
            seed=args.seed if args.seed is not None else 1,
            users=args.users,
            files_per_user=args.files_per_user,
            size_mix=args.size_mix,
            **settings,
        )
    running = sim.serve(
        host=args.host,
        port=args.port,
        download_port=args.download_port,
        admin_port=args.admin_port,
        state_dir=args.state_dir,
        info_file=args.info_file,
        kodo_settings=args.kodo_settings,
    )
    info = running.info
    items = sum(len(d.items) for d in sim.drives)
    print(
        f"m365sim ready in {time.monotonic() - started:.1f}s: "
        f"{sum(len(t.users) for t in sim.tenants)} users, "
        f"{items} items",
        flush=True,
    )
    print(f"  authority host  {info['authority_host']}")
    print(f"  graph base      {info['graph_base']}")
    print(f"  download base   {info['download_base']}")
    print(f"  admin base      {info['admin_base']}")
    print(f"  CA file         {info['ca_file']}")
    for tenant in info["tenants"]:
        print(f"  tenant          {tenant['tenant_id']} ({tenant['domain']})")
        for app in tenant["apps"]:
            print(
                f"    app           {app['name']}: client id {app['client_id']}, "
                f"roles {', '.join(app['roles'])}"
            )
    if args.info_file:
        print(f"  info file       {args.info_file}")
    if args.kodo_settings:
        print(f"  Kodo settings   {args.kodo_settings}")
    sys.stdout.flush()
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(1):
        pass
    running.stop()
    print("m365sim stopped", flush=True)


if __name__ == "__main__":
    main()
