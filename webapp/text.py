"""Text for st.markdown: every string is escaped, so nothing typed or loaded can become markup."""

from __future__ import annotations

import re
from typing import Iterable

from models.plan import CitationRef

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def esc(text: object) -> str:
    """Escape Markdown (and with it any HTML) so text is shown as typed.

    ':' is escaped too, so that text like ':red[...]' or ':material/x:' cannot style itself.
    """
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def listing(names: Iterable[str], word: str = "") -> str:
    """'A', 'A and B', 'A, B and C'; with `word` ('between') before two or more, 'on' before one."""
    names = list(names)
    if not names:
        return ""
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    if not word:
        return joined
    return f"{word} {joined}" if len(names) > 1 else f"on {joined}"


def cites(refs: Iterable[CitationRef]) -> str:
    """Citation keys, each a link when the source has an address."""
    return ", ".join(f"[{esc(r.key)}]({r.url})" if r.url and _safe_url(r.url) else esc(f"[{r.key}]") for r in refs)


def _safe_url(url: str) -> bool:
    return url.startswith(("https://", "http://")) and not any(c in url for c in " ()<>\"'")


_URL = re.compile(r"https?://[^\s<>\"'()]+")


def esc_links(text: object) -> str:
    """Like esc, but each web address in the text is a clickable link showing the address as written."""
    out, last = [], 0
    text = str(text)
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;:")
        end = match.start() + len(url)
        out += [esc(text[last:match.start()]), f"[{esc(url)}]({url})" if _safe_url(url) else esc(url)]
        last = end
    out.append(esc(text[last:]))
    return "".join(out)
