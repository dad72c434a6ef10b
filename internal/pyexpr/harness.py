"""pyexpr harness: evaluates authentik property mapping expressions the way authentik does.

Everything arrives as one JSON document on stdin and leaves as one JSON document on stdout;
no data is ever interpolated into code. Standard library only.

Request:  {"mode": "compile" | "regex" | "evaluate",
           "items": [{"expression": str, "user": null | {...}, "provider": {...} | null,
                      "scopes": [str] | null, "request_user": bool, "filename": str}]}
Response: {"results": [{"ok": true, "value": ...}
                       | {"ok": false, "error": {"kind", "type", "message", "line"}}]}

How authentik runs a mapping (authentik/common/expression/evaluator.py, BaseEvaluator, and
authentik/core/expression/evaluator.py, PropertyMappingEvaluator):
  * the context is an ordered dict: "user" (only when a user is given), "http_request" (only
    when an HTTP request is given), "request" (a PolicyRequest), then the keyword arguments
    (for scope mappings "provider" and, when a token is issued, "token");
  * the source is "def handler(<context keys joined by ','>):\n" + textwrap.indent(expr, 4
    spaces) + "\nresult = handler(<same>)", compiled with the mapping name as file name and
    run with exec(code, globals, locals-from-context);
  * save-time validation compiles with a context holding only "request", and the file name
    str(instance): "None" on create, the mapping's stored name on update.
The discovery endpoint (ProviderInfoView.get_claims) evaluates every scope mapping with
user=guardian's get_anonymous_user(): a real, saved User row named "AnonymousUser" that is
"authenticated" in Django's sense and belongs to no group, so ak_is_group_member returns False
for it and an expression naming "token" fails with NameError there. That is what user=null
imitates.
"""

import datetime
import decimal
import ipaddress
import json
import re
import socket
import sys
import textwrap
import traceback
import unicodedata
import uuid

FILENAME = "pyexpr"  # file name given to compile(); authentik uses the mapping's name
VALIDATE_FILENAME = "None"  # authentik validates with PropertyMappingEvaluator(None) on create


class FieldError(Exception):
    """Imitates django.core.exceptions.FieldError for unknown filter keywords."""


class SkipObjectException(Exception):
    """Imitates authentik's SkipObject (a ControlFlowException)."""


class NotSupported(NotImplementedError):
    """Raised by helpers that need authentik's database or services, which this harness lacks."""


# ---- Django-like queryset over groups -------------------------------------------------------

_GROUP_FIELDS = {"pk": "pk", "group_uuid": "pk", "name": "name", "attributes": "attributes"}
# Real authentik Group fields that this imitation does not know the values of.
_GROUP_FIELDS_UNKNOWN = {
    "is_superuser", "parent", "parents", "children", "users", "roles", "num_pk",
    "ancestor_nodes", "descendant_nodes", "policybindingmodel_ptr", "pbm_uuid",
}
_LOOKUPS = {
    "exact", "iexact", "contains", "icontains", "startswith", "istartswith", "endswith",
    "iendswith", "in", "regex", "iregex", "isnull",
}


def _norm_uuid(value):
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return str(value)


def _lookup(actual, op, wanted):
    if op == "isnull":
        return (actual is None) == bool(wanted)
    if actual is None:
        return False
    if op == "exact":
        return actual == wanted
    if op == "in":
        return actual in list(wanted)
    a, w = str(actual), str(wanted)
    if op == "iexact":
        return a.lower() == w.lower()
    if op == "contains":
        return w in a
    if op == "icontains":
        return w.lower() in a.lower()
    if op == "startswith":
        return a.startswith(w)
    if op == "istartswith":
        return a.lower().startswith(w.lower())
    if op == "endswith":
        return a.endswith(w)
    if op == "iendswith":
        return a.lower().endswith(w.lower())
    if op == "regex":
        return re.search(w, a) is not None
    return re.search(w, a, re.IGNORECASE) is not None  # iregex


def _predicate(key, wanted):
    """Compiles one Django filter keyword (e.g. name__iexact="x") into a test on a Group."""
    parts = key.split("__")
    field = parts[0]
    if field not in _GROUP_FIELDS:
        if field in _GROUP_FIELDS_UNKNOWN:
            raise NotSupported(f"pyexpr: filtering groups on {field!r} is not imitated")
        choices = ", ".join(sorted(set(_GROUP_FIELDS) | _GROUP_FIELDS_UNKNOWN))
        raise FieldError(f"Cannot resolve keyword '{field}' into field. Choices are: {choices}")
    rest = parts[1:]
    op = "exact"
    if rest and rest[-1] in _LOOKUPS:
        op = rest.pop()
    if field == "attributes":
        def test(group):
            actual = group.attributes
            for k in rest:
                if not isinstance(actual, dict) or k not in actual:
                    return op == "isnull" and bool(wanted)
                actual = actual[k]
            return _lookup(actual, op, wanted)
        return test
    if rest:
        raise FieldError(f"Unsupported lookup '{'__'.join(rest)}' for field '{field}'")
    if field == "name":
        if op == "exact":
            return lambda group: group.name == wanted
        return lambda group: _lookup(group.name, op, wanted)
    if op == "in":
        wanted = [_norm_uuid(w) for w in wanted]
    elif op != "isnull":
        wanted = _norm_uuid(wanted)
    return lambda group: _lookup(_norm_uuid(group.pk), op, wanted)


class QuerySet:
    """The part of Django's QuerySet API expressions use on groups."""

    def __init__(self, items):
        self._items = list(items)

    def all(self):
        return QuerySet(self._items)

    def filter(self, **kw):
        tests = [_predicate(k, v) for k, v in kw.items()]
        return QuerySet(g for g in self._items if all(t(g) for t in tests))

    def exclude(self, **kw):
        keep = self.filter(**kw)._items
        return QuerySet(g for g in self._items if g not in keep)

    def exists(self):
        return bool(self._items)

    def count(self):
        return len(self._items)

    def first(self):
        return self._items[0] if self._items else None

    def order_by(self, *fields):
        items = list(self._items)
        for f in reversed(fields):
            desc = f.startswith("-")
            items.sort(key=lambda g: getattr(g, f.lstrip("-")), reverse=desc)
        return QuerySet(items)

    def values_list(self, *fields, flat=False):
        if flat:
            return [getattr(g, fields[0]) for g in self._items]
        return [tuple(getattr(g, f) for f in fields) for g in self._items]

    def __iter__(self):
        return iter(self._items)

    def __len__(self):
        return len(self._items)

    def __bool__(self):
        return bool(self._items)

    def __getitem__(self, i):
        return self._items[i]


class Group:
    """An authentik group as an expression sees it."""

    def __init__(self, d):
        self.pk = self.group_uuid = d.get("pk") or ""
        self.name = d.get("name") or ""
        self.attributes = d.get("attributes") or {}
        self.direct = bool(d.get("direct"))

    def __str__(self):
        return f"Group {self.name}"


def _merge(base, other):
    """deepmerge's always_merger: dicts merge, lists append, anything else is overridden."""
    for k, v in other.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        elif isinstance(v, list) and isinstance(base.get(k), list):
            base[k] = base[k] + v
        else:
            base[k] = v
    return base


class User:
    """An authentik User row. Groups hold direct AND ancestor groups (the caller resolves them):
    all_groups() returns them all, as the real model's does; groups / ak_groups (the
    membership relation) only the direct ones."""

    def __init__(self, d):
        self.pk = self.id = d.get("pk")
        self.username = d.get("username") or ""
        self.name = d.get("name") or ""
        self.email = d.get("email") or ""
        self.is_active = bool(d.get("is_active"))
        self.attributes = d.get("attributes") or {}
        self.is_authenticated = True  # Django's AbstractBaseUser: always True for a User row
        self.is_anonymous = False
        self._groups = [Group(g) for g in (d.get("groups") or [])]
        self.groups = self.ak_groups = QuerySet([g for g in self._groups if g.direct])
        self._names = {g.name for g in self._groups}

    def all_groups(self):
        return QuerySet(self._groups)

    def group_attributes(self, request=None):
        final = {}
        for g in sorted(self._groups, key=lambda g: g.name):
            _merge(final, json.loads(json.dumps(g.attributes)))
        return _merge(final, json.loads(json.dumps(self.attributes)))

    def get_username(self):
        return self.username

    def __str__(self):
        return self.username


# guardian's anonymous user as authentik stores it: a saved row with no groups.
ANONYMOUS = {"pk": 1, "username": "AnonymousUser", "name": "", "email": "", "is_active": True,
             "attributes": {}, "groups": []}


class DjangoAnonymousUser:
    """django.contrib.auth.models.AnonymousUser: what the HTTP request's user is for the
    discovery and token endpoints (no session)."""

    id = pk = None
    username = ""
    is_active = False
    is_authenticated = False
    is_anonymous = True

    def __str__(self):
        return "AnonymousUser"


class Record:
    """Attribute access over a JSON object (provider, token, HTTP request)."""

    def __init__(self, d):
        self.__dict__.update(d)

    def __repr__(self):
        return f"Record({self.__dict__!r})"


class PolicyRequest:
    """authentik.policies.types.PolicyRequest as PropertyMappingEvaluator fills it."""

    def __init__(self, user, http_request, obj, context):
        self.user = user
        self.http_request = http_request
        self.obj = obj
        self.context = context
        self.debug = False

    def __str__(self):
        return f"<PolicyRequest user={self.user}>"


class Logger:
    """ak_logger: a structlog bound logger; events go to stderr."""

    def _log(self, level, event="", *args, **kw):
        print(json.dumps({"level": level, "event": str(event), **{k: str(v) for k, v in kw.items()}}),
              file=sys.stderr)

    def __getattr__(self, level):
        if level in ("debug", "info", "warning", "warn", "error", "exception", "critical", "msg"):
            return lambda event="", *a, **kw: self._log(level, event, *a, **kw)
        raise AttributeError(level)

    def bind(self, **kw):
        return self


# ---- globals ----------------------------------------------------------------------------------


def _unsupported(name):
    def f(*args, **kwargs):
        raise NotSupported(f"pyexpr: {name} needs authentik's server and is not imitated")
    return f


def ak_is_group_member(user, **group_filters):
    if type(user) is User and len(group_filters) == 1 and isinstance(group_filters.get("name"), str):
        return group_filters["name"] in user._names  # the common case, same answer, faster
    return user.all_groups().filter(**group_filters).exists()


def list_flatten(value):
    if isinstance(value, list):
        if len(value) < 1:
            return None
        return value[0]
    return value


def regex_match(value, regex):
    return re.search(regex, value) is not None


def regex_replace(value, regex, repl):
    return re.sub(regex, repl, value)


def slugify(value, allow_unicode=False):
    value = str(value)
    if allow_unicode:
        value = unicodedata.normalize("NFKC", value)
    else:
        value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value.lower())
    return re.sub(r"[-\s]+", "-", value).strip("-_")


def resolve_dns(host, ip_version=None):
    family = {4: socket.AF_INET, 6: socket.AF_INET6}.get(ip_version, 0)
    try:
        return list({str(a[4][0]) for a in socket.getaddrinfo(host or "", None, family=family)})
    except OSError:
        return []


def reverse_dns(ip_addr):
    try:
        return socket.getfqdn(ip_addr)
    except OSError:
        return ip_addr


class _Requests:
    def __getattr__(self, name):
        return _unsupported("requests." + name)


def make_globals():
    return {
        "ak_call_policy": _unsupported("ak_call_policy"),
        "ak_create_event": _unsupported("ak_create_event"),
        "ak_create_jwt": _unsupported("ak_create_jwt"),
        "ak_create_jwt_raw": _unsupported("ak_create_jwt_raw"),
        "ak_is_group_member": ak_is_group_member,
        "ak_logger": Logger(),
        "ak_send_email": _unsupported("ak_send_email"),
        "ak_user_by": _unsupported("ak_user_by"),
        "ak_user_has_authenticator": _unsupported("ak_user_has_authenticator"),
        "ip_address": ipaddress.ip_address,
        "ip_network": ipaddress.ip_network,
        "list_flatten": list_flatten,
        "regex_match": regex_match,
        "regex_replace": regex_replace,
        "requests": _Requests(),
        "resolve_dns": resolve_dns,
        "reverse_dns": reverse_dns,
        "slugify": slugify,
        "SkipObject": SkipObjectException,
    }


# ---- wrapping, compiling, running -------------------------------------------------------------


def wrap(expression, names):
    sig = ",".join(names)
    return f"def handler({sig}):\n" + textwrap.indent(expression, "    ") + f"\nresult = handler({sig})"


def context_for(item):
    """The ordered context PropertyMappingEvaluator builds for a scope mapping."""
    anonymous = item.get("user") is None
    user = User(ANONYMOUS if anonymous else item["user"])
    provider = Record(item.get("provider") or {})
    # preview_user copies the request and sets its user to the previewed one
    # (providers/oauth2/api/providers.py); at the token and discovery endpoints nobody is
    # logged in.
    http_user = user if item.get("request_user") and not anonymous else DjangoAnonymousUser()
    http_request = Record({"method": "GET", "path": "", "GET": {}, "POST": {}, "headers": {},
                           "META": {}, "user": http_user})
    kwargs = {"provider": provider}
    if not anonymous:  # a token exists only when one is being issued
        kwargs["token"] = Record({"user": user, "provider": provider,
                                  "scope": list(item.get("scopes") or [])})
    req = PolicyRequest(user, http_request, Record({"name": FILENAME}), dict(kwargs))
    return {"user": user, "http_request": http_request, "request": req, **kwargs}


def _syntax_error(exc):
    line = getattr(exc, "lineno", None)
    return {"kind": "syntax", "type": type(exc).__name__, "message": str(exc),
            "line": line - 1 if isinstance(line, int) and line > 1 else 0}


def _runtime_error(exc):
    line = 0
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == FILENAME and frame.f_code.co_name == "handler":
            line = lineno - 1
    return {"kind": "runtime", "type": type(exc).__name__, "message": str(exc), "line": line}


def _json_default(obj):
    # What Django's JSON encoder adds over json; anything else is not serialisable.
    if isinstance(obj, (datetime.datetime, datetime.date, datetime.time)):
        return obj.isoformat()
    if isinstance(obj, (decimal.Decimal, uuid.UUID)):
        return str(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def encode_value(value):
    try:
        return {"ok": True, "value": json.loads(json.dumps(value, default=_json_default,
                                                           allow_nan=False))}
    except (TypeError, ValueError) as exc:
        return {"ok": False, "error": {"kind": "result", "type": type(exc).__name__,
                                       "message": str(exc), "line": 0}}


def run_compile(item):
    try:
        compile(wrap(item.get("expression") or "", ["request"]),
                item.get("filename") or VALIDATE_FILENAME, "exec")
        return {"ok": True, "value": None}
    except (SyntaxError, ValueError) as exc:
        return {"ok": False, "error": _syntax_error(exc)}
    except Exception as exc:  # e.g. RecursionError on absurd nesting
        return {"ok": False, "error": {"kind": "syntax", "type": type(exc).__name__,
                                       "message": str(exc), "line": 0}}


def run_regex(item):
    """A regex-mode redirect URI must compile with Python's re (providers/oauth2/api/
    providers.py, OAuth2ProviderSerializer.validate_redirect_uris)."""
    try:
        re.compile(item.get("expression") or "")
        return {"ok": True, "value": None}
    except (re.error, RecursionError, OverflowError) as exc:
        return {"ok": False, "error": {"kind": "syntax", "type": type(exc).__name__,
                                       "message": str(exc), "line": 0}}


def run_evaluate(item, cache):
    context = context_for(item)
    names = list(context)
    key = (item.get("expression") or "", tuple(names))
    code = cache.get(key)
    if code is None:
        try:
            code = compile(wrap(key[0], names), FILENAME, "exec")
        except (SyntaxError, ValueError) as exc:
            return {"ok": False, "error": _syntax_error(exc)}
        cache[key] = code
    try:
        local = dict(context)
        exec(code, make_globals(), local)  # noqa: S102 - this harness exists to do exactly this
        return encode_value(local["result"])
    except (Exception, SystemExit) as exc:  # sys.exit() in an expression is a failure too
        return {"ok": False, "error": _runtime_error(exc)}


def main():
    out = sys.stdout
    sys.stdout = sys.stderr  # print() in an expression must not corrupt the reply
    req = json.loads(sys.stdin.buffer.read())
    cache = {}
    run = {"compile": run_compile, "regex": run_regex}.get(req.get("mode")) or \
        (lambda it: run_evaluate(it, cache))
    results = [run(item) for item in req.get("items") or []]
    json.dump({"results": results}, out, ensure_ascii=True)
    out.flush()


if __name__ == "__main__":
    main()
