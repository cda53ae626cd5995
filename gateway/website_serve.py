"""The static website endpoint: GET and HEAD on `<bucket>.<website_domain>`, answered as
AWS's website endpoints answer them (gateway.website holds the configuration and the
routing decisions).

- Requests are anonymous (a signature is not looked at): what a website serves must be
  public, through a public-read ACL or a bucket policy, as on AWS.
- The root and every key ending in "/" serve the index document; a key with no object
  whose folder has one is redirected to the folder (302, as AWS does).
- Redirects: every request (RedirectAllRequestsTo), routing rules (by key prefix before
  the lookup, by the error code after it), an object's x-amz-website-redirect-location (301).
- Errors are HTML pages, or the error document (served with the error's status).
- They are metered and audited as S3 GETs and HEADs: the bucket owner pays.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import quote

from aiohttp import web

from gateway import access, errors, request_ids, router, s3xml, website
from gateway.config import Config
from gateway.handlers.objects import head_response, missing_key, send_object
from gateway.headers import WEBSITE_REDIRECT
from gateway.manifest import BucketRecord, Manifest
from gateway.names import check_key
from gateway.state import Ctx, State

_OPS = {"GET": "GetObject", "HEAD": "HeadObject"}


@dataclass(frozen=True)
class Served:
    response: web.StreamResponse
    endpoint: router.Endpoint
    decision: access.Decision | None
    code: str | None                # the S3 error code answered, if any (metrics, audit)


def bucket_of(request: web.Request, config: Config) -> str | None:
    """The bucket whose website a request is for; None for an S3 API request."""
    if not config.website_domain:
        return None
    return router.split_host(request.host, config.website_domain)


async def serve(request: web.Request, state: State, bucket_name: str,
                request_id: str) -> Served:
    path = request.path[1:]             # aiohttp has decoded it; the key as requested
    endpoint = router.Endpoint(_OPS.get(request.method, "GetObject"), bucket_name,
                               path or None)
    site = _Site(request, state, bucket_name, request_id)
    try:
        return await site.answer(path)
    except errors.S3Error as err:
        return Served(html_error(request, err, request_id), endpoint, site.decision,
                      err.code)


class _Site:
    """One website request (the object it asked for, then perhaps its error document)."""

    def __init__(self, request: web.Request, state: State, bucket_name: str,
                 request_id: str) -> None:
        self.request, self.state, self.name, self.request_id = (
            request, state, bucket_name, request_id)
        self.decision: access.Decision | None = None

    async def answer(self, path: str) -> Served:
        op = _OPS.get(self.request.method)
        if op is None:
            raise errors.MethodNotAllowed()
        bucket = await self.state.catalog.find_bucket(self.name)
        if bucket is None:
            raise errors.NoSuchBucket(BucketName=self.name)
        config = bucket.website
        if config is None:
            raise errors.NoSuchWebsiteConfiguration(BucketName=self.name)
        endpoint = router.Endpoint(op, self.name, path or None)
        if config.redirect_all is not None:
            return self._redirect(endpoint, config.redirect_all, path, None)
        rule = website.rule_before(config, path)
        if rule is not None:
            return self._redirect(endpoint, rule.redirect, path, rule.key_prefix or "")
        key = website.index_key(config, path)
        try:
            return await self._object(bucket, router.Endpoint(op, self.name, key), None)
        except errors.S3Error as err:
            return await self._after_error(bucket, config, endpoint, path, err)

    async def _after_error(self, bucket: BucketRecord, config: website.Website,
                           endpoint: router.Endpoint, path: str,
                           err: errors.S3Error) -> Served:
        if isinstance(err, errors.NoSuchKey | errors.AccessDenied) and path and \
                not path.endswith("/") and \
                await self._servable(bucket, website.index_key(config, path + "/")):
            # A folder asked for without its slash: its index document is one step away.
            resp = web.Response(status=302, headers={"Location": "/" + quote(path) + "/"})
            return Served(resp, endpoint, self.decision, None)
        rule = website.rule_after(config, path, err.status)
        if rule is not None:
            return self._redirect(endpoint, rule.redirect, path, rule.key_prefix or "")
        if not config.error_key:
            raise err
        try:
            doc = router.Endpoint("GetObject", self.name, config.error_key)
            served = await self._object(bucket, doc, err.status)
        except errors.S3Error as doc_err:
            raise _DocumentError(err, doc_err) from None
        return Served(served.response, endpoint, self.decision, err.code)

    async def _object(self, bucket: BucketRecord, endpoint: router.Endpoint,
                      status: int | None) -> Served:
        assert endpoint.key is not None
        key = check_key(endpoint.key)
        self.decision = await access.authorize(self.state.catalog, access.request_for(
            endpoint, None, self.request.remote or "", {}, self.request.headers))
        if self.state.meter is not None:
            self.state.meter.bind(self.request, endpoint.op, endpoint, self.decision, None)
        ctx = Ctx(self.request, self.state, endpoint, None, self.decision.acting_tenant,
                  self.request_id, None)
        found = await self.state.catalog.get_object(bucket, key)
        if found is None:
            raise missing_key(ctx, bucket, endpoint.key)    # AccessDenied unless listing is public
        if self.decision.basis is access.Basis.ABSENT:
            raise errors.AccessDenied()         # it appeared after it was authorized missing
        m = found[0]
        if WEBSITE_REDIRECT in m.headers:
            resp = web.Response(status=301, headers={"Location": m.headers[WEBSITE_REDIRECT]})
            return Served(resp, endpoint, self.decision, None)
        return Served(await self._send(ctx, bucket, key, m, status), endpoint,
                      self.decision, None)

    async def _send(self, ctx: Ctx, bucket: BucketRecord, key: bytes, m: Manifest,
                    status: int | None) -> web.StreamResponse:
        if ctx.endpoint.op == "HeadObject" and status is None:
            return head_response(ctx, bucket, key, m)
        return await send_object(ctx, bucket, key, m, status)

    async def _servable(self, bucket: BucketRecord, key: str) -> bool:
        """Whether this request could read `key` (the redirect to a folder tells nothing
        about objects it could not read)."""
        try:
            raw = check_key(key)
            await access.authorize(self.state.catalog, access.request_for(
                router.Endpoint("GetObject", self.name, key), None, self.request.remote or "",
                {}, self.request.headers))
        except errors.S3Error:
            return False
        return await self.state.catalog.get_object(bucket, raw) is not None

    def _redirect(self, endpoint: router.Endpoint, target: website.Redirect, path: str,
                  matched: str | None) -> Served:
        url = website.location(target, path, matched, self.request.host, self.request.scheme)
        resp = web.Response(status=website.redirect_code(target), headers={"Location": url})
        return Served(resp, endpoint, self.decision, None)


class _DocumentError(errors.S3Error):
    """The error, when the error document could not be served either (AWS adds a second
    part to its page for that, naming what went wrong with the document)."""

    def __init__(self, original: errors.S3Error, document: errors.S3Error) -> None:
        super().__init__(original.message)
        self.original, self.document = original, document
        self.code, self.status = original.code, original.status


def html_error(request: web.Request, err: errors.S3Error, request_id: str) -> web.Response:
    """An error as a website answers it: an HTML page, not an XML document."""
    shown = err.original if isinstance(err, _DocumentError) else err
    document = err.document if isinstance(err, _DocumentError) else None
    headers = {"x-amz-error-code": shown.code, "x-amz-error-message": shown.message}
    if request.method == "HEAD":
        return web.Response(status=shown.status, headers=headers)
    return web.Response(status=shown.status, text=error_page(shown, document, request_id),
                        content_type="text/html", headers=headers)


def error_page(err: errors.S3Error, document: errors.S3Error | None,
               request_id: str) -> str:
    """AWS's HTML error page: the status, then what its XML error would say (the code,
    the message, the error's own elements: the Key looked up, the BucketName) and the
    request's ids; then, when the error document could not be served, why (without ids)."""
    title = f"{err.status} {HTTPStatus(err.status).phrase}"
    items = [*_said(err), f"RequestId: {request_id}",
             f"HostId: {request_ids.host_id(request_id)}"]
    body = f"<h1>{s3xml.esc(title)}</h1>\n{_list(items)}"
    if document is not None:
        body += ("<h3>An Error Occurred While Attempting to Retrieve a Custom Error "
                 f"Document</h3>\n{_list(_said(document))}")
    return f"<html>\n<head><title>{s3xml.esc(title)}</title></head>\n<body>\n{body}" \
           "<hr/>\n</body>\n</html>\n"


def _said(err: errors.S3Error) -> list[str]:
    return [f"Code: {err.code}", f"Message: {err.message}",
            *(f"{name}: {value}" for name, value in err.extra.items())]


def _list(items: list[str]) -> str:
    lis = "".join(f"<li>{s3xml.esc(i)}</li>\n" for i in items)
    return f"<ul>\n{lis}</ul>\n"
