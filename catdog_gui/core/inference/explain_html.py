"""The explainer's numbers as HTML: one unit's arithmetic, the softmax, and the whole page a teacher opens.

No Qt here. The Network tab shows the same fragments (:func:`unit_html`, :func:`softmax_html`) in its
detail view that :func:`page_html` writes into the self-contained page (``catdog explain`` and the
tab's export): one file, its pictures inline as PNG data, nothing fetched from the network.

Every number is written by :func:`num` and carries its exact value in a ``data-v`` attribute, so a
test can read the page back and compare it with :mod:`.unit_arithmetic`.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

import numpy as np

from ..text import probability_text
from .unit_arithmetic import (
    ACTIVATION_TEXT,
    LABELS,
    ConvUnit,
    FullUnit,
    MaxPoolUnit,
    SoftmaxUnit,
    SubsampleUnit,
    Trace,
)

#: the colours of negative, zero and positive values
NEG, MID, POS = (np.array((49, 104, 176)), np.array((255, 255, 255)), np.array((214, 96, 37)))


def num(v: float) -> str:
    """How a number of the arithmetic reads: 4 decimals (``-0.0312``)."""
    return f"{v:.4f}"


def layer_scale(a: np.ndarray) -> float:
    """One colour scale per layer: its largest absolute value (1 for an all-zero layer)."""
    m = float(np.abs(a).max()) if a.size else 0.0
    return m if m > 0 else 1.0


def value_colours(a: np.ndarray, scale: float) -> np.ndarray:
    """Values -> uint8 RGB (..., 3): blue for -scale, white for 0, orange for +scale."""
    t = np.clip(np.asarray(a, np.float64) / scale, -1.0, 1.0)[..., None]
    rgb = np.where(t < 0, MID + (NEG - MID) * -t, MID + (POS - MID) * t)
    return (rgb + 0.5).astype(np.uint8)


def _hex(v: float, scale: float) -> str:
    """One value's colour as #rrggbb (the same as :func:`value_colours`, without numpy: it runs per cell)."""
    t = max(-1.0, min(1.0, float(v) / scale))
    end = NEG if t < 0 else POS
    r, g, b = (int(m + (int(e) - m) * abs(t) + 0.5) for m, e in zip((255, 255, 255), end))
    return f"#{r:02x}{g:02x}{b:02x}"


def _cell(v: float, scale: float, cls: str = "n", bold: bool = False) -> str:
    text = f"<b>{num(v)}</b>" if bold else num(v)
    return f'<td class="{cls}" bgcolor="{_hex(v, scale)}" data-v="{float(v)!r}">{text}</td>'


def _grid(a: np.ndarray | None, scale: float, cls: str, caption: str, mark=None) -> str:
    if a is None:
        return "<td></td>"
    rows = "".join("<tr>" + "".join(_cell(float(v), scale, cls, bold=(mark == (i, j))) for j, v in enumerate(row))
                   + "</tr>" for i, row in enumerate(a))
    return (f'<td valign="top"><div class="cap">{caption}</div>'
            f'<table class="grid" cellspacing="1" cellpadding="2">{rows}</table></td>')


def _value(cls: str, v: float) -> str:
    return f'<span class="{cls}" data-v="{float(v)!r}">{num(v)}</span>'


def _activation_line(activation: str, total: float, value: float) -> str:
    if activation == "none":
        return f"<p>No activation here: the value is the total, {_value('value', value)}.</p>"
    if activation == "scaled_tanh":
        how = f"1.7159 · tanh(2/3 · {num(total)})"
    else:
        how = f"max(0, {num(total)})"
    return (f"<p>Activation {ACTIVATION_TEXT[activation]}: {how} = <b>{_value('value', value)}</b></p>")


def unit_title(u) -> str:
    """``C3 map 1, unit (3, 6)`` / ``F6 unit 12`` / ``Softmax``."""
    if isinstance(u, SoftmaxUnit):
        return "Softmax: the scores become probabilities"
    label = LABELS.get(u.layer, u.layer)
    if isinstance(u, FullUnit):
        return f"{label} unit {u.channel + 1}"
    return f"{label} map {u.channel + 1}, row {u.y}, column {u.x}"


def unit_html(u, *, note: str = "", compact: bool = False, brief: bool = False) -> str:
    """The arithmetic of one unit (any kind of :mod:`.unit_arithmetic`) as an HTML fragment; ``compact``
    writes a convolution's grids as aligned monospace lines instead of tables (the same numbers; a
    rich-text widget lays them out ~10x faster, which the window's animation needs); ``brief`` leaves
    a convolution's grids out (its sums, bias, total and activation stay: the animation while playing)."""
    if isinstance(u, SoftmaxUnit):
        return softmax_html(u)
    src = LABELS.get(u.input_layer, u.input_layer)
    head = (f'<div class="unit" data-layer="{u.layer}" data-unit="{u.channel},{getattr(u, "y", 0)},'
            f'{getattr(u, "x", 0)}"><h3>{html.escape(unit_title(u))}</h3>')
    if note:
        head += f"<p>{html.escape(note)}</p>"
    if isinstance(u, ConvUnit):
        return head + _conv_html(u, src, compact, brief) + "</div>"
    if isinstance(u, SubsampleUnit):
        s = layer_scale(u.window)
        return head + (
            f"<p>The 2x2 window of {src} map {u.channel + 1} at ({2 * u.y}, {2 * u.x}): its average, times 4 "
            "(the window's sum) and this map's trainable coefficient, plus its bias.</p>"
            f'<table><tr>{_grid(u.window, s, "in", "window")}</tr></table>'
            f"<p>average = {_value('average', u.average)}; &nbsp; {num(u.average)} × 4 × "
            f"{_value('coefficient', u.coefficient)} + {_value('bias', u.bias)} = "
            f"<b>{_value('total', u.total)}</b></p>"
            + _activation_line(u.activation, u.total, u.value) + "</div>")
    if isinstance(u, MaxPoolUnit):
        s = layer_scale(u.window)
        return head + (
            f"<p>Max pooling: the largest of the 2x2 window of {src} map {u.channel + 1} at "
            f"({2 * u.y}, {2 * u.x}), in bold.</p>"
            f'<table><tr>{_grid(u.window, s, "in", "window", mark=u.argmax)}</tr></table>'
            f"<p>max = <b>{_value('value', u.value)}</b> (no weights, no bias)</p></div>")
    if isinstance(u, FullUnit):
        return head + _full_html(u, src) + "</div>"
    raise TypeError(f"no view for {type(u).__name__}")


def _pre_row(values, scale: float, cls: str) -> str:
    return " ".join(f'<span class="{cls}" style="background-color:{_hex(v, scale)}">{num(v):>8}</span>'
                    for v in values)


def _conv_pre(u: ConvUnit, src: str) -> str:
    """The channels' input, kernel and products as monospace lines, each channel's sum at its end."""
    k = u.terms[0].patch.shape[0]
    lines = []
    for t in u.terms:
        name = f"{src} map {t.channel + 1}"
        s_in = layer_scale(t.patch)
        if not t.connected:
            lines.append(f"<b>{name}</b>: not connected (Table I), adds nothing")
            lines.extend(f'<span style="color:#999">{_pre_row(t.patch[i], s_in, "in")}</span>' for i in range(k))
            continue
        s_k, s_p = layer_scale(t.kernel), layer_scale(t.products)
        lines.append(f"<b>{name}</b>" + " " * max(1, 9 * k - len(name)) + "   kernel" + " " * (9 * k - 6)
                     + "   products")
        for i in range(k):
            mid = i == k // 2
            lines.append(f"{_pre_row(t.patch[i], s_in, 'in')} {'×' if mid else ' '} "
                         f"{_pre_row(t.kernel[i], s_k, 'w')} {'=' if mid else ' '} {_pre_row(t.products[i], s_p, 'p')}"
                         + (f"   sum = {_value('sum', t.total)}" if mid else ""))
        lines.append("")
    return "<pre>" + "\n".join(lines) + "</pre>"


def _conv_html(u: ConvUnit, src: str, compact: bool = False, brief: bool = False) -> str:
    k = u.terms[0].patch.shape[0]
    connected = [t.channel + 1 for t in u.terms if t.connected]
    missing = [t.channel + 1 for t in u.terms if not t.connected]
    out = (f"<p>The {k}x{k} kernel at ({u.y}, {u.x}) over {src} map"
           f"{'s' if len(connected) > 1 else ''} {', '.join(map(str, connected))}")
    if missing:
        out += (f"; maps {', '.join(map(str, missing))} are <b>not connected</b> (the paper's Table I), "
                "so they add nothing")
    out += ". Each input value times its weight, then everything added up with the bias.</p>"
    sums = " + ".join(num(t.total) for t in u.terms if t.connected)
    total = (f"<p>{sums} + bias {_value('bias', u.bias)} = <b>{_value('total', u.total)}</b></p>"
             + _activation_line(u.activation, u.total, u.value))
    if brief:
        return out + "<p><i>Pause or step to see every product.</i></p>" + total
    if compact:
        return out + _conv_pre(u, src) + total
    rows = []
    for t in u.terms:
        s_in = layer_scale(t.patch)
        name = f"{src} map {t.channel + 1}"
        if not t.connected:
            rows.append(f'<tr class="unconnected" data-channel="{t.channel}"><td valign="top"><b>{name}</b><br>'
                        f"not connected</td>{_grid(t.patch, s_in, 'in', 'input (not read)')}"
                        "<td></td><td></td><td></td><td></td><td></td></tr>")
            continue
        s_k, s_p = layer_scale(t.kernel), layer_scale(t.products)
        rows.append(
            f'<tr class="term" data-channel="{t.channel}"><td valign="top"><b>{name}</b></td>'
            f"{_grid(t.patch, s_in, 'in', 'input')}<td>×</td>{_grid(t.kernel, s_k, 'w', 'kernel')}<td>=</td>"
            f"{_grid(t.products, s_p, 'p', 'products')}"
            f"<td valign=\"middle\">sum = {_value('sum', t.total)}</td></tr>")
    return out + '<table cellspacing="4">' + "".join(rows) + "</table>" + total


def _full_html(u: FullUnit, src: str) -> str:
    n = len(u.top) + u.rest_count
    biggest = max((abs(c.product) for c in u.top), default=1.0) or 1.0
    rows = []
    for c in u.top:
        width = max(1, round(120 * abs(c.product) / biggest))
        colour = "#d66025" if c.product >= 0 else "#3168b0"
        rows.append(
            f'<tr class="contribution"><td>{html.escape(c.name)}</td><td align="right">{num(c.weight)}</td>'
            f'<td>×</td><td align="right">{num(c.input)}</td><td>=</td>'
            f'<td align="right" class="product" data-v="{float(c.product)!r}">{num(c.product)}</td>'
            f'<td><table cellspacing="0" cellpadding="0"><tr><td width="{width}" height="10" bgcolor="{colour}">'
            f'<div style="width:{width}px;height:10px;background:{colour}"></div></td></tr></table></td></tr>')
    if u.rest_count:
        rows.append(f'<tr><td>the other {u.rest_count:,}</td><td></td><td></td><td></td><td>=</td>'
                    f'<td align="right">{_value("rest", u.rest_sum)}</td><td></td></tr>')
    rows.append(f'<tr><td>bias</td><td></td><td></td><td></td><td></td>'
                f'<td align="right">{_value("bias", u.bias)}</td><td></td></tr>')
    rows.append(f'<tr><td><b>total</b></td><td></td><td></td><td></td><td>=</td>'
                f'<td align="right"><b>{_value("total", u.total)}</b></td><td></td></tr>')
    return (f"<p>Full connection: each of the {n:,} {src} values times its own weight, added up with the bias. "
            f"The {len(u.top)} largest contributions (weight × input), largest first:</p>"
            '<table cellspacing="2"><tr><th>input</th><th>weight</th><th></th><th>value</th><th></th>'
            "<th>product</th><th></th></tr>" + "".join(rows) + "</table>"
            + _activation_line(u.activation, u.total, u.value))


def softmax_html(u: SoftmaxUnit) -> str:
    """The logits, their exponentials, the sum and each probability, as the Prediction tab prints it."""
    shifted = f" − {num(u.shift)}" if u.shift else ""
    rows = "".join(
        f'<tr class="class"><td><b>{html.escape(c)}</b></td><td align="right" class="logit" data-v="{float(z)!r}">'
        f"{num(z)}</td><td align=\"right\" class=\"exp\" data-v=\"{e!r}\">{num(e)}</td>"
        f'<td align="right">{num(e)} / {num(u.total)}</td><td align="right" class="prob" data-v="{float(p)!r}">'
        f"<b>{probability_text(p)}</b></td></tr>"
        for c, z, e, p in zip(u.classes, u.logits, u.exps, u.probabilities))
    return ('<div class="unit" data-layer="softmax"><h3>Softmax: the scores become probabilities</h3>'
            f"<p>Each output score z is raised to e<sup>z{shifted}</sup>; each class gets its exponential divided "
            "by their sum, so the probabilities are positive and add up to 100%.</p>"
            '<table cellspacing="4"><tr><th>class</th><th>score z</th><th>exp(z)</th><th>exp(z) / sum</th>'
            f"<th>probability</th></tr>{rows}"
            f'<tr><td>sum</td><td></td><td align="right">{_value("sum", u.total)}</td><td></td><td>100%</td></tr>'
            "</table></div>")


# ------------------------------------------------------------------------------------------------
# the page


def png_data(rgb: np.ndarray, scale_up: int = 1) -> str:
    """uint8 (H, W, 3) as a PNG data address (enlarged ``scale_up`` times, pixels kept square)."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(rgb, np.uint8))
    if scale_up > 1:
        img = img.resize((img.width * scale_up, img.height * scale_up), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _overview_html(tr: Trace) -> str:
    cols = []
    for st in tr.stages:
        c, h, w = st.out.shape
        if st.name == "input":
            rgb = np.clip(st.out.transpose(1, 2, 0) * 0.5 + 0.5, 0, 1) * 255  # [-1, 1] -> 0..255
            imgs = [f'<img src="{png_data(rgb, 3)}" alt="input" width="{3 * w}">']
            scale_text = "the photo as the network sees it"
        else:
            s = layer_scale(st.out)
            colours = value_colours(st.out, s)
            if st.flat:  # rows of up to 20 units, in order, white after the last
                per = min(c, 20)
                rows = -(-c // per)
                strip = np.full((rows * per, 3), 255, np.uint8)
                strip[:c] = colours.reshape(c, 3)
                imgs = [f'<img src="{png_data(strip.reshape(rows, per, 3), 12)}" alt="{st.label}" width="{12 * per}">']
            else:
                up = max(1, 84 // w)
                imgs = [f'<img src="{png_data(colours[i], up)}" alt="{st.label} map {i + 1}" width="{up * w}">'
                        for i in range(c)]
            scale_text = f"colour scale ±{num(s)}"
        cols.append(f'<div class="layer" data-layer="{st.name}"><h4>{st.label} · {c}×{h}×{w}</h4>'
                    f'<div class="maps">{"".join(imgs)}</div><div class="scale">{scale_text}</div></div>')
    return '<div class="overview">' + "".join(cols) + "</div>"


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1300px}
h1{font-size:1.4em} h3{margin:.2em 0} h4{margin:.2em 0;font-size:.9em}
.overview{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
.layer{border:1px solid #ccc;border-radius:6px;padding:6px;max-width:360px}
.maps img{image-rendering:pixelated;margin:2px;border:1px solid #ddd}
.scale{font-size:.8em;color:#555} .cap{font-size:.75em;color:#555}
.grid td{font-family:monospace;font-size:.75em;text-align:right;padding:1px 3px}
.unit{border-top:1px solid #ccc;margin-top:1em;padding-top:.5em}
.unconnected{color:#999} .legend span{display:inline-block;width:18px;height:12px}
"""


def page_html(tr: Trace, units: Sequence, *, title: str, subtitle: str = "", before_after: str = "") -> str:
    """The whole explainer as one self-contained HTML page: the overview of every layer, then the
    arithmetic of ``units`` (from :func:`~.unit_arithmetic.unit_arithmetic`), then ``before_after``
    (an HTML fragment, e.g. :func:`training_change_html`)."""
    legend = (f'<p class="legend">Colours: <span style="background:{_hex(-1, 1)}"></span> negative, '
              f'<span style="background:{_hex(0, 1)};border:1px solid #ccc"></span> zero, '
              f'<span style="background:{_hex(1, 1)}"></span> positive, one scale per layer.</p>')
    body = "".join(unit_html(u) for u in units)
    return page_shell(title, subtitle, f"{legend}{_overview_html(tr)}{body}{before_after}")


def page_shell(title: str, subtitle: str, body: str) -> str:
    """A self-contained page around ``body`` (HTML): the title, one line under it, the style."""
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>{body}"
            "<p class=\"cap\">Every number was recomputed from the model's weights by catdog-gui.</p>"
            "</body></html>")


def training_change_html(first, best, first_epoch: int, best_epoch: int) -> str:
    """The same unit after the first saved epoch and at the best one: its bias, total and value, and
    for a convolution its kernels side by side with their change; other kinds show both arithmetics."""
    def row(name, u):
        cells = "".join(f"<td align=\"right\">{_value(cls, getattr(u, attr))}</td>"
                        for cls, attr in (("bias", "bias"), ("total", "total"), ("value", "value"))
                        if hasattr(u, attr))
        return f"<tr><td><b>{name}</b></td>{cells}</tr>"

    cols = "".join(f"<th>{h}</th>" for h in ("bias", "total", "value") if hasattr(best, h))
    out = ('<div class="change"><h3>What training changed: ' + html.escape(unit_title(best)) + "</h3>"
           f"<p>The same unit for the same photo with the weights after epoch {first_epoch} and at the best "
           f"epoch, {best_epoch}.</p><table cellspacing=\"4\"><tr><th></th>{cols}</tr>"
           f"{row(f'after epoch {first_epoch}', first)}{row(f'best epoch {best_epoch}', best)}</table>")
    if isinstance(best, ConvUnit):
        rows = []
        for a, b in zip(first.terms, best.terms):
            if not b.connected:
                continue
            s = max(layer_scale(a.kernel), layer_scale(b.kernel))
            d = b.kernel - a.kernel
            rows.append(f"<tr><td valign=\"top\"><b>{LABELS.get(best.input_layer, '')} map {b.channel + 1}</b></td>"
                        f"{_grid(a.kernel, s, 'w0', f'kernel after epoch {first_epoch}')}"
                        f"{_grid(b.kernel, s, 'w', f'kernel at epoch {best_epoch}')}"
                        f"{_grid(d, layer_scale(d), 'dw', 'change')}</tr>")
        return out + '<table cellspacing="6">' + "".join(rows) + "</table></div>"
    return (out + f"<h4>after epoch {first_epoch}</h4>{unit_html(first)}"
            f"<h4>best epoch {best_epoch}</h4>{unit_html(best)}</div>")
