"""Small server-rendered charts (inline SVG, no JavaScript library)."""

from __future__ import annotations

from markupsafe import Markup, escape

WIDTH, HEIGHT = 560, 260
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 16, 40


def learning_curve_svg(points: list[tuple[int, float]], *, width: int = WIDTH, height: int = HEIGHT) -> Markup:
    """Held-out accuracy against the number of labels trained on, as an SVG line chart.

    ``points`` are (n_labeled, accuracy) pairs, one per round with a held-out measure.
    """
    if not points:
        return Markup("")
    points = sorted(points)
    x_max = max(n for n, _ in points) or 1
    y_low = min(0.5, min(a for _, a in points))
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM

    def x(n: float) -> float:
        return LEFT + plot_w * n / x_max

    def y(accuracy: float) -> float:
        return TOP + plot_h * (1 - (accuracy - y_low) / (1 - y_low))

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" style="max-width: {width}px" role="img" '
        'aria-label="learning curve: held-out accuracy against labels">'
    ]
    for step in range(6):
        accuracy = y_low + (1 - y_low) * step / 5
        parts.append(f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{y(accuracy):.1f}" y2="{y(accuracy):.1f}" class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y(accuracy) + 4:.1f}" text-anchor="end">{accuracy:.2f}</text>')
    for n in sorted({0, x_max, *(n for n, _ in points)}):
        parts.append(f'<text x="{x(n):.1f}" y="{height - BOTTOM + 16}" text-anchor="middle">{n}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{height - 6}" text-anchor="middle">labels trained on</text>')
    path = " ".join(f"{x(n):.1f},{y(a):.1f}" for n, a in points)
    parts.append(f'<polyline points="{path}" class="curve"/>')
    for n, accuracy in points:
        title = escape(f"{n} labels: accuracy {accuracy:.3f}")
        parts.append(f'<circle cx="{x(n):.1f}" cy="{y(accuracy):.1f}" r="4" class="point"><title>{title}</title></circle>')
    parts.append("</svg>")
    return Markup("".join(parts))
