"""``advtool serve`` (the REST server), ``advtool tokens create|list|revoke`` and ``advtool datarows delete``."""

from __future__ import annotations

from .common import open_catalog, print_json


def register(sub, common):
    p = sub.add_parser("serve", parents=[common], help="serve the catalog over HTTP (REST API, OpenAPI at /docs)",
                       description="FastAPI on uvicorn. Requests need a token (advtool tokens create NAME) unless "
                                   "--no-auth on a loopback address.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--share", action="store_true",
                   help="open the catalog file for each request, so the command line and the dashboard can use it "
                        "meanwhile (slower; implied by --workers above 1); by default the server holds it open")
    p.add_argument("--no-auth", action="store_true", help="answer requests without a token (loopback addresses only)")
    p.add_argument("--allow-url-host", action="append", default=[], metavar="HOST",
                   help="let image URLs point at this host even if it is private or loopback (repeatable)")
    p.set_defaults(func=cmd_serve)

    t = sub.add_parser("tokens", help="API tokens for the REST server")
    ts = t.add_subparsers(dest="action", metavar="ACTION")
    ts.required = True
    q = ts.add_parser("create", parents=[common], help="create a token and print it (shown once)")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--read-only", action="store_true", help="the token may read but not change the catalog")
    q.set_defaults(func=cmd_token_create)
    q = ts.add_parser("list", parents=[common], help="list the tokens (names, never the tokens)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_token_list)
    q = ts.add_parser("revoke", parents=[common], help="revoke a token")
    q.add_argument("name", metavar="NAME")
    q.set_defaults(func=cmd_token_revoke)


def register_datarows(ds, common):
    """``advtool datarows delete`` (added to the ``datarows`` group)."""
    q = ds.add_parser("delete", parents=[common], help="delete data rows with their vectors, labels and batch entries")
    q.add_argument("ids", nargs="+", metavar="ID", help="data row ids or global_keys")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_datarows_delete)


def cmd_serve(args):
    from ..api.server import serve
    serve(args.db, host=args.host, port=args.port, workers=args.workers, auth=not args.no_auth,
          allow_url_hosts=args.allow_url_host, share=args.share)
    return 0


def cmd_token_create(args):
    tok, secret = open_catalog(args).tokens.create_token(args.name, read_only=args.read_only)
    print(secret)
    kind = "read-only " if tok.read_only else ""
    import sys
    print(f"Created {kind}token {tok.name!r}; it is shown only this once", file=sys.stderr)
    return 0


def cmd_token_list(args):
    toks = open_catalog(args).tokens.list_tokens()
    if args.json:
        print_json([t.to_dict() for t in toks])
        return 0
    for t in toks:
        print(f"{t.name:<30} {'read-only' if t.read_only else 'read-write':<10} created {t.created_at}")
    if not toks:
        print("no tokens")
    return 0


def cmd_token_revoke(args):
    open_catalog(args).tokens.revoke_token(args.name)
    print(f"Token {args.name!r} revoked")
    return 0


def cmd_datarows_delete(args):
    report = open_catalog(args).delete_datarows(args.ids)
    if args.json:
        print_json(report.to_dict())
    else:
        print(f"Deleted {report.deleted} data row{'s' if report.deleted != 1 else ''}")
    return 0
