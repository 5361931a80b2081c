"""A poster for every item, drawn as SVG from its title, year and genres (nothing fetched).

The same title and genres always give the same picture: the genre picks the palette and
the motif (mountains for adventure, a ringed planet for science fiction, ...), a digest
of the title places the shapes, and the title is set in the picture in the system's
serif face. Items imported from MovieLens get theirs the same way, with no import step.

The markup is a dozen shapes written as strings: no SVG library would make it shorter
or safer, and every piece of text goes through ``xml.sax.saxutils.escape``.
"""

from __future__ import annotations

import hashlib
import random
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

WIDTH, HEIGHT = 200, 300
FONT = "Georgia, 'DejaVu Serif', 'Times New Roman', serif"


@dataclass(frozen=True)
class Style:
    top: str  # background gradient, top to bottom
    bottom: str
    accent: str
    ink: str  # the title's colour; at least 4.5:1 on both background colours
    motif: str
    says: str  # what the motif shows, for the picture's alt text


# fmt: off
_STYLES = {
    "Action": Style("#3b0d0c", "#1a0505", "#e4572e", "#fff4e8",
        "slashes", "red slashes"),
    "Adventure": Style("#0f3b4a", "#0a1f29", "#f2b134", "#fff8e6",
        "mountains", "mountains under a sun"),
    "Animation": Style("#2a2f7a", "#151845", "#ffb3c6", "#ffffff",
        "bubbles", "bright bubbles"),
    "Children's": Style("#1f4d7a", "#0e2740", "#ffd166", "#ffffff",
        "bubbles", "bright bubbles"),
    "Comedy": Style("#4a2a6b", "#24123a", "#ffd23f", "#ffffff",
        "confetti", "confetti"),
    "Crime": Style("#1c1c1c", "#0b0b0b", "#c9a227", "#f5f0e1",
        "blinds", "light through blinds"),
    "Film-Noir": Style("#222222", "#050505", "#d9d9d9", "#ffffff",
        "blinds", "light through blinds"),
    "Documentary": Style("#1d3b2a", "#0d1f16", "#9ad1a0", "#f0fff3",
        "grid", "a lens over a grid"),
    "Drama": Style("#3a2e4f", "#1b1526", "#f4a261", "#fff5ec",
        "horizon", "a low sun over water"),
    "Fantasy": Style("#22164a", "#0d0824", "#c6b4ff", "#ffffff",
        "moon", "a crescent moon and stars"),
    "Horror": Style("#2b0a0a", "#000000", "#d8d2c4", "#fbeee0",
        "woods", "bare trees under a pale moon"),
    "Musical": Style("#4b1248", "#220720", "#ff8fab", "#ffffff",
        "waves", "sound waves"),
    "Mystery": Style("#14213d", "#070d1c", "#fca311", "#ffffff",
        "target", "rings around a point"),
    "Romance": Style("#5c1a33", "#2d0a18", "#ff8fa3", "#fff0f3",
        "hearts", "two overlapping circles"),
    "Sci-Fi": Style("#0b1d3a", "#02060f", "#5bc0eb", "#eaf6ff",
        "planet", "a ringed planet in the stars"),
    "Thriller": Style("#1f2933", "#0b0f14", "#e63946", "#ffffff",
        "target", "rings around a point"),
    "War": Style("#2f3a22", "#141a0e", "#c2b280", "#f7f3e3",
        "chevrons", "chevrons"),
    "Western": Style("#5a2d0c", "#2a1405", "#f6bd60", "#fff5e6",
        "mesa", "a mesa under a big sun"),
}
# fmt: on
_DEFAULT = Style("#283044", "#10141e", "#8fb8de", "#ffffff", "bubbles", "soft circles")
# With several genres, the most telling picture wins: a horror comedy gets the woods.
_PRIORITY = (
    "Horror", "Sci-Fi", "Fantasy", "Animation", "Documentary", "Western", "War", "Musical",
    "Film-Noir", "Crime", "Mystery", "Thriller", "Romance", "Comedy", "Adventure", "Action",
    "Drama", "Children's",
)  # fmt: skip


def main_genre(genres: Iterable[str]) -> str | None:
    names = set(genres)
    for name in _PRIORITY:
        if name in names:
            return name
    return min(names) if names else None


def style_for(genres: Iterable[str]) -> Style:
    return _STYLES.get(main_genre(genres) or "", _DEFAULT)


def digest(title: str, year: int | None, genres: Iterable[str]) -> str:
    """A short fingerprint of what the poster is drawn from: the URL's cache key."""
    text = "\x1f".join([title, str(year or ""), *sorted(genres)])
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def alt_text(title: str, genres: Iterable[str]) -> str:
    return f"Poster for {title}: {style_for(genres).says}"


def _title_lines(title: str) -> tuple[list[str], int]:
    """The title broken into at most four lines, and a font size that fits the width."""
    for width in (12, 15, 18, 22):
        lines = textwrap.wrap(title, width=width, break_long_words=True) or [""]
        if len(lines) <= 4:
            break
    else:
        lines = [*lines[:3], textwrap.shorten(" ".join(lines[3:]), width=22, placeholder="…")]
    longest = max(len(line) for line in lines)
    # Bold serif letters average about 0.62 em (DejaVu Serif, measured in Chromium);
    # 180 of the 200 units are usable.
    size = int(max(11, min(30, 180 / (0.62 * max(longest, 1)))))
    return lines, size


def _starfield(r, count: int, smallest: float, spread: float) -> list[str]:
    """``count`` white dots scattered over the picture: the night sky of two motifs."""
    return [
        f'<circle cx="{int(r() * 200)}" cy="{int(r() * 200)}" '
        f'r="{smallest + r() * spread:.1f}" fill="#fff"/>'
        for _ in range(count)
    ]


def _motif(kind: str, accent: str, rng: random.Random) -> list[str]:
    r = rng.random
    shapes = []
    if kind == "slashes":
        for _ in range(4):
            x = int(r() * 220) - 20
            w = 8 + int(r() * 22)
            shapes.append(
                f'<polygon points="{x},0 {x + w},0 {x + w - 90},210 {x - 90},210" '
                f'fill="{accent}" opacity="{0.35 + r() * 0.5:.2f}"/>'
            )
    elif kind == "mountains":
        cx = 40 + int(r() * 120)
        shapes.append(f'<circle cx="{cx}" cy="{60 + int(r() * 30)}" r="26" fill="{accent}"/>')
        for layer, opacity in ((0, 0.45), (1, 0.8)):
            peak = 30 + int(r() * 140)
            top = 80 + layer * 40 + int(r() * 30)
            shapes.append(
                f'<polygon points="-10,210 {peak},{top} {peak + 60},{top + 40} '
                f'210,{150 + layer * 20} 210,210" fill="#0b1418" opacity="{opacity}"/>'
            )
    elif kind == "bubbles":
        colours = (accent, "#7bdff2", "#b2f7ef", "#f7d6e0", "#f2b5d4")
        for index in range(7):
            shapes.append(
                f'<circle cx="{int(r() * 200)}" cy="{int(r() * 190)}" r="{10 + int(r() * 34)}" '
                f'fill="{colours[index % len(colours)]}" opacity="{0.55 + r() * 0.4:.2f}"/>'
            )
    elif kind == "confetti":
        colours = (accent, "#ff6b6b", "#4ecdc4", "#ffffff")
        for index in range(18):
            x, y = int(r() * 190), int(r() * 190)
            shapes.append(
                f'<rect x="{x}" y="{y}" width="9" height="4" fill="{colours[index % 4]}" '
                f'transform="rotate({int(r() * 180)} {x + 4} {y + 2})"/>'
            )
    elif kind == "blinds":
        shapes.append(
            f'<circle cx="{60 + int(r() * 80)}" cy="90" r="70" fill="{accent}" opacity=".25"/>'
        )
        for row in range(8):
            shapes.append(
                f'<rect x="0" y="{14 + row * 24}" width="200" height="9" fill="{accent}" '
                f'opacity="{0.15 + 0.05 * (row % 3):.2f}"/>'
            )
    elif kind == "grid":
        for step in range(0, 201, 25):
            shapes.append(f'<path d="M{step} 0V210M0 {step}H200" stroke="{accent}" opacity=".2"/>')
        cx, cy = 50 + int(r() * 100), 60 + int(r() * 80)
        shapes.append(
            f'<circle cx="{cx}" cy="{cy}" r="38" fill="none" stroke="{accent}" stroke-width="6"/>'
        )
    elif kind == "horizon":
        y = 120 + int(r() * 40)
        shapes.append(f'<circle cx="{50 + int(r() * 100)}" cy="{y}" r="44" fill="{accent}"/>')
        shapes.append(
            f'<rect x="0" y="{y}" width="200" height="{210 - y}" fill="#0e0a16" opacity=".8"/>'
        )
        for line in range(3):
            shapes.append(
                f'<path d="M{20 + line * 15} {y + 12 + line * 14}h{120 - line * 30}" '
                f'stroke="{accent}" stroke-width="3" opacity=".6"/>'
            )
    elif kind == "moon":
        cx, cy = 60 + int(r() * 80), 70 + int(r() * 30)
        shapes.append(f'<circle cx="{cx}" cy="{cy}" r="36" fill="{accent}"/>')
        shapes.append(f'<circle cx="{cx + 16}" cy="{cy - 10}" r="32" fill="#1a1038"/>')
        shapes.extend(_starfield(r, 12, 1.0, 1.5))
    elif kind == "woods":
        shapes.append(
            f'<circle cx="{50 + int(r() * 100)}" cy="70" r="34" fill="{accent}" opacity=".85"/>'
        )
        for _ in range(6):
            x = int(r() * 200)
            shapes.append(
                f'<path d="M{x} 210V{60 + int(r() * 60)}'
                f"M{x} {120 + int(r() * 30)}l-{12 + int(r() * 14)} -26"
                f'M{x} {100 + int(r() * 30)}l{10 + int(r() * 14)} -22" stroke="#050505" '
                'stroke-width="5" stroke-linecap="round"/>'
            )
    elif kind == "waves":
        for line in range(5):
            y = 40 + line * 30 + int(r() * 10)
            shapes.append(
                f'<path d="M0 {y}q25 -{14 + line * 3} 50 0t50 0t50 0t50 0" fill="none" '
                f'stroke="{accent}" stroke-width="4" opacity="{0.4 + line * 0.12:.2f}"/>'
            )
    elif kind == "target":
        cx, cy = 60 + int(r() * 80), 80 + int(r() * 50)
        for ring in range(5, 0, -1):
            shapes.append(
                f'<circle cx="{cx}" cy="{cy}" r="{ring * 16}" fill="none" stroke="{accent}" '
                f'stroke-width="3" opacity="{0.2 + (5 - ring) * 0.18:.2f}"/>'
            )
        shapes.append(f'<circle cx="{cx}" cy="{cy}" r="5" fill="{accent}"/>')
    elif kind == "hearts":
        cx, cy = 70 + int(r() * 60), 90 + int(r() * 30)
        shapes.append(f'<circle cx="{cx - 22}" cy="{cy}" r="44" fill="{accent}" opacity=".7"/>')
        shapes.append(f'<circle cx="{cx + 22}" cy="{cy}" r="44" fill="#ffd6e0" opacity=".55"/>')
    elif kind == "planet":
        shapes.extend(_starfield(r, 16, 0.8, 1.4))
        cx, cy = 60 + int(r() * 80), 80 + int(r() * 40)
        shapes.append(f'<circle cx="{cx}" cy="{cy}" r="38" fill="{accent}"/>')
        shapes.append(
            f'<ellipse cx="{cx}" cy="{cy}" rx="66" ry="14" fill="none" stroke="#eaf6ff" '
            f'stroke-width="3" transform="rotate(-18 {cx} {cy})"/>'
        )
    elif kind == "chevrons":
        for row in range(5):
            y = 30 + row * 34
            shapes.append(
                f'<path d="M30 {y + 24}l70 -24 70 24" fill="none" stroke="{accent}" '
                f'stroke-width="9" opacity="{0.3 + row * 0.14:.2f}"/>'
            )
    elif kind == "mesa":
        shapes.append(f'<circle cx="{50 + int(r() * 100)}" cy="110" r="54" fill="{accent}"/>')
        top = 130 + int(r() * 20)
        left = 20 + int(r() * 60)
        shapes.append(
            f'<polygon points="-10,210 {left},{top + 10} {left + 10},{top} {left + 70},{top} '
            f'{left + 85},{top + 20} 210,{top + 30} 210,210" fill="#2a1405"/>'
        )
    return shapes


def poster_svg(*, title: str, year: int | None, genres: Iterable[str]) -> str:
    """The poster as an SVG document (200 x 300 units; scales to any size)."""
    genres = sorted(genres)
    style = style_for(genres)
    seed = int(digest(title, year, genres), 16)
    rng = random.Random(seed)
    lines, size = _title_lines(title)
    label = (main_genre(genres) or "Film").upper()
    line_height = size * 1.1
    first = 262 - line_height * (len(lines) - 1)
    text = "".join(
        f'<tspan x="100" y="{first + n * line_height:.1f}">{escape(line)}</tspan>'
        for n, line in enumerate(lines)
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" '
        f"aria-label={quoteattr(alt_text(title, genres))}>",
        f"<title>{escape(title)}</title>",
        '<defs><linearGradient id="bg" x1="0" y1="0" x2="0" y2="1">'
        f'<stop offset="0" stop-color="{style.top}"/><stop offset="1" stop-color="{style.bottom}"/>'
        "</linearGradient></defs>",
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="url(#bg)"/>',
        *_motif(style.motif, style.accent, rng),
        # A dark band under the title keeps it legible whatever the motif drew there.
        f'<rect y="{first - size - 14:.0f}" width="{WIDTH}" height="{HEIGHT}" '
        f'fill="{style.bottom}" opacity=".82"/>',
        f'<rect width="{WIDTH}" height="36" fill="{style.bottom}" opacity=".7"/>',
        f'<text x="100" y="24" fill="{style.accent}" font-family="{FONT}" font-size="11" '
        f'letter-spacing="3" text-anchor="middle">{escape(label)}</text>',
        f'<text fill="{style.ink}" font-family="{FONT}" font-size="{size}" font-weight="700" '
        f'text-anchor="middle">{text}</text>',
    ]
    if year:
        parts.append(
            f'<text x="100" y="288" fill="{style.accent}" font-family="{FONT}" font-size="11" '
            f'text-anchor="middle">{year}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
