"""The fake GitHub's web side of the App manifest flow.

GitHub's flow, which the fake follows:
1. a page POSTs a form field `manifest` (JSON) to `/settings/apps/new?state=S`
   (or `/organizations/ORG/settings/apps/new?state=S`);
2. GitHub checks the manifest and shows a confirm page where the person may
   rename the App; its "Create GitHub App" button registers the App and
   redirects the browser to `redirect_url?code=C&state=S`;
3. the code is exchanged once, within an hour, with an unauthenticated
   `POST /api/v3/app-manifests/C/conversions` for the App's id, private key
   and secrets (the route is in `github_rest.py`).

The fake serves the confirm page (a test's browser clicks its button), and
from registration on it *plays the new App*: its id, slug, client id and key
replace the old ones, so a JWT signed with the key handed out works against
`GET /app`. Installations and repositories stay as they were.
"""

from __future__ import annotations

import html
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .github_shapes import App, Json, iso

if TYPE_CHECKING:
    from .github import FakeGitHub

# Repository and organization permissions an App may ask for, with their levels.
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "actions": ("read", "write"),
    "administration": ("read", "write"),
    "checks": ("read", "write"),
    "contents": ("read", "write"),
    "deployments": ("read", "write"),
    "environments": ("read", "write"),
    "issues": ("read", "write"),
    "metadata": ("read",),
    "packages": ("read", "write"),
    "pages": ("read", "write"),
    "pull_requests": ("read", "write"),
    "repository_hooks": ("read", "write"),
    "repository_projects": ("read", "write", "admin"),
    "secret_scanning_alerts": ("read", "write"),
    "secrets": ("read", "write"),
    "security_events": ("read", "write"),
    "single_file": ("read", "write"),
    "statuses": ("read", "write"),
    "vulnerability_alerts": ("read", "write"),
    "workflows": ("write",),
    "members": ("read", "write"),
    "organization_administration": ("read", "write"),
    "organization_hooks": ("read", "write"),
    "organization_projects": ("read", "write", "admin"),
    "organization_secrets": ("read", "write"),
    "team_discussions": ("read", "write"),
}
# Webhook events, and the permissions of which the App needs one (at least read).
EVENTS: dict[str, tuple[str, ...]] = {
    "check_run": ("checks",),
    "check_suite": ("checks",),
    "create": ("contents",),
    "delete": ("contents",),
    "deployment": ("deployments",),
    "issue_comment": ("issues", "pull_requests"),
    "issues": ("issues",),
    "label": ("metadata",),
    "member": ("members",),
    "milestone": ("issues", "pull_requests"),
    "public": ("metadata",),
    "pull_request": ("pull_requests",),
    "pull_request_review": ("pull_requests",),
    "pull_request_review_comment": ("pull_requests",),
    "pull_request_review_thread": ("pull_requests",),
    "push": ("contents",),
    "release": ("contents",),
    "repository": ("metadata",),
    "status": ("statuses",),
    "workflow_run": ("actions",),
}
MANIFEST_KEYS = {
    "name",
    "url",
    "hook_attributes",
    "redirect_url",
    "callback_urls",
    "setup_url",
    "description",
    "public",
    "default_events",
    "default_permissions",
    "request_oauth_on_install",
    "setup_on_update",
}
HOOK_KEYS = {"url", "active"}
MAX_NAME = 34  # GitHub's limit on App names
CODE_TTL = 3600.0  # a conversion code is good for one hour
ORG_NEW = re.compile(r"^/organizations/(?P<org>[^/]+)/settings/apps/new$")
INSTALL = re.compile(r"^/apps/(?P<slug>[^/]+)/installations/new$")
CONFIRM = "/settings/apps/new/confirm"
# Every path the web side answers (the rest of the fake's paths are REST or git).
WEB_PATH = re.compile(
    r"^/(?:settings/apps/new(?:/confirm)?|organizations/[^/]+/settings/apps/new"
    r"|apps/[^/]+/installations/new)$"
)

Page = tuple[int, str, dict[str, str]]


class ManifestInvalid(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _is_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def validate_manifest(text: str) -> Json:
    """The manifest as an object, or ManifestInvalid listing every problem."""
    try:
        manifest = json.loads(text)
    except ValueError:
        raise ManifestInvalid(["the manifest is not valid JSON"]) from None
    if not isinstance(manifest, dict):
        raise ManifestInvalid(["the manifest must be a JSON object"])
    problems: list[str] = []
    problems += [f"unknown manifest key {k!r}" for k in sorted(set(manifest) - MANIFEST_KEYS)]
    if not _is_url(manifest.get("url")):
        problems.append("url (the App's homepage) must be an http(s) URL")
    if not _is_url(manifest.get("redirect_url")):
        problems.append("redirect_url must be an http(s) URL")
    name = manifest.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME):
        problems.append(f"name must be a string of at most {MAX_NAME} characters")
    for key in ("description", "setup_url"):
        if key in manifest and not isinstance(manifest[key], str):
            problems.append(f"{key} must be a string")
    for key in ("public", "request_oauth_on_install", "setup_on_update"):
        if key in manifest and not isinstance(manifest[key], bool):
            problems.append(f"{key} must be true or false")
    callbacks = manifest.get("callback_urls", [])
    if not isinstance(callbacks, list) or len(callbacks) > 10 or not all(map(_is_url, callbacks)):
        problems.append("callback_urls must be a list of at most 10 http(s) URLs")
    hook = manifest.get("hook_attributes")
    hook_url = None
    if hook is not None:
        if not isinstance(hook, dict):
            problems.append("hook_attributes must be an object")
        else:
            problems += [
                f"unknown hook_attributes key {k!r}" for k in sorted(set(hook) - HOOK_KEYS)
            ]
            if not _is_url(hook.get("url")):
                problems.append("hook_attributes.url must be an http(s) URL")
            else:
                hook_url = hook["url"]
            if "active" in hook and not isinstance(hook["active"], bool):
                problems.append("hook_attributes.active must be true or false")
    permissions = manifest.get("default_permissions", {})
    if not isinstance(permissions, dict):
        problems.append("default_permissions must be an object")
        permissions = {}
    for perm, level in permissions.items():
        if perm not in PERMISSIONS:
            problems.append(f"unknown permission {perm!r}")
        elif level not in PERMISSIONS[perm]:
            problems.append(f"permission {perm} cannot be {level!r}")
    events = manifest.get("default_events", [])
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        problems.append("default_events must be a list of event names")
        events = []
    for event in events:
        if event not in EVENTS:
            problems.append(f"unknown event {event!r}")
        elif not any(p in permissions or p == "metadata" for p in EVENTS[event]):
            problems.append(
                f"the event {event} needs one of the permissions {', '.join(EVENTS[event])}"
            )
    if events and hook_url is None:
        problems.append("default_events need a webhook: hook_attributes.url is missing")
    if problems:
        raise ManifestInvalid(problems)
    return manifest


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@dataclass
class Pending:
    """A manifest accepted and waiting on the confirm page."""

    manifest: Json
    state: str | None
    owner: str


@dataclass
class Registration:
    """An App registered from a manifest; `code` is exchanged once for its secrets."""

    app: App
    code: str
    pem: str
    client_secret: str
    webhook_secret: str | None
    hook_url: str | None
    expires_ts: float
    converted: bool = False
    manifest: Json = field(default_factory=dict)


class ManifestFlow:
    """The fake's manifest-flow state; every method runs with the fake's lock held."""

    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake
        self.signed_in = "octocat"  # the person whose browser is on the fake's web pages
        self.code_ttl = CODE_TTL
        self.pending: dict[str, Pending] = {}
        self.registrations: list[Registration] = []

    # --- pages ------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, str], raw: bytes, ctype: str) -> Page:
        fake = self.fake
        if path == CONFIRM:
            if method != "POST":
                return page(405, "Method not allowed", "<p>POST only.</p>")
            form = _form(raw, ctype)
            if form is None:
                return page(
                    415, "Unsupported form", "<p>Send application/x-www-form-urlencoded.</p>"
                )
            return self.confirm(form.get("registration", ""), form.get("name", ""))
        match = INSTALL.match(path)
        if match is not None:
            if match.group("slug") != fake.app.slug:
                return page(404, "Not found", "<p>No such GitHub App.</p>")
            name = html.escape(fake.app.name)
            return page(200, f"Install {name}", f"<h1>Install {name}</h1>")
        org_match = ORG_NEW.match(path)
        if path != "/settings/apps/new" and org_match is None:
            return page(404, "Not found", "<p>Not found.</p>")
        owner = self.signed_in
        if org_match is not None:
            org = fake.user(org_match.group("org"))
            if org is None or org.type != "Organization":
                return page(404, "Not found", "<p>No such organization.</p>")
            owner = org.login
        if method == "GET":
            return page(
                200,
                "Register new GitHub App",
                "<h1>Register new GitHub App</h1>"
                "<p>The fake registers Apps from a manifest only: POST a form field"
                " <code>manifest</code> here.</p>",
            )
        if method != "POST":
            return page(405, "Method not allowed", "<p>GET or POST only.</p>")
        form = _form(raw, ctype)
        if form is None:
            return page(415, "Unsupported form", "<p>Send application/x-www-form-urlencoded.</p>")
        if "manifest" not in form:
            return page(422, "Invalid manifest", "<p>No <code>manifest</code> field was sent.</p>")
        try:
            manifest = validate_manifest(form["manifest"])
        except ManifestInvalid as exc:
            items = "".join(f"<li>{html.escape(p)}</li>" for p in exc.problems)
            return page(
                422, "Invalid manifest", f"<h1>Invalid GitHub App manifest</h1><ul>{items}</ul>"
            )
        token = secrets.token_urlsafe(24)
        self.pending[token] = Pending(manifest, query.get("state"), owner)
        name = html.escape(str(manifest.get("name") or ""), quote=True)
        return page(
            200,
            "Create GitHub App",
            f"<h1>Create GitHub App for {html.escape(owner)}</h1>"
            f'<form method="post" action="{CONFIRM}">'
            f'<input type="hidden" name="registration" value="{token}">'
            f'<label>GitHub App name <input name="name" value="{name}"></label>'
            '<button type="submit">Create GitHub App</button></form>',
        )

    def confirm(self, token: str, name: str) -> Page:
        pending = self.pending.get(token)
        if pending is None:
            return page(404, "Not found", "<p>This registration is unknown or was used.</p>")
        name = name.strip()
        taken = {self.fake.app.name.lower()} | {r.app.name.lower() for r in self.registrations}
        slugs = {self.fake.app.slug} | {r.app.slug for r in self.registrations}
        if not name or len(name) > MAX_NAME or not slugify(name):
            return page(422, "Invalid name", f"<p>Name must be 1 to {MAX_NAME} characters.</p>")
        if name.lower() in taken or slugify(name) in slugs:
            return page(422, "Name taken", "<p>Name is already in use.</p>")
        del self.pending[token]
        registration = self.register(pending, name)
        target = str(pending.manifest["redirect_url"])
        params = {"code": registration.code}
        if pending.state is not None:
            params["state"] = pending.state
        location = target + ("&" if "?" in target else "?") + urlencode(params)
        return 302, "", {"location": location}

    # --- registration and conversion -------------------------------------
    def register(self, pending: Pending, name: str) -> Registration:
        fake = self.fake
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,  # GitHub hands out PKCS#1
            serialization.NoEncryption(),
        )
        manifest = pending.manifest
        permissions = {str(k): str(v) for k, v in manifest.get("default_permissions", {}).items()}
        permissions.setdefault("metadata", "read")
        fake.ensure_user(pending.owner)
        app = App(
            id=fake.next_id(),
            slug=slugify(name),
            client_id="Iv23li" + secrets.token_hex(7),
            name=name,
            owner=pending.owner,
            permissions=permissions,
            events=list(manifest.get("default_events", [])),
            created_at=iso(),
            description=manifest.get("description"),
            external_url=str(manifest["url"]),
        )
        hook = manifest.get("hook_attributes") or {}
        registration = Registration(
            app=app,
            code=secrets.token_hex(20),
            pem=pem.decode(),
            client_secret=secrets.token_hex(20),
            webhook_secret=secrets.token_hex(20) if hook.get("url") else None,
            hook_url=hook.get("url"),
            expires_ts=time.time() + self.code_ttl,
            manifest=manifest,
        )
        self.registrations.append(registration)
        fake.adopt_app(app, pem, key.public_key())
        return registration

    def convert(self, code: str) -> Json | None:
        """The conversion answer for `code`, or None when it is unknown, used or expired."""
        for registration in self.registrations:
            if registration.code != code:
                continue
            if registration.converted or registration.expires_ts <= time.time():
                return None
            registration.converted = True
            data = self.fake.shapes.integration(
                registration.app, self.fake.ensure_user(registration.app.owner)
            )
            data.update(
                installations_count=0,
                client_secret=registration.client_secret,
                webhook_secret=registration.webhook_secret,
                pem=registration.pem,
            )
            return data
        return None


def _form(raw: bytes, ctype: str) -> dict[str, str] | None:
    if ctype.split(";", 1)[0].strip().lower() != "application/x-www-form-urlencoded":
        return None
    parsed = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}


def page(status: int, title: str, body: str) -> Page:
    text = (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>{title} · GitHub (fake)</title></head><body>{body}</body></html>"
    )
    return status, text, {"content-type": "text/html; charset=utf-8"}
