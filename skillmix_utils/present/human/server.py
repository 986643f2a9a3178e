"""The blind grading page: a Flask app on 127.0.0.1.

    skillmix human configs/demo.yaml --rater alice --rater bob --port 8765

Each rater has a token (`access.rater_tokens`), made the first time the operator names the
rater with `--rater` and printed with the rater's link whenever the server starts; a server
started without `--rater` serves every rater named before. Every route but `/` needs the
rater's token (`?token=` in the link, the `X-Skillmix-Token` header from the page), so nobody
reads or writes a rater's grades without it, and nobody becomes a rater by typing a name.

Routes: `/` (asks for the link or token; a token goes to its rater's page), `/rate/<rater>`
(the page: that rater's texts in their seeded order and only that rater's own grades),
`POST /api/rate/<rater>/grade` (`{"item": KEY, "criterion": N, "value": 0 or 1}`, nothing else,
at most `MAX_BODY` bytes: saved before the reply; anything else is a 400 or 413, never a 500),
`GET /api/rate/<rater>/state` (the rater's progress). The page never receives a record id,
writer, student, setting or any model grade. Templates are autoescaped although they end in
`.j2` (Flask escapes only `.html` and friends on its own). Werkzeug's threaded server (Flask's
own) is enough for a handful of raters on one machine; it listens on the loopback interface only.
"""
from __future__ import annotations

import json
import re
from importlib import resources

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.present.human.access import rater_tokens, token_matches
from skillmix_utils.present.human.sample import grades_dir, human_items, rater_instructions, rater_order
from skillmix_utils.present.human.store import GradeStore, check_rater

HOST = "127.0.0.1"
TOKEN_HEADER = "X-Skillmix-Token"
MAX_BODY = 4096          # a grade is ~100 bytes; anything near this is not a grade
GRADE_KEYS = {"item", "criterion", "value"}
# The page needs its own inline script and style and its own API, nothing else.
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
           "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
           "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; "
                                      "style-src 'unsafe-inline'; connect-src 'self'; "
                                      "form-action 'self'; frame-ancestors 'none'"}


class BadGrade(ValueError):
    """A grade body that is not exactly {"item": str, "criterion": int, "value": 0 | 1}."""


def _no_constant(name: str):
    raise BadGrade(f"{name} is not a grade")


def parse_grade_body(raw: bytes) -> tuple[str, int, int]:
    """(item key, criterion, value) from a grade request's body, or BadGrade saying why.

    >>> parse_grade_body(b'{"item": "ab", "criterion": 2, "value": 1}')
    ('ab', 2, 1)
    >>> parse_grade_body(b'{"item": "ab", "criterion": 2.7, "value": 1}')
    Traceback (most recent call last):
    ...
    skillmix_utils.present.human.server.BadGrade: criterion must be a whole number, got 2.7
    """
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except BadGrade:
        raise
    except (ValueError, RecursionError):     # not JSON, not UTF-8, a number too long, too deep
        raise BadGrade("the body is not JSON") from None
    if not isinstance(body, dict) or set(body) != GRADE_KEYS:
        raise BadGrade('a grade is {"item": KEY, "criterion": N, "value": 0 or 1} and nothing else')
    item, criterion, value = body["item"], body["criterion"], body["value"]
    if not isinstance(item, str):
        raise BadGrade("item must be a key from the page")
    if type(criterion) is not int:          # not a float, not true/false
        raise BadGrade(f"criterion must be a whole number, got {json.dumps(criterion)}")
    if type(value) is not int or value not in (0, 1):
        raise BadGrade(f"value must be 0 or 1, got {json.dumps(value)}")
    return item, criterion, value


def served_tokens(cfg, raters=None) -> dict[str, str]:
    """rater -> token of the raters a server serves: `raters` (a name or names; a new name gets
    its token now), or every rater named before when None."""
    names = _names(cfg, raters)
    tokens = rater_tokens(cfg, create=names)
    return {n: tokens[n] for n in names} if names else tokens


def _names(cfg, raters) -> list[str]:
    # The raters asked for, checked before anything is written.
    names = [check_rater(n) for n in ([raters] if isinstance(raters, str) else raters or [])]
    if not names and not rater_tokens(cfg):
        raise SkillmixError("no raters yet: name each rater once with --rater NAME (repeatable); "
                            "their links, with their tokens, are printed when the server starts",
                            field="--rater")
    return names


def create_app(cfg, raters=None, items=None):
    """The Flask app for a study, serving `raters` (see `served_tokens`); `items` defaults to
    `human_items(cfg)`."""
    from flask import Flask, abort, jsonify, redirect, render_template, request, url_for
    from werkzeug.exceptions import HTTPException

    _names(cfg, raters)
    items = list(items if items is not None else human_items(cfg))
    instructions = rater_instructions(cfg)
    served = served_tokens(cfg, raters)      # after every check: no token for a refused start
    by_key = {it.key: it for it in items}
    folder = grades_dir(cfg)

    templates = str(resources.files("skillmix_utils").joinpath("data", "templates"))
    app = Flask("skillmix_human", template_folder=templates)
    app.jinja_options = {**app.jinja_options, "autoescape": True}   # our templates end in .j2
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY

    def store_for(name: str) -> GradeStore:
        # One answer for an unknown name and a wrong token: the page does not say who exists.
        token = request.headers.get(TOKEN_HEADER) or request.args.get("token")
        if name not in served or not token_matches(served[name], token):
            abort(403, "this page needs your own link (with its token) from whoever runs the "
                       "server")
        return GradeStore(folder, name)

    def progress(store: GradeStore) -> dict:
        given = store.current(items)
        done = sum(1 for it in items if len(given.get(it.key, {})) == len(it.criteria))
        return {"rater": store.rater, "n_items": len(items), "n_complete": done,
                "grades": {k: {str(c): v for c, v in g.items()} for k, g in given.items()}}

    @app.after_request
    def headers(response):
        response.headers.update(HEADERS)
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc):
        if request.path.startswith("/api/"):
            return jsonify(error=exc.description), exc.code
        return exc

    @app.get("/")
    def index():
        token = request.args.get("token")
        for name, expected in served.items():
            if token_matches(expected, token):
                return redirect(url_for("page", rater=name, token=token))
        return render_template("human_login.html.j2", study=cfg.name,
                               wrong=bool(token)), 403 if token else 200

    @app.get("/rate/<rater>")
    def page(rater):
        store = store_for(rater)
        ordered = rater_order(items, cfg.human.seed, store.rater)
        state = progress(store)
        return render_template(
            "human.html.j2", study=cfg.name, rater=store.rater, n_items=len(items),
            explicit_name_rule=instructions["explicit_name_rule"],
            examples=instructions["examples"],
            page_json=_script_json({"rater": store.rater, "token": served[store.rater]}),
            items_json=_script_json([it.public() for it in ordered]),
            grades_json=_script_json(state["grades"]))

    @app.post("/api/rate/<rater>/grade")
    def grade(rater):
        store = store_for(rater)
        try:
            key, criterion, value = parse_grade_body(request.get_data(cache=False))
        except BadGrade as exc:
            return jsonify(error=str(exc)), 400
        item = by_key.get(key)
        if item is None:
            return jsonify(error="unknown item"), 400
        try:
            store.append(item, criterion, value)
        except SkillmixError as exc:
            return jsonify(error=exc.reason), 400
        except OSError as exc:       # disk full, folder gone: not saved, and the page says so
            return jsonify(error=f"not saved: {exc.strerror or exc}"), 503
        return jsonify(ok=True, n_complete=progress(store)["n_complete"])

    @app.get("/api/rate/<rater>/state")
    def state(rater):
        return jsonify(progress(store_for(rater)))

    return app


def _script_json(obj) -> str:
    # Inside <script type="application/json"> only "</" can end the element early.
    return json.dumps(obj, ensure_ascii=False).replace("</", "<\\/")


def hide_token(line: str) -> str:
    """A request line with any token's value blanked.

    >>> hide_token("GET /rate/alice?token=s3cr3t&x=1 HTTP/1.1")
    'GET /rate/alice?token=***&x=1 HTTP/1.1'
    """
    return re.sub(r"(?i)(token=)[^&\s]*", r"\1***", line)


def rater_links(base_url: str, tokens: dict[str, str]) -> list[str]:
    """One line per rater: the name and the link that opens the rater's page."""
    return [f"  {name}: {base_url}rate/{name}?token={token}" for name, token in sorted(tokens.items())]


def serve(cfg, raters=None, port: int = 8765) -> None:
    """Serve the grading page on http://127.0.0.1:<port>/ until interrupted; print each served
    rater's link (with its token) first."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Handler(WSGIRequestHandler):
        # The request log shows paths, never a rater's token.
        def log(self, type, message, *args):
            super().log(type, message, *(hide_token(a) if isinstance(a, str) else a for a in args))

    app = create_app(cfg, raters)
    served = served_tokens(cfg, raters)
    server = make_server(HOST, port, app, threaded=True, request_handler=Handler)
    base = f"http://{HOST}:{server.server_port}/"
    print(f"skillmix human: grading {cfg.name!r} at {base} (grades in {grades_dir(cfg)}); "
          "give each rater their own link, nobody else's; Ctrl-C to stop", flush=True)
    print("\n".join(rater_links(base, served)), flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
