"""Text for st.markdown and for st.html: every string is escaped, so nothing typed or loaded can become markup."""

from __future__ import annotations

import html
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


def _safe_url(url: str) -> bool:
    return url.startswith(("https://", "http://")) and not any(c in url for c in " ()<>\"'")


_URL = re.compile(r"https?://[^\s<>\"'()]+")


# --- HTML, for the answer drawn as a few st.html blocks (webapp/results.py) ---------------------------

def h(text: object) -> str:
    """Escape text for HTML (quotes too), so it is shown as typed and never becomes markup."""
    return html.escape(str(text), quote=True)


def link(url: str, shown: str) -> str:
    """A link that opens in a new tab: a web address, or this page with other query parameters ('?...');
    plain text for anything else."""
    safe = _safe_url(url) or (url.startswith("?") and not any(c in url for c in " <>\"'"))
    return f'<a href="{h(url)}" target="_blank" rel="noopener noreferrer">{shown}</a>' if safe else shown


def h_cites(refs: Iterable[CitationRef]) -> str:
    """Citation keys, each a link when the source has an address."""
    return ", ".join(link(r.url, h(r.key)) if r.url else h(f"[{r.key}]") for r in refs)


def h_links(text: object) -> str:
    """Like h, but each web address in the text is a link showing the address as written."""
    out, last = [], 0
    text = str(text)
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;:")
        out += [h(text[last:match.start()]), link(url, h(url))]
        last = match.start() + len(url)
    out.append(h(text[last:]))
    return "".join(out)


def h_list(items: Iterable[str]) -> str:
    """A bulleted list of HTML items (already escaped); nothing for no items."""
    items = list(items)
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>" if items else ""
