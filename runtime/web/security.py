"""Security headers of the web pages: a strict Content-Security-Policy and friends.

Templates carry no inline script, style or event handler; htmx is configured not to
inject its indicator style and not to evaluate code, and Alpine.js is the CSP build,
so scripts and styles come only from this server.
"""

from __future__ import annotations

from starlette.responses import Response

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def secured(response: Response) -> Response:
    """`response` with the web pages' security headers."""
    response.headers.update(HEADERS)
    return response
