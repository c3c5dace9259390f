"""The annotation web app: server-rendered pages over one project.

Every request needs a token: the project's own (``Project.access_token``, kept
across restarts) or an invited labeler's (``Project.invite``; their labels are
recorded under their name, and a revoked token stops at the next request). It
comes as ``?token=`` once (the app then sets an HttpOnly, SameSite=Strict cookie
and drops it from the address), the cookie, or an ``Authorization: Bearer``
header; anything else gets 401. Cookies ignore the port, so their names carry a
digest of the project's path: two projects served on one host keep their own
cookies. A self-typed annotator name is stored percent-encoded (any script).

Each browser gets a session cookie; the session leases the item it is shown
(``AnnotationQueue``), so two sessions never label the same item at once. A request
without a session cookie (a link preview, a script) sees an item without leasing
it; an open page renews its lease (``/api/lease``) and releases it when closed
(``/release``); the dashboard lists reservations with a release button.

A label form carries the item's newest label event the page showed; if someone
else labeled the item since, the answer is a 409 page saying who gave which label,
with "keep mine" and "keep theirs" (both events stay in the history). A label is
committed before the response that moves the page on is sent. "Next batch" asks
for confirmation while the batch has unlabeled items (and may be kept to the
owner). No endpoint takes a file path: the app reads and writes only its project.

With overlap (``anchoral overlap``) a share of each batch goes to k different
labelers, each labeling without seeing the others' labels. The dashboard shows their
agreement; the review page lists the items they disagree on and records the label a
reviewer picks (the owner, or any labeler if the project allows it).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from markupsafe import escape

from anchoral.encoders.base import Encoder
from anchoral.errors import AnchoralError, ValidationError
from anchoral.serve.charts import learning_curve_svg
from anchoral.serve.jobs import BackgroundJob
from anchoral.store.agreement import KAPPA_NAMES
from anchoral.store.project import Project
from anchoral.store.queue import DEFAULT_LEASE_SECONDS, AnnotationQueue, LeaseConflict, StaleLabel
from anchoral.store.review import ResolvedMeanwhile, agreement_report, count_to_review, resolve, resolved, to_review

TOKEN_COOKIE = "anchoral_token"
SESSION_COOKIE = "anchoral_session"
ANNOTATOR_COOKIE = "anchoral_annotator"
MAX_ANNOTATOR_LENGTH = 64
MAX_KEYED_LABELS = 9
NOTICES = {
    "conflict": "That item is being labeled in another session; here is another one.",
    "nothing-to-undo": "Nothing to undo in this session.",
    "undone": "Label taken back: label this item again.",
    "busy": "A next batch is already being computed.",
    "released": "Reservation released: the item is back in the queue.",
    "resolved": "Resolved: that label is the item's label from now on (the labelers' labels stay in its history).",
}
HEARTBEAT_SECONDS = 20.0
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def new_token() -> str:
    return secrets.token_urlsafe(18)


def _clean_annotator(name: str) -> str:
    """Letters and digits of any script, spaces (runs collapsed) and ``.@+-``; at most 64 characters."""
    kept = re.sub(r"[^\w .@+-]", "", " ".join(name.split()))
    return " ".join(kept.split())[:MAX_ANNOTATOR_LENGTH].strip()


def cookie_names(project_dir: Path) -> tuple[str, str, str]:
    """(token, session, annotator) cookie names of the project in ``project_dir``."""
    suffix = hashlib.sha256(str(project_dir).encode()).hexdigest()[:10]
    return tuple(f"{name}_{suffix}" for name in (TOKEN_COOKIE, SESSION_COOKIE, ANNOTATOR_COOKIE))


def create_app(
    project_dir: str | Path,
    *,
    token: str,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    encoder: Encoder | None = None,
    owner_only_next_batch: bool = False,
) -> FastAPI:
    """The app for the project in ``project_dir``; ``encoder`` defaults to MiniLM (loaded on first use).

    With ``owner_only_next_batch`` only holders of the project's token (the owner)
    may start the next batch; invited labelers (``anchoral invite``) label."""
    if not token:
        raise ValidationError("token must be a non-empty string")
    if not lease_seconds > 0:
        raise ValidationError(f"lease_seconds must be positive; got {lease_seconds!r}")
    project_dir = Path(project_dir).resolve()
    Project.open(project_dir).close()
    app = FastAPI(title="anchoral annotation", docs_url=None, redoc_url=None, openapi_url=None)
    state = _AppState(project_dir, token, lease_seconds, encoder)
    threading.Thread(target=state.warm_up, name="anchoral-warm-up", daemon=True).start()
    token_cookie, session_cookie, annotator_cookie = cookie_names(project_dir)
    app.state.anchoral = state

    @app.middleware("http")
    async def require_token(request: Request, call_next):
        supplied = request.query_params.get("token")
        header = request.headers.get("authorization", "")
        bearer = header[7:] if header.lower().startswith("bearer ") else None
        cookie = request.cookies.get(token_cookie)
        access = next(filter(None, (state.access(value) for value in (supplied, bearer, cookie))), None)
        if access is None:
            return _unauthorized(request)
        request.state.labeler = access.labeler
        session = request.cookies.get(session_cookie) or secrets.token_hex(8)
        request.state.session = session
        request.state.can_label = session_cookie in request.cookies
        arrived_with_token = supplied is not None and access.token == supplied
        if arrived_with_token and request.method == "GET":  # keep the token out of the address bar and history
            remaining = request.url.remove_query_params("token").query
            response = RedirectResponse(request.url.path + (f"?{remaining}" if remaining else ""), status_code=303)
        else:
            response = await call_next(request)
        if arrived_with_token:
            response.set_cookie(token_cookie, access.token, httponly=True, samesite="strict")
        if session_cookie not in request.cookies:
            response.set_cookie(session_cookie, session, httponly=True, samesite="strict")
        return response

    @app.exception_handler(AnchoralError)
    async def refuse(request: Request, exc: AnchoralError):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": str(exc)}, status_code=400)
        return HTMLResponse(f"<!doctype html><title>400</title><p>{escape(str(exc))}</p><p><a href='/label'>Back</a></p>", status_code=400)

    def page(request: Request, name: str, **context) -> HTMLResponse:
        with state.project() as project:
            reviewer = may_review(request, project)
            waiting_review = count_to_review(project) if reviewer else 0
            overlap_on = project.overlap().enabled
        return TEMPLATES.TemplateResponse(
            request, name,
            {"project_name": project_dir.name, "annotator": annotator(request), "invited": request.state.labeler,
             "may_start_batch": may_start_batch(request), "may_review": reviewer, "waiting_review": waiting_review,
             "show_review": reviewer and (overlap_on or waiting_review > 0), **context},
        )

    def may_start_batch(request: Request) -> bool:
        return not (owner_only_next_batch and request.state.labeler is not None)

    def may_review(request: Request, project: Project) -> bool:
        """The owner (the project's own token) resolves disagreements; invited labelers too if the project says so."""
        return request.state.labeler is None or project.overlap().review_by == "labelers"

    def annotator(request: Request) -> str:
        """Who gets the labels: the invited labeler whose link this is, else the name the browser gave itself."""
        if request.state.labeler is not None:
            return request.state.labeler
        name = _clean_annotator(unquote(request.cookies.get(annotator_cookie, "")))
        return name or f"web-{request.state.session[:6]}"

    def back_to_label(notice: str | None = None) -> RedirectResponse:
        return RedirectResponse("/label" + (f"?notice={notice}" if notice else ""), status_code=303)

    @app.get("/")
    def index():
        return RedirectResponse("/label", status_code=303)

    @app.get("/label", response_class=HTMLResponse)
    def label_page(request: Request, notice: str | None = None):
        session, labeler = request.state.session, annotator(request)
        with state.project() as project:
            queue = state.queue(project)
            item = queue.next_item(session, annotator=labeler, reserve=request.state.can_label)
            progress = project.batch_progress()
            track = project.track_of(item.position, labeler) if item else ""
            context = {
                "item": item,
                "seen": project.newest_event(item.position, track) if item else 0,
                "overlap_raters": project.raters_of(item.position) if item else 1,
                "heartbeat_seconds": min(HEARTBEAT_SECONDS, state.lease_seconds / 3),
                # on an overlap item, only the labeler's own labels: the others' stay hidden until review
                "history": [event for event in project.history(item.id) if event.track == track] if item else [],
                "labels": list(enumerate(project.labels)),
                "max_keys": MAX_KEYED_LABELS,
                "progress": progress,
                "held_elsewhere": 0 if item else queue.held_elsewhere(session),
                "has_rounds": progress.round is not None,
                "notice": NOTICES.get(notice or ""),
                "job": state.job.status(),
            }
        return page(request, "label.html", **context)

    @app.post("/label")
    def submit_label(request: Request, item: int = Form(...), label: int = Form(...), seen: int | None = Form(None)):
        with state.project() as project:
            try:
                state.queue(project).label(request.state.session, item, label, annotator(request), seen=seen)
            except LeaseConflict:
                return back_to_label("conflict")
            except StaleLabel as stale:
                context = {"stale": stale, "item": project.item(item), "mine": project.labels[label], "label": label}
                response = page(request, "conflict.html", **context)
                response.status_code = 409
                return response
        return back_to_label()

    @app.post("/api/lease")
    def renew_lease(request: Request, item: int = Form(...)):
        with state.project() as project:
            return {"held": state.queue(project).renew(request.state.session, item)}

    @app.post("/release")
    def release(request: Request, item: int | None = Form(None), session: str | None = Form(None)):
        """End a reservation: this session's (the tab is closing) or, from the dashboard, anyone's."""
        with state.project() as project:
            state.queue(project).release(session or request.state.session, item)
        if session is not None:
            return RedirectResponse("/dashboard?notice=released", status_code=303)
        return JSONResponse({"released": True})

    @app.post("/skip")
    def skip(request: Request, item: int = Form(...)):
        with state.project() as project:
            try:
                state.queue(project).skip(request.state.session, item)
            except LeaseConflict:
                return back_to_label("conflict")
        return back_to_label()

    @app.post("/undo")
    def undo(request: Request):
        with state.project() as project:
            reopened = state.queue(project).undo(request.state.session, annotator(request))
        return back_to_label("undone" if reopened else "nothing-to-undo")

    @app.post("/next-batch")
    def next_batch(request: Request, confirm: str | None = Form(None)):
        """Start the next round; while the current batch has unlabeled items, first ask (it ends that batch for everyone)."""
        if not may_start_batch(request):
            return HTMLResponse(
                "<!doctype html><title>403</title><p>Only the project's owner starts the next batch here; "
                "ask them when this batch is done.</p><p><a href='/label'>Back</a></p>",
                status_code=403,
            )
        if confirm is None and state.job.status().state != "running":
            with state.project() as project:
                progress = project.batch_progress()
                held = state.queue(project).held_elsewhere(request.state.session)
                unlabeled = project.pool_size - sum(project.label_counts().values())
            if progress.remaining > 0:
                return page(request, "confirm.html", progress=progress, held=held, unlabeled=unlabeled)
        started = state.job.start()
        return RedirectResponse("/working" if started else "/working?notice=busy", status_code=303)

    @app.get("/working", response_class=HTMLResponse)
    def working(request: Request, notice: str | None = None):
        return page(request, "working.html", job=state.job.status(), notice=NOTICES.get(notice or ""))

    @app.get("/api/job")
    def job_status():
        return state.job.status().as_dict()

    @app.get("/dashboard", response_class=HTMLResponse)
    def dashboard(request: Request, notice: str | None = None):
        with state.project() as project:
            summary = _summary(project)
            queue = state.queue(project)
            reservations, holders = queue.reservations(), queue.holders()
            rounds = project.rounds()
            per_round = project.labeled_per_round()
            has_heldout = project.heldout() is not None
            overlap_text = project.overlap().describe()
        curve = [(r.n_labeled, r.metrics["heldout"]["accuracy"]) for r in rounds if "heldout" in r.metrics]
        return page(
            request,
            "dashboard.html",
            summary=summary,
            kappa_names=KAPPA_NAMES,
            overlap_text=overlap_text,
            rounds=list(reversed(rounds)),
            per_round=per_round,
            has_heldout=has_heldout,
            curve=learning_curve_svg(curve),
            job=state.job.status(),
            reservations=reservations,
            holders=holders,
            notice=NOTICES.get(notice or ""),
        )

    @app.get("/review", response_class=HTMLResponse)
    def review_page(request: Request, notice: str | None = None):
        with state.project() as project:
            if not may_review(request, project):
                return _only_owner_reviews()
            context = {"waiting": to_review(project), "done": resolved(project), "labels": list(enumerate(project.labels)),
                       "review_by": project.overlap().review_by}
        return page(request, "review.html", notice=NOTICES.get(notice or ""), **context)

    @app.post("/review")
    def submit_review(request: Request, item: int = Form(...), label: int = Form(...), seen: int | None = Form(None)):
        with state.project() as project:
            if not may_review(request, project):
                return _only_owner_reviews()
            try:
                resolve(project, item, label, annotator(request), seen=seen)
            except ResolvedMeanwhile as meanwhile:
                context = {"waiting": to_review(project), "done": resolved(project),
                           "labels": list(enumerate(project.labels)), "review_by": project.overlap().review_by}
                response = page(request, "review.html", error=str(meanwhile), **context)
                response.status_code = 409
                return response
        return RedirectResponse("/review?notice=resolved", status_code=303)

    @app.get("/api/status")
    def api_status():
        with state.project() as project:
            return _summary(project)

    @app.post("/annotator")
    def set_annotator(name: str = Form("")):
        response = RedirectResponse("/dashboard", status_code=303)
        cleaned = _clean_annotator(name)
        if cleaned:
            response.set_cookie(annotator_cookie, quote(cleaned, safe=""), httponly=True, samesite="strict")
        else:
            response.delete_cookie(annotator_cookie)
        return response

    return app


def _only_owner_reviews() -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><title>403</title><p>Only the project's owner resolves disagreements here "
        "(`anchoral overlap PROJECT --review-by labelers` lets invited labelers review too).</p>"
        "<p><a href='/label'>Back</a></p>",
        status_code=403,
    )


def _summary(project: Project) -> dict:
    counts = project.label_counts()
    progress = project.batch_progress()
    latest = project.latest_round()
    return {
        "pool_size": project.pool_size,
        "labels": list(project.labels),
        "label_counts": counts,
        "labeled": sum(counts.values()),
        "strategy": project.settings["strategy"],
        "rounds": 0 if latest is None else latest.round,
        "batch": {"round": progress.round, "labeled": progress.labeled, "in_review": progress.in_review,
                  "total": progress.total},
        "last_metrics": None if latest is None else latest.metrics,
        "overlap": project.overlap().as_dict(),
        "agreement": agreement_report(project),
    }


def _unauthorized(request: Request):
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": "missing or wrong token"}, status_code=401)
    return HTMLResponse(
        "<!doctype html><title>401 Unauthorized</title><h1>401 Unauthorized</h1>"
        "<p>Open the address printed by <code>anchoral serve</code> (it ends in <code>?token=...</code>).</p>",
        status_code=401,
    )


@dataclass(frozen=True)
class _Access:
    token: str
    labeler: str | None  # None: the project's shared token


class _AppState:
    """What the routes share: the project location, the token, the encoder and the next-batch job."""

    def __init__(self, project_dir: Path, token: str, lease_seconds: float, encoder: Encoder | None):
        self.project_dir = project_dir
        self.token = token
        self.lease_seconds = lease_seconds
        self._encoder = encoder
        self.job = BackgroundJob(self._next_batch)

    def access(self, supplied: str | None) -> _Access | None:
        """What ``supplied`` opens: the project's token (anyone), an invited labeler's token
        (read from the project on every request, so a revoked one stops at once), or nothing."""
        if not supplied:
            return None
        if hmac.compare_digest(supplied.encode(), self.token.encode()):
            return _Access(supplied, None)
        with self.project() as project:
            labeler = project.labeler_of(supplied)
        return None if labeler is None else _Access(supplied, labeler)

    def project(self) -> Project:
        """A connection for one request (SQLite connections are cheap; each request gets its own)."""
        return Project.open(self.project_dir, check_integrity=False)

    def queue(self, project: Project) -> AnnotationQueue:
        return AnnotationQueue(project, lease_seconds=self.lease_seconds)

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            from anchoral.encoders import MiniLMEncoder

            self._encoder = MiniLMEncoder()
        return self._encoder

    def warm_up(self) -> None:
        """Import what a round needs (the model's stack, torch for the MLP head: 1.5-2 s) while
        the server waits for its first click, so the first "Next batch" is as fast as the rest."""
        try:
            from anchoral.store.rounds import make_project_model
            from anchoral.strategies import make_strategy

            with self.project() as project:
                make_project_model(project)
                make_strategy(project.settings["strategy"])
        except Exception:  # a warm-up only: the round itself reports any problem
            pass

    def _next_batch(self, report) -> int:
        from anchoral.store.rounds import run_round

        with self.project() as project:
            return run_round(project, encoder=self.encoder, progress=report, holder="the web app's next batch").round
