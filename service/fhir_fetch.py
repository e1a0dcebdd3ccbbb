"""Complete a CDS Hooks prefetch from the record's FHIR server when the client allows it.

CDS Hooks lets a client send `fhirServer` with `fhirAuthorization` (an access token) so that the
service can read what the prefetch left out. This module does only that, for the resources the
knowledge uses (the Patient and the Conditions, and the Observations when a detail is read from them):
- a prefetched search Bundle with a `next` link is one page of a longer result: the following pages are
  fetched, their entries appended, until there is no `next` link;
- a prefetch key that is missing (not null: null means "the client holds no data") is searched for.
Without server access, a missing key or an incomplete result stays an error the app answers with
412. Limits, so that a slow or hostile server cannot hold a worker: each request times out after
FETCH_TIMEOUT_S, at most MAX_PAGES pages are followed and each body is at most MAX_PAGE_BYTES. A
`next` link is followed only when it lies under `fhirServer` (the token is never sent elsewhere), and
`fhirServer` must be https, or http on a loopback address. Nothing fetched is logged or stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx

from service.settings import is_loopback

FETCH_TIMEOUT_S = 5.0
MAX_PAGES = 20
MAX_PAGE_BYTES = 4 * 1024 * 1024
SEARCHES = {"patient": "Patient/{id}", "conditions": "Condition?patient={id}",
            "observations": "Observation?patient={id}"}
ACCEPT = "application/fhir+json, application/json;q=0.9"


class FetchError(RuntimeError):
    """The record's server could not give what the call needs (HTTP 502): unreachable, refused, too long."""


class AccessRefused(ValueError):
    """fhirServer is not a server this service will send a token to (HTTP 400)."""


@dataclass(frozen=True)
class FhirAccess:
    """Where to read the record and with which token."""

    base: str
    token: str

    @classmethod
    def of(cls, server: str | None, token: str | None) -> "FhirAccess | None":
        """Access only with both: a client that sends no token has not allowed this service to read its server."""
        if not server or not token:
            return None
        parts = urlsplit(server)
        if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname)):
            raise AccessRefused("fhirServer must be an https URL (http only on this machine)")
        return cls(server.rstrip("/"), token)

    def owns(self, url: str) -> bool:
        return url == self.base or url.startswith(self.base + "/") or url.startswith(self.base + "?")


def _get(client: httpx.Client, access: FhirAccess, url: str) -> dict[str, Any]:
    headers = {"Accept": ACCEPT, "Authorization": f"Bearer {access.token}"}
    try:
        with client.stream("GET", url, headers=headers) as response:
            if response.status_code != 200:
                raise FetchError(f"the record server answered {response.status_code} to a read this call needs")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_PAGE_BYTES:
                    raise FetchError(f"a page from the record server is over {MAX_PAGE_BYTES} bytes")
    except httpx.TimeoutException:
        raise FetchError(f"the record server did not answer within {FETCH_TIMEOUT_S:g} s") from None
    except httpx.HTTPError as error:
        raise FetchError(f"the record server could not be reached ({type(error).__name__})") from None
    try:
        value = json.loads(body)
    except ValueError:
        raise FetchError("the record server sent something that is not JSON") from None
    if not isinstance(value, dict):
        raise FetchError("the record server sent JSON that is not a FHIR resource")
    return value


def _next_link(bundle: dict[str, Any]) -> str | None:
    links = bundle.get("link")
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None


def is_partial(value: Any) -> bool:
    """A search Bundle that is one page of a longer result."""
    return isinstance(value, dict) and value.get("resourceType") == "Bundle" and _next_link(value) is not None


def _complete(client: httpx.Client, access: FhirAccess, bundle: dict[str, Any], key: str) -> dict[str, Any]:
    """The Bundle with the entries of every following page, and no `next` link."""
    entries = list(bundle.get("entry") or [])
    url, pages = _next_link(bundle), 1
    while url is not None:
        if not access.owns(url):
            raise FetchError(f"prefetch {key!r}: the next page lies outside fhirServer; it is not followed")
        pages += 1
        if pages > MAX_PAGES:
            raise FetchError(f"prefetch {key!r}: more than {MAX_PAGES} pages; the record is not read in part")
        page = _get(client, access, url)
        if page.get("resourceType") != "Bundle":
            raise FetchError(f"prefetch {key!r}: a next page is not a Bundle")
        entries += list(page.get("entry") or [])
        url = _next_link(page)
    links = [
        link for link in bundle.get("link") or [] if not (isinstance(link, dict) and link.get("relation") == "next")
    ]
    return {**bundle, "link": links, "entry": entries}


def complete_prefetch(
    prefetch: dict[str, Any] | None, patient_id: str, access: FhirAccess | None,
    keys: tuple[str, ...] = ("patient", "conditions"),
) -> dict[str, Any]:
    """The prefetch with missing keys searched for and paged results completed, when `access` allows.

    Without access the prefetch is returned as it came; the reader then says what is missing (412).
    """
    prefetch = dict(prefetch or {})
    if access is None:
        return prefetch
    wanted = [key for key in keys if key not in prefetch or is_partial(prefetch[key])]
    if not wanted:
        return prefetch
    with httpx.Client(timeout=FETCH_TIMEOUT_S, follow_redirects=False) as client:
        for key in wanted:
            value = prefetch.get(key)
            if key not in prefetch:
                value = _get(client, access, f"{access.base}/{SEARCHES[key].format(id=patient_id)}")
            if is_partial(value):
                value = _complete(client, access, value, key)
            prefetch[key] = value
    return prefetch
