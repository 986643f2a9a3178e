"""The blind grading page: a Flask app on 127.0.0.1.

    skillmix human configs/demo.yaml --rater alice --port 8765

Routes: `/` (asks for a rater name, or goes straight to the one given with --rater),
`/rate/<rater>` (the page: that rater's texts in their seeded order and only that rater's own
grades), `POST /api/rate/<rater>/grade` (`{"item", "criterion", "value"}`: saved before the
reply), `GET /api/rate/<rater>/state` (the rater's progress). The page never receives a record
id, writer, student, setting or any model grade. With `--rater NAME` the server serves that
rater only (others get 403), so one rater per server keeps raters apart on a shared machine.
Werkzeug's threaded server (Flask's own) is enough for a handful of raters on one machine; it
listens on the loopback interface only.
"""
from __future__ import annotations

import json
from importlib import resources

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.present.human.sample import grades_dir, human_items, rater_order
from skillmix_utils.present.human.store import GradeStore, check_rater

HOST = "127.0.0.1"


def create_app(cfg, rater: str | None = None, items=None):
    """The Flask app for a study (`items` defaults to `human_items(cfg)`)."""
    from flask import Flask, abort, jsonify, redirect, render_template, request, url_for

    templates = str(resources.files("skillmix_utils").joinpath("data", "templates"))
    app = Flask("skillmix_human", template_folder=templates)
    items = list(items if items is not None else human_items(cfg))
    by_key = {it.key: it for it in items}
    only = check_rater(rater) if rater else None
    folder = grades_dir(cfg)

    def store_for(name: str) -> GradeStore:
        try:
            check_rater(name)
        except SkillmixError:
            abort(400, "bad rater name")
        if only and name != only:
            abort(403, f"this server grades for {only} only")
        return GradeStore(folder, name)

    def progress(store: GradeStore) -> dict:
        given = store.current(items)
        done = sum(1 for it in items if len(given.get(it.key, {})) == len(it.criteria))
        return {"rater": store.rater, "n_items": len(items), "n_complete": done,
                "grades": {k: {str(c): v for c, v in g.items()} for k, g in given.items()}}

    @app.get("/")
    def index():
        name = request.args.get("rater") or only
        if name:
            return redirect(url_for("page", rater=name))
        return render_template("human_login.html.j2", study=cfg.name)

    @app.get("/rate/<rater>")
    def page(rater):
        store = store_for(rater)
        ordered = rater_order(items, cfg.human.seed, store.rater)
        state = progress(store)
        return render_template(
            "human.html.j2", study=cfg.name, rater=store.rater, n_items=len(items),
            items_json=_script_json([it.public() for it in ordered]),
            grades_json=_script_json(state["grades"]))

    @app.post("/api/rate/<rater>/grade")
    def grade(rater):
        store = store_for(rater)
        body = request.get_json(silent=True) or {}
        item = by_key.get(body.get("item"))
        if item is None:
            return jsonify(error="unknown item"), 400
        try:
            store.append(item, int(body.get("criterion", -1)), body.get("value"))
        except (SkillmixError, TypeError, ValueError) as exc:
            return jsonify(error=str(exc)), 400
        return jsonify(ok=True, n_complete=progress(store)["n_complete"])

    @app.get("/api/rate/<rater>/state")
    def state(rater):
        return jsonify(progress(store_for(rater)))

    return app


def _script_json(obj) -> str:
    # Inside <script type="application/json"> only "</" can end the element early.
    return json.dumps(obj, ensure_ascii=False).replace("</", "<\\/")


def serve(cfg, rater: str | None = None, port: int = 8765) -> None:
    """Serve the grading page on http://127.0.0.1:<port>/ until interrupted."""
    from werkzeug.serving import make_server

    app = create_app(cfg, rater)
    server = make_server(HOST, port, app, threaded=True)
    url = f"http://{HOST}:{server.server_port}/" + (f"rate/{rater}" if rater else "")
    print(f"skillmix human: grading {cfg.name!r} at {url} (grades in {grades_dir(cfg)}); "
          "Ctrl-C to stop", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
